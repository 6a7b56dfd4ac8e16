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
  ``compact: rewrite`` then runs ``VACUUM (FULL)``: the live rows are copied into a new file
  and the old one is removed, under an ACCESS EXCLUSIVE lock for as long as that takes.
- MariaDB/MySQL (InnoDB): in delete-marked records until the purge thread removes them, and in
  the freed space of pages after that.  ``OPTIMIZE TABLE`` rebuilds the table into a new file
  (online: writes wait only at its start and end); it serves both modes.

Compaction runs outside any transaction, without the statement timeout (a large table takes
longer than a batch), but with the lock timeout, so it gives up rather than queue behind a
long transaction; the connection is discarded afterwards rather than pooled with those
settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retentiond.errors import StoreError
from retentiond.stores.base import Compacted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

    from retentiond.stores.base import CompactMode
    from retentiond.stores.sql.caches import ReflectionCache
    from retentiond.stores.sql.engines import Engines

WAL_CHECKPOINT = "WAL checkpoint (TRUNCATE)"

RESIDUE: dict[str, str | None] = {
    "sqlite": None,  # secure_delete zeroes them as the batch commits; the WAL is checkpointed
    "postgresql": "dead tuples, until autovacuum removes them and new rows overwrite their "
                  "space",
    "mysql": "delete-marked records and freed page space, until InnoDB purges them and new "
             "rows overwrite their space",
}
"""What a run that does not compact leaves of old values, per family (see the docstring)."""

VACUUM_LEAVES = "the bytes of the vacuumed dead tuples, until new rows overwrite their space"


class Compactor:
    """Runs a store's compaction (see the module docstring) on its write engine."""

    def __init__(self, engines: Engines, reflections: ReflectionCache) -> None:
        self._engines = engines
        self._reflections = reflections

    def residue(self) -> str | None:
        """What a run that does not compact leaves of old values; see :data:`RESIDUE`."""
        return RESIDUE[self._engines.family]

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
                    return self._postgresql(connection, tables, names, mode=mode)
                connection.exec_driver_sql("SET SESSION max_statement_time = 0")
                self._optimize(connection, names)
                return Compacted(tuple(tables), "OPTIMIZE TABLE")
        finally:
            if engines.family != "sqlite":
                connection.invalidate()  # its session settings stay out of the pool
            connection.close()

    def _postgresql(self, connection: Connection, tables: Sequence[str], names: Sequence[str],
                    *, mode: CompactMode | None) -> Compacted:
        """``VACUUM``, then for a rewrite ``VACUUM (FULL)``; partial if a reader may hold rows.

        The plain VACUUM goes first: it removes dead tuples as far as this database's oldest
        snapshot allows, while ``VACUUM (FULL)`` alone judges by every database's (measured:
        a transaction open in another database made it copy all 40 dead tuples, bytes and
        all, into the new file).  Tuples a transaction of this database that began before
        may still see cannot go; such a transaction makes the compaction ``partial``.
        """
        connection.exec_driver_sql("SET statement_timeout = 0")
        began = connection.exec_driver_sql("SELECT clock_timestamp()").scalar_one()
        steps = ["VACUUM", *(["VACUUM (FULL)"] if mode == "rewrite" else [])]
        # A table VACUUM may not touch (another role owns it) is skipped with a WARNING,
        # not an error: heard here, it fails the compaction instead of passing for done.
        warned: list[str] = []

        def hear(notice: Any) -> None:  # noqa: ANN401 - psycopg's Diagnostic
            if notice.severity_nonlocalized == "WARNING":
                warned.append(str(notice.message_primary))

        driver: Any = connection.connection.driver_connection
        driver.add_notice_handler(hear)
        try:
            for step in steps:
                connection.exec_driver_sql(f"{step} {', '.join(names)}")
        finally:
            driver.remove_notice_handler(hear)
        if warned:
            raise StoreError(self._engines.name, f"{steps[0]} did not compact: {warned[0]}",
                             "let the store's role own the table (or compact as its owner)")
        older = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL "
            "AND xact_start < %(began)s", {"began": began}).scalar_one()
        if older:
            held = (f"dead tuples that {older} transaction(s) open since before the "
                    "compaction may still see, until they end and the next compaction")
            return Compacted(tuple(tables), ", ".join(steps), complete=False, leaves=held)
        return Compacted(tuple(tables), ", ".join(steps),
                         leaves=None if mode == "rewrite" else VACUUM_LEAVES)

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
        leaves = None if complete else "the WAL file, until its next checkpoint (readers kept it)"
        return Compacted(tuple(tables), ", ".join(done), complete=complete, leaves=leaves)

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
