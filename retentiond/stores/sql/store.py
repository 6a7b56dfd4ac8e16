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

import math
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, Inspector, make_url

from retentiond.errors import StoreError, StoreUnavailable
from retentiond.settings import masked_url
from retentiond.stores.base import (
    Capability,
    ForeignKey,
    Key,
    Partitions,
    QuarantineBatch,
    Selection,
    Store,
    TableSchema,
)
from retentiond.stores.sql import quarantine
from retentiond.stores.sql._common import (
    DEFAULT_DRIVERS,
    FAMILIES,
    READ_ONLY_BEGIN,
    Family,
    error_code,
    first_line,
    is_transient,
    split_name,
)
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
from retentiond.stores.sql.partitions import logical_foreign_keys, read_partitions
from retentiond.stores.sql.read import SqlReader
from retentiond.stores.sql.reflect import Reflected, reflect_table, schema_foreign_keys
from retentiond.stores.sql.write import SqlWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from retentiond.stores.sql.compile import Compiled
    from retentiond.stores.sql.settings import SqlStoreSettings

class SqlStore(Store):
    """A relational database reached through one SQLAlchemy URL (and an optional plan URL).

    Engines are created on first use.  Reflected tables are cached per instance until
    :meth:`forget` is called.
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
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._read_engine: Engine | None = None
        self._tables: dict[str, Reflected] = {}
        self._foreign_keys: dict[str | None, tuple[ForeignKey, ...]] = {}
        self._partitions: Partitions | None = None
        self._done_found: DoneTables | None = None
        self._markers: sa.Table | None = None
        self._done: sa.Table | None = None
        self._done_bits: sa.Table | None = None
        self._shelves: dict[str, sa.Table] = {}
        self._last_compiled: tuple[Selection, Compiled] | None = None

    @property
    def dialect_name(self) -> Family:
        """``sqlite``, ``postgresql`` or ``mysql`` (which includes MariaDB)."""
        return self._family

    @property
    def engine(self) -> Engine:
        """The write engine (``settings.url``), created on first use."""
        with self._lock:
            if self._engine is None:
                self._engine = self._make_engine(read_only=False)
            return self._engine

    def ping(self) -> None:
        """Connect (and to the plan URL too, when set); raise StoreUnavailable on failure."""
        engines = [(self.engine, False)]
        if self.settings.plan_url is not None:
            engines.append((self._reader_engine(), True))
        probe = "SELECT count(*) FROM sqlite_master" if self._family == "sqlite" else "SELECT 1"
        for engine, plan in engines:
            with self._connect(engine, plan=plan) as connection:
                try:
                    connection.exec_driver_sql(probe).all()
                except sa_exc.DBAPIError as exc:
                    raise self._unavailable(exc, plan=plan) from None

    def schema(self, table: str) -> TableSchema | None:
        """The reflected table (``table`` or ``schema.table``), or None when it does not exist."""
        cached = self._tables.get(table)
        if cached is not None:
            return cached.schema
        with self._connect(self.engine, plan=False) as connection:
            reflected = self._reflected(connection, table)
        return reflected.schema if reflected is not None else None

    def forget(self, table: str | None = None) -> None:
        """Drop cached reflections: of ``table`` (and every foreign key and partition), or all."""
        with self._lock:
            self._last_compiled = None
            self._done_found = None  # and which done tables exist
            self._partitions = None  # a partition attached or detached changes every key
            if table is None:
                self._tables.clear()
                self._foreign_keys.clear()
                self._shelves.clear()
                return
            self._tables.pop(table, None)
            self._shelves.pop(table, None)  # its columns follow the source table's
            self._foreign_keys.clear()

    def partitions(self) -> Partitions:
        """How the database's partitioned tables nest, read once until :meth:`forget`."""
        if self._partitions is not None:
            return self._partitions
        with self._connect(self.engine, plan=False) as connection:
            return self._partitions_of(connection)

    def _partitions_of(self, connection: Connection) -> Partitions:
        found = self._partitions
        if found is None:
            with self._errors("cannot read the partitions"):
                found = read_partitions(connection, self._family)
            with self._lock:
                self._partitions = found
        return found

    @contextmanager
    def reader(self) -> Iterator[SqlReader]:
        """A read-only, consistent transaction (on the plan URL when set), always rolled back."""
        connection = self._connect(self._reader_engine(), plan=True)
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
        connection = self._connect(self.engine, plan=False)
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
        with self._lock:
            last = self._last_compiled
        return last[1] if last is not None and last[0] == selection else None

    def remember(self, selection: Selection, compiled: Compiled) -> None:
        """Keep the last compiled selection, to be reused for an equal one.

        Each batch re-reads the holds; while they are unchanged its selection equals the
        last one.  Selections with pending checks are not kept: their SQL depends on whether
        the done table exists, which can change.
        """
        if not selection.pending:
            with self._lock:
                self._last_compiled = (selection, compiled)

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
        with self._lock:
            for engine in (self._engine, self._read_engine):
                if engine is not None:
                    engine.dispose()
            self._engine = None
            self._read_engine = None

    # -- engines and connections -------------------------------------------------------------

    def _reader_engine(self) -> Engine:
        # SQLite readers need their own read-only file handle; elsewhere the write engine serves
        # unless a separate, unprivileged plan role is configured.
        if self._family != "sqlite" and self.settings.plan_url is None:
            return self.engine
        with self._lock:
            if self._read_engine is None:
                self._read_engine = self._make_engine(read_only=True)
            return self._read_engine

    def _url(self, *, plan: bool) -> URL:
        url = self.settings.engine_url(for_plan=plan)
        driver = DEFAULT_DRIVERS.get(url.drivername)
        return url.set(drivername=driver) if driver is not None else url

    def _make_engine(self, *, read_only: bool) -> Engine:
        url = self._url(plan=read_only)
        options: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
        creator = None
        if self._family == "sqlite":
            creator = self._sqlite_creator(url, read_only=read_only)
        if creator is not None:
            options["creator"] = creator
        try:
            engine = sa.create_engine(url, **options)
        except (sa_exc.SQLAlchemyError, ImportError) as exc:
            why = first_line(exc)
            if url.password:
                why = why.replace(str(url.password), "***")
            raise StoreError(
                self.name,
                f"cannot use {masked_url(url)}: {why}",
                f"check stores.{self.name}.url",
            ) from None
        event.listen(engine, "connect", self._on_connect)
        return engine

    def _sqlite_creator(
        self,
        url: URL,
        *,
        read_only: bool,
    ) -> Callable[[], sqlite3.Connection] | None:
        database = url.database or ""
        if database in {"", ":memory:"} or database.startswith("file:"):
            if read_only:
                raise StoreError(
                    self.name,
                    "an in-memory (or URI-named) SQLite database cannot be opened a second "
                    "time read-only: a new connection would see a different, empty database",
                    f"point stores.{self.name}.url at a database file",
                )
            return None
        # mode=ro cannot be undone by SQL (PRAGMA query_only can); mode=rw never creates a file.
        mode = "ro" if read_only else "rw"
        target = f"file:{quote(str(Path(database).resolve()))}?mode={mode}"
        timeout = self.settings.lock_timeout_ms / 1000

        def connect() -> sqlite3.Connection:
            connection = sqlite3.connect(target, uri=True, timeout=timeout, check_same_thread=False)
            if read_only:
                # The reader's explicit BEGIN starts its transaction, so all its reads share one
                # snapshot; in its default mode the driver would not begin one for SELECTs.
                connection.isolation_level = None
            return connection

        return connect

    def _on_connect(self, dbapi_connection: Any, _record: object) -> None:  # noqa: ANN401 - DBAPI
        cursor = dbapi_connection.cursor()
        try:
            for statement in self._session_setup(dbapi_connection):
                cursor.execute(statement)
        finally:
            cursor.close()
        if self._family == "postgresql":
            # psycopg opened a transaction for the SETs; committing makes them last the session.
            dbapi_connection.commit()

    def _session_setup(self, dbapi_connection: Any) -> list[str]:  # noqa: ANN401 - DBAPI
        lock_ms = int(self.settings.lock_timeout_ms)
        statement_ms = int(self.settings.statement_timeout_ms)
        if self._family == "sqlite":
            return ["PRAGMA foreign_keys=ON"]
        if self._family == "postgresql":
            # No JIT: a claim's LIMIT makes the planner's cost estimate large enough to
            # compile every batch's query, which then costs more than it saves (measured at
            # 1M rows: claim 18.2 ms with JIT, 14.8 without; census 393 ms and 304 ms).
            return [f"SET lock_timeout = {lock_ms}", f"SET statement_timeout = {statement_ms}",
                    "SET jit = off"]
        lock_s = max(1, math.ceil(lock_ms / 1000))
        # MariaDB counts max_statement_time in seconds; MySQL has max_execution_time in ms.
        if "mariadb" in str(dbapi_connection.get_server_info()).lower():
            limit = f"max_statement_time = {statement_ms / 1000:.3f}"
        else:
            limit = f"max_execution_time = {statement_ms}"
        variables = f"innodb_lock_wait_timeout = {lock_s}, lock_wait_timeout = {lock_s}, {limit}"
        return [f"SET SESSION {variables}"]

    def _connect(self, engine: Engine, *, plan: bool) -> Connection:
        try:
            return engine.connect()
        except sa_exc.DBAPIError as exc:
            raise self._unavailable(exc, plan=plan) from None
        except sa_exc.SQLAlchemyError as exc:
            what = f"cannot connect: {self._scrub(first_line(exc))}"
            raise StoreError(self.name, what) from None

    def _unavailable(self, exc: sa_exc.DBAPIError, *, plan: bool) -> StoreUnavailable:
        setting = "plan_url" if plan else "url"
        url = self.settings.plan_url if plan and self.settings.plan_url else self.settings.url
        return StoreUnavailable(
            self.name,
            f"cannot connect to {masked_url(url)}: {self._scrub(first_line(exc))}",
            f"check stores.{self.name}.{setting}, its password, and that the server runs "
            "and accepts this user",
        )

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn any SQLAlchemy exception into a StoreError (StoreUnavailable when transient)."""
        try:
            yield
        except sa_exc.DBAPIError as exc:
            # The driver's words may quote row values: they stay in `detail`, never in logs.
            kind = StoreUnavailable if is_transient(exc) else StoreError
            raise kind(self.name, f"{doing}: {error_code(exc)}",
                       detail=self._scrub(first_line(exc))) from None
        except sa_exc.SQLAlchemyError as exc:
            raise StoreError(self.name, f"{doing}: {type(exc).__name__}",
                             detail=self._scrub(first_line(exc))) from None

    def _scrub(self, text: str) -> str:
        # Drivers do not echo passwords today; this keeps it so if one ever starts.
        for engine in (self._engine, self._read_engine):
            secret = engine.url.password if engine is not None else None
            if secret:
                text = text.replace(str(secret), "***")
        return text

    # -- reflection ----------------------------------------------------------------------------

    def _reflected(self, connection: Connection, table: str) -> Reflected | None:
        cached = self._tables.get(table)
        if cached is not None:
            return cached
        with self._errors(f"cannot reflect table {table!r}"):
            schema, name = split_name(table)
            inspector = sa.inspect(connection)
            if not inspector.has_table(name, schema=schema):
                return None
            foreign_keys = self._schema_foreign_keys(connection, inspector, schema)
            reflected = reflect_table(connection, inspector, self._family, table, foreign_keys,
                                      logical=self._partitions_of(connection).logical(table))
        with self._lock:
            self._tables[table] = reflected
        return reflected

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
                self._partitions_of(connection))
            with self._lock:
                self._foreign_keys[schema] = cached
        return cached

