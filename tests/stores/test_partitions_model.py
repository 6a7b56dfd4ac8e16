"""How partitions nest: the logical table, the leaves that hold rows, and whose guards apply."""

from __future__ import annotations

from retentiond.stores.base import ForeignKey, OnDelete, Partitions
from retentiond.stores.sql.partitions import logical_foreign_keys

# events is partitioned by year; events_2024 again by region (two leaves); events_2023 is a
# leaf of its own.
NESTED = Partitions({"events_2023": "events", "events_2024": "events",
                     "events_2024_eu": "events_2024", "events_2024_us": "events_2024"})


def test_every_partition_belongs_to_the_outermost_table():
    """Leaves, middle partitions and the table itself all map to ``events``."""
    names = ["events", "events_2023", "events_2024", "events_2024_eu", "other"]

    assert ["events", "events", "events", "events", "other"] == [
        NESTED.logical(n) for n in names]


def test_leaves_are_the_partitions_that_hold_rows():
    """A partitioned table's rows sit in its deepest partitions; a leaf has none below it."""
    assert (("events_2023", "events_2024_eu", "events_2024_us"), ("events_2024_eu",
            "events_2024_us"), ()) == (NESTED.leaves("events"), NESTED.leaves("events_2024"),
                                       NESTED.leaves("events_2023"))


def test_guards_above_a_table_cover_all_of_it_and_guards_below_only_their_leaves():
    """Of ``events``: its own guards cover everything, a partition's guards its own leaves."""
    assert (("events", ()), ("events_2023", ("events_2023",)),
            ("events_2024", ("events_2024_eu", "events_2024_us")),
            ("events_2024_eu", ("events_2024_eu",)),
            ("events_2024_us", ("events_2024_us",))) == NESTED.scopes("events")


def test_a_partitions_scopes_are_its_ancestors_whole_and_itself():
    """A rule on ``events_2024``: guards on ``events`` and on itself cover all its rows."""
    assert (("events", ()), ("events_2024", ()),
            ("events_2024_eu", ("events_2024_eu",)),
            ("events_2024_us", ("events_2024_us",))) == NESTED.scopes("events_2024")


def test_an_unpartitioned_table_is_its_own_only_scope():
    """No partitions: a table's guards are its own, covering every row."""
    assert (("orders", ()),) == Partitions().scopes("orders")


def key(table, on_delete=OnDelete.CASCADE, name=None):
    """A key from ``table``.customer_id to customers.id."""
    return ForeignKey(table, ("customer_id",), "customers", ("id",), on_delete, name)


def test_keys_every_leaf_carries_become_one_key_of_the_logical_table():
    """Declared on each leaf (as sample schemas do): one key of ``events``, on every row."""
    keys = [key(leaf, name=f"fk_{leaf}") for leaf in NESTED.leaves("events")]

    assert (key("events", name="fk_events_2023"),) == logical_foreign_keys(keys, NESTED)


def test_a_leaf_without_the_key_gets_an_unenforced_key_of_its_own():
    """events_2023 lacks the key: the key covers the other leaves; events_2023 would orphan."""
    keys = [key("events_2024", name="fk_2024")]  # declared on the middle partition

    assert (ForeignKey("events", ("customer_id",), "customers", ("id",), OnDelete.NO_ACTION,
                       within=("events_2023",), enforced=False),
            ForeignKey("events", ("customer_id",), "customers", ("id",), OnDelete.CASCADE,
                       "fk_2024", within=("events_2024_eu", "events_2024_us")),
            ) == logical_foreign_keys(keys, NESTED)


def test_leaves_that_disagree_on_delete_keep_one_key_each():
    """CASCADE on one leaf and RESTRICT on the others: each applies to its own leaves."""
    keys = [key("events_2023"), key("events_2024_eu", OnDelete.RESTRICT),
            key("events_2024_us", OnDelete.RESTRICT)]

    found = {(fk.on_delete, fk.within, fk.enforced) for fk in logical_foreign_keys(keys, NESTED)}

    assert {(OnDelete.CASCADE, ("events_2023",), True),
            (OnDelete.RESTRICT, ("events_2024_eu", "events_2024_us"), True)} == found
