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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar

from retentiond.errors import StoreError

if TYPE_CHECKING:
    from retentiond.policy.filters import Filter
    from retentiond.policy.periods import Cutoff

Key = tuple[object, ...]
"""A primary key value, always a tuple (one element for a single-column key)."""

T = TypeVar("T")


class Capability(StrEnum):
    """What a store can do to records besides reading them and journaling batches.

    Every store reads (a census, keys in order) and journals a batch marker with the batch
    it applies; the rest depends on its kind.  Each action names the capabilities it needs
    (``Action.needs``), and validation refuses a rule whose store lacks one, so a store that
    cannot rewrite values says so before a run, not in the middle of one.
    """

    REMOVE = "remove records"
    REWRITE = "rewrite values in place"
    QUARANTINE = "move records to quarantine and back"
    REMEMBER = "remember which records a rule rewrote"


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
    generated: bool = False
    """Computed by the database from other columns (GENERATED ... AS): never written."""
    always_identity: bool = False
    """GENERATED ALWAYS AS IDENTITY: written only when told to override the sequence."""


class OnDelete(StrEnum):
    """What a foreign key does to child rows when the parent row is deleted."""

    CASCADE = "cascade"
    SET_NULL = "set null"
    SET_DEFAULT = "set default"
    RESTRICT = "restrict"
    NO_ACTION = "no action"

    @property
    def refuses(self) -> bool:
        """Whether the key refuses the parent's deletion while children exist.

        RESTRICT and NO ACTION refuse; the others act on the children (CASCADE, SET NULL,
        SET DEFAULT).
        """
        return self in {OnDelete.RESTRICT, OnDelete.NO_ACTION}


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key from ``table(columns)`` to ``ref_table(ref_columns)``."""

    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: OnDelete
    name: str | None = None
    within: tuple[str, ...] = ()
    """Where ``table`` is partitioned and only some partitions carry the key: those partitions.

    Empty: every row of ``table`` carries it (a plain table, or every partition does)."""
    enforced: bool = True
    """False for a key that partitions ``within`` lack while their siblings have it: the
    database does nothing for their rows when a parent goes, so they would be orphaned."""


@dataclass(frozen=True)
class Partitions:
    """How a store's partitioned tables nest: every partition belongs to one logical table.

    ``parents`` maps each partition to the table it is a partition of (itself maybe a
    partition, for sub-partitions).  A policy names the logical table; holds on one partition
    cover that partition's rows only.
    """

    parents: Mapping[str, str] = field(default_factory=dict)

    def logical(self, table: str) -> str:
        """The outermost partitioned table ``table`` belongs to (``table`` itself if none)."""
        return [table, *self._ancestors(table)][-1]

    def leaves(self, table: str) -> tuple[str, ...]:
        """The partitions that hold rows of ``table``, at the deepest level; () if unpartitioned."""
        below = [name for name, parent in self.parents.items() if parent == table]
        if not below:
            return ()
        return tuple(sorted(leaf for name in below for leaf in (self.leaves(name) or (name,))))

    def scopes(self, table: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Whose holds apply to rows of ``table``: (name, the leaf partitions they cover).

        The logical table and every partition above ``table`` cover all of its rows (``()``);
        every partition below it covers its own leaves.
        """
        above = [table, *self._ancestors(table)]
        below = [name for name in self.parents if table in self._ancestors(name)]
        return (*((name, ()) for name in reversed(above)),
                *((name, self.leaves(name) or (name,)) for name in sorted(below)))

    def _ancestors(self, table: str) -> list[str]:
        """The partitioned tables above ``table``, nearest first."""
        found = []
        while table in self.parents:
            table = self.parents[table]
            found.append(table)
        return found


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
class RelatedAge:
    """An age taken from related rows: the newest or oldest ``column`` of some rows.

    The rows are those at the end of ``path``, foreign keys from the rule's table outwards
    (each key's ``ref_table`` is the previous one's ``table``).
    A NULL or undated value among those rows leaves the age in doubt (never due).  With no
    related rows, ``when_none`` decides: ``keep`` (no age, never due) or ``act`` (due); or,
    when ``fallback`` names one, the row's own date column is its age.
    """

    path: tuple[ForeignKey, ...]
    column: str
    take: Literal["newest", "oldest"] = "newest"
    when_none: Literal["keep", "act"] = "keep"
    fallback: str | None = None

    @property
    def table(self) -> str:
        """The table whose dates are aggregated."""
        return self.path[-1].table


