"""The published retention schedule: the policy set as the document a privacy policy promises.

"Details of retention periods for different aspects of your personal data are available on
request": this is that document.  Per data category and table it gives each rule's promise in
its own words, the period and what it is counted from, what happens to a record then, the
minimum retentions that keep records longer, and the legal holds in force.

The data category of a table is the policy file its first entry comes from (``emails.yaml``:
*Emails*), which is how the example policies are organised.  Holds come from the policy files
and, where the state database has a ``holds`` table (holds placed at run time), from there.
A hold's filter is named by its columns only: its values may identify a person.

Two audiences.  The *public* schedule (``retentiond schedule``'s default, in every format) is
for a privacy page or a reply to a customer: of the legal holds it says only how many are in
force on a table, never their ids, case numbers, reasons, filters or data subjects (an id or a
reason such as "complaint by customer 4711" identifies a person as surely as a filter value).
The *internal* schedule (``--internal``, and the review report) names each hold, its case, its
reason and the columns its filter selects by, for counsel and reviewers.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Engine, NullPool, create_engine
from sqlalchemy.engine import make_url

from retentiond.actions import action_for
from retentiond.holds.table import PlacedHold, holds_in, in_force, stamp
from retentiond.ledger.state import sqlite_path
from retentiond.policy.filters import AllOf, AnyOf, Condition, Filter, Op
from retentiond.policy.model import Hold, PolicySet, Retention, Rule
from retentiond.publish import template
from retentiond.publish.template import sentence

if TYPE_CHECKING:
    from retentiond.policy.periods import Period
    from retentiond.publish.coverage import Coverage, TableCoverage
    from retentiond.run.engine import Engine as RuleEngine
    from retentiond.settings import ResidualSettings


FORMAT = "retentiond-schedule/5"
"""The ``format`` of the JSON document; a change of its keys gets a new number.

5: ``unpromised`` (when the stores were read): per table, how many personal columns lack a
retention promise or an erasure mapping and their ``categories``; internal: each column's ``gaps``.

4: ``backups`` (``kept_for``, ``archived_wal_kept_for``, ``words``): how long the copies kept for
recovery keep what was deleted (the ``[residual]`` settings).

3: ``audience`` (``public`` or ``internal``) and the counts ``held`` (per table) and
``held_across_tables``; the hold lists ``holds`` and ``holds_across_tables`` only when internal.
"""


class Audience(StrEnum):
    """Who the schedule is for (see the module docstring)."""

    PUBLIC = "public"
    """A privacy page, a customer: holds are counted, never named."""
    INTERNAL = "internal"
    """Counsel and reviewers: each hold with its id, case, reason and filter's columns."""

_OPS = {
    Op.EQ: "is", Op.NE: "is not", Op.LT: "is less than", Op.LE: "is at most",
    Op.GT: "is more than", Op.GE: "is at least", Op.IN: "is one of", Op.NOT_IN: "is none of",
    Op.IS_NULL: "is empty", Op.NOT_NULL: "is set", Op.LIKE: "matches",
}


@dataclass(frozen=True)
class ScheduledRule:
    """One rule as the schedule states it."""

    id: str
    description: str
    """The promise in plain words, from the rule."""
    period: str
    age_column: str
    timezone: str
    action: str
    outcome: str
    """What happens then, in a customer's words (``Deleted``)."""
    details: str
    """What the action does, as :meth:`Action.describe` says it."""
    applies_to: str
    runs: str | None
    enabled: bool


@dataclass(frozen=True)
class MinimumRetention:
    """A minimum retention: records are kept at least this long, whatever a rule says."""

    id: str
    reason: str
    period: str
    column: str
    timezone: str
    applies_to: str


@dataclass(frozen=True)
class HoldView:
    """A legal hold as published: its scope named by columns, never by values."""

    id: str
    reason: str
    case: str | None
    store: str | None
    """None: every store (a hold placed at run time on a data subject)."""
    table: str | None
    """None: every table of the store."""
    applies_to: str
    expires: str | None
    source: str
    """``policy`` (a policy file) or ``state`` (placed at run time)."""
    active: bool
    placed_at: str | None = None
    released_at: str | None = None

    @property
    def scope(self) -> str:
        """Where the hold reaches: ``app.emails``, every table of a store, or every store."""
        if self.store is None:
            return "every store"
        return f"{self.store}.{self.table}" if self.table else f"every table of {self.store}"

    def words(self) -> str:
        """Everything said about the hold after its id."""
        case = f" (case {self.case})" if self.case else ""
        until = f" until {_date_words(self.expires)}" if self.expires else " until released"
        where = "" if self.store and self.table else f" in {self.scope}"
        return f"{case}: {self.reason} Keeps {self.applies_to}{where}{until}."


