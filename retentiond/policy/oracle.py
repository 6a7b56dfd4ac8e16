"""A reference evaluator of retentiond's decision semantics, in plain Python, over rows in memory.

It is what the real stores are checked against (``tests/oracle``): given tables as lists of
row dicts, their primary and foreign keys, a rule and the guards in force, it decides for each
row of the rule's table whether it is matched, held, retained, blocked or eligible, and what
deleting it reaches through foreign keys.  It shares no code with the stores, the engine or
:mod:`retentiond.policy.periods`: filters are evaluated under SQL's three-valued logic by
:mod:`retentiond.policy.semantics` (which non-SQL stores decide with, too),
and cutoffs are computed with :mod:`zoneinfo` and month arithmetic of its own.  It is written
for clarity on a few dozen rows, not for speed.

The semantics it models:

- A row is *matched* when the rule's filter is TRUE (NULL and FALSE both fail) and its age is
  at or before the cutoff; a row whose filter passes but whose age is NULL counts as
  ``null_age`` and is never matched.
- An age from related rows is the newest (or oldest) date of the rows the foreign-key path
  reaches from the row; a NULL among them makes it NULL (``null_age``), and so does having
  none, unless the rule acts on rows with none (then the row is due whatever the cutoff).
- A hold protects the rows its filter does not reject (no filter: every row); a minimum
  retention protects the rows its filter does not reject whose own age is after its cutoff or
  NULL.  A filter that is NULL (unknown) protects: doubt keeps the record.
- Of the matched rows, *held* beats *retained* (``protected``) beats *blocked*; the rest are
  *eligible*.
- Deleting a row cascades to ON DELETE CASCADE children (recursively, row by row, as the
  database does), nulls the references of SET NULL children, and is refused by RESTRICT and
  NO ACTION children, unless the rule deletes children first (``on_children: delete``): then
  they are deleted, recursively.  A foreign key that deletes (cascade, delete first) into a
  table already on the walk's path of tables (a self-reference, a cycle) blocks wherever a
  row references through it: the database would cascade round the cycle to any depth.  A
  reached row (deleted or nulled) that a guard of its own table protects blocks the row.
  Quarantine moves rows: any referencing row blocks.
- A partitioned table (PostgreSQL's declarative partitioning) is one logical table: its rows
  are routed to a leaf partition by the partition bounds (a range partition takes the values
  in its ``[from, to)``, a list partition the values it lists, else the default partition;
  sub-partitions route again).  A foreign key may be declared on the logical table (all its
  rows) or on partitions (the rows in their leaves); a leaf that lacks a key some of its
  siblings declare is *unenforced*: its rows referencing a row being deleted (however
  reached) block that row, whatever the action, since the database would orphan them.
  Sibling partitions declaring one key with different ON DELETE each apply their own to
  their rows.  A guard on the logical table or on a partition covers the rows stored in its
  leaves (the logical table: all of them).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from retentiond.policy.filters import Filter
from retentiond.policy.model import PolicySet, Rule
from retentiond.policy.semantics import evaluate, protects

Key = tuple[object, ...]
Row = Mapping[str, object]
Tables = Mapping[str, Sequence[Row]]
"""Rows per table name."""
OnDeleteName = Literal["cascade", "set null", "restrict", "no action"]
Status = Literal["filtered", "null_age", "young", "held", "protected", "blocked", "eligible"]

# -- calendar ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A calendar period: the units a retention period is written in."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0


@dataclass(frozen=True)
class Moment:
    """A cutoff three ways: the rule's wall clock, the instant, the calendar day."""

    local: datetime
    aware: datetime
    day: date

    def reached_by(self, value: object) -> bool:
        """Whether a non-NULL age ``value`` is at or before this cutoff."""
        if isinstance(value, datetime):
            return value <= (self.aware if value.tzinfo is not None else self.local)
        if isinstance(value, date):
            return value <= self.day
        raise TypeError(f"an age must be a date or a datetime, not {type(value).__name__}")


def months_back(moment: datetime, months: int) -> datetime:
    """``months`` calendar months before ``moment``; a day the month lacks becomes its last."""
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last))


