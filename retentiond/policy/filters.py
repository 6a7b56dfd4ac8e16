"""The typed filter language: column / operator / value, combined with all, any and not.

Never raw SQL.  A filter is data; the store compiles it against the reflected table with
bound parameters, after validation has checked that every column exists.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from retentiond.policy.strict import StrictModel

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
QUALIFIED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a plain identifier; use letters, digits and underscores only "
            "(no quotes, spaces, dots or SQL)",
        )
    return value


def _qualified(value: str) -> str:
    if not QUALIFIED.match(value):
        raise ValueError(
            f"{value!r} is not a table name; write 'table' or 'schema.table' with letters, "
            "digits and underscores only (no quotes, spaces or SQL)",
        )
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
TableName = Annotated[str, AfterValidator(_qualified)]
Scalar = str | int | float | bool | date | datetime


class Op(StrEnum):
    """Comparison operators of a condition."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    NOT_IN = "not_in"
    IS_NULL = "is_null"
    NOT_NULL = "not_null"
    LIKE = "like"


MAX_VALUES = 1000
"""Most values in one ``in`` / ``not_in`` list (each is a bound parameter of one statement)."""
_INT64 = (-(2**63), 2**63 - 1)
_NO_VALUE = {Op.IS_NULL, Op.NOT_NULL}
_LIST_VALUE = {Op.IN, Op.NOT_IN}


class Condition(StrictModel):
    """``{column: status, op: eq, value: closed}``."""

    column: Identifier
    op: Op = Op.EQ
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        values = self.value if isinstance(self.value, list) else [self.value]
        if len(values) > MAX_VALUES:
            raise ValueError(f"{len(values):,} values in one list, over the limit of "
                             f"{MAX_VALUES:,}; split the condition (any: [...]) or place a hold")
        if any(isinstance(v, int) and not _INT64[0] <= v <= _INT64[1] for v in values):
            raise ValueError("an integer value is beyond the 64-bit range that databases "
                             "store; compare with a value the column can hold")
        if self.op in _NO_VALUE:
            if self.value is not None:
                raise ValueError(f"op {self.op.value!r} takes no value; remove 'value'")
        elif self.op in _LIST_VALUE:
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op.value!r} needs a non-empty list as 'value'")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(
                f"op {self.op.value!r} needs a single 'value' "
                "(use is_null / not_null to test for NULL)",
            )
        elif self.op is Op.LIKE and not isinstance(self.value, str):
            raise ValueError("op 'like' needs a text 'value'")
        return self

    def columns(self) -> set[str]:
        """Columns this filter reads."""
        return {self.column}


class AllOf(StrictModel):
    """Every sub-filter must match."""

    all: list[Filter] = Field(min_length=1)

    def columns(self) -> set[str]:
        """Columns this filter reads."""
        return set().union(*(f.columns() for f in self.all))


class AnyOf(StrictModel):
    """At least one sub-filter must match."""

    any: list[Filter] = Field(min_length=1)

    def columns(self) -> set[str]:
        """Columns this filter reads."""
        return set().union(*(f.columns() for f in self.any))


class NotOf(StrictModel):
    """The sub-filter must not match."""

    not_: Filter = Field(alias="not")

    def columns(self) -> set[str]:
        """Columns this filter reads."""
        return self.not_.columns()


def _filter_kind(value: Any) -> str | None:  # noqa: ANN401 - pydantic hands us raw input
    if isinstance(value, BaseModel):
        kinds: dict[type[BaseModel], str] = {AllOf: "all", AnyOf: "any", NotOf: "not"}
        return kinds.get(type(value), "condition")
    if isinstance(value, dict):
        for key in ("all", "any", "not"):
            if key in value:
                return key
        return "condition"
    return None


Filter = Annotated[
    Annotated[Condition, Tag("condition")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")],
    Discriminator(
        _filter_kind,
        custom_error_type="filter",
        custom_error_message="a filter is a mapping: {column, op, value}, {all: [...]}, "
        "{any: [...]} or {not: ...}",
    ),
]

FilterKind = Literal["condition", "all", "any", "not"]

AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()
