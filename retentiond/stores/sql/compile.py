"""Compiling a Selection into boolean SQL expressions over one reflected table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnClause

from retentiond.errors import StoreError
from retentiond.policy.filters import AllOf, AnyOf, Condition, NotOf, Op
from retentiond.stores.base import (
    AgeBound,
    Blocker,
    ColumnKind,
    Differs,
    ForeignKey,
    Guard,
    Key,
    NotDerived,
    NotMasked,
    NotMultiple,
    NotNetwork,
    NotNull,
    NotPseudonym,
    NotTruncated,
    PendingCheck,
    RelatedAge,
    Selection,
    TableSchema,
    Through,
)
from retentiond.stores.sql.keeping import DoneTables, key_bit_recorded, key_text, records_bits

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement, KeyedColumnElement

    from retentiond.policy.filters import Filter
    from retentiond.policy.periods import Cutoff
    from retentiond.stores.sql._common import Family
    from retentiond.stores.sql.reflect import Reflected


@dataclass(frozen=True)
class Compiled:
    """A selection as boolean expressions over one reflected table."""

    table: sa.Table
    schema: TableSchema
    passing: ColumnElement[bool]
    """The rule's filter."""
    due: ColumnElement[bool]
    """``age <= cutoff`` (NULL, hence false, for NULL ages)."""
    undated: ColumnElement[bool]
    guards: list[tuple[Guard, ColumnElement[bool]]]
    """Each guard with its "protects" expression, never NULL."""
    held: ColumnElement[bool]
    retained: ColumnElement[bool]
    blockers: list[tuple[Blocker, ColumnElement[bool]]] = field(default_factory=list)
    """Each blocker with its "blocks" expression (an EXISTS), never NULL."""
    blocked: ColumnElement[bool] = field(default_factory=sa.false)
    pending: ColumnElement[bool] = field(default_factory=sa.true)
    """The row still needs the rewrite (always true for actions that remove rows)."""

    @property
    def eligible(self) -> ColumnElement[bool]:
        """Passes the filter, due, no guard protects it, nothing blocks it, and it is pending."""
        return sa.and_(self.passing, self.due, sa.not_(self.held), sa.not_(self.retained),
                       sa.not_(self.blocked), self.pending)


_IPV4_NETWORK = r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.0$"
_IPV6_NETWORK = r"^([0-9a-f]{1,4}(:[0-9a-f]{1,4}){0,2})?::$"
"""What ``generalize: network`` writes: a /24 or a /48 network address, nothing else."""

Lookup = Callable[[str], "Reflected"]
"""Finds another reflected table of the same store (for blockers that follow foreign keys)."""


