"""enforce() with ``delete``: exactly the eligible rows go, batch by batch, each one audited.

Runs are made at AS_OF (2026-03-15 12:00 UTC); "12 months" puts the cutoff at 2025-03-15 12:00.
"""

from __future__ import annotations

import pytest
from enforce_kit import AS_OF, Rig, at, stamp

POLICY = """\
rules:
  - id: events-delete
    description: Events are deleted 12 months after they happen, contracts excepted.
    store: app
    table: events
    age: {column: created_at, older_than: 12 months}
    where: {column: kind, op: ne, value: contract}
    action: {type: delete}
holds:
  - id: customer-7
    reason: Litigation.
    store: app
    table: events
    where: {column: customer_id, value: 7}
retain:
  - id: refunds-3-years
    reason: Tax law keeps refunds three years.
    store: app
    table: events
    column: created_at
    for: 3 years
    where: {column: kind, value: refund}
"""

ROWS = [
    # id, customer, kind, created_at, why it stays (None: it is deleted)
    (1, 1, "order", at(2024, 1, 1), None),
    (2, 1, "order", at(2025, 3, 15, 11, 59), None),  # a minute past the cutoff
    (3, 2, "order", at(2025, 3, 15, 12, 1), "too young"),  # a minute before it
    (4, 2, "order", None, "no age"),
    (5, 7, "order", at(2020, 1, 1), "held"),
    (6, 3, "contract", at(2020, 1, 1), "filtered out"),
    (7, 3, "refund", at(2024, 1, 1), "retained"),  # under three years
    (8, 3, "refund", at(2022, 1, 1), None),  # over three years
    (9, 7, "order", None, "no age"),
    (10, 4, "order", at(2026, 1, 1), "too young"),
    *((n, 10 + n % 4, "order", at(2023, 1, n), None) for n in range(11, 31)),
]
DELETED = [row[0] for row in ROWS if row[4] is None]
KEPT = [row[0] for row in ROWS if row[4] is not None]


@pytest.fixture
def events(db):
    """The events table above, filled."""
    db.run(f"CREATE TABLE events (id INTEGER PRIMARY KEY, customer_id INTEGER, "
           f"kind VARCHAR(10) NOT NULL, created_at {stamp(db.kind)})")
    db.insert("events", [dict(zip(("id", "customer_id", "kind", "created_at"), row[:4],
                                  strict=True)) for row in ROWS])
    return db


def ids(db, table="events"):
    """The keys left in ``table``."""
    return [row[0] for row in db.rows(table)]


def test_delete_removes_exactly_the_eligible_rows(events, rig):
    """Held, retained, undated, filtered-out and too-young rows stay; every other due row goes."""
    before = {row[0]: row for row in events.rows("events")}
    setup: Rig = rig(POLICY)

    report = setup.run("events-delete")

    assert (KEPT, 23) == (ids(events), len(DELETED))
    assert [before[key] for key in KEPT] == events.rows("events")
    assert ("done", 23, 4, None) == (report.status, report.acted, report.batches, report.error)
    census = report.census
    assert (30, 25, 1, 1, 2, 23) == (census.population, census.matched, census.held,
                                     census.protected, census.null_age, census.eligible)


def test_a_second_run_finds_nothing_and_writes_no_batch(events, rig):
    """Deleting again acts on nothing: the second run adds only its start and end records."""
    setup: Rig = rig(POLICY)
    setup.run("events-delete")
    batches = setup.batch_count()

    again = setup.run("events-delete", as_of=AS_OF)

    assert (0, 0, batches) == (again.acted, again.batches, setup.batch_count())
    assert KEPT == ids(events)


@pytest.mark.usefixtures("events")
def test_the_ledger_lists_every_deleted_key_once_between_start_and_end(rig):
    """run.start (cutoff, census, limits), one intent and outcome per batch, run.end (totals)."""
    setup: Rig = rig(POLICY)
    rule = setup.rule("events-delete")

    setup.run("events-delete")

    assert ["run.start", *["batch.intent", "batch.outcome"] * 4, "run.end"] == setup.kinds()
    assert (DELETED, [7, 7, 7, 2]) == (setup.acted("events-delete"),
                                       [body["count"] for body in setup.outcomes()])
    records = list(setup.ledger.records())
    start, end = records[0].entry, records[-1].entry
    assert {"rule": "events-delete", "version": rule.version, "table": "events",
            "action": "delete"} == {"rule": start.rule, "version": start.rule_version,
                                    "table": start.table, "action": start.action}
    assert ("2025-03-15T12:00:00+00:00", 23, 7, {"max_rows": 10_000, "max_percent": 100}) == (
        start.body["cutoff"], start.body["census"]["eligible"], start.body["batch_size"],
        start.body["limits"])
    assert {"status": "done", "acted": 23, "reached": 0, "batches": 4} == dict(end.body)
    assert {rule.version} == {r.entry.rule_version for r in records}


TEXT_KEYS = """\
rules:
  - id: sessions-delete
    description: Sessions are deleted 12 months after they start.
    store: app
    table: sessions
    age: {column: created_at, older_than: 12 months}
    action: {type: delete}
"""


def test_text_keys_are_matched_exactly_batch_by_batch(db, rig):
    """Text keys (quotes, non-ASCII, digits-only text) are deleted exactly, none other."""
    db.run(f"CREATE TABLE sessions (token VARCHAR(40) PRIMARY KEY, created_at {stamp(db.kind)})")
    old = ["a'b", "ü-1", "007", "7", 'x"y', "zz"]
    young = ["b", "8", "ü-2"]
    db.insert("sessions", [{"token": t, "created_at": at(2024, 1, 1)} for t in old]
              + [{"token": t, "created_at": at(2026, 1, 1)} for t in young])
    setup: Rig = rig(TEXT_KEYS)

    report = setup.run("sessions-delete")

    assert sorted(young) == sorted(row[0] for row in db.rows("sessions"))
    assert (6, sorted(old)) == (report.acted, sorted(setup.acted("sessions-delete")))
