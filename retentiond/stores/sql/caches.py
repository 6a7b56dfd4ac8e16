"""What a SQL store remembers between transactions, until told to forget it.

Reflected tables, the foreign keys of each schema and how partitioned tables nest are read once
from the live database; the last compiled selection is reused while each batch's selection
equals it.  Each cache is filled under its own lock; :meth:`forget` empties it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import sqlalchemy as sa

from retentiond.stores.sql._common import split_name
from retentiond.stores.sql.partitions import logical_foreign_keys, read_partitions
from retentiond.stores.sql.reflect import Reflected, reflect_table, schema_foreign_keys

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Inspector

    from retentiond.stores.base import ForeignKey, Partitions, Selection
    from retentiond.stores.sql._common import Family
    from retentiond.stores.sql.compile import Compiled
    from retentiond.stores.sql.engines import Triage


class ReflectionCache:
    """Tables reflected from the live database, with their schemas' foreign keys and partitions."""

    def __init__(self, family: Family, errors: Triage) -> None:
        self._family: Family = family
        self._errors = errors
        self._lock = threading.Lock()
        self._tables: dict[str, Reflected] = {}
        self._foreign_keys: dict[str | None, tuple[ForeignKey, ...]] = {}
        self._partitions: Partitions | None = None

    def cached(self, table: str) -> Reflected | None:
        """``table`` as reflected before, or None when it is not (or no longer) cached."""
        return self._tables.get(table)

    def cached_partitions(self) -> Partitions | None:
        """The partitions as read before, or None when they are not (or no longer) cached."""
        return self._partitions

    def reflected(self, connection: Connection, table: str) -> Reflected | None:
        """``table`` (or ``schema.table``) reflected once, or None when it does not exist."""
        cached = self._tables.get(table)
        if cached is not None:
            return cached
        with self._errors(f"cannot reflect table {table!r}"):
            schema, name = split_name(table)
            inspector = sa.inspect(connection)
            if not inspector.has_table(name, schema=schema) or (
                    # SQLite finds 'invoice' for a table 'Invoice', then cannot reflect it.
                    self._family == "sqlite"
                    and name not in inspector.get_table_names(schema=schema)):
                return None
            foreign_keys = self._schema_foreign_keys(connection, inspector, schema)
            reflected = reflect_table(connection, inspector, self._family, table, foreign_keys,
                                      logical=self.partitions(connection).logical(table))
        with self._lock:
            self._tables[table] = reflected
        return reflected

    def partitions(self, connection: Connection) -> Partitions:
        """How the database's partitioned tables nest, read once."""
        found = self._partitions
        if found is None:
            with self._errors("cannot read the partitions"):
                found = read_partitions(connection, self._family)
            with self._lock:
                self._partitions = found
        return found

    def forget(self, table: str | None = None) -> None:
        """Drop ``table`` (and every foreign key and the partitions), or everything."""
        with self._lock:
            self._partitions = None  # a partition attached or detached changes every key
            if table is None:
                self._tables.clear()
            else:
                self._tables.pop(table, None)
            self._foreign_keys.clear()

    def _schema_foreign_keys(
        self,
        connection: Connection,
        inspector: Inspector,
        schema: str | None,
    ) -> tuple[ForeignKey, ...]:
        cached = self._foreign_keys.get(schema)
        if cached is None:
            cached = logical_foreign_keys(
                schema_foreign_keys(connection, inspector, self._family, schema),
                self.partitions(connection))
            with self._lock:
                self._foreign_keys[schema] = cached
        return cached


class SelectionCache:
    """The selection compiled last, and what it compiled to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[Selection, Compiled] | None = None

    def remembered(self, selection: Selection) -> Compiled | None:
        """The compiled form of an equal selection compiled last, if any (see remember)."""
        with self._lock:
            last = self._last
        return last[1] if last is not None and last[0] == selection else None

    def remember(self, selection: Selection, compiled: Compiled) -> None:
        """Keep the last compiled selection, to be reused for an equal one.

        Each batch re-reads the holds; while they are unchanged its selection equals the
        last one.  Selections with pending checks are not kept: their SQL depends on whether
        the done table exists, which can change.
        """
        if not selection.pending:
            with self._lock:
                self._last = (selection, compiled)

    def forget(self) -> None:
        """Compile the next selection afresh."""
        with self._lock:
            self._last = None