class SelectionCompiler:
    """Builds the expressions of a Selection against one reflected table (or an alias of it)."""

    def __init__(
        self,
        store: str,
        reflected: Reflected,
        *,
        family: Family = "sqlite",
        lookup: Lookup | None = None,
        alias: sa.FromClause | None = None,
        done: Callable[[], DoneTables] | None = None,
    ) -> None:
        self._store = store
        self._table: sa.FromClause = alias if alias is not None else reflected.table
        self._reflected = reflected
        self._schema = reflected.schema
        self._family: Family = family
        self._lookup = lookup
        self._done = done

    def selection(self, selection: Selection) -> Compiled:
        """The selection's filter, age bound, guards, blockers and pending checks as expressions."""
        due: ColumnElement[bool]
        undated: ColumnElement[bool]
        if selection.age is None:
            due, undated = sa.true(), sa.false()
        elif selection.age.related is not None:
            due, undated = self._related_age(selection.age.cutoff, selection.age.related)
        else:
            age, cutoff = self._age(selection.age)
            dated = self._dated(age)
            due = age <= cutoff if dated is None else sa.and_(age <= cutoff, dated)
            undated = age.is_(None) if dated is None else sa.or_(age.is_(None), sa.not_(dated))
        guards = [(guard, self._protects(guard)) for guard in selection.guards]
        holds = [p for g, p in guards if g.kind == "hold"]
        retentions = [p for g, p in guards if g.kind == "retention"]
        blockers = [(b, self._blocks(b, n)) for n, b in enumerate(selection.blockers)]
        pending = [self._pending(check) for check in selection.pending]
        return Compiled(
            table=self._reflected.table,
            schema=self._schema,
            passing=sa.and_(
                self._filter(selection.where) if selection.where is not None else sa.true(),
                *([sa.or_(*(self._owned(t, f"subj_{n}") for n, t in enumerate(selection.subject)))]
                  if selection.subject else [])),
            due=due,
            undated=undated,
            guards=guards,
            held=sa.or_(*holds) if holds else sa.false(),
            retained=sa.or_(*retentions) if retentions else sa.false(),
            blockers=blockers,
            blocked=sa.or_(*(e for _, e in blockers)) if blockers else sa.false(),
            pending=sa.or_(*pending) if pending else sa.true(),
        )

    def guarded(self, guards: Sequence[Guard]) -> ColumnElement[bool]:
        """Whether any of ``guards`` protects the row (never NULL)."""
        protects = [self._protects(guard) for guard in guards]
        return sa.or_(*protects) if protects else sa.false()

    def _blocks(self, blocker: Blocker, number: int) -> ColumnElement[bool]:
        if self._lookup is None:
            raise StoreError(self._store, "blockers need the other tables of the store")
        parent: sa.FromClause = self._table
        joins: list[ColumnElement[bool]] = []
        child_alias: sa.FromClause | None = None
        child: Reflected | None = None
        for depth, fk in enumerate(blocker.path):
            child = self._lookup(fk.table)
            child_alias = child.table.alias(f"blk{number}_{depth}")
            joins.extend(child_alias.c[c] == parent.c[r]
                         for c, r in zip(fk.columns, fk.ref_columns, strict=True))
            if fk.within:
                joins.append(in_partitions(child_alias, fk.within))
            parent = child_alias
        if child is None or child_alias is None:
            raise StoreError(self._store, f"blocker {blocker.id!r} has an empty path")
        condition = sa.and_(*joins)
        if blocker.guards is not None:
            inner = SelectionCompiler(self._store, child, family=self._family,
                                      lookup=self._lookup, alias=child_alias)
            condition = sa.and_(condition, inner.guarded(blocker.guards))
        return sa.exists().where(condition)

    def _pending(self, check: PendingCheck) -> ColumnElement[bool]:  # noqa: C901 - one case each
        column = self.column(check.column)
        present = column.is_not(None)
        match check:
            case NotNull():
                return present
            case Differs(value=value):
                return sa.and_(present, column != value)
            case NotMasked(keep=keep, char=char):
                count = sa.func.length if self._family == "sqlite" else sa.func.char_length
                length = count(column)
                head = sa.func.substr(column, 1, length - keep)
                return sa.and_(present, length > keep, sa.func.replace(head, char, "") != "")
            case NotTruncated(unit=unit):
                info = self._schema.columns[check.column]
                parts = ["day"] if unit == "month" else ["month", "day"]
                if info.kind is ColumnKind.DATETIME:
                    parts += ["hour", "minute", "second"]
                firsts = {"month": 1, "day": 1}
                return sa.and_(present, sa.or_(*(sa.extract(p, column) != firsts.get(p, 0)
                                                 for p in parts)))
            case NotMultiple(step=step):
                return sa.and_(present, column % step != 0)
            case NotNetwork():
                network = sa.or_(self._matches(column, _IPV4_NETWORK),
                                 self._matches(column, _IPV6_NETWORK))
                return sa.and_(present, sa.not_(network))
            case NotPseudonym(length=length, rule=rule):
                return sa.and_(present, sa.not_(sa.and_(
                    self._pseudonym_shaped(column, length), self._recorded(rule))))
            case NotDerived(prefix=prefix, suffix=suffix):
                key = self._schema.primary_key
                if len(key) != 1:
                    raise StoreError(self._store, "pk_derived needs a one-column primary key")
                derived = (sa.literal(prefix, sa.String) + sa.cast(self.column(key[0]), sa.String)
                           + sa.literal(suffix, sa.String))
                return sa.and_(present, column != derived)
        raise StoreError(self._store, f"unknown pending check {check!r}")

    def _pseudonym_shaped(self, column: KeyedColumnElement[Any], length: int
                          ) -> ColumnElement[bool]:
        """``length`` lowercase base32 characters (``^[a-z2-7]{length}$``)."""
        if self._family == "sqlite":
            # SQLite's REGEXP calls back into Python for every row a claim reads; GLOB (case
            # sensitive) runs in SQLite itself: a 10,000-row claim took 18 ms, now 14.
            return sa.and_(sa.func.length(column) == length,
                           sa.not_(column.op("GLOB", is_comparison=True)("*[^a-z2-7]*")))
        # The length first: real values (emails, names) mostly fail it, and then the regular
        # expression is never run.  The claim's SQL, hand-written for psycopg, 10,000 rows of
        # the bench table: ~43 ms, now ~33.
        return sa.and_(sa.func.char_length(column) == length,
                       self._matches(column, f"^[a-z2-7]{{{length}}}$"))

    def _matches(self, column: KeyedColumnElement[Any], pattern: str) -> ColumnElement[bool]:
        # MariaDB compares case-insensitively under the usual collations; bytes do not.
        subject = sa.func.binary(column) if self._family == "mysql" else column
        return subject.regexp_match(pattern)

    def _recorded(self, rule: str) -> ColumnElement[bool]:
        """The row's key is among the keys ``rule`` pseudonymized."""
        # Looked up only here: rules that rewrite nothing never ask the catalog for them.
        done = self._done() if self._done is not None else DoneTables()
        columns: list[sa.ColumnElement[Any]] = [self.column(c) for c in self._schema.primary_key]
        found = []
        if done.bits is not None and records_bits(self._schema):
            found.append(key_bit_recorded(done.bits, rule, columns[0]))
        if done.keys is not None:  # every other key, and integer keys recorded as text before
            found.append(sa.exists().where(done.keys.c.rule == rule,
                                           done.keys.c.row_key == key_text(columns)))
        return sa.or_(*found) if found else sa.false()  # no table yet: nothing was recorded

    def _protects(self, guard: Guard) -> ColumnElement[bool]:
        condition = self._filter(guard.where) if guard.where is not None else sa.true()
        if guard.kind == "retention":
            if guard.age is None:
                raise StoreError(self._store, f"retention {guard.id!r} has no age column")
            age, cutoff = self._age(guard.age)
            dated = self._dated(age)
            young = age > cutoff if dated is None else sa.or_(age > cutoff, sa.not_(dated))
            condition = sa.and_(condition, sa.or_(young, age.is_(None)))
        elif guard.where is None and not guard.within and not guard.through:
            return sa.true()
        if guard.within:
            condition = sa.and_(condition, in_partitions(self._table, guard.within))
        # A condition that is NULL (a NULL in a filtered column) protects: doubt keeps the record.
        protects: ColumnElement[bool] = sa.func.coalesce(condition, sa.true())
        if guard.through:
            belongs = [self._belongs(through, f"{guard.id}_{n}")
                       for n, through in enumerate(guard.through)]
            protects = sa.and_(protects, sa.or_(*belongs))
        return protects

    def _belongs(self, through: Through, name: str) -> ColumnElement[bool]:
        """Whether the row belongs where ``through`` says (never NULL; doubt belongs)."""
        if not through.path:
            return sa.func.coalesce(self._filter(through.where), sa.true())
        # It belongs unless its chain of references resolves to a row the condition plainly
        # excludes: a NULL or dangling reference on the way leaves it in doubt, which keeps it.
        joins, inner = self._along(through, f"thr_{_plain(name)}")
        excluded = sa.not_(sa.func.coalesce(inner.filtered(through.where), sa.true()))
        return sa.not_(sa.exists().where(sa.and_(*joins, excluded)))

    def _owned(self, through: Through, name: str) -> ColumnElement[bool]:
        """Whether the row plainly belongs where ``through`` says (never NULL; doubt does not).

        The strict counterpart of :meth:`_belongs`: a chain of references that resolves, all
        the way, to a row the condition is true of.
        """
        if not through.path:
            return sa.func.coalesce(self._filter(through.where), sa.false())
        joins, inner = self._along(through, f"own_{_plain(name)}")
        return sa.exists().where(sa.and_(*joins, sa.func.coalesce(
            inner.filtered(through.where), sa.false())))

    def _along(self, through: Through, prefix: str,
               ) -> tuple[list[ColumnElement[bool]], SelectionCompiler]:
        """The joins from this row along ``through``'s references, and a compiler for the end.

        The tables on the way are aliased ``{prefix}_{depth}``, so a path back into the rule's
        own table is never mistaken for the enclosing row.
        """
        if self._lookup is None:
            raise StoreError(self._store, "a path through foreign keys needs the other tables")
        child: sa.FromClause = self._table
        joins: list[ColumnElement[bool]] = []
        parent: Reflected | None = None
        alias: sa.FromClause | None = None
        for depth, fk in enumerate(through.path):
            parent = self._lookup(fk.ref_table)
            alias = parent.table.alias(f"{prefix}_{depth}")
            joins.extend(alias.c[r] == child.c[c]
                         for c, r in zip(fk.columns, fk.ref_columns, strict=True))
            child = alias
        if parent is None or alias is None:
            raise StoreError(self._store, "a path through foreign keys is empty")
        return joins, SelectionCompiler(self._store, parent, family=self._family,
                                        lookup=self._lookup, alias=alias)

    def _dated(self, age: KeyedColumnElement[Any]) -> ColumnElement[bool] | None:
        """Whether an age value can be compared as a time at all; None: whenever it is set.

        SQLite keeps whatever an application stored in a DATE or DATETIME column, and compares
        it as text: ``'01/03/2026'`` or ``''`` would sort before any ISO cutoff and look due,
        an epoch number before any text.  Only values shaped like an ISO date (``YYYY-MM-DD``
        first, no UTC offset) are dates; the others are in doubt, and doubt keeps the record
        (counted with the missing dates).  A ``T`` between date and time still compares as
        text: such a value on the cutoff's own day is due a day late, never early.
        """
        if self._family != "sqlite":
            return None
        # Two dashes where an ISO date has them: a tenth of GLOB's cost on SQLite (0.02 s
        # against 0.17 s over 1M values), and asked only of values already compared.  A UTC
        # offset after the time ("... 11:00:00-02:00") would compare as the wall clock, hours
        # early or late: in doubt too (reading it as the instant it names cost six times the
        # comparison itself on every row).
        offset = sa.func.substr(age, 20)
        return sa.and_(sa.func.substr(age, 5, 1) == "-", sa.func.substr(age, 8, 1) == "-",
                       sa.func.instr(offset, "-") == 0, sa.func.instr(offset, "+") == 0)

    def _age(self, bound: AgeBound) -> tuple[KeyedColumnElement[Any], date | datetime]:
        column = self.column(bound.column)
        return column, self._cutoff(self._schema, bound.column, bound.cutoff)

    def _cutoff(self, schema: TableSchema, name: str, cutoff: Cutoff) -> date | datetime:
        """The cutoff as column ``name`` of ``schema`` compares: a day, wall clock or instant."""
        info = schema.columns[name]
        if info.kind is ColumnKind.DATE:
            return cutoff.day
        if info.kind is ColumnKind.DATETIME:
            return cutoff.aware if info.timezone else cutoff.local
        raise StoreError(
            self._store,
            f"age column {name!r} of {schema.name!r} is {info.type_name}, "
            "not a date or a timestamp",
            "choose a DATE or TIMESTAMP column as the rule's age",
        )

    def _related_age(self, cutoff: Cutoff, related: RelatedAge,
                     ) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        """``due`` and ``undated`` of an age taken from related rows, as correlated subqueries.

        The age is ``max`` (newest) or ``min`` (oldest) of the related column over the rows
        the foreign-key path joins to this one.  SQL's aggregates skip NULLs; here a NULL (or
        an undated SQLite value) among the rows leaves the age in doubt instead, so that an
        invoice with no date never lets its customer look older than it is.  With no related
        rows, ``when_none`` decides: undated (keep) or due (act).
        """
        joins, column, last = self._related_rows(related)
        bound = self._cutoff(last.schema, related.column, cutoff)
        take = sa.func.max if related.take == "newest" else sa.func.min
        age = sa.select(take(column)).where(*joins).scalar_subquery()
        dated = self._dated(column)
        unknown = column.is_(None) if dated is None else sa.or_(column.is_(None),
                                                                sa.not_(dated))
        doubtful = sa.exists().where(*joins, unknown)
        known = sa.and_(sa.not_(doubtful), age <= bound)
        none = sa.not_(sa.exists().where(*joins))
        if related.fallback is not None:
            own, own_cutoff = self._age(AgeBound(related.fallback, cutoff))
            own_dated = self._dated(own)
            own_due = own <= own_cutoff if own_dated is None else sa.and_(own <= own_cutoff,
                                                                          own_dated)
            own_undated = own.is_(None) if own_dated is None else sa.or_(own.is_(None),
                                                                          sa.not_(own_dated))
            return (sa.or_(sa.and_(none, own_due), known),
                    sa.or_(sa.and_(none, own_undated), doubtful))
        if related.when_none == "act":
            return sa.or_(none, known), doubtful
        return known, sa.or_(none, doubtful)

    def related_value(self, related: RelatedAge) -> ColumnElement[Any]:
        """The newest (or oldest) related date of the row, as text.

        NULL when there is none, and when a related row has no date (or, on SQLite, one that
        is no ISO date): the age is then unknown, as the selection has it.  With no related
        rows and a ``fallback``, the row's own date.
        """
        joins, column, _last = self._related_rows(related)
        take = sa.func.max if related.take == "newest" else sa.func.min
        dated = self._dated(column)
        unknown = column.is_(None) if dated is None else sa.or_(column.is_(None),
                                                                sa.not_(dated))
        value = sa.select(sa.type_coerce(take(column), sa.String)).where(*joins)
        cases: list[tuple[ColumnElement[bool], Any]] = [
            (sa.exists().where(*joins, unknown), sa.null())]
        if related.fallback is not None:
            cases.append((sa.not_(sa.exists().where(*joins)),
                          sa.type_coerce(self.column(related.fallback), sa.String)))
        return sa.case(*cases, else_=value.scalar_subquery())

    def _related_rows(self, related: RelatedAge) -> tuple[
            list[ColumnElement[bool]], KeyedColumnElement[Any], Reflected]:
        """The join conditions from this row out along the path, the related column, its table.

        The tables on the way are aliased ``age_{depth}``: a path back into the rule's own
        table (replies to a comment) is never mistaken for the enclosing row.
        """
        if self._lookup is None:
            raise StoreError(self._store, "an age from related rows needs the other tables")
        joins: list[ColumnElement[bool]] = []
        previous: sa.FromClause = self._table
        last: Reflected | None = None
        for depth, fk in enumerate(related.path):
            last = self._lookup(fk.table)
            alias = last.table.alias(f"age_{depth}")
            joins.extend(alias.c[c] == previous.c[r]
                         for c, r in zip(fk.columns, fk.ref_columns, strict=True))
            if fk.within:
                joins.append(in_partitions(alias, fk.within))
            previous = alias
        if last is None:
            raise StoreError(self._store, "an age from related rows needs a foreign key")
        if related.column not in last.schema.columns:
            raise StoreError(self._store, f"table {last.schema.name!r} has no column "
                             f"{related.column!r}", "check the rule (retentiond validate)")
        return joins, previous.c[related.column], last

    def filtered(self, where: Filter) -> ColumnElement[bool]:
        """``where`` as an expression over the table (NULL where a filtered column is NULL)."""
        return self._filter(where)

    def _filter(self, where: Filter) -> ColumnElement[bool]:
        if isinstance(where, AllOf):
            return sa.and_(*(self._filter(f) for f in where.all))
        if isinstance(where, AnyOf):
            return sa.or_(*(self._filter(f) for f in where.any))
        if isinstance(where, NotOf):
            return sa.not_(self._filter(where.not_))
        return self._condition(where)

    def _condition(self, condition: Condition) -> ColumnElement[bool]:
        column = self.column(condition.column)
        kind = self._schema.columns[condition.column].kind
        value = condition.value
        values = [self._coerce(kind, v) for v in value] if isinstance(value, list) else []
        single = None if isinstance(value, list) else self._coerce(kind, value)
        comparisons: dict[Op, Callable[[], ColumnElement[bool]]] = {
            Op.EQ: lambda: column == single,
            Op.NE: lambda: column != single,
            Op.LT: lambda: column < single,
            Op.LE: lambda: column <= single,
            Op.GT: lambda: column > single,
            Op.GE: lambda: column >= single,
            Op.IN: lambda: column.in_(values),
            Op.NOT_IN: lambda: column.not_in(values),
            Op.IS_NULL: lambda: column.is_(None),
            Op.NOT_NULL: lambda: column.is_not(None),
            Op.LIKE: lambda: column.like(str(single)),
        }
        return comparisons[condition.op]()

    def _coerce(self, kind: ColumnKind, value: object) -> object:
        # Policy files may give dates as text; the column's own type binds date objects.
        if not isinstance(value, str) or kind not in {ColumnKind.DATE, ColumnKind.DATETIME}:
            return value
        parse = date.fromisoformat if kind is ColumnKind.DATE else datetime.fromisoformat
        try:
            return parse(value)
        except ValueError:
            raise StoreError(
                self._store,
                f"{value!r} is not an ISO {kind.value} for a {kind.value} column",
                "write dates as YYYY-MM-DD and times as YYYY-MM-DD HH:MM:SS",
            ) from None

    def column(self, name: str) -> KeyedColumnElement[Any]:
        """The reflected column ``name``; StoreError when the table has none."""
        if name not in self._schema.columns:
            raise StoreError(
                self._store,
                f"table {self._schema.name!r} has no column {name!r}",
                "check the rule against the table (retentiond validate)",
            )
        return self._table.c[name]


