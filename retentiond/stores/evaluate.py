"""A selection decided record by record in Python, for stores without a query language.

A SQL store compiles a :class:`~retentiond.stores.base.Selection` into one query.  A store of
files or objects has no such thing: it lists its records with their attributes (path, size,
times, tags) and asks :class:`Evaluator` which are matched, held, protected, blocked or
eligible.  Filters and guards mean here exactly what they mean in SQL, since both follow
:mod:`retentiond.policy.semantics`, and doubt keeps the record as it does there: an age
that is missing or not a date is never due; a guard that cannot be decided protects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from retentiond.errors import StoreError
from retentiond.policy.semantics import Row, evaluate, protects
from retentiond.stores.base import (
    AgeBound,
    Blocker,
    Census,
    ForeignKey,
    Guard,
    Key,
    Selection,
    Through,
)

Related = Callable[[str], Iterable[Row]]
"""The records of another table of the same store, for blockers that follow references."""


class Status(StrEnum):
    """What a selection makes of one record; the first that applies, in this order."""

    FILTERED = "filtered"
    """The filter does not pass (false or unknown): not the rule's record at all."""
    UNDATED = "undated"
    """The filter passes, but the age is missing or not a date: never due."""
    YOUNG = "young"
    HELD = "held"
    PROTECTED = "protected"
    """Kept by a minimum retention."""
    BLOCKED = "blocked"
    DONE = "done"
    ELIGIBLE = "eligible"


@dataclass(frozen=True)
class Verdict:
    """One record's status, and every guard and blocker that covers it (they overlap)."""

    status: Status
    covered_by: tuple[str, ...] = ()


def due(bound: AgeBound, value: object) -> bool | None:
    """Whether an age value is at or before the cutoff; None when it is no date at all.

    Dates compare with the cutoff's calendar day, naive times with its wall clock, aware
    times with its instant, as a SQL store compares DATE, TIMESTAMP and TIMESTAMPTZ columns.
    """
    cutoff = bound.cutoff
    if isinstance(value, datetime):
        return value <= (cutoff.aware if value.tzinfo is not None else cutoff.local)
    if isinstance(value, date):
        return value <= cutoff.day
    return None


