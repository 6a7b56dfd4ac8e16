"""A partitioned table is one table to the policy, however its partitions carry their keys.

PostgreSQL's declarative partitioning: ``payments`` is partitioned by month and a default
partition; the foreign key to ``customers`` is declared on each partition, not on the parent
(as public sample schemas do).  Customers 1-6 are due, 7 is too young.
"""

from __future__ import annotations

import pytest
from enforce_kit import AS_OF, ROOMY, Rig, at

from retentiond.holds.notation import parse_term
from retentiond.holds.placing import HoldRequest, LegalHolds
from retentiond.holds.scope import StateHolds
from retentiond.publish.explain import explain
from retentiond.run.engine import Engine
from retentiond.validation import schema_warnings

RULE = """\
rules:
  - id: customers-delete
    description: Customers are deleted 12 months after they left.
    store: app
    table: customers
    age: {{column: left_at, older_than: 12 months}}
    action: {{type: delete{options}}}
"""

PARTITIONS = ("payments_2023_01", "payments_2023_02", "payments_default")


def payments(db, *, on_delete="RESTRICT", without_fk=()):
    """Customers and the partitioned payments; partitions in ``without_fk`` lack the key."""
    if db.kind != "postgresql":
        pytest.skip("declarative partitions are PostgreSQL's")
    db.run("CREATE TABLE customers (id INTEGER PRIMARY KEY, left_at TIMESTAMP)",
           "CREATE TABLE payments (id INTEGER, customer_id INTEGER, amount INTEGER, "
           "paid_at TIMESTAMP NOT NULL, PRIMARY KEY (id, paid_at)) PARTITION BY RANGE (paid_at)",
           "CREATE TABLE payments_2023_01 PARTITION OF payments "
           "FOR VALUES FROM ('2023-01-01') TO ('2023-02-01')",
           "CREATE TABLE payments_2023_02 PARTITION OF payments "
           "FOR VALUES FROM ('2023-02-01') TO ('2023-03-01')",
           "CREATE TABLE payments_default PARTITION OF payments DEFAULT",
           *(f"ALTER TABLE {p} ADD CONSTRAINT fk_{p} FOREIGN KEY (customer_id) "
             f"REFERENCES customers (id) ON DELETE {on_delete}"
             for p in PARTITIONS if p not in without_fk))
    db.insert("customers", [{"id": n, "left_at": at(2024, 1, n) if n <= 6 else at(2026, 3, 1)}
                            for n in range(1, 8)])
    # Payment n of customer c: 1-2 in January, 3-4 in February, 5-6 in the default partition.
    db.insert("payments", [
        {"id": 1, "customer_id": 1, "amount": 500, "paid_at": at(2023, 1, 5)},
        {"id": 2, "customer_id": 2, "amount": 20, "paid_at": at(2023, 1, 6)},
        {"id": 3, "customer_id": 3, "amount": 30, "paid_at": at(2023, 2, 5)},
        {"id": 4, "customer_id": 4, "amount": 700, "paid_at": at(2023, 2, 6)},
        {"id": 5, "customer_id": 5, "amount": 50, "paid_at": at(2024, 5, 1)},
        {"id": 6, "customer_id": 7, "amount": 60, "paid_at": at(2024, 5, 2)},
    ])
    return db


def ids(db, table):
    """The keys left in ``table``."""
    return sorted(row[0] for row in db.rows(table))


def hold_on(table, where=""):
    """A policy hold on ``table`` (and a filter)."""
    return f"""\
holds:
  - id: big-payments
    reason: Disputed payments.
    store: app
    table: {table}
{where}"""


BIG = "    where: {column: amount, op: gt, value: 100}\n"


def test_a_hold_on_the_partitioned_parent_protects_rows_reached_in_its_partitions(db, rig):
    """Held payments (in two partitions) keep their customers and themselves; others go first."""
    payments(db)
    setup: Rig = rig(RULE.format(options=", on_children: delete") + hold_on("payments", BIG))
    rule = setup.rule("customers-delete")

    plan = setup.engine.plan(rule, as_of=AS_OF)
    report = setup.run("customers-delete")

    assert (4, 2) == (plan.census.eligible, plan.census.blocked)
    assert ([1, 4, 7], [1, 4, 6]) == (ids(db, "customers"), ids(db, "payments"))
    assert (4, 3) == (report.acted, report.reached)


def test_a_hold_on_one_partition_protects_that_partition_only(db, rig):
    """A hold on the January partition keeps customer 1 and 2; February's payments go first."""
    payments(db)
    setup: Rig = rig(RULE.format(options=", on_children: delete") + hold_on("payments_2023_01"))

    setup.run("customers-delete")

    assert ([1, 2, 7], [1, 2, 6]) == (ids(db, "customers"), ids(db, "payments"))


