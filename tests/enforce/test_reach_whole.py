"""The plan, the brakes and the ledger see the whole reach of a removal, at every depth.

A staff table with stores, orders and order lines below it, each referencing the one above
(RESTRICT), as in public sample schemas.  Staff 1-3 are due, 4 is too young.
"""

from __future__ import annotations

import pytest
from enforce_kit import AS_OF, Rig, at, stamp
from rich.console import Console

from retentiond.cli.render import plan_details, plan_to_dict
from retentiond.errors import LimitExceeded
from retentiond.publish.schedule import build_schedule, reached_tables, to_markdown
from retentiond.settings import Defaults

RULE = """\
rules:
  - id: staff-delete
    description: Staff records are deleted 12 months after they left.
    store: app
    table: staff
    age: {{column: left_at, older_than: 12 months}}
    action: {{type: delete{options}}}{limits}
"""


def table(db, name, parent=None, *, on_delete="RESTRICT", rows=()):
    """``name`` with ``rows`` of (id, parent id), referencing ``parent`` with ``on_delete``."""
    reference = (f", parent_id INTEGER, CONSTRAINT fk_{name} FOREIGN KEY (parent_id) "
                 f"REFERENCES {parent} (id) ON DELETE {on_delete}") if parent else ""
    db.run(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, left_at {stamp(db.kind)}{reference})")
    db.insert(name, [{"id": n, "left_at": at(2020, 1, 1) if n != 4 or parent else at(2026, 3, 1),
                      **({"parent_id": p} if parent else {})} for n, p in rows])


