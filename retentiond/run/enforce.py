"""Enforce one rule: brakes first, then short batches, each one audited before and after.

Per batch, in this order (write-ahead intent):

1. claim the next eligible rows in a store transaction (locked, walking the primary key);
2. commit an ``intent`` record to the ledger: how many rows, a keyed digest of their keys;
3. act on them and write a marker row (batch id, what was done) in the same store transaction,
   then commit it;
4. commit an ``outcome`` record with the keys acted on.  It goes into the ledger in the same
   transaction as the next batch's intent (one commit a batch, not two), or on its own when
   the run ends, pauses or fails.

After the last batch of a run that acted and ran to its end, the store clears the old values
it still keeps (:meth:`Store.compact`: SQLite's WAL checkpoint always, the rule's ``compact``
when it asks), and a ``table.compacted`` record says how, when and how long it took.  A
compaction that fails is recorded and reported with the run; it undoes nothing.

A crash between 2 and 3 leaves an intent without a marker: the batch never happened.  A crash
between 3 and 4 leaves a marker: the batch happened, and the marker says what it did.
:func:`recover` settles both on the next start, so the ledger never misses an action and never
claims one that did not happen.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from retentiond import quarantine
from retentiond.actions import action_for
from retentiond.actions.base import Batch
from retentiond.errors import (
    ActionError,
    AuditError,
    LimitExceeded,
    RetentionError,
    StoreError,
    StoreUnavailable,
    redact,
)
from retentiond.ledger.chain import AuditLedger, Body, Entry, Kind, canonical
from retentiond.stores.base import Capability, reach_order

if TYPE_CHECKING:
    from retentiond.keyring import Keyring
    from retentiond.policy.model import Rule
    from retentiond.run.engine import Engine
    from retentiond.stores.base import Census, Key

log = structlog.get_logger("retentiond.run.enforce")

RETRIES = 4
"""Attempts per batch after a lock timeout or a lost connection, with doubling pauses."""


@dataclass
class RuleReport:
    """What one run of one rule did."""

    rule: str
    run_id: str
    status: str = "done"
    """``done``, ``stopped`` (a brake or a stop request) or ``failed``."""
    census: Census | None = None
    acted: int = 0
    reached: int = 0
    batches: int = 0
    error: str | None = None
    error_class: str | None = None
    """The class of the exception that ended the run (``StoreUnavailable``, ``AuditError``)."""
    counts: dict[str, int] = field(default_factory=dict)
    compacted: dict[str, Any] | None = None
    """The ``table.compacted`` record's body, when the store cleared old values after the run:
    ``status`` (``done``, ``partial`` or ``failed``), ``method``, ``tables``, ``seconds`` and,
    on failure, ``error``; with ``at``, the time of the record."""
    residue: str | None = None
    """What still keeps the old values of rows the run acted on, and until when (the store's
    :meth:`~Store.residue`, or what its compaction left); None when nothing does."""


@dataclass
class Options:
    """How a run behaves; the defaults are the safe ones."""

    allow_exceed: bool = False
    keyring: Keyring | None = None
    should_stop: Callable[[], bool] = lambda: False
    """Asked between batches: a graceful stop finishes the batch in flight, then ends the run."""
    sleep: Callable[[float], None] = time.sleep
    observe: Callable[[RuleReport], None] = lambda _report: None
    """Told the report so far once the rule is counted and allowed to act, then after every
    batch: what a terminal shows as progress.  It only reads; the run does not wait on it."""


class RuleRun:
    """One run of one rule, from brake check to the last outcome record."""

    def __init__(self, engine: Engine, ledger: AuditLedger, rule: Rule, *, as_of: datetime,
                 run_id: str, options: Options) -> None:
        self.engine = engine
        self.ledger = ledger
        self.rule = rule
        self.as_of = as_of
        self.options = options
        self.report = RuleReport(rule=rule.id, run_id=run_id)
        self.action = action_for(rule.action)
        self.log = log.bind(rule=rule.id, store=rule.store, table=rule.table, run=run_id)
        self._outcome: Entry | None = None
        """The last batch's outcome, not yet in the ledger (its marker is committed)."""
        self.ended = False
        """Whether the run's end was recorded (or kept for the ledger, if it was unwritable)."""
        self._touched: tuple[str, ...] = (rule.table,)
        """The tables the run may change: the rule's, and those its removals reach."""

    def entry(self, kind: Kind, body: Mapping[str, Any], batch_id: str | None = None) -> Entry:
        """A ledger entry about this rule and run."""
        return Entry(kind=kind, run_id=self.report.run_id, rule=self.rule.id,
                     rule_version=self.rule.version, store=self.rule.store,
                     table=self.rule.table, action=self.rule.action.type, batch_id=batch_id,
                     body=body)

    def __call__(self) -> RuleReport:
        """Run the rule; any error ends it, is recorded in ``run.end``, and is raised again.

        A RetentionError is an expected failure; anything else is a bug, recorded all the same
        (by its type only: its text may hold a value) so that no run ends unaudited.
        """
        try:
            self._start()
            self._batches()
            self._record_outcome()
            self._compact()
        except LimitExceeded as exc:
            self.report.status, self.report.error = "stopped", str(exc)
            self.report.error_class = type(exc).__name__
            self._finish()
            raise
        except Exception as exc:
            self._failed(exc)
            self._finish()
            raise
        self._finish()
        return self.report

    def unstarted(self, exc: Exception) -> None:
        """Record a run that could not start: failed, with the error and its class, in ``run.end``.

        Its lease could not be taken, the ledger could not be read to settle what a crash
        left, or the state database is away (then the record waits in the ledger's memory).
        """
        self._failed(exc)
        self.log.error("run.unstarted", error=self.report.error,
                       error_class=self.report.error_class)
        self._finish()

    def _failed(self, exc: Exception) -> None:
        """The report of a run ``exc`` ended: a RetentionError as it says, anything else a bug.

        A bug is told by its class only: its text may hold a value.
        """
        self.report.status, self.report.error_class = "failed", type(exc).__name__
        if isinstance(exc, RetentionError):
            self.report.error = redact(str(exc))
        else:
            self.report.error = f"internal error ({type(exc).__name__}): please report it"
            self.log.error("run.bug", error_class=type(exc).__name__, exc_info=exc)

    def _start(self) -> None:
        store = self.engine.stores.get(self.rule.store)
        store.forget(self.rule.table)  # a schema changed since validation must be seen
        self.report.residue = store.residue()
        prepared = self.engine.prepared(self.rule, as_of=self.as_of)  # SchemaChanged on drift
        with store.reader() as reader:
            census = reader.census(prepared.selection)
            reached = reader.reached(prepared.selection, prepared.reaches)
        self.report.census = census
        self._touched = (self.rule.table, *reach_order(prepared.reaches))
        brakes = self.engine.brakes(self.rule)
        self.ledger.append(self.entry(Kind.RUN_START, {
            "as_of": self.as_of.isoformat(), "cutoff": prepared.selection.bound.cutoff.aware,
            "policy_set": self.engine.policies.digest, "census": _census(census),
            **({"reach": [{"table": r.table, "effect": r.effect, "rows": r.rows,
                           "population": r.population} for r in reached]} if reached else {}),
            "limits": {"max_rows": brakes.max_rows, "max_percent": brakes.max_percent},
            "batch_size": self.engine.batch_size(self.rule)}))
        exceeded = brakes.check_all(self.rule.id, census, reached)
        if exceeded is not None:
            numbers: dict[str, Any] = {
                "limit": exceeded.limit, "allowed": exceeded.allowed,
                "selected": exceeded.selected, "population": exceeded.population,
                **({"table": exceeded.table} if exceeded.table else {})}
            if not self.options.allow_exceed:
                self.ledger.append(self.entry(Kind.STOPPED, numbers))
                self.log.warning("brake.stopped", **numbers)
                raise exceeded
            self.ledger.append(self.entry(Kind.OVERRIDE, numbers))
            self.log.warning("brake.overridden", **numbers)
        needs = self.action.needs  # moving to quarantine and remembering take tables of their own
        store.prepare(quarantine_of=[self.rule.table] if Capability.QUARANTINE in needs else [],
                      done_of=[self.rule.table] if Capability.REMEMBER in needs else [])
        self.options.observe(self.report)

    def _batches(self) -> None:
        after: Key | None = None
        size = self.engine.batch_size(self.rule)
        rate = self.rule.throttle
        while not self.options.should_stop():
            started = time.monotonic()
            done, after = self._batch_with_retries(after, size)
            if done == 0 and after is None:
                return
            if rate:
                self._record_outcome()
                self.options.sleep(max(0.0, done / rate - (time.monotonic() - started)))
        self.report.status = "stopped"
        self.log.info("run.stopping", reason="stop requested")

    def _batch_with_retries(self, after: Key | None, size: int) -> tuple[int, Key | None]:
        pause = 1.0
        for attempt in range(RETRIES + 1):
            try:
                return self._batch(after, size)
            except StoreUnavailable as exc:
                if attempt == RETRIES:
                    raise
                self.log.warning("batch.retry", attempt=attempt + 1, error=redact(str(exc)))
                self._record_outcome()
                self.options.sleep(pause)
                pause *= 2
        raise AssertionError  # pragma: no cover - the loop returns or raises

    def _batch(self, after: Key | None, size: int) -> tuple[int, Key | None]:
        """One batch; returns (rows acted on, last key claimed), (0, None) when none is left."""
        store = self.engine.stores.get(self.rule.store)
        prepared = self.engine.prepared(self.rule, as_of=self.as_of)  # holds re-read per batch
        batch_id = str(uuid.uuid4())
        announced = False
        try:
            # Rows that only go away need no lock while the intent is written: the act
            # re-checks them.  Cascades are counted at claim time, so those rows stay locked.
            unlocked = self.action.rechecks and not prepared.reaches
            with store.writer() as writer:
                rows = writer.claim(prepared.selection, after=after, limit=size,
                                    columns=self.action.touched_columns(), lock=not unlocked)
                if not rows:
                    return 0, None
                keys = [key for key, _ in rows]
                keys_text = canonical(keys)  # for the digest now, and the outcome after
                self._record_outcome(then=self.entry(Kind.INTENT, {
                    "count": len(keys), "keys_digest": self.ledger.key_digest(keys_text)},
                    batch_id))
                announced = True  # from here on, a failed act has an intent to settle
                batch = Batch(run_id=self.report.run_id, batch_id=batch_id, rule=self.rule.id,
                              table=prepared.table, rows=rows, as_of=self.as_of,
                              reaches=prepared.reaches, keyring=self.options.keyring,
                              recheck=prepared.selection if unlocked else None)
                # Encoded once: the marker carries the same text the outcome record hashes.
                applied = {"status": "applied", **self.action.apply(writer, batch)}
                body = Body(applied,
                            known={"keys": keys_text} if applied.get("keys") == keys else None)
                writer.mark(batch_id, self.report.run_id, self.rule.id, body.text)
        except (StoreError, AuditError, ActionError) as exc:
            if announced:
                self._settle(batch_id, exc)
            raise
        self._outcome = self.entry(Kind.OUTCOME, body, batch_id)
        acted = int(body.get("count", 0))
        self.report.acted += acted
        self.report.reached += int(body.get("reached_count", 0))
        self.report.batches += 1
        self.log.info("batch.applied", batch=batch_id, rows=acted)
        self.options.observe(self.report)
        return acted, keys[-1]

    def _compact(self) -> None:
        """Have the store clear the old values the run left (see the module docstring).

        Only after a run that acted and was not stopped: a stop request is answered without
        waiting for a table rewrite, and the next run compacts.  A store error is recorded
        and reported, not raised: the rows were acted on and audited all the same.
        """
        if self.report.acted == 0 or self.report.status != "done":
            return
        store = self.engine.stores.get(self.rule.store)
        started = time.monotonic()
        body: dict[str, Any]
        try:
            done = store.compact(self._touched, mode=self.rule.compact)
        except RetentionError as exc:
            body = {"status": "failed", "method": self.rule.compact,
                    "tables": list(self._touched), "error": redact(str(exc))}
            self.log.warning("compact.failed", error=body["error"])
        else:
            if done is None:
                return
            body = {"status": "done" if done.complete else "partial", "method": done.method,
                    "tables": list(done.tables)}
            self.report.residue = done.leaves
        body["seconds"] = round(time.monotonic() - started, 3)
        record = self.ledger.append(self.entry(Kind.COMPACTED, body))
        self.report.compacted = {**body, "at": record.at}  # when: the ledger's clock
        self.log.info("compact.end", **body)

    def _record_outcome(self, then: Entry | None = None) -> None:
        """Commit the last batch's outcome, if one waits, with ``then`` (an intent) after it.

        On failure both stay unwritten: the outcome keeps waiting (its marker would settle it
        on recovery), and the batch ``then`` announces does not act.
        """
        waiting = [self._outcome] if self._outcome is not None else []
        self.ledger.append_many([*waiting, *([then] if then is not None else [])])
        self._outcome = None

    def _settle(self, batch_id: str, exc: RetentionError) -> None:
        """Write the outcome of a batch that failed after its intent, as its marker tells.

        Even a failed COMMIT may have committed; only the marker knows.  Where neither the
        store nor the ledger answers, the intent stays open and :func:`recover` settles it.
        """
        reason = exc.what if isinstance(exc, StoreError) else redact(str(exc))
        try:
            payload = self.engine.stores.get(self.rule.store).find_mark(batch_id)
            body: dict[str, Any] = (
                {"status": "applied", **_loads(payload)} if payload is not None
                else {"status": "rolled back", "error": type(exc).__name__, "reason": reason})
            self.ledger.append(self.entry(Kind.OUTCOME, body, batch_id))
        except RetentionError:
            self.log.exception("audit.unsettled", batch=batch_id)

    def _finish(self) -> None:
        try:
            self._record_outcome()
        except AuditError:  # the batch's marker settles it on the next start
            self.log.exception("audit.outcome_unwritten")
        body: dict[str, Any] = {"status": self.report.status, "acted": self.report.acted,
                                "reached": self.report.reached, "batches": self.report.batches}
        if self.report.error:
            body["error"] = self.report.error
            body["error_class"] = self.report.error_class
        if self.report.compacted is not None:
            body["compacted"] = self.report.compacted["status"]
        entry = self.entry(Kind.RUN_END, body)
        self.ended = True
        try:
            self.ledger.append(entry)
        except AuditError as exc:  # the state database is away: written when it is back
            self.ledger.keep(entry)
            self.log.error("audit.run_end_kept", error=redact(str(exc)),
                           error_class=type(exc).__name__)
        level = {"done": "info", "stopped": "warning"}.get(self.report.status, "error")
        getattr(self.log, level)("run.end", **body)