@dataclass(frozen=True)
class TableSchedule:
    """Everything the schedule says about one table of one store."""

    category: str
    store: str
    table: str
    rules: tuple[ScheduledRule, ...]
    retentions: tuple[MinimumRetention, ...]
    holds: tuple[HoldView, ...]
    """The holds in force on the table; none in a public schedule (see :attr:`held`)."""
    goes_with: tuple[GoesWith, ...] = ()
    """Rules on other tables whose removals take (or change) these records with them."""
    held: int = 0
    """How many holds are in force on the table, in every audience."""

    def held_words(self) -> str:
        """The public's sentence on the holds in force on the table."""
        return held_words(self.held, "these records")

    def no_period(self) -> str:
        """What is said of a table without rules or minimum retentions of its own."""
        if self.goes_with:
            return "No retention period of their own is set for these records; they go with:"
        return "No retention period is set for these records; they are kept while held."


def held_words(count: int, records: str) -> str:
    """How many legal holds keep some of ``records``, and what that means, without naming them."""
    holds = "1 legal hold is" if count == 1 else f"{count:,} legal holds are"
    return (f"{holds} in force on some of {records}: what a hold keeps is kept, whatever the "
            "period, until the hold is released.")


@dataclass(frozen=True)
class GoesWith:
    """A rule on a parent table that reaches this table's records through foreign keys."""

    rule: str
    parent: str
    period: str
    ways: tuple[str, ...]
    """``cascade``, ``delete first``, ``set null``."""

    def words(self) -> str:
        """What happens to these records, in words."""
        effects = []
        if any(way != "set null" for way in self.ways):
            effects.append(f"deleted with the {self.parent} record they belong to")
        if "set null" in self.ways:
            effects.append(f"their reference to a {self.parent} record is cleared")
        return (f"{' and '.join(effects)} when rule {self.rule} removes that record, "
                f"{self.period} after its date")


