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
``run.start``, ``run.end`` and ``certificate`` by run id
    the runs, each with its rules' outcomes and the ledger record of its certificate.

Memory stays bounded: the tallies grow with rules and months, not with records, and the
lists (problems, batches, hold events) keep at most :data:`LISTED` entries each and count
the rest.  Only open quarantine batches are all kept, to tell which are still open.

This module gathers the facts, as plain dataclasses; the page is ``templates/report.html.j2``
(see :mod:`retentiond.publish.template`), which :func:`render_report` fills in with them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retentiond.ledger.chain import AuditLedger, Kind, Record
from retentiond.policy.model import PolicySet
from retentiond.publish import template
from retentiond.publish.charts import bar_chart, column_chart
from retentiond.publish.schedule import (
    HoldView,
    RetentionSchedule,
    StateHold,
    build_schedule,
    hold_view,
    state_hold_view,
)
from retentiond.publish.template import colour, colour_order, number

if TYPE_CHECKING:
    from retentiond.ledger.evidence import EvidenceAuditor
    from retentiond.publish.coverage import Coverage

LISTED = 500
"""At most this many problems, batches and hold events are listed; the rest are counted."""
RUN_KINDS = frozenset({Kind.RUN_START, Kind.RUN_END, Kind.CERTIFICATE})
"""The records that make up a run in the report's list of runs."""
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

    def describe(self) -> str:
        """The period in words: ``2026-01-01 to 2026-02-01 00:00 UTC (exclusive)``."""
        since = self.since.strftime("%Y-%m-%d") if self.since else "the beginning of the ledger"
        if self.until is None:
            return f"{since} to now"
        return f"{since} to {self.until.strftime('%Y-%m-%d %H:%M')} UTC (exclusive)"


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
    restored_by: str | None = None
    """Who restored it (restores recorded before issue 15 did not say: None)."""
    restore_reason: str | None = None
    exempt_until: str | None = None
    """Until when the restored rows are exempt from the rule that quarantined them."""


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
class QuarantinedByRule:
    """One rule's line of the quarantine section: per operation, batches and rows; what is open."""

    rule: str
    batches: Mapping[str, int]
    """quarantine|restore|purge -> batches."""
    rows: Mapping[str, int]
    """quarantine|restore|purge -> rows."""
    open_batches: int
    open_rows: int


@dataclass(frozen=True)
class Incident:
    """Something a reviewer must see: a failed or stopped run, a brake, a batch not applied."""

    seq: int
    at: str
    rule: str | None
    what: str
    details: str


