"""A SQL store's engines: made on first use, set up per database on every connection.

There are at most two engines: the write engine (``settings.url``) and, for SQLite (a
read-only file handle) or when ``plan_url`` names a separate, unprivileged role, a read engine.
Every engine hides bound parameters (``hide_parameters=True``), so row values never reach an
exception or a log.  Every SQLite connection sets ``secure_delete``, so a value deleted or
overwritten through it is zeroed in the file, not left in free pages.  :meth:`Engines.errors` is
the one place a SQLAlchemy exception becomes a :class:`StoreError` (or
:class:`StoreUnavailable` when a retry may help) carrying the driver's first line, with the
password masked.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from retentiond.errors import StoreError, StoreUnavailable
from retentiond.settings import masked_url
from retentiond.stores.sql._common import DEFAULT_DRIVERS, error_code, first_line, is_transient

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import URL, Connection, Engine

    from retentiond.stores.sql._common import Family
    from retentiond.stores.sql.settings import SqlStoreSettings

Triage = Callable[[str], AbstractContextManager[None]]
"""``errors(doing)``: a block in which any SQLAlchemy exception becomes a StoreError."""


class Engines:
    """The engines of the store ``name``, its connections, and the triage of its errors."""

    def __init__(self, name: str, settings: SqlStoreSettings, family: Family) -> None:
        self.name = name
        self.settings = settings
        self.family: Family = family
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._read_engine: Engine | None = None

    def for_writes(self) -> Engine:
        """The write engine (``settings.url``), created on first use."""
        with self._lock:
            if self._engine is None:
                self._engine = self._make_engine(read_only=False)
            return self._engine

    def for_reads(self) -> Engine:
        """The engine readers use: the write engine unless SQLite or ``plan_url`` needs another.

        SQLite readers need their own read-only file handle; elsewhere the write engine serves
        unless a separate, unprivileged plan role is configured.
        """
        if self.family != "sqlite" and self.settings.plan_url is None:
            return self.for_writes()
        with self._lock:
            if self._read_engine is None:
                self._read_engine = self._make_engine(read_only=True)
            return self._read_engine

    def made(self) -> tuple[Engine, ...]:
        """The engines created so far (and not yet closed), write engine first."""
        return tuple(e for e in (self._engine, self._read_engine) if e is not None)

    def ping(self) -> None:
        """Connect (and to the plan URL too, when set); raise StoreUnavailable on failure."""
        engines = [(self.for_writes(), False)]
        if self.settings.plan_url is not None:
            engines.append((self.for_reads(), True))
        probe = "SELECT count(*) FROM sqlite_master" if self.family == "sqlite" else "SELECT 1"
        for engine, plan in engines:
            with self.connect(engine, plan=plan) as connection:
                try:
                    connection.exec_driver_sql(probe).all()
                except sa_exc.DBAPIError as exc:
                    raise self.unavailable(exc, plan=plan) from None

    def connect(self, engine: Engine, *, plan: bool) -> Connection:
        """A connection of ``engine``; StoreUnavailable (naming the URL setting) when refused."""
        try:
            return engine.connect()
        except sa_exc.DBAPIError as exc:
            raise self.unavailable(exc, plan=plan) from None
        except sa_exc.SQLAlchemyError as exc:
            what = f"cannot connect: {self.scrub(first_line(exc))}"
            raise StoreError(self.name, what) from None

    def unavailable(self, exc: sa_exc.DBAPIError, *, plan: bool) -> StoreUnavailable:
        """The error for a refused connection, with the fix: which setting to check."""
        setting = "plan_url" if plan else "url"
        url = self.settings.plan_url if plan and self.settings.plan_url else self.settings.url
        return StoreUnavailable(
            self.name,
            f"cannot connect to {masked_url(url)}: {self.scrub(first_line(exc))}",
            f"check stores.{self.name}.{setting}, its password, and that the server runs "
            "and accepts this user",
        )

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn any SQLAlchemy exception into a StoreError (StoreUnavailable when transient)."""
        try:
            yield
        except sa_exc.DBAPIError as exc:
            # The driver's words may quote row values: they stay in `detail`, never in logs.
            kind = StoreUnavailable if is_transient(exc) else StoreError
            raise kind(self.name, f"{doing}: {error_code(exc)}",
                       detail=self.scrub(first_line(exc))) from None
        except sa_exc.SQLAlchemyError as exc:
            raise StoreError(self.name, f"{doing}: {type(exc).__name__}",
                             detail=self.scrub(first_line(exc))) from None

    def scrub(self, text: str) -> str:
        """``text`` with the engines' passwords masked.

        Drivers do not echo passwords today; this keeps it so if one ever starts.
        """
        for engine in (self._engine, self._read_engine):
            secret = engine.url.password if engine is not None else None
            if secret:
                text = text.replace(str(secret), "***")
        return text

    def close(self) -> None:
        """Dispose of both engines and their pooled connections."""
        with self._lock:
            for engine in (self._engine, self._read_engine):
                if engine is not None:
                    engine.dispose()
            self._engine = None
            self._read_engine = None

    # -- making an engine ----------------------------------------------------------------------

    def _url(self, *, plan: bool) -> URL:
        url = self.settings.engine_url(for_plan=plan)
        driver = DEFAULT_DRIVERS.get(url.drivername)
        return url.set(drivername=driver) if driver is not None else url

    def _make_engine(self, *, read_only: bool) -> Engine:
        url = self._url(plan=read_only)
        options: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
        creator = None
        if self.family == "sqlite":
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

    # -- setting up each connection ------------------------------------------------------------

    def _on_connect(self, dbapi_connection: Any, _record: object) -> None:  # noqa: ANN401 - DBAPI
        cursor = dbapi_connection.cursor()
        try:
            for statement in self._session_setup(dbapi_connection):
                cursor.execute(statement)
        finally:
            cursor.close()
        if self.family == "postgresql":
            # psycopg opened a transaction for the SETs; committing makes them last the session.
            dbapi_connection.commit()

    def _session_setup(self, dbapi_connection: Any) -> list[str]:  # noqa: ANN401 - DBAPI
        lock_ms = int(self.settings.lock_timeout_ms)
        statement_ms = int(self.settings.statement_timeout_ms)
        if self.family == "sqlite":
            # secure_delete: a deleted or overwritten value is zeroed in the file's pages, not
            # left in free space where anyone reading the file finds it (FIELD-NOTES; tested
            # by grepping the file for deleted values, tests/enforce/test_physically_gone.py).
            return ["PRAGMA foreign_keys=ON", "PRAGMA secure_delete=ON"]
        if self.family == "postgresql":
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
