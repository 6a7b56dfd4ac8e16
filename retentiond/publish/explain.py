"""Explain one record: the rules that apply to it, their dates, what protects it, and why.

For every rule on the record's table, the rule's own selection (the one ``plan`` and ``run``
build, with every hold, minimum retention and blocker) is narrowed to the record's primary
key and counted in one read-only transaction.  The decision is therefore the run's own: a
record the explanation calls due is a record the next run acts on.  Two counts are taken per
rule:

- with the cutoff moved to the end of time, which shows whether the rule's filter matches
  and which holds, minimum retentions and blockers protect the record whatever its age;
- with the rule's real cutoff, which gives the decision.

The dates (``keep until``: the end of the rule's own period; ``act at``: when every
protection known now has ended too) are computed from the record's date columns for a
reader; they are not what decides.  A record already acted on is found in the audit ledger:
every applied ``batch.outcome`` of the store is scanned for the key (among the keys acted on,
and among the rows reached through foreign keys), so explaining reads the whole ledger.

Nothing here prints; :func:`explanation_to_dict` gives the stable JSON form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from retentiond.actions import action_for
from retentiond.errors import RetentionError, StoreError
from retentiond.holds.exemptions import Exemption
from retentiond.holds.table import day_after
from retentiond.ledger.chain import AuditLedger, Kind, canonical, jsonable
from retentiond.policy.filters import AllOf, Condition, Filter
from retentiond.policy.model import Hold, Retention, Rule, UseOwn
from retentiond.policy.periods import Cutoff, Period, zone
from retentiond.run.engine import Engine
from retentiond.stores.base import (
    Census,
    ColumnKind,
    Key,
    Reader,
    Selection,
    TableSchema,
)
from retentiond.stores.values import typed_value

END_OF_TIME = Cutoff(local=datetime(9999, 12, 31), aware=datetime(9999, 12, 31, tzinfo=UTC),  # noqa: DTZ001 - naive on purpose: compared with naive columns
                     day=date(9999, 12, 31))
"""A cutoff every dated record is due by: what protects a record, whatever its age."""


@dataclass(frozen=True)
class Protection:
    """A hold, minimum retention or blocker that protects the record now."""

    kind: str
    """``hold``, ``retention``, ``blocker`` or ``restore`` (restored from quarantine: exempt
    from the rule that moved it until a date)."""
    id: str
    reason: str
    until: datetime | None
    """When it stops protecting, as far as is known now; None: no end is known."""


@dataclass(frozen=True)
class Verdict:
    """One rule's answer about the record."""

    rule: str
    description: str
    action: str
    enabled: bool
    decision: str
    """``act``, ``not due``, ``held``, ``exempt``, ``retained``, ``blocked``, ``done``,
    ``no date``, ``not selected``, ``absent`` or ``error``."""
    reason: str
    """The decision in words a reviewer understands."""
    matches: bool | None = None
    age_column: str = ""
    age: date | datetime | None = None
    keep_until: datetime | None = None
    """The end of the rule's own period: when the record becomes due under this rule."""
    act_at: datetime | None = None
    """When the rule would act, every protection known now considered; None: not foreseeable."""
    protected_by: tuple[Protection, ...] = ()


@dataclass(frozen=True)
class Mention:
    """An audit record about the key: a batch outcome that acted on or reached it."""

    seq: int
    at: str
    rule: str | None
    action: str | None
    batch_id: str | None
    status: str | None
    how: str


@dataclass(frozen=True)
class Explanation:
    """Everything known about one record of ``store.table`` at ``as_of``."""

    store: str
    table: str
    key: Key
    as_of: datetime
    exists: bool | None
    """Whether the record is in the table now (None: no rule acts on the table, not looked up)."""
    verdicts: tuple[Verdict, ...]
    mentions: tuple[Mention, ...]
    scanned: int
    """Ledger records scanned for the key."""
    reached_by: tuple[ReachedBy, ...] = ()
    """Rules on other tables whose removals delete or change rows of this one."""


@dataclass(frozen=True)
class ReachedBy:
    """A rule on another table whose removals reach this table through foreign keys."""

    rule: str
    table: str
    ways: tuple[str, ...]
    """``cascade``, ``delete first``, ``set null``."""
    protected_by: tuple[str, ...]
    """Holds and minimum retentions on this table: a row they protect keeps its parent."""


def parse_key(table: TableSchema, texts: Sequence[str]) -> Key:
    """The primary key typed by its columns, one text per key column; ValueError otherwise."""
    if not table.primary_key:
        raise ValueError(f"table {table.name!r} has no primary key")
    if len(texts) != len(table.primary_key):
        raise ValueError(f"the key of {table.name!r} is ({', '.join(table.primary_key)}): give "
                         f"{len(table.primary_key)} --key value(s) in that order, got {len(texts)}")
    return tuple(typed_value(table.columns[c], text)
                 for c, text in zip(table.primary_key, texts, strict=True))


