"""Fixtures shared by the whole suite: real databases on SQLite, PostgreSQL and MariaDB.

Store tests ask for ``backend`` (or ``db``, ``sql_store``) and run once per database:

``server``
    The database server of this run (ids and marks ``sqlite``, ``postgresql``, ``mariadb``).
    It makes throwaway databases and users and drops all of them afterwards.  A server that
    cannot be reached skips the test, or fails it when ``CI=true``.
``backend``
    The URL (a string) of a fresh database on that server.
``db``
    A :class:`Database` on ``backend``, to set up tables and rows and to look into them.
``make_store`` / ``sql_store``
    :class:`SqlStore` instances on ``backend`` (or another URL); at teardown every one must
    have given back all its connections, then it is closed.

PostgreSQL is reached as ``postgres`` at 127.0.0.1:5432 (trust authentication) and MariaDB as
``root`` at 127.0.0.1:3306 (empty password); ``RETENTIOND_TEST_POSTGRESQL`` and
``RETENTIOND_TEST_MARIADB`` may name other admin URLs.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from retentiond.ledger.chain import AuditLedger
from retentiond.ledger.state import StateDB
from retentiond.stores.sql import SqlStore, SqlStoreSettings

BACKENDS = ("sqlite", "postgresql", "mariadb")
ADMIN_URLS = {
    "postgresql": os.environ.get(
        "RETENTIOND_TEST_POSTGRESQL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    ),
    "mariadb": os.environ.get("RETENTIOND_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/"),
}

Statements = str | Mapping[str, str | Sequence[str]]
"""One SQL statement for every backend, or statements per backend name (missing: none)."""


def unique_name(prefix: str) -> str:
    """A name no other test (or test run on this machine) uses: for databases and users."""
    return f"{prefix}_{secrets.token_hex(6)}"


class Server:
    """One database server for one test; drops what it created when the test ends."""

    def __init__(self, kind: str, admin: Engine | None, directory: Path) -> None:
        self.kind = kind
        self._admin = admin
        self._directory = directory
        self._databases: list[str] = []
        self._users: list[str] = []

    def database(self) -> str:
        """A new, empty database; its URL (SQLite: an existing empty file, as stores need)."""
        name = unique_name("rt")
        if self._admin is None:
            path = self._directory / f"{name}.db"
            sqlite3.connect(path).close()
            return f"sqlite:///{path}"
        quoted = self._admin.dialect.identifier_preparer.quote_identifier(name)
        with self._admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
        self._databases.append(quoted)
        return self._admin.url.set(database=name).render_as_string(hide_password=False)

    def user(self, password: str, *, login: bool = True, select_on: str | None = None) -> str:
        """A new user (PostgreSQL: role) with ``password``, allowed to SELECT in ``select_on``."""
        if self._admin is None:
            raise ValueError("SQLite has no users")
        name = unique_name("rt_user")
        if not password.isalnum():
            raise ValueError("keep test passwords alphanumeric: they are written into DDL")
        if self.kind == "postgresql":
            option = "LOGIN" if login else "NOLOGIN"
            statements = [f"CREATE ROLE {name} {option} PASSWORD '{password}'"]
        else:
            statements = [f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}'"]
        with self._admin.connect() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
        self._users.append(name)
        if select_on is not None:
            self._grant_select(name, select_on)
        return name

    def _grant_select(self, user: str, url: str) -> None:
        database = make_url(url).database
        if self.kind == "postgresql":
            engine = sa.create_engine(url, poolclass=sa.NullPool)
            try:
                with engine.begin() as connection:
                    connection.exec_driver_sql(
                        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}",
                    )
            finally:
                engine.dispose()
        else:
            assert self._admin is not None
            with self._admin.connect() as connection:
                grant = f"GRANT SELECT ON `{database}`.* TO '{user}'@'127.0.0.1'"
                connection.exec_driver_sql(grant)

    def drop_all(self) -> None:
        """Drop every database and user this server made (connections are forced off)."""
        if self._admin is None:
            return
        with self._admin.connect() as connection:
            for quoted in self._databases:
                force = " WITH (FORCE)" if self.kind == "postgresql" else ""
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}{force}")
            for user in self._users:
                if self.kind == "postgresql":
                    connection.exec_driver_sql(f"DROP ROLE IF EXISTS {user}")
                else:
                    connection.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


class Database:
    """A throwaway database of one test: create tables, insert rows, look inside.

    Its engine holds a single connection, so whatever it did is one session's doing (this is
    what PostgreSQL's statistics flush needs; see :meth:`settle`).
    """

    def __init__(self, url: str, kind: str) -> None:
        self.url = url
        self.kind = kind
        self.engine = sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=5)

    @property
    def schema_name(self) -> str:
        """The schema tables land in: ``main``, ``public`` or the MariaDB database."""
        return {"sqlite": "main", "postgresql": "public"}.get(
            self.kind,
            make_url(self.url).database or "",
        )

    def run(self, *statements: Statements) -> None:
        """Execute the statements (a mapping gives them per backend) in one transaction."""
        with self.engine.begin() as connection:
            for item in statements:
                chosen = item if isinstance(item, str) else item.get(self.kind, ())
                for statement in [chosen] if isinstance(chosen, str) else chosen:
                    connection.exec_driver_sql(statement)

    def create(self, metadata: sa.MetaData) -> None:
        """Create the tables of a SQLAlchemy Core ``metadata``."""
        metadata.create_all(self.engine)

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` into ``table`` (reflected), in one transaction."""
        reflected = sa.Table(table, sa.MetaData(), autoload_with=self.engine)
        with self.engine.begin() as connection:
            connection.execute(reflected.insert(), list(rows))

    def scalar(self, sql: str, **params: Any) -> Any:
        """The single value of ``sql``."""
        with self.engine.connect() as connection:
            return connection.execute(sa.text(sql), params).scalar_one()

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of ``table``, ordered by all its columns: a content fingerprint."""
        reflected = sa.Table(table, sa.MetaData(), autoload_with=self.engine)
        with self.engine.connect() as connection:
            statement = sa.select(reflected).order_by(*reflected.columns)
            return [tuple(row) for row in connection.execute(statement)]

    def settle(self) -> None:
        """PostgreSQL: flush this session's table statistics, so other sessions see them."""
        if self.kind == "postgresql":
            with self.engine.begin() as connection:
                connection.exec_driver_sql("SELECT pg_stat_force_next_flush()")


