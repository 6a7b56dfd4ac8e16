"""The state database: the audit ledger and the legal holds placed at run time.

SQLite by default, PostgreSQL for production and for several replicas.  The ledger table is
append-only twice over: the code has no UPDATE or DELETE path for it, and triggers in the
database reject both (and TRUNCATE on PostgreSQL).

The schema has numbered revisions (:mod:`retentiond.ledger.migrations`).  Opening a database at this
retentiond's revision runs no DDL, so the daemon's role need own nothing (on PostgreSQL it
cannot drop the triggers: ``deploy/state-roles.sql``); an empty database is given the schema
on first use; an older one is refused until its owner runs ``retentiond state upgrade``.  A
SQLite file this user cannot write, or a ``mode=ro`` URI, is opened read-only: enough to verify.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

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
    column,
    create_engine,
    event,
    insert,
    inspect,
    select,
    table,
    text,
)
from sqlalchemy.engine import URL, make_url
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
"""Legal holds placed at run time (:mod:`retentiond.holds`; read by :mod:`retentiond.holds.table`).

``store`` NULL: every store (a subject hold); ``table_name`` NULL: every table of the store;
``where_filter``: the canonical JSON of a filter-model filter; ``subject_kind`` and
``subject_value``: a data subject, held wherever rules map its kind to a column;
``until``: a date (held through that day) or a timestamp.  A release sets ``released_at``,
``released_by`` and ``release_reason``; rows are deleted only to take back a placement whose
audit record could not be written.
"""

restore_exemptions = Table(
    "restore_exemptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("batch_id", String(36), nullable=False),
    Column("store", String(64), nullable=False),
    Column("table_name", String(128), nullable=False),
    Column("rule", String(80), nullable=False),
    Column("keys", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("restored_by", String(128), nullable=False),
    Column("restored_at", String(32), nullable=False),
    Column("until", String(32), nullable=False),
    Index("restore_exemptions_scope", "store", "table_name", "rule"),
)
"""Rows restored from quarantine, exempt from the rule that moved them until ``until``.

