"""Deleting (and quarantining) parents honours every foreign key that points at them.

Accounts 1-10 are due (created 2024), 11 and 12 are too young; children reference them.
"""

from __future__ import annotations

import pytest
from enforce_kit import Rig, at, stamp

RULE = """\
rules:
  - id: accounts-{action}
    description: Closed accounts are removed after 12 months.
    store: app
    table: accounts
    age: {{column: created_at, older_than: 12 months}}
    action: {{type: {action}{options}}}
"""


def policy(action="delete", options="", extra=""):
    """The accounts rule with ``action`` (and its options), followed by ``extra`` entries."""
    return RULE.format(action=action, options=options) + extra


def child(db, table, parent, on_delete, references, *, column="account_id", young=()):
    """Create ``table`` referencing ``parent`` with ``on_delete``; row n references the nth key.

    Rows are created in 2020 unless their id is in ``young`` (created 2026-03-01).
    """
    db.run(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, {column} INTEGER, "
           f"created_at {stamp(db.kind)}, flagged INTEGER NOT NULL DEFAULT 0, "
           f"CONSTRAINT fk_{table} FOREIGN KEY ({column}) REFERENCES {parent} (id) "
           f"ON DELETE {on_delete})")
    db.insert(table, [{"id": n, column: ref,
                       "created_at": at(2026, 3, 1) if n in young else at(2020, 1, n)}
                      for n, ref in enumerate(references, start=1)])


@pytest.fixture
def accounts(db):
    """Accounts 1-12: 1-10 due, 11-12 too young."""
    db.run(f"CREATE TABLE accounts (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)})")
    db.insert("accounts", [{"id": n, "created_at": at(2024, 1, n) if n <= 10 else at(2026, 1, n)}
                           for n in range(1, 13)])
    return db


def ids(db, table):
    """The keys left in ``table``."""
    return [row[0] for row in db.rows(table)]


def orphans(db):
    """SQLite's own report of rows whose parent is gone (empty on other backends)."""
    if db.kind != "sqlite":
        return []
    with db.engine.connect() as connection:
        return connection.exec_driver_sql("PRAGMA foreign_key_check").all()


def test_cascade_children_go_with_their_parents_and_are_recorded(accounts, rig):
    """ON DELETE CASCADE children are deleted with the parents; their keys are in ``reached``."""
    child(accounts, "sessions", "accounts", "CASCADE", [1, 1, 2, 5, 11, 9, None])
    setup: Rig = rig(policy() )

    report = setup.run("accounts-delete")

    assert ([11, 12], [5, 7]) == (ids(accounts, "accounts"), ids(accounts, "sessions"))
    assert {"sessions (cascade)": [1, 2, 3, 4, 6]} == setup.reached("accounts-delete")
    assert (10, 5, []) == (report.acted, report.reached, orphans(accounts))


def test_set_null_children_are_nulled_and_recorded(accounts, rig):
    """ON DELETE SET NULL children stay, their reference nulled; their keys are recorded."""
    child(accounts, "tags", "accounts", "SET NULL", [2, 3, 11, 3, None])
    setup: Rig = rig(policy())

    setup.run("accounts-delete")

    assert [(1, None), (2, None), (3, 11), (4, None), (5, None)] == [
        row[:2] for row in accounts.rows("tags")]
    assert {"tags (set null)": [1, 2, 4]} == setup.reached("accounts-delete")
    assert [] == orphans(accounts)


def test_restricting_children_block_their_parents_when_the_rule_refuses(accounts, rig):
    """RESTRICT children keep their parents (counted blocked, no error); the others go."""
    child(accounts, "invoices", "accounts", "RESTRICT", [3, 3, 8, 12])
    setup: Rig = rig(policy())

    report = setup.run("accounts-delete")

    assert ([3, 8, 11, 12], [1, 2, 3, 4]) == (ids(accounts, "accounts"),
                                              ids(accounts, "invoices"))
    assert ("done", 2, 8, None) == (report.status, report.census.blocked, report.acted,
                                    report.error)
    assert {} == setup.reached("accounts-delete")


def test_no_action_children_block_like_restrict(accounts, rig):
    """NO ACTION is RESTRICT for a delete: the parents of such children stay."""
    child(accounts, "notes", "accounts", "NO ACTION", [4, 9])
    setup: Rig = rig(policy())

    report = setup.run("accounts-delete")

    assert ([4, 9, 11, 12], 2) == (ids(accounts, "accounts"), report.census.blocked)


