"""The brakes: a rule that would act on too much stops before any row changes, with the numbers.

Ten events; 1-6 are due at AS_OF (60 %), 7-10 are too young.
"""

from __future__ import annotations

import pytest
from enforce_kit import Rig, at, stamp

from retentiond.errors import LimitExceeded
from retentiond.settings import Defaults

POLICY = """\
rules:
  - id: events-delete
    description: Events are deleted after 12 months.
    store: app
    table: events
    age: {{column: created_at, older_than: 12 months}}
    action: {{type: delete}}{limits}
"""


@pytest.fixture
def events(db):
    """Ten events, six of them due."""
    db.run(f"CREATE TABLE events (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)})")
    db.insert("events", [{"id": n, "created_at": at(2024, 1, n) if n <= 6 else at(2026, 1, n)}
                         for n in range(1, 11)])
    return db


def stopped(setup, rule_id="events-delete", **options):
    """Run the rule, expecting a brake; the LimitExceeded and the run's report."""
    run = setup.runner(rule_id, **options)
    with pytest.raises(LimitExceeded) as caught:
        run()
    return caught.value, run.report


def numbers(error):
    """What a LimitExceeded says."""
    return error.rule, error.limit, error.allowed, error.selected, error.population


def test_the_default_percentage_brake_trips_when_the_rule_sets_none(events, rig):
    """60 % due against the default 50 %: stopped, every row still there, no batch recorded."""
    before = events.rows("events")
    setup: Rig = rig(POLICY.format(limits=""), defaults=Defaults(batch_size=3))

    error, report = stopped(setup)

    assert ("events-delete", "max_percent", 50.0, 6, 10) == numbers(error)
    assert (before, "stopped", 0) == (events.rows("events"), report.status, report.acted)
    assert ["run.start", "brake.stopped"] == [k for k in setup.kinds() if k != "run.end"]
    body = [r.entry.body for r in setup.ledger.records() if r.entry.kind.value == "brake.stopped"]
    assert [{"limit": "max_percent", "allowed": 50.0, "selected": 6, "population": 10}] == body


def test_the_default_row_brake_trips_when_the_rule_sets_none(events, rig):
    """Six due rows against a default of five: stopped before any row changes."""
    before = events.rows("events")
    setup: Rig = rig(POLICY.format(limits=""),
                     defaults=Defaults(batch_size=3, max_rows=5, max_percent=100))

    error, _ = stopped(setup)

    assert (("events-delete", "max_rows", 5, 6, 10), before) == (numbers(error),
                                                                 events.rows("events"))
    assert 0 == setup.batch_count()


def test_limits_in_the_rule_replace_the_defaults(events, rig):
    """A rule allowing 60 % and 6 rows acts, although the defaults would have stopped it."""
    text = POLICY.format(limits="\n    limits: {max_rows: 6, max_percent: 60}")
    setup: Rig = rig(text, defaults=Defaults(batch_size=3, max_rows=5, max_percent=10))

    report = setup.run("events-delete")

    assert (6, [7, 8, 9, 10]) == (report.acted, [row[0] for row in events.rows("events")])


def test_a_rule_limit_below_the_selection_trips(events, rig):
    """A rule's own max_rows of 4 stops six due rows, whatever the defaults allow."""
    setup: Rig = rig(POLICY.format(limits="\n    limits: {max_rows: 4}"),
                     defaults=Defaults(batch_size=3, max_percent=100))

    error, _ = stopped(setup)

    assert ("events-delete", "max_rows", 4, 6, 10) == numbers(error)
    assert 10 == len(events.rows("events"))


def test_allow_exceed_acts_and_leaves_an_override_record(events, rig):
    """With allow_exceed the run goes ahead, and the ledger says which brake was overridden."""
    setup: Rig = rig(POLICY.format(limits=""), defaults=Defaults(batch_size=3))

    report = setup.run("events-delete", allow_exceed=True)

    assert (6, 2, [7, 8, 9, 10]) == (report.acted, report.batches,
                                     [row[0] for row in events.rows("events")])
    overrides = [r.entry.body for r in setup.ledger.records()
                 if r.entry.kind.value == "brake.override"]
    assert [{"limit": "max_percent", "allowed": 50.0, "selected": 6, "population": 10}] == overrides
    assert "brake.stopped" not in setup.kinds()


def test_the_brake_counts_only_eligible_rows(events, rig):
    """Held rows do not count towards the brake: with three of six held, 30 % passes 50 %."""
    hold = ("holds:\n  - id: first-three\n    reason: Evidence.\n    store: app\n"
            "    table: events\n    where: {column: id, op: le, value: 3}\n")
    setup: Rig = rig(POLICY.format(limits="") + hold, defaults=Defaults(batch_size=3))

    report = setup.run("events-delete")

    assert (3, [1, 2, 3, 7, 8, 9, 10]) == (report.acted, [r[0] for r in events.rows("events")])