One row per applied restore (``id``: the restore's run id in the ledger); ``keys``: the
canonical JSON of the restored primary keys; ``until``: a date (exempt through that day,
UTC) or a timestamp.  Written with the restore's ``batch.outcome`` in one transaction
(:mod:`retentiond.holds.exemptions`); never changed afterwards.
"""

erasure_requests = Table(
    "erasure_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subject_kind", String(64), nullable=False),
    Column("subject_value", String(256), nullable=False),
    Column("regime", String(64)),
    Column("recorded_by", String(128), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("received_at", String(32), nullable=False),
    Column("due_at", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("note", Text),
    Index("erasure_requests_due", "state", "due_at"),
)
"""Requests of data subjects to have their data erased (:mod:`retentiond.erasure`).

``id``: a UUID; ``subject_kind`` and ``subject_value``: the subject, as a subject hold names
it (the value is kept here only; the ledger has a keyed digest of it); ``regime``: the rules
the request was made under (``ccpa``), NULL for the default; ``received_at``, ``due_at``:
ISO dates (UTC); ``recorded_at``: ISO text in UTC; ``state``: ``recorded`` (later steps:
approved, executed, closed).  Written with its ``erasure.recorded`` ledger record in one
transaction.
"""

meta = Table(
    "retentiond_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

_ADVISORY_KEY = 0x7265746E  # "retn": serializes ledger appends across replicas
_SCHEMA_KEY = 0x72736368  # "rsch": serializes schema creation and upgrades across replicas

SCHEMA_REVISION = "4"
"""The schema revision this retentiond needs: the newest in ``ledger/migrations/versions``."""
VERSION_TABLE = "retentiond_alembic_version"
"""Where Alembic records the revision.  Not its default ``alembic_version``: in a database
shared with an application that runs Alembic itself, neither must read the other's."""
_TABLES = frozenset({"audit_log", "holds", "retentiond_meta"})
"""retentiond's tables in every revision: any of them without a version table is revision 1."""
_LEGACY_REVISION = "1"
INSTALLATION_SECRETS = ("audit-digest-key",)
"""The secrets ``state upgrade`` makes when absent (revision 2 makes them first)."""
_VERSIONS = table(VERSION_TABLE, column("version_num"))
_UPGRADE = "run 'retentiond state upgrade' as its owner"


@dataclass(frozen=True)
class SchemaState:
    """Where a state database's schema stands: its revision (None: empty) and the one wanted."""

    found: str | None
    wanted: str = SCHEMA_REVISION

    @property
    def current(self) -> bool:
        """Whether this retentiond can use the database as it is."""
        return self.found == self.wanted

    @property
    def newer(self) -> bool:
        """Whether the database is at a revision this retentiond does not know."""
        if self.found is None or self.current:
            return False
        return not (self.found.isdigit() and int(self.found) < int(self.wanted))

    def problem(self, where: str) -> str | None:
        """Why this retentiond cannot use the database at ``where`` as it is; None if it can."""
        if self.current:
            return None
        if self.found is None:
            return f"the state database {where} has no schema yet: {_UPGRADE}"
        if self.newer:
            return (f"the state database {where} is at schema revision {self.found}, which this "
                    f"retentiond (revision {self.wanted}) does not know: upgrade retentiond")
        return (f"the state database {where} is at schema revision {self.found}; this "
                f"retentiond needs {self.wanted}: {_UPGRADE}")


@dataclass(frozen=True)
class Upgrade:
    """What ``retentiond state upgrade`` did: the revision before (None: empty) and after."""

    before: str | None
    after: str
    secrets_made: tuple[str, ...] = ()
    """Installation secrets that were missing (deleted by hand) and were made again."""


class StateDB:
    """Connections to the state database, whose schema is at this retentiond's revision."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.dialect, self.read_only, self.engine = _open_engine(parsed)
        self._where = _where(parsed)
        try:
            self._check_schema()
        except SQLAlchemyError as exc:
            self.engine.dispose()
            problem = _first_line(exc)
            raise AuditError(f"cannot open the state database {self._where}: {problem}"
                             f"{_read_only_hint(parsed, problem, read_only=self.read_only)}",
                             ) from None
        except AuditError:
            self.engine.dispose()
            raise

    def _check_schema(self) -> None:
        """Read the revision: current, nothing more is done (no DDL); empty, make the schema."""
        with self.engine.connect() as conn:
            found = schema_revision(conn)
        if found is None and not self.read_only:
            with self.engine.begin() as conn:
                _lock_schema(conn)  # replicas starting together must not race their CREATEs
                found = schema_revision(conn)  # another replica may have made it meanwhile
                if found is None:
                    _create(conn, self._where)
                    return
        problem = SchemaState(found).problem(self._where)
        if problem is not None:
            raise AuditError(problem)

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
        """An installation secret kept in the state database (``state upgrade`` makes them).

        One that is missing is made here if this role may insert it; AuditError if not.
        """
        try:
            with self.engine.begin() as conn:
                found = conn.execute(select(meta.c.value).where(meta.c.name == name)).scalar()
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot read the state database: {_first_line(exc)}") from None
        return bytes.fromhex(found if found is not None else self._make_secret(name))

    def _make_secret(self, name: str) -> str:
        missing = f"the installation secret {name!r} is missing from the state database"
        if self.read_only:
            raise AuditError(f"{missing} {self._where}, which is open read-only: {_UPGRADE}")
        value = secrets.token_hex(32)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(meta).values(name=name, value=value))
        except IntegrityError:  # another replica made it first
            with self.engine.begin() as conn:
                return str(conn.execute(select(meta.c.value).where(meta.c.name == name))
                           .scalar_one())
        except SQLAlchemyError as exc:
            raise AuditError(f"{missing} {self._where} and this role cannot make it "
                             f"({_first_line(exc)}): {_UPGRADE}") from None
        return value

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()


def schema_revision(conn: Connection) -> str | None:
    """The schema revision of the state database on ``conn``; None when it has none of our tables.

    An install made before revisions were recorded (our tables, no version table) is revision 1.
    """
    return _revision(conn)[0]


def _revision(conn: Connection) -> tuple[str | None, bool]:
    """(The revision, whether the database records it) of the state database on ``conn``."""
    names = set(inspect(conn).get_table_names())
    if VERSION_TABLE in names:
        found = [str(v) for v in conn.execute(select(_VERSIONS.c.version_num)).scalars()]
        if len(found) > 1:
            raise AuditError(f"the state database records several schema revisions "
                             f"({', '.join(sorted(found))}); retentiond's have no branches")
        if found:
            return found[0], True
    return (_LEGACY_REVISION if names & _TABLES else None), False


def schema_state(url: str) -> SchemaState:
    """Where the schema of the state database at ``url`` stands; creates and changes nothing."""
    parsed = make_url(url)
    path = sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None and not path.exists():
        return SchemaState(None)  # connecting would make the file
    _, read_only, engine = _open_engine(parsed)
    try:
        with engine.connect() as conn:
            return SchemaState(schema_revision(conn))
    except SQLAlchemyError as exc:
        problem = _first_line(exc)
        raise AuditError(f"cannot read the state database {_where(parsed)}: {problem}"
                         f"{_read_only_hint(parsed, problem, read_only=read_only)}") from None
    finally:
        engine.dispose()


def upgrade_schema(url: str) -> Upgrade:
    """Create the schema, or migrate it to :data:`SCHEMA_REVISION`; run as the owner.

    Idempotent.  An install made before revisions were recorded is stamped revision 1 first;
    an installation secret deleted by hand is made again (no DDL: a row).  One transaction,
    under the lock that replicas creating the schema take too.
    """
    parsed = make_url(url)
    where = _where(parsed)
    _, read_only, engine = _open_engine(parsed)
    try:
        if read_only:
            raise AuditError(f"the state database {where} is open read-only (a file this user "
                             "cannot write, or mode=ro): upgrade it as its owner")
        with engine.begin() as conn:
            _lock_schema(conn)
            found, recorded = _revision(conn)
            state = SchemaState(found)
            if state.newer:
                raise AuditError(str(state.problem(where)))
            if not state.current:
                from retentiond.ledger import migrations  # noqa: PLC0415 - Alembic only to upgrade

                migrations.upgrade(conn, stamp=None if recorded or found is None else found)
            made = tuple(name for name in INSTALLATION_SECRETS if _make_missing(conn, name))
    except SQLAlchemyError as exc:
        raise AuditError(f"cannot upgrade the state database {where}: {_first_line(exc)}; "
                         "run 'retentiond state upgrade' as the owner of its tables",
                         ) from None
    finally:
        engine.dispose()
    return Upgrade(found, SCHEMA_REVISION, made)


def _make_missing(conn: Connection, name: str) -> bool:
    """Make the installation secret ``name`` unless it exists; whether it was made."""
    if conn.execute(select(meta.c.value).where(meta.c.name == name)).first() is not None:
        return False
    conn.execute(insert(meta).values(name=name, value=secrets.token_hex(32)))
    return True


def _create(conn: Connection, where: str) -> None:
    from retentiond.ledger import migrations  # noqa: PLC0415 - Alembic only where a schema is made

    try:
        migrations.upgrade(conn)
    except SQLAlchemyError as exc:
        raise AuditError(f"cannot create the schema in the state database {where}: "
                         f"{_first_line(exc)}; have its owner run 'retentiond state upgrade' "
                         "(see deploy/README.md: the daemon's role needs no CREATE)") from None


def _lock_schema(conn: Connection) -> None:
    """PostgreSQL: one creation or upgrade at a time (SQLite: BEGIN IMMEDIATE serializes)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_KEY})


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, plain or a ``file:`` URI; None for an in-memory database."""
    database = url.database or ""
    if database.startswith("file:"):
        database = unquote(database.removeprefix("file:"))
        if database.startswith("//"):  # file://localhost/path or file:///path
            database = "/" + database[2:].partition("/")[2]
    if database in {"", ":memory:"} or url.query.get("mode") == "memory":
        return None
    return Path(database)


def _open_engine(parsed: URL) -> tuple[str, bool, Engine]:
    """(dialect, read-only, engine) for a state database URL; creates nothing in it.

    SQLite: read-only when the URL says ``mode=ro`` or the file exists and this user cannot
    write it (a reviewer's copy, another user's file); then it is opened ``mode=ro``, which
    holds for root too.  Otherwise the file's directory is made if missing.
    """
    dialect = parsed.get_backend_name()
    if dialect not in {"sqlite", "postgresql"}:
        raise AuditError(f"the state database must be SQLite or PostgreSQL, not "
                         f"{dialect} ({masked_url(parsed)})")
    if dialect != "sqlite":
        return dialect, False, create_engine(parsed, hide_parameters=True, pool_pre_ping=True)
    path = sqlite_path(parsed)
    read_only = path is not None and (parsed.query.get("mode") == "ro" or (
        path.is_file() and not os.access(path, os.W_OK)))
    if read_only and path is not None:
        parsed = URL.create("sqlite", database=f"file:{quote(str(path.absolute()))}",
                            query={"mode": "ro", "uri": "true"})
    elif path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, hide_parameters=True, pool_pre_ping=True)
    _sqlite_serializable(engine, read_only=read_only)
    return dialect, read_only, engine


def _where(url: URL) -> str:
    """The state database named in messages: its URL without a password, or its file."""
    path = sqlite_path(url) if url.get_backend_name() == "sqlite" else None
    return f"sqlite:///{path}" if path is not None else masked_url(url)


def _read_only_hint(url: URL, problem: str, *, read_only: bool) -> str:
    """Why SQLite refused to read a WAL database read-only: no -shm file, none can be made."""
    path = sqlite_path(url)
    if (not read_only or path is None or "readonly database" not in problem
            or not path.is_file() or Path(f"{path}-shm").exists()):
        return ""
    return (f" (SQLite reads a WAL database only beside its -shm file, which this user cannot "
            f"create in {path.parent}: verify while retentiond has the database open, or verify "
            "a copy; see README)")


def _sqlite_serializable(engine: Engine, *, read_only: bool) -> None:
    """Let every SQLite transaction take the write lock up front (BEGIN IMMEDIATE).

    pysqlite's own transaction handling begins lazily and would let two appenders read the
    same chain tail; see SQLAlchemy's "Serializable isolation / Savepoints" recipe.  A
    read-only connection begins a plain (deferred) read transaction and leaves the journal
    mode as the owner set it: both of the others would be writes.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: object) -> None:  # noqa: ANN401
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]
