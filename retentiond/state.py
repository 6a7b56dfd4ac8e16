"""The state database: the audit ledger and the legal holds placed at run time.

SQLite by default, PostgreSQL for production and for several replicas.  The schema is created
on first use.  The ledger table is append-only twice over: the code has no UPDATE or DELETE
path for it, and triggers in the database reject both (and TRUNCATE on PostgreSQL).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from retentiond.errors import AuditError
from retentiond.settings import masked_url

metadata = MetaData()

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("run_id", String(36)),
    Column("rule", String(80)),
    Column("rule_version", String(16)),
    Column("store", String(64)),
    Column("table_name", String(128)),
    Column("action", String(16)),
    Column("batch_id", String(36)),
    Column("body", Text, nullable=False),
    Column("record_hash", String(64), nullable=False),
    Column("chain_hash", String(64), nullable=False),
    Column("signature", String(128)),
    Index("audit_log_batch", "batch_id", "kind"),
    Index("audit_log_run", "run_id"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("store", String(64)),
    Column("table_name", String(128)),
    Column("where_filter", Text),
    Column("subject_kind", String(64)),
    Column("subject_value", String(256)),
    Column("reason", Text, nullable=False),
    Column("case_id", String(128)),
    Column("placed_by", String(128), nullable=False),
    Column("placed_at", String(32), nullable=False),
    Column("until", String(32)),
    Column("released_at", String(32)),
    Column("released_by", String(128)),
    Column("release_reason", Text),
    Index("holds_in_force", "released_at", "store", "table_name"),
)
"""Legal holds placed at run time (:mod:`retentiond.legal`).

``store`` NULL: every store (a subject hold); ``table_name`` NULL: every table of the store;
``where_filter``: the canonical JSON of a filter-model filter; ``subject_kind`` and
``subject_value``: a data subject, held wherever rules map its kind to a column;
``until``: a date (held through that day) or a timestamp.  A release sets ``released_at``,
``released_by`` and ``release_reason``; rows are deleted only to take back a placement whose
audit record could not be written.
"""

meta = Table(
    "retentiond_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)
_POSTGRES_APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION retentiond_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION retentiond_append_only()",
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION retentiond_append_only()",
)
_ADVISORY_KEY = 0x7265746E  # "retn": serializes ledger appends across replicas
_SCHEMA_KEY = 0x72736368  # "rsch": serializes schema creation across replicas


class StateDB:
    """Connections to the state database, with the schema in place."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in {"sqlite", "postgresql"}:
            raise AuditError(f"the state database must be SQLite or PostgreSQL, not "
                             f"{self.dialect} ({masked_url(parsed)})")
        if self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(parsed, hide_parameters=True, pool_pre_ping=True)
        if self.dialect == "sqlite":
            _sqlite_serializable(self.engine)
        try:
            self._create_schema()
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise AuditError(f"cannot open the state database {masked_url(parsed)}: "
                             f"{_first_line(exc)}") from None

    def _create_schema(self) -> None:
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Replicas starting together must not race each other's CREATE statements.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_KEY})
            metadata.create_all(conn)
            statements = _SQLITE_APPEND_ONLY if self.dialect == "sqlite" else _POSTGRES_APPEND_ONLY
            for statement in statements:
                conn.exec_driver_sql(statement)

    @contextmanager
    def appending(self) -> Iterator[Connection]:
        """A transaction that alone may append to the ledger until it ends (all replicas)."""
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                 {"key": _ADVISORY_KEY})
                # SQLite: the transaction began with BEGIN IMMEDIATE, which takes the lock.
                yield conn
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot write the ledger: {_first_line(exc)}") from None

    def secret(self, name: str) -> bytes:
        """An installation secret kept in the state database, created on first use."""
        try:
            with self.engine.begin() as conn:
                found = conn.execute(select(meta.c.value).where(meta.c.name == name)).scalar()
                if found is None:
                    value = secrets.token_hex(32)
                    try:
                        conn.execute(insert(meta).values(name=name, value=value))
                    except IntegrityError:  # another replica created it first
                        conn.rollback()
                        return self.secret(name)
                    found = value
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot read the state database: {_first_line(exc)}") from None
        return bytes.fromhex(found)

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()


def _sqlite_serializable(engine: Engine) -> None:
    """Let every SQLite transaction take the write lock up front (BEGIN IMMEDIATE).

    pysqlite's own transaction handling begins lazily and would let two appenders read the
    same chain tail; see SQLAlchemy's "Serializable isolation / Savepoints" recipe.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: object) -> None:  # noqa: ANN401
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]
