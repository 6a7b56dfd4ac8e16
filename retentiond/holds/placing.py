"""Placing and releasing legal holds at run time: checked against the live stores, audited.

Counsel places a hold when a complaint or litigation starts, without editing policy files
(the notation: :mod:`~retentiond.holds.notation`; what a hold covers:
:mod:`~retentiond.holds.scope`).  Before it is placed, the request is checked against the
live stores: a configured, reachable store (or, for a subject hold, rules that map the
subject), an existing table, existing columns and values of their types.

Every change is audited in the same state-database transaction as the change itself: the
hold's row and its ``hold.placed`` (or ``hold.released``) record commit together or not at
all, so the ledger shows exactly the protection there is.  Neither record carries a subject
value (a keyed digest instead) or a filter's values (only its column names): those can be
personal data.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import SQLAlchemyError

from retentiond.errors import AuditError, PolicyError, Problem
from retentiond.holds.notation import Subject, Term
from retentiond.holds.scope import subject_targets
from retentiond.holds.table import PlacedHold, find_hold, in_force, stamp
from retentiond.ledger.chain import AuditLedger, Entry, Kind, canonical
from retentiond.ledger.state import StateDB, holds
from retentiond.policy.filters import AllOf, Condition, Filter
from retentiond.policy.model import PolicySet
from retentiond.stores.paths import PathError, follow_from
from retentiond.stores.registry import Stores
from retentiond.stores.values import typed_value

Refuse = Callable[[str, str], None]
"""Records a problem: what is wrong, how to fix it."""


@dataclass(frozen=True)
class HoldRequest:
    """What counsel asks for: the scope, why, for which case, until when, and who asks."""

    reason: str
    by: str
    store: str | None = None
    table: str | None = None
    where: tuple[Term, ...] = ()
    subject: Subject | None = None
    case: str | None = None
    until: date | datetime | None = None


def _problem(subject: str, what: str, fix: str) -> Problem:
    return Problem(None, None, subject, what, fix)


def check_request(
    request: HoldRequest, policies: PolicySet | None, stores: Stores, *, now: datetime,
) -> tuple[Filter | None, list[Problem]]:
    """The request's filter typed against the live columns, and every problem with it.

    The scope must name a configured, reachable store (or, for a subject hold, rules that map
    the subject), an existing table, existing columns and values of their types.
    """
    problems: list[Problem] = []

    def refuse(what: str, fix: str) -> None:
        problems.append(_problem("hold", what, fix))

    if not request.reason.strip():
        refuse("the reason is empty", "say why the records are held (--reason)")
    if not request.by.strip():
        refuse("who places the hold is unknown", "name them with --by")
    if request.until is not None and not in_force(request.until, now):
        refuse(f"--until {request.until.isoformat()} has already passed",
               "give a date in the future, or no --until")
    if request.store is None and request.subject is None:
        refuse("a hold needs a store (--store), or a data subject (--subject) for every store",
               "add --store, and --table to hold one table")
    if request.where and request.table is None:
        refuse("--where needs the table its columns belong to", "add --table")
    where: Filter | None = None
    if request.store is not None:
        where = _check_scope(request, stores, refuse)
    if request.subject is not None:
        _check_subject(request, request.subject, policies, stores, refuse)
    return where, problems


def _check_scope(request: HoldRequest, stores: Stores, refuse: Refuse) -> Filter | None:
    store = request.store
    if store is None:
        return None
    if store not in stores:
        refuse(f"store {store!r} is not configured (configured: "
               f"{', '.join(stores.names) or 'none'})", "name a store of the config file")
        return None
    live = stores.get(store)
    live.ping()
    if request.table is None:
        return None
    table = live.schema(request.table)
    if table is None:
        refuse(f"table {request.table!r} does not exist in store {store!r}",
               "check the table name (and schema)")
        return None
    conditions: list[Condition] = []
    for term in request.where:
        info = table.columns.get(term.column)
        if info is None:
            refuse(f"column {term.column!r} does not exist in table {request.table!r}",
                   "use one of: " + ", ".join(sorted(table.columns)))
            continue
        try:
            value = typed_value(info, term.text)
        except ValueError as exc:
            refuse(str(exc), "compare with a value of the column's type")
            continue
        conditions.append(Condition(column=term.column, op=term.op, value=value))
    if not conditions or len(conditions) != len(request.where):
        return None
    return conditions[0] if len(conditions) == 1 else AllOf(all=list(conditions))


def _check_subject(request: HoldRequest, subject: Subject, policies: PolicySet | None,
                   stores: Stores, refuse: Refuse) -> None:
    targets = subject_targets(policies, subject.kind, request.store, request.table) \
        if policies is not None else []
    if not targets:
        where = f" on {request.store}{'.' + request.table if request.table else ''}" \
            if request.store else ""
        refuse(f"neither the data map nor a rule maps the subject {subject.kind!r}{where}, so "
               "the hold would hold nothing", f"map the kind in the data map ('subject: "
               f"{{{subject.kind}: <column>}}' of the tables that hold such records), or hold "
               "with --store, --table and --where")
        return
    for target in targets:
        store, table = target.store, target.table
        if store not in stores:
            refuse(f"store {store!r}, where {subject.kind!r} is mapped, is not configured",
                   "fix the config, the data map or the rule")
            continue
        try:
            followed = follow_from(stores.get(store).schema, table, target.way)
        except PathError as exc:
            refuse(f"{subject.kind!r} is mapped in {store}.{table} through "
                   f"{' -> '.join(target.way)}, which does not fit the schema: {exc}",
                   "fix the data map or the rule (and run 'retentiond validate')")
            continue
        try:
            typed_value(followed.table.columns[followed.column], subject.value)
        except ValueError as exc:
            refuse(f"{exc}, where {subject.kind!r} is mapped in {store}.{table}",
                   "give the subject's value as that column holds it")


class LegalHolds:
    """Place, release and list the holds kept in the state database; every change audited."""

    def __init__(self, state: StateDB, ledger: AuditLedger) -> None:
        self._state = state
        self._ledger = ledger

    def place(
        self, request: HoldRequest, *, policies: PolicySet | None, stores: Stores,
        now: datetime | None = None,
    ) -> PlacedHold:
        """Check the request against the live stores, store the hold, audit it.

        PolicyError lists every problem (nothing is placed); AuditError when the ledger cannot
        record it (the hold is taken back).
        """
        moment = now or datetime.now(tz=UTC)
        where, problems = check_request(request, policies, stores, now=moment)
        if problems:
            raise PolicyError(problems)
        placed = PlacedHold(id=f"H-{uuid.uuid4().hex[:8]}", store=request.store,
                            table=request.table, where=where, subject=request.subject,
                            reason=request.reason.strip(), case=request.case,
                            placed_by=request.by.strip(), placed_at=moment, until=request.until)
        row = {"id": placed.id, "store": placed.store, "table_name": placed.table,
               "where_filter": None if where is None else canonical(
                   where.model_dump(mode="json", by_alias=True)),
               "subject_kind": placed.subject.kind if placed.subject else None,
               "subject_value": placed.subject.value if placed.subject else None,
               "reason": placed.reason, "case_id": placed.case, "placed_by": placed.placed_by,
               "placed_at": stamp(moment),
               "until": placed.until.isoformat() if placed.until is not None else None}
        body: dict[str, Any] = {"hold": placed.id, "by": placed.placed_by,
                                "placed_at": stamp(moment), "reason": placed.reason,
                                "case": placed.case,
                                "until": placed.until.isoformat() if placed.until else None,
                                "filter_columns": placed.columns()}
        if placed.subject is not None:
            body["subject"] = placed.subject.kind
            body["subject_digest"] = self._ledger.key_digest(
                [[placed.subject.kind, placed.subject.value]])
        self._ledger.append(Entry(kind=Kind.HOLD_PLACED, store=placed.store,
                                  table=placed.table, body=body),
                            along=_writing(insert(holds).values(**row), "store the hold"))
        return placed

    def release(
        self, hold_id: str, *, reason: str, by: str, now: datetime | None = None,
    ) -> PlacedHold:
        """Audit the release, then end the hold; PolicyError for an unknown or released hold."""
        moment = now or datetime.now(tz=UTC)
        found = find_hold(self._state, hold_id)
        problems = []
        if found is None:
            problems.append(_problem(hold_id, "no hold placed at run time has this id",
                                     "list them with 'retentiond hold list --all' (holds in "
                                     "policy files are released by editing the files)"))
        elif found.released_at is not None:
            problems.append(_problem(found.id, f"was released on {found.released_at:%Y-%m-%d} "
                                     f"by {found.released_by}", "nothing to do"))
        if not reason.strip():
            problems.append(_problem(hold_id, "the reason is empty",
                                     "say why the hold ends (--reason)"))
        if not by.strip():
            problems.append(_problem(hold_id, "who releases the hold is unknown",
                                     "name them with --by"))
        if problems or found is None:
            raise PolicyError(problems)
        ending = (update(holds).where(holds.c.id == found.id, holds.c.released_at.is_(None))
                  .values(released_at=stamp(moment), released_by=by.strip(),
                          release_reason=reason.strip()))
        self._ledger.append(Entry(kind=Kind.HOLD_RELEASED, store=found.store, table=found.table,
                                  body={"hold": found.id, "by": by.strip(),
                                        "released_at": stamp(moment), "reason": reason.strip(),
                                        "case": found.case}),
                            along=_writing(ending, "mark the hold released", one_row=True))
        return dataclasses.replace(found, released_at=moment, released_by=by.strip(),
                                   release_reason=reason.strip())


def _writing(statement: Any, doing: str, *, one_row: bool = False,  # noqa: ANN401 - DML
             ) -> Callable[[Connection], None]:
    """Change a hold in the ledger's transaction; AuditError (no values) if it fails.

    ``one_row`` (an UPDATE, whose rowcount every driver reports): changing no row fails
    too, as when another release got there first and this record would be a second one.
    """
    def write(conn: Connection) -> None:
        try:
            changed = conn.execute(statement).rowcount
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot {doing}: {type(exc).__name__}") from None
        if one_row and changed != 1:
            raise AuditError(f"cannot {doing}: the hold changed meanwhile; list it again")
    return write
