"""What the state-database tests share: an install made by the old code, the roles, the catalog.

*Legacy*: the schema as retentiond made it on every open before revisions were recorded
(before the ledger's ``signature`` column), with records and a digest key in it.  *Roles*: the
owner, daemon and auditor of ``deploy/state-roles.sql`` on a throwaway PostgreSQL database.
"""

from __future__ import annotations

import re
import shutil
import site
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from retentiond.ledger.chain import AuditLedger, Entry, Kind
from retentiond.ledger.state import StateDB, audit_log, meta

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
"""The uid (and gid) of user nobody: another user than the one running the tests."""
GRANTS = ROOT / "deploy" / "state-roles.sql"
NO_ROLES = ("SQLite has no roles: there the owner and the auditor are split by file "
            "permissions (tests/state/test_read_only.py)")
ROLE_BACKENDS = pytest.mark.parametrize("server", [
    pytest.param("postgresql", id="state-postgresql", marks=pytest.mark.postgresql),
], indirect=True)
"""For tests of roles: PostgreSQL, the state backend that has roles (:data:`NO_ROLES`)."""

_OLD = sa.MetaData()
sa.Table(
    "audit_log", _OLD,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Column("rule", sa.String(80)),
    sa.Column("rule_version", sa.String(16)),
    sa.Column("store", sa.String(64)),
    sa.Column("table_name", sa.String(128)),
    sa.Column("action", sa.String(16)),
    sa.Column("batch_id", sa.String(36)),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("chain_hash", sa.String(64), nullable=False),
    sa.Index("audit_log_batch", "batch_id", "kind"),
    sa.Index("audit_log_run", "run_id"),
)
sa.Table(
    "holds", _OLD,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("store", sa.String(64)),
    sa.Column("table_name", sa.String(128)),
    sa.Column("where_filter", sa.Text),
    sa.Column("subject_kind", sa.String(64)),
    sa.Column("subject_value", sa.String(256)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("case_id", sa.String(128)),
    sa.Column("placed_by", sa.String(128), nullable=False),
    sa.Column("placed_at", sa.String(32), nullable=False),
    sa.Column("until", sa.String(32)),
    sa.Column("released_at", sa.String(32)),
    sa.Column("released_by", sa.String(128)),
    sa.Column("release_reason", sa.Text),
    sa.Index("holds_in_force", "released_at", "store", "table_name"),
)
sa.Table(
    "retentiond_meta", _OLD,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)
_OLD_TRIGGERS = {
    "sqlite": (
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION retentiond_append_only() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
        "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION retentiond_append_only()",
        "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION retentiond_append_only()",
    ),
}
"""What ``StateDB`` ran on every open before revisions (commit 9dbc1bd and earlier)."""


def engine(url: str) -> sa.Engine:
    """An engine that keeps no connection (dispose it after use)."""
    return sa.create_engine(url, poolclass=sa.NullPool)


def legacy_install(url: str, scratch: Path, *, records: int = 3, signature: bool = False,
                   digest_key: bool = True) -> list[tuple[object, ...]]:
    """Make, at ``url``, the state database the code before revisions made; its ledger rows.

    ``records`` ledger records (written by today's AuditLedger in a scratch database under
    ``scratch``, then copied); ``signature``: the development build of 9dbc1bd, which had the
    column already; ``digest_key``: whether the old code had made the installation secret.
    """
    made = StateDB(f"sqlite:///{scratch / 'scratch.db'}")
    try:
        ledger = AuditLedger(made)
        for number in range(records):
            ledger.append(Entry(Kind.RUN_START, run_id=f"run-{number}", rule="r",
                                body={"n": number}))
        old_columns = [c for c in audit_log.columns if c.name != "signature"]
        with made.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(sa.select(*old_columns)).mappings()]
            secrets = [dict(r) for r in conn.execute(sa.select(meta)).mappings()]
    finally:
        made.close()
    target = engine(url)
    try:
        with target.begin() as conn:
            _OLD.create_all(conn)
            if signature:
                conn.exec_driver_sql("ALTER TABLE audit_log ADD COLUMN signature VARCHAR(128)")
            for statement in _OLD_TRIGGERS[conn.dialect.name]:
                conn.exec_driver_sql(statement)
            if rows:
                conn.execute(_OLD.tables["audit_log"].insert(), rows)
            if digest_key:
                conn.execute(_OLD.tables["retentiond_meta"].insert(), secrets)
        return ledger_rows(target)
    finally:
        target.dispose()