def _census(census: Census) -> dict[str, Any]:
    return {"population": census.population, "matched": census.matched,
            "held": census.held, "protected": census.protected, "blocked": census.blocked,
            "done": census.done, "null_age": census.null_age, "eligible": census.eligible,
            "by_guard": dict(census.by_guard)}


def enforce(engine: Engine, ledger: AuditLedger, rule: Rule, *, as_of: datetime,
            run_id: str | None = None, options: Options | None = None) -> RuleReport:
    """Run ``rule`` once; see the module docstring for how each batch is audited."""
    run = RuleRun(engine, ledger, rule, as_of=as_of, run_id=run_id or str(uuid.uuid4()),
                  options=options or Options())
    return run()


def recover(engine: Engine, ledger: AuditLedger, *, rule: str | None = None) -> list[str]:
    """Settle every intent without an outcome from the batch markers; the batch ids settled.

    Run it before enforcing, per rule while holding the rule's lease: a marker means the
    batch committed (its outcome is taken from the marker); otherwise the store settles it as
    never applied, waiting for a COMMIT that may still be under way (``Store.find_mark``).  A
    store that cannot answer now leaves the intent open for the next attempt.
    """
    settled = []
    body: dict[str, Any]
    for intent in ledger.open_intents():
        entry = intent.entry
        if entry.store is None or entry.batch_id is None:
            continue
        if rule is not None and entry.rule != rule:
            continue
        along = None
        if entry.body.get("op") in {"restore", "purge"}:
            body = quarantine.settle(engine.stores, ledger, entry)
            along = quarantine.recovered_exemption(entry, body)  # a restore's stays exempt
        else:
            try:
                payload = engine.stores.get(entry.store).find_mark(entry.batch_id)
            except StoreError as exc:
                log.warning("batch.unsettled", batch=entry.batch_id, error=redact(str(exc)))
                continue
            body = ({"status": "applied", "recovered": True, **_loads(payload)}
                    if payload is not None else {"status": "not applied", "recovered": True})
        ledger.append(Entry(kind=Kind.OUTCOME, run_id=entry.run_id, rule=entry.rule,
                            rule_version=entry.rule_version, store=entry.store,
                            table=entry.table, action=entry.action, batch_id=entry.batch_id,
                            body=body), along=along)
        settled.append(entry.batch_id)
        log.info("batch.recovered", batch=entry.batch_id, status=body["status"])
    return settled


def _loads(payload: str) -> dict[str, Any]:
    loaded = json.loads(payload)
    return loaded if isinstance(loaded, dict) else {"payload": loaded}
