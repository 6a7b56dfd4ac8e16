"""``anonymize``: overwrite personal columns in place with a per-column strategy.

Strategies (PostgreSQL Anonymizer and Fides offer the same family): ``nullify``, ``constant``,
``mask`` (keep the last N characters), ``generalize`` (date to month or year, number to a step,
IP address to its network) and ``pk_derived`` (a unique value built from the primary key, for
unique columns).  NULL stays NULL, and anonymizing twice changes nothing.  A strategy whose
output could not fit the column is a validation error: a value is never silently truncated.
"""

from __future__ import annotations

import ipaddress
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from retentiond.actions.base import (
    Action,
    ActionOptions,
    AuditBody,
    Batch,
    Finding,
    Verbs,
    changed_rows,
    column_or_finding,
)
from retentiond.errors import ActionError
from retentiond.policy.filters import Identifier, Scalar
from retentiond.policy.strict import StrictModel
from retentiond.stores.base import (
    Capability,
    ColumnInfo,
    ColumnKind,
    Differs,
    NotDerived,
    NotMasked,
    NotMultiple,
    NotNetwork,
    NotNull,
    NotTruncated,
    PendingCheck,
    TableSchema,
    Writer,
)
from retentiond.stores.values import is_text, text_fits, value_fits

PK_DIGITS = 20
"""Widest decimal rendering of a 64-bit integer key, for sizing ``pk_derived`` output."""
IPV4_TEXT = 15
IPV6_TEXT = 39


class Nullify(StrictModel):
    """Set the column to NULL; on a NOT NULL column only with a ``fallback`` constant."""

    strategy: Literal["nullify"]
    fallback: Scalar | None = None


class Constant(StrictModel):
    """Replace the value with one constant."""

    strategy: Literal["constant"]
    value: Scalar


class Mask(StrictModel):
    """Replace every character but the last ``keep_last`` with ``char``; the length is kept."""

    strategy: Literal["mask"]
    keep_last: Annotated[int, Field(ge=0)] = 4
    char: Annotated[str, Field(min_length=1, max_length=1)] = "*"


class Generalize(StrictModel):
    """Coarsen the value to a month or year, a step, or a network.

    ``to: month|year`` for dates and times, ``step: N`` for numbers, ``to: network`` for IP
    addresses (IPv4 /24, IPv6 /48).
    """

    strategy: Literal["generalize"]
    to: Literal["month", "year", "network"] | None = None
    step: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Generalize:
        if (self.to is None) == (self.step is None):
            raise ValueError("give exactly one of 'to' (month, year, network) or 'step'")
        return self


class PkDerived(StrictModel):
    """A unique replacement built from the primary key, e.g. ``erased+{pk}@example.invalid``."""

    strategy: Literal["pk_derived"]
    template: str = "erased+{pk}@example.invalid"

    @model_validator(mode="after")
    def _has_pk(self) -> PkDerived:
        if self.template.count("{pk}") != 1 or self.template.replace("{pk}", "").count("{"):
            raise ValueError("the template must contain '{pk}' exactly once and no other braces")
        return self


Strategy = Annotated[
    Nullify | Constant | Mask | Generalize | PkDerived, Field(discriminator="strategy"),
]


class AnonymizeOptions(ActionOptions):
    """``{type: anonymize, columns: {email: {strategy: pk_derived}, ip: {strategy: ...}}}``."""

    type: Literal["anonymize"] = "anonymize"
    columns: Annotated[dict[Identifier, Strategy], Field(min_length=1)]


