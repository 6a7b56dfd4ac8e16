"""The application changes rows while a batch is between its claim and its act.

Twenty due events, batches of seven.  Right after the first batch's intent is committed (its
rows claimed, not yet acted on), the application makes event 3 young again and deletes event
5 itself, each on its own connection with a short lock timeout.

- PostgreSQL claims without row locks, and the act re-checks every row as it takes its lock,
  so the application is not kept waiting and event 3 stays (it is no longer due).  A delete
  or quarantine that finds fewer rows than it claimed rolls its batch back and claims again.
- SQLite's writer holds the database and MariaDB's claim locks the rows, so the application
  waits for the batch, times out, and the batch removes all seven.

Either way the ledger names exactly the rows retentiond removed.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from enforce_kit import Rig, at, stamp

from retentiond.ledger.chain import Kind

POLICY = """\
rules:
  - id: events-go
    description: Events go after 12 months.
    store: app
    table: events
    age: {{column: created_at, older_than: 12 months}}
    action: {action}
"""
ACTIONS = {"delete": "{type: delete}",
           "quarantine": "{type: quarantine, release_after: 1 month}"}
SHELF = "retentiond_q_events"

# How each backend lets the application's change through while a batch is under way.
EXPECTED = {"postgresql": "changed", "sqlite": "blocked", "mariadb": "blocked"}


@pytest.fixture
def events(db):
    """Twenty due events."""
    db.run(f"CREATE TABLE events (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)})")
    db.insert("events", [{"id": n, "created_at": at(2024, 1, n)} for n in range(1, 21)])
    return db


def application(backend: str, kind: str) -> sa.Engine:
    """Another client of the store that gives up on a lock quickly."""
    if kind == "sqlite":
        return sa.create_engine(backend, poolclass=sa.NullPool, connect_args={"timeout": 0.2})
    engine = sa.create_engine(backend, poolclass=sa.NullPool)
    setting = ("SET lock_timeout = 300" if kind == "postgresql"
               else "SET SESSION innodb_lock_wait_timeout = 1")

    def give_up_quickly(dbapi_connection, _record):
        dbapi_connection.cursor().execute(setting)
        dbapi_connection.commit()  # psycopg opened a transaction for the SET: keep it

    sa.event.listen(engine, "connect", give_up_quickly)
    return engine


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_rows_changed_after_the_claim_are_acted_on_only_if_still_due(
        events, rig, backend, monkeypatch, action):
    """The act takes only rows still due; the ledger lists what it took, nothing else."""
    setup: Rig = rig(POLICY.format(action=ACTIONS[action]))
    engine = application(backend, events.kind)
    what_happened = []
    append_many = setup.ledger.append_many

    def append_then_interfere(entries, **options):
        records = append_many(entries, **options)
        if any(entry.kind is Kind.INTENT for entry in entries) and not what_happened:
            try:
                with engine.begin() as connection:
                    connection.execute(sa.text("UPDATE events SET created_at = :young "
                                               "WHERE id = 3"), {"young": at(2026, 3, 1)})
                    connection.execute(sa.text("DELETE FROM events WHERE id = 5"))
                what_happened.append("changed")
            except sa.exc.OperationalError:
                what_happened.append("blocked")
        return records

    monkeypatch.setattr(setup.ledger, "append_many", append_then_interfere)
    report = setup.run("events-go", sleep=lambda _seconds: None)
    engine.dispose()

    left = [row[0] for row in events.rows("events")]
    changed = what_happened == ["changed"]
    removed = set(range(1, 21)) - set(left) - ({5} if changed else set())
    outcomes = setup.outcomes(status=None)
    first = outcomes[0]
    assert [EXPECTED[events.kind]] == what_happened
    assert ("done", sorted(removed)) == (report.status, sorted(setup.acted()))
    if changed:
        assert ([3], "rolled back", [1, 2, 4, 6, 7, 8, 9]) == (
            left, first["status"], [key[0] for key in outcomes[1]["keys"]])
    else:
        assert ([], "applied", 7) == (left, first["status"], first["count"])
    if action == "quarantine":
        assert sorted(removed) == sorted(row[0] for row in events.rows(SHELF))
    claimed = [r.entry.body["count"] for r in setup.ledger.records()
               if r.entry.kind is Kind.INTENT]
    taken = [body["count"] if body["status"] == "applied" else claimed[n]
             for n, body in enumerate(outcomes)]
    assert claimed == taken
    assert setup.ledger.verify().ok
