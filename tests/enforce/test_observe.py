"""``Options.observe``: the run tells an observer its report after the census and each batch.

It is how ``run --once`` draws its progress (the engine reports, the CLI renders); the
observer only reads, and what it is told matches what the ledger records.
"""

from __future__ import annotations

from enforce_kit import at, stamp

POLICY = """\
rules:
  - id: notes-delete
    description: Notes are deleted after a year.
    store: app
    table: notes
    age: {column: created_at, older_than: 12 months}
    action: {type: delete}
    limits: {max_percent: 100}
    batch_size: 4
"""


def test_the_observer_sees_the_census_then_every_batch(db, rig):
    """10 due rows in batches of 4: told (0 of 10, 0 batches), then 4, 8, 10 after each batch."""
    db.run(f"CREATE TABLE notes (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)})")
    db.insert("notes", [{"id": n, "created_at": at(2024, 1, n)} for n in range(1, 11)])
    seen: list[tuple[str, int | None, int, int]] = []

    report = rig(POLICY).run("notes-delete", observe=lambda r: seen.append(
        (r.rule, r.census.eligible if r.census else None, r.acted, r.batches)))

    assert [("notes-delete", 10, 0, 0), ("notes-delete", 10, 4, 1), ("notes-delete", 10, 8, 2),
            ("notes-delete", 10, 10, 3)] == seen
    assert (10, 3) == (report.acted, report.batches)