@dataclass(frozen=True)
class AgeBound:
    """``column <= cutoff`` (on the column's own kind: date, naive local or aware time).

    With ``related``, the age is not the row's own ``column`` but the newest or oldest date
    of the rows referencing it (``column`` then names the related table's column).
    """

    column: str
    cutoff: Cutoff
    related: RelatedAge | None = None


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
    within: tuple[str, ...] = ()
    """A guard placed on partitions of the table protects only rows in these (leaf) partitions;
    empty: rows anywhere in the table."""
    through: tuple[Through, ...] = ()
    """When given, the guard protects only rows that also belong where one of these says (a
    data subject's rows, reached through the subject's column or a path of foreign keys)."""


@dataclass(frozen=True)
class Through:
    """A row belongs here when ``where`` holds of the row its references ``path`` lead to.

    ``path`` is a chain of foreign keys from the guarded table up to a parent (an invoice line
    to its invoice); empty, ``where`` is about the row itself.  Doubt protects: a NULL in a
    column of ``where``, a NULL reference on the way, or one that leads to no row, and the row
    belongs.  So the only rows that do not belong are those whose chain ends at a row of which
    ``where`` is plainly false.
    """

    where: Filter
    path: tuple[ForeignKey, ...] = ()


@dataclass(frozen=True)
class NotNull:
    """Pending while the column is not NULL (``nullify``)."""

    column: str


@dataclass(frozen=True)
class Differs:
    """Pending while the column is not NULL and differs from ``value`` (``constant``)."""

    column: str
    value: object


@dataclass(frozen=True)
class NotMasked:
    """Pending while more than ``keep`` characters remain and one of the others is not ``char``."""

    column: str
    keep: int
    char: str


@dataclass(frozen=True)
class NotTruncated:
    """Pending while a date or time is not the first instant of its month or year."""

    column: str
    unit: Literal["month", "year"]


@dataclass(frozen=True)
class NotMultiple:
    """Pending while an integer is not a multiple of ``step``."""

    column: str
    step: int


@dataclass(frozen=True)
class NotNetwork:
    """Pending while a value is not written as an IPv4 /24 or IPv6 /48 network address."""

    column: str


@dataclass(frozen=True)
class NotPseudonym:
    """Pending unless ``rule`` recorded the row as done and the value still looks done.

    Looking done means ``length`` lowercase base32 characters.

    The shape alone is not proof: a real value can look like a pseudonym ("jonathan").  The
    record alone is not either: the application may have written a new value since.
    """

    column: str
    length: int
    rule: str


@dataclass(frozen=True)
class NotDerived:
    """Pending while the value is not ``prefix || primary key || suffix``."""

    column: str
    prefix: str
    suffix: str


PendingCheck = (NotNull | Differs | NotMasked | NotTruncated | NotMultiple | NotNetwork
                | NotPseudonym | NotDerived)
"""How a rewriting action recognizes a row it has not rewritten yet.

A rewrite selects only pending rows, so running a rule twice rewrites nothing twice, and the
plan counts exactly the rows the run would change (rows already done are counted apart).
"""


@dataclass(frozen=True)
class Blocker:
    """A parent row is blocked while a row at the end of ``path`` references it.

    When ``guards`` is given, only such a row that one of the guards protects blocks (``None``:
    any referencing row blocks).  ``path`` is a chain of foreign keys from the selection's
    table down to a descendant table.
    """

    id: str
    path: tuple[ForeignKey, ...]
    guards: tuple[Guard, ...] | None = None


