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
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.mysql import TINYINT
from sqlalchemy.engine import URL, Connection, Dialect, Engine, Inspector, make_url

from retentiond.errors import StoreError, StoreUnavailable
from retentiond.policy.filters import AllOf, AnyOf, Condition, NotOf, Op
from retentiond.settings import masked_url
from retentiond.stores.base import (
    AgeBound,
    Census,
    ColumnInfo,
    ColumnKind,
    ForeignKey,
    Guard,
    Key,
    OnDelete,
    Reader,
    Selection,
    Store,
    TableSchema,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from sqlalchemy.engine.interfaces import ReflectedColumn
    from sqlalchemy.sql.elements import ColumnElement

    from retentiond.policy.filters import Filter
    from retentiond.settings import StoreSettings

Family = Literal["sqlite", "postgresql", "mysql"]

_FAMILIES: Final[Mapping[str, Family]] = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
# A bare scheme would pick psycopg2 or mysqlclient, which are not installed.
_DEFAULT_DRIVERS: Final[Mapping[str, str]] = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}

# The first statements of a reader's transaction.  SQLite: the snapshot is taken by the first
# read after BEGIN and held until ROLLBACK (with a rollback journal this blocks writers meanwhile).
_READ_ONLY_BEGIN: Final[Mapping[Family, tuple[str, ...]]] = {
    "sqlite": ("BEGIN",),
    "postgresql": ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",),
    "mysql": (
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT",
    ),
}

# Errors worth a retry: lock and deadlock timeouts, serialization failures, a server going away.
_TRANSIENT_SQLSTATES: Final = frozenset({"55P03", "40001", "40P01", "57P01", "57P03", "53300"})
_TRANSIENT_MYSQL_CODES: Final = frozenset({1040, 1205, 1213, 2006, 2013})
_TRANSIENT_SQLITE: Final = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})

_PG_DELETE_RULES: Final[Mapping[str, str]] = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}