@pytest.fixture(scope="session")
def _admins() -> Iterator[dict[str, Engine | str]]:
    """Admin engines per server, or why the server could not be reached; made once."""
    found: dict[str, Engine | str] = {}
    yield found
    for engine in found.values():
        if isinstance(engine, Engine):
            engine.dispose()


def _admin(found: dict[str, Engine | str], kind: str) -> Engine:
    if kind not in found:
        url = ADMIN_URLS[kind]
        engine = sa.create_engine(
            url,
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 3},
        )
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            first = str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__
            found[kind] = f"{kind} is not reachable at {make_url(url)!r}: {first}"
        else:
            found[kind] = engine
    admin = found[kind]
    if isinstance(admin, str):
        if os.environ.get("CI") == "true":
            pytest.fail(admin)
        pytest.skip(admin)
    return admin


@pytest.fixture(params=[pytest.param(k, id=k, marks=getattr(pytest.mark, k)) for k in BACKENDS])
def server(
    request: pytest.FixtureRequest,
    _admins: dict[str, Engine | str],
    tmp_path: Path,
) -> Iterator[Server]:
    """The database server of this run: sqlite, postgresql or mariadb."""
    kind = str(request.param)
    admin = None if kind == "sqlite" else _admin(_admins, kind)
    made = Server(kind, admin, tmp_path)
    yield made
    made.drop_all()


@pytest.fixture
def backend(server: Server) -> str:
    """The URL of a fresh, throwaway database (dropped after the test)."""
    return server.database()


@pytest.fixture
def db(backend: str, server: Server) -> Iterator[Database]:
    """The throwaway database, for setting up tables and rows and looking into them."""
    database = Database(backend, server.kind)
    yield database
    database.engine.dispose()


def checked_out(store: SqlStore) -> int:
    """Connections a store has taken from its pools and not given back."""
    engines = (store._engine, store._read_engine)
    return sum(getattr(e.pool, "checkedout", lambda: 0)() for e in engines if e is not None)


@pytest.fixture
def make_store(backend: str) -> Iterator[Callable[..., SqlStore]]:
    """Build SqlStores named ``app`` (``make_store(url=None, **settings)``); closed afterwards."""
    made: list[SqlStore] = []

    def make(url: str | None = None, **settings: Any) -> SqlStore:
        store = SqlStore("app", SqlStoreSettings(url=url or backend, **settings))
        made.append(store)
        return store

    yield make
    leaked = [checked_out(store) for store in made]
    for store in made:
        store.close()
    assert [0] * len(made) == leaked, "a store kept connections checked out"


@pytest.fixture
def sql_store(make_store: Callable[..., SqlStore]) -> SqlStore:
    """A SqlStore on ``backend``."""
    return make_store()


STATE_BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=[pytest.param(k, id=f"state-{k}", marks=getattr(pytest.mark, k))
                        for k in STATE_BACKENDS])
def state_url(
    request: pytest.FixtureRequest,
    _admins: dict[str, Engine | str],
    tmp_path: Path,
) -> Iterator[str]:
    """The URL of a fresh state database: SQLite (the default) or PostgreSQL (production)."""
    kind = str(request.param)
    admin = None if kind == "sqlite" else _admin(_admins, kind)
    made = Server(kind, admin, tmp_path / "state")
    (tmp_path / "state").mkdir(exist_ok=True)
    yield made.database()
    made.drop_all()


@pytest.fixture
def state(state_url: str) -> Iterator[StateDB]:
    """A fresh state database (SQLite or PostgreSQL, as ``state_url``), closed afterwards."""
    db = StateDB(state_url)
    yield db
    db.close()


@pytest.fixture
def ledger(state: StateDB) -> AuditLedger:
    """The audit ledger in ``state``."""
    return AuditLedger(state)
