"""Clearing what a SQL database keeps of removed and rewritten values after a run acted.

A DELETE or an UPDATE leaves the old values behind, outside any table a query can see:

- SQLite: in the freed space of the file's pages, unless ``secure_delete`` zeroes it (every
  connection of a store sets it, see :mod:`.engines`), and in the WAL file (WAL mode) until
  a checkpoint copies the zeroed pages into the file and the WAL is truncated.  That
  checkpoint is made after every run that acted; ``compact`` adds a ``VACUUM`` (which also
  gives the freed pages back to the file system).
- PostgreSQL: in dead tuples until VACUUM.  ``compact: vacuum`` runs ``VACUUM``: dead tuples
  are gone and their space is free for reuse, but their bytes stay in the file until new rows
  overwrite them (measured: 43 of 50 deleted values were still in the file after ``VACUUM``).
  ``compact: rewrite`` runs ``VACUUM (FULL)``: the live rows are copied into a new file and
  the old one is removed, under an ACCESS EXCLUSIVE lock for as long as that takes.
- MariaDB/MySQL (InnoDB): in delete-marked records until the purge thread removes them, and in
  the freed space of pages after that.  ``OPTIMIZE TABLE`` rebuilds the table into a new file
  (online: writes wait only at its start and end); it serves both modes.

Compaction runs outside any transaction, without the statement timeout (a large table takes
longer than a batch), but with the lock timeout, so it gives up rather than queue behind a
long transaction; the connection is discarded afterwards rather than pooled with those
settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retentiond.errors import StoreError
from retentiond.stores.base import Compacted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

    from retentiond.stores.base import CompactMode
    from retentiond.stores.sql.caches import ReflectionCache
    from retentiond.stores.sql.engines import Engines

WAL_CHECKPOINT = "WAL checkpoint (TRUNCATE)"


class Compactor:
    """Runs a store's compaction (see the module docstring) on its write engine."""

    def __init__(self, engines: Engines, reflections: ReflectionCache) -> None:
        self._engines = engines
        self._reflections = reflections

    def compact(self, tables: Sequence[str], *, mode: CompactMode | None) -> Compacted | None:
        """Clear old values out of ``tables`` as ``mode`` asks; None when nothing was done."""
        engines = self._engines
        if mode is None and engines.family != "sqlite":
            return None
        connection = engines.connect(engines.for_writes(), plan=False)
        try:
            with engines.errors("cannot compact"):
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                if engines.family == "sqlite":
                    return self._sqlite(connection, tables, mode=mode)
                names = [self._quoted(connection, table) for table in tables]
                if engines.family == "postgresql":
                    connection.exec_driver_sql("SET statement_timeout = 0")
                    method = "VACUUM (FULL)" if mode == "rewrite" else "VACUUM"
                    connection.exec_driver_sql(f"{method} {', '.join(names)}")
                    return Compacted(tuple(tables), method)
                connection.exec_driver_sql("SET SESSION max_statement_time = 0")
                self._optimize(connection, names)
                return Compacted(tuple(tables), "OPTIMIZE TABLE")
        finally:
            if engines.family != "sqlite":
                connection.invalidate()  # its session settings stay out of the pool
            connection.close()

    def _sqlite(self, connection: Connection, tables: Sequence[str], *,
                mode: CompactMode | None) -> Compacted | None:
        """``VACUUM`` when asked (the whole file), then the WAL checkpoint in WAL mode."""
        done = []
        if mode is not None:
            connection.exec_driver_sql("VACUUM")
            done.append("VACUUM")
        journal = str(connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()).lower()
        complete = True
        if journal == "wal":
            busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            complete = not busy
            done.append(WAL_CHECKPOINT)
        if not done:
            return None
        return Compacted(tuple(tables), ", ".join(done), complete=complete)

    def _quoted(self, connection: Connection, table: str) -> str:
        """``table`` as the dialect quotes it, from its reflection (never from the policy text)."""
        reflected = self._reflections.reflected(connection, table)
        if reflected is None:
            raise StoreError(self._engines.name, f"cannot compact {table!r}: no such table",
                             "run 'retentiond validate' against the live store")
        return connection.dialect.identifier_preparer.format_table(reflected.table)

    def _optimize(self, connection: Connection, names: Sequence[str]) -> None:
        """``OPTIMIZE TABLE``; it reports a failure as a result row, not as an error."""
        rows = connection.exec_driver_sql(f"OPTIMIZE TABLE {', '.join(names)}").all()
        failed = [f"{row[0]}: {row[3]}" for row in rows if str(row[2]).lower() == "error"]
        if failed:
            raise StoreError(self._engines.name, f"OPTIMIZE TABLE failed: {'; '.join(failed)}",
                             "see the server's log; the run itself is done")
