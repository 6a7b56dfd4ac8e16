"""The one entrance (``run --once`` and the daemon alike): what ends a run is in its ``run.end``.

What fails inside the run is recorded by the run itself (``test_fail_closed``); these are the
failures before it starts, under the lease: the ledger unreadable while settling what a crash
left, the check for another replica's run, a bug.  Before, those escaped the entrance with
nothing in the ledger (or, for recovery, a report that said ``done``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from enforce_kit import AS_OF, at, stamp

from retentiond.errors import AuditError
from retentiond.ledger.chain import Kind
from retentiond.run.enforce import Options
from retentiond.run.entrance import Attempt, Enforcer
from retentiond.run.leases import LocalLeases
from retentiond.settings import Settings

POLICY = """\
rules:
  - id: events-delete
    description: Events are deleted after 12 months.
    store: app
    table: events
    age: {column: created_at, older_than: 12 months}
    action: {type: delete}
"""


def fails(error: Exception) -> Callable[[], bool]:
    """A check for another replica's run that raises ``error``."""
    def check() -> bool:
        raise error
    return check


@pytest.mark.parametrize("server", [pytest.param("sqlite", marks=pytest.mark.sqlite)],
                         indirect=True)
@pytest.mark.parametrize(("error", "raised"), [
    pytest.param(AuditError("cannot read the ledger: OperationalError"), False, id="AuditError"),
    pytest.param(ZeroDivisionError("a bug"), True, id="a bug"),
])
def test_a_failure_before_the_run_starts_is_a_failed_run_in_the_ledger(db, rig, error, raised):
    """Failed, with the error's class, in ``run.end``; a RetentionError is returned, a bug raised.

    Nothing is acted on.
    """
    db.run(f"CREATE TABLE events (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)})")
    db.insert("events", [{"id": n, "created_at": at(2024, 1, n)} for n in range(1, 4)])
    setup = rig(POLICY)
    enforcer = Enforcer(setup.engine, setup.ledger, LocalLeases(), Settings(), None)
    rule = setup.rule("events-delete")

    def attempt() -> Attempt:
        return enforcer.run_rule(rule, run_id="run-1", options=Options(), as_of=AS_OF,
                                 settled=fails(error))

    if raised:
        with pytest.raises(type(error)):
            attempt()
    else:
        assert error is attempt().error
    ends = [r.entry.body for r in setup.ledger.records() if r.entry.kind is Kind.RUN_END]
    assert [("failed", type(error).__name__)] == [(e["status"], e["error_class"]) for e in ends]
    assert [1, 2, 3] == [row[0] for row in db.rows("events")]
