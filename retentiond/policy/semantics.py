"""What a filter and a guard say about one record, in plain Python: the decision semantics.

A filter is evaluated under SQL's three-valued logic (TRUE, FALSE, or NULL: unknown), so a
store that decides in Python (a file tree, an object store) and a SQL store that compiles the
same filter into a query decide alike; the reference model of ``tests/oracle`` checks the SQL
stores against these same functions.  Doubt keeps the record: a guard whose filter is unknown
for a record protects it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime

from retentiond.policy.filters import AllOf, AnyOf, Condition, Filter, NotOf, Op

Row = Mapping[str, object]
"""One record's values by column (or attribute) name."""


def _and(values: Iterable[bool | None]) -> bool | None:
    result: bool | None = True
    for value in values:
        if value is False:
            return False
        if value is None:
            result = None
    return result


def _or(values: Iterable[bool | None]) -> bool | None:
    result: bool | None = False
    for value in values:
        if value is True:
            return True
        if value is None:
            result = None
    return result


def like(value: str, pattern: str) -> bool:
    """SQL LIKE without an escape character: ``%`` any run, ``_`` any one character."""
    translated = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(translated, value, flags=re.DOTALL) is not None


def _coerced(value: object, like_this: object) -> object:
    """A policy's text date or time, read as the column's own kind (as the stores bind it)."""
    if isinstance(value, str) and isinstance(like_this, datetime):
        return datetime.fromisoformat(value)
    if isinstance(value, str) and isinstance(like_this, date):
        return date.fromisoformat(value)
    return value


def evaluate(where: Filter, row: Row) -> bool | None:
    """The filter on one row under SQL's three-valued logic: True, False or None (unknown)."""
    if isinstance(where, AllOf):
        return _and(evaluate(f, row) for f in where.all)
    if isinstance(where, AnyOf):
        return _or(evaluate(f, row) for f in where.any)
    if isinstance(where, NotOf):
        inner = evaluate(where.not_, row)
        return None if inner is None else not inner
    return _condition(where, row)


def _condition(condition: Condition, row: Row) -> bool | None:  # noqa: C901 - one case per op
    value = row[condition.column]
    if condition.op is Op.IS_NULL:
        return value is None
    if condition.op is Op.NOT_NULL:
        return value is not None
    if value is None:
        return None
    given = condition.value
    if isinstance(given, list):
        found = any(value == _coerced(item, value) for item in given)
        return found if condition.op is Op.IN else not found
    other = _coerced(given, value)
    match condition.op:
        case Op.EQ:
            return value == other
        case Op.NE:
            return value != other
        case Op.LT:
            return bool(value < other)  # type: ignore[operator]
        case Op.LE:
            return bool(value <= other)  # type: ignore[operator]
        case Op.GT:
            return bool(value > other)  # type: ignore[operator]
        case Op.GE:
            return bool(value >= other)  # type: ignore[operator]
        case Op.LIKE:
            return like(str(value), str(other))
    raise ValueError(f"unknown operator {condition.op!r}")


def protects(where: Filter | None, row: Row) -> bool:
    """Whether a guard's filter covers the row: TRUE or unknown (doubt keeps the record)."""
    return where is None or evaluate(where, row) is not False