def moment_before(span: Span, as_of: datetime, timezone: str) -> Moment:
    """The cutoff ``span`` before ``as_of`` on ``timezone``'s wall clock.

    Years and months first (calendar-correct), then weeks, days, hours and minutes as wall-clock
    steps.  A wall time that does not exist or exists twice (daylight saving) is read as the
    earlier of its instants: fewer records are due.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    zone = ZoneInfo(timezone)
    wall = as_of.astimezone(zone).replace(tzinfo=None)
    wall = months_back(wall, span.years * 12 + span.months)
    wall -= timedelta(weeks=span.weeks, days=span.days, hours=span.hours, minutes=span.minutes)
    readings = (wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1))
    aware = min(readings, key=lambda reading: reading.astimezone(UTC))
    return Moment(local=wall, aware=aware, day=wall.date())


# -- schema, rule and guards ------------------------------------------------------------------


def _before(value: object, bound: object) -> bool:
    """``value < bound`` on comparable values (ints, dates, datetimes of one kind)."""
    return bool(value < bound)  # type: ignore[operator]


@dataclass(frozen=True)
class Partition:
    """One partition of a table: a range, a list, or the default.

    A range partition takes ``[low, high)`` (None: MINVALUE / MAXVALUE), a list partition its
    ``values``; ``sub`` when it is partitioned in turn.
    """

    name: str
    low: object = None
    high: object = None
    values: tuple[object, ...] | None = None
    default: bool = False
    sub: Partitioning | None = None

    def takes(self, value: object) -> bool:
        """Whether a row whose partition key is ``value`` belongs here (not as a default)."""
        if self.default:
            return False
        if self.values is not None:
            return value in self.values
        if value is None:
            raise ValueError(f"a NULL range partition key has no partition in {self.name!r}")
        return ((self.low is None or not _before(value, self.low))
                and (self.high is None or _before(value, self.high)))

    def leaves(self) -> tuple[str, ...]:
        """The leaf partitions below (itself, for a leaf)."""
        return self.sub.leaves() if self.sub is not None else (self.name,)

    def names(self) -> tuple[str, ...]:
        """Itself and every partition below it."""
        return (self.name, *(self.sub.names() if self.sub is not None else ()))


@dataclass(frozen=True)
class Partitioning:
    """``PARTITION BY RANGE|LIST (column)`` and the partitions of it."""

    column: str
    kind: Literal["range", "list"]
    partitions: tuple[Partition, ...]

    def route(self, row: Row) -> tuple[str, ...]:
        """The partitions the row lands in, outermost first, down to its leaf."""
        value = row[self.column]
        chosen = next((p for p in self.partitions if p.takes(value)), None)
        if chosen is None:
            chosen = next((p for p in self.partitions if p.default), None)
        if chosen is None:
            raise ValueError(f"no partition takes {self.column} = {value!r}")
        return (chosen.name, *(chosen.sub.route(row) if chosen.sub is not None else ()))

    def leaves(self) -> tuple[str, ...]:
        """Every leaf partition."""
        return tuple(leaf for p in self.partitions for leaf in p.leaves())

    def names(self) -> tuple[str, ...]:
        """Every partition, at every level."""
        return tuple(name for p in self.partitions for name in p.names())

    def find(self, name: str) -> Partition | None:
        """The partition called ``name``, at any level."""
        for partition in self.partitions:
            if partition.name == name:
                return partition
            found = partition.sub.find(name) if partition.sub is not None else None
            if found is not None:
                return found
        return None


@dataclass(frozen=True)
class Table:
    """A table: its columns, its primary key and, if partitioned, its partitions."""

    name: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]
    partitioning: Partitioning | None = None

    def key(self, row: Row) -> Key:
        """The primary key of ``row``."""
        return tuple(row[c] for c in self.primary_key)

    def places(self, row: Row) -> tuple[str, ...]:
        """The table and the partitions ``row`` is stored in, outermost first."""
        if self.partitioning is None:
            return (self.name,)
        return (self.name, *self.partitioning.route(row))

    def leaves_of(self, name: str) -> frozenset[str] | None:
        """The leaves of partition ``name`` of this table (None: the table itself)."""
        if name == self.name:
            return None
        found = self.partitioning.find(name) if self.partitioning is not None else None
        if found is None:
            raise KeyError(name)
        return frozenset(found.leaves())


@dataclass(frozen=True)
class Reference:
    """A foreign key: ``table(columns)`` references ``parent(parent_columns)``.

    ``table`` may name a partition of a partitioned table (the key is declared on it);
    ``parent`` names a logical table.
    """

    table: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    on_delete: OnDeleteName

    @property
    def restricts(self) -> bool:
        """Whether children refuse the deletion of their parent."""
        return self.on_delete in {"restrict", "no action"}

    def refers(self, child: Row, parent: Row) -> bool:
        """Whether ``child`` references ``parent`` (a NULL in the reference: it does not)."""
        values = [child[c] for c in self.columns]
        if any(v is None for v in values):
            return False
        return values == [parent[c] for c in self.parent_columns]


@dataclass(frozen=True)
class Link:
    """A foreign key between logical tables, as it applies to some rows of the child.

    ``reference`` names the logical child table; ``leaves`` limits it to rows stored in those
    leaf partitions (None: every row).  An unenforced link (``enforced`` False) stands for
    leaves lacking a key their siblings declare: the database does nothing for their rows.
    """

    reference: Reference
    leaves: frozenset[str] | None = None
    enforced: bool = True

    def applies(self, places: Sequence[str]) -> bool:
        """Whether the key covers a row stored in ``places`` (see :meth:`Table.places`)."""
        return self.leaves is None or places[-1] in self.leaves


@dataclass(frozen=True)
class Schema:
    """Tables and the foreign keys between them (in any shape: chains, self-references, cycles)."""

    tables: tuple[Table, ...]
    references: tuple[Reference, ...] = ()

    def table(self, name: str) -> Table:
        """The table called ``name`` (a logical table, never a partition)."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    def logical(self, name: str) -> Table:
        """The logical table ``name`` is, or is a partition of."""
        for table in self.tables:
            if table.name == name or (table.partitioning is not None
                                      and name in table.partitioning.names()):
                return table
        raise KeyError(name)

    def places(self, name: str, row: Row) -> tuple[str, ...]:
        """The logical table ``name`` and the partitions ``row`` is stored in."""
        return self.table(name).places(row)

    def referencing(self, name: str) -> tuple[Link, ...]:
        """The foreign keys that point at ``name``, per logical child table and rows covered.

        Declarations of one key (the same columns to the same parent columns) on partitions of
        one table each cover their partitions' leaves; leaves none covers get an unenforced
        link of their own.
        """
        groups: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[Reference]] = {}
        for ref in self.references:
            if self.logical(ref.parent).name == name:
                child = self.logical(ref.table).name
                groups.setdefault((child, ref.columns, ref.parent_columns), []).append(ref)
        links: list[Link] = []
        for (child, _, _), declared in groups.items():
            table = self.table(child)
            covered: set[str] = set()
            for ref in declared:
                leaves = table.leaves_of(ref.table)
                links.append(Link(Reference(child, ref.columns, name, ref.parent_columns,
                                            ref.on_delete), leaves))
                if leaves is not None:
                    covered |= leaves
                elif table.partitioning is not None:
                    covered |= set(table.partitioning.leaves())
            if table.partitioning is not None:
                missing = frozenset(table.partitioning.leaves()) - covered
                if missing:
                    ref = declared[0]
                    links.append(Link(Reference(child, ref.columns, name, ref.parent_columns,
                                                "no action"), missing, enforced=False))
        return tuple(links)


