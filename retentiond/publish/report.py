"""The review report: one self-contained HTML page for a compliance reviewer.

It answers, for a period: which retention promises were in force, how many records each rule
acted on (per rule and per month, by action), what was kept back and why (holds, minimum
retentions, blocking children), what happened in quarantine, what went wrong, and whether the
ledger itself is intact.  Every figure comes from the audit ledger, read once as a stream:

``batch.outcome`` with status ``applied``
    records acted on (``count``) and reached through foreign keys (``reached_count``), per
    rule, per action and per month of ``at``; quarantine, restore and purge outcomes make up
    the quarantine section.  These are the figures of ``retentiond audit summary``.
``run.start``
    runs, and the census of each rule's latest run in the period: held, retained, blocked.
``run.end`` (failed, stopped), ``brake.stopped``, ``brake.override``, batches not applied
    the problems section.
``hold.placed`` / ``hold.released``
    hold events, next to the holds of the policy files and of the state database.

Memory stays bounded: the tallies grow with rules and months, not with records, and the
lists (problems, batches, hold events) keep at most :data:`LISTED` entries each and count
the rest.  Only open quarantine batches are all kept, to tell which are still open.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retentiond.ledger.chain import AuditLedger, Kind, Record
from retentiond.policy.model import PolicySet
from retentiond.publish.schedule import (
    HoldView,
    RetentionSchedule,
    StateHold,
    build_schedule,
    hold_view,
    schedule_section,
    state_hold_view,
)

if TYPE_CHECKING:
    from retentiond.ledger.evidence import EvidenceAuditor

from retentiond.publish.template import (
    ACTION_COLOURS,
    badge,
    bar_chart,
    cell,
    column_chart,
    esc,
    legend,
    number,
    page,
    row,
    table,
)

LISTED = 500
"""At most this many problems, batches and hold events are listed; the rest are counted."""
QUARANTINE_OPS = frozenset({"restore", "purge"})
"""Actions of quarantine batches after the fact; not a rule's own action."""


@dataclass(frozen=True)
class Window:
    """The period a report covers: ``since`` (inclusive) to ``until`` (exclusive), in UTC."""

    since: datetime | None = None
    until: datetime | None = None

    def __contains__(self, moment: datetime) -> bool:
        return ((self.since is None or moment >= self.since)
                and (self.until is None or moment < self.until))

    def after(self, moment: datetime) -> bool:
        """Whether ``moment`` lies after the period."""
        return self.until is not None and moment >= self.until


@dataclass
class RuleTally:
    """What the ledger says about one rule in the period."""

    rule: str
    acted: Counter[str] = field(default_factory=Counter)
    """Records acted on, by action."""
    reached: int = 0
    batches: int = 0
    runs: int = 0
    failed: int = 0
    brake_stops: int = 0
    overrides: int = 0
    census: Mapping[str, Any] | None = None
    """The census of the latest run in the period."""
    census_at: str | None = None

    @property
    def total(self) -> int:
        """Records acted on, all actions together."""
        return sum(self.acted.values())


@dataclass
class QuarantinedBatch:
    """One quarantine batch: moved, then perhaps restored or purged."""

    batch_id: str
    rule: str
    table: str
    rows: int
    quarantined_at: str | None
    release_at: str | None
    state: str = "open"
    closed_at: str | None = None