@dataclass
class RunSeen:
    """One run (``run --once`` or one daemon job) and its disposition certificate."""

    run_id: str
    started_at: str | None = None
    """The first rule's ``run.start``; None when the run began before the period."""
    ended_at: str | None = None
    rules: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    """The rules' ``run.end`` statuses: done, failed, stopped."""
    certificate_seq: int | None = None
    certificate_hash: str | None = None
    signed_by: str | None = None
    """The origin whose key signed the certificate; None when it is not signed."""

    def outcome(self) -> str:
        """The rules' outcomes in words: ``2 done, 1 failed``; ``running`` before any ends."""
        return ", ".join(f"{n} {status}" for status, n in sorted(self.outcomes.items())) or (
            "no end recorded")


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
    runs: dict[str, RunSeen] = field(default_factory=dict)
    """The first LISTED runs of the period, in the order they started."""
    runs_unlisted: int = 0
    """Runs past the first LISTED, counted by their certificates."""

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
        if entry.run_id is not None and entry.kind in RUN_KINDS:
            self._run_seen(record, entry.run_id)
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
            error, kind = entry.body.get("error"), entry.body.get("error_class")
            late = entry.body.get("happened_at")
            self._incident(record, f"run {status}",
                           (f"{kind}: " if kind else "") + str(error or "stop requested")
                           + (f" (at {late}; written once the ledger could be)" if late else ""))

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

    def _run_seen(self, record: Record, run_id: str) -> None:
        """A run's start, end or certificate (runs past the first LISTED are only counted)."""
        runs = self.facts.runs
        entry = record.entry
        run = runs.get(run_id)
        if run is None:
            if len(runs) >= LISTED:
                self.facts.runs_unlisted += entry.kind is Kind.CERTIFICATE
                return
            run = runs[run_id] = RunSeen(run_id)
        if entry.kind is Kind.RUN_START:
            run.started_at = run.started_at or record.at
            if entry.rule is not None:
                run.rules.append(entry.rule)
        elif entry.kind is Kind.RUN_END:
            run.outcomes[str(entry.body.get("status") or "?")] += 1
            run.ended_at = record.at
        elif entry.kind is Kind.CERTIFICATE:
            run.certificate_seq, run.certificate_hash = record.seq, record.record_hash
            run.signed_by = (str(entry.body.get("signed_by"))
                             if entry.body.get("signature") else None)

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
            if op == "restore":
                body = entry.body
                closed.restored_by, closed.restore_reason, closed.exempt_until = (
                    body.get("by"), body.get("reason"), body.get("until"))
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
    coverage: Coverage | None = None
    """The personal columns of the live stores and what covers them; None when not read."""
    unread: tuple[str, ...] = ()
    """Stores whose tables could not be read for :attr:`coverage`."""

    def tallies(self) -> list[RuleTally]:
        """Each rule's tally in :attr:`rule_order`; an empty one for a rule the period never saw."""
        return [self.facts.rules.get(rule) or RuleTally(rule) for rule in self.rule_order]

    def in_policy(self, rule: str) -> bool:
        """Whether ``rule`` is in the policy set in force (not a rule since removed)."""
        return any(r.id == rule for table in self.schedule.tables for r in table.rules)

    def actions_of(self, tally: RuleTally) -> str:
        """The actions a rule took in the period; else its action in the policy set, or ``-``."""
        return ", ".join(sorted(tally.acted)) or self.actions.get(tally.rule, "-")

    def months(self) -> list[tuple[str, Counter[str]]]:
        """Records acted on by action, for every month from the first to the last (gaps too)."""
        months = _month_range(sorted(self.facts.months))
        return [(m, self.facts.months.get(m, Counter())) for m in months]

    def quarantined(self) -> list[QuarantinedByRule]:
        """The quarantine section's lines: each rule that quarantined, restored or purged."""
        q = self.facts.quarantine
        rules = sorted({rule for rule, _ in q.rows} | {b.rule for b in q.open.values()})
        ops = ("quarantine", "restore", "purge")
        return [QuarantinedByRule(
            rule, {op: q.batches[rule, op] for op in ops}, {op: q.rows[rule, op] for op in ops},
            sum(1 for b in q.open.values() if b.rule == rule),
            sum(b.rows for b in q.open.values() if b.rule == rule)) for rule in rules]

    def open_batches(self) -> list[QuarantinedBatch]:
        """Batches still in quarantine at the end of the period, next release first (LISTED)."""
        return sorted(self.facts.quarantine.open.values(),
                      key=lambda b: b.release_at or "")[:LISTED]

    def restores(self) -> list[QuarantinedBatch]:
        """Batches restored in the period (LISTED), with who restored them, why and until."""
        return [b for b in self.facts.quarantine.closed if b.state == "restored"]

    def due(self, batch: QuarantinedBatch) -> bool:
        """Whether an open batch's release date had passed at the end of the period."""
        end = (self.window.until or self.generated_at).isoformat()
        return batch.state == "open" and batch.release_at is not None and batch.release_at <= end


def build_report(ledger: AuditLedger, policies: PolicySet, window: Window, *,
                 state_holds: Sequence[StateHold] = (), now: datetime | None = None,
                 auditor: EvidenceAuditor | None = None, coverage: Coverage | None = None,
                 unread: Sequence[str] = ()) -> Report:
    """Read the ledger (one pass, then verification) and the policies into a report.

    ``coverage``: the personal columns of the live stores (:mod:`retentiond.publish.coverage`),
    with ``unread`` the stores that could not be read for it.
    """
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
    return Report(window, generated, schedule, facts, check, tuple(holds), tuple(order), actions,
                  coverage, tuple(unread))


def render_report(report: Report) -> str:
    """The report as one self-contained HTML page (``templates/report.html.j2``)."""
    tallies = report.tallies()
    months = report.months()
    acted = [*(t.acted for t in tallies), *(counts for _, counts in months)]
    series = colour_order(a for counts in acted for a, n in counts.items() if n) or ["delete"]
    return template.render(
        "report.html.j2", report=report, tallies=tallies, months=months, series=series,
        colours={name: colour(name) for name in series},
        per_rule=bar_chart([(t.rule, t.acted) for t in tallies], series),
        per_month=column_chart(months, series))


def _month_range(months: Sequence[str]) -> list[str]:
    """Every month from the first to the last of ``months`` (YYYY-MM), gaps filled."""
    if not months:
        return []

    def index(label: str) -> int:
        year, month = label.split("-")
        return int(year) * 12 + int(month) - 1

    return [f"{i // 12:04d}-{i % 12 + 1:02d}"
            for i in range(index(months[0]), index(months[-1]) + 1)]


def _details(body: Mapping[str, Any], keys: Sequence[str]) -> str:
    chosen = keys or [k for k in body if k not in {"keys", "status"}]
    return "; ".join(f"{k}: {body[k]}" for k in chosen if body.get(k) not in {None, ""})


def _utc(text: str) -> datetime:
    """A ledger timestamp as an aware UTC datetime (one without an offset is taken as UTC)."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