def _check_strategy(  # noqa: C901, PLR0912 - one branch per strategy reads best flat
    strategy: Nullify | Constant | Mask | Generalize | PkDerived,
    info: ColumnInfo,
    table: TableSchema,
    path: tuple[str | int, ...],
) -> Finding | None:
    name = info.name
    match strategy:
        case Nullify(fallback=None) if not info.nullable:
            return Finding(path, f"column {name!r} is NOT NULL, so nullify cannot empty it",
                           "add a 'fallback' value, or use constant or mask")
        case Nullify(fallback=fallback) if fallback is not None:
            why = value_fits(info, fallback)
            if why:
                return Finding(path, f"fallback {why}", "choose a fallback that fits")
            if info.unique and not info.nullable:
                return Finding(path, f"column {name!r} is unique; one fallback would collide",
                               "use pk_derived for unique columns")
        case Constant(value=value):
            why = value_fits(info, value)
            if why:
                return Finding(path, why, "choose a constant that fits the column")
            if info.unique:
                return Finding(path, f"column {name!r} is unique; one constant would collide",
                               "use pk_derived for unique columns")
        case Mask() if not is_text(info):
            return Finding(path, f"mask needs a text column; {name!r} is {info.type_name}",
                           "use constant, nullify or generalize")
        case Mask() if info.unique:
            return Finding(path, f"column {name!r} is unique; masked values may collide",
                           "use pk_derived for unique columns")
        case Generalize(to="month" | "year") if info.kind not in {ColumnKind.DATE,
                                                                    ColumnKind.DATETIME}:
            return Finding(path, f"generalize to {strategy.to} needs a date or time column; "
                                 f"{name!r} is {info.type_name}", "use step for numbers")
        case Generalize(step=step) if step is not None and info.kind not in {
            ColumnKind.INTEGER, ColumnKind.DECIMAL, ColumnKind.FLOAT}:
            return Finding(path, f"generalize with step needs a number column; {name!r} is "
                                 f"{info.type_name}", "use to: month/year for dates")
        case Generalize(step=step) if step is not None and info.kind is not ColumnKind.INTEGER:
            return Finding(path, f"generalize with step rounds integers; {name!r} is "
                                 f"{info.type_name}", "round amounts stored as whole units")
        case Generalize(step=step) if step is not None and not float(step).is_integer():
            return Finding(path, f"step {step} is not whole but {name!r} holds integers",
                           "use a whole step")
        case Generalize(to="network") if not is_text(info) or not text_fits(info, IPV4_TEXT):
            return Finding(path, f"generalize to network needs a text column of at least "
                                 f"{IPV4_TEXT} characters; {name!r} is {info.type_name}",
                           "store addresses as text, or use nullify")
        case PkDerived(template=template):
            return _check_pk_derived(template, info, table, path)
    return None


def _check_pk_derived(
    template: str, info: ColumnInfo, table: TableSchema, path: tuple[str | int, ...],
) -> Finding | None:
    if not is_text(info):
        return Finding(path, f"pk_derived writes text; {info.name!r} is {info.type_name}",
                       "use it on a text column")
    if len(table.primary_key) != 1:
        return Finding(path, "pk_derived needs a one-column primary key",
                       "use another strategy on tables with composite keys")
    key = table.columns[table.primary_key[0]]
    key_width = key.length if key.kind is ColumnKind.TEXT and key.length else PK_DIGITS
    widest = len(template) - len("{pk}") + key_width
    if not text_fits(info, widest):
        return Finding(path, f"'{template}' can need {widest} characters but column "
                             f"{info.name!r} holds {info.length}",
                       "shorten the template")
    return None


class AnonymizeAction(Action[AnonymizeOptions]):
    """Overwrite personal columns in place; the row stays, the person is gone from it."""

    name: ClassVar[str] = "anonymize"
    options_model = AnonymizeOptions
    severity: ClassVar[int] = 2
    needs: ClassVar[frozenset[Capability]] = frozenset({Capability.REWRITE})
    rechecks: ClassVar[bool] = False
    removes_rows: ClassVar[bool] = False
    moves_rows: ClassVar[bool] = False
    needs_pseudonym_key: ClassVar[bool] = False
    verbs: ClassVar[Verbs] = Verbs("anonymize", "anonymized", "anonymizing")
    outcome: ClassVar[str] = "Anonymized"
    colour: ClassVar[str] = "#2166ac"

    def check(self, table: TableSchema) -> list[Finding]:
        """Each strategy against its column's type, length, uniqueness and nullability."""
        findings: list[Finding] = []
        for column, strategy in self.options.columns.items():
            path: tuple[str | int, ...] = ("action", "columns", column)
            info = column_or_finding(table, column, path)
            if isinstance(info, Finding):
                findings.append(info)
                continue
            if column in table.primary_key:
                findings.append(Finding(path, f"{column!r} is the primary key",
                                        "anonymize other columns; keys are what the audit keeps"))
                continue
            finding = _check_strategy(strategy, info, table, path)
            if finding is not None:
                findings.append(finding)
        return findings

    def describe(self) -> str:
        """Each column with its strategy."""
        parts = [f"{column}: {_words(strategy)}" for column, strategy in
                 self.options.columns.items()]
        return "anonymize " + "; ".join(parts)

    def touched_columns(self) -> tuple[str, ...]:
        """The anonymized columns."""
        return tuple(self.options.columns)

    def pending(self, table: TableSchema, rule: str) -> tuple[PendingCheck, ...]:
        """A row is pending while any column still differs from what its strategy writes."""
        del rule  # anonymized values are fixpoints: the value alone tells
        return tuple(_pending(column, strategy, table.columns[column])
                     for column, strategy in self.options.columns.items())

    def apply(self, writer: Writer, batch: Batch) -> AuditBody:
        """Compute each column's anonymized value and write the rows that change."""
        columns = list(self.options.columns)
        infos = [batch.table.columns[c] for c in columns]
        strategies = [self.options.columns[c] for c in columns]
        try:
            changed = changed_rows(batch.rows, lambda key, values: tuple(
                anonymized(s, info, value, key)
                for s, info, value in zip(strategies, infos, values, strict=True)))
        except _UnfitValueError as exc:
            raise ActionError(batch.rule, batch.table.name, exc.what, exc.fix,
                              column=exc.column) from exc
        writer.rewrite(batch.table.name, columns, changed)
        return {"keys": [k for k, _ in changed], "count": len(changed),
                "columns": {c: s.strategy for c, s in zip(columns, strategies, strict=True)}}


