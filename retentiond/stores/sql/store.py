"""SQL stores: SQLite, PostgreSQL (psycopg 3) and MariaDB/MySQL (PyMySQL) through SQLAlchemy Core.

A :class:`Selection` becomes one statement with bound parameters, built against a table
reflected from the live database: identifiers only ever come from that reflection.

Read-only, as far as each database allows it:

- SQLite readers open the file with ``mode=ro``; nothing, not even SQL, can write through them.
  The write engine opens it with ``mode=rw``, so a mistyped path is an error, never a new,
  empty database.
- PostgreSQL and MariaDB readers run in a ``READ ONLY`` ``REPEATABLE READ`` transaction that
  is always rolled back.  That refuses INSERT, UPDATE and DELETE, but a statement that ends the
  transaction (``COMMIT``; on MariaDB any DDL, which commits implicitly) escapes it: only a
  role without write privileges (``plan_url``) is a guarantee.  Readers issue nothing but
  SELECT.

Every engine hides bound parameters (``hide_parameters=True``), so row values never reach an
exception or a log, and no SQLAlchemy exception leaves a public method: each becomes a
:class:`StoreError` carrying the driver's first line, with the password masked.
"""


from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from retentiond.errors import StoreError
from retentiond.stores.base import Capability, Key, Partitions, QuarantineBatch, Store, TableSchema
from retentiond.stores.sql._common import FAMILIES, READ_ONLY_BEGIN, Family
from retentiond.stores.sql.bookkeeping import Bookkeeping
from retentiond.stores.sql.caches import ReflectionCache, SelectionCache
from retentiond.stores.sql.engines import Engines
from retentiond.stores.sql.quarantine import Shelves
from retentiond.stores.sql.read import SqlReader
from retentiond.stores.sql.session import StoreParts
from retentiond.stores.sql.write import SqlWriter

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from retentiond.stores.sql.settings import SqlStoreSettings

