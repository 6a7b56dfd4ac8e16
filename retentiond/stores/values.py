"""Values and the columns that hold them: whether a value fits a column.

Facts of a reflected :class:`~retentiond.stores.base.ColumnInfo`, shared by validation (filter
values, action options) and the actions that write values (anonymize, pseudonymize).
"""

from __future__ import annotations

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
