"""A store kind from outside retentiond: records held in memory, kept between runs in a JSON file.

It is what a package of someone else's would ship to add a kind: a settings model, a Store
with its Reader and Writer, and ``KIND``, registered under the entry-point group
``retentiond.stores``.  It removes records and nothing else (no rewriting, no quarantine),
decides selections with :class:`retentiond.stores.evaluate.Evaluator`, and applies a batch and
its marker together by replacing the file once.  It imports nothing from ``retentiond.stores.sql``.

The file: ``{"tables": {NAME: {"key": [...], "columns": {COLUMN: KIND}, "rows": [...]}},
"marks": {BATCH_ID: PAYLOAD}}`` where KIND is a :class:`ColumnKind` value; dates and times
are ISO text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from retentiond.errors import StoreError, StoreUnavailable
from retentiond.stores.base import (
    Capability,
    Census,
    ColumnInfo,
    ColumnKind,
    Key,
    Reach,
    Reached,
    Reader,
    Removal,
    Row,
    Selection,
    Store,
    TableSchema,
    Writer,
)
from retentiond.stores.evaluate import Evaluator, Status, by_key
from retentiond.stores.kinds import StoreKind, StoreSettings

Data = dict[str, Any]


class MemorySettings(StoreSettings):
    """``[stores.NAME]`` with ``kind = "memory"`` and the JSON ``file`` its records live in."""

    kind: Literal["memory"] = "memory"
    file: Path


def _parse(kind: ColumnKind, value: object) -> object:
    if isinstance(value, str) and kind is ColumnKind.DATETIME:
        return datetime.fromisoformat(value)
    if isinstance(value, str) and kind is ColumnKind.DATE:
        return date.fromisoformat(value)
    return value


def _text(value: object) -> object:
    return value.isoformat(sep=" ") if isinstance(value, datetime) else (
        value.isoformat() if isinstance(value, date) else value)


class _Tables:
    """The records of every table, parsed, plus the batch markers."""

    def __init__(self, name: str, data: Data) -> None:
        self.name = name
        self.data = data
        self.schemas = {table: TableSchema(
            name=table,
            columns={c: ColumnInfo(c, ColumnKind(k), k, nullable=c not in spec["key"])
                     for c, k in spec["columns"].items()},
            primary_key=tuple(spec["key"]),
        ) for table, spec in data["tables"].items()}
        self.rows = {table: [{c: _parse(self.schemas[table].columns[c].kind, v)
                              for c, v in row.items()} for row in spec["rows"]]
                     for table, spec in data["tables"].items()}

    def evaluator(self, table: str) -> Evaluator:
        return Evaluator(self.name, by_key(self.schemas[table].primary_key),
                         related=lambda other: self.rows[other])

    def dumped(self) -> Data:
        tables = {table: {**spec, "rows": [{c: _text(v) for c, v in row.items()}
                                           for row in self.rows[table]]}
                  for table, spec in self.data["tables"].items()}
        return {**self.data, "tables": tables}


class MemoryReader(Reader):
    """A read-only view: a copy of the records as they were when it was opened."""

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def census(self, selection: Selection) -> Census:
        """Decide every record of the table in Python."""
        rows = self._tables.rows[selection.table]
        return self._tables.evaluator(selection.table).census(selection, rows)

    def keys(self, selection: Selection, *, after: Key | None, limit: int) -> list[Key]:
        """Eligible keys in key order after ``after``."""
        key = by_key(self._tables.schemas[selection.table].primary_key)
        found = self._tables.evaluator(selection.table).eligible(
            selection, self._tables.rows[selection.table], after=after, limit=limit)
        return [key(record) for record in found]

    def reached(self, selection: Selection, reaches: Sequence[Reach]) -> tuple[Reached, ...]:
        """Nothing: these records reference nothing."""
        del selection, reaches
        return ()

    def stored(self, table: str, key: Key, columns: Sequence[str]) -> dict[str, object] | None:
        """The record's key and ``columns``, the columns as text."""
        primary = self._tables.schemas[table].primary_key
        for record in self._tables.rows[table]:
            if by_key(primary)(record) == key:
                return {**{c: record[c] for c in primary},
                        **{c: None if record[c] is None else str(_text(record[c]))
                           for c in columns}}
        return None


