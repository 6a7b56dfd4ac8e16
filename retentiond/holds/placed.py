"""Legal holds placed at run time: kept in the state database, audited, added to the policy holds.

Counsel places a hold when a complaint or litigation starts, without editing policy files::

    retentiond hold add --store app --table emails --where customer_id=4711 --reason "..."
    retentiond hold add --subject customer=4711 --reason "..." --case CASE-2026-017

A hold's scope is a store (every store, for a subject hold), a table (every table of the
store when absent), a filter (``--where``, parsed into the typed filter model) and a data
subject (``--subject kind=value``).  A subject hold reaches every table whose rules map the
subject kind to a column (``subjects: {customer: customer_id}`` in a rule): there it holds
the rows whose column equals the value.  As with every hold, a NULL in a filtered column is
doubt, and doubt keeps the record.

:class:`StateHolds` is the hold source the engine reads before every batch, so a hold placed
(or released) takes effect at the next batch of a running rule.  Holds from the state
database and from the policy files add up; runtime ids (``H-`` and eight hex digits) can never
collide with policy ids, which are lowercase.

Every change is audited in the same state-database transaction as the change itself: the
hold's row and its ``hold.placed`` (or ``hold.released``) record commit together or not at
all, so the ledger shows exactly the protection there is.  Neither record carries a subject
value (a keyed digest instead) or a filter's values (only its column names): those can be
personal data.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, RowMapping, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from retentiond.errors import AuditError, PolicyError, Problem
from retentiond.holds.guards import HoldSource
from retentiond.ledger.chain import AuditLedger, Entry, Kind, canonical
from retentiond.ledger.state import StateDB, holds
from retentiond.policy.filters import AllOf, AnyOf, Condition, Filter, Op, Scalar
from retentiond.policy.model import Hold, PolicySet
from retentiond.run.engine import RulePlan
from retentiond.stores.base import ColumnInfo, ColumnKind
from retentiond.stores.registry import Stores

HOLD_ID = re.compile(r"^H-[0-9a-f]{8}$")
"""Runtime hold ids: ``H-`` and eight hex digits (policy ids are lowercase, so never equal)."""

OPERATORS: dict[str, Op] = {"<=": Op.LE, ">=": Op.GE, "!=": Op.NE, "=": Op.EQ, "<": Op.LT,
                            ">": Op.GT}
_TERM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]{0,62})\s*(<=|>=|!=|=|<|>)\s*(.*?)\s*$", re.DOTALL)
_SUBJECT = re.compile(r"^\s*([a-z][a-z0-9_-]{0,63})\s*=\s*(.+?)\s*$", re.DOTALL)
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_FILTER: TypeAdapter[Filter] = TypeAdapter(Filter)
_VALIDATED_ID = "runtime-hold"
"""A placeholder id that passes the policy id pattern; replaced by the runtime id after."""

Status = Literal["active", "expired", "released"]
Refuse = Callable[[str, str], None]
"""Records a problem: what is wrong, how to fix it."""


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
"""How ``--where`` and subject values are read, by the kind of their column (text: as given)."""


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
        return "active" if _in_force(self.until, at) else "expired"

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


def _in_force(until: date | datetime | None, at: datetime) -> bool:
    if until is None:
        return True
    if isinstance(until, datetime):
        return at < until
    return at.astimezone(UTC).date() <= until


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


def _read(state: StateDB, query: Any) -> list[PlacedHold]:  # noqa: ANN401 - a Select of holds
    try:
        with state.engine.connect() as conn:
            return [_placed(row) for row in conn.execute(query).mappings()]
    except SQLAlchemyError as exc:
        raise AuditError(f"cannot read the holds: {type(exc).__name__}") from None
    except (ValueError, ValidationError):
        raise AuditError("a hold in the state database cannot be read back; "
                         "the holds table was changed outside retentiond") from None


def list_holds(state: StateDB) -> list[PlacedHold]:
    """Every hold ever placed at run time, oldest first (released and expired ones too)."""
    return _read(state, select(holds).order_by(holds.c.placed_at, holds.c.id))


def find_hold(state: StateDB, hold_id: str) -> PlacedHold | None:
    """The runtime hold with this id, or None."""
    found = _read(state, select(holds).where(holds.c.id == normalized_id(hold_id)))
    return found[0] if found else None


def normalized_id(hold_id: str) -> str:
    """The id as stored (``h-1a2b3c4d`` and ``H-1A2B3C4D`` name ``H-1a2b3c4d``)."""
    text = hold_id.strip()
    return "H-" + text[2:].lower() if text[:2].lower() == "h-" else text


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
    if request.until is not None and not _in_force(request.until, now):
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


def subject_targets(
    policies: PolicySet, kind: str, store: str | None = None, table: str | None = None,
) -> list[tuple[str, str, str]]:
    """Every (store, table, column) a rule maps subject ``kind`` to, within the scope."""
    found: dict[tuple[str, str, str], None] = {}
    for rule in policies.rules:
        column = rule.subjects.get(kind)
        if column is None or store not in {None, rule.store} or table not in {None, rule.table}:
            continue
        found[rule.store, rule.table, column] = None
    return list(found)


def _check_subject(request: HoldRequest, subject: Subject, policies: PolicySet | None,
                   stores: Stores, refuse: Refuse) -> None:
    targets = subject_targets(policies, subject.kind, request.store, request.table) \
        if policies is not None else []
    if not targets:
        where = f" on {request.store}{'.' + request.table if request.table else ''}" \
            if request.store else ""
        refuse(f"no rule maps the subject {subject.kind!r}{where}, so the hold would hold "
               "nothing", f"add 'subjects: {{{subject.kind}: <column>}}' to the rules of the "
               "tables that hold such records, or hold with --store, --table and --where")
        return
    for store, table, column in targets:
        if store not in stores:
            refuse(f"store {store!r} of a rule mapping {subject.kind!r} is not configured",
                   "fix the config or the rule")
            continue
        schema = stores.get(store).schema(table)
        info = schema.columns.get(column) if schema is not None else None
        if info is None:
            refuse(f"the rules map {subject.kind!r} to {store}.{table}.{column}, which does "
                   "not exist", "fix 'subjects' in the rule (and run 'retentiond validate')")
            continue
        try:
            typed_value(info, subject.value)
        except ValueError as exc:
            refuse(f"{exc}, where rules map {subject.kind!r} in {store}.{table}",
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
               "placed_at": _stamp(moment),
               "until": placed.until.isoformat() if placed.until is not None else None}
        body: dict[str, Any] = {"hold": placed.id, "by": placed.placed_by,
                                "placed_at": _stamp(moment), "reason": placed.reason,
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
                  .values(released_at=_stamp(moment), released_by=by.strip(),
                          release_reason=reason.strip()))
        self._ledger.append(Entry(kind=Kind.HOLD_RELEASED, store=found.store, table=found.table,
                                  body={"hold": found.id, "by": by.strip(),
                                        "released_at": _stamp(moment), "reason": reason.strip(),
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


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class StateHolds(HoldSource):
    """Holds placed at run time, read from the state database each time they are asked for.

    ``without`` leaves holds out, to preview what releasing them would free.  A failure to
    read the state database is an AuditError: the rule stops, and doubt keeps the records.
    """

    def __init__(self, state: StateDB, policies: PolicySet, stores: Stores | None = None, *,
                 without: Collection[str] = ()) -> None:
        self._state = state
        self._policies = policies
        self._stores = stores
        self._without = {normalized_id(h) for h in without}

    def active(self, store: str, table: str, at: datetime) -> Iterator[Hold]:
        """The runtime holds in force on ``store.table`` at ``at``, as policy holds."""
        query = select(holds).where(
            holds.c.released_at.is_(None),
            or_(holds.c.store.is_(None), holds.c.store == store),
            or_(holds.c.table_name.is_(None), holds.c.table_name == table),
        ).order_by(holds.c.placed_at, holds.c.id)
        for placed in _read(self._state, query):
            if placed.id in self._without or not _in_force(placed.until, at):
                continue
            hold = self._hold(placed, store, table)
            if hold is not None:
                yield hold

    def _hold(self, placed: PlacedHold, store: str, table: str) -> Hold | None:
        where = placed.where
        if placed.subject is not None:
            columns = [c for s, t, c in subject_targets(self._policies, placed.subject.kind,
                                                        store, table)]
            if not columns:
                return None  # no rule maps the subject here: nothing of it to hold
            each = [self._subject_condition(store, table, c, placed.subject.value)
                    for c in columns]
            subject: Filter = each[0] if len(each) == 1 else AnyOf(any=list(each))
            where = subject if where is None else AllOf(all=[where, subject])
        hold = Hold(id=_VALIDATED_ID, reason=placed.reason, case=placed.case, store=store,
                    table=table, where=where, expires=placed.until)
        return hold.model_copy(update={"id": placed.id})

    def _subject_condition(self, store: str, table: str, column: str, value: str) -> Condition:
        schema = self._stores.get(store).schema(table) if self._stores is not None else None
        info = schema.columns.get(column) if schema is not None else None
        if info is None:  # compiled against the live table, a missing column stops the rule
            return Condition(column=column, op=Op.EQ, value=value)
        try:
            return Condition(column=column, op=Op.EQ, value=typed_value(info, value))
        except ValueError:
            # No value of the column equals it; a NULL there is doubt, which keeps the record.
            return Condition(column=column, op=Op.IS_NULL)


def without_policy_holds(policies: PolicySet, hold_ids: Collection[str]) -> PolicySet:
    """The policy set with the named policy-file holds left out (for a release preview)."""
    return dataclasses.replace(policies,
                               holds=tuple(h for h in policies.holds if h.id not in hold_ids))


def check_releasable(
    hold_ids: Sequence[str], policies: PolicySet, state: StateDB, *, at: datetime,
) -> list[Problem]:
    """Problems with previewing the release of ``hold_ids``: each must be a hold in force."""
    problems = []
    for hold_id in hold_ids:
        if any(h.id == hold_id for h in policies.holds):
            if not any(h.id == hold_id and h.active(at) for h in policies.holds):
                problems.append(_problem(hold_id, "this policy hold has expired",
                                         "it holds nothing any more"))
            continue
        found = find_hold(state, hold_id)
        if found is None:
            problems.append(_problem(hold_id, "no hold has this id",
                                     "list them with 'retentiond hold list'"))
        elif found.status(at) != "active":
            problems.append(_problem(found.id, f"this hold is {found.status(at)}",
                                     "it holds nothing any more"))
    return problems


@dataclass(frozen=True)
class ReleaseEffect:
    """What releasing holds would do to one rule's plan."""

    rule: str
    hold: str
    reason: str
    keeps: int
    """Matched rows of the rule this hold protects now (holds overlap: they need not add up)."""
    freed: int
    """How many more rows the rule would act on with all the previewed holds released."""


def release_effects(
    current: Sequence[RulePlan], preview: Sequence[RulePlan], hold_ids: Collection[str],
) -> list[ReleaseEffect]:
    """Per rule and released hold: the rows it keeps now, and what the release frees."""
    wanted = {normalized_id(h) for h in hold_ids} | set(hold_ids)
    after = {plan.rule.id: plan for plan in preview}
    effects: list[ReleaseEffect] = []
    for plan in current:
        later = after.get(plan.rule.id)
        if plan.census is None or later is None or later.census is None:
            continue
        freed = later.census.eligible - plan.census.eligible
        effects.extend(ReleaseEffect(plan.rule.id, guard.id, guard.reason, guard.rows, freed)
                       for guard in plan.guards if guard.kind == "hold" and guard.id in wanted)
    return effects


def day_after(until: date) -> datetime:
    """The first instant a date-only ``until`` no longer holds (midnight UTC after it)."""
    return datetime.combine(until + timedelta(days=1), time(), tzinfo=UTC)