class SqlStore(Store):
    """A relational database reached through one SQLAlchemy URL (and an optional plan URL).

    Engines are created on first use.  Reflected tables are cached per instance until
    :meth:`forget` is called.
    """

    def __init__(self, name: str, settings: StoreSettings) -> None:
        self.name = name
        self.settings = settings
        backend = make_url(settings.url).get_backend_name()
        family = _FAMILIES.get(backend)
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
        self._tables: dict[str, _Reflected] = {}
        self._foreign_keys: dict[str | None, tuple[ForeignKey, ...]] = {}

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
        """Drop cached reflections: of ``table`` (and the foreign keys of its schema), or all."""
        with self._lock:
            if table is None:
                self._tables.clear()
                self._foreign_keys.clear()
                return
            self._tables.pop(table, None)
            self._foreign_keys.pop(_split(table)[0], None)

    @contextmanager
    def reader(self) -> Iterator[SqlReader]:
        """A read-only, consistent transaction (on the plan URL when set), always rolled back."""
        connection = self._connect(self._reader_engine(), plan=True)
        try:
            with self._errors("cannot start a read-only transaction"):
                for statement in _READ_ONLY_BEGIN[self._family]:
                    connection.exec_driver_sql(statement)
            yield SqlReader(self, connection)
        finally:
            try:
                with self._errors("cannot end the read-only transaction"):
                    connection.rollback()
            finally:
                connection.close()

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
        driver = _DEFAULT_DRIVERS.get(url.drivername)
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
            why = _first_line(exc)
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
            return [f"SET lock_timeout = {lock_ms}", f"SET statement_timeout = {statement_ms}"]
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
            what = f"cannot connect: {self._scrub(_first_line(exc))}"
            raise StoreError(self.name, what) from None

    def _unavailable(self, exc: sa_exc.DBAPIError, *, plan: bool) -> StoreUnavailable:
        setting = "plan_url" if plan else "url"
        url = self.settings.plan_url if plan and self.settings.plan_url else self.settings.url
        return StoreUnavailable(
            self.name,
            f"cannot connect to {masked_url(url)}: {self._scrub(_first_line(exc))}",
            f"check stores.{self.name}.{setting}, its password, and that the server runs "
            "and accepts this user",
        )

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn any SQLAlchemy exception into a StoreError (StoreUnavailable when transient)."""
        try:
            yield
        except sa_exc.DBAPIError as exc:
            kind = StoreUnavailable if _transient(exc) else StoreError
            raise kind(self.name, f"{doing}: {self._scrub(_first_line(exc))}") from None
        except sa_exc.SQLAlchemyError as exc:
            raise StoreError(self.name, f"{doing}: {self._scrub(_first_line(exc))}") from None

    def _scrub(self, text: str) -> str:
        # Drivers do not echo passwords today; this keeps it so if one ever starts.
        for engine in (self._engine, self._read_engine):
            secret = engine.url.password if engine is not None else None
            if secret:
                text = text.replace(str(secret), "***")
        return text

    # -- reflection ----------------------------------------------------------------------------

    def _reflected(self, connection: Connection, table: str) -> _Reflected | None:
        cached = self._tables.get(table)
        if cached is not None:
            return cached
        with self._errors(f"cannot reflect table {table!r}"):
            schema, name = _split(table)
            inspector = sa.inspect(connection)
            if not inspector.has_table(name, schema=schema):
                return None
            foreign_keys = self._schema_foreign_keys(connection, inspector, schema)
            reflected = _reflect(connection, inspector, self._family, table, foreign_keys)
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
            cached = _foreign_keys(connection, inspector, self._family, schema)
            with self._lock:
                self._foreign_keys[schema] = cached
        return cached


class SqlReader(Reader):
    """A :class:`Reader` over one read-only transaction of a :class:`SqlStore`.

    ``connection`` is the raw connection of that transaction, for diagnostics and tests; the
    reader itself only ever sends SELECTs through it.
    """

    def __init__(self, store: SqlStore, connection: Connection) -> None:
        self._store = store
        self.connection = connection

    def census(self, selection: Selection) -> Census:
        """Count the selection in one pass: conditional sums over the rows the filter passes."""
        compiled = self._compile(selection)
        table = compiled.table
        sums = {
            "matched": compiled.due,
            "null_age": compiled.undated,
            "held": sa.and_(compiled.due, compiled.held),
            "protected": sa.and_(compiled.due, sa.not_(compiled.held), compiled.retained),
        }
        sums.update({f"g{i}": sa.and_(compiled.due, p) for i, (_, p) in enumerate(compiled.guards)})
        population = sa.select(sa.func.count()).select_from(table).scalar_subquery()
        statement = sa.select(
            population.label("population"),
            *(sa.func.sum(sa.case((c, 1), else_=0)).label(label) for label, c in sums.items()),
        ).where(compiled.passing, sa.or_(compiled.due, compiled.undated))
        with self._store._errors(f"cannot count {selection.table!r}"):  # noqa: SLF001 - its policy
            row = self.connection.execute(statement).mappings().one()
        counts = {str(label): int(value or 0) for label, value in row.items()}
        return Census(
            population=counts["population"],
            matched=counts["matched"],
            null_age=counts["null_age"],
            held=counts["held"],
            protected=counts["protected"],
            eligible=counts["matched"] - counts["held"] - counts["protected"],
            by_guard={g.id: counts[f"g{i}"] for i, (g, _) in enumerate(compiled.guards)},
        )

    def keys(self, selection: Selection, *, after: Key | None, limit: int) -> list[Key]:
        """Eligible keys after ``after``: ``pk > :last ORDER BY pk LIMIT n``, never OFFSET."""
        if limit <= 0:
            raise StoreError(self._store.name, f"batch limit must be positive, got {limit}")
        compiled = self._compile(selection)
        key_columns = self._primary_key(compiled, selection.table)
        statement = (
            sa.select(*key_columns)
            .where(compiled.eligible)
            .order_by(*key_columns)
            .limit(limit)
        )
        if after is not None:
            if len(after) != len(key_columns):
                raise StoreError(
                    self._store.name,
                    f"a key of {selection.table!r} has {len(key_columns)} columns, got {after!r}",
                )
            statement = statement.where(_after(key_columns, after, self._store.dialect_name))
        with self._store._errors(f"cannot read keys of {selection.table!r}"):  # noqa: SLF001
            return [tuple(row) for row in self.connection.execute(statement)]

    def count_referencing(self, selection: Selection, fk: ForeignKey) -> int:
        """Rows of ``fk.table`` whose ``fk.columns`` reference an eligible row of the selection."""
        if _split(fk.ref_table)[1] != _split(selection.table)[1]:
            raise StoreError(
                self._store.name,
                f"foreign key {fk.name or fk.columns} points at {fk.ref_table!r}, "
                f"not at {selection.table!r}",
            )
        parent = _Compiler(self._store.name, self._table(selection.table))
        compiled = parent.selection(selection)
        child = _Compiler(self._store.name, self._table(fk.table))
        parents = sa.select(*(parent.column(c) for c in fk.ref_columns)).where(compiled.eligible)
        children = [child.column(c) for c in fk.columns]
        reference = (
            children[0].in_(parents) if len(children) == 1 else sa.tuple_(*children).in_(parents)
        )
        statement = sa.select(sa.func.count()).select_from(children[0].table).where(reference)
        with self._store._errors(f"cannot count rows referencing {selection.table!r}"):  # noqa: SLF001
            return int(self.connection.execute(statement).scalar_one())

    def _table(self, table: str) -> _Reflected:
        reflected = self._store._reflected(self.connection, table)  # noqa: SLF001
        if reflected is None:
            raise StoreError(
                self._store.name,
                f"table {table!r} does not exist",
                "check the rule's table (retentiond validate)",
            )
        return reflected

    def _compile(self, selection: Selection) -> _Compiled:
        return _Compiler(self._store.name, self._table(selection.table)).selection(selection)

    def _primary_key(self, compiled: _Compiled, table: str) -> list[sa.Column[Any]]:
        if not compiled.schema.primary_key:
            raise StoreError(
                self._store.name,
                f"table {table!r} has no primary key, so its rows cannot be walked in batches",
                "add a primary key to the table",
            )
        return [compiled.table.c[c] for c in compiled.schema.primary_key]


# -- compiling selections ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Reflected:
    table: sa.Table
    schema: TableSchema


@dataclass(frozen=True)
class _Compiled:
    """A selection as boolean expressions over one reflected table."""

    table: sa.Table
    schema: TableSchema
    passing: ColumnElement[bool]
    """The rule's filter."""
    due: ColumnElement[bool]
    """``age <= cutoff`` (NULL, hence false, for NULL ages)."""
    undated: ColumnElement[bool]
    guards: list[tuple[Guard, ColumnElement[bool]]]
    """Each guard with its "protects" expression, never NULL."""
    held: ColumnElement[bool]
    retained: ColumnElement[bool]

    @property
    def eligible(self) -> ColumnElement[bool]:
        """Passes the filter, due, and no guard protects it."""
        return sa.and_(self.passing, self.due, sa.not_(self.held), sa.not_(self.retained))


