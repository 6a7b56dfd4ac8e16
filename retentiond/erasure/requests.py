"""Recording erasure requests, and reading them back.

A request names a data subject as a subject hold does (``customer=4711``).  The identity is
kept in the state database only (:data:`~retentiond.ledger.state.erasure_requests`); the
ledger's ``erasure.recorded`` record carries a keyed digest of it (the same digest a subject
hold's record carries, so the two can be matched without the value), with the request's id,
who recorded it, when it was received and when it is due.  The row and its record commit in
one transaction, or neither does.

A request is due ``due_days`` after it was received (``[erasure] due_days``, 30 by default),
or after the days its regime allows (``[erasure.regimes] ccpa = 45``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, RowMapping, insert, select
from sqlalchemy.exc import SQLAlchemyError

from retentiond.errors import AuditError, PolicyError, Problem
from retentiond.holds.notation import Subject
from retentiond.holds.scope import subject_targets
from retentiond.holds.table import stamp
from retentiond.ledger.chain import AuditLedger, Entry, Kind
from retentiond.ledger.state import StateDB, erasure_requests
from retentiond.policy.model import PolicySet
from retentiond.settings import ErasureSettings

MAX_IDENTITY = 256
"""The longest identity the state database keeps (its column's width)."""


class RequestState(StrEnum):
    """Where a request is.  This retentiond records requests; executing them comes later."""

    RECORDED = "recorded"


@dataclass(frozen=True)
class ErasureRequest:
    """What a privacy officer records: the subject, when it was received, who records it."""

    subject: Subject
    received: date
    by: str
    regime: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the state database keeps it."""

    id: str
    subject: Subject
    regime: str | None
    recorded_by: str
    recorded_at: datetime
    received: date
    due: date
    state: RequestState
    note: str | None = None

    def overdue(self, today: date) -> bool:
        """Whether its due date has passed on ``today`` and it is still open."""
        return today > self.due

    def days_left(self, today: date) -> int:
        """Days until the due date (negative: days overdue)."""
        return (self.due - today).days


def due_date(received: date, regime: str | None, settings: ErasureSettings) -> date:
    """When a request received on ``received`` under ``regime`` must be done."""
    days = settings.due_days if regime is None else settings.regimes[regime]
    return received + timedelta(days=days)


def request_problems(request: ErasureRequest, policies: PolicySet,
                     settings: ErasureSettings) -> list[Problem]:
    """What is wrong with a request: an unknown kind or regime, an empty identity or name."""
    problems: list[Problem] = []
    subject = request.subject
    declared = sorted(policies.data_map.subjects)
    if declared and subject.kind not in declared:
        problems.append(_problem(f"subject kind {subject.kind!r} is not declared in the data "
                                 f"map (declared: {', '.join(declared)})",
                                 "give one of those kinds, or declare it under 'subjects:'"))
    elif not subject_targets(policies, subject.kind):
        problems.append(_problem(f"neither the data map nor a rule maps the subject kind "
                                 f"{subject.kind!r}, so there is nothing to erase",
                                 "map the kind in the data map, or correct its spelling"))
    if not subject.value.strip():
        problems.append(_problem("the subject's identity is empty",
                                 "give it as kind=value, e.g. --subject customer=4711"))
    elif len(subject.value) > MAX_IDENTITY:
        problems.append(_problem(f"the subject's identity is {len(subject.value)} characters, "
                                 f"longer than {MAX_IDENTITY}",
                                 "give the subject's id, not a description"))
    if request.regime is not None and request.regime not in settings.regimes:
        known = ", ".join(sorted(settings.regimes)) or "none configured"
        problems.append(_problem(f"regime {request.regime!r} is not configured (known: {known})",
                                 "add it under [erasure.regimes] in the config (e.g. "
                                 f"{request.regime} = 45), or leave --regime out"))
    if not request.by.strip():
        problems.append(_problem("who records the request is unknown", "name them with --by"))
    return problems


def _problem(what: str, fix: str) -> Problem:
    return Problem(None, None, "erasure request", what, fix)


class ErasureRequests:
    """Record erasure requests (each audited) and read them back."""

    def __init__(self, state: StateDB, ledger: AuditLedger | None = None) -> None:
        self._state = state
        self._ledger = ledger

    def record(self, request: ErasureRequest, *, policies: PolicySet,
               settings: ErasureSettings, now: datetime | None = None) -> RecordedRequest:
        """Check the request, keep it, audit it; PolicyError (nothing kept) when it is wrong.

        AuditError when the ledger cannot record it: then the request is not kept either.
        """
        if self._ledger is None:
            raise AuditError("recording a request needs the ledger")
        problems = request_problems(request, policies, settings)
        if problems:
            raise PolicyError(problems)
        moment = now or datetime.now(tz=UTC)
        recorded = RecordedRequest(
            id=str(uuid.uuid4()), subject=request.subject, regime=request.regime,
            recorded_by=request.by.strip(), recorded_at=moment, received=request.received,
            due=due_date(request.received, request.regime, settings),
            state=RequestState.RECORDED,
            note=request.note.strip() if request.note and request.note.strip() else None)
        row = {"id": recorded.id, "subject_kind": recorded.subject.kind,
               "subject_value": recorded.subject.value, "regime": recorded.regime,
               "recorded_by": recorded.recorded_by, "recorded_at": stamp(moment),
               "received_at": recorded.received.isoformat(), "due_at": recorded.due.isoformat(),
               "state": recorded.state.value, "note": recorded.note}
        body = {"request": recorded.id, "subject": recorded.subject.kind,
                "subject_digest": self._ledger.key_digest(
                    [[recorded.subject.kind, recorded.subject.value]]),
                "by": recorded.recorded_by, "recorded_at": stamp(moment),
                "received": recorded.received.isoformat(), "due": recorded.due.isoformat(),
                "regime": recorded.regime}

        def write(conn: Connection) -> None:
            try:
                conn.execute(insert(erasure_requests).values(**row))
            except SQLAlchemyError as exc:
                raise AuditError(f"cannot store the erasure request: {type(exc).__name__}",
                                 ) from None

        self._ledger.append(Entry(kind=Kind.ERASURE_RECORDED, body=body), along=write)
        return recorded

    def all(self) -> list[RecordedRequest]:
        """Every request, by due date then received date (the most urgent first)."""
        return self._read(select(erasure_requests).order_by(
            erasure_requests.c.due_at, erasure_requests.c.received_at, erasure_requests.c.id))

    def find(self, request_id: str) -> RecordedRequest | None:
        """The request with this id (or a unique prefix of it, as ``list`` shows), or None."""
        text = request_id.strip().lower()
        if not text:
            return None
        found = [r for r in self.all() if r.id == text or r.id.startswith(text)]
        return found[0] if len(found) == 1 else None

    def _read(self, query: Any) -> list[RecordedRequest]:  # noqa: ANN401 - a Select
        try:
            with self._state.engine.connect() as conn:
                return [_recorded(row) for row in conn.execute(query).mappings()]
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot read the erasure requests: {type(exc).__name__}",
                             ) from None
        except (ValueError, ValidationError):
            raise AuditError("an erasure request in the state database cannot be read back; "
                             "the table was changed outside retentiond") from None


def _recorded(row: RowMapping) -> RecordedRequest:
    return RecordedRequest(
        id=row["id"], subject=Subject(row["subject_kind"], row["subject_value"]),
        regime=row["regime"], recorded_by=row["recorded_by"],
        recorded_at=datetime.fromisoformat(row["recorded_at"]),
        received=date.fromisoformat(str(row["received_at"])),
        due=date.fromisoformat(str(row["due_at"])), state=RequestState(row["state"]),
        note=row["note"])
