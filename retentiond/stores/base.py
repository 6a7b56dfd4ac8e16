"""What a data store is to retentiond: a reflected schema and a way to select, count and page keys.

A store never sees policy files.  The engine hands it a :class:`Selection` (table, age bound,
typed filter, guards) and the store compiles that into one query of its own dialect with bound
parameters.  Readers are read-only by construction (a dry run cannot write); the write path is
added by the enforcement engine through :meth:`Store.writer`.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from retentiond.policy.filters import Filter
    from retentiond.policy.periods import Cutoff

Key = tuple[object, ...]
"""A primary key value, always a tuple (one element for a single-column key)."""


class ColumnKind(StrEnum):
    """The families of column types that validation and actions reason about."""

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    BINARY = "binary"
    OTHER = "other"


@dataclass(frozen=True)
class ColumnInfo:
    """One reflected column."""

    name: str
    kind: ColumnKind
    type_name: str
    nullable: bool
    length: int | None = None
    """Maximum characters (TEXT) when the type declares one, else None (unbounded)."""
    unique: bool = False
    """Covered on its own by a unique constraint, unique index or a one-column primary key."""
    timezone: bool = False
    """For DATETIME: values carry an offset (PostgreSQL timestamptz)."""


class OnDelete(StrEnum):
    """What a foreign key does to child rows when the parent row is deleted."""

    CASCADE = "cascade"
    SET_NULL = "set null"
    SET_DEFAULT = "set default"
    RESTRICT = "restrict"
    NO_ACTION = "no action"


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key from ``table(columns)`` to ``ref_table(ref_columns)``."""

    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: OnDelete
    name: str | None = None


@dataclass(frozen=True)
class TableSchema:
    """A reflected table: what validation checks rules against and what actions rely on."""

    name: str
    columns: Mapping[str, ColumnInfo]
    primary_key: tuple[str, ...]
    referenced_by: tuple[ForeignKey, ...] = ()
    """Foreign keys of other tables (or this one) that point at this table."""
    references: tuple[ForeignKey, ...] = ()
    """Foreign keys of this table that point elsewhere."""

    @property
    def fingerprint(self) -> str:
        """A digest of the schema; a change between validation and action is caught by it."""
        payload = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AgeBound:
    """``column <= cutoff`` (on the column's own kind: date, naive local or aware time)."""

    column: str
    cutoff: Cutoff


@dataclass(frozen=True)
class Guard:
    """Something that protects records from a rule: a legal hold or a minimum retention.

    A hold protects every row matching ``where`` (the whole table when None).  A minimum
    retention protects rows matching ``where`` whose ``age`` column is after the cutoff, or
    NULL.  Where a guard's condition cannot be decided (a NULL in a filtered column), the row
    is protected: doubt keeps the record.
    """

    kind: Literal["hold", "retention"]
    id: str
    where: Filter | None = None
    age: AgeBound | None = None


@dataclass(frozen=True)
class Selection:
    """Rows of ``table`` matching ``where`` whose ``age`` is at or before the cutoff."""

    table: str
    age: AgeBound
    where: Filter | None = None
    guards: tuple[Guard, ...] = ()


@dataclass(frozen=True)
class Census:
    """Counts of one selection, all taken from one consistent read.

    ``matched`` rows pass the filter and the age bound; of those, ``held`` are protected by
    at least one hold, ``protected`` (not held) by at least one minimum retention, and the
    remaining ``eligible`` ones are what the action would touch.  ``null_age`` rows pass the
    filter but have no age value: they are never selected.
    """

    population: int
    matched: int
    null_age: int
    held: int
    protected: int
    eligible: int
    by_guard: Mapping[str, int] = field(default_factory=dict)
    """Matched rows each guard covers (guards overlap, so these need not add up)."""


class Reader(ABC):
    """A read-only, consistent view of one store."""

    @abstractmethod
    def census(self, selection: Selection) -> Census:
        """Count the selection in one pass."""

    @abstractmethod
    def keys(self, selection: Selection, *, after: Key | None, limit: int) -> list[Key]:
        """Eligible keys in primary-key order, strictly after ``after`` (keyset pagination)."""

    @abstractmethod
    def count_referencing(self, selection: Selection, fk: ForeignKey) -> int:
        """Rows of ``fk.table`` that reference an eligible row of the selection."""


class Store(ABC):
    """A named data store holding the tables that rules act on."""

    name: str

    @abstractmethod
    def ping(self) -> None:
        """Connect once; raise StoreUnavailable with a fix when the store cannot be reached."""

    @abstractmethod
    def schema(self, table: str) -> TableSchema | None:
        """The reflected table, or None when it does not exist."""

    @abstractmethod
    def reader(self) -> AbstractContextManager[Reader]:
        """A read-only transaction; nothing done through it can change the store."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def walk_keys(self, selection: Selection, *, batch_size: int) -> Iterator[list[Key]]:
        """Every eligible key, batch by batch, in bounded memory, from one read-only view."""
        with self.reader() as reader:
            after: Key | None = None
            while True:
                batch = reader.keys(selection, after=after, limit=batch_size)
                if not batch:
                    return
                yield batch
                after = batch[-1]