@dataclass(frozen=True)
class RetentionSchedule:
    """The retention schedule in force at ``as_of``."""

    as_of: datetime
    policy_set: str
    tables: tuple[TableSchedule, ...]
    across: tuple[HoldView, ...] = ()
    """Holds in force on more than one table (a whole store, or a data subject everywhere).

    None in a public schedule (see :attr:`held_across`)."""
    held_across: int = 0
    """How many holds across tables are in force, in every audience."""
    audience: Audience = Audience.INTERNAL
    """``public``: the holds are counted, not named (see the module docstring)."""
    backups: Period | None = None
    """How long backups are kept (``[residual] backups``); None when not stated."""
    archived_wal: Period | None = None
    """How long archived WAL / binary logs are kept (``[residual] wal``); None when not stated."""
    coverage: Coverage | None = None
    """The personal columns of the live stores and what covers them; None when not read."""

    @property
    def public(self) -> bool:
        """Whether this is the schedule for the public: holds counted, never named."""
        return self.audience is Audience.PUBLIC

    def categories(self) -> list[tuple[str, list[TableSchedule]]]:
        """The tables grouped by data category, in the order the categories first appear."""
        grouped: dict[str, list[TableSchedule]] = {}
        for table in self.tables:
            grouped.setdefault(table.category, []).append(table)
        return list(grouped.items())

    @property
    def holds(self) -> list[HoldView]:
        """Every hold in force, table by table, then those across tables."""
        return [*(hold for table in self.tables for hold in table.holds), *self.across]

    def held_across_words(self) -> str:
        """The public's sentence on the holds in force across tables."""
        return held_words(self.held_across, "the records of several tables")

    def notice(self) -> str | None:
        """What an internal schedule says first: it is not for publication."""
        if self.public:
            return None
        return ("Internal edition: it names each legal hold, its case and its reason, which may "
                "identify a person. Do not publish it; publish the public edition "
                "(retentiond schedule --public).")

    def backups_words(self) -> str:
        """How long the copies kept for recovery keep a deleted or anonymized record."""
        if self.backups is None:
            return ("How long our backups keep a deleted or anonymized record is not stated in "
                    "this schedule.")
        kept = [self.backups, *([self.archived_wal] if self.archived_wal else [])]
        longest = max(kept, key=lambda period: period.approx_days())
        logs = f" and recovery logs for {self.archived_wal}" if self.archived_wal else ""
        return (f"A record deleted or anonymized here is still in the backups taken before, "
                f"until they expire: backups are kept for {self.backups}{logs}. So no copy of "
                f"it remains {longest} after it was deleted or anonymized.")

    def unpromised(self) -> list[tuple[str, str, str]]:
        """(store, table, words) for each table with personal data lacking a promise.

        The public edition counts the columns of each table and names their categories; the
        internal one names each column and what it lacks.  Neither holds a value.
        """
        if self.coverage is None:
            return []
        found = []
        for table in self.coverage.gaps:
            gaps = table.gaps
            if self.public:
                words = (f"{len(gaps)} column(s) of personal data "
                         f"({', '.join(sorted({c.category for c in gaps}))}) without both a "
                         "retention period for every record and a stated erasure.")
            else:
                words = "; ".join(f"{c.column} ({c.category}, found by {c.source}): "
                                  f"{', '.join(c.gaps)}" for c in gaps) + "."
            found.append((table.store, table.table, words))
        return found

    def unpromised_words(self) -> str:
        """The sentence before the list of :meth:`unpromised` (or instead of it)."""
        if self.coverage is not None and not self.coverage.gaps:
            return ("Every column of personal data found in our databases has a retention "
                    "period and a stated erasure.")
        return ("Personal data for which this schedule does not yet state both how long it is "
                "kept and what erasing it on request does:")

    def lead(self) -> str:
        """The opening paragraph: when the schedule is in force, and how to read it."""
        return (f"In force on {_date_words(self.as_of)} (policy set {self.policy_set}). "
                "For each kind of record: how long we keep it, what happens to it then, and "
                "why. Minimum retentions keep records at least as long as the law requires; "
                "records under a legal hold are kept, whatever the period, until the hold is "
                "released.")


@dataclass(frozen=True)
class StateHold:
    """A hold placed at run time, as the state database's ``holds`` table keeps it.

    Of its filter only the column names are kept, and of its data subject only the kind:
    the values identify a person.
    """

    id: str
    reason: str
    case: str | None
    store: str | None
    table: str | None
    columns: tuple[str, ...]
    subject: str | None
    until: date | datetime | None
    placed_at: str | None
    released_at: str | None

    def active(self, at: datetime) -> bool:
        """In force at ``at``: not released, not past ``until`` (a date holds through its day)."""
        return self.released_at is None and in_force(self.until, at)

    def applies_to(self) -> str:
        """Which records it keeps, in words, without values."""
        by = f" (selected by {', '.join(self.columns)})" if self.columns else ""
        if self.subject is not None:
            return f"the records of one {self.subject}{by}"
        return f"some records{by}" if self.columns else "every record"


