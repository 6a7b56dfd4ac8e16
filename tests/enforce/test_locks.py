"""Row locks held by the application: a batch that cannot get its rows in time is retried.

Twenty events, all due; batches of seven, so event 10 is in the second batch.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import structlog
from enforce_kit import Rig, at, stamp

from retentiond.errors import StoreUnavailable
from retentiond.stores.sql import SqlStoreSettings

POLICY = """\
rules:
  - id: events-delete
    description: Events are deleted after 12 months.
    store: app
    table: events
    age: {column: created_at, older_than: 12 months}
    action: {type: delete}
"""


@pytest.fixture
def events(db, server):
    """Twenty due events (on servers with row locks)."""
    if server.kind == "sqlite":
        pytest.skip("SQLite has no row locks: a writer takes the whole database")
    db.run(f"CREATE TABLE events (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)})")
    db.insert("events", [{"id": n, "created_at": at(2024, 1, n)} for n in range(1, 21)])
    return db


@pytest.fixture
def holder(backend):
    """Another session of the application, on its own connection."""
    engine = sa.create_engine(backend, poolclass=sa.NullPool)
    connection = engine.connect()
    yield connection
    connection.close()
    engine.dispose()


def test_a_locked_row_rolls_the_batch_back_and_it_is_retried(events, holder, rig, backend):
    """A batch that times out on a row lock pauses, is retried, and every row goes exactly once.

    Event 10 is locked by the application until the first pause.
    """
    holder.begin()
    holder.exec_driver_sql("SELECT id FROM events WHERE id = 10 FOR UPDATE").all()
    pauses = []

    def sleep(seconds):
        pauses.append(seconds)
        if holder.in_transaction():
            holder.rollback()

    setup: Rig = rig(POLICY, app=SqlStoreSettings(url=backend, lock_timeout_ms=100))

    with structlog.testing.capture_logs() as logs:
        report = setup.run("events-delete", sleep=sleep)

    assert ([1.0], "done", 20, 3) == (pauses, report.status, report.acted, report.batches)
    assert (list(range(1, 21)), []) == (setup.acted(), events.rows("events"))
    assert [1] == [e["attempt"] for e in logs if e["event"] == "batch.retry"]
    assert ["applied"] * 3 == [body["status"] for body in setup.outcomes()]
    # PostgreSQL waits at the claim (before any intent); MariaDB may wait at the delete itself,
    # after the intent: then the ledger shows that attempt rolled back.
    assert all("StoreUnavailable" == body["error"]
               for body in setup.outcomes(status="rolled back"))


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)  # MariaDB waits >= 1 s a try
def test_a_lock_that_outlasts_every_retry_fails_the_run(events, holder, rig, backend):
    """A lock never released: after the last retry the run fails; no attempt was applied.

    The claim takes no row lock (the delete re-checks its rows), so it is the delete that
    waits: each attempt leaves an intent and a rolled-back outcome.
    """
    holder.begin()
    holder.exec_driver_sql("SELECT id FROM events WHERE id = 10 FOR UPDATE").all()
    pauses = []
    setup: Rig = rig(POLICY, app=SqlStoreSettings(url=backend, lock_timeout_ms=100))
    run = setup.runner("events-delete", sleep=pauses.append)

    with pytest.raises(StoreUnavailable, match="cannot delete from"):
        run()
    holder.rollback()

    assert ([1.0, 2.0, 4.0, 8.0], "failed", 7) == (pauses, run.report.status, run.report.acted)
    assert list(range(8, 21)) == [row[0] for row in events.rows("events")]
    assert ["applied", *["rolled back"] * 5] == [
        body["status"] for body in setup.outcomes(status=None)]