class MemoryWriter(Writer):
    """Changes to a copy of the records; the store writes them back when the block ends."""

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def claim(self, selection: Selection, *, after: Key | None, limit: int,
              columns: Sequence[str] = (), lock: bool = True) -> list[Row]:
        """The next eligible records (one process holds the file: nothing to lock)."""
        del lock
        key = by_key(self._tables.schemas[selection.table].primary_key)
        found = self._tables.evaluator(selection.table).eligible(
            selection, self._tables.rows[selection.table], after=after, limit=limit)
        return [(key(record), tuple(record[c] for c in columns)) for record in found]

    def remove(self, table: str, keys: Sequence[Key], reaches: Sequence[Reach], *,
               recheck: Selection | None = None) -> Removal:
        """Remove the records, all of them or (when one is no longer eligible) none."""
        if reaches:
            raise StoreError(self._tables.name, "these records reference nothing")
        key = by_key(self._tables.schemas[table].primary_key)
        gone = set(keys)
        rows = self._tables.rows[table]
        if recheck is not None:
            judge = self._tables.evaluator(table)
            if any(judge.verdict(recheck, r).status is not Status.ELIGIBLE
                   for r in rows if key(r) in gone):
                raise StoreUnavailable(self._tables.name, "a record changed since its claim",
                                       "the batch is claimed again")
        present = {key(r) for r in rows}
        self._tables.rows[table] = [r for r in rows if key(r) not in gone]
        return Removal(removed=tuple(k for k in keys if k in present))

    def mark(self, batch_id: str, run_id: str, rule: str, payload: str) -> None:
        """Keep the marker with the records: both are written by one replace of the file."""
        del run_id, rule
        self._tables.data.setdefault("marks", {})[batch_id] = payload


class MemoryStore(Store):
    """Records in a JSON file, read whole into memory; a write transaction replaces the file."""

    kind: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.REMOVE})

    def __init__(self, name: str, settings: MemorySettings) -> None:
        self.name = name
        self._file = settings.file

    def _load(self) -> _Tables:
        try:
            return _Tables(self.name, json.loads(self._file.read_text(encoding="utf-8")))
        except OSError as exc:
            raise StoreUnavailable(self.name, f"cannot read {self._file}: {exc.strerror}",
                                   "check the file named in [stores.NAME] file") from None

    def ping(self) -> None:
        """Read the file once."""
        self._load()

    def schema(self, table: str) -> TableSchema | None:
        """The table as the file declares it."""
        return self._load().schemas.get(table)

    def forget(self, table: str | None = None) -> None:
        """Nothing is cached: every transaction reads the file."""
        del table

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """The records as they are now."""
        yield MemoryReader(self._load())

    @contextmanager
    def writer(self) -> Iterator[Writer]:
        """Changes that land, with their marker, when the block ends without an error."""
        tables = self._load()
        yield MemoryWriter(tables)
        partial = self._file.with_suffix(".partial")
        partial.write_text(json.dumps(tables.dumped()), encoding="utf-8")
        partial.replace(self._file)

    def prepare(self, *, quarantine_of: Sequence[str] = (), done_of: Sequence[str] = ()) -> None:
        """Nothing to create: markers live in the file."""
        del quarantine_of, done_of

    def find_mark(self, batch_id: str) -> str | None:
        """The marker a batch left, or None (a batch not in the file never landed)."""
        marks: dict[str, str] = self._load().data.get("marks", {})
        return marks.get(batch_id)

    def close(self) -> None:
        """Nothing stays open."""


def _open(name: str, settings: MemorySettings) -> Store:
    return MemoryStore(name, settings)


KIND = StoreKind("memory", MemorySettings, _open)
"""Registered as ``memory = "memory_kind:KIND"`` in the group ``retentiond.stores``."""

__all__ = ["KIND", "MemorySettings", "MemoryStore"]