class _Compiler:
    def __init__(self, store: str, reflected: _Reflected) -> None:
        self._store = store
        self._table = reflected.table
        self._schema = reflected.schema

    def selection(self, selection: Selection) -> _Compiled:
        age, cutoff = self._age(selection.age)
        guards = [(guard, self._protects(guard)) for guard in selection.guards]
        holds = [p for g, p in guards if g.kind == "hold"]
        retentions = [p for g, p in guards if g.kind == "retention"]
        return _Compiled(
            table=self._table,
            schema=self._schema,
            passing=self._filter(selection.where) if selection.where is not None else sa.true(),
            due=age <= cutoff,
            undated=age.is_(None),
            guards=guards,
            held=sa.or_(*holds) if holds else sa.false(),
            retained=sa.or_(*retentions) if retentions else sa.false(),
        )

    def _protects(self, guard: Guard) -> ColumnElement[bool]:
        condition = self._filter(guard.where) if guard.where is not None else sa.true()
        if guard.kind == "retention":
            if guard.age is None:
                raise StoreError(self._store, f"retention {guard.id!r} has no age column")
            age, cutoff = self._age(guard.age)
            condition = sa.and_(condition, sa.or_(age > cutoff, age.is_(None)))
        elif guard.where is None:
            return sa.true()
        # A condition that is NULL (a NULL in a filtered column) protects: doubt keeps the record.
        return sa.func.coalesce(condition, sa.true())

    def _age(self, bound: AgeBound) -> tuple[sa.Column[Any], date | datetime]:
        column = self.column(bound.column)
        info = self._schema.columns[bound.column]
        if info.kind is ColumnKind.DATE:
            return column, bound.cutoff.day
        if info.kind is ColumnKind.DATETIME:
            return column, bound.cutoff.aware if info.timezone else bound.cutoff.local
        raise StoreError(
            self._store,
            f"age column {bound.column!r} of {self._schema.name!r} is {info.type_name}, "
            "not a date or a timestamp",
            "choose a DATE or TIMESTAMP column as the rule's age",
        )

    def _filter(self, where: Filter) -> ColumnElement[bool]:
        if isinstance(where, AllOf):
            return sa.and_(*(self._filter(f) for f in where.all))
        if isinstance(where, AnyOf):
            return sa.or_(*(self._filter(f) for f in where.any))
        if isinstance(where, NotOf):
            return sa.not_(self._filter(where.not_))
        return self._condition(where)

    def _condition(self, condition: Condition) -> ColumnElement[bool]:
        column = self.column(condition.column)
        kind = self._schema.columns[condition.column].kind
        value = condition.value
        values = [self._coerce(kind, v) for v in value] if isinstance(value, list) else []
        single = None if isinstance(value, list) else self._coerce(kind, value)
        comparisons: dict[Op, Callable[[], ColumnElement[bool]]] = {
            Op.EQ: lambda: column == single,
            Op.NE: lambda: column != single,
            Op.LT: lambda: column < single,
            Op.LE: lambda: column <= single,
            Op.GT: lambda: column > single,
            Op.GE: lambda: column >= single,
            Op.IN: lambda: column.in_(values),
            Op.NOT_IN: lambda: column.not_in(values),
            Op.IS_NULL: lambda: column.is_(None),
            Op.NOT_NULL: lambda: column.is_not(None),
            Op.LIKE: lambda: column.like(str(single)),
        }
        return comparisons[condition.op]()

    def _coerce(self, kind: ColumnKind, value: object) -> object:
        # Policy files may give dates as text; the column's own type binds date objects.
        if not isinstance(value, str) or kind not in {ColumnKind.DATE, ColumnKind.DATETIME}:
            return value
        parse = date.fromisoformat if kind is ColumnKind.DATE else datetime.fromisoformat
        try:
            return parse(value)
        except ValueError:
            raise StoreError(
                self._store,
                f"{value!r} is not an ISO {kind.value} for a {kind.value} column",
                "write dates as YYYY-MM-DD and times as YYYY-MM-DD HH:MM:SS",
            ) from None

    def column(self, name: str) -> sa.Column[Any]:
        """The reflected column ``name``; StoreError when the table has none."""
        if name not in self._schema.columns:
            raise StoreError(
                self._store,
                f"table {self._schema.name!r} has no column {name!r}",
                "check the rule against the table (retentiond validate)",
            )
        return self._table.c[name]


