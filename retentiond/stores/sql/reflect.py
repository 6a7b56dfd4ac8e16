"""Reflecting tables: columns, keys and foreign keys, cross-checked against the catalogs.

SQLAlchemy's reflection misses an inline ``ON DELETE CASCADE`` and a column-level ``UNIQUE`` on
SQLite, and MariaDB drops an explicit ``ON DELETE RESTRICT``; the catalogs are read as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.mysql import TINYINT

from retentiond.stores.base import ColumnInfo, ColumnKind, ForeignKey, OnDelete, TableSchema
from retentiond.stores.sql._common import PG_DELETE_RULES, Family, qualify, split_name

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Dialect, Inspector
    from sqlalchemy.engine.interfaces import ReflectedColumn

# -- reflection --------------------------------------------------------------------------------


def reflect_table(
    connection: Connection,
    inspector: Inspector,
    family: Family,
    table: str,
    foreign_keys: tuple[ForeignKey, ...],
    *,
    logical: str | None = None,
) -> Reflected:
    """Reflect ``table`` into SQLAlchemy's Table and our TableSchema, with its foreign keys.

    ``logical``: the partitioned table ``table`` is a partition of, whose keys it shares.
    """
    schema, name = split_name(table)
    raw = inspector.get_columns(name, schema=schema)
    primary_key = tuple(inspector.get_pk_constraint(name, schema=schema)["constrained_columns"])
    unique = _unique_columns(connection, inspector, family, table, primary_key)
    columns = {
        c["name"]: _column_info(c, connection.dialect, family, primary_key, unique) for c in raw
    }
    qualified = qualify(schema, name) if logical in {None, table} else logical
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
    return Reflected(sa_table, info)


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
    identity = column.get("identity")
    return ColumnInfo(
        name=column["name"],
        kind=kind,
        type_name=type_name,
        nullable=nullable,
        length=length if isinstance(length, int) else None,
        unique=column["name"] in unique,
        timezone=timezone,
        generated=column.get("computed") is not None,
        always_identity=bool(identity["always"]) if identity is not None else False,
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
    schema, name = split_name(table)
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


def schema_foreign_keys(
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
                qualify(schema, referred)
                if referred_schema in {None, owner}
                else f"{referred_schema}.{referred}"
            )
            found.append(
                ForeignKey(
                    table=qualify(schema, table),
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
        return {(str(t), str(c)): PG_DELETE_RULES.get(str(d), "NO ACTION") for t, c, d in rows}
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



@dataclass(frozen=True)
class Reflected:
    """A reflected table: SQLAlchemy's Table for building statements, our TableSchema for rules."""

    table: sa.Table
    schema: TableSchema