@dataclass
class QuarantineTally:
    """Rows and batches quarantined, restored and purged in the period, per rule."""

    rows: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(rule, quarantine|restore|purge) -> rows."""
    batches: Counter[tuple[str, str]] = field(default_factory=Counter)
    open: dict[str, QuarantinedBatch] = field(default_factory=dict)
    """Batches still in quarantine at the end of the period (all of them: see the module)."""
    closed: list[QuarantinedBatch] = field(default_factory=list)
    closed_count: int = 0


@dataclass(frozen=True)
class Incident:
    """Something a reviewer must see: a failed or stopped run, a brake, a batch not applied."""

    seq: int
    at: str
    rule: str | None
    what: str
    details: str


@dataclass(frozen=True)
class HoldEvent:
    """A hold placed or released, as the ledger records it."""

    seq: int
    at: str
    event: str
    hold: str
    details: str


@dataclass
class LedgerFacts:
    """Everything the report takes from one pass over the ledger."""

    rules: dict[str, RuleTally] = field(default_factory=dict)
    months: dict[str, Counter[str]] = field(default_factory=dict)
    quarantine: QuarantineTally = field(default_factory=QuarantineTally)
    incidents: list[Incident] = field(default_factory=list)
    incident_count: int = 0
    hold_events: list[HoldEvent] = field(default_factory=list)
    hold_event_count: int = 0
    records: int = 0
    """Records in the period."""
    first_at: str | None = None
    last_at: str | None = None
    policy_sets: Counter[str] = field(default_factory=Counter)
    """Policy-set digests the runs of the period acted under, with how many runs each."""
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None

    def tally(self, rule: str) -> RuleTally:
        """The tally of ``rule``, made on first use."""
        return self.rules.setdefault(rule, RuleTally(rule))

    def kept_by(self) -> dict[str, int]:
        """Records each guard (hold, retention, blocker) kept back at the latest runs.

        Several rules on one table count the same records: the largest count is taken.
        """
        kept: dict[str, int] = {}
        for tally in self.rules.values():
            for guard, count in (tally.census or {}).get("by_guard", {}).items():
                kept[guard] = max(kept.get(guard, 0), int(count))
        return kept


class Collector:
    """Reads ledger records one by one into :class:`LedgerFacts` (see the module docstring)."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.facts = LedgerFacts()
        self._handlers: dict[Kind, Callable[[Record], None]] = {
            Kind.OUTCOME: self._outcome, Kind.RUN_START: self._run_start,
            Kind.RUN_END: self._run_end, Kind.STOPPED: self._brake,
            Kind.OVERRIDE: self._brake, Kind.ERROR: self._error,
            Kind.HOLD_PLACED: self._hold, Kind.HOLD_RELEASED: self._hold,
            Kind.CHECKPOINT: self._checkpoint,
        }

    def see(self, record: Record) -> None:
        """Take in one record."""
        at = _utc(record.at)
        if self.window.after(at):
            return
        entry = record.entry
        if entry.kind is Kind.OUTCOME and entry.action == "quarantine":
            self._quarantined(record, counted=at in self.window)
        elif entry.kind is Kind.OUTCOME and entry.action in QUARANTINE_OPS:
            self._released(record, counted=at in self.window)
        if at not in self.window:
            return
        self._count(record)
        handler = self._handlers.get(entry.kind)
        if handler is not None:
            handler(record)

    def _count(self, record: Record) -> None:
        facts = self.facts
        facts.records += 1
        facts.first_at = facts.first_at or record.at
        facts.last_at = record.at

    def _outcome(self, record: Record) -> None:
        entry = record.entry
        status = entry.body.get("status")
        if status != "applied":
            self._incident(record, f"batch {status}",
                           _details(entry.body, ("error", "reason")) or f"batch {entry.batch_id}")
            return
        if entry.rule is None or entry.action in QUARANTINE_OPS:
            return
        tally = self.facts.tally(entry.rule)
        action = entry.action or "?"
        count = int(entry.body.get("count", 0))
        tally.acted[action] += count
        tally.reached += int(entry.body.get("reached_count", 0))
        tally.batches += 1
        self.facts.months.setdefault(_utc(record.at).strftime("%Y-%m"), Counter())[
            action] += count

    def _run_start(self, record: Record) -> None:
        entry = record.entry
        if entry.rule is None:
            return
        tally = self.facts.tally(entry.rule)
        tally.runs += 1
        tally.census = dict(entry.body.get("census", {}))
        tally.census_at = record.at
        digest = entry.body.get("policy_set")
        if digest:
            self.facts.policy_sets[str(digest)] += 1

    def _run_end(self, record: Record) -> None:
        entry = record.entry
        status = entry.body.get("status")
        if entry.rule is not None and status == "failed":
            self.facts.tally(entry.rule).failed += 1
        if status in {"failed", "stopped"}:
            self._incident(record, f"run {status}",
                           str(entry.body.get("error") or "stop requested"))

    def _brake(self, record: Record) -> None:
        entry = record.entry
        body = entry.body
        stopped = entry.kind is Kind.STOPPED
        if entry.rule is not None:
            tally = self.facts.tally(entry.rule)
            if stopped:
                tally.brake_stops += 1
            else:
                tally.overrides += 1
        reached = f" of {body['table']} (reached through foreign keys)" if body.get("table") else ""
        numbers = (f"would act on {number(int(body.get('selected', 0)))} of "
                   f"{number(int(body.get('population', 0)))} records{reached}; "
                   f"{body.get('limit')} allows {body.get('allowed')}")
        self._incident(record, "brake stopped the rule" if stopped else "brake overridden",
                       numbers)

    def _error(self, record: Record) -> None:
        self._incident(record, "error", _details(record.entry.body, ()) or "")

    def _incident(self, record: Record, what: str, details: str) -> None:
        self.facts.incident_count += 1
        if len(self.facts.incidents) < LISTED:
            self.facts.incidents.append(
                Incident(record.seq, record.at, record.entry.rule, what, details))

    def _hold(self, record: Record) -> None:
        body = record.entry.body
        self.facts.hold_event_count += 1
        if len(self.facts.hold_events) < LISTED:
            hold = str(body.get("hold") or body.get("id") or body.get("hold_id") or "?")
            event = "placed" if record.entry.kind is Kind.HOLD_PLACED else "released"
            self.facts.hold_events.append(HoldEvent(
                record.seq, record.at, event, hold, _details(body, ("case", "reason", "by"))))

    def _checkpoint(self, record: Record) -> None:
        self.facts.checkpoints += 1
        self.facts.last_checkpoint_seq = record.seq

    def _quarantined(self, record: Record, *, counted: bool) -> None:
        entry = record.entry
        if entry.body.get("status") != "applied" or entry.batch_id is None:
            return
        rows = int(entry.body.get("count", 0))
        q = self.facts.quarantine
        q.open[entry.batch_id] = QuarantinedBatch(
            entry.batch_id, entry.rule or "?", entry.table or "?", rows, record.at,
            entry.body.get("release_at"))
        if counted:
            q.rows[entry.rule or "?", "quarantine"] += rows
            q.batches[entry.rule or "?", "quarantine"] += 1

    def _released(self, record: Record, *, counted: bool) -> None:
        entry = record.entry
        if entry.body.get("status") != "applied" or entry.batch_id is None:
            return
        op = entry.action or "?"
        q = self.facts.quarantine
        batch = q.open.pop(entry.batch_id, None)
        if not counted:
            return
        rows = int(entry.body.get("count", 0))
        q.rows[entry.rule or "?", op] += rows
        q.batches[entry.rule or "?", op] += 1
        q.closed_count += 1
        if len(q.closed) < LISTED:
            closed = batch or QuarantinedBatch(entry.batch_id, entry.rule or "?",
                                               entry.table or "?", rows, None, None)
            closed.state, closed.closed_at = ("restored" if op == "restore" else "purged",
                                              record.at)
            q.closed.append(closed)