class SqlStore(Store):
    """A relational database reached through one SQLAlchemy URL (and an optional plan URL).

    Engines are created on first use.  Reflected tables are cached per instance until
    :meth:`forget` is called.  The work is done by the parts it is made of: ``engines``
    (connections and error triage), the reflection and selection caches, the bookkeeping
    tables and the quarantine shelves; readers and writers are given the parts they use.
    """

    kind: ClassVar[str] = "sql"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)

    def __init__(self, name: str, settings: SqlStoreSettings) -> None:
        self.name = name
        self.settings = settings
        backend = make_url(settings.url).get_backend_name()
        family = FAMILIES.get(backend)
        if family is None:
            raise StoreError(
                name,
                f"unsupported database {backend!r}",
                f"use a sqlite://, postgresql+psycopg:// or mysql+pymysql:// URL in "
                f"stores.{name}.url",
            )
        if family == "sqlite" and (settings.password_file or settings.password_credential):
            raise StoreError(
                name,
                "a SQLite database takes no password",
                f"remove password_file and password_credential from stores.{name}",
            )
        self._family: Family = family
        self.engines = Engines(name, settings, family)
        self._reflections = ReflectionCache(family, self.engines.errors)
        self._selections = SelectionCache()
        self._bookkeeping = Bookkeeping(self.engines, self._reflections)
        self._shelves = Shelves(self.engines, self._reflections, self._bookkeeping)
        self._parts = StoreParts(name=name, family=family, errors=self.engines.errors,
                                 reflections=self._reflections, selections=self._selections,
                                 bookkeeping=self._bookkeeping)

    @property
    def dialect_name(self) -> Family:
        """``sqlite``, ``postgresql`` or ``mysql`` (which includes MariaDB)."""
        return self._family

    @property
    def engine(self) -> Engine:
        """The write engine (``settings.url``), created on first use."""
        return self.engines.for_writes()

    def ping(self) -> None:
        """Connect (and to the plan URL too, when set); raise StoreUnavailable on failure."""
        self.engines.ping()

    def schema(self, table: str) -> TableSchema | None:
        """The reflected table (``table`` or ``schema.table``), or None when it does not exist."""
        cached = self._reflections.cached(table)
        if cached is not None:
            return cached.schema
        with self.engines.connect(self.engine, plan=False) as connection:
            reflected = self._reflections.reflected(connection, table)
        return reflected.schema if reflected is not None else None

    def table_names(self, schema: str | None = None) -> tuple[str, ...]:
        """The tables (of ``schema``) as the database spells them."""
        with (self.engines.connect(self.engine, plan=False) as connection,
              self.engines.errors("cannot list the tables")):
            return tuple(sorted(sa.inspect(connection).get_table_names(schema=schema)))

    def forget(self, table: str | None = None) -> None:
        """Drop cached reflections: of ``table`` (and every foreign key and partition), or all."""
        self._selections.forget()
        self._bookkeeping.forget(table)  # which done tables exist, and quarantine tables
        self._reflections.forget(table)

    def partitions(self) -> Partitions:
        """How the database's partitioned tables nest, read once until :meth:`forget`."""
        cached = self._reflections.cached_partitions()
        if cached is not None:
            return cached
        with self.engines.connect(self.engine, plan=False) as connection:
            return self._reflections.partitions(connection)

    @contextmanager
    def reader(self) -> Iterator[SqlReader]:
        """A read-only, consistent transaction (on the plan URL when set), always rolled back."""
        errors = self.engines.errors
        connection = self.engines.connect(self.engines.for_reads(), plan=True)
        try:
            with errors("cannot start a read-only transaction"):
                for statement in READ_ONLY_BEGIN[self._family]:
                    connection.exec_driver_sql(statement)
            yield SqlReader(self._parts, connection)
        finally:
            try:
                with errors("cannot end the read-only transaction"):
                    connection.rollback()
            finally:
                connection.close()

    @contextmanager
    def writer(self) -> Iterator[SqlWriter]:
        """One write transaction: committed when the block ends, rolled back on any error.

        SQLite takes the database write lock up front (BEGIN IMMEDIATE); MariaDB runs READ
        COMMITTED so claiming rows takes no gap locks that would block inserts.
        """
        errors = self.engines.errors
        connection = self.engines.connect(self.engine, plan=False)
        try:
            with errors("cannot start a write transaction"):
                if self._family == "mysql":
                    connection = connection.execution_options(isolation_level="READ COMMITTED")
                if self._family == "sqlite":
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield SqlWriter(self._parts, connection)
            with errors("cannot commit the batch"):
                connection.commit()
        except BaseException:
            with errors("cannot roll back the batch"):
                connection.rollback()
            raise
        finally:
            connection.close()

    def prepare(self, *, quarantine_of: Sequence[str] = (), done_of: Sequence[str] = ()) -> None:
        """Create, where missing, the marker table and the tables the actions need."""
        self._bookkeeping.prepare(quarantine_of=quarantine_of, done_of=done_of)

    def find_mark(self, batch_id: str) -> str | None:
        """Settle a batch for good: its marker's payload if it committed, None if it never will.

        See :meth:`Bookkeeping.find_mark`: a void marker settles a batch found unmarked.
        """
        return self._bookkeeping.find_mark(batch_id)

    def quarantined(self, table: str | None = None) -> list[QuarantineBatch]:
        """Every batch in quarantine (of ``table``, or of every table), oldest first."""
        return self._shelves.batches(table)

    def quarantined_keys(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """The primary keys of a quarantined batch's rows, in key order; nothing is moved."""
        return self._shelves.keys(batch)

    def restore(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """Put a quarantined batch back into its table, exactly as it was, in one transaction."""
        return self._shelves.restore(batch)

    def purge(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """Delete a quarantined batch for good."""
        return self._shelves.purge(batch)

    def close(self) -> None:
        """Dispose of both engines and their pooled connections."""
        self.engines.close()