def key_filter(table: TableSchema, key: Key) -> Filter:
    """``pk = key`` in the filter model (AND over the columns of a composite key)."""
    parts = [Condition.model_validate({"column": c, "value": v})
             for c, v in zip(table.primary_key, key, strict=True)]
    return parts[0] if len(parts) == 1 else AllOf(all=list(parts))


def explain(
    engine: Engine, *, store: str, table: str, key: Key, as_of: datetime,
    ledger: AuditLedger | None = None,
) -> Explanation:
    """Explain the record ``key`` of ``store.table`` at ``as_of`` (see the module docstring)."""
    live = engine.stores.get(store)
    schema = live.schema(table)
    if schema is None:
        raise StoreError(store, f"table {table!r} does not exist", "check --store and --table")
    rules = [r for r in engine.policies.rules if r.store == store and r.table == table]
    mentions, scanned = _mentions(ledger, store, table, key) if ledger else ((), 0)
    reached_by = tuple(_reached_by(engine, store, table, as_of))
    if not rules:
        return Explanation(store, table, key, as_of, None, (), mentions, scanned, reached_by)
    holds, retentions = engine.guarding(store, table, as_of=as_of)
    prepared: dict[str, Selection | RetentionError] = {}
    for rule in rules:
        try:
            prepared[rule.id] = engine.prepared(rule, as_of=as_of).selection
        except RetentionError as exc:
            prepared[rule.id] = exc
    context = _Context(schema, key, key_filter(schema, key), as_of, holds, retentions)
    columns = [*{r.age.column: None for r in rules if r.age.column is not None},
               *{r.age.when_none.use: None for r in rules if isinstance(r.age.when_none, UseOwn)},
               *{r.column: None for r in retentions.values()}]
    with live.reader() as reader:
        values = _values(reader, schema, table=table, key=key, columns=columns)
        verdicts = tuple(context.verdict(reader, rule, prepared[rule.id], values,
                                         engine.exemptions(rule, as_of=as_of))
                         for rule in rules)
    return Explanation(store, table, key, as_of, values is not None, verdicts, mentions, scanned,
                       reached_by)


def _reached_by(engine: Engine, store: str, table: str, as_of: datetime) -> Iterator[ReachedBy]:
    """Rules on other tables whose removals reach rows of ``table`` through foreign keys."""
    logical = engine.stores.get(store).partitions().logical(table)
    reaching = engine.reaching(as_of=as_of, store=store).rules.get((store, logical), ())
    guards = tuple(g.id for g in engine.guards(store, logical, as_of=as_of)) if reaching else ()
    for rule, ways in reaching:
        if rule.table != logical:
            yield ReachedBy(rule.id, rule.table, ways, guards)