@dataclass(frozen=True)
class Hold:
    """A legal hold on ``table``: rows its filter covers (no filter: all of them).

    ``table`` may be a partition: then only rows stored in it (in its leaves) are covered.
    """

    id: str
    table: str
    where: Filter | None = None


@dataclass(frozen=True)
class Retain:
    """A minimum retention on ``table``: covered rows whose ``column`` is after ``cutoff``.

    ``table`` may be a partition, as for :class:`Hold`.
    """

    id: str
    table: str
    column: str
    cutoff: Moment
    where: Filter | None = None

    def protects(self, row: Row) -> bool:
        """Covered by the filter (or unknown), and too young or undated."""
        age = row[self.column]
        young = age is None or not self.cutoff.reached_by(age)
        return young and protects(self.where, row)


@dataclass(frozen=True)
class Guards:
    """Every hold and minimum retention in force."""

    holds: tuple[Hold, ...] = ()
    retains: tuple[Retain, ...] = ()

    def held(self, places: Sequence[str], row: Row) -> bool:
        """Whether a hold covers the row stored in ``places`` (see :meth:`Schema.places`)."""
        return any(h.table in places and protects(h.where, row) for h in self.holds)

    def retained(self, places: Sequence[str], row: Row) -> bool:
        """Whether a minimum retention protects the row stored in ``places``."""
        return any(r.table in places and r.protects(row) for r in self.retains)

    def keep(self, places: Sequence[str], row: Row) -> bool:
        """Whether any guard protects the row stored in ``places``."""
        return self.held(places, row) or self.retained(places, row)


