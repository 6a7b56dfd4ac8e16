"""Quarantine tables: list their batches, restore one exactly, or purge it for good."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from retentiond.stores.base import Key, QuarantineBatch
from retentiond.stores.sql.keeping import AT, BATCH, RELEASE, RULE, RUN

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from retentiond.stores.sql.reflect import Reflected


def batches(connection: Connection, prefix: str, table: str | None) -> list[QuarantineBatch]:
    """The batches in every quarantine table named ``<prefix><table>``."""
    schema = table.rpartition(".")[0] or None if table else None
    names = sa.inspect(connection).get_table_names(schema=schema)
    wanted = [n for n in names if n.startswith(prefix)
              and (table is None or n == prefix + table.rpartition(".")[2])]
    found: list[QuarantineBatch] = []
    for name in sorted(wanted):
        shelf = sa.Table(name, sa.MetaData(), sa.Column(BATCH), sa.Column(RULE), sa.Column(RUN),
                         sa.Column(AT), sa.Column(RELEASE), schema=schema)
        source = f"{schema}.{name[len(prefix):]}" if schema else name[len(prefix):]
        query = (sa.select(shelf.c[BATCH], shelf.c[RULE], shelf.c[RUN], sa.func.min(shelf.c[AT]),
                           sa.func.min(shelf.c[RELEASE]), sa.func.count())
                 .group_by(shelf.c[BATCH], shelf.c[RULE], shelf.c[RUN]))
        found.extend(QuarantineBatch(batch_id=str(b), table=source, rule=str(r), run_id=str(u),
                                     quarantined_at=str(a), release_at=str(e), rows=int(n))
                     for b, r, u, a, e, n in connection.execute(query))
    return sorted(found, key=lambda batch: (batch.quarantined_at, batch.batch_id))


def _keys(connection: Connection, source: Reflected, shelf: sa.Table, batch_id: str) -> list[Key]:
    columns = [shelf.c[c] for c in source.schema.primary_key]
    query = sa.select(*columns).where(shelf.c[BATCH] == batch_id).order_by(*columns)
    return [tuple(row) for row in connection.execute(query)]


def restore(connection: Connection, source: Reflected, shelf: sa.Table,
            batch_id: str) -> tuple[Key, ...]:
    """Copy the batch's rows back into ``source`` and remove them from quarantine."""
    keys = _keys(connection, source, shelf, batch_id)
    # Generated columns are computed again from the others; they cannot be inserted.
    names = [c.name for c in source.table.columns if not source.schema.columns[c.name].generated]
    statement = sa.insert(source.table).from_select(
        names, sa.select(*(shelf.c[n] for n in names)).where(shelf.c[BATCH] == batch_id))
    always = any(info.always_identity for info in source.schema.columns.values())
    if always and connection.dialect.name == "postgresql":
        # GENERATED ALWAYS AS IDENTITY refuses given values unless told to keep them.
        compiled = statement.compile(dialect=connection.dialect)
        sql = str(compiled).replace(") SELECT ", ") OVERRIDING SYSTEM VALUE SELECT ", 1)
        connection.exec_driver_sql(sql, compiled.params)
    else:
        connection.execute(statement)
    connection.execute(sa.delete(shelf).where(shelf.c[BATCH] == batch_id))
    return tuple(keys)


def purge(connection: Connection, source: Reflected, shelf: sa.Table,
          batch_id: str) -> tuple[Key, ...]:
    """Delete the batch from quarantine for good."""
    keys = _keys(connection, source, shelf, batch_id)
    connection.execute(sa.delete(shelf).where(shelf.c[BATCH] == batch_id))
    return tuple(keys)