@dataclass(frozen=True)
class _Context:
    schema: TableSchema
    key: Key
    key_where: Filter
    as_of: datetime
    holds: Mapping[str, Hold]
    retentions: Mapping[str, Retention]

    def verdict(self, reader: Reader, rule: Rule, selection: Selection | RetentionError,
                values: Mapping[str, object] | None,
                exempt: Mapping[str, Exemption] | None = None) -> Verdict:
        start = Verdict(rule.id, rule.description, rule.action.type, rule.enabled, "error", "",
                        age_column=rule.age.described)
        if values is None:
            return dataclasses.replace(start, decision="absent",
                                       reason="no such record in the table now")
        if isinstance(selection, RetentionError):
            return dataclasses.replace(start, reason=f"cannot be explained: {selection}")
        where = self.key_where if rule.where is None else AllOf(all=[rule.where, self.key_where])
        try:
            age = self._age(reader, rule, selection, values)
            keep_until = _due(age, rule.age.older_than, rule.age.timezone) if age else None
            wide = reader.census(dataclasses.replace(
                selection, where=where, age=dataclasses.replace(selection.bound,
                                                                cutoff=END_OF_TIME),
                pending=()))
            real = reader.census(dataclasses.replace(selection, where=where))
        except RetentionError as exc:
            return dataclasses.replace(start, reason=f"cannot be explained: {exc}")
        matches = bool(wide.matched or wide.null_age)
        protections = tuple(self._protections(selection, wide, values, exempt or {}))
        decision, reason = _decide(rule, real, matches=matches, keep_until=keep_until,
                                   protections=protections)
        if not rule.enabled:
            reason += " (but the rule is disabled: it does not run)"
        ends = [keep_until, *(p.until for p in protections)]
        act_at = None
        if decision in {"act", "not due", "held", "exempt", "retained"} and None not in ends:
            act_at = max(e for e in ends if e is not None)
        return dataclasses.replace(start, decision=decision, reason=reason, matches=matches,
                                   age=age, keep_until=keep_until, act_at=act_at,
                                   protected_by=protections)

    def _age(self, reader: Reader, rule: Rule, selection: Selection,
             values: Mapping[str, object]) -> date | None:
        """The record's own age, or the newest (oldest) date of its related rows."""
        related = selection.bound.related
        if related is None:
            age = values.get(str(rule.age.column))
            return age if isinstance(age, date) else None
        value = reader.related_age(self.schema.name, self.key, related)
        # Read as text: a bare ISO day is a DATE column's value, anything longer a time.
        day = isinstance(value, str) and len(value.strip()) == len("YYYY-MM-DD")
        age = _stored_time(value, ColumnKind.DATE if day else ColumnKind.DATETIME)
        return age if isinstance(age, date) else None

    def _protections(self, selection: Selection, wide: Census, values: Mapping[str, object],
                     exempt: Mapping[str, Exemption]) -> Iterator[Protection]:
        for guard in selection.guards:
            if not wide.by_guard.get(guard.id):
                continue
            exemption = exempt.get(guard.id)
            if exemption is not None:
                yield Protection("restore", guard.id, exemption.describe(), exemption.ends())
                continue
            hold = self.holds.get(guard.id)
            if guard.kind == "hold":
                reason = hold.reason if hold else ""
                if hold is not None and hold.case:
                    reason += f" (case {hold.case})"
                yield Protection("hold", guard.id, reason, _expiry(hold))
                continue
            retention = self.retentions.get(guard.id)
            if retention is None:
                continue
            value = values.get(retention.column)
            until = _due(value, retention.period, retention.timezone) \
                if isinstance(value, date) else None
            yield Protection("retention", guard.id, retention.reason, until)
        for blocker in selection.blockers:
            if wide.by_guard.get(blocker.id):
                yield Protection("blocker", blocker.id, "rows of another table reference it "
                                 "and must not be removed or changed with it", None)


def _no_date(rule: Rule) -> str:
    related = rule.age.related
    if related is None:
        return f"it has no {rule.age.column}, and a missing date keeps the record"
    own = f" and no {rule.age.when_none.use}" if isinstance(rule.age.when_none, UseOwn) else ""
    return (f"its age comes from related rows, and it has no {related.table} rows{own}, or "
            f"one with no {related.column}: doubt keeps the record")


def _decide(rule: Rule, census: Census, *, matches: bool, keep_until: datetime | None,
            protections: Sequence[Protection]) -> tuple[str, str]:
    since = _since(rule, keep_until)
    verbs = action_for(rule.action).verbs
    names = {kind: ", ".join(p.id for p in protections if p.kind == kind)
             for kind in ("hold", "retention", "blocker", "restore")}
    if not matches:
        return "not selected", "the rule does not select it: its filter does not match"
    if census.null_age:
        return "no date", _no_date(rule)
    if census.eligible:
        return "act", (f"due {since} and nothing protects it: the next run "
                       f"will {verbs.present} it")
    if census.held and names["restore"] and not names["hold"]:
        restores = "; ".join(p.reason for p in protections if p.kind == "restore")
        return "exempt", f"{restores}; it has been due {since}"
    if census.held:
        return "held", f"kept by legal hold {names['hold']}; it has been due {since}"
    if census.protected:
        return "retained", (f"kept by minimum retention {names['retention']}; it has been "
                            f"due under this rule {since}")
    if census.blocked:
        return "blocked", f"kept: {names['blocker']}; it has been due {since}"
    if census.done:
        return "done", f"nothing to do: it is already {verbs.past}"
    reason = f"the rule keeps it until {_day(keep_until)}"
    later = [p for p in protections if p.until is None or keep_until is None
             or p.until > keep_until]
    if later:
        reason += "; after that it stays " + "; ".join(_kept(p) for p in later)
    return "not due", reason


def _kept(protection: Protection) -> str:
    what = {"hold": "held by", "retention": "retained by", "blocker": "blocked by",
            "restore": "exempt as restored, by"}
    until = f" until {_day(protection.until)}" if protection.until else " with no end known"
    return f"{what[protection.kind]} {protection.id}{until}"


def _since(rule: Rule, keep_until: datetime | None) -> str:
    """Since when a due record has been due: its age's day, or why it is due without one."""
    related = rule.age.related
    if keep_until is None and related is not None and rule.age.when_none == "act":
        return f"because it has no related {related.table} rows (when_none: act)"
    return f"since {_day(keep_until)}"


