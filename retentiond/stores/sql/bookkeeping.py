"""retentiond's own tables in a SQL store: described once, created where missing, read back.

The batch markers, the records of pseudonymized keys (as text, or as bits for one-column
integer keys) and one quarantine table per source table are described by
:mod:`retentiond.stores.sql.keeping`.  Each is built once per store: a new Table object per
batch would make every statement miss SQLAlchemy's compiled cache, which then keeps each
batch's statement and its values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from retentiond.errors import StoreError
from retentiond.stores.sql.keeping import (
    VOID,
    DoneTables,
    compress_payloads_with_lz4,
    done_bits_table,
    done_table,
    marker_table,
    quarantine_index,
    quarantine_name,
    quarantine_table,
    records_bits,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

    from retentiond.stores.sql.caches import ReflectionCache
    from retentiond.stores.sql.engines import Engines


class Bookkeeping:
    """The marker, done and quarantine tables of the store whose ``engines`` are given."""

    def __init__(self, engines: Engines, reflections: ReflectionCache) -> None:
        self._engines = engines
        self._settings = engines.settings
        self._reflections = reflections
        self._done_found: DoneTables | None = None
        self._markers: sa.Table | None = None
        self._done: sa.Table | None = None
        self._done_bits: sa.Table | None = None
        self._shelves: dict[str, sa.Table] = {}

    def marker_table(self) -> sa.Table:
        """The batch-marker table of this store."""
        if self._markers is None:
            self._markers = marker_table(self._settings.marker_table)
        return self._markers

    def done_table(self) -> sa.Table:
        """The table of keys pseudonymize rules have rewritten in this store."""
        if self._done is None:
            self._done = done_table(self._settings.done_table)
        return self._done

    def done_bits_table(self) -> sa.Table:
        """The table of one-column integer keys pseudonymize rules have rewritten, as bits."""
        if self._done_bits is None:
            self._done_bits = done_bits_table(self._settings.done_bits_table)
        return self._done_bits

    def existing_done_tables(self, connection: Connection) -> DoneTables:
        """The tables of pseudonymized keys that exist, looked up once.

        Absent stays absent until :meth:`prepare` creates one: the records a rule's claims
        look for are its own, made after its run prepared their table (or, for integer keys
        recorded as text by an earlier version, before this process started).
        """
        if self._done_found is None:
            with self._engines.errors("cannot look for the pseudonymized keys"):
                inspector = sa.inspect(connection)
                self._done_found = DoneTables(
                    keys=self.done_table() if inspector.has_table(self._settings.done_table)
                    else None,
                    bits=self.done_bits_table()
                    if inspector.has_table(self._settings.done_bits_table) else None)
        return self._done_found

    def quarantine_table(self, connection: Connection, table: str) -> sa.Table:
        """The quarantine table of ``table`` (described, not created)."""
        cached = self._shelves.get(table)
        if cached is not None:
            return cached
        source = self._reflections.reflected(connection, table)
        if source is None:
            raise StoreError(self._engines.name, f"table {table!r} does not exist")
        shelf = quarantine_table(source, quarantine_name(self._settings.quarantine_prefix, table))
        self._shelves[table] = shelf
        return shelf

    def prepare(self, *, quarantine_of: Sequence[str] = (), done_of: Sequence[str] = ()) -> None:
        """Create, where missing, the marker table and the tables the actions need."""
        family = self._engines.family
        with self._engines.errors("cannot create retentiond's tables"), \
                self._engines.for_writes().begin() as connection:
            markers = self.marker_table()
            if not sa.inspect(connection).has_table(markers.name, schema=markers.schema):
                markers.create(connection)
                if family == "postgresql":
                    compress_payloads_with_lz4(connection, markers)
            for table in done_of:
                reflected = self._reflections.reflected(connection, table)
                bits = reflected is not None and records_bits(reflected.schema)
                (self.done_bits_table() if bits else self.done_table()).create(
                    connection, checkfirst=True)
            for table in quarantine_of:
                shelf = self.quarantine_table(connection, table)
                if not sa.inspect(connection).has_table(shelf.name, schema=shelf.schema):
                    shelf.create(connection)
                    quarantine_index(shelf, family).create(connection)
        if done_of:
            self._done_found = None  # looked up again, now that they exist

    def find_mark(self, batch_id: str) -> str | None:
        """Settle a batch for good: its marker's payload if it committed, None if it never will.

        No marker yet does not prove the batch failed: its COMMIT may still be under way (the
        client died, the server carries on).  So a void marker is inserted under the same id:
        that insert waits for a transaction still holding the id, then either hits the real
        marker (the batch committed) or takes the id (the batch can never commit).  When the
        wait outlasts the lock timeout, StoreUnavailable says: ask again later.
        """
        markers = self.marker_table()
        with self._engines.errors("cannot settle the batch marker"), \
                self._engines.for_writes().connect() as connection:
            if not sa.inspect(connection).has_table(markers.name, schema=markers.schema):
                return None
            found = connection.execute(sa.select(markers.c.payload)
                                       .where(markers.c.batch_id == batch_id)).scalar()
            connection.rollback()  # end the read; the void marker gets a transaction of its own
            if found is None:
                try:
                    with connection.begin():
                        connection.execute(sa.insert(markers).values(
                            batch_id=batch_id, run_id="-", rule="-", payload=VOID))
                except sa_exc.IntegrityError:
                    found = connection.execute(sa.select(markers.c.payload)
                                               .where(markers.c.batch_id == batch_id)).scalar()
        if found is None or str(found) == VOID:
            return None
        return str(found)

    def forget(self, table: str | None = None) -> None:
        """Look up the done tables again; drop the quarantine table of ``table`` (or of all)."""
        self._done_found = None
        if table is None:
            self._shelves.clear()
        else:
            self._shelves.pop(table, None)  # its columns follow the source table's
