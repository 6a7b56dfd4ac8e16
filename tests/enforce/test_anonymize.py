"""enforce() with ``anonymize``: every strategy writes exactly its value, once.

People 1-5 are due (seen before 2025-03-15 12:00), 6 is too young, 7 has no age and 8 is held.
"""

from __future__ import annotations

from datetime import date

import pytest
from enforce_kit import LateHold, Rig, at, hold, stamp

POLICY = """\
rules:
  - id: people-anonymize
    description: People are anonymized 12 months after their last visit.
    store: app
    table: people
    age: {column: last_seen, older_than: 12 months}
    action:
      type: anonymize
      columns:
        note: {strategy: nullify}
        nickname: {strategy: nullify, fallback: anon}
        city: {strategy: constant, value: somewhere}
        card: {strategy: mask, keep_last: 4}
        born: {strategy: generalize, to: year}
        visited: {strategy: generalize, to: month}
        signed_up: {strategy: generalize, to: month}
        last_login: {strategy: generalize, to: year}
        income: {strategy: generalize, step: 1000}
        ip: {strategy: generalize, to: network}
        email: {strategy: pk_derived}
"""

TABLE = """\
CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    last_seen {stamp},
    note VARCHAR(40),
    nickname VARCHAR(40) NOT NULL,
    city VARCHAR(40),
    card VARCHAR(30),
    born DATE,
    visited DATE,
    signed_up {stamp},
    last_login {stamp},
    income INTEGER,
    ip VARCHAR(45),
    email VARCHAR(80) UNIQUE
)
"""
COLUMNS = ("id", "last_seen", "note", "nickname", "city", "card", "born", "visited", "signed_up",
           "last_login", "income", "ip", "email")
SEEN = at(2024, 5, 1)
ROWS = [
    (1, SEEN, "likes cats", "Ann", "Oslo", "4111111111111111", date(1990, 7, 15),
     date(2024, 2, 29), at(2024, 2, 29, 13, 45, 10), at(2024, 6, 30, 23, 59, 59), 52345,
     "203.0.113.77", "ann@example.com"),
    (2, SEEN, None, "Bob", None, None, None, None, None, None, None, None, None),
    (3, SEEN, "x", "Cy", "Oslo", "abc", date(2000, 1, 1), date(2023, 12, 1),
     at(2023, 12, 1), at(2023, 1, 1), -1500, "2001:db8:abcd:12:3456::1", "cy@example.com"),
    (4, SEEN, "y", "Di", "Bergen", "12345", date(1985, 12, 31), date(2024, 1, 31),
     at(2024, 1, 31, 0, 0, 1), at(2024, 12, 31, 12, 0), 999, "not-an-ip", "di@example.com"),
    (5, SEEN, None, "anon", "somewhere", "*2345", date(1985, 1, 1), date(2024, 1, 1),
     at(2024, 1, 1), at(2024, 1, 1), 7000, "198.51.100.0", "erased+5@example.invalid"),
    (6, at(2026, 1, 1), "young", "Ed", "Oslo", "5555444433332222", date(1999, 9, 9),
     date(2026, 1, 9), at(2026, 1, 9, 9), at(2026, 1, 9, 9), 4321, "192.0.2.9", "ed@example.com"),
    (7, None, "undated", "Flo", "Oslo", "5555444433332222", date(1999, 9, 9),
     date(2026, 1, 9), at(2026, 1, 9, 9), at(2026, 1, 9, 9), 4321, "192.0.2.9", "flo@example.com"),
    (8, SEEN, "held", "Gus", "Oslo", "5555444433332222", date(1999, 9, 9),
     date(2026, 1, 9), at(2026, 1, 9, 9), at(2026, 1, 9, 9), 4321, "192.0.2.9", "gus@example.com"),
]
ANONYMIZED = [
    (1, SEEN, None, "anon", "somewhere", "************1111", date(1990, 1, 1),
     date(2024, 2, 1), at(2024, 2, 1), at(2024, 1, 1), 52000, "203.0.113.0",
     "erased+1@example.invalid"),
    (2, SEEN, None, "anon", None, None, None, None, None, None, None, None, None),
    (3, SEEN, None, "anon", "somewhere", "abc", date(2000, 1, 1), date(2023, 12, 1),
     at(2023, 12, 1), at(2023, 1, 1), -2000, "2001:db8:abcd::", "erased+3@example.invalid"),
    (4, SEEN, None, "anon", "somewhere", "*2345", date(1985, 1, 1), date(2024, 1, 1),
     at(2024, 1, 1), at(2024, 1, 1), 0, None, "erased+4@example.invalid"),
    ROWS[4],  # already anonymized: nothing to do
    *ROWS[5:],  # too young, undated, held
]
"""Row 1 changes everywhere; row 2 only where it is not NULL; row 3 keeps values that are
already general (a short card, 1 January, an exact month); row 4 loses a non-address."""