def referencing(
    lookup: Lookup, path: Sequence[ForeignKey], parents: sa.Select[Any], target: sa.FromClause,
    *, name: str,
) -> ColumnElement[bool]:
    """Whether a row of ``target`` references, through ``path``, a row ``parents`` selects.

    ``target`` is an alias of the table ``path`` ends at; ``parents`` selects the columns the
    first key references (``path[0].ref_columns``) of the rows the chain starts from.

    The tables in between are aliased ``{name}_{depth}``: a table met twice on the way (a
    self-reference, a cycle) is never mistaken for an enclosing one.
    """
    current = parents
    for depth, fk in enumerate(path):
        last = depth == len(path) - 1
        child = target if last else lookup(fk.table).table.alias(f"{name}_{depth}")
        references = [child.c[c] for c in fk.columns]
        condition: ColumnElement[bool] = (references[0].in_(current) if len(references) == 1
                     else sa.tuple_(*references).in_(current))
        if fk.within:
            condition = sa.and_(condition, in_partitions(child, fk.within))
        if last:
            return condition
        current = sa.select(*(child.c[c] for c in path[depth + 1].ref_columns)).where(condition)
    raise ValueError("a reach needs at least one foreign key")


def in_partitions(table: sa.FromClause, partitions: Sequence[str]) -> ColumnElement[bool]:
    """Rows of ``table`` stored in one of these (leaf) partitions: PostgreSQL's ``tableoid``."""
    oid: ColumnClause[Any] = ColumnClause("tableoid", _selectable=table)
    return oid.in_([sa.func.to_regclass(_quoted(name)) for name in partitions])


def _plain(name: str) -> str:
    """An id as a fragment of an SQL alias: letters, digits and underscores only."""
    return "".join(c if c.isalnum() else "_" for c in name.lower())


def _quoted(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def after_key(columns: Sequence[sa.Column[Any]], after: Key, family: Family) -> ColumnElement[bool]:
    """``key > after``, in a form each database walks as an index range."""
    if len(columns) == 1:
        return columns[0] > after[0]
    values = [sa.literal(v, c.type) for c, v in zip(columns, after, strict=True)]
    if family != "mysql":
        return sa.tuple_(*columns) > sa.tuple_(*values)
    # MariaDB scans the whole index for a row-value comparison (measured: 19,012 index reads
    # to return 9 keys); the expanded form with a leading bound is a range scan (9 reads).
    expanded: ColumnElement[bool] = columns[-1] > values[-1]
    for column, value in zip(reversed(columns[:-1]), reversed(values[:-1]), strict=True):
        expanded = sa.or_(column > value, sa.and_(column == value, expanded))
    return sa.and_(columns[0] >= values[0], expanded)