@dataclass(frozen=True)
class RelatedAge:
    """An age from related rows: the newest or oldest ``column`` of the rows ``hops`` reach.

    ``hops`` lead from the rule's table outwards, each the child table and its referencing
    columns.  A NULL among those rows leaves the age unknown (``null_age``); no rows at all is
    ``null_age`` too, unless ``when_none`` is ``act``: then the row is due.
    """

    hops: tuple[tuple[str, tuple[str, ...]], ...]
    column: str
    take: Literal["newest", "oldest"] = "newest"
    when_none: Literal["keep", "act"] = "keep"
    fallback: str | None = None
    """With no related rows, the row's own column ``fallback`` is its age (when given)."""

    def rows(self, schema: Schema, tables: Tables, table: str, row: Row) -> list[Row]:
        """The related rows of ``row`` of ``table``: the rows at the end of the hops."""
        level, parent = [row], table
        for child, columns in self.hops:
            reference = next(link.reference for link in schema.referencing(parent)
                             if link.reference.table == child
                             and link.reference.columns == columns)
            level = [found for found in tables.get(child, ())
                     if any(reference.refers(found, p) for p in level)]
            parent = child
        return level


@dataclass(frozen=True)
class Decree:
    """What a rule says, reduced to what decides rows: table, filter, age, cutoff, action."""

    table: str
    age_column: str | None
    cutoff: Moment
    where: Filter | None = None
    action: Literal["delete", "quarantine"] = "delete"
    delete_children: bool = False
    related: RelatedAge | None = None
    """Instead of ``age_column``: the age comes from related rows."""

    def age(self, schema: Schema, tables: Tables, row: Row) -> tuple[object, bool]:
        """The row's age (None: unknown) and whether it is due whatever its age."""
        if self.related is None:
            return row[str(self.age_column)], False
        dates = [r[self.related.column]
                 for r in self.related.rows(schema, tables, self.table, row)]
        if not dates:
            if self.related.fallback is not None:
                return row[self.related.fallback], False
            return None, self.related.when_none == "act"
        if any(d is None for d in dates):
            return None, False
        return (max if self.related.take == "newest" else min)(dates), False  # type: ignore[type-var]


def span_of(period: object) -> Span:
    """The units of a parsed period (anything with years ... minutes attributes)."""
    names = ("years", "months", "weeks", "days", "hours", "minutes")
    return Span(**{name: int(getattr(period, name)) for name in names})


def in_force(expires: date | datetime | None, at: datetime) -> bool:
    """Whether a hold expiring at ``expires`` holds at ``at``: through the whole day of a date."""
    if expires is None:
        return True
    if isinstance(expires, datetime):
        return at < (expires if expires.tzinfo is not None else expires.replace(tzinfo=at.tzinfo))
    return at.date() <= expires


def from_policy(policies: PolicySet, rule: Rule, as_of: datetime) -> tuple[Decree, Guards]:
    """The decree of a removing ``rule`` and the policy guards in force at ``as_of``."""
    action = rule.action.type
    if action not in {"delete", "quarantine"}:
        raise ValueError(f"the oracle models delete and quarantine, not {action!r}")
    related = rule.age.related
    decree = Decree(
        table=rule.table, age_column=rule.age.column,
        cutoff=moment_before(span_of(rule.age.older_than), as_of, rule.age.timezone),
        where=rule.where, action="delete" if action == "delete" else "quarantine",
        delete_children=getattr(rule.action, "on_children", "refuse") == "delete",
        related=None if related is None else RelatedAge(
            tuple((hop.table, tuple(hop.via)) for hop in related.path), related.column,
            related.take, "act" if rule.age.when_none == "act" else "keep",
            getattr(rule.age.when_none, "use", None)))
    holds = tuple(Hold(h.id, h.table, h.where) for h in policies.holds
                  if h.store == rule.store and in_force(h.expires, as_of))
    retains = tuple(Retain(r.id, r.table, r.column,
                           moment_before(span_of(r.period), as_of, r.timezone), r.where)
                    for r in policies.retentions if r.store == rule.store)
    return decree, Guards(holds, retains)