def ledger_rows(target: sa.Engine) -> list[tuple[object, ...]]:
    """The ledger's rows as the old code wrote them (no signature), in order."""
    with target.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.text("SELECT seq, at, kind, body, record_hash, chain_hash FROM audit_log "
                    "ORDER BY seq"))]


def digest_key(url: str) -> str | None:
    """The installation secret ``audit-digest-key`` as stored, or None."""
    target = engine(url)
    try:
        with target.connect() as conn:
            return conn.execute(sa.text("SELECT value FROM retentiond_meta "
                                        "WHERE name = 'audit-digest-key'")).scalar()
    finally:
        target.dispose()


def fingerprint(url: str) -> list[tuple[object, ...]]:
    """The schema's identity: what any DDL on it would change.

    PostgreSQL: the oid and row version (xmin) of each table, index, trigger and the trigger
    function in the catalog (CREATE OR REPLACE keeps an oid but not its xmin); SQLite: the
    schema cookie, which every schema change increments, and the schema's text.
    """
    if make_url(url).get_backend_name() == "sqlite":
        path = make_url(url).database
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return [conn.execute("PRAGMA schema_version").fetchone(),
                    *conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")]
    target = engine(url)
    try:
        with target.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT 'class', relname, oid::text, xmin::text FROM pg_class "
                "WHERE relnamespace = 'public'::regnamespace "
                "UNION ALL SELECT 'trigger', tgname, oid::text, xmin::text FROM pg_trigger "
                "WHERE NOT tgisinternal "
                "UNION ALL SELECT 'function', proname, oid::text, xmin::text FROM pg_proc "
                "WHERE proname = 'retentiond_append_only' ORDER BY 1, 2"))]
    finally:
        target.dispose()


def as_role(url: str, role: str) -> str:
    """``url`` logging in as ``role`` (trust authentication: the password is a formality)."""
    login = make_url(url).set(username=role, password="pw")  # noqa: S106 - trust auth
    return login.render_as_string(hide_password=False)


def grant(url: str, *, daemon: str, auditor: str) -> None:
    """Run ``deploy/state-roles.sql`` at ``url`` (as whoever ``url`` logs in as).

    psql's ``:"name"`` variables are put in as quoted identifiers; comments and psql's own
    backslash commands are left out, as psql would not send them.
    """
    names = {"daemon": daemon, "auditor": auditor}
    text = "\n".join(line for line in GRANTS.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith(("--", "\\")))
    text = re.sub(r':"(\w+)"', lambda m: '"' + names[m.group(1)] + '"', text)
    target = engine(url)
    try:
        with target.begin() as conn:
            for statement in filter(str.strip, text.split(";")):
                conn.exec_driver_sql(statement)
    finally:
        target.dispose()


def owned_database(server: Any) -> tuple[str, str]:
    """(admin URL, owner role) of a new database owned by a new role, as deploy/README says."""
    url = server.database()
    owner = server.user("pw")
    admin = engine(url)
    try:
        with admin.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                f'ALTER DATABASE "{make_url(url).database}" OWNER TO {owner}')
    finally:
        admin.dispose()
    return url, owner


def privileges(url: str, role: str) -> dict[str, set[str]]:
    """Per table of the state database, what ``role`` may do to it (table or any column)."""
    kinds = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    target = engine(url)
    try:
        with target.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return {table: {kind for kind in kinds if conn.execute(
                sa.text("SELECT has_table_privilege(:r, :t, :k) OR "
                        "(:k IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') "
                        "AND has_any_column_privilege(:r, :t, :k))"),
                {"r": role, "t": table, "k": kind}).scalar()} for table in sorted(tables)}
    finally:
        target.dispose()