def _after(columns: Sequence[sa.Column[Any]], after: Key, family: Family) -> ColumnElement[bool]:
    """``key > after``, in a form each database walks as an index range."""
    if len(columns) == 1:
        return columns[0] > after[0]
    values = [sa.literal(v, c.type) for c, v in zip(columns, after, strict=True)]
    if family != "mysql":
        return sa.tuple_(*columns) > sa.tuple_(*values)
    # MariaDB scans the whole index for a row-value comparison (measured: 19,012 index reads
    # to return 9 keys); the expanded form with a leading bound is a range scan (9 reads).
    expanded: ColumnElement[bool] = columns[-1] > values[-1]
    for column, value in zip(reversed(columns[:-1]), reversed(values[:-1]), strict=True):
        expanded = sa.or_(column > value, sa.and_(column == value, expanded))
    return sa.and_(columns[0] >= values[0], expanded)


# -- reflection --------------------------------------------------------------------------------


def _split(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return (schema or None), name


def _qualify(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def _reflect(
    connection: Connection,
    inspector: Inspector,
    family: Family,
    table: str,
    foreign_keys: tuple[ForeignKey, ...],
) -> _Reflected:
    schema, name = _split(table)
    raw = inspector.get_columns(name, schema=schema)
    primary_key = tuple(inspector.get_pk_constraint(name, schema=schema)["constrained_columns"])
    unique = _unique_columns(connection, inspector, family, table, primary_key)
    columns = {
        c["name"]: _column_info(c, connection.dialect, family, primary_key, unique) for c in raw
    }
    qualified = _qualify(schema, name)
    info = TableSchema(
        name=table,
        columns=columns,
        primary_key=primary_key,
        referenced_by=tuple(fk for fk in foreign_keys if fk.ref_table == qualified),
        references=tuple(fk for fk in foreign_keys if fk.table == qualified),
    )
    sa_table = sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(c["name"], c["type"], primary_key=c["name"] in primary_key) for c in raw),
        schema=schema,
    )
    return _Reflected(sa_table, info)