# -- decisions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """The census of a rule's table, as :class:`retentiond.stores.base.Census` counts it."""

    population: int
    matched: int
    null_age: int
    held: int
    protected: int
    blocked: int
    eligible: int


@dataclass
class Reach:
    """What removing some rows does elsewhere: rows deleted and rows nulled, per table."""

    deleted: dict[str, dict[Key, Row]] = field(default_factory=dict)
    nulled: dict[str, dict[Key, set[str]]] = field(default_factory=dict)
    """Per table, each nulled row's key and the columns set to NULL."""
    blocked: bool = False

    def deleted_keys(self, table: str) -> frozenset[Key]:
        """Distinct keys of ``table`` deleted."""
        return frozenset(self.deleted.get(table, {}))

    def nulled_keys(self, table: str) -> frozenset[Key]:
        """Distinct keys of ``table`` nulled and not deleted (a row deleted counts as deleted)."""
        return frozenset(self.nulled.get(table, {})) - self.deleted_keys(table)


@dataclass(frozen=True)
class Decision:
    """Every row of the rule's table decided, with the census and what the eligible reach."""

    counts: Counts
    status: Mapping[Key, Status]
    eligible: tuple[Key, ...]
    """In primary-key order."""
    reach: Reach
    """What removing all eligible rows at once reaches (its nulled rows of the rule's own table
    may be among those removed: :class:`Batch` leaves them out)."""


def reach_of(schema: Schema, tables: Tables, decree: Decree, guards: Guards,
             rows: Sequence[Row]) -> Reach:
    """What removing ``rows`` of the decree's table reaches, and whether anything blocks it."""
    reach = Reach()

    def walk(name: str, row: Row, path: tuple[str, ...]) -> None:
        for link in schema.referencing(name):
            ref = link.reference
            child = schema.table(ref.table)
            children = [c for c in tables.get(ref.table, ())
                        if ref.refers(c, row) and link.applies(child.places(c))]
            if not children:
                continue
            cycle = ref.table in path
            if not link.enforced or decree.action == "quarantine" or (
                    ref.restricts and (not decree.delete_children or cycle)) or (
                    cycle and ref.on_delete == "cascade"):
                reach.blocked = True
                continue
            for found in children:
                key = child.key(found)
                if guards.keep(child.places(found), found):
                    reach.blocked = True
                if ref.on_delete == "set null":
                    reach.nulled.setdefault(ref.table, {}).setdefault(key, set()).update(
                        ref.columns)
                    continue
                # Walked along every path that reaches it: whether a key closes a cycle
                # depends on the tables the path came through.  A path never repeats a table
                # (a foreign key back into one blocks or nulls), so the walk ends.
                reach.deleted.setdefault(ref.table, {})[key] = found
                walk(ref.table, found, (*path, ref.table))

    for row in rows:
        walk(decree.table, row, (decree.table,))
    return reach