@dataclass(frozen=True)
class Selection:
    """Rows of ``table`` matching ``where`` whose ``age`` is at or before the cutoff.

    ``age`` None: no age bound, every row the filter passes is due (an erasure request acts on
    a subject's rows whatever their age).
    """

    table: str
    age: AgeBound | None
    where: Filter | None = None
    guards: tuple[Guard, ...] = ()
    blockers: tuple[Blocker, ...] = ()
    pending: tuple[PendingCheck, ...] = ()
    """Empty: every row is pending (deleting and moving rows cannot be done twice)."""
    subject: tuple[Through, ...] = ()
    """When given, only the rows that plainly belong where one of these says (a data subject's
    rows, through its column or a path of foreign keys).  Unlike a guard's, this belonging is
    strict: a NULL or dangling reference on the way, or a NULL subject column, is not the
    subject's row, so an erasure never takes a row it cannot tie to the subject."""

    @property
    def bound(self) -> AgeBound:
        """The age bound of a rule's selection; a selection without one has no rule's age."""
        if self.age is None:
            raise ValueError(f"the selection of {self.table!r} has no age bound")
        return self.age


@dataclass(frozen=True)
class Census:
    """Counts of one selection, all taken from one consistent read.

    ``matched`` rows pass the filter and the age bound; of those, ``held`` are protected by
    at least one hold, ``protected`` (not held) by at least one minimum retention, ``blocked``
    (neither) by a blocker, ``done`` (none of these) need no rewrite, and the remaining
    ``eligible`` ones are what the action would touch.  ``null_age`` rows pass the
    filter but have no age value: they are never selected.
    """

    population: int
    matched: int
    null_age: int
    held: int
    protected: int
    eligible: int
    by_guard: Mapping[str, int] = field(default_factory=dict)
    """Matched rows each guard (and blocker) covers; they overlap, so need not add up."""
    blocked: int = 0
    """Matched rows, neither held nor protected, that a blocker keeps (children, cascades)."""
    done: int = 0
    """Matched rows, not held, protected or blocked, that are already rewritten."""


class Reader(ABC):
    """A read-only, consistent view of one store."""

    @abstractmethod
    def census(self, selection: Selection) -> Census:
        """Count the selection in one pass."""

    @abstractmethod
    def keys(self, selection: Selection, *, after: Key | None, limit: int) -> list[Key]:
        """Eligible keys in primary-key order, strictly after ``after`` (keyset pagination)."""

    @abstractmethod
    def reached(self, selection: Selection, reaches: Sequence[Reach]) -> tuple[Reached, ...]:
        """What removing every eligible row of the selection does to the rows ``reaches`` end at.

        Per table: the distinct rows deleted (by any chain that deletes), the distinct rows
        whose reference is set NULL and that no chain deletes, and the table's population.
        Tables come nearest first, then by name.
        """

    @abstractmethod
    def stored(self, table: str, key: Key, columns: Sequence[str]) -> dict[str, object] | None:
        """One record's primary key and ``columns`` as stored, or None when there is none.

        The columns come back as text, not parsed by the driver: a store may keep what no
        parser takes (SQLite: ``'yesterday'`` in a DATE column), and the caller decides what
        such a value means.  ``explain`` reads only a record's dates this way.
        """

    def related_age(self, table: str, key: Key, related: RelatedAge) -> object:
        """The newest (or oldest) date, as text, of the rows related to one record.

        None when it has none.  Only stores that follow foreign keys can; others raise
        StoreError.
        """
        del key, related
        raise StoreError(table, "this store cannot follow related rows",
                         "measure the rule's age on a column of its own table")


Row = tuple[Key, tuple[object, ...]]
"""A primary key with the current values of the columns asked for."""


@dataclass(frozen=True)
class Removal:
    """What removing a batch of rows did: the keys removed and the rows it reached."""

    removed: tuple[Key, ...]
    reached: Mapping[str, Sequence[Key]] = field(default_factory=dict)
    """Keys of other rows, by ``table (effect)``: deleted with the parents (ON DELETE CASCADE,
    or first, when a rule deletes children), or set to NULL (ON DELETE SET NULL)."""


