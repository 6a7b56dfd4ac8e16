"""Compiling a Selection into boolean SQL expressions over one reflected table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from retentiond.errors import StoreError
from retentiond.policy.filters import AllOf, AnyOf, Condition, NotOf, Op
from retentiond.stores.base import AgeBound, ColumnKind, Guard, Key, Selection, TableSchema

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from retentiond.policy.filters import Filter
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

    @property
    def eligible(self) -> ColumnElement[bool]:
        """Passes the filter, due, and no guard protects it."""
        return sa.and_(self.passing, self.due, sa.not_(self.held), sa.not_(self.retained))


class SelectionCompiler:
    """Builds the expressions of a Selection against one reflected table."""

    def __init__(self, store: str, reflected: Reflected) -> None:
        self._store = store
        self._table = reflected.table
        self._schema = reflected.schema

    def selection(self, selection: Selection) -> Compiled:
        """The selection's filter, age bound and guards as expressions."""
        age, cutoff = self._age(selection.age)
        guards = [(guard, self._protects(guard)) for guard in selection.guards]
        holds = [p for g, p in guards if g.kind == "hold"]
        retentions = [p for g, p in guards if g.kind == "retention"]
        return Compiled(
            table=self._table,
            schema=self._schema,
            passing=self._filter(selection.where) if selection.where is not None else sa.true(),
            due=age <= cutoff,
            undated=age.is_(None),
            guards=guards,
            held=sa.or_(*holds) if holds else sa.false(),
            retained=sa.or_(*retentions) if retentions else sa.false(),
        )

    def _protects(self, guard: Guard) -> ColumnElement[bool]:
        condition = self._filter(guard.where) if guard.where is not None else sa.true()
        if guard.kind == "retention":
            if guard.age is None:
                raise StoreError(self._store, f"retention {guard.id!r} has no age column")
            age, cutoff = self._age(guard.age)
            condition = sa.and_(condition, sa.or_(age > cutoff, age.is_(None)))
        elif guard.where is None:
            return sa.true()
        # A condition that is NULL (a NULL in a filtered column) protects: doubt keeps the record.
        return sa.func.coalesce(condition, sa.true())

    def _age(self, bound: AgeBound) -> tuple[sa.Column[Any], date | datetime]:
        column = self.column(bound.column)
        info = self._schema.columns[bound.column]
        if info.kind is ColumnKind.DATE:
            return column, bound.cutoff.day
        if info.kind is ColumnKind.DATETIME:
            return column, bound.cutoff.aware if info.timezone else bound.cutoff.local
        raise StoreError(
            self._store,
            f"age column {bound.column!r} of {self._schema.name!r} is {info.type_name}, "
            "not a date or a timestamp",
            "choose a DATE or TIMESTAMP column as the rule's age",
        )

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

    def column(self, name: str) -> sa.Column[Any]:
        """The reflected column ``name``; StoreError when the table has none."""
        if name not in self._schema.columns:
            raise StoreError(
                self._store,
                f"table {self._schema.name!r} has no column {name!r}",
                "check the rule against the table (retentiond validate)",
            )
        return self._table.c[name]


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

