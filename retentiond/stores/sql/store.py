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

import threading
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, ClassVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url

from retentiond.errors import StoreError
from retentiond.stores.base import (
    Capability,
    Key,
    Partitions,
    QuarantineBatch,
    Selection,
    Store,
    TableSchema,
)
from retentiond.stores.sql import quarantine
from retentiond.stores.sql._common import FAMILIES, READ_ONLY_BEGIN, Family
from retentiond.stores.sql.caches import ReflectionCache, SelectionCache
from retentiond.stores.sql.engines import Engines
from retentiond.stores.sql.keeping import (
    VOID,
    DoneTables,
    compress_payloads_with_lz4,
    done_bits_table,
    done_table,
    marker_table,
    quarantine_index,
    quarantine_name,
    quarantine_table,
    records_bits,
)
from retentiond.stores.sql.read import SqlReader
from retentiond.stores.sql.reflect import Reflected
from retentiond.stores.sql.write import SqlWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from retentiond.settings import StoreSettings
    from retentiond.stores.sql.compile import Compiled

class SqlStore(Store):
    """A relational database reached through one SQLAlchemy URL (and an optional plan URL).

    Engines are created on first use.  Reflected tables are cached per instance until
    :meth:`forget` is called.
    """

    kind: ClassVar[str] = "sql"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)

    def __init__(self, name: str, settings: StoreSettings) -> None:
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
        self._lock = threading.Lock()
        self._reflections = ReflectionCache(family, self.engines.errors)
        self._selections = SelectionCache()
        self._done_found: DoneTables | None = None
        self._markers: sa.Table | None = None
        self._done: sa.Table | None = None
        self._done_bits: sa.Table | None = None
        self._shelves: dict[str, sa.Table] = {}

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
            reflected = self._reflected(connection, table)
        return reflected.schema if reflected is not None else None

    def forget(self, table: str | None = None) -> None:
        """Drop cached reflections: of ``table`` (and every foreign key and partition), or all."""
        self._selections.forget()
        with self._lock:
            self._done_found = None  # and which done tables exist
            if table is None:
                self._shelves.clear()
            else:
                self._shelves.pop(table, None)  # its columns follow the source table's
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
        connection = self.engines.connect(self.engines.for_reads(), plan=True)
        try:
            with self._errors("cannot start a read-only transaction"):
                for statement in READ_ONLY_BEGIN[self._family]:
                    connection.exec_driver_sql(statement)
            yield SqlReader(self, connection)
        finally:
            try:
                with self._errors("cannot end the read-only transaction"):
                    connection.rollback()
            finally:
                connection.close()

    @contextmanager
    def writer(self) -> Iterator[SqlWriter]:
        """One write transaction: committed when the block ends, rolled back on any error.

        SQLite takes the database write lock up front (BEGIN IMMEDIATE); MariaDB runs READ
        COMMITTED so claiming rows takes no gap locks that would block inserts.
        """
        connection = self.engines.connect(self.engine, plan=False)
        try:
            with self._errors("cannot start a write transaction"):
                if self._family == "mysql":
                    connection = connection.execution_options(isolation_level="READ COMMITTED")
                if self._family == "sqlite":
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield SqlWriter(self, connection)
            with self._errors("cannot commit the batch"):
                connection.commit()
        except BaseException:
            with self._errors("cannot roll back the batch"):
                connection.rollback()
            raise
        finally:
            connection.close()

    def prepare(self, *, quarantine_of: Sequence[str] = (), done_of: Sequence[str] = ()) -> None:
        """Create, where missing, the marker table and the tables the actions need."""
        with self._errors("cannot create retentiond's tables"), self.engine.begin() as connection:
            markers = self.marker_table()
            if not sa.inspect(connection).has_table(markers.name, schema=markers.schema):
                markers.create(connection)
                if self.dialect_name == "postgresql":
                    compress_payloads_with_lz4(connection, markers)
            for table in done_of:
                reflected = self._reflected(connection, table)
                bits = reflected is not None and records_bits(reflected.schema)
                (self.done_bits_table() if bits else self.done_table()).create(
                    connection, checkfirst=True)
            for table in quarantine_of:
                shelf = self.quarantine_table(connection, table)
                if not sa.inspect(connection).has_table(shelf.name, schema=shelf.schema):
                    shelf.create(connection)
                    quarantine_index(shelf, self.dialect_name).create(connection)
        if done_of:
            self._done_found = None  # looked up again, now that they exist

    def find_mark(self, batch_id: str) -> str | None:
        """Settle a batch for good: its marker's payload if it committed, None if it never will.

        No marker yet does not prove the batch failed: its COMMIT may still be under way (the
        client died, the server carries on).  So a void marker is inserted under the same id:
        that insert waits for a transaction still holding the id, then either hits the real
        marker (the batch committed) or takes the id (the batch can never commit).  When the
        wait outlasts the lock timeout, StoreUnavailable says: ask again later.
        """
        markers = self.marker_table()
        with self._errors("cannot settle the batch marker"), self.engine.connect() as connection:
            if not sa.inspect(connection).has_table(markers.name, schema=markers.schema):
                return None
            found = connection.execute(sa.select(markers.c.payload)
                                       .where(markers.c.batch_id == batch_id)).scalar()
            connection.rollback()  # end the read; the void marker gets a transaction of its own
            if found is None:
                try:
                    with connection.begin():
                        connection.execute(sa.insert(markers).values(
                            batch_id=batch_id, run_id="-", rule="-", payload=VOID))
                except sa_exc.IntegrityError:
                    found = connection.execute(sa.select(markers.c.payload)
                                               .where(markers.c.batch_id == batch_id)).scalar()
        if found is None or str(found) == VOID:
            return None
        return str(found)

    def remembered(self, selection: Selection) -> Compiled | None:
        """The compiled form of an equal selection compiled last, if any (see remember)."""
        return self._selections.remembered(selection)

    def remember(self, selection: Selection, compiled: Compiled) -> None:
        """Keep the last compiled selection, to be reused for an equal one (see SelectionCache)."""
        self._selections.remember(selection, compiled)

    # Built once per store: a new Table object per batch would make every statement miss
    # SQLAlchemy's compiled cache, which then keeps each batch's statement and its values.

    def marker_table(self) -> sa.Table:
        """The batch-marker table of this store."""
        if self._markers is None:
            self._markers = marker_table(self.settings.marker_table)
        return self._markers

    def done_table(self) -> sa.Table:
        """The table of keys pseudonymize rules have rewritten in this store."""
        if self._done is None:
            self._done = done_table(self.settings.done_table)
        return self._done

    def done_bits_table(self) -> sa.Table:
        """The table of one-column integer keys pseudonymize rules have rewritten, as bits."""
        if self._done_bits is None:
            self._done_bits = done_bits_table(self.settings.done_bits_table)
        return self._done_bits

    def existing_done_tables(self, connection: Connection) -> DoneTables:
        """The tables of pseudonymized keys that exist, looked up once.

        Absent stays absent until :meth:`prepare` creates one: the records a rule's claims
        look for are its own, made after its run prepared their table (or, for integer keys
        recorded as text by an earlier version, before this process started).
        """
        if self._done_found is None:
            with self._errors("cannot look for the pseudonymized keys"):
                inspector = sa.inspect(connection)
                self._done_found = DoneTables(
                    keys=self.done_table() if inspector.has_table(self.settings.done_table)
                    else None,
                    bits=self.done_bits_table()
                    if inspector.has_table(self.settings.done_bits_table) else None)
        return self._done_found

    def quarantine_table(self, connection: Connection, table: str) -> sa.Table:
        """The quarantine table of ``table`` (described, not created)."""
        cached = self._shelves.get(table)
        if cached is not None:
            return cached
        source = self._reflected(connection, table)
        if source is None:
            raise StoreError(self.name, f"table {table!r} does not exist")
        shelf = quarantine_table(source, quarantine_name(self.settings.quarantine_prefix, table))
        self._shelves[table] = shelf
        return shelf

    def quarantined(self, table: str | None = None) -> list[QuarantineBatch]:
        """Every batch in quarantine (of ``table``, or of every table), oldest first."""
        with self._errors("cannot list quarantine"), self.engine.connect() as connection:
            return quarantine.batches(connection, self.settings.quarantine_prefix, table)

    def restore(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """Put a quarantined batch back into its table, exactly as it was, in one transaction."""
        return self._on_shelf(batch, "restore", quarantine.restore)

    def purge(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """Delete a quarantined batch for good."""
        return self._on_shelf(batch, "purge", quarantine.purge)

    def _on_shelf(self, batch: QuarantineBatch, doing: str,
                  operation: Callable[[Connection, Reflected, sa.Table, QuarantineBatch],
                                      tuple[Key, ...]],
                  ) -> tuple[Key, ...]:
        with self._errors(f"cannot {doing} batch {batch.batch_id}"), \
                self.engine.begin() as conn:
            source = self._reflected(conn, batch.table)
            if source is None:
                raise StoreError(self.name, f"table {batch.table!r} no longer exists")
            keys = operation(conn, source, self.quarantine_table(conn, batch.table), batch)
            if len(keys) != batch.rows:  # exactly what was listed, or nothing (rolled back)
                raise StoreError(self.name, f"batch {batch.batch_id} holds {len(keys)} rows, "
                                 f"not the {batch.rows} listed; nothing was done",
                                 "list the batches again")
            return keys

    def close(self) -> None:
        """Dispose of both engines and their pooled connections."""
        self.engines.close()

    def _errors(self, doing: str) -> AbstractContextManager[None]:
        """Turn any SQLAlchemy exception into a StoreError (see :meth:`Engines.errors`)."""
        return self.engines.errors(doing)

    # -- reflection ----------------------------------------------------------------------------

    def _reflected(self, connection: Connection, table: str) -> Reflected | None:
        return self._reflections.reflected(connection, table)