def test_a_retain_on_the_partitioned_parent_blocks_its_parents(db, rig):
    """A minimum retention on ``payments`` keeps every payment younger than it, and its customer."""
    payments(db, on_delete="CASCADE")
    retain = """\
retain:
  - id: payments-3-years
    reason: Bookkeeping law.
    store: app
    table: payments
    column: paid_at
    for: 38 months
"""
    setup: Rig = rig(RULE.format(options="") + retain)

    plan = setup.engine.plan(setup.rule("customers-delete"), as_of=AS_OF)
    setup.run("customers-delete")

    assert 3 == plan.census.blocked  # payments since 2023-01-15 keep customers 3, 4 and 5
    assert ([3, 4, 5, 7], [3, 4, 5, 6]) == (ids(db, "customers"), ids(db, "payments"))


def test_audit_records_name_the_logical_table_not_the_partition(db, rig):
    """Payments deleted with their customers are recorded under ``payments``."""
    payments(db, on_delete="CASCADE")
    setup: Rig = rig(RULE.format(options=""))

    setup.run("customers-delete")

    assert {"payments (cascade)": [1, 2, 3, 4, 5]} == setup.reached("customers-delete")


def test_a_partition_without_its_siblings_foreign_key_keeps_the_parents_it_would_orphan(db, rig):
    """Rows of the partition lacking the key block their customers; validate warns of it."""
    payments(db, on_delete="CASCADE", without_fk=("payments_2023_02",))
    setup: Rig = rig(RULE.format(options=""))

    problems = [str(p) for p in schema_warnings(setup.engine.policies, setup.engine.stores)]
    plan = setup.engine.plan(setup.rule("customers-delete"), as_of=AS_OF)
    setup.run("customers-delete")

    assert any("payments_2023_02" in p and "foreign key" in p for p in problems), problems
    assert 2 == plan.census.blocked
    assert ([3, 4, 7], [3, 4, 6]) == (ids(db, "customers"), ids(db, "payments"))


def test_explain_on_the_partitioned_table_finds_the_rows_deleted_through_it(db, rig):
    """A payment that went with its customer has its audit record, found under ``payments``."""
    payments(db, on_delete="CASCADE")
    setup: Rig = rig(RULE.format(options=""))
    setup.run("customers-delete")

    found = explain(setup.engine, store="app", table="payments", key=(3, at(2023, 2, 5)),
                    as_of=AS_OF, ledger=setup.ledger)

    assert ["reached through a foreign key from customers (cascade)"] == [
        m.how for m in found.mentions]


def test_explain_says_which_rule_reaches_a_table_without_rules_and_what_protects_it(db, rig):
    """``payments`` has no rule of its own: explain names the rule on customers and the hold."""
    payments(db)
    setup: Rig = rig(RULE.format(options=", on_children: delete") + hold_on("payments", BIG))

    found = explain(setup.engine, store="app", table="payments", key=(1, at(2023, 1, 5)),
                    as_of=AS_OF)

    assert [("customers-delete", "customers", ("delete first",), ("big-payments",))] == [
        (r.rule, r.table, r.ways, r.protected_by) for r in found.reached_by]


def test_a_hold_placed_at_run_time_on_the_partitioned_parent_protects_its_rows(db, rig, state):
    """``hold add`` on ``payments`` (amount > 100) keeps customers 1 and 4 and their payments."""
    payments(db)
    setup: Rig = rig(RULE.format(options=", on_children: delete"))
    request = HoldRequest(reason="Disputed payments.", by="counsel", store="app",
                          table="payments", where=(parse_term("amount>100"),))
    LegalHolds(state, setup.ledger).place(request, policies=setup.engine.policies,
                                          stores=setup.engine.stores, now=AS_OF)
    engine = Engine(setup.engine.policies, setup.engine.stores, ROOMY,
                    (StateHolds(state, setup.engine.policies, setup.engine.stores),))
    held = Rig(engine, setup.ledger, state=state)

    plan = engine.plan(held.rule("customers-delete"), as_of=AS_OF)
    held.run("customers-delete")

    assert (4, 2) == (plan.census.eligible, plan.census.blocked)
    assert ([1, 4, 7], [1, 4, 6]) == (ids(db, "customers"), ids(db, "payments"))


def test_a_rule_on_the_partitioned_table_honours_a_hold_on_one_partition(db, rig):
    """Deleting old payments: January's partition is held; the plan names the hold and why."""
    payments(db, on_delete="CASCADE")
    rule = RULE.format(options="").replace("customers-delete", "payments-delete").replace(
        "table: customers", "table: payments").replace("column: left_at", "column: paid_at")
    setup: Rig = rig(rule + hold_on("payments_2023_01"))

    plan = setup.engine.plan(setup.rule("payments-delete"), as_of=AS_OF)
    setup.run("payments-delete")

    assert [("hold", "big-payments", "Disputed payments.", 2)] == [
        (g.kind, g.id, g.reason, g.rows) for g in plan.guards]
    assert [1, 2] == ids(db, "payments")