def collect(ledger: AuditLedger, window: Window) -> LedgerFacts:
    """One streaming pass over the ledger: the facts of the period."""
    collector = Collector(window)
    for record in ledger.records():
        collector.see(record)
    return collector.facts


# -- verification ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckpointStatus:
    """What the checkpoint-aware verification found."""

    ok: bool
    summary: str




@dataclass(frozen=True)
class LedgerCheck:
    """The ledger's verification: the hash chain, and checkpoints when a hook checked them."""

    records: int
    head: str
    ok: bool
    broken_seq: int | None
    reason: str | None
    open_intents: int
    checkpoints: CheckpointStatus | None


def check_ledger(ledger: AuditLedger, auditor: EvidenceAuditor | None = None) -> LedgerCheck:
    """Verify the ledger as ``audit verify`` does.

    That is the chain, and with an auditor holding the public key also every checkpoint,
    their spacing and the intents' outcomes.
    """
    result = ledger.verify(auditor)
    checkpoints = None
    if auditor is not None and auditor.public is not None:
        summary = ("every checkpoint is signed by the configured key and matches the chain"
                   if result.ok else f"verification failed: {result.reason}")
        if result.ok and result.warnings:
            summary += "; " + "; ".join(result.warnings)
        checkpoints = CheckpointStatus(ok=result.ok, summary=summary)
    return LedgerCheck(records=result.records, head=result.head, ok=result.ok,
                       broken_seq=result.broken_seq, reason=result.reason,
                       open_intents=len(ledger.open_intents()), checkpoints=checkpoints)