def build_schedule(policies: PolicySet, *, as_of: datetime,
                   state_holds: Sequence[StateHold] = (),
                   reached: Mapping[tuple[str, str], Sequence[GoesWith]] | None = None,
                   public: bool = False,
                   residual: ResidualSettings | None = None,
                   coverage: Coverage | None = None) -> RetentionSchedule:
    """The schedule of ``policies`` at ``as_of``, with the holds in force then.

    ``reached``: per (store, table), the rules on other tables whose removals reach it (see
    :func:`reached_tables`); such a table is listed even without rules of its own.
    ``public``: the holds are counted, and nothing else of them is kept (see the module).
    ``residual``: how long backups and WAL archives are kept, which the schedule states.
    ``coverage``: the personal columns found live (:mod:`retentiond.publish.coverage`).
    """
    reached = reached or {}
    holds = [hold_view(h, source="policy", active=True) for h in policies.holds
             if h.active(as_of)]
    holds += [state_hold_view(s, active=True) for s in state_holds if s.active(as_of)]
    tables: dict[tuple[str, str], str] = {}
    entries: list[Rule | Retention | Hold] = [*policies.rules, *policies.retentions,
                                              *policies.holds]
    for entry in entries:
        tables.setdefault((entry.store, entry.table), _category(policies, entry.id, entry.table))
    for hold in holds:
        if hold.store is not None and hold.table is not None:
            tables.setdefault((hold.store, hold.table), _humanize(hold.table))
    for store, table in reached:
        tables.setdefault((store, table), _humanize(table))
    made = []
    for (store, table), category in tables.items():
        rules = sorted((rule_view(r) for r in policies.rules
                        if (r.store, r.table) == (store, table)),
                       key=lambda r: (not r.enabled, _days(policies.rule(r.id))))
        retentions = tuple(retention_view(r) for r in policies.retentions_on(store, table))
        on_table = tuple(h for h in holds if (h.store, h.table) == (store, table))
        made.append(TableSchedule(category, store, table, tuple(rules), retentions,
                                  () if public else on_table,
                                  tuple(reached.get((store, table), ())), len(on_table)))
    across = tuple(h for h in holds if h.store is None or h.table is None)
    return RetentionSchedule(as_of, policies.digest, tuple(made), () if public else across,
                             len(across), Audience.PUBLIC if public else Audience.INTERNAL,
                             backups=residual.backups if residual else None,
                             archived_wal=residual.wal if residual else None,
                             coverage=coverage)


def reached_tables(engine: RuleEngine, *, as_of: datetime,
                   ) -> tuple[dict[tuple[str, str], list[GoesWith]], list[str]]:
    """Which tables each enabled rule's removals reach; and the stores that could not say."""
    reaching = engine.reaching(as_of=as_of)
    found = {place: [GoesWith(rule.id, rule.table, str(rule.age.older_than), ways)
                     for rule, ways in rules]
             for place, rules in reaching.rules.items()}
    return found, list(reaching.unknown)


def rule_view(rule: Rule) -> ScheduledRule:
    """A rule in the schedule's words."""
    action = action_for(rule.action)
    runs = None
    if rule.schedule is not None:
        runs = (f"cron {rule.schedule.cron}" if rule.schedule.cron
                else f"every {rule.schedule.every}")
    return ScheduledRule(
        id=rule.id, description=_one_line(rule.description), period=str(rule.age.older_than),
        age_column=rule.age.described, timezone=rule.age.timezone, action=rule.action.type,
        outcome=action.outcome, details=action.describe(),
        applies_to=which_records(rule.where, values=True), runs=runs, enabled=rule.enabled)


def retention_view(retention: Retention) -> MinimumRetention:
    """A minimum retention in the schedule's words."""
    return MinimumRetention(
        id=retention.id, reason=_one_line(retention.reason), period=str(retention.period),
        column=retention.column, timezone=retention.timezone,
        applies_to=which_records(retention.where, values=True))


def hold_view(hold: Hold, *, source: str, active: bool, placed_at: str | None = None,
              released_at: str | None = None) -> HoldView:
    """A hold in the schedule's words: its filter named by columns, without values."""
    expires = None if hold.expires is None else hold.expires.isoformat()
    return HoldView(id=hold.id, reason=_one_line(hold.reason), case=hold.case, store=hold.store,
                    table=hold.table, applies_to=which_records(hold.where, values=False),
                    expires=expires, source=source, active=active, placed_at=placed_at,
                    released_at=released_at)


def state_hold_view(hold: StateHold, *, active: bool) -> HoldView:
    """A hold placed at run time in the schedule's words."""
    until = None if hold.until is None else hold.until.isoformat()
    return HoldView(id=hold.id, reason=_one_line(hold.reason), case=hold.case, store=hold.store,
                    table=hold.table, applies_to=hold.applies_to(), expires=until,
                    source="state", active=active, placed_at=hold.placed_at,
                    released_at=hold.released_at)


def which_records(where: Filter | None, *, values: bool) -> str:
    """Which records a filter selects, in words; with ``values=False`` only its columns."""
    if where is None:
        return "every record"
    if not values:
        columns = ", ".join(sorted(where.columns()))
        return f"some records (selected by {columns})"
    return f"records where {_words(where)}"