def test_restricting_children_and_grandchildren_are_deleted_first_when_asked(accounts, rig):
    """With on_children: delete, grandchildren go first, then children, then parents; recorded."""
    child(accounts, "invoices", "accounts", "RESTRICT", [3, 3, 8, 12])
    child(accounts, "invoice_lines", "invoices", "RESTRICT", [1, 2, 2, 4, 3], column="invoice_id")
    setup: Rig = rig(policy(options=", on_children: delete"))

    report = setup.run("accounts-delete")

    assert ([11, 12], [4], [4]) == (ids(accounts, "accounts"), ids(accounts, "invoices"),
                                    ids(accounts, "invoice_lines"))
    assert {"invoices (delete first)": [1, 2, 3],
            "invoice_lines (delete first)": [1, 2, 3, 5]} == setup.reached("accounts-delete")
    assert (10, 7, 0, []) == (report.acted, report.reached, report.census.blocked,
                              orphans(accounts))


def test_a_cascade_onto_a_held_or_retained_child_keeps_the_parent(accounts, rig):
    """A child under a legal hold, or young enough for its minimum retention, blocks its parent."""
    child(accounts, "sessions", "accounts", "CASCADE", [1, 2, 3, 4, 4], young={3})
    accounts.run("UPDATE sessions SET flagged = 1 WHERE id = 2")
    guards = """\
holds:
  - id: flagged-sessions
    reason: Evidence in a complaint.
    store: app
    table: sessions
    where: {column: flagged, value: 1}
retain:
  - id: sessions-2-years
    reason: Security logs are kept two years.
    store: app
    table: sessions
    column: created_at
    for: 2 years
"""
    setup: Rig = rig(policy(extra=guards))

    report = setup.run("accounts-delete")

    assert ([2, 3, 11, 12], [2, 3]) == (ids(accounts, "accounts"), ids(accounts, "sessions"))
    assert (2, {"sessions (cascade)": [1, 4, 5]}) == (report.census.blocked,
                                                       setup.reached("accounts-delete"))


def test_a_held_set_null_child_keeps_the_parent(accounts, rig):
    """Nulling a held child's reference would change it: its parent is kept."""
    child(accounts, "tags", "accounts", "SET NULL", [5, 6])
    hold = """\
holds:
  - id: tag-one
    reason: Evidence.
    store: app
    table: tags
    where: {column: id, value: 1}
"""
    setup: Rig = rig(policy(extra=hold))

    setup.run("accounts-delete")

    assert ([5, 11, 12], [(1, 5), (2, None)]) == (
        ids(accounts, "accounts"), [row[:2] for row in accounts.rows("tags")])


def test_a_self_reference_blocks_the_rows_others_point_at(db, rig):
    """In a table referencing itself (RESTRICT), managers stay while their reports exist."""
    db.run(f"CREATE TABLE staff (id INTEGER PRIMARY KEY, manager_id INTEGER, "
           f"created_at {stamp(db.kind)}, CONSTRAINT fk_manager FOREIGN KEY (manager_id) "
           f"REFERENCES staff (id) ON DELETE RESTRICT)")
    db.insert("staff", [{"id": n, "manager_id": m, "created_at": at(2020, 1, n)}
                        for n, m in [(1, None), (2, 1), (3, 2), (4, 1), (5, None), (6, 6)]])
    text = (policy().replace("accounts-delete", "staff-delete")
            .replace("table: accounts", "table: staff"))
    setup: Rig = rig(text)

    report = setup.run("staff-delete")

    assert ([1, 2, 6], 3) == (ids(db, "staff"), report.census.blocked)
    assert [3, 4, 5] == setup.acted("staff-delete")
    assert [] == orphans(db)


def test_quarantine_is_blocked_by_any_child(accounts, rig):
    """Rows are moved to quarantine only when nothing references them, cascading or not."""
    child(accounts, "sessions", "accounts", "CASCADE", [1, 2])
    child(accounts, "tags", "accounts", "SET NULL", [3])
    setup: Rig = rig(policy("quarantine", ", release_after: 6 months"))

    report = setup.run("accounts-quarantine")

    assert ([1, 2, 3, 11, 12], 3) == (ids(accounts, "accounts"), report.census.blocked)
    assert [4, 5, 6, 7, 8, 9, 10] == ids(accounts, "retentiond_q_accounts")
    assert ([1, 2], [(1, 3)]) == (ids(accounts, "sessions"),
                                  [row[:2] for row in accounts.rows("tags")])