# -- the report ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    """Everything the page shows."""

    window: Window
    generated_at: datetime
    schedule: RetentionSchedule
    facts: LedgerFacts
    check: LedgerCheck
    holds: tuple[HoldView, ...]
    """Every hold known at the end of the period: active, expired and released."""
    rule_order: tuple[str, ...]
    actions: Mapping[str, str]
    """Each rule's action as the policy set states it now."""


def build_report(ledger: AuditLedger, policies: PolicySet, window: Window, *,
                 state_holds: Sequence[StateHold] = (), now: datetime | None = None,
                 auditor: EvidenceAuditor | None = None) -> Report:
    """Read the ledger (one pass, then verification) and the policies into a report."""
    generated = now or datetime.now(tz=UTC)
    as_of = min(generated, window.until) if window.until else generated
    schedule = build_schedule(policies, as_of=as_of, state_holds=state_holds)
    facts = collect(ledger, window)
    check = check_ledger(ledger, auditor)
    holds = [hold_view(h, source="policy", active=h.active(as_of)) for h in policies.holds]
    holds += [state_hold_view(s, active=s.active(as_of)) for s in state_holds]
    order = [r.id for r in policies.rules]
    order += [rule for rule in facts.rules if rule not in order]
    actions = {r.id: r.action.type for r in policies.rules}
    return Report(window, generated, schedule, facts, check, tuple(holds), tuple(order), actions)


def render_report(report: Report) -> str:
    """The report as one self-contained HTML page."""
    sections = [_header(report), _glance(report), _schedule(report), _acted(report),
                _kept_back(report), _holds(report), _quarantine(report), _incidents(report),
                _verification(report), _method()]
    return page(title=f"Retention review report, {_period(report.window)}",
                body="\n".join(sections))


def _period(window: Window) -> str:
    since = window.since.strftime("%Y-%m-%d") if window.since else "the beginning of the ledger"
    if window.until is None:
        return f"{since} to now"
    return f"{since} to {window.until.strftime('%Y-%m-%d %H:%M')} UTC (exclusive)"


def _header(report: Report) -> str:
    facts = report.facts
    digests = ", ".join(f"<code>{esc(d)}</code> ({n} runs)"
                        for d, n in facts.policy_sets.most_common()) or "no runs"
    return (
        "<header><h1>Retention review report</h1>"
        '<p class="lead">What retentiond did with personal data in the period, as its audit '
        "ledger records it, and whether that ledger is intact.</p>"
        '<dl class="facts">'
        f"<dt>Period</dt><dd>{esc(_period(report.window))}</dd>"
        f"<dt>Generated</dt><dd>{esc(_stamp(report.generated_at.isoformat()))}</dd>"
        f"<dt>Policy set in force</dt><dd><code>{esc(report.schedule.policy_set)}</code></dd>"
        f"<dt>Policy sets of the period's runs</dt><dd>{digests}</dd>"
        f"<dt>Ledger records in the period</dt><dd>{number(facts.records)}"
        f"{_span(facts.first_at, facts.last_at)}</dd>"
        "</dl></header>")


