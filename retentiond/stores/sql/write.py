"""Writing a batch: claim rows, remove, rewrite or quarantine them, and mark the batch.

Everything here runs in the one transaction of a :class:`SqlWriter`; the store commits it when
the batch is complete and rolls it back on any error, so a batch is applied whole or not at all.
Rows are always addressed by primary key, in chunks small enough for every driver's limit on
bound parameters.
"""

from __future__ import annotations

import json
import operator
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from retentiond.errors import StoreError, StoreUnavailable
from retentiond.stores.base import (
    ColumnKind,
    Key,
    Reach,
    RelatedAge,
    Removal,
    Row,
    Selection,
    T,
    TableSchema,
    Writer,
    reach_order,
)
from retentiond.stores.sql.compile import after_key, referencing
from retentiond.stores.sql.keeping import (
    AT,
    BATCH,
    RELEASE,
    RULE,
    RUN,
    batch_rows,
    key_text,
    key_words,
    records_bits,
)
from retentiond.stores.sql.session import Session

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

_PLAIN_KINDS = frozenset({ColumnKind.INTEGER, ColumnKind.TEXT})

JSON_EACH = sqlite3.sqlite_version_info >= (3, 38)
"""Whether SQLite has json_each built in (it has since 3.38; earlier it was optional)."""

CHUNK_PARAMETERS = 30_000
"""Bound parameters per statement: under SQLite's 32,766 and PostgreSQL's 65,535."""