@dataclass(frozen=True)
class Reach:
    """One chain of foreign keys from a table down to rows its removal affects, and how."""

    path: tuple[ForeignKey, ...]
    effect: Literal["cascade", "set null", "delete first"]

    @property
    def label(self) -> str:
        """``table (effect)`` of the last table on the path."""
        return f"{self.path[-1].table} ({self.effect})"


ReachEffect = Literal["delete", "set null"]
"""What a removal does to a row it reaches: deletes it (cascade, delete first) or nulls it."""


@dataclass(frozen=True)
class Reached:
    """Distinct rows of one table that a removal deletes, or sets NULL, of ``population`` rows."""

    table: str
    effect: ReachEffect
    rows: int
    population: int
    via: tuple[str, ...] = ()
    """How the chains reach these rows: ``cascade``, ``delete first`` or ``set null``."""


def reach_order(reaches: Sequence[Reach]) -> list[str]:
    """The tables ``reaches`` end at, nearest first (the shortest chain), then by name."""
    depth: dict[str, int] = {}
    for reach in reaches:
        table = reach.path[-1].table
        depth[table] = min(depth.get(table, len(reach.path)), len(reach.path))
    return sorted(depth, key=lambda table: (depth[table], table))


CompactMode = Literal["vacuum", "rewrite"]
"""How hard a store clears the dead copies a run left: ``vacuum`` frees them for reuse (the
bytes stay until overwritten), ``rewrite`` copies the live rows into new files."""


@dataclass(frozen=True)
class Compacted:
    """What a store did, after a run acted, to clear the copies of removed or rewritten values."""

    tables: tuple[str, ...]
    method: str
    """The statements, e.g. ``VACUUM``, ``VACUUM (FULL)``, ``OPTIMIZE TABLE``,
    ``WAL checkpoint (TRUNCATE)``."""
    complete: bool = True
    """False when the store did only part of it (a WAL checkpoint that readers kept busy)."""
    leaves: str | None = None
    """What still holds the old values afterwards, and until when; None when nothing does."""


@dataclass(frozen=True)
class QuarantineBatch:
    """One quarantined batch as it sits in a quarantine table."""

    batch_id: str
    table: str
    rule: str
    run_id: str
    quarantined_at: str
    release_at: str
    rows: int