def _span(first: str | None, last: str | None) -> str:
    if first is None or last is None:
        return ""
    return f" (from {esc(_stamp(first))} to {esc(_stamp(last))})"


def _glance(report: Report) -> str:
    facts = report.facts
    problems = facts.incident_count
    active = sum(1 for h in report.holds if h.active)
    cards = [
        ("records acted on", number(sum(t.total for t in facts.rules.values())), ""),
        ("rule runs", number(sum(t.runs for t in facts.rules.values())), ""),
        ("problems", number(problems), "bad" if problems else "ok"),
        ("legal holds in force", number(active), ""),
        ("quarantine batches open", number(len(facts.quarantine.open)), ""),
        ("ledger", "intact" if report.check.ok else "BROKEN",
         "ok" if report.check.ok else "bad"),
    ]
    items = "".join(
        f'<div class="card"><div class="figure">'
        f"{badge(figure, kind) if kind else esc(figure)}</div>"
        f'<div class="label">{esc(label)}</div></div>' for label, figure, kind in cards)
    return f'<section id="glance"><h2>At a glance</h2><div class="cards">{items}</div></section>'


def _schedule(report: Report) -> str:
    return ('<section id="schedule"><h2>Retention schedule in force</h2>'
            '<p class="note">Each rule\'s promise in its own words, the period and what happens '
            f"then; as of {esc(_stamp(report.schedule.as_of.isoformat()))}.</p>"
            f"{schedule_section(report.schedule, level=3)}</section>")


def _series(actions: Sequence[Counter[str]]) -> list[str]:
    seen = {a for counter in actions for a, n in counter.items() if n}
    known = [a for a in ACTION_COLOURS if a in seen]
    return known + sorted(seen - set(known))