def _pending(column: str, strategy: Nullify | Constant | Mask | Generalize | PkDerived,
             info: ColumnInfo) -> PendingCheck:
    match strategy:
        case Nullify(fallback=fallback) if not info.nullable and fallback is not None:
            return Differs(column, fallback)
        case Nullify():
            return NotNull(column)
        case Constant(value=value):
            return Differs(column, value)
        case Mask(keep_last=keep, char=char):
            return NotMasked(column, keep, char)
        case Generalize(to="network"):
            return NotNetwork(column)
        case Generalize(to="month" | "year" as unit):
            return NotTruncated(column, unit)
        case Generalize(step=step) if step is not None:
            return NotMultiple(column, int(step))
        case PkDerived(template=template):
            prefix, _, suffix = template.partition("{pk}")
            return NotDerived(column, prefix, suffix)
    raise ValueError(f"no pending check for {strategy!r}")


class _UnfitValueError(Exception):
    """A stored value of a type its strategy cannot rewrite; it names the type, never the value.

    :meth:`AnonymizeAction.apply` turns it into an :class:`ActionError` naming the rule.
    """

    def __init__(self, strategy: Nullify | Constant | Mask | Generalize | PkDerived,
                 info: ColumnInfo, value: object) -> None:
        self.column = info.name
        self.what = f"{strategy.strategy} cannot rewrite a {type(value).__name__} value"
        self.fix = (f"the column is {info.type_name}: correct the values that are not "
                    f"{info.kind.value}, or choose another strategy")
        super().__init__(self.what)


def anonymized(  # noqa: C901 - one case per strategy
    strategy: Nullify | Constant | Mask | Generalize | PkDerived,
    info: ColumnInfo,
    value: object,
    key: tuple[object, ...],
) -> object:
    """The anonymized form of ``value``; NULL stays NULL, and an anonymized value is a fixpoint.

    A value of a type the strategy cannot rewrite (SQLite keeps ``1234.5`` or ``'12 EUR'`` in
    an INTEGER column) raises :class:`_UnfitValueError`.
    """
    if value is None:
        return None
    match strategy:
        case Nullify(fallback=fallback):
            return None if info.nullable else fallback
        case Constant(value=constant):
            return constant
        case Mask(keep_last=keep, char=char):
            text = str(value)
            hidden = len(text) - keep
            return text if hidden <= 0 else char * hidden + text[hidden:]
        case Generalize(to="network"):
            return _network(str(value), nullable=info.nullable)
        case Generalize(to="month") if isinstance(value, datetime):
            return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        case Generalize(to="year") if isinstance(value, datetime):
            return value.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        case Generalize(to="month") if isinstance(value, date):
            return value.replace(day=1)
        case Generalize(to="year") if isinstance(value, date):
            return value.replace(month=1, day=1)
        case Generalize(step=step) if step is not None and isinstance(value, int | Decimal):
            whole = int(step)
            return (value // whole) * whole
        case PkDerived(template=template):
            return template.replace("{pk}", str(key[0]))
    raise _UnfitValueError(strategy, info, value)


def _network(text: str, *, nullable: bool) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of an address; what is no address is dropped."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        # Not an address, yet in an address column past its period: remove it rather than keep.
        return None if nullable else "0.0.0.0"  # noqa: S104 - a placeholder value, not a bind
    prefix = 24 if address.version == 4 else 48  # noqa: PLR2004 - IP versions
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _words(strategy: Nullify | Constant | Mask | Generalize | PkDerived) -> str:
    match strategy:
        case Nullify(fallback=None):
            return "set to NULL"
        case Nullify(fallback=fallback):
            return f"set to NULL (or {fallback!r} where NOT NULL)"
        case Constant(value=value):
            return f"replace with {value!r}"
        case Mask(keep_last=keep, char=char):
            return f"mask with {char!r}, keeping the last {keep}"
        case Generalize(to="network"):
            return "cut to the network (IPv4 /24, IPv6 /48)"
        case Generalize(to=to) if to is not None:
            return f"round down to the {to}"
        case Generalize(step=step):
            return f"round down to a multiple of {step:g}"
        case PkDerived(template=template):
            return f"replace with {template!r}"
    return strategy.strategy
