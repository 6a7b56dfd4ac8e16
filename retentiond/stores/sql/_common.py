"""What every part of the SQL store shares: database families, error triage, names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from sqlalchemy import exc as sa_exc

Family = Literal["sqlite", "postgresql", "mysql"]

FAMILIES: Final[Mapping[str, Family]] = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
# A bare scheme would pick psycopg2 or mysqlclient, which are not installed.
DEFAULT_DRIVERS: Final[Mapping[str, str]] = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}

# The first statements of a reader's transaction.  SQLite: the snapshot is taken by the first
# read after BEGIN and held until ROLLBACK (with a rollback journal this blocks writers meanwhile).
READ_ONLY_BEGIN: Final[Mapping[Family, tuple[str, ...]]] = {
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

PG_DELETE_RULES: Final[Mapping[str, str]] = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}



def split_name(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return (schema or None), name


def qualify(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def first_line(error: BaseException) -> str:
    """The driver's own first line of the error: no SQL, no parameters, no traceback."""
    source: BaseException = getattr(error, "orig", None) or error
    args = source.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):  # noqa: PLR2004 - PyMySQL's (code, message)
        text = f"{args[1]} ({args[0]})"
    else:
        text = str(source)
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[0].split()) if lines else type(source).__name__


def is_transient(error: sa_exc.DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    orig = error.orig
    code = orig.args[0] if orig is not None and orig.args else None
    return (
        getattr(orig, "sqlstate", None) in _TRANSIENT_SQLSTATES
        or (isinstance(code, int) and code in _TRANSIENT_MYSQL_CODES)
        or getattr(orig, "sqlite_errorname", None) in _TRANSIENT_SQLITE
    )


def error_code(error: sa_exc.DBAPIError) -> str:
    """The driver's error class and code, e.g. ``UniqueViolation (SQLSTATE 23505)``.

    That says what went wrong without the message text, which can quote row values.
    """
    orig = error.orig
    name = type(orig).__name__ if orig is not None else type(error).__name__
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        return f"{name} (SQLSTATE {sqlstate})"
    code = orig.args[0] if orig is not None and orig.args else None
    if isinstance(code, int):
        return f"{name} (error {code})"
    sqlite = getattr(orig, "sqlite_errorname", None)
    return f"{name} ({sqlite})" if sqlite else name