def _words(where: Filter) -> str:
    if isinstance(where, Condition):
        verb = _OPS[where.op]
        if where.value is None:
            return f"{where.column} {verb}"
        shown = (", ".join(str(v) for v in where.value) if isinstance(where.value, list)
                 else str(where.value))
        return f"{where.column} {verb} {shown}"
    if isinstance(where, AllOf):
        return " and ".join(_nested(f) for f in where.all)
    if isinstance(where, AnyOf):
        return " or ".join(_nested(f) for f in where.any)
    return f"not {_nested(where.not_)}"


def _nested(where: Filter) -> str:
    text = _words(where)
    return text if isinstance(where, Condition) else f"({text})"


def _category(policies: PolicySet, entry_id: str, table: str) -> str:
    source = policies.sources.get(entry_id)
    return _humanize(source.file.stem if source is not None else table)


def _humanize(name: str) -> str:
    words = name.replace("_", " ").replace("-", " ").split(".")[-1].strip()
    return words[:1].upper() + words[1:]


def _days(rule: Rule) -> float:
    return rule.age.older_than.approx_days()


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- holds placed at run time: the state database's ``holds`` table, read only if it exists --

@contextmanager
def read_state(url: str) -> Iterator[Engine | None]:
    """A read-only engine on the state database; None when an SQLite state file does not exist.

    Unlike :class:`retentiond.ledger.state.StateDB` it creates nothing: publishing only reads.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)  # a plain URL, or a file: URI such as an auditor's mode=ro
        if path is None or not path.is_file():
            yield None
            return
        target = f"file:{quote(str(path.resolve()))}?mode=ro"
        engine = create_engine("sqlite://", poolclass=NullPool,
                               creator=lambda: sqlite3.connect(target, uri=True))
    else:
        engine = create_engine(parsed, poolclass=NullPool, hide_parameters=True)
    try:
        yield engine
    finally:
        engine.dispose()


def state_holds(engine: Engine | None) -> list[StateHold]:
    """Holds placed at run time, read by the holds package's reader if the table exists.

    AuditError when the table exists but cannot be read: a schedule that silently left out a
    legal hold would be wrong.
    """
    return [_state_hold(placed) for placed in holds_in(engine)]


def _state_hold(placed: PlacedHold) -> StateHold:
    """What the schedule keeps of a hold: of its filter the columns, of its subject the kind."""
    return StateHold(
        id=placed.id, reason=placed.reason, case=placed.case, store=placed.store,
        table=placed.table, columns=tuple(placed.columns()),
        subject=placed.subject.kind if placed.subject is not None else None, until=placed.until,
        placed_at=stamp(placed.placed_at),
        released_at=stamp(placed.released_at) if placed.released_at is not None else None)


# -- the three formats ----------------------------------------------------------------------

def to_json(schedule: RetentionSchedule) -> str:
    """The schedule as JSON with stable keys (sorted), for scripts and other sites."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "audience": schedule.audience,
        "as_of": schedule.as_of.astimezone(UTC).isoformat(timespec="seconds"),
        "policy_set": schedule.policy_set,
        "categories": [
            {"name": name, "tables": [_table_json(t, public=schedule.public) for t in tables]}
            for name, tables in schedule.categories()
        ],
        "held_across_tables": schedule.held_across,
        "backups": {"kept_for": _period(schedule.backups),
                    "archived_wal_kept_for": _period(schedule.archived_wal),
                    "words": schedule.backups_words()},
    }
    if not schedule.public:
        document["holds_across_tables"] = [_hold_json(h) for h in schedule.across]
    if schedule.coverage is not None:
        document["unpromised"] = [_unpromised_json(t, public=schedule.public)
                                  for t in schedule.coverage.gaps]
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _period(period: Period | None) -> str | None:
    return str(period) if period is not None else None


def _table_json(table: TableSchedule, *, public: bool) -> dict[str, Any]:
    made = {"store": table.store, "table": table.table,
            "rules": [asdict(r) for r in table.rules],
            "minimum_retentions": [asdict(r) for r in table.retentions],
            "held": table.held,
            "goes_with": [{**asdict(g), "ways": list(g.ways)} for g in table.goes_with]}
    if not public:
        made["holds"] = [_hold_json(h) for h in table.holds]
    return made


