"""Partitioned tables: which partitions make up each logical table, and whose keys they carry.

PostgreSQL's declarative partitions are tables of their own in the catalog, and sample schemas
often declare foreign keys on each partition rather than on the partitioned table.  To the
policy a partitioned table is one table: its partitions' keys become the logical table's keys,
so a removal reaches (and a hold protects) rows in whichever partition they sit.  A key some
partitions lack while their siblings have it is kept as an *unenforced* key of those
partitions: deleting a parent would orphan their rows, so such rows block it.

MariaDB refuses foreign keys on partitioned tables, and its partitions are not tables of their
own; SQLite has none.  Both report no partitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

import sqlalchemy as sa

from retentiond.stores.base import ForeignKey, OnDelete, Partitions

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from retentiond.stores.sql._common import Family

_PARTITIONS = sa.text(
    "SELECT cn.nspname, c.relname, pn.nspname, p.relname, current_schema() "
    "FROM pg_catalog.pg_inherits i "
    "JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid "
    "JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace "
    "JOIN pg_catalog.pg_class p ON p.oid = i.inhparent "
    "JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace "
    "WHERE c.relispartition")


def read_partitions(connection: Connection, family: Family) -> Partitions:
    """Every partition of the database and the table it is a partition of."""
    if family != "postgresql":
        return Partitions()
    parents: dict[str, str] = {}
    for schema, name, parent_schema, parent, current in connection.execute(_PARTITIONS):
        parents[_named(schema, name, current)] = _named(parent_schema, parent, current)
    return Partitions(parents)


def _named(schema: str, name: str, current: str) -> str:
    """A table's name as the store names it: bare in the current schema, qualified elsewhere."""
    return name if schema == current else f"{schema}.{name}"


def logical_foreign_keys(
    keys: Iterable[ForeignKey], partitions: Partitions,
) -> tuple[ForeignKey, ...]:
    """The keys between logical tables: partitions' keys merged into their table's.

    Keys that the same columns of one logical table declare on several partitions become one
    key, limited (``within``) to the partitions that carry it when not all of them do; the
    partitions that carry none of them get an unenforced key of their own.
    """
    if not partitions.parents:
        return tuple(keys)
    groups: dict[tuple[str, tuple[str, ...], str, tuple[str, ...]], list[ForeignKey]] = {}
    for fk in keys:
        logical = (partitions.logical(fk.table), fk.columns,
                   partitions.logical(fk.ref_table), fk.ref_columns)
        groups.setdefault(logical, []).append(fk)
    merged: list[ForeignKey] = []
    for (table, columns, ref_table, ref_columns), members in groups.items():
        leaves = set(partitions.leaves(table))
        covered: dict[OnDelete, set[str]] = {}
        names: dict[OnDelete, str | None] = {}
        for fk in members:
            covered.setdefault(fk.on_delete, set()).update(
                partitions.leaves(fk.table) or {fk.table})
            names.setdefault(fk.on_delete, fk.name)
        base = ForeignKey(table, columns, ref_table, ref_columns, OnDelete.NO_ACTION)
        for on_delete, carriers in covered.items():
            within = () if not leaves or carriers >= leaves else tuple(sorted(carriers))
            merged.append(replace(base, on_delete=on_delete, name=names[on_delete],
                                  within=within))
        missing = leaves - set().union(*covered.values())
        if missing:
            merged.append(replace(base, within=tuple(sorted(missing)), enforced=False))
    return tuple(sorted(merged, key=lambda fk: (fk.table, fk.name or "", fk.columns,
                                                 fk.within)))