def _column_info(
    column: ReflectedColumn,
    dialect: Dialect,
    family: Family,
    primary_key: tuple[str, ...],
    unique: set[str],
) -> ColumnInfo:
    kind, timezone = _kind(column["type"])
    type_ = column["type"]
    try:
        type_name = str(type_.compile(dialect=dialect))
    except sa_exc.CompileError:
        type_name = type(type_).__name__
    nullable = column["nullable"]
    # SQLite reports an INTEGER PRIMARY KEY as nullable, but it is the rowid: never NULL.
    if family == "sqlite" and primary_key == (column["name"],) and kind is ColumnKind.INTEGER:
        nullable = False
    length = getattr(type_, "length", None) if kind is ColumnKind.TEXT else None
    return ColumnInfo(
        name=column["name"],
        kind=kind,
        type_name=type_name,
        nullable=nullable,
        length=length if isinstance(length, int) else None,
        unique=column["name"] in unique,
        timezone=timezone,
    )


def _kind(type_: sa.types.TypeEngine[Any]) -> tuple[ColumnKind, bool]:
    """The column family; the second item is true for timezone-aware timestamps.

    MySQL's BOOLEAN is TINYINT(1) and that is how applications declare flags, so TINYINT(1)
    counts as BOOLEAN; wider TINYINTs stay INTEGER.
    """
    if isinstance(type_, sa.Boolean) or (isinstance(type_, TINYINT) and type_.display_width == 1):
        return ColumnKind.BOOLEAN, False
    for classes, kind in _KINDS:
        if isinstance(type_, classes):
            aware = kind is ColumnKind.DATETIME and bool(getattr(type_, "timezone", False))
            return kind, aware
    return ColumnKind.OTHER, False


def _unique_columns(
    connection: Connection,
    inspector: Inspector,
    family: Family,
    table: str,
    primary_key: tuple[str, ...],
) -> set[str]:
    """Columns covered on their own by a unique constraint, a full unique index or the key."""
    schema, name = _split(table)
    groups: list[Sequence[str | None]] = [primary_key]
    if family == "sqlite":
        # Reflection misses column-level UNIQUE on SQLite; the index list has every one.
        groups += _sqlite_unique_indexes(connection, schema, name)
    else:
        groups += [u["column_names"] for u in inspector.get_unique_constraints(name, schema=schema)]
        for index in inspector.get_indexes(name, schema=schema):
            options = index.get("dialect_options", {})
            partial = any(key.endswith("_where") for key in options)
            if index["unique"] and not partial:
                groups.append(index["column_names"])
    return {group[0] for group in groups if len(group) == 1 and group[0] is not None}


def _sqlite_unique_indexes(
    connection: Connection,
    schema: str | None,
    name: str,
) -> list[list[str | None]]:
    quote_ = connection.dialect.identifier_preparer.quote_identifier
    prefix = f"{quote_(schema)}." if schema else ""
    groups: list[list[str | None]] = []
    for _seq, index, unique, _origin, partial in connection.exec_driver_sql(
        f"PRAGMA {prefix}index_list({quote_(name)})",
    ):
        if unique and not partial:
            info = connection.exec_driver_sql(f"PRAGMA {prefix}index_info({quote_(index)})")
            groups.append([row[2] for row in info])
    return groups


def _foreign_keys(
    connection: Connection,
    inspector: Inspector,
    family: Family,
    schema: str | None,
) -> tuple[ForeignKey, ...]:
    """Every foreign key between tables of ``schema``, ON DELETE checked against the catalog."""
    owner = schema or inspector.default_schema_name
    rules = _catalog_delete_rules(connection, family, owner)
    found: list[ForeignKey] = []
    for (_, table), constraints in inspector.get_multi_foreign_keys(schema=schema).items():
        sqlite_rules = _sqlite_delete_rules(connection, schema, table) if family == "sqlite" else {}
        for fk in constraints:
            columns = tuple(fk["constrained_columns"])
            referred = fk["referred_table"]
            rule = (
                sqlite_rules.get((columns, referred.lower()))
                or rules.get((table, fk["name"] or ""))
                or fk.get("options", {}).get("ondelete")
                or "NO ACTION"
            )
            referred_schema = fk["referred_schema"]
            ref_table = (
                _qualify(schema, referred)
                if referred_schema in {None, owner}
                else f"{referred_schema}.{referred}"
            )
            found.append(
                ForeignKey(
                    table=_qualify(schema, table),
                    columns=columns,
                    ref_table=ref_table,
                    ref_columns=tuple(fk["referred_columns"]),
                    on_delete=_on_delete(rule),
                    name=fk["name"],
                ),
            )
    return tuple(sorted(found, key=lambda fk: (fk.table, fk.name or "", fk.columns)))


