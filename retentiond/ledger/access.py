"""Whether this user could run against the state database, found out without writing to it.

A run appends to the ledger, places and releases holds, reads the installation secret, and
takes its leases beside a SQLite file.  :func:`write_problems` says what would stop that,
each as one sentence with its fix: a SQLite file (or its directory) this user cannot write, a
``mode=ro`` URL, a schema at another revision, or a PostgreSQL role without the privileges
``deploy/state-roles.sql`` grants the daemon.  It reads the catalog and nothing else: no
schema is made, no lock file, no row.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from retentiond.errors import AuditError
from retentiond.ledger.state import (
    INSTALLATION_SECRETS,
    VERSION_TABLE,
    SchemaState,
    schema_state,
    sqlite_path,
)
from retentiond.settings import masked_url

DAEMON_PRIVILEGES: tuple[tuple[str, str, str | None], ...] = (
    ("audit_log", "SELECT", None),
    ("audit_log", "INSERT", None),
    ("holds", "SELECT", None),
    ("holds", "INSERT", None),
    ("holds", "UPDATE", "released_at"),
    ("holds", "UPDATE", "released_by"),
    ("holds", "UPDATE", "release_reason"),
    ("restore_exemptions", "SELECT", None),
    ("restore_exemptions", "INSERT", None),
    ("erasure_requests", "SELECT", None),
    ("erasure_requests", "INSERT", None),
    ("retentiond_meta", "SELECT", None),
    (VERSION_TABLE, "SELECT", None),
)
"""(table, privilege, column or None) a run needs: the daemon's grants of deploy/state-roles.sql."""
_GRANT = ("grant them as the owner with deploy/state-roles.sql (see deploy/README.md, "
          "'PostgreSQL: three roles')")


def lease_directory(database: Path) -> Path:
    """Where the lock files of rules live beside the SQLite state database ``database``."""
    return database.with_name(database.name + ".leases")


Finding = tuple[str, str]
"""What is wrong, and how to fix it."""


def write_problems(url: str) -> list[Finding]:
    """What would stop this user from running against the state database at ``url``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_problems(parsed, url)
    try:
        found = schema_state(url)
    except AuditError as exc:
        return [(exc.what, "check state_url and that the server runs and accepts this user")]
    if found.newer or (found.found is not None and not found.current):
        return [_schema_problem(found, masked_url(parsed))]
    return _postgresql_problems(parsed, found)


def _schema_problem(found: SchemaState, where: str) -> Finding:
    what, _, fix = (found.problem(where) or "").rpartition(": ")
    return what, fix


def _sqlite_problems(parsed: URL, url: str) -> list[Finding]:
    path = sqlite_path(parsed)
    if path is None:
        return []
    if parsed.query.get("mode") == "ro":
        return [(f"state_url opens the state database {path} read-only (mode=ro), but a run "
                 "writes the ledger", "remove mode=ro (it is for auditors' configs)")]
    problems: list[Finding] = []
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            problems.append((f"this user cannot write the state database {path}",
                             "run as its owner (the service's user), or give the file to "
                             "this user"))
        if not _writable_directory(path.parent):
            problems.append((f"this user cannot create files in {path.parent}, where SQLite "
                             f"keeps the journal of {path.name}", "let this user write there"))
        elif not problems:
            try:
                found = schema_state(url)
            except AuditError as exc:
                return [(exc.what, "check the file")]
            if found.found is not None and not found.current:
                problems.append(_schema_problem(found, f"sqlite:///{path}"))
    else:
        existing = next(parent for parent in path.parents if parent.exists())
        if not _writable_directory(existing):
            problems.append((f"the state database {path} does not exist, and this user cannot "
                             f"create it in {existing}",
                             f"create {path.parent} for this user, or point state_url elsewhere"))
    return problems or _lease_problems(lease_directory(path))


def _lease_problems(directory: Path) -> list[Finding]:
    """Whether a run can lock a file per rule in ``directory`` (made when missing)."""
    if not directory.exists():
        return []  # made beside the database, whose directory is writable
    fix = (f"let this user read and create files in {directory} (its lock files may be "
           "removed while nothing runs)")
    if not directory.is_dir() or not _writable_directory(directory):
        return [(f"this user cannot create lock files in the lease directory {directory}", fix)]
    unreadable = sorted(path.name for path in directory.glob("*.lock")
                        if not os.access(path, os.R_OK))
    if unreadable:
        return [(f"this user cannot open the lock files {', '.join(unreadable)} in the lease "
                 f"directory {directory}", fix)]
    return []


def _writable_directory(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


def _postgresql_problems(parsed: URL, found: SchemaState) -> list[Finding]:
    where = masked_url(parsed)
    engine = create_engine(parsed, hide_parameters=True)
    try:
        with engine.connect() as conn:
            if found.found is None:
                if conn.execute(text("SELECT has_schema_privilege(current_schema(), 'CREATE')")
                                ).scalar():
                    return []
                return [(f"the state database {where} has no schema yet and this role cannot "
                         "create it", "have its owner run 'retentiond state upgrade', then "
                         "grant with deploy/state-roles.sql")]
            missing = _missing_privileges(conn)
            if missing:
                return [(f"role {parsed.username} lacks {', '.join(missing)} in the state "
                         f"database {where}", _GRANT)]
            return _missing_secrets(conn, where)
    except SQLAlchemyError as exc:
        first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
        return [(f"cannot read the state database {where}: {first}", "check state_url")]
    finally:
        engine.dispose()


def _missing_privileges(conn: Connection) -> list[str]:
    missing = []
    for table, privilege, column in DAEMON_PRIVILEGES:
        if column is None:
            granted = conn.execute(text("SELECT has_table_privilege(:t, :p)"),
                                   {"t": table, "p": privilege}).scalar()
        else:
            granted = conn.execute(text("SELECT has_column_privilege(:t, :c, :p)"),
                                   {"t": table, "c": column, "p": privilege}).scalar()
        if not granted:
            missing.append(f"{privilege} on {table}" + (f"({column})" if column else ""))
    return missing


def _missing_secrets(conn: Connection, where: str) -> list[Finding]:
    if conn.execute(text("SELECT has_table_privilege('retentiond_meta', 'INSERT')")).scalar():
        return []  # a run makes a missing one
    found = set(conn.execute(text("SELECT name FROM retentiond_meta")).scalars())
    return [(f"the installation secret {name!r} is missing from the state database {where} "
             "and this role cannot make it", "run 'retentiond state upgrade' as its owner")
            for name in INSTALLATION_SECRETS if name not in found]