@pytest.fixture
def chain(db):
    """Staff 1-4 <- stores 1-4 <- orders 1-8 <- order_lines 1-16 (all RESTRICT)."""
    table(db, "staff", rows=[(n, None) for n in range(1, 5)])
    table(db, "stores", "staff", rows=[(n, n) for n in range(1, 5)])
    table(db, "orders", "stores", rows=[(n, (n + 1) // 2) for n in range(1, 9)])
    table(db, "order_lines", "orders", rows=[(n, (n + 1) // 2) for n in range(1, 17)])
    return db


def reached(plan):
    """The plan's reach: (table, effect, distinct rows) per table."""
    return [(r.table, r.effect, r.rows) for r in plan.reached]


@pytest.mark.usefixtures("chain")
def test_the_plan_shows_every_table_a_delete_first_chain_reaches(rig):
    """Stores, orders and lines of staff 1-3 go first: the plan counts each table, deepest too."""
    setup: Rig = rig(RULE.format(options=", on_children: delete", limits=""))

    plan = setup.engine.plan(setup.rule("staff-delete"), as_of=AS_OF)

    assert [("stores", "delete", 3), ("orders", "delete", 6),
            ("order_lines", "delete", 12)] == reached(plan)
    first = ["delete first"]
    assert [{"table": "stores", "effect": "delete", "rows": 3, "population": 4, "via": first},
            {"table": "orders", "effect": "delete", "rows": 6, "population": 8, "via": first},
            {"table": "order_lines", "effect": "delete", "rows": 12, "population": 16,
             "via": first}] == plan_to_dict(plan)["reached"]


def test_max_rows_counts_every_row_a_run_would_delete(chain, rig):
    """3 staff rows are under max_rows: 10, but 12 order lines are not: nothing is deleted."""
    before = {name: chain.rows(name) for name in ("staff", "stores", "orders", "order_lines")}
    setup: Rig = rig(RULE.format(options=", on_children: delete",
                                 limits="\n    limits: {max_rows: 10}"))

    run = setup.runner("staff-delete")
    with pytest.raises(LimitExceeded) as caught:
        run()

    error = caught.value
    assert ("max_rows", 10, 12, 16, "order_lines") == (
        error.limit, error.allowed, error.selected, error.population, error.table)
    assert before == {name: chain.rows(name) for name in before}
    assert "stopped" == run.report.status


def test_max_percent_counts_every_row_a_run_would_delete(chain, rig):
    """Every remaining order line would go with its staff: over max_percent 80, none goes."""
    chain.run("DELETE FROM order_lines WHERE parent_id IN (7, 8)")  # young staff 4's orders
    setup: Rig = rig(RULE.format(options=", on_children: delete",
                                 limits="\n    limits: {max_percent: 80}"),
                     defaults=Defaults(batch_size=7, max_rows=10_000, max_percent=60))

    with pytest.raises(LimitExceeded) as caught:
        setup.run("staff-delete")

    assert ("max_percent", 80.0, 12, 12, "order_lines") == (
        caught.value.limit, caught.value.allowed, caught.value.selected,
        caught.value.population, caught.value.table)
    assert 4 == len(chain.rows("staff"))


def test_allow_exceed_lets_the_whole_reach_go_and_records_each_row_once(chain, rig):
    """The audited override deletes the chain; every reached row is recorded once."""
    setup: Rig = rig(RULE.format(options=", on_children: delete",
                                 limits="\n    limits: {max_rows: 10}"))

    report = setup.run("staff-delete", allow_exceed=True)

    assert ([4], [4], [7, 8], [13, 14, 15, 16]) == tuple(
        [row[0] for row in chain.rows(name)]
        for name in ("staff", "stores", "orders", "order_lines"))
    assert (3, 21) == (report.acted, report.reached)
    assert "brake.override" in setup.kinds()


def test_a_row_reached_by_two_paths_is_counted_and_recorded_once(db, rig):
    """A note that goes with its staff (cascade) and with its store (cascade) is one row."""
    table(db, "staff", rows=[(n, None) for n in range(1, 5)])
    table(db, "stores", "staff", on_delete="CASCADE", rows=[(n, n) for n in range(1, 5)])
    db.run(f"CREATE TABLE notes (id INTEGER PRIMARY KEY, staff_id INTEGER, store_id INTEGER, "
           f"left_at {stamp(db.kind)}, "
           "CONSTRAINT fk_notes_staff FOREIGN KEY (staff_id) REFERENCES staff (id) "
           "ON DELETE CASCADE, "
           "CONSTRAINT fk_notes_store FOREIGN KEY (store_id) REFERENCES stores (id) "
           "ON DELETE CASCADE)")
    db.insert("notes", [{"id": n, "staff_id": s, "store_id": s, "left_at": at(2020, 1, 1)}
                        for n, s in [(1, 1), (2, 2), (3, 4)]])
    setup: Rig = rig(RULE.format(options="", limits=""))

    plan = setup.engine.plan(setup.rule("staff-delete"), as_of=AS_OF)
    report = setup.run("staff-delete")

    assert [("notes", "delete", 2), ("stores", "delete", 3)] == reached(plan)
    assert {"stores (cascade)": [1, 2, 3], "notes (cascade)": [1, 2]} == setup.reached(
        "staff-delete")
    assert 5 == report.reached


def test_a_row_deleted_by_one_path_and_nulled_by_another_is_recorded_as_deleted(db, rig):
    """Deleted wins over set null: the row is counted once, as deleted."""
    table(db, "staff", rows=[(n, None) for n in range(1, 5)])
    db.run(f"CREATE TABLE notes (id INTEGER PRIMARY KEY, author_id INTEGER, editor_id INTEGER, "
           f"left_at {stamp(db.kind)}, "
           "CONSTRAINT fk_notes_author FOREIGN KEY (author_id) REFERENCES staff (id) "
           "ON DELETE CASCADE, "
           "CONSTRAINT fk_notes_editor FOREIGN KEY (editor_id) REFERENCES staff (id) "
           "ON DELETE SET NULL)")
    db.insert("notes", [{"id": n, "author_id": a, "editor_id": e, "left_at": at(2020, 1, 1)}
                        for n, a, e in [(1, 1, 1), (2, 4, 2), (3, 4, 4)]])
    setup: Rig = rig(RULE.format(options="", limits=""))

    plan = setup.engine.plan(setup.rule("staff-delete"), as_of=AS_OF)
    report = setup.run("staff-delete")

    assert [("notes", "delete", 1), ("notes", "set null", 1)] == reached(plan)
    assert {"notes (cascade)": [1], "notes (set null)": [2]} == setup.reached("staff-delete")
    assert 2 == report.reached


def test_plan_wording_says_each_effect_once_without_contradiction(chain, rig):
    """With on_children: delete nothing "blocks its parents"; blocked rows name their blocker."""
    chain.run("UPDATE order_lines SET left_at = NULL WHERE id = 1")
    hold = """\
holds:
  - id: line-one
    reason: Evidence.
    store: app
    table: order_lines
    where: {column: id, value: 1}
"""
    setup: Rig = rig(RULE.format(options=", on_children: delete", limits="") + hold)

    plan = setup.engine.plan(setup.rule("staff-delete"), as_of=AS_OF)
    console = Console(width=200)
    with console.capture() as captured:
        console.print(plan_details(plan))
    text = captured.get()

    assert "block their parents" not in text
    assert "12 rows of order_lines" not in text  # line 1 (held) keeps staff 1: 10 lines go
    assert "reaches: 8 rows of order_lines will be deleted first (on_children: delete)" in text
    assert "1 row blocked: order_lines rows held by line-one would be deleted first" in text
    assert 1 == text.count("order_lines rows held by")


def test_the_schedule_lists_tables_without_rules_whose_rows_go_with_a_parent(chain, rig):
    """Stores, orders and order lines have no rule: the schedule says they go with staff."""
    del chain
    setup: Rig = rig(RULE.format(options=", on_children: delete", limits=""))

    reached, unknown = reached_tables(setup.engine, as_of=AS_OF)
    text = to_markdown(build_schedule(setup.engine.policies, as_of=AS_OF, reached=reached))

    assert [] == unknown
    assert "### Records of `order_lines` (store `app`)" in text
    assert ("- Deleted with the staff record they belong to when rule staff-delete removes "
            "that record, 12 months after its date.") in text
    assert "No retention period is set" not in text


def test_a_cascading_self_reference_never_cascades_past_what_the_plan_sees(db, rig):
    """Staff 3 is held; it reports to 2, who reports to 1 (ON DELETE CASCADE): 1 and 2 stay.

    The database would cascade from 1 to 2 to 3.  Only staff that nobody reports to go, and
    their deletion is what the plan counts.
    """
    db.run(f"CREATE TABLE staff (id INTEGER PRIMARY KEY, manager_id INTEGER, "
           f"left_at {stamp(db.kind)}, CONSTRAINT fk_manager FOREIGN KEY (manager_id) "
           "REFERENCES staff (id) ON DELETE CASCADE)")
    db.insert("staff", [{"id": n, "manager_id": m, "left_at": at(2020, 1, 1)}
                        for n, m in [(1, None), (2, 1), (3, 2), (4, None), (5, 4)]])
    hold = """\
holds:
  - id: staff-three
    reason: Evidence.
    store: app
    table: staff
    where: {column: id, value: 3}
"""
    setup: Rig = rig(RULE.format(options="", limits="") + hold)

    plan = setup.engine.plan(setup.rule("staff-delete"), as_of=AS_OF)
    setup.run("staff-delete")
    after_one = sorted(row[0] for row in db.rows("staff"))
    setup.run("staff-delete")  # 4 is referenced by nobody now

    assert (1, 3) == (plan.census.held, plan.census.blocked)  # 3 held; 1, 2, 4 referenced
    assert ([1, 2, 3, 4], [1, 2, 3]) == (after_one, sorted(row[0] for row in db.rows("staff")))