def decide(schema: Schema, tables: Tables, decree: Decree, guards: Guards) -> Decision:
    """Decide every row of the decree's table, as a plan counts them."""
    own = schema.table(decree.table)
    status: dict[Key, Status] = {}
    eligible_rows: list[Row] = []
    for row in tables.get(decree.table, ()):
        key = own.key(row)
        passing = True if decree.where is None else evaluate(decree.where, row)
        age, due_anyway = decree.age(schema, tables, row)
        if passing is not True:
            status[key] = "filtered"
        elif age is None and not due_anyway:
            status[key] = "null_age"
        elif not due_anyway and not decree.cutoff.reached_by(age):
            status[key] = "young"
        elif guards.held(own.places(row), row):
            status[key] = "held"
        elif guards.retained(own.places(row), row):
            status[key] = "protected"
        elif reach_of(schema, tables, decree, guards, [row]).blocked:
            status[key] = "blocked"
        else:
            status[key] = "eligible"
            eligible_rows.append(row)
    tally = {name: sum(1 for s in status.values() if s == name)
             for name in ("null_age", "held", "protected", "blocked", "eligible")}
    counts = Counts(
        population=len(tables.get(decree.table, ())),
        matched=tally["held"] + tally["protected"] + tally["blocked"] + tally["eligible"],
        null_age=tally["null_age"], held=tally["held"], protected=tally["protected"],
        blocked=tally["blocked"], eligible=tally["eligible"])
    eligible = tuple(sorted((own.key(r) for r in eligible_rows), key=key_order))
    return Decision(counts, status, eligible,
                    reach_of(schema, tables, decree, guards, eligible_rows))


def key_order(key: Key) -> tuple[str, ...]:
    """Primary-key order for integer, lowercase text, date and time keys (as backends sort them).

    Aware times compare as instants; naive ones and dates as written.
    """
    return tuple(f"{v:+021d}" if isinstance(v, int)
                 else f"{v.astimezone(UTC).isoformat()}" if isinstance(v, datetime)
                 and v.tzinfo is not None
                 else v.isoformat() if isinstance(v, date) else f"~{v}" for v in key)


# -- a whole run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One batch of a run: the rule's rows removed, and what that reached."""

    keys: tuple[Key, ...]
    deleted: Mapping[str, frozenset[Key]]
    """Distinct rows deleted through foreign keys, per table (the batch's own rows left out)."""
    nulled: Mapping[str, frozenset[Key]]
    """Distinct rows whose references were set to NULL, per table (deleted ones left out)."""


@dataclass(frozen=True)
class Run:
    """What enforcing a rule does: its batches and every table as it is afterwards."""

    batches: tuple[Batch, ...]
    tables: Mapping[str, tuple[Row, ...]]

    @property
    def acted(self) -> tuple[Key, ...]:
        """The rule's rows removed by the action, in the order the batches removed them."""
        return tuple(key for batch in self.batches for key in batch.keys)


def run(schema: Schema, tables: Tables, decree: Decree, guards: Guards, *,
        batch_size: int) -> Run:
    """Enforce the decree in batches walked along the primary key, deciding anew each batch.

    Each batch takes up to ``batch_size`` eligible rows after the last key of the previous
    batch, under the tables as the earlier batches left them, and removes them together.  So
    a run can act on a row its plan counted as blocked, when an earlier batch removed what
    blocked it (and the row's key comes later).
    """
    state = {name: [dict(row) for row in rows] for name, rows in tables.items()}
    own = schema.table(decree.table)
    batches: list[Batch] = []
    after: Key | None = None
    while True:
        decision = decide(schema, state, decree, guards)
        keys = [k for k in decision.eligible if after is None or key_order(k) > key_order(after)]
        keys = keys[:batch_size]
        if not keys:
            return Run(tuple(batches), {n: tuple(rows) for n, rows in state.items()})
        chosen = [r for r in state[decree.table] if own.key(r) in set(keys)]
        reach = (reach_of(schema, state, decree, guards, chosen)
                 if decree.action == "delete" else Reach())
        gone = {name: set(found) for name, found in reach.deleted.items()}
        gone.setdefault(decree.table, set()).update(keys)
        for name, rows in state.items():
            table = schema.table(name)
            nulling = reach.nulled.get(name, {})
            kept = [r for r in rows if table.key(r) not in gone.get(name, set())]
            for row in kept:
                for column in nulling.get(table.key(row), ()):
                    row[column] = None
            state[name] = kept
        mine = set(keys)
        deleted = {n: frozenset(k - mine if n == decree.table else k) for n, k in gone.items()}
        nulled = {n: reach.nulled_keys(n) - (mine if n == decree.table else set())
                  for n in reach.nulled}
        batches.append(Batch(keys=tuple(keys), deleted={n: k for n, k in deleted.items() if k},
                             nulled={n: k for n, k in nulled.items() if k}))
        after = keys[-1]
