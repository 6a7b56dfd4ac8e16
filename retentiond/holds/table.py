"""The holds table: the one reader of the holds placed at run time.

The state database keeps them (:data:`~retentiond.ledger.state.holds`), and every reader goes
through :func:`read_holds`: ``hold list`` and ``hold release``, the hold source a run consults
before every batch (:mod:`~retentiond.holds.scope`), and the published schedule and report,
which open the state database read-only (:func:`holds_in`).  Times are kept as ISO text in UTC
(:func:`stamp`), a filter as the canonical JSON of the filter model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, RowMapping, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from retentiond.errors import AuditError
from retentiond.holds.notation import Subject, where_notation
from retentiond.ledger.state import StateDB, holds
from retentiond.policy.filters import Filter

HOLD_ID = re.compile(r"^H-[0-9a-f]{8}$")
"""Runtime hold ids: ``H-`` and eight hex digits (policy ids are lowercase, so never equal)."""

_FILTER: TypeAdapter[Filter] = TypeAdapter(Filter)

Status = Literal["active", "expired", "released"]


@dataclass(frozen=True)
class PlacedHold:
    """A hold as the state database keeps it."""

    id: str
    store: str | None
    table: str | None
    where: Filter | None
    subject: Subject | None
    reason: str
    case: str | None
    placed_by: str
    placed_at: datetime
    until: date | datetime | None = None
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None

    def status(self, at: datetime) -> Status:
        """``released``, ``expired`` (its ``until`` has passed at ``at``) or ``active``."""
        if self.released_at is not None:
            return "released"
        return "active" if in_force(self.until, at) else "expired"

    def scope(self) -> str:
        """The scope in words, for the operator's terminal (it shows the values)."""
        if self.store is None:
            parts = ["every store"]
        else:
            parts = [f"{self.store}.{self.table}" if self.table else f"{self.store} (every table)"]
        if self.where is not None:
            parts.append(f"where {where_notation(self.where)}")
        if self.subject is not None:
            parts.append(f"subject {self.subject.kind}={self.subject.value}")
        return " ".join(parts)

    def columns(self) -> list[str]:
        """The filter's column names (what the audit log may say about the filter)."""
        return sorted(self.where.columns()) if self.where is not None else []


def in_force(until: date | datetime | None, at: datetime) -> bool:
    """Whether a hold with this ``until`` holds at ``at``.

    A date holds through its whole day (UTC); a time without an offset is read as UTC.
    """
    if until is None:
        return True
    if isinstance(until, datetime):
        return at < (until if until.tzinfo else until.replace(tzinfo=UTC))
    return at.astimezone(UTC).date() <= until


def day_after(until: date) -> datetime:
    """The first instant a date-only ``until`` no longer holds (midnight UTC after it)."""
    return datetime.combine(until + timedelta(days=1), time(), tzinfo=UTC)


def stamp(moment: datetime) -> str:
    """A time as the holds table keeps it: ISO text in UTC, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _stored_time(value: str | None) -> datetime | None:
    """When a hold was placed or released, from the ISO text the holds table keeps."""
    return None if value is None else datetime.fromisoformat(value)


def stored_until(value: object) -> date | datetime | None:
    """A hold's ``until`` as the holds table keeps it: a date (``YYYY-MM-DD``), else a time.

    A database that types the column hands over a date or datetime, which is kept as it is.
    """
    if value is None or isinstance(value, date):  # a datetime is a date too
        return value
    text = str(value)
    return date.fromisoformat(text) if len(text) <= len("YYYY-MM-DD") else (
        datetime.fromisoformat(text))


def _placed(row: RowMapping) -> PlacedHold:
    where = None if row["where_filter"] is None else _FILTER.validate_python(
        json.loads(row["where_filter"]))
    subject = (Subject(row["subject_kind"], row["subject_value"])
               if row["subject_kind"] is not None else None)
    placed_at = _stored_time(row["placed_at"])
    if placed_at is None:  # pragma: no cover - the column is NOT NULL
        raise AuditError(f"hold {row['id']} has no placing time")
    return PlacedHold(id=row["id"], store=row["store"], table=row["table_name"], where=where,
                      subject=subject, reason=row["reason"], case=row["case_id"],
                      placed_by=row["placed_by"], placed_at=placed_at,
                      until=stored_until(row["until"]),
                      released_at=_stored_time(row["released_at"]),
                      released_by=row["released_by"], release_reason=row["release_reason"])


def read_holds(engine: Engine, query: Any = None) -> list[PlacedHold]:  # noqa: ANN401 - a Select
    """The holds ``query`` (a Select of the holds table) finds; all of them, oldest first, if None.

    AuditError when the table cannot be read, or a row cannot be read back as a hold.
    """
    if query is None:
        query = select(holds).order_by(holds.c.placed_at, holds.c.id)
    try:
        with engine.connect() as conn:
            return [_placed(row) for row in conn.execute(query).mappings()]
    except SQLAlchemyError as exc:
        raise AuditError(f"cannot read the holds: {type(exc).__name__}") from None
    except (ValueError, ValidationError):
        raise AuditError("a hold in the state database cannot be read back; "
                         "the holds table was changed outside retentiond") from None


def list_holds(state: StateDB) -> list[PlacedHold]:
    """Every hold ever placed at run time, oldest first (released and expired ones too)."""
    return read_holds(state.engine)


def find_hold(state: StateDB, hold_id: str) -> PlacedHold | None:
    """The runtime hold with this id, or None."""
    found = read_holds(state.engine, select(holds).where(holds.c.id == normalized_id(hold_id)))
    return found[0] if found else None


def holds_in(engine: Engine | None) -> list[PlacedHold]:
    """Every hold of a state database opened read-only, oldest first; none without the table.

    For readers that create nothing (publishing): no engine (an SQLite state file that does
    not exist) or no holds table means no holds placed at run time.  AuditError when the table
    lacks a column retentiond keeps there, or cannot be read: a document that silently left
    out a legal hold would be wrong.
    """
    if engine is None:
        return []
    try:
        with engine.connect() as conn:
            found = inspect(conn)
            if not found.has_table(holds.name):
                return []
            names = sorted(column["name"].lower() for column in found.get_columns(holds.name))
    except SQLAlchemyError as exc:
        raise AuditError(f"cannot read the holds: {type(exc).__name__}") from None
    missing = [column.name for column in holds.columns if column.name not in names]
    if missing:
        raise AuditError(f"the state database's holds table has no column for "
                         f"{', '.join(missing)} (it has {', '.join(names)}); this "
                         "retentiond cannot read its holds")
    return read_holds(engine)


def normalized_id(hold_id: str) -> str:
    """The id as stored (``h-1a2b3c4d`` and ``H-1A2B3C4D`` name ``H-1a2b3c4d``)."""
    text = hold_id.strip()
    return "H-" + text[2:].lower() if text[:2].lower() == "h-" else text