@dataclass(frozen=True)
class Roles:
    """A PostgreSQL state database at the newest revision with its three roles' URLs."""

    admin: str
    owner: str
    daemon: str
    auditor: str

    def name(self, role: str) -> str:
        """The role name of ``owner``, ``daemon`` or ``auditor``."""
        return str(make_url(getattr(self, role)).username)


POLICY = """\
rules:
  - id: events-1-year
    description: Events are deleted a year after they happened.
    store: app
    table: events
    age: {column: created_at, older_than: 1 year}
    action: {type: delete}
"""
AUDIT_COMMANDS = {"verify": ["verify"], "export": ["export", "--format", "jsonl"],
                  "report": ["report", "--output", "report.html"], "summary": ["summary"]}
"""What a reviewer runs (``audit ...``); the report is written beside the config file."""
READ_COMMANDS = {"certificate": ["audit", "certificate", "--run", "{run}"],
                 "explain": ["explain", "--store", "app", "--table", "events", "--key", "1"],
                 "status": ["status"],
                 "schedule": ["schedule", "--internal", "--format", "json"]}
"""The other commands an auditor runs: ``{run}`` is the id of a run of :func:`enforced`."""


def enforced(directory: Path, state_url: str, stores: str) -> str:
    """A hold placed and one ``run --once`` by the owner's config in ``directory``: the run id."""
    owner = config(directory, state_url, stores=stores, policy=POLICY)
    for args in (["hold", "add", "--store", "app", "--table", "events", "--reason",
                  "Complaint.", "--by", "counsel"], ["run", "--once"]):
        done = cli(owner, *args)
        assert (0, "") == (done.returncode, done.stderr), args
    return re.findall(r"^run (\S+): certificate", done.stdout, re.MULTILINE)[0]


def read_commands(config_file: Path, run: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each of :data:`AUDIT_COMMANDS` and :data:`READ_COMMANDS` run with ``config_file``."""
    commands = {**{name: ["audit", *args] for name, args in AUDIT_COMMANDS.items()},
                **READ_COMMANDS}
    return {name: cli(config_file, *(arg.format(run=run) for arg in args))
            for name, args in commands.items()}


def store(directory: Path) -> str:
    """A SQLite store ``app`` with an empty ``events`` table in ``directory``: its config."""
    path = directory / "app.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, created_at DATETIME)")
    return f'\n[stores.app]\nurl = "sqlite:///{path}"\n'


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``retentiond --config CONFIG ARGS`` as a subprocess; the finished process."""
    return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          cwd=config.parent)


def config(directory: Path, state_url: str, *, stores: str = "", policy: str | None = None,
           ) -> Path:
    """A config file in ``directory`` naming ``state_url``, its stores and a policy directory."""
    policies = directory / "policies"
    policies.mkdir(exist_ok=True)
    if policy is not None:
        (policies / "policy.yaml").write_text(policy, encoding="utf-8")
    path = directory / "retentiond.toml"
    path.write_text(f'policy_dir = "{policies}"\nstate_url = "{state_url}"\n'
                    f'log_level = "warning"\n{stores}', encoding="utf-8")
    return path


def nobody_python() -> list[str] | None:
    """A command that runs Python with retentiond importable as user nobody, or None.

    This interpreter may live where nobody cannot reach it (pyenv under /root): then the
    system's interpreter of the same version is tried, with this checkout and its packages.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    paths = [str(ROOT), *site.getsitepackages()]
    for python in dict.fromkeys([sys.executable, shutil.which(version, path="/usr/bin")]):
        if python is None:
            continue
        command = [python, "-c", f"import sys; sys.path[:0] = {paths!r}; exec(sys.argv.pop(1))"]
        try:
            probe = subprocess.run([*command, "import retentiond.ledger.state"], user=NOBODY,
                                   group=NOBODY, extra_groups=[], capture_output=True,
                                   check=False, timeout=60, cwd="/")
        except OSError:
            continue
        if probe.returncode == 0:
            return command
    return None
