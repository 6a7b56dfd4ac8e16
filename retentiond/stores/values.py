"""Values and the columns that hold them: whether a value fits a column, text read as one.

Facts of a reflected :class:`~retentiond.stores.base.ColumnInfo`, shared by validation (filter
values, action options), the actions that write values (anonymize, pseudonymize) and the
commands that take values as text (a hold's ``--where`` and ``--subject``, explain's ``--key``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING

from retentiond.stores.base import ColumnInfo, ColumnKind

if TYPE_CHECKING:
    from retentiond.policy.filters import Scalar


def is_text(info: ColumnInfo) -> bool:
    """Whether the column holds text."""
    return info.kind is ColumnKind.TEXT


def text_fits(info: ColumnInfo, length: int) -> bool:
    """Whether ``length`` characters fit the column (unbounded text always fits)."""
    return info.length is None or length <= info.length


def value_fits(info: ColumnInfo, value: Scalar) -> str | None:
    """Why ``value`` cannot be stored in the column, or None when it can."""
    kind = info.kind
    fits = {
        ColumnKind.TEXT: isinstance(value, str),
        ColumnKind.INTEGER: isinstance(value, int) and not isinstance(value, bool),
        ColumnKind.DECIMAL: isinstance(value, int | float) and not isinstance(value, bool),
        ColumnKind.FLOAT: isinstance(value, int | float) and not isinstance(value, bool),
        ColumnKind.DATE: isinstance(value, date) and not isinstance(value, datetime),
        ColumnKind.DATETIME: isinstance(value, datetime),
        ColumnKind.BOOLEAN: isinstance(value, bool),
    }.get(kind, False)
    if not fits:
        return f"{value!r} is not a {kind.value} value for column {info.name!r} ({info.type_name})"
    if isinstance(value, str) and not text_fits(info, len(value)):
        return (
            f"{value!r} has {len(value)} characters but column {info.name!r} holds "
            f"{info.length}"
        )
    return None


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def typed_value(info: ColumnInfo, text: str) -> Scalar:
    """``text`` as a value of the column's kind; ValueError saying why it cannot be one."""
    parse = _PARSERS.get(info.kind, str)
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a value of column {info.name!r} "
                         f"({info.type_name})") from None


def _number(text: str) -> int | float:
    number = float(text)
    return int(number) if number.is_integer() and "." not in text else number


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered not in _TRUE | _FALSE:
        raise ValueError(text)
    return lowered in _TRUE


def _never(text: str) -> Scalar:
    raise ValueError(text)


_PARSERS: dict[ColumnKind, Callable[[str], Scalar]] = {
    ColumnKind.INTEGER: int,
    ColumnKind.DECIMAL: _number,
    ColumnKind.FLOAT: _number,
    ColumnKind.BOOLEAN: _boolean,
    ColumnKind.DATE: date.fromisoformat,
    ColumnKind.DATETIME: datetime.fromisoformat,
    ColumnKind.BINARY: _never,
}
"""How a value given as text is read, by the kind of its column (text: as given)."""