@pytest.fixture
def people(db):
    """The people table above, filled."""
    db.run(TABLE.format(stamp=stamp(db.kind)))
    db.insert("people", [dict(zip(COLUMNS, row, strict=True)) for row in ROWS])
    return db


def test_each_strategy_writes_its_exact_value(people, rig):
    """nullify, fallback, constant, mask, generalize (year, month, step, network), pk_derived."""
    setup: Rig = rig(POLICY, holds=[_held()])

    report = setup.run("people-anonymize")

    assert ANONYMIZED == people.rows("people")
    assert ("done", 4, 1) == (report.status, report.acted, report.census.done)


def test_outcomes_list_exactly_the_rows_that_changed(people, rig):
    """Applied outcomes name rows 1-4 (row 5 was already anonymized) and each column's strategy."""
    setup: Rig = rig(POLICY, holds=[_held()])

    setup.run("people-anonymize")

    changed = [r[0] for r, a in zip(ROWS, people.rows("people"), strict=True) if r != a]
    assert changed == setup.acted("people-anonymize") == [1, 2, 3, 4]
    assert {"note": "nullify", "card": "mask", "email": "pk_derived", "ip": "generalize"} == {
        c: setup.outcomes("people-anonymize")[0]["columns"][c]
        for c in ("note", "card", "email", "ip")}


def test_a_second_run_changes_nothing_and_writes_no_batch(people, rig):
    """Anonymized values are a fixpoint: the second run finds no pending row."""
    setup: Rig = rig(POLICY, holds=[_held()])
    setup.run("people-anonymize")
    batches = setup.batch_count()

    again = setup.run("people-anonymize")

    assert (ANONYMIZED, 0, batches) == (people.rows("people"), again.acted, setup.batch_count())
    assert (0, 5) == (again.census.eligible, again.census.done)


def test_rows_are_anonymized_over_several_batches(db, rig):
    """Forty due rows in batches of seven: each one rewritten once, none twice, none missed."""
    db.run(TABLE.format(stamp=stamp(db.kind)))
    db.insert("people", [{"id": n, "last_seen": at(2023, 1, 1 + n % 28), "nickname": f"n{n}",
                          "email": f"p{n}@example.com", "income": n * 111}
                         for n in range(1, 41)])
    setup: Rig = rig(POLICY)

    report = setup.run("people-anonymize")

    assert (40, 6) == (report.acted, report.batches)
    assert list(range(1, 41)) == setup.acted("people-anonymize")
    assert [(n, "anon", f"erased+{n}@example.invalid", n * 111 // 1000 * 1000)
            for n in range(1, 41)] == [(r[0], r[3], r[12], r[10]) for r in db.rows("people")]


def test_a_row_keyed_zero_is_rewritten_and_no_other(db, rig):
    """Key 0 is a key like any other.

    MariaDB must not turn it into the next counter value, and then rewrite row 1 (not due).
    """
    db.run(TABLE.format(stamp=stamp(db.kind)))
    db.insert("people", [{"id": 0, "last_seen": at(2023, 1, 1), "nickname": "a", "city": "Oslo"},
                         {"id": 1, "last_seen": at(2026, 3, 1), "nickname": "b", "city": "Bergen"}])
    setup: Rig = rig(POLICY)

    setup.run("people-anonymize")

    assert [(0, "somewhere"), (1, "Bergen")] == [(r[0], r[4]) for r in db.rows("people")]
    assert [0] == setup.acted("people-anonymize")


def _held():
    """A hold on person 8, from a HoldSource rather than the policy file."""
    return LateHold(lambda: True, [hold("person-8", "people", {"column": "id", "value": 8})])
