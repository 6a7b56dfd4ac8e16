"""How counsel writes a hold on the command line: ``--where``, ``--subject`` and ``--until``.

    retentiond hold add --store app --table emails --where customer_id=4711 --reason "..."
    retentiond hold add --subject customer=4711 --reason "..." --case CASE-2026-017

A ``--where`` term is parsed here; its value is typed by the live column when the hold is
checked (:mod:`~retentiond.holds.placing`).  :func:`where_notation` writes a filter back in the
same notation, values included: for terminals, never for the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from retentiond.policy.filters import AllOf, AnyOf, Condition, Filter, Op

OPERATORS: dict[str, Op] = {"<=": Op.LE, ">=": Op.GE, "!=": Op.NE, "=": Op.EQ, "<": Op.LT,
                            ">": Op.GT}
_TERM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]{0,62})\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*$", re.DOTALL)
_SUBJECT = re.compile(r"^\s*([a-z][a-z0-9_-]{0,63})\s*=\s*(.+?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Term:
    """One ``column<op>value`` of ``--where``; the value is typed by the live column later."""

    column: str
    op: Op
    text: str

    def __str__(self) -> str:
        symbol = next(s for s, op in OPERATORS.items() if op is self.op)
        return f"{self.column} {symbol} {self.text}"


@dataclass(frozen=True)
class Subject:
    """A data subject: its kind (``customer``) and its identifying value (``4711``)."""

    kind: str
    value: str


def parse_term(text: str) -> Term:
    """``customer_id=4711``, ``status!=open``, ``amount>=100``; ValueError saying what is wrong."""
    match = _TERM.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a condition; write column=value (or !=, <, <=, >, >=), "
                         "e.g. customer_id=4711")
    column, symbol, value = match.groups()
    if not value:
        raise ValueError(f"{text!r} has no value after {symbol!r}")
    return Term(column, OPERATORS[symbol], value)


def parse_subject(text: str) -> Subject:
    """``customer=4711``: a subject kind (lowercase) and its value; ValueError otherwise."""
    match = _SUBJECT.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a subject; write kind=value, e.g. customer=4711 "
                         "(the kind as rules map it under 'subjects')")
    return Subject(match.group(1), match.group(2))


def parse_until(text: str) -> date | datetime:
    """``--until``: a date (the hold holds through that day, UTC) or an ISO timestamp."""
    try:
        if len(text) <= len("YYYY-MM-DD"):
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write YYYY-MM-DD or an ISO timestamp") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def where_notation(where: Filter) -> str:
    """A filter in the ``--where`` notation (values included: for terminals, never the audit)."""
    if isinstance(where, AllOf):
        return " and ".join(where_notation(f) for f in where.all)
    if isinstance(where, AnyOf):
        return "(" + " or ".join(where_notation(f) for f in where.any) + ")"
    if isinstance(where, Condition):
        symbol = next((s for s, op in OPERATORS.items() if op is where.op), where.op.value)
        value = where.value.isoformat() if isinstance(where.value, date) else where.value
        return f"{where.column}{symbol}{value}"
    return f"not ({where_notation(where.not_)})"
