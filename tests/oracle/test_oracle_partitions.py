"""The oracle's partition semantics on the example of ``tests/enforce/test_partitions.py``.

Customers 1-6 are due, 7 is too young; payments are partitioned by month (January, February
and a default partition), the key to customers declared on each partition.
"""

from __future__ import annotations

from datetime import UTC, datetime

from retentiond.policy import oracle

AS_OF = datetime(2026, 3, 15, 12, tzinfo=UTC)
CUTOFF = oracle.moment_before(oracle.Span(months=12), AS_OF, "UTC")
PARTITIONING = oracle.Partitioning("paid_at", "range", (
    oracle.Partition("payments_2023_01", datetime(2023, 1, 1), datetime(2023, 2, 1)),  # noqa: DTZ001
    oracle.Partition("payments_2023_02", datetime(2023, 2, 1), datetime(2023, 3, 1)),  # noqa: DTZ001
    oracle.Partition("payments_default", default=True)))
LEAVES = ("payments_2023_01", "payments_2023_02", "payments_default")


def at(year: int, month: int, day: int) -> datetime:
    """A naive time, as stored."""
    return datetime(year, month, day)  # noqa: DTZ001


TABLES = {
    "customers": [{"id": n, "left_at": at(2024, 1, n) if n <= 6 else at(2026, 3, 1)}
                  for n in range(1, 8)],
    "payments": [{"id": n, "customer_id": c, "amount": a, "paid_at": p} for n, c, a, p in (
        (1, 1, 500, at(2023, 1, 5)), (2, 2, 20, at(2023, 1, 6)), (3, 3, 30, at(2023, 2, 5)),
        (4, 4, 700, at(2023, 2, 6)), (5, 5, 50, at(2024, 5, 1)), (6, 7, 60, at(2024, 5, 2)))],
}


def schema(on_delete: oracle.OnDeleteName, declared_on: tuple[str, ...] = LEAVES
           ) -> oracle.Schema:
    """Customers and the partitioned payments, the key declared on ``declared_on``."""
    return oracle.Schema(
        (oracle.Table("customers", ("id", "left_at"), ("id",)),
         oracle.Table("payments", ("id", "customer_id", "amount", "paid_at"), ("id", "paid_at"),
                      PARTITIONING)),
        tuple(oracle.Reference(place, ("customer_id",), "customers", ("id",), on_delete)
              for place in declared_on))


def decide(shape: oracle.Schema, guards: oracle.Guards | None = None, *,
           delete_children: bool = False) -> oracle.Decision:
    """The rule deleting customers 12 months after they left."""
    decree = oracle.Decree("customers", "left_at", CUTOFF, delete_children=delete_children)
    return oracle.decide(shape, TABLES, decree, guards or oracle.Guards())


def test_rows_are_routed_to_the_partition_whose_range_holds_them():
    """January, February, and the default partition for the rest."""
    table = schema("cascade").table("payments")

    assert [table.places(row)[-1] for row in TABLES["payments"]] == [
        "payments_2023_01", "payments_2023_01", "payments_2023_02", "payments_2023_02",
        "payments_default", "payments_default"]


def test_a_hold_on_one_partition_protects_that_partition_only():
    """Payments held in January keep customers 1 and 2; the rest go with theirs."""
    guards = oracle.Guards(holds=(oracle.Hold("h", "payments_2023_01"),))

    decision = decide(schema("cascade"), guards)

    assert ((3,), (4,), (5,), (6,)) == decision.eligible
    assert {(3, at(2023, 2, 5)), (4, at(2023, 2, 6)), (5, at(2024, 5, 1))} == set(
        decision.reach.deleted_keys("payments"))


def test_a_leaf_lacking_the_key_blocks_the_parents_its_rows_reference():
    """February lacks the key: customers 3 and 4 are blocked, whatever the action."""
    without = tuple(p for p in LEAVES if p != "payments_2023_02")

    for delete_children in (False, True):
        decision = decide(schema("cascade", without), delete_children=delete_children)
        assert ((1,), (2,), (5,), (6,)) == decision.eligible
        assert 2 == decision.counts.blocked


def test_siblings_with_different_on_delete_each_apply_their_own():
    """January restricts, the others cascade: only customers 1 and 2 are blocked."""
    references = (
        oracle.Reference("payments_2023_01", ("customer_id",), "customers", ("id",), "restrict"),
        *(oracle.Reference(p, ("customer_id",), "customers", ("id",), "cascade")
          for p in LEAVES[1:]))
    shape = oracle.Schema(schema("cascade").tables, references)

    decision = decide(shape)

    assert ((3,), (4,), (5,), (6,)) == decision.eligible