def _day(moment: datetime | None) -> str:
    return "an unknown date" if moment is None else moment.isoformat(timespec="seconds")


def _expiry(hold: Hold | None) -> datetime | None:
    if hold is None or hold.expires is None:
        return None
    if isinstance(hold.expires, datetime):
        return hold.expires if hold.expires.tzinfo else hold.expires.replace(tzinfo=UTC)
    return day_after(hold.expires)


def _due(value: object, period: Period, timezone: str) -> datetime | None:
    """The first moment a record dated ``value`` is older than ``period`` (on its calendar).

    Month arithmetic clamps to month ends (31 January + 1 month is 28 February, but 28
    February - 1 month is 28 January): where adding overshoots, the first later midnight
    from which the period reaches back far enough is taken.
    """
    if isinstance(value, datetime):
        wall = value.astimezone(zone(timezone)).replace(tzinfo=None) if value.tzinfo else value
    elif isinstance(value, date):
        wall = datetime.combine(value, time())
    else:
        return None
    step = period.as_relativedelta()
    due = wall + step
    if due - step < wall:
        due = datetime.combine(due.date() + timedelta(days=1), time())
        while due - step < wall:
            due += timedelta(days=1)
    return due.replace(tzinfo=zone(timezone))


def _values(reader: Reader, schema: TableSchema, *, table: str, key: Key,
            columns: Sequence[str]) -> dict[str, object] | None:
    """The record's date columns (no other values are read), or None when it does not exist.

    Read as text and parsed here: SQLite keeps whatever was stored ("yesterday"), which the
    driver's own conversion would fail on.  A value that is no date is no date.
    """
    dates = [c for c in columns if c in schema.columns and c not in schema.primary_key]
    found = reader.stored(table, key, dates)
    if found is None:
        return None
    return {name: _stored_time(value, schema.columns[name].kind) if name in dates else value
            for name, value in found.items()}


def _stored_time(value: object, kind: ColumnKind) -> object:
    """A date or time read back as text, parsed; None for anything that is not one."""
    if isinstance(value, datetime | date) or value is None:
        return value
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return parsed.date() if kind is ColumnKind.DATE else parsed


def _mentions(ledger: AuditLedger, store: str, table: str,
              key: Key) -> tuple[tuple[Mention, ...], int]:
    """Applied batch outcomes that name the key: acted on, or reached through a foreign key."""
    wanted = canonical([jsonable(part) for part in key])
    short = table.rpartition(".")[2]
    found: list[Mention] = []
    scanned = 0
    for record in ledger.records():
        scanned += 1
        entry = record.entry
        if entry.kind is not Kind.OUTCOME or entry.store != store:
            continue
        body = entry.body
        status = body.get("status")
        how = None
        if entry.table == table and any(canonical(k) == wanted for k in body.get("keys", [])):
            how = f"acted on ({entry.action})"
        for label, keys in (body.get("reached") or {}).items():
            name, _, effect = str(label).partition(" (")
            if name.rpartition(".")[2] == short and any(canonical(k) == wanted for k in keys):
                how = f"reached through a foreign key from {entry.table} ({effect.rstrip(')')})"
        if how is not None:
            found.append(Mention(record.seq, record.at, entry.rule, entry.action,
                                 entry.batch_id, str(status) if status else None, how))
    return tuple(found), scanned


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def explanation_to_dict(explanation: Explanation) -> dict[str, Any]:
    """The explanation with stable keys for scripts."""
    return {
        "store": explanation.store,
        "table": explanation.table,
        "key": [jsonable(part) for part in explanation.key],
        "as_of": explanation.as_of.isoformat(),
        "exists": explanation.exists,
        "rules": [{
            "rule": v.rule, "description": v.description, "action": v.action,
            "enabled": v.enabled, "matches": v.matches, "age_column": v.age_column,
            "age": _iso(v.age), "keep_until": _iso(v.keep_until), "act_at": _iso(v.act_at),
            "protected_by": [{"kind": p.kind, "id": p.id, "reason": p.reason,
                              "until": _iso(p.until)} for p in v.protected_by],
            "decision": v.decision, "reason": v.reason,
        } for v in explanation.verdicts],
        "audit": [{"seq": m.seq, "at": m.at, "rule": m.rule, "action": m.action,
                   "batch_id": m.batch_id, "status": m.status, "how": m.how}
                  for m in explanation.mentions],
        "audit_records_scanned": explanation.scanned,
        "reached_by": [{"rule": r.rule, "table": r.table, "ways": list(r.ways),
                        "protected_by": list(r.protected_by)} for r in explanation.reached_by],
    }