def _acted(report: Report) -> str:
    facts = report.facts
    tallies = [facts.rules.get(rule) or RuleTally(rule) for rule in report.rule_order]
    series = _series([t.acted for t in tallies] + list(facts.months.values())) or ["delete"]
    parts = ['<section id="acted"><h2>Records acted on</h2>',
             '<p class="note">Counted from the applied batch outcomes in the ledger.</p>',
             "<h3>Per rule</h3>", legend(series),
             "<figure>" + bar_chart([(t.rule, t.acted) for t in tallies], series,
                                    title="Records acted on per rule, by action")
             + "<figcaption>Records acted on per rule, by action.</figcaption></figure>",
             _rule_table(tallies, report), "<h3>Per month</h3>"]
    months = _month_range(sorted(facts.months))
    if months:
        columns = [(m, facts.months.get(m, Counter())) for m in months]
        parts += [legend(series), "<figure>"
                  + column_chart(columns, series, title="Records acted on per month, by action")
                  + "<figcaption>Records acted on per month (UTC), by action.</figcaption>"
                  "</figure>", _month_table(columns, series)]
    else:
        parts.append("<p>No records were acted on in this period.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def _rule_table(tallies: Sequence[RuleTally], report: Report) -> str:
    known = {rule.id for t in report.schedule.tables for rule in t.rules}
    rows = []
    for t in tallies:
        gone = "" if t.rule in known else ' <span class="badge off">not in the policy set</span>'
        actions = ", ".join(sorted(t.acted)) or report.actions.get(t.rule, "-")
        rows.append(row([
            cell(f"<code>{esc(t.rule)}</code>{gone}"), cell(esc(actions)),
            cell(number(t.total), numeric=True, data={"data-rule": t.rule, "data-count": t.total}),
            cell(number(t.reached), numeric=True), cell(number(t.batches), numeric=True),
            cell(number(t.runs), numeric=True), cell(number(t.failed), numeric=True),
            cell(number(t.brake_stops), numeric=True), cell(number(t.overrides), numeric=True),
        ]))
    rows.append(row([
        cell("All rules"), cell(""),
        cell(number(sum(t.total for t in tallies)), numeric=True,
             data={"data-total": sum(t.total for t in tallies)}),
        *(cell(number(sum(getattr(t, name) for t in tallies)), numeric=True)
          for name in ("reached", "batches", "runs", "failed", "brake_stops", "overrides")),
    ], css="total"))
    return table(["Rule", "Action", "Acted on", "Reached via foreign keys", "Batches", "Runs",
                  "Failed runs", "Brake stops", "Brake overrides"], rows, numeric_from=2,
                 css="per-rule")


def _month_range(months: Sequence[str]) -> list[str]:
    """Every month from the first to the last of ``months`` (YYYY-MM), gaps filled."""
    if not months:
        return []

    def index(label: str) -> int:
        year, month = label.split("-")
        return int(year) * 12 + int(month) - 1

    return [f"{i // 12:04d}-{i % 12 + 1:02d}"
            for i in range(index(months[0]), index(months[-1]) + 1)]


def _month_table(columns: Sequence[tuple[str, Counter[str]]], series: Sequence[str]) -> str:
    rows = []
    for month, counts in columns:
        cells = [cell(esc(month))]
        cells += [cell(number(counts.get(a, 0)), numeric=True,
                       data={"data-month": month, "data-action": a,
                             "data-count": counts.get(a, 0)}) for a in series]
        cells.append(cell(number(sum(counts.values())), numeric=True))
        rows.append(row(cells))
    return table(["Month", *series, "All actions"], rows, numeric_from=1, css="per-month")


def _kept_back(report: Report) -> str:
    rows = []
    for rule in report.rule_order:
        tally = report.facts.rules.get(rule)
        if tally is None or tally.census is None:
            rows.append(row([cell(f"<code>{esc(rule)}</code>"),
                             cell("no run in this period", data={"colspan": 7})]))
            continue
        c = tally.census
        rows.append(row(
            [cell(f"<code>{esc(rule)}</code>"), cell(_when(tally.census_at))]
            + [cell(number(int(c.get(k, 0))), numeric=True,
                    data={"data-rule": rule, f"data-{k.replace('_', '-')}": int(c.get(k, 0))})
               for k in ("matched", "held", "protected", "blocked", "null_age", "eligible")]))
    return ('<section id="kept"><h2>Records kept back</h2><p class="note">As the latest run of '
            "each rule in the period counted them. Held: under a legal hold. Retained: under a "
            "minimum retention. Blocked: children that refuse the action. No date: the age "
            "column is empty, so the record is never selected.</p>"
            + table(["Rule", "Latest run", "Due by age", "Held", "Retained", "Blocked",
                     "No date", "Acted on then"], rows, numeric_from=2) + "</section>")


def _holds(report: Report) -> str:
    kept = report.facts.kept_by()
    rows = []
    for hold in report.holds:
        status = badge("in force", "warn") if hold.active else badge(
            "released" if hold.released_at else "expired", "off")
        rows.append(row([
            cell(f"<code>{esc(hold.id)}</code>"), cell(esc(hold.case or "")),
            cell(f"<code>{esc(hold.scope)}</code>"), cell(esc(hold.reason)),
            cell(esc(hold.applies_to)),
            cell("policy file" if hold.source == "policy" else "placed at run time"),
            cell(status), cell(_when(hold.expires, "-")),
            cell(number(kept.get(hold.id, 0)), numeric=True, data={"data-hold": hold.id}),
        ]))
    parts = ['<section id="holds"><h2>Legal holds</h2>',
             '<p class="note">Holds beat every rule. "Kept at the latest run": records of the '
             "hold's table that the latest run of a rule on it did not touch because of this "
             "hold.</p>",
             table(["Hold", "Case", "Table", "Reason", "Applies to", "Source", "Status",
                    "Expires", "Kept at the latest run"], rows, numeric_from=8)
             if rows else "<p>No legal holds are declared.</p>"]
    events = report.facts.hold_events
    if events:
        parts.append(table(["Record", "At", "Event", "Hold", "Details"], [
            row([cell(str(e.seq)), cell(_when(e.at)), cell(esc(e.event)),
                 cell(f"<code>{esc(e.hold)}</code>"), cell(esc(e.details))]) for e in events],
            caption="Holds placed and released in the period"))
        parts.append(_more(report.facts.hold_event_count, len(events), "hold events"))
    parts.append("</section>")
    return "\n".join(parts)


def _quarantine(report: Report) -> str:
    q = report.facts.quarantine
    rules = sorted({rule for rule, _ in q.rows} | {b.rule for b in q.open.values()})
    rows = []
    for rule in rules:
        open_rows = sum(b.rows for b in q.open.values() if b.rule == rule)
        open_batches = sum(1 for b in q.open.values() if b.rule == rule)
        cells = [cell(f"<code>{esc(rule)}</code>")]
        for op in ("quarantine", "restore", "purge"):
            cells += [cell(number(q.batches[rule, op]), numeric=True),
                      cell(number(q.rows[rule, op]), numeric=True,
                           data={"data-rule": rule, "data-quarantine": op,
                                 "data-rows": q.rows[rule, op]})]
        cells += [cell(number(open_batches), numeric=True), cell(number(open_rows), numeric=True)]
        rows.append(row(cells))
    parts = ['<section id="quarantine"><h2>Quarantine</h2>',
             '<p class="note">Records isolated from all processing until their release date, '
             "then purged for good, unless restored. Open: still in quarantine at the end of "
             "the period.</p>"]
    if not rows:
        parts.append("<p>Nothing was quarantined.</p></section>")
        return "\n".join(parts)
    parts.append(table(["Rule", "Batches quarantined", "Records quarantined",
                        "Batches restored", "Records restored", "Batches purged",
                        "Records purged", "Batches open", "Records open"], rows,
                       numeric_from=1))
    if q.open:
        parts.append(_batch_table(sorted(q.open.values(), key=lambda b: b.release_at or "")
                                  [:LISTED], "Batches open at the end of the period", report))
        parts.append(_more(len(q.open), min(len(q.open), LISTED), "open batches"))
    else:
        parts.append("<p>No batch was in quarantine at the end of the period.</p>")
    if q.closed:
        parts.append(_batch_table(q.closed, "Batches restored or purged in the period", report))
        parts.append(_more(q.closed_count, len(q.closed), "closed batches"))
    parts.append("</section>")
    return "\n".join(parts)


def _batch_table(batches: Sequence[QuarantinedBatch], caption: str, report: Report) -> str:
    end = (report.window.until or report.generated_at).isoformat()
    rows = []
    for b in batches:
        due = (b.state == "open" and b.release_at is not None and b.release_at <= end)
        state = badge("due for purge", "warn") if due else esc(b.state)
        rows.append(row([
            cell(f"<code>{esc(b.batch_id)}</code>"), cell(f"<code>{esc(b.rule)}</code>"),
            cell(esc(b.table)), cell(number(b.rows), numeric=True),
            cell(_when(b.quarantined_at, "before the period")),
            cell(_when(b.release_at)), cell(state),
            cell(_when(b.closed_at)),
        ]))
    return table(["Batch", "Rule", "Table", "Records", "Quarantined", "Release date", "State",
                  "Closed"], rows, caption=caption)


def _incidents(report: Report) -> str:
    facts = report.facts
    parts = ['<section id="problems"><h2>Problems: errors, brakes, batches not applied</h2>']
    if not facts.incidents:
        parts.append(f"<p>{badge('none', 'ok')} No run failed or stopped, no brake held a "
                     "rule back, every batch was applied.</p></section>")
        return "\n".join(parts)
    parts.append(table(["Record", "At", "Rule", "What", "Details"], [
        row([cell(str(i.seq)), cell(_when(i.at)), cell(f"<code>{esc(i.rule or '-')}</code>"),
             cell(esc(i.what)), cell(esc(i.details))], data={"data-incident": i.what})
        for i in facts.incidents]))
    parts.append(_more(facts.incident_count, len(facts.incidents), "problems"))
    parts.append("</section>")
    return "\n".join(parts)


def _verification(report: Report) -> str:
    check = report.check
    facts = report.facts
    if check.ok:
        chain = (f"{badge('intact', 'ok')} All {number(check.records)} records check out; "
                 f"chain head <code>{esc(check.head)}</code>.")
    else:
        chain = (f"{badge('BROKEN', 'bad')} Record {esc(check.broken_seq or '-')}: "
                 f"{esc(check.reason or '')} ({number(check.records)} records read).")
    if check.checkpoints is None:
        seen = (f"{number(facts.checkpoints)} checkpoint record(s) in the period"
                + (f", the latest at record {facts.last_checkpoint_seq}"
                   if facts.last_checkpoint_seq else ""))
        signed = f"{badge('not checked', 'off')} Signatures were not verified here ({seen})."
    else:
        verdict = ("ok", "ok") if check.checkpoints.ok else ("failed", "bad")
        signed = f"{badge(*verdict)} {esc(check.checkpoints.summary)}"
    intents = ("" if not check.open_intents else
               f"<dt>Open intents</dt><dd>{number(check.open_intents)} batch intent(s) without "
               "an outcome; the next run settles them from the stores' markers.</dd>")
    return ('<section id="verification"><h2>Ledger verification</h2>'
            '<p class="note">Every record\'s hash and the chain through all of them, recomputed '
            "over the whole ledger, not only the period.</p>"
            f'<dl class="facts"><dt>Hash chain</dt><dd data-ledger-ok="{str(check.ok).lower()}">'
            f"{chain}</dd><dt>Checkpoints</dt><dd>{signed}</dd>{intents}</dl></section>")


def _method() -> str:
    return ('<section id="method"><h2>How these figures were made</h2><p class="note">'
            "Acted on: the <code>count</code> of every <code>batch.outcome</code> record with "
            "status <code>applied</code>, per rule and action, and per month of its "
            "<code>at</code> (UTC); restores and purges of quarantine batches are counted under "
            "Quarantine only. Kept back: the census in the latest <code>run.start</code> record "
            "of each rule. Problems: <code>run.end</code> records that failed or stopped, "
            "<code>brake.stopped</code> and <code>brake.override</code> records, and outcomes "
            "not applied. <code>retentiond audit summary</code> gives the same per-rule totals "
            "over the whole ledger.</p></section>")


def _more(total: int, shown: int, what: str) -> str:
    if total <= shown:
        return ""
    return f'<p class="note">{number(total - shown)} more {esc(what)} not listed.</p>'


def _details(body: Mapping[str, Any], keys: Sequence[str]) -> str:
    chosen = keys or [k for k in body if k not in {"keys", "status"}]
    return "; ".join(f"{k}: {body[k]}" for k in chosen if body.get(k) not in {None, ""})


def _utc(text: str) -> datetime:
    """A ledger timestamp as an aware UTC datetime (one without an offset is taken as UTC)."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _when(text: str | None, absent: str = "") -> str:
    """A timestamp cell's content: a ``<time>`` element, or ``absent`` in words."""
    if not text:
        return esc(absent)
    return f'<time datetime="{esc(text)}">{esc(_stamp(text))}</time>'


def _stamp(text: str) -> str:
    """A timestamp as a reviewer reads it: ``2026-03-15 09:30 UTC`` (dates stay dates)."""
    if len(text) <= len("YYYY-MM-DD"):
        return text
    try:
        return _utc(text).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return text
