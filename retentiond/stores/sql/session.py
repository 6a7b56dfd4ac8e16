"""What a reader and a writer share: one connection, its store's parts, compiled selections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from retentiond.errors import StoreError
from retentiond.stores.sql.compile import Compiled, SelectionCompiler

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from retentiond.stores.base import Selection
    from retentiond.stores.sql._common import Family
    from retentiond.stores.sql.bookkeeping import Bookkeeping
    from retentiond.stores.sql.caches import ReflectionCache, SelectionCache
    from retentiond.stores.sql.engines import Triage
    from retentiond.stores.sql.reflect import Reflected


@dataclass(frozen=True)
class StoreParts:
    """What a store gives each of its transactions: what they need of it, and nothing else."""

    name: str
    """The store's name, for its errors."""
    family: Family
    errors: Triage
    """The store's error triage: a block in which SQLAlchemy's exceptions become StoreErrors."""
    reflections: ReflectionCache
    selections: SelectionCache
    bookkeeping: Bookkeeping
    """The marker, done and quarantine tables."""


class Session:
    """One transaction's connection on a store; ``connection`` is exposed for diagnostics."""

    def __init__(self, parts: StoreParts, connection: Connection) -> None:
        self._parts = parts
        self.connection = connection
        self._compiled: tuple[Selection, Compiled] | None = None

    def table(self, table: str) -> Reflected:
        """The reflected table; StoreError when it does not exist (any more)."""
        reflected = self._parts.reflections.reflected(self.connection, table)
        if reflected is None:
            raise StoreError(
                self._parts.name,
                f"table {table!r} does not exist",
                "check the rule's table (retentiond validate)",
            )
        return reflected

    def compiler(self, table: str) -> SelectionCompiler:
        """A compiler for ``table`` that can follow foreign keys to the store's other tables."""
        return SelectionCompiler(
            self._parts.name, self.table(table), family=self._parts.family, lookup=self.table,
            done=lambda: self._parts.bookkeeping.existing_done_tables(self.connection))

    def compile(self, selection: Selection) -> Compiled:
        """The selection as expressions over its table (compiled once per transaction)."""
        if self._compiled is not None and self._compiled[0] is selection:
            return self._compiled[1]
        compiled = self._parts.selections.remembered(selection)
        if compiled is None:
            compiled = self.compiler(selection.table).selection(selection)
            self._parts.selections.remember(selection, compiled)
        self._compiled = (selection, compiled)
        return compiled

    def primary_key(self, compiled: Compiled, table: str) -> list[sa.Column[Any]]:
        """The primary key columns; StoreError for a table without one."""
        if not compiled.schema.primary_key:
            raise StoreError(
                self._parts.name,
                f"table {table!r} has no primary key, so its rows cannot be walked in batches",
                "add a primary key to the table",
            )
        return [compiled.table.c[c] for c in compiled.schema.primary_key]

