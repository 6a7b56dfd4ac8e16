"""Following a path of columns through foreign keys: an invoice line to its invoice's customer.

A path is written as column names: each but the last is a one-column foreign key of the table
reached so far (``invoice_lines.invoice_id`` -> ``invoices``), and the last is a column of the
table the keys lead to (``invoices.customer_id``).  A path of one column stays in the table.
Only keys the database declares are followed, so a path is as real as the schema's keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from retentiond.stores.base import ForeignKey, TableSchema

Lookup = Callable[[str], TableSchema | None]
"""A table of the same store by name, or None when it does not exist."""


class PathError(ValueError):
    """A path that the live schema does not have; the message says which step and why."""


@dataclass(frozen=True)
class Followed:
    """Where a path leads: the keys on the way, the table it ends in, and its last column."""

    keys: tuple[ForeignKey, ...]
    table: TableSchema
    column: str

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables the path passes through after its first, in order."""
        return tuple(fk.ref_table for fk in self.keys)


def follow_from(lookup: Lookup, table: str, path: Sequence[str]) -> Followed:
    """Follow ``path`` from the table named ``table``; PathError when it cannot be read."""
    start = lookup(table)
    if start is None:
        raise PathError(f"table {table!r} does not exist")
    return follow(lookup, start, path)


def follow(lookup: Lookup, start: TableSchema, path: Sequence[str]) -> Followed:
    """Follow ``path`` from ``start``; PathError names the first step that is not there."""
    if not path:
        raise PathError("the path names no column")
    table = start
    keys: list[ForeignKey] = []
    for column in path[:-1]:
        if column not in table.columns:
            raise PathError(f"column {column!r} does not exist in table {table.name!r}")
        key = _key_on(table, column)
        parent = lookup(key.ref_table)
        if parent is None:
            raise PathError(f"{table.name}.{column} references {key.ref_table!r}, which "
                            "cannot be read")
        keys.append(key)
        table = parent
    last = path[-1]
    if last not in table.columns:
        via = f" (reached through {' -> '.join(path[:-1])})" if len(path) > 1 else ""
        raise PathError(f"column {last!r} does not exist in table {table.name!r}{via}")
    return Followed(tuple(keys), table, last)


def _key_on(table: TableSchema, column: str) -> ForeignKey:
    own = [fk for fk in table.references if fk.columns == (column,)]
    if len(own) == 1:
        return own[0]
    if len(own) > 1:
        targets = ", ".join(sorted(fk.ref_table for fk in own))
        raise PathError(f"column {table.name}.{column} is a foreign key to several tables "
                        f"({targets}), so the path is ambiguous")
    composite = [fk for fk in table.references if column in fk.columns]
    if composite:
        fk = composite[0]
        raise PathError(f"column {table.name}.{column} is part of the foreign key "
                        f"({', '.join(fk.columns)}) -> {fk.ref_table}; paths follow "
                        "one-column foreign keys only")
    declared = ", ".join(f"{fk.columns[0]} -> {fk.ref_table}" for fk in table.references
                         if len(fk.columns) == 1)
    raise PathError(f"column {table.name}.{column} is no foreign key, so the path cannot "
                    f"follow it (foreign keys of {table.name}: {declared or 'none'})")