def _unpromised_json(table: TableCoverage, *, public: bool) -> dict[str, Any]:
    made: dict[str, Any] = {"store": table.store, "table": table.table,
                            "columns": len(table.gaps),
                            "categories": sorted({c.category for c in table.gaps})}
    if not public:
        made["gaps"] = [{"column": c.column, "category": c.category, "source": c.source,
                         "retention": str(c.retention), "rules": list(c.rules),
                         "erasure": c.erasure, "lacks": list(c.gaps)} for c in table.gaps]
    return made


def _hold_json(hold: HoldView) -> dict[str, Any]:
    return {"id": hold.id, "reason": hold.reason, "case": hold.case, "store": hold.store,
            "table": hold.table, "applies_to": hold.applies_to, "expires": hold.expires,
            "source": hold.source, "placed_at": hold.placed_at}


def _date_words(moment: datetime | date | str) -> str:
    value = date.fromisoformat(moment[:10]) if isinstance(moment, str) else moment
    return f"{value.day} {value:%B %Y}"


ACROSS = "Legal holds on records of several tables"
BACKUPS = "Backups"
UNPROMISED = "Personal data without a retention promise"


def _md(text: str) -> str:
    """Free text made safe inside a Markdown table cell (no pipes, no stray emphasis)."""
    for char in "\\|*`<[]":
        text = text.replace(char, "\\" + char)
    return text


def to_markdown(schedule: RetentionSchedule) -> str:
    """The schedule as Markdown, for a privacy page or a reply to a customer."""
    lines = ["# Retention schedule", ""]
    notice = schedule.notice()
    if notice is not None:
        lines += [f"**{_md(notice)}**", ""]
    lines += [_md(schedule.lead())]
    for name, tables in schedule.categories():
        lines += ["", f"## {_md(name)}"]
        for table in tables:
            lines += ["", f"### Records of `{table.table}` (store `{table.store}`)", ""]
            lines += _md_periods(table)
            lines += [f"- {_md(sentence(g.words()))}" for g in table.goes_with]
            if table.holds:
                lines += ["", "Legal holds in force:", ""]
                lines += [f"- {_md(h.id + h.words())}" for h in table.holds]
            elif table.held:
                lines += ["", _md(table.held_words())]
    if schedule.across:
        lines += ["", f"## {ACROSS}", ""]
        lines += [f"- {_md(h.id + h.words())}" for h in schedule.across]
    elif schedule.held_across:
        lines += ["", f"## {ACROSS}", "", _md(schedule.held_across_words())]
    lines += ["", f"## {BACKUPS}", "", _md(schedule.backups_words())]
    if schedule.coverage is not None:
        lines += ["", f"## {UNPROMISED}", "", _md(schedule.unpromised_words())]
        if schedule.unpromised():
            lines.append("")
        lines += [f"- `{store}.{table}`: {_md(words)}"
                  for store, table, words in schedule.unpromised()]
    return "\n".join(lines) + "\n"


def _md_periods(table: TableSchedule) -> list[str]:
    if not table.rules and not table.retentions:
        return [table.no_period(), ""] if table.goes_with else [table.no_period()]
    lines = ["| Kept for | Then | Applies to | Promise or reason |", "|---|---|---|---|"]
    for rule in table.rules:
        off = " (not enforced at present)" if not rule.enabled else ""
        lines.append(f"| {_md(rule.period)} after `{rule.age_column}` | "
                     f"**{_md(rule.outcome)}.** {_md(sentence(rule.details))}{off} | "
                     f"{_md(rule.applies_to)} | {_md(rule.description)} |")
    lines += [f"| at least {_md(keep.period)} after `{keep.column}` | **Kept** (minimum "
              f"retention) | {_md(keep.applies_to)} | {_md(keep.reason)} |"
              for keep in table.retentions]
    return lines


def to_html(schedule: RetentionSchedule) -> str:
    """The schedule as one self-contained HTML page (``templates/schedule.html.j2``)."""
    return template.render("schedule.html.j2", schedule=schedule)


def render(schedule: RetentionSchedule, fmt: str) -> str:
    """The schedule in ``md``, ``html`` or ``json``."""
    renderers = {"md": to_markdown, "html": to_html, "json": to_json}
    return renderers[fmt](schedule)