class Writer(ABC):
    """One write transaction of a store; it commits when the ``with`` block ends cleanly."""

    @abstractmethod
    def claim(
        self, selection: Selection, *, after: Key | None, limit: int, columns: Sequence[str] = (),
        lock: bool = True,
    ) -> list[Row]:
        """The next eligible rows after ``after``, with ``columns`` of them.

        With ``lock`` the rows stay as claimed until the transaction ends.  ``lock=False`` is
        for a caller that acts through :meth:`remove` or :meth:`quarantine` with ``recheck``,
        which act only on rows still eligible by then; a store that cannot re-check that way
        locks the rows all the same.
        """

    @abstractmethod
    def remove(
        self, table: str, keys: Sequence[Key], reaches: Sequence[Reach], *,
        recheck: Selection | None = None,
    ) -> Removal:
        """Delete rows by key: children marked ``delete first`` go first, deepest first.

        With ``recheck`` (and no ``reaches``), the rows go only if every one of them is still
        eligible under it; otherwise nothing goes and StoreUnavailable has the batch claimed
        again.
        """

    def rewrite(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> int:
        """Set ``columns`` of each keyed row to the new values given; the rows updated."""
        del table, columns, rows
        raise _cannot(type(self).__name__, Capability.REWRITE)

    def quarantine(
        self, table: str, keys: Sequence[Key], *, batch_id: str, run_id: str, rule: str,
        release_at: str, recheck: Selection | None = None,
    ) -> Removal:
        """Move rows into the table's quarantine table, in this transaction.

        With ``recheck``, all of them move or none (see :meth:`remove`).
        """
        del table, keys, batch_id, run_id, rule, release_at, recheck
        raise _cannot(type(self).__name__, Capability.QUARANTINE)

    @abstractmethod
    def mark(self, batch_id: str, run_id: str, rule: str, payload: str) -> None:
        """Record, in this transaction, that the batch was applied and what it did."""

    def record_done(self, table: str, rule: str, keys: Sequence[Key], *,
                    meanwhile: Callable[[], T]) -> T:
        """Record, in this transaction, that ``rule`` pseudonymizes these rows.

        Returns what ``meanwhile()`` returns: the store may run that work (computing the
        pseudonyms) while the database records the keys.
        """
        del table, rule, keys, meanwhile
        raise _cannot(type(self).__name__, Capability.REMEMBER)


class Store(ABC):
    """A named data store holding the tables that rules act on."""

    name: str
    kind: ClassVar[str]
    """The ``kind`` its settings are written with (``sql``); see :mod:`retentiond.stores.kinds`."""
    capabilities: ClassVar[frozenset[Capability]]
    """What the store can do beyond reading and journaling; actions check it at validation."""

    @abstractmethod
    def ping(self) -> None:
        """Connect once; raise StoreUnavailable with a fix when the store cannot be reached."""

    @abstractmethod
    def schema(self, table: str) -> TableSchema | None:
        """The reflected table, or None when it does not exist."""

    def partitions(self) -> Partitions:
        """How the store's partitioned tables nest (none, for a store without partitions)."""
        return Partitions()

    def table_names(self, schema: str | None = None) -> tuple[str, ...]:
        """The names of the tables (of ``schema``), as the store spells them; to suggest one."""
        del schema
        return ()

    @abstractmethod
    def forget(self, table: str | None = None) -> None:
        """Drop what is cached of ``table`` (or of every table), so it is reflected anew."""

    @abstractmethod
    def reader(self) -> AbstractContextManager[Reader]:
        """A read-only transaction; nothing done through it can change the store."""

    @abstractmethod
    def writer(self) -> AbstractContextManager[Writer]:
        """A write transaction with short lock and statement timeouts."""

    @abstractmethod
    def prepare(self, *, quarantine_of: Sequence[str] = (), done_of: Sequence[str] = ()) -> None:
        """Create, where missing, the marker table and the tables the actions need.

        Those are the quarantine tables of ``quarantine_of``, and the table that records the
        pseudonymized rows of the tables ``done_of``.
        """

    @abstractmethod
    def find_mark(self, batch_id: str) -> str | None:
        """The payload a batch marked when it was applied, or None when it never will be.

        Settling is final: a batch found unapplied can no longer commit afterwards.
        """

    def quarantined(self, table: str | None = None) -> list[QuarantineBatch]:
        """The batches sitting in quarantine (of one table, or of all)."""
        del table
        return []

    def quarantined_keys(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """The primary keys of a quarantined batch's rows, in key order; nothing is moved."""
        del batch
        raise _cannot(self.name, Capability.QUARANTINE)

    def restore(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """Move a quarantined batch back where it came from; the keys restored."""
        del batch
        raise _cannot(self.name, Capability.QUARANTINE)

    def purge(self, batch: QuarantineBatch) -> tuple[Key, ...]:
        """Delete a quarantined batch for good; the keys purged."""
        del batch
        raise _cannot(self.name, Capability.QUARANTINE)

    def residue(self) -> str | None:
        """What keeps old values after a run that does not compact; None when nothing does.

        Old values are those the run removed or rewrote; e.g. PostgreSQL's dead tuples, until
        autovacuum.
        """
        return None

    def compact(self, tables: Sequence[str], *, mode: CompactMode | None) -> Compacted | None:
        """After a run acted on ``tables``: clear the copies the database keeps of old values.

        With ``mode`` None, only what is cheap and always due (SQLite in WAL mode: checkpoint
        the WAL into the file and truncate it); otherwise also the rule's ``compact``.  None
        when nothing was done: a store of this kind keeps no such copies.
        """
        del tables, mode
        return None

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


def _cannot(store: str, capability: Capability) -> StoreError:
    """What a store says when asked for what its kind cannot do (validation should have)."""
    return StoreError(store, f"this kind of store cannot {capability}",
                      "run 'retentiond validate': it refuses rules that ask for it")