class Evaluator:
    """Decides selections over records given as mappings of their values."""

    def __init__(self, store: str, key: Callable[[Row], Key],
                 related: Related | None = None) -> None:
        self._store = store
        self._key = key
        self._related = related

    def verdict(self, selection: Selection, record: Row) -> Verdict:
        """What ``selection`` makes of ``record``."""
        if selection.where is not None and evaluate(selection.where, record) is not True:
            return Verdict(Status.FILTERED)
        when = self._due(selection, record)
        if when is None:
            return Verdict(Status.UNDATED)
        if not when:
            return Verdict(Status.YOUNG)
        guards = [guard for guard in selection.guards if self._protects(guard, record)]
        blockers = [b for b in selection.blockers if self._blocks(b, selection.table, record)]
        covered = tuple(g.id for g in guards) + tuple(b.id for b in blockers)
        if any(guard.kind == "hold" for guard in guards):
            return Verdict(Status.HELD, covered)
        if guards:
            return Verdict(Status.PROTECTED, covered)
        if blockers:
            return Verdict(Status.BLOCKED, covered)
        if selection.pending:
            raise StoreError(self._store, "rewrites are not decided in Python",
                             "use a SQL store for rules that anonymize or pseudonymize")
        return Verdict(Status.ELIGIBLE, covered)

    def census(self, selection: Selection, records: Iterable[Row]) -> Census:
        """The counts a SQL store's census query would give over the same records."""
        counts = dict.fromkeys(Status, 0)
        names = [guard.id for guard in selection.guards] + [b.id for b in selection.blockers]
        by_guard = dict.fromkeys(names, 0)
        population = 0
        for record in records:
            population += 1
            verdict = self.verdict(selection, record)
            counts[verdict.status] += 1
            for name in verdict.covered_by:
                by_guard[name] += 1
        matched = sum(counts[s] for s in (Status.HELD, Status.PROTECTED, Status.BLOCKED,
                                          Status.DONE, Status.ELIGIBLE))
        return Census(population=population, matched=matched, null_age=counts[Status.UNDATED],
                      held=counts[Status.HELD], protected=counts[Status.PROTECTED],
                      eligible=counts[Status.ELIGIBLE], by_guard=by_guard,
                      blocked=counts[Status.BLOCKED], done=counts[Status.DONE])

    def eligible(self, selection: Selection, records: Iterable[Row], *, after: Key | None = None,
                 limit: int | None = None) -> Iterator[Row]:
        """Eligible records in key order, strictly after ``after``, at most ``limit`` of them."""
        chosen = sorted((record for record in records
                         if (after is None or self._key(record) > after)
                         and self.verdict(selection, record).status is Status.ELIGIBLE),
                        key=self._key)
        yield from chosen[:limit] if limit is not None else chosen

    def _due(self, selection: Selection, record: Row) -> bool | None:
        """Whether the record's age is due; None when it has none (or it is in doubt).

        From related rows: the newest is at or before the cutoff when every one is, the
        oldest when any one is; a related row with no date makes the age unknown.
        """
        bound = selection.age
        if bound is None:  # no age bound: every row is due
            return True
        related = bound.related
        if related is None:
            return due(bound, record.get(bound.column))
        rows = self._follow(related.path, selection.table, record)
        if not rows:
            if related.fallback is not None:
                return due(bound, record.get(related.fallback))
            return True if related.when_none == "act" else None
        whens = [due(bound, row.get(related.column)) for row in rows]
        if None in whens:
            return None
        return all(whens) if related.take == "newest" else any(whens)

    def _follow(self, path: Iterable[ForeignKey], table: str, record: Row) -> list[Row]:
        """The rows at the end of ``path`` that reference ``record``, hop by hop."""
        if self._related is None:
            raise StoreError(self._store, f"table {table!r} has references it cannot follow",
                             "report it: a store with references must give their records")
        level: list[Row] = [record]
        for fk in path:
            wanted = {tuple(parent.get(c) for c in fk.ref_columns) for parent in level}
            # A NULL reference references nothing, as in SQL.
            level = [child for child in self._related(fk.table)
                     if None not in (ref := tuple(child.get(c) for c in fk.columns))
                     and ref in wanted]
            if not level:
                break
        return level

    def _protects(self, guard: Guard, record: Row) -> bool:
        if guard.within:
            return True  # partitions of a store that has none: doubt keeps the record
        covered = protects(guard.where, record)
        if guard.through:
            covered = covered and any(self._belongs(t, record) for t in guard.through)
        if guard.kind == "retention":
            if guard.age is None:
                return True
            young = due(guard.age, record.get(guard.age.column)) is not True
            return covered and young
        return covered

    def _belongs(self, through: Through, record: Row) -> bool:
        """Whether the record belongs where ``through`` says; doubt (a NULL, no row) belongs."""
        row: Row | None = record
        for fk in through.path:
            if self._related is None:
                return True  # references it cannot follow: doubt keeps the record
            wanted = tuple(row.get(c) for c in fk.columns) if row is not None else (None,)
            if None in wanted:
                return True
            row = next((parent for parent in self._related(fk.ref_table)
                        if tuple(parent.get(c) for c in fk.ref_columns) == wanted), None)
            if row is None:
                return True
        return row is None or protects(through.where, row)

    def _blocks(self, blocker: Blocker, table: str, record: Row) -> bool:
        """Whether a record at the end of the blocker's path references this one."""
        level = self._follow(blocker.path, table, record)
        if not level:
            return False
        if blocker.guards is None:
            return True
        return any(self._protects(guard, child) for child in level for guard in blocker.guards)


def by_key(columns: tuple[str, ...]) -> Callable[[Mapping[str, object]], Key]:
    """The primary key of a record whose key columns are ``columns``."""
    return lambda record: tuple(record[column] for column in columns)
