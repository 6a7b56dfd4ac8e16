"""Quarantine tables: list their batches, restore one exactly, or purge it for good."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import REGCLASS

from retentiond.errors import StoreError
from retentiond.stores.base import Key, QuarantineBatch
from retentiond.stores.sql.keeping import AT, BATCH, RELEASE, RULE, RUN, batch_rows

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection

    from retentiond.stores.sql.bookkeeping import Bookkeeping
    from retentiond.stores.sql.caches import ReflectionCache
    from retentiond.stores.sql.engines import Engines
    from retentiond.stores.sql.reflect import Reflected


class Shelves:
    """The quarantine of one store: its batches listed, and one restored or purged at a time."""

    def __init__(self, engines: Engines, reflections: ReflectionCache,
                 bookkeeping: Bookkeeping) -> None:
        self._engines = engines
        self._reflections = reflections
        self._bookkeeping = bookkeeping

    def batches(self, table: str | None = None) -> list[QuarantineBatch]:
        """Every batch in quarantine (of ``table``, or of every table), oldest first."""
        with self._engines.errors("cannot list quarantine"), \
                self._engines.for_writes().connect() as connection:
            return list_batches(connection, self._engines.settings.quarantine_prefix, table)

    def keys(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """The primary keys of the batch's rows, in key order, read in one transaction."""
        return self._on_shelf(batch, "read", _keys_of)

    def restore(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """Put a quarantined batch back into its table, exactly as it was, in one transaction."""
        return self._on_shelf(batch, "restore", restore_batch)

    def purge(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """Delete a quarantined batch for good."""
        return self._on_shelf(batch, "purge", purge_batch)

    def _on_shelf(self, batch: QuarantineBatch, doing: str,
                  operation: Callable[[Connection, Reflected, sa.Table, QuarantineBatch],
                                      tuple[Key, ...]],
                  ) -> tuple[Key, ...]:
        name = self._engines.name
        with self._engines.errors(f"cannot {doing} batch {batch.batch_id}"), \
                self._engines.for_writes().begin() as conn:
            source = self._reflections.reflected(conn, batch.table)
            if source is None:
                raise StoreError(name, f"table {batch.table!r} no longer exists")
            keys = operation(conn, source, self._bookkeeping.quarantine_table(conn, batch.table),
                             batch)
            if len(keys) != batch.rows:  # exactly what was listed, or nothing (rolled back)
                raise StoreError(name, f"batch {batch.batch_id} holds {len(keys)} rows, "
                                 f"not the {batch.rows} listed; nothing was done",
                                 "list the batches again")
            return keys


def list_batches(connection: Connection, prefix: str, table: str | None) -> list[QuarantineBatch]:
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


def _keys(connection: Connection, source: Reflected, shelf: sa.Table,
          batch: QuarantineBatch) -> list[Key]:
    columns = [shelf.c[c] for c in source.schema.primary_key]
    query = sa.select(*columns).where(_rows(shelf, batch)).order_by(*columns)
    return [tuple(row) for row in connection.execute(query)]


def _keys_of(connection: Connection, source: Reflected, shelf: sa.Table,
             batch: QuarantineBatch) -> tuple[Key, ...]:
    return tuple(_keys(connection, source, shelf, batch))


def _rows(shelf: sa.Table, batch: QuarantineBatch) -> sa.ColumnElement[bool]:
    return batch_rows(shelf, batch.batch_id, batch.quarantined_at)


def restore_batch(connection: Connection, source: Reflected, shelf: sa.Table,
            batch: QuarantineBatch) -> tuple[Key, ...]:
    """Copy the batch's rows back into ``source`` and remove them from quarantine."""
    keys = _keys(connection, source, shelf, batch)
    # Generated columns are computed again from the others; they cannot be inserted.
    names = [c.name for c in source.table.columns if not source.schema.columns[c.name].generated]
    statement = sa.insert(source.table).from_select(
        names, sa.select(*(shelf.c[n] for n in names)).where(_rows(shelf, batch)))
    always = any(info.always_identity for info in source.schema.columns.values())
    if always and connection.dialect.name == "postgresql":
        # GENERATED ALWAYS AS IDENTITY refuses given values unless told to keep them.
        compiled = statement.compile(dialect=connection.dialect)
        sql = str(compiled).replace(") SELECT ", ") OVERRIDING SYSTEM VALUE SELECT ", 1)
        connection.exec_driver_sql(sql, compiled.params)
    else:
        connection.execute(statement)
    _remove(connection, shelf, batch)
    return tuple(keys)


def purge_batch(connection: Connection, source: Reflected, shelf: sa.Table,
          batch: QuarantineBatch) -> tuple[Key, ...]:
    """Delete the batch from quarantine for good."""
    keys = _keys(connection, source, shelf, batch)
    _remove(connection, shelf, batch)
    return tuple(keys)


_PAGES_PER_RANGE = 128
"""Heap pages a BRIN summary covers: PostgreSQL's default, which quarantine_index keeps."""


def _remove(connection: Connection, shelf: sa.Table, batch: QuarantineBatch) -> None:
    """Delete the batch's rows; on PostgreSQL, forget the BRIN summaries of their pages.

    A BRIN summary only widens: pages freed here and filled again by later batches would
    keep the old batch's ``_rtd_at`` as their minimum, and in the long run every range
    would match every lookup.  A forgotten range is scanned until VACUUM (which the
    deletion calls for) summarizes it afresh from the rows it then holds.
    """
    ranges: list[int] = []
    brin = _brin_index(connection, shelf) if connection.dialect.name == "postgresql" else None
    if brin is not None:
        block = sa.text(f"((ctid::text::point)[0]::bigint / {_PAGES_PER_RANGE}) "
                        f"* {_PAGES_PER_RANGE}")
        ranges = list(connection.execute(
            sa.select(block).select_from(shelf).where(_rows(shelf, batch)).distinct())
            .scalars())
    connection.execute(sa.delete(shelf).where(_rows(shelf, batch)))
    for start in ranges:
        try:
            with connection.begin_nested():  # a refusal (not the owner) must not undo the purge
                connection.execute(sa.select(sa.func.brin_desummarize_range(
                    sa.cast(brin, REGCLASS), start)))
        except sa.exc.DBAPIError:
            break  # the index stays as it is: lookups get slower, never wrong


def _brin_index(connection: Connection, shelf: sa.Table) -> str | None:
    """The qualified name of the BRIN index on ``shelf``, if it has one (PostgreSQL)."""
    name = connection.dialect.identifier_preparer.format_table(shelf)
    return connection.execute(sa.text(
        "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c "
        "ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
        "WHERE i.indrelid = CAST(:shelf AS regclass) AND a.amname = 'brin' LIMIT 1"),
        {"shelf": name}).scalar()