def chunks(rows: Sequence[Any], width: int) -> Iterator[Sequence[Any]]:
    """``rows`` in slices of at most CHUNK_PARAMETERS bound parameters each."""
    size = max(1, CHUNK_PARAMETERS // max(width, 1))
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def key_in(columns: Sequence[sa.ColumnElement[Any]], keys: Sequence[Key], family: str = ""
           ) -> ColumnElement[bool]:
    """``key IN (...)`` for one-column and composite keys.

    On PostgreSQL a one-column key is matched with ``= ANY(array)``, on SQLite (integer or
    text keys) with ``IN (SELECT value FROM json_each(:keys))``: one bound parameter instead
    of thousands, so the statement text is the same every batch and nothing has to render,
    send or parse a ten-thousand-placeholder list.
    """
    if len(columns) == 1:
        if family == "sqlite" and JSON_EACH:
            first = [key[0] for key in keys]
            kind = type(first[0]) if first else int
            if kind in {int, str} and set(map(type, first)) == {kind}:
                # One JSON text instead of thousands of placeholders, each of which SQLAlchemy
                # would otherwise render, name and coerce, and SQLite parse.
                listed: sa.Select[Any] = sa.select(sa.column("value")).select_from(
                    sa.func.json_each(sa.bindparam(None, json.dumps(first), type_=sa.Text)))
                return columns[0].in_(listed.scalar_subquery())
            return columns[0].in_(first)
        if family == "postgresql":
            first = [key[0] for key in keys]
            if set(map(type, first)) == {int}:
                # One text literal the server parses: far cheaper than dumping each element.
                literal = "{" + ",".join(map(str, first)) + "}"
                values: ColumnElement[Any] = sa.cast(
                    sa.bindparam(None, literal, type_=sa.Text),
                    postgresql.ARRAY(sa.BigInteger))
            else:
                values = sa.bindparam(None, first, type_=postgresql.ARRAY(columns[0].type))
            return columns[0] == sa.any_(values)
        return columns[0].in_([key[0] for key in keys])
    return sa.tuple_(*columns).in_([tuple(key) for key in keys])


class SqlWriter(Session, Writer):
    """One write transaction of a :class:`SqlStore`."""

    def claim(
        self, selection: Selection, *, after: Key | None, limit: int, columns: Sequence[str] = (),
        lock: bool = True,
    ) -> list[Row]:
        """The next ``limit`` eligible rows after ``after`` (walking the key, never OFFSET).

        Locked (FOR UPDATE) unless ``lock`` is false and this store re-checks instead: an
        unlocked claim holds no row lock while the batch's intent is written, so the
        application waits for nothing but the act itself.
        """
        compiled = self.compile(selection)
        keys = self.primary_key(compiled, selection.table)
        values = [compiled.table.c[c] for c in columns]
        statement = (sa.select(*keys, *values).where(compiled.eligible).order_by(*keys)
                     .limit(limit))
        if after is not None:
            statement = statement.where(after_key(keys, after, self._parts.family))
        # SQLite's writer holds the database lock: its rows cannot change under a batch.
        locked = self._parts.family != "sqlite" and (lock or not self._rechecks())
        if locked:
            statement = statement.with_for_update()
        width = len(keys)
        plain = all(compiled.schema.columns[c.name].kind in _PLAIN_KINDS for c in keys + values)
        with self._parts.errors(f"cannot claim rows of {selection.table!r}"):
            try:
                rows = _tuples(self.connection.execute(statement), plain=plain)
            except (ValueError, TypeError) as exc:
                # SQLite keeps any value in any column: '15/07/1990' in a DATE column fails
                # SQLAlchemy's conversion, with the value in the message (kept in ``detail``).
                raise StoreError(self._parts.name,
                                 f"cannot claim rows of {selection.table!r}: a value does not "
                                 f"read as its column's type ({type(exc).__name__})",
                                 "correct the stored value, then run the rule again",
                                 detail=str(exc)) from None
        if locked and rows and selection.age is not None and selection.age.related is not None:
            self._lock_related(selection.table, selection.age.related,
                               [row[:width] for row in rows])
        if not values:  # each row is its key already
            return [(row, ()) for row in rows]
        return [(row[:width], row[width:]) for row in rows]

    def _lock_related(self, table: str, related: RelatedAge, keys: Sequence[Key]) -> None:
        """Lock every row an age from related rows was read from, until the batch ends.

        The claim locks the claimed rows; the act then takes them by key.  An invoice re-dated
        or issued in between would go unseen, and a customer no longer due be deleted.  So
        every row on the path is locked FOR UPDATE too: existing ones cannot change, and new
        ones cannot be added, since their foreign key must share-lock a locked parent.
        """
        key_columns = self._key_columns(table)
        previous: sa.FromClause = self.table(table).table
        joined: sa.FromClause = previous
        for depth, fk in enumerate(related.path):
            alias = self.table(fk.table).table.alias(f"lock_{depth}")
            joined = joined.join(alias, sa.and_(*(
                alias.c[c] == previous.c[r]
                for c, r in zip(fk.columns, fk.ref_columns, strict=True))))
            previous = alias
        with self._parts.errors(f"cannot lock the rows related to {table!r}"):
            for chunk in chunks(keys, len(key_columns)):
                self.connection.execute(sa.select(sa.literal(1)).select_from(joined).where(
                    self._key_in(key_columns, chunk)).with_for_update()).all()

    def remove(
        self, table: str, keys: Sequence[Key], reaches: Sequence[Reach], *,
        recheck: Selection | None = None,
    ) -> Removal:
        """Delete rows by key; record what the deletion reaches; children first where asked."""
        if recheck is not None and self._rechecks():
            if reaches:
                raise ValueError("a removal that reaches other rows needs its rows locked")
            return Removal(removed=self._delete_rechecked(table, keys, recheck))
        reflected = self.table(table).table
        key_columns = self._key_columns(table)
        with self._parts.errors(f"cannot delete from {table!r}"):
            reached = self._reached_once(table, keys, reaches)
            depth: dict[str, int] = {}
            for reach in reaches:
                if reach.effect == "delete first":
                    name = reach.path[-1].table
                    depth[name] = max(depth.get(name, 0), len(reach.path))
            for name in sorted(depth, key=lambda n: depth[n], reverse=True):  # deepest first
                self._delete_keys(name, reached.get(f"{name} (delete first)", []))
            removed = self._delete_keys(table, keys, reflected=reflected, columns=key_columns)
        if removed != len(keys):
            raise StoreError(self._parts.name,
                             f"deleted {removed} of {len(keys)} claimed rows of {table!r}; "
                             "the batch was rolled back", "run the rule again")
        return Removal(removed=tuple(keys), reached=reached)

    def rewrite(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> int:
        """Set ``columns`` to new values per key, set-based (one statement per chunk)."""
        if not rows:
            return 0
        family = self._parts.family
        with self._parts.errors(f"cannot rewrite rows of {table!r}"):
            if family == "postgresql":
                if len(self._key_columns(table)) == 1:
                    return self._rewrite_from_arrays(table, columns, rows)
                return self._rewrite_from_values(table, columns, rows)
            if family == "mysql":
                return self._rewrite_through_temporary(table, columns, rows)
            return self._rewrite_many(table, columns, rows)

    def quarantine(
        self, table: str, keys: Sequence[Key], *, batch_id: str, run_id: str, rule: str,
        release_at: str, recheck: Selection | None = None,
    ) -> Removal:
        """Copy the rows into the quarantine table with their bookkeeping, then delete them."""
        source = self.table(table).table
        target = self._parts.bookkeeping.quarantine_table(self.connection, table)
        key_columns = self._key_columns(table)
        bookkeeping = {BATCH: batch_id, RUN: run_id, RULE: rule, AT: _now_text(),
                       RELEASE: release_at}
        if recheck is not None and self._rechecks():
            moved = self._move_rechecked(table, keys, recheck, target, bookkeeping)
            return Removal(removed=moved)
        names = [c.name for c in source.columns]
        with self._parts.errors(f"cannot quarantine rows of {table!r}"):
            inserted, removed = [], 0
            for chunk in chunks(keys, len(key_columns)):
                chosen = self._key_in(key_columns, chunk)  # built once, for both statements
                select = sa.select(*source.columns, *(sa.literal(v, sa.String).label(k)
                                                      for k, v in bookkeeping.items()))
                inserted.append(self.connection.execute(sa.insert(target).from_select(
                    [*names, *bookkeeping], select.where(chosen))).rowcount)
                removed += self.connection.execute(sa.delete(source).where(chosen)).rowcount
            # SQLite and MySQL report what INSERT ... SELECT inserted; psycopg, through
            # SQLAlchemy, says -1.  Counting instead cost a lookup of the batch's rows.
            copied = sum(inserted) if min(inserted, default=0) >= 0 else -1
            if copied < 0:
                copied = self.connection.execute(
                    sa.select(sa.func.count()).select_from(target)
                    .where(batch_rows(target, batch_id, bookkeeping[AT]))).scalar_one()
        self._check_moved(table, copied, removed, len(keys))
        return Removal(removed=tuple(keys))

    def mark(self, batch_id: str, run_id: str, rule: str, payload: str) -> None:
        """Insert the batch marker; it commits (or not) with the batch itself."""
        markers = self._parts.bookkeeping.marker_table()
        with self._parts.errors("cannot write the batch marker"):
            self.connection.execute(sa.insert(markers).values(
                batch_id=batch_id, run_id=run_id, rule=rule, payload=payload))

    def record_done(self, table: str, rule: str, keys: Sequence[Key], *,
                    meanwhile: Callable[[], T]) -> T:
        """Record the rows as done, and return what ``meanwhile()`` returns.

        One-column integer keys are bits, a few hundred rows a batch (~5 ms on PostgreSQL),
        recorded first, in this thread.  Any other key is a text row of its own (~45 ms for
        10,000 on PostgreSQL): on a database server that INSERT goes out from a helper thread,
        which waits for the server without the GIL while the pseudonyms are computed here;
        this thread does not touch the connection until the helper is done.  For the bits
        the helper bought nothing measurable (a 1M-row run on PostgreSQL: 2.21 s with it,
        2.29 without, within the noise), so they take the simpler path.  SQLite works in
        this process, on the same CPU and GIL: there the keys are always recorded first.
        """
        if records_bits(self.table(table).schema):
            self._record_bits(rule, keys)
            return meanwhile()
        statements = self._done_texts(table, rule, keys)

        def record() -> None:
            with self._parts.errors("cannot record pseudonymized rows"):
                for statement in statements:
                    self.connection.execute(statement)

        if self._parts.family == "sqlite":
            record()
            return meanwhile()
        failed: list[BaseException] = []

        def record_or_keep_failure() -> None:
            try:
                record()
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                failed.append(exc)

        helper = threading.Thread(target=record_or_keep_failure, name="retentiond-record-done")
        helper.start()
        try:
            result = meanwhile()
        finally:
            helper.join()
        if failed:
            raise failed[0]
        return result

    def _record_bits(self, rule: str, keys: Sequence[Key]) -> None:
        """OR each one-column integer key's bit into its row of the done-bits table."""
        family = self._parts.family
        words = key_words((key[0] for key in keys), family)
        with self._parts.errors("cannot record pseudonymized rows"):
            self.connection.execute(_merge_bits(self._parts.bookkeeping.done_bits_table(), family),
                                    [{"rule": rule, "word": word, "bits": bits}
                                     for word, bits in words.items()])

    def _done_texts(self, table: str, rule: str, keys: Sequence[Key]) -> list[sa.Executable]:
        done = self._parts.bookkeeping.done_table()
        insert = _insert_ignoring_duplicates(done, self._parts.family)
        texts = _key_texts(self.table(table).schema, keys, self._parts.family)
        if texts is not None:
            # WHERE: SQLite cannot tell ON CONFLICT from a join after a bare SELECT.
            rows = sa.select(sa.literal(rule, sa.String(80)), texts).where(sa.true())
            return [insert.from_select(["rule", "row_key"], rows)]
        # Other key types are printed by the database itself, from the rows.
        key_columns = self._key_columns(table)
        return [insert.from_select(["rule", "row_key"], sa.select(
                    sa.literal(rule, sa.String(80)), key_text(list(key_columns)),
                ).where(self._key_in(key_columns, chunk)))
                for chunk in chunks(keys, len(key_columns))]

    # -- acting on unlocked claims (PostgreSQL) --------------------------------------------

    def _rechecks(self) -> bool:
        """Whether unlocked claims are acted on by re-checking them (PostgreSQL).

        A DELETE that carries the selection's conditions re-evaluates them on each row's
        newest version as it takes the row's lock, and RETURNING says which rows went.
        SQLite needs no re-check (its writer holds the database); MySQL cannot return what
        a DELETE removed, so MariaDB and MySQL claims stay locked.
        """
        return self._parts.family == "postgresql"

    def _delete_rechecked(self, table: str, keys: Sequence[Key], recheck: Selection
                          ) -> tuple[Key, ...]:
        """Delete the keyed rows still eligible under ``recheck``: all of them, or none.

        When a row changed or went since the claim, fewer rows are deleted than claimed; the
        batch is then rolled back (StoreUnavailable) and retried, so its next claim sees the
        rows as they are now.  Counting, rather than RETURNING every key, keeps the usual
        case (nothing changed) as cheap as a plain DELETE.
        """
        compiled = self.compile(recheck)
        key_columns = self._key_columns(table)
        removed = 0
        with self._parts.errors(f"cannot delete from {table!r}"):
            for chunk in chunks(keys, len(key_columns)):
                statement = (sa.delete(compiled.table)
                             .where(self._key_in(key_columns, chunk), compiled.eligible))
                removed += self.connection.execute(statement).rowcount
        if removed != len(keys):
            raise StoreUnavailable(
                self._parts.name,
                f"{len(keys) - removed} of {len(keys)} claimed rows of {table!r} changed or "
                "went before they were deleted; the batch was rolled back to be claimed again",
                "nothing to do: the batch is retried")
        return tuple(keys)

    def _move_rechecked(self, table: str, keys: Sequence[Key], recheck: Selection,
                        target: sa.Table, bookkeeping: dict[str, str]) -> tuple[Key, ...]:
        """One statement per chunk: the DELETE of the still-eligible rows feeds the INSERT.

        ``WITH moved AS (DELETE ... RETURNING *), shelved AS (INSERT INTO quarantine SELECT
        moved.*, ... RETURNING 1) SELECT count(moved), count(shelved)``: a row is moved whole
        or not at all.  As with a delete, all the claimed rows move or the batch is rolled
        back: fewer rows deleted than claimed (a row changed or went since the claim) rolls
        it back to be claimed again (StoreUnavailable); fewer rows kept than deleted (a
        trigger on the quarantine table can drop a row silently) rolls it back as an error,
        as otherwise the row would be gone without being moved or audited.  Counting, rather
        than returning every key moved, kept ~6 ms of a 10,000-row batch (psycopg, 1M rows).
        """
        compiled = self.compile(recheck)
        source = compiled.table
        key_columns = self._key_columns(table)
        names = [c.name for c in source.columns]
        deleted = copied = 0
        with self._parts.errors(f"cannot quarantine rows of {table!r}"):
            for chunk in chunks(keys, len(key_columns)):
                moved = (sa.delete(source)
                         .where(self._key_in(key_columns, chunk), compiled.eligible)
                         .returning(*source.columns).cte("rtd_moved"))
                copies = sa.select(*(moved.c[n] for n in names),
                                   *(sa.literal(v, sa.String).label(k)
                                     for k, v in bookkeeping.items()))
                shelved = (sa.insert(target).from_select([*names, *bookkeeping], copies)
                           .returning(sa.literal(1)).cte("rtd_shelved"))
                counted = sa.select(
                    sa.select(sa.func.count()).select_from(moved).scalar_subquery(),
                    sa.select(sa.func.count()).select_from(shelved).scalar_subquery())
                chunk_deleted, chunk_copied = self.connection.execute(counted).one()
                deleted += chunk_deleted
                copied += chunk_copied
        if deleted != len(keys):
            raise StoreUnavailable(
                self._parts.name,
                f"{len(keys) - deleted} of {len(keys)} claimed rows of {table!r} changed or "
                "went before they were quarantined; the batch was rolled back to be claimed "
                "again", "nothing to do: the batch is retried")
        self._check_moved(table, copied, deleted, len(keys))
        return tuple(keys)

    def _check_moved(self, table: str, copied: int, removed: int, expected: int) -> None:
        """Every row deleted was copied into quarantine, else the batch is rolled back."""
        if not copied == removed == expected:
            raise StoreError(self._parts.name,
                             f"moved {copied} and deleted {removed} of {expected} rows of "
                             f"{table!r}; the batch was rolled back",
                             "look for a trigger on the quarantine table that drops rows, then "
                             "run the rule again")

    # -- helpers ---------------------------------------------------------------------------

    def _key_in(self, columns: Sequence[sa.ColumnElement[Any]], keys: Sequence[Key]
                ) -> ColumnElement[bool]:
        return key_in(columns, keys, self._parts.family)

    def _key_columns(self, table: str) -> list[sa.Column[Any]]:
        reflected = self.table(table)
        if not reflected.schema.primary_key:
            raise StoreError(self._parts.name, f"table {table!r} has no primary key")
        return [reflected.table.c[c] for c in reflected.schema.primary_key]

    def _delete_keys(
        self,
        table: str,
        keys: Sequence[Key],
        *,
        reflected: sa.Table | None = None,
        columns: Sequence[sa.Column[Any]] | None = None,
    ) -> int:
        target = reflected if reflected is not None else self.table(table).table
        key_columns = columns if columns is not None else self._key_columns(table)
        removed = 0
        for chunk in chunks(keys, len(key_columns)):
            statement = sa.delete(target).where(self._key_in(key_columns, chunk))
            result = self.connection.execute(statement)
            removed += result.rowcount
        return removed

    def _reached_once(self, table: str, keys: Sequence[Key], reaches: Sequence[Reach],
                      ) -> dict[str, list[Key]]:
        """Keys of the rows ``reaches`` end at, by ``table (effect)``, each row under one label.

        A row reached by several chains is listed once: as deleted first, else as deleted by
        a cascade, else as set NULL (a row that goes is not also nulled).
        """
        found: dict[str, dict[Key, str]] = {}
        rank = {"delete first": 0, "cascade": 1, "set null": 2}
        removed = set(keys)  # a row of the batch that references another is not reached too
        for reach in sorted(reaches, key=lambda r: rank[r.effect]):
            name = reach.path[-1].table
            rows = found.setdefault(name, {})
            for key in self._reached(table, keys, reach):
                if name != table or key not in removed:
                    rows.setdefault(key, reach.effect)
        labelled: dict[str, list[Key]] = {}
        for name in reach_order(reaches):
            for key, effect in found[name].items():
                labelled.setdefault(f"{name} ({effect})", []).append(key)
        return labelled

    def _reached(self, table: str, keys: Sequence[Key], reach: Reach) -> list[Key]:
        """Keys of the rows at the end of ``reach.path`` that reference the given parents."""
        found: list[Key] = []
        parent_columns = self._key_columns(table)
        parent = self.table(table).table
        child = self.table(reach.path[-1].table)
        if not child.schema.primary_key:
            raise StoreError(self._parts.name, f"table {child.schema.name!r}, which a removal "
                             "reaches, has no primary key: its rows cannot be audited",
                             "add a primary key to it")
        target = child.table.alias("reached")
        for chunk in chunks(keys, len(parent_columns)):
            parents = (sa.select(*(parent.c[c] for c in reach.path[0].ref_columns))
                       .where(self._key_in(parent_columns, chunk)))
            condition = referencing(self.table, reach.path, parents, target, name="via")
            statement = sa.select(*(target.c[c] for c in child.schema.primary_key))
            found.extend(tuple(row) for row in self.connection.execute(statement.where(condition)))
        return found

    def _rewrite_many(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> int:
        reflected = self.table(table)
        target = reflected.table
        key_columns = self._key_columns(table)
        statement = (sa.update(target)
                     .where(*(c == sa.bindparam(f"k_{i}") for i, c in enumerate(key_columns)))
                     .values({c: sa.bindparam(f"v_{i}") for i, c in enumerate(columns)}))
        names = [c.name for c in key_columns] + list(columns)
        compiled = statement.compile(dialect=self.connection.dialect)
        if compiled.positional and all(
                reflected.schema.columns[n].kind in _PLAIN_KINDS for n in names):
            # Integers and text need no conversion on the way in: the driver's executemany
            # takes plain tuples, without SQLAlchemy building and processing a dict per row.
            # Each statement parameter's position in ``key + values``, picked in C per row.
            width = len(key_columns)
            positions = [int(name[2:]) + (0 if name[0] == "k" else width)
                         for name in compiled.positiontup or ()]
            pick = operator.itemgetter(*positions)  # a key and a value at least: tuples
            self.connection.exec_driver_sql(str(compiled), [
                pick(key + values) for key, values in rows])
            return len(rows)
        parameters = [{**{f"k_{i}": v for i, v in enumerate(key)},
                       **{f"v_{i}": v for i, v in enumerate(values)}} for key, values in rows]
        self.connection.execute(statement, parameters)
        return len(rows)

    def _rewrite_from_arrays(
        self, table: str, columns: Sequence[str], rows: Sequence[Row],
    ) -> int:
        """PostgreSQL: ``UPDATE t SET c = n.v0 FROM unnest(:keys, :v0, ...) n WHERE t.k = n.k``.

        One array parameter per column instead of one parameter per value: the statement text
        stays the same every batch, and nothing renders or parses 20,000 placeholders.
        """
        target = self.table(table).table
        key = self._key_columns(table)[0]
        new_columns = [target.c[c] for c in columns]
        arrays = [sa.bindparam(None, [k[0] for k, _ in rows], type_=postgresql.ARRAY(key.type))]
        arrays += [sa.bindparam(None, [values[i] for _, values in rows],
                                type_=postgresql.ARRAY(column.type))
                   for i, column in enumerate(new_columns)]
        names = ["k", *(f"v{i}" for i in range(len(new_columns)))]
        given = sa.func.unnest(*arrays).table_valued(*names).render_derived(name="rtd_new")
        statement = (sa.update(target)
                     .values({c: given.c[f"v{i}"] for i, c in enumerate(new_columns)})
                     .where(key == given.c.k))
        return int(self.connection.execute(statement).rowcount)

    def _rewrite_from_values(
        self, table: str, columns: Sequence[str], rows: Sequence[Row],
    ) -> int:
        """PostgreSQL: ``UPDATE t SET c = v.c FROM (VALUES ...) v WHERE t.k = v.k``."""
        target = self.table(table).table
        key_columns = self._key_columns(table)
        new_columns = [target.c[c] for c in columns]
        updated = 0
        width = len(key_columns) + len(columns)
        for chunk in chunks(rows, width):
            values = sa.values(
                *(sa.column(f"k_{i}", c.type) for i, c in enumerate(key_columns)),
                *(sa.column(f"v_{i}", c.type) for i, c in enumerate(new_columns)),
                name="rtd_new",
            ).data([(*key, *new) for key, new in chunk])
            statement = (
                sa.update(target)
                .values({c: sa.cast(values.c[f"v_{i}"], c.type)
                         for i, c in enumerate(new_columns)})
                .where(*(c == sa.cast(values.c[f"k_{i}"], c.type)
                         for i, c in enumerate(key_columns)))
            )
            updated += self.connection.execute(statement).rowcount
        return updated

    def _rewrite_through_temporary(
        self, table: str, columns: Sequence[str], rows: Sequence[Row],
    ) -> int:
        """MariaDB/MySQL: fill a temporary table, then one multi-table UPDATE joining it.

        PyMySQL runs ``executemany`` of an UPDATE row by row (about 6,000 rows/s); a bulk
        INSERT into a temporary table and one joined UPDATE is an order of magnitude faster.
        """
        target = self.table(table).table
        key_columns = self._key_columns(table)
        new_columns = [target.c[c] for c in columns]
        scratch = sa.Table(
            "rtd_rewrite", sa.MetaData(),
            # Not AUTO_INCREMENT (SQLAlchemy's default for one integer key): MariaDB would
            # store a key of 0 as the next counter value, and rewrite that row instead.
            *(sa.Column(f"k_{i}", c.type, primary_key=True, autoincrement=False)
              for i, c in enumerate(key_columns)),
            *(sa.Column(f"v_{i}", c.type) for i, c in enumerate(new_columns)),
            prefixes=["TEMPORARY"],
        )
        self.connection.exec_driver_sql("DROP TEMPORARY TABLE IF EXISTS rtd_rewrite")
        scratch.create(self.connection)
        try:
            width = len(key_columns) + len(columns)
            for chunk in chunks(rows, width):
                self.connection.execute(sa.insert(scratch), [
                    {**{f"k_{i}": v for i, v in enumerate(key)},
                     **{f"v_{i}": v for i, v in enumerate(new)}} for key, new in chunk])
            statement = (
                sa.update(target)
                .values({c: scratch.c[f"v_{i}"] for i, c in enumerate(new_columns)})
                .where(*(c == scratch.c[f"k_{i}"] for i, c in enumerate(key_columns)))
            )
            result = self.connection.execute(statement)
        finally:
            self.connection.exec_driver_sql("DROP TEMPORARY TABLE IF EXISTS rtd_rewrite")
        # MySQL counts rows whose value really changed; pending rows always change.
        return int(result.rowcount)


def _tuples(result: sa.CursorResult[Any], *, plain: bool) -> list[tuple[Any, ...]]:
    """The result's rows as tuples.

    ``plain`` (integer and text columns only): straight from the driver, which returns them
    as they are; skipping SQLAlchemy's Row objects halves the cost of a 10,000-row fetch.
    """
    if not plain:
        return [tuple(row) for row in result]
    raw = list(result.cursor.fetchall()) if result.cursor is not None else []
    result.close()
    return raw if not raw or type(raw[0]) is tuple else [tuple(row) for row in raw]


def _key_texts(schema: TableSchema, keys: Sequence[Key], family: str
               ) -> sa.ColumnElement[Any] | None:
    """The keys as the done table's texts, one JSON parameter (PostgreSQL, SQLite), or None.

    Integers and text print in Python exactly as ``key_text`` prints them in SQL, so they
    need not be read back from the table: on PostgreSQL that re-read was ~10 ms of a
    10,000-row batch.  Other key types, and MariaDB, take the SQL path.
    """
    if family not in {"postgresql", "sqlite"} or (family == "sqlite" and not JSON_EACH):
        return None
    if any(schema.columns[c].kind not in _PLAIN_KINDS for c in schema.primary_key):
        return None
    cut = 255 if family == "postgresql" else None  # CAST(... AS VARCHAR(255)) cuts there
    texts = ([str(key[0])[:cut] for key in keys] if len(schema.primary_key) == 1
             else ["\x1f".join(str(part)[:cut] for part in key) for key in keys])
    listed = sa.bindparam(None, json.dumps(texts), type_=sa.Text)
    if family == "postgresql":
        return sa.func.json_array_elements_text(sa.cast(listed, postgresql.JSON))
    return sa.select(sa.column("value")).select_from(sa.func.json_each(listed)).subquery().c.value


def _insert_ignoring_duplicates(table: sa.Table, family: str) -> sa.Insert:
    """INSERT that skips rows already there, without reading the whole table to find out.

    A row the application changed after it was pseudonymized is rewritten and recorded again.
    """
    if family == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if family == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    # Not INSERT IGNORE: that would also turn a failed CHECK or a truncated key into a
    # warning, and a key not recorded would be pseudonymized again by the next run.
    first = table.primary_key.columns[0]
    return mysql.insert(table).on_duplicate_key_update({first.name: first})


def _merge_bits(table: sa.Table, family: str) -> sa.Insert:
    """INSERT of (rule, word, bits) that ORs the bits into a row already there."""
    if family == "mysql":
        merging = mysql.insert(table)
        return merging.on_duplicate_key_update(bits=table.c.bits.bitwise_or(merging.inserted.bits))
    upsert = postgresql.insert(table) if family == "postgresql" else sqlite.insert(table)
    return upsert.on_conflict_do_update(
        index_elements=[table.c.rule, table.c.word],
        set_={"bits": table.c.bits.bitwise_or(upsert.excluded.bits)})


def _now_text() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")