def _on_delete(rule: str) -> OnDelete:
    try:
        return OnDelete(" ".join(rule.split()).lower())
    except ValueError:
        return OnDelete.NO_ACTION


def _catalog_delete_rules(
    connection: Connection,
    family: Family,
    schema: str | None,
) -> dict[tuple[str, str], str]:
    """ON DELETE of each (table, constraint) as the catalog states it.

    MariaDB's reflection drops an explicit RESTRICT (SHOW CREATE TABLE omits the default);
    information_schema keeps it.  On PostgreSQL information_schema hides constraints from a
    role that may only SELECT, so pg_constraint is read instead.
    """
    if family == "mysql":
        query = sa.text(
            "SELECT TABLE_NAME, CONSTRAINT_NAME, DELETE_RULE "
            "FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = :schema",
        )
        rows = connection.execute(query, {"schema": schema})
        return {(str(t), str(c)): str(rule) for t, c, rule in rows}
    if family == "postgresql":
        query = sa.text(
            "SELECT cl.relname, c.conname, c.confdeltype FROM pg_catalog.pg_constraint c "
            "JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace "
            "WHERE c.contype = 'f' AND n.nspname = :schema",
        )
        rows = connection.execute(query, {"schema": schema})
        return {(str(t), str(c)): _PG_DELETE_RULES.get(str(d), "NO ACTION") for t, c, d in rows}
    return {}


def _sqlite_delete_rules(
    connection: Connection,
    schema: str | None,
    table: str,
) -> dict[tuple[tuple[str, ...], str], str]:
    """ON DELETE per (columns, parent) from the PRAGMA; reflection misses inline clauses."""
    quote_ = connection.dialect.identifier_preparer.quote_identifier
    prefix = f"{quote_(schema)}." if schema else ""
    groups: dict[int, tuple[str, list[str], str]] = {}
    rows = connection.exec_driver_sql(f"PRAGMA {prefix}foreign_key_list({quote_(table)})")
    for fk_id, _seq, parent, column, _to, _on_update, on_delete, _match in rows:
        groups.setdefault(fk_id, (parent, [], on_delete))[1].append(column)
    return {(tuple(cols), parent.lower()): rule for parent, cols, rule in groups.values()}


_KINDS: Final[tuple[tuple[tuple[type[Any], ...], ColumnKind], ...]] = (
    ((sa.Integer,), ColumnKind.INTEGER),
    ((sa.Float,), ColumnKind.FLOAT),  # before Numeric: some dialects derive one from the other
    ((sa.Numeric,), ColumnKind.DECIMAL),
    ((sa.DateTime,), ColumnKind.DATETIME),
    ((sa.Date,), ColumnKind.DATE),
    ((sa.String,), ColumnKind.TEXT),  # Text, Unicode, CHAR and Enum are Strings
    ((sa.LargeBinary, sa.BINARY, sa.VARBINARY), ColumnKind.BINARY),
)


# -- errors ------------------------------------------------------------------------------------


def _first_line(error: BaseException) -> str:
    """The driver's own first line of the error: no SQL, no parameters, no traceback."""
    source: BaseException = getattr(error, "orig", None) or error
    args = source.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):  # noqa: PLR2004 - PyMySQL's (code, message)
        text = f"{args[1]} ({args[0]})"
    else:
        text = str(source)
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[0].split()) if lines else type(source).__name__


def _transient(error: sa_exc.DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    orig = error.orig
    code = orig.args[0] if orig is not None and orig.args else None
    return (
        getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES
        or (isinstance(code, int) and code in _TRANSIENT_MYSQL_CODES)
        or getattr(orig, "sqlite_errorname", None) in _TRANSIENT_SQLITE
    )
