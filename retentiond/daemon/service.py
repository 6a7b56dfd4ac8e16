"""The daemon: every rule on its schedule, for years, under systemd.

Signals are turned into flags that the main loop handles between its ticks (see
:class:`Signals` for why a handler does nothing more):

- ``SIGHUP`` loads and validates settings and policies anew; a valid set replaces the old one
  between jobs (a running rule finishes with the set it started with); an invalid set is
  rejected with its problems in the log and the old set keeps running.
- ``SIGTERM`` / ``SIGINT`` stop gracefully: each running rule finishes (commits or rolls back)
  its batch in flight, writes its outcome, and the process exits 0.

The main loop pings the systemd watchdog, so a hung daemon is restarted.  A rule's error is
logged and audited and the others carry on; an unreachable store is retried with backoff.

Every decision about time (what is due at start, whether the run window is open, when to try
again, the time a run is as of) reads the setup's clock, never the wall clock: APScheduler
only fires the jobs, on real time.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import uuid
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from retentiond import quarantine
from retentiond.daemon.metrics import Metrics
from retentiond.daemon.notify import Notifier, watchdog_interval
from retentiond.daemon.triggers import missed, trigger_for
from retentiond.daemon.turns import QueueingExecutor, Turns
from retentiond.errors import PolicyError, RetentionError, StoreUnavailable, redact
from retentiond.ledger.chain import AuditLedger, Kind
from retentiond.ledger.evidence import Signer, write_checkpoint
from retentiond.ledger.state import StateDB
from retentiond.ledger.witness import witnesses_for
from retentiond.run.enforce import Options
from retentiond.run.entrance import Attempt, Enforcer
from retentiond.run.leases import Leases
from retentiond.run.runtime import Runtime, Setup

if TYPE_CHECKING:
    from collections.abc import Mapping

    from retentiond.policy.model import Rule

log = structlog.get_logger("retentiond.daemon.service")

TICK = 5.0
"""Seconds between main-loop ticks when systemd asks for no watchdog."""
MAX_BACKOFF = 3600.0
PURGE_JOB = "quarantine-purge"
RULES_EXECUTOR = "rules"
"""The executor of the rules' jobs: it queues each rule in its lane (see daemon/turns.py)."""
CHECKPOINT_JOB = "audit-checkpoint"


class Signals:
    """SIGTERM, SIGINT and SIGHUP noted as flags, waking the main loop through a pipe.

    A Python signal handler runs in the main thread between two bytecodes, possibly while
    that thread holds an ``Event``'s internal lock (inside ``Event.wait``); a handler that
    called ``Event.set()`` would then wait for that lock forever and the daemon would never
    stop.  So the handlers only set flags, the interpreter writes a byte to the wakeup pipe
    (``signal.set_wakeup_fd``), and the main loop, woken by it, acts on the flags.
    """

    def __init__(self) -> None:
        self.term = False
        self.hup = False
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._write)
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)

    def wait(self, timeout: float) -> None:
        """Until a signal arrives (or arrived since the last wait), at most ``timeout``."""
        select.select([self._read], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 512):
                pass

    def close(self) -> None:
        """Stop writing to the pipe, and close it."""
        signal.set_wakeup_fd(-1)
        os.close(self._read)
        os.close(self._write)

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self.hup = True

    def _on_term(self, _signum: int, _frame: FrameType | None) -> None:
        self.term = True


class Daemon:
    """Loads the policy set, schedules it, and keeps it running until told to stop.

    :meth:`run` is the process: :meth:`start`, :meth:`serve` until SIGTERM (reloading on
    SIGHUP), :meth:`stop`.  The policy set comes from ``setup`` (a reload reads the same
    files anew), and so does the clock.
    """

    def __init__(self, setup: Setup, *, run_now: bool = False,
                 notifier: Notifier | None = None) -> None:
        self._setup = setup
        self._clock = setup.clock
        self._run_now = run_now
        self._notifier = notifier or Notifier()
        self._stop = threading.Event()
        """Set by the main loop once SIGTERM arrives; workers check it between batches."""
        self._runtime: Runtime | None = None
        self._retired: list[Runtime] = []
        self._users: dict[int, int] = {}
        self._running: dict[str, str] = {}
        self._backoff: dict[str, float] = {}
        self._lock = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        self._ledger: AuditLedger | None = None
        self._leases: Leases | None = None
        self._state: StateDB | None = None
        self._metrics = Metrics()
        self._turns = Turns()

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        """Start, serve until SIGTERM, stop gracefully; the process exit code."""
        signals = Signals()
        try:
            self.start()
            try:
                self.serve(signals)
            finally:
                self.stop()
        finally:
            signals.close()
        return 0

    def start(self) -> None:
        """Load and validate the policy set, schedule it, start the scheduler: READY=1."""
        setup = self._setup
        runtime = setup.runtime()
        self._runtime = runtime
        self._state = setup.open_state()
        self._ledger = setup.ledger(self._state, signer=setup.signer())
        self._leases = setup.leases(self._state)
        daemon = runtime.settings.daemon
        if daemon.metrics_port is not None:
            self._metrics.last_runs = self._last_runs
            self._metrics.serve(daemon.metrics_port)
        workers = max(daemon.workers, len(runtime.policies.rules) + 1)
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers),
                       RULES_EXECUTOR: QueueingExecutor(workers, self._turns.queue)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": daemon.misfire_grace_seconds},
            timezone=UTC,
        )
        self._schedule(runtime, first=True)
        self._scheduler.start()
        self._notifier.ready(self._status())
        log.info("daemon.ready", rules=sum(rule.enabled for rule in runtime.policies.rules))

    def serve(self, signals: Signals) -> None:
        """Until SIGTERM: reload on SIGHUP, ping the watchdog, tell systemd what runs."""
        tick = watchdog_interval() or TICK
        while not signals.term:
            signals.wait(tick)
            if signals.term:
                break
            if signals.hup:
                signals.hup = False
                self.reload()
            self._notifier.watchdog()
            self._notifier.status(self._status())

    def stop(self) -> None:
        """Stop gracefully: running rules finish their batch in flight; close everything."""
        self._stop.set()  # running rules finish their batch in flight, then end
        self._notifier.stopping()
        log.info("daemon.stopping", running=sorted(self._running))
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)  # running rules see the stop between batches
        for runtime in [*self._retired, *([self._runtime] if self._runtime else [])]:
            runtime.close()
        if self._state is not None:
            self._state.close()
        self._metrics.close()
        log.info("daemon.stopped", **({"unwritten": len(self._ledger.kept)}
                                      if self._ledger is not None and self._ledger.kept else {}))

    def scheduled(self) -> dict[str, datetime | None]:
        """Each job by id (a rule's id, ``RULE:again`` for a retry), and when it fires next."""
        if self._scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def _pause(self, seconds: float) -> None:
        """Sleep between batches, but wake at once when asked to stop."""
        self._clock.wait(self._stop, seconds)

    def reload(self) -> None:
        """Load the files anew; a valid set replaces the old one, an invalid one is logged."""
        self._notifier.reloading()
        setup = self._setup.anew()
        try:
            fresh = setup.runtime()
            try:
                signer = setup.signer()
            except RetentionError:
                fresh.close()
                raise
        except PolicyError as exc:
            log.error("reload.rejected", problems=[str(p) for p in exc.problems])
            self._notifier.ready("reload rejected; the previous policies stay in force")
            return
        except RetentionError as exc:
            log.error("reload.rejected", problems=[redact(str(exc))])
            self._notifier.ready("reload rejected; the previous policies stay in force")
            return
        if self._state is not None:  # jobs running now keep the ledger they began with
            ledger = setup.ledger(self._state, signer=signer)
            if self._ledger is not None:  # with the records waiting for the state database
                ledger.take_kept(self._ledger)
            self._ledger = ledger
        with self._lock:
            old, self._runtime = self._runtime, fresh
            if old is not None:
                self._retire(old)
        self._schedule(fresh, first=False)
        log.info("reload.done", rules=sum(rule.enabled for rule in fresh.policies.rules))
        self._notifier.ready(self._status())

    # -- scheduling --------------------------------------------------------------------------

    def _schedule(self, runtime: Runtime, *, first: bool) -> None:
        scheduler, ledger = self._scheduler, self._ledger
        if scheduler is None or ledger is None:
            raise RuntimeError("the daemon is not started")
        self._turns.arrange(runtime.policies.rules)
        wanted = {rule.id for rule in runtime.policies.rules if rule.enabled}
        for job in scheduler.get_jobs():
            if job.id not in {PURGE_JOB, CHECKPOINT_JOB} and job.id.split(":")[0] not in wanted:
                job.remove()
        now = self._clock.now()
        anchor = datetime.now(UTC)  # APScheduler's own time: rules of one period fire at once
        for rule in runtime.policies.rules:
            if not rule.enabled:
                continue
            trigger = trigger_for(rule, runtime.settings.defaults, anchor=anchor)
            last = ledger.latest(Kind.RUN_START, rule.id)
            catch_up = first and (self._run_now or missed(
                trigger, datetime.fromisoformat(last.at) if last else None, now))
            options = {"next_run_time": now} if catch_up else {}
            scheduler.add_job(self._take_turn, trigger, args=[rule.id], id=rule.id,
                              name=rule.id, executor=RULES_EXECUTOR, replace_existing=True,
                              **options)
        purge = CronTrigger.from_crontab(runtime.settings.daemon.purge_schedule, timezone=UTC)
        scheduler.add_job(self._purge_in_turn, purge, id=PURGE_JOB, name=PURGE_JOB,
                          replace_existing=True)
        # Checkpoints a little more often than verification demands, even while idle.
        every = runtime.settings.audit.checkpoint_interval_seconds * 0.9
        scheduler.add_job(self._checkpoint, IntervalTrigger(seconds=every), id=CHECKPOINT_JOB,
                          name=CHECKPOINT_JOB, replace_existing=True,
                          **({"next_run_time": now} if first else {}))

    def _later(self, rule_id: str, when: datetime, why: str) -> None:
        if self._scheduler is not None and not self._stop.is_set():
            self._scheduler.add_job(self._take_turn, DateTrigger(when), args=[rule_id],
                                    id=f"{rule_id}:again", executor=RULES_EXECUTOR,
                                    replace_existing=True)
            log.info("rule.rescheduled", rule=rule_id, at=when.isoformat(), why=why)

    # -- jobs --------------------------------------------------------------------------------

    def _retire(self, runtime: Runtime) -> None:
        """Close a replaced runtime now, or when the last job using it ends (under the lock)."""
        if self._users.get(id(runtime), 0) == 0:
            runtime.close()
        else:
            self._retired.append(runtime)

    def _borrow(self) -> Runtime | None:
        with self._lock:
            runtime = self._runtime
            if runtime is not None:
                self._users[id(runtime)] = self._users.get(id(runtime), 0) + 1
            return runtime

    def _give_back(self, runtime: Runtime) -> None:
        with self._lock:
            self._users[id(runtime)] -= 1
            if self._users[id(runtime)] == 0 and runtime in self._retired:
                self._retired.remove(runtime)
                runtime.close()

    def _take_turn(self, rule_id: str) -> None:
        """Every rule's job: the rule's lane in turn, then the lane's first due rule in order.

        Rules due on the same tick on one store run one after another, in the declared order
        (:mod:`retentiond.daemon.turns`), not all at once in any order.
        """
        with self._turns.turn(rule_id, handed_over=self._handed_over) as chosen:
            if chosen is not None:
                self._run_rule(chosen)

    def _handed_over(self) -> None:
        """Return once the scheduler has handed every job of its current wake-up over.

        APScheduler 3.x hands over all jobs due on a wake-up while holding its job stores'
        lock, which ``get_jobs`` takes too.
        """
        if self._scheduler is not None:
            self._scheduler.get_jobs()

    def _run_rule(self, rule_id: str) -> None:
        runtime = self._borrow()
        if runtime is None:
            return
        try:
            self._run_rule_with(runtime, rule_id)
        finally:
            self._give_back(runtime)

    def _run_rule_with(self, runtime: Runtime, rule_id: str) -> None:
        if self._stop.is_set():
            return
        try:
            rule = runtime.policies.rule(rule_id)
        except KeyError:
            return  # removed by a reload since the job was queued
        window = runtime.settings.daemon.run_window
        slot = self._clock.now()
        if window is not None and not window.contains(slot):
            self._later(rule_id, window.next_start(slot), "outside the run window")
            return
        while not self._stop.is_set():
            if self._attempt(runtime, rule, slot):
                return
            if self._clock.wait(self._stop, runtime.settings.daemon.lease_retry_seconds):
                return

    def _attempt(self, runtime: Runtime, rule: Rule, slot: datetime) -> bool:
        """Run the rule if this replica gets its lease; whether it is settled for ``slot``."""
        ledger, leases = self._ledger, self._leases
        if ledger is None or leases is None:
            return True
        window = runtime.settings.daemon.run_window

        def should_stop() -> bool:
            return self._stop.is_set() or (window is not None
                                           and not window.contains(self._clock.now()))

        def settled() -> bool:  # another replica ran it to the end (or a brake stopped it)
            finished = ledger.latest(Kind.RUN_END, rule.id)
            return finished is not None and datetime.fromisoformat(finished.at) >= slot and (
                finished.entry.body.get("status") == "done"
                or finished.entry.body.get("error") is not None)

        enforcer = runtime.enforcer(ledger, leases, self._signer(runtime))
        run_id = str(uuid.uuid4())
        self._running[rule.id] = run_id
        started = self._clock.now()
        try:
            attempt = enforcer.run_rule(
                rule, run_id=run_id, as_of=started, settled=settled,
                options=Options(keyring=runtime.keyring, should_stop=should_stop,
                                sleep=self._pause))
        except Exception as exc:  # a bug: recorded in the run's end; counted, then raised
            self._metrics.failed(rule.id, type(exc).__name__)
            raise
        finally:
            self._running.pop(rule.id, None)
        if attempt.busy:
            log.info("rule.busy_elsewhere", rule=rule.id)
            return False
        if attempt.settled:
            log.info("rule.settled_elsewhere", rule=rule.id)
            return True
        self._attest(enforcer, run_id, attempt, started)
        self._after(runtime, attempt, started)
        return True

    def _after(self, runtime: Runtime, attempt: Attempt, started: datetime) -> None:
        """Metrics, and when to try again: a store away (backoff) or the run window closed."""
        rule, error, window = attempt.rule, attempt.error, runtime.settings.daemon.run_window
        if isinstance(error, StoreUnavailable):
            pause = min(self._backoff.get(rule.id, 30.0) * 2, MAX_BACKOFF)
            self._backoff[rule.id] = pause
            log.warning("rule.store_unavailable", rule=rule.id, error=redact(str(error)),
                        retry_in=pause)
            self._metrics.failed(rule.id, type(error).__name__)
            self._later(rule.id, self._clock.now() + timedelta(seconds=pause),
                        "store unavailable")
            return
        if error is not None:
            log.error("rule.failed", rule=rule.id, error=redact(str(error)),
                      error_class=type(error).__name__)
            self._metrics.failed(rule.id, type(error).__name__)
            return
        assert attempt.report is not None  # noqa: S101 - a run without error has its report
        self._backoff.pop(rule.id, None)
        now = self._clock.now()
        self._metrics.ran(rule, attempt.report, (now - started).total_seconds())
        if (attempt.report.status == "stopped" and window is not None
                and not self._stop.is_set()):
            self._later(rule.id, window.next_start(now), "run window closed")

    def _attest(self, enforcer: Enforcer, run_id: str, attempt: Attempt,
                started: datetime) -> None:
        """The run's certificate and a fresh checkpoint, whatever the run's outcome."""
        try:
            problems = enforcer.attest(run_id, [attempt], started=started)
        except RetentionError as exc:
            problems = [str(exc)]
        for problem in problems:
            log.error("audit.attest_failed", rule=attempt.rule.id, error=redact(problem))

    def _signer(self, runtime: Runtime) -> Signer | None:
        try:
            return runtime.setup.signer()
        except RetentionError as exc:
            log.error("audit.no_signer", error=redact(str(exc)))
            return None

    def _checkpoint(self) -> None:
        runtime, ledger, leases = self._runtime, self._ledger, self._leases
        if runtime is None or ledger is None or leases is None or self._stop.is_set():
            return
        try:  # what failed while the state database was away, now that it may be back
            if ledger.write_kept():
                log.info("audit.kept_written")
        except RetentionError as exc:
            log.error("audit.kept_unwritten", error=redact(str(exc)), kept=len(ledger.kept))
        signer = self._signer(runtime)
        if signer is None:
            return
        try:
            with leases.hold(CHECKPOINT_JOB) as taken:
                if taken:
                    write_checkpoint(ledger, signer, file=runtime.settings.audit.checkpoint_file,
                                     witnesses=witnesses_for(runtime.settings.audit))
        except RetentionError as exc:  # a broken lease included
            log.error("audit.checkpoint_failed", error=redact(str(exc)))

    def _purge_in_turn(self) -> None:
        """The purge job: it writes in every store, so no rule runs meanwhile."""
        with self._turns.every_lane():
            self._purge()

    def _purge(self) -> None:
        runtime, ledger, leases = self._runtime, self._ledger, self._leases
        if runtime is None or ledger is None or leases is None or self._stop.is_set():
            return
        try:
            with leases.hold(PURGE_JOB) as taken:
                if taken:  # every store: a batch outlives the rule that moved it
                    quarantine.purge_due(runtime.stores, ledger, now=self._clock.now())
        except RetentionError as exc:  # a broken lease included
            log.error("quarantine.purge_failed", error=redact(str(exc)))

    def _last_runs(self) -> dict[str, Mapping[str, Any]]:
        """Each scheduled rule's latest ``run.end`` body: one kept unwritten, else the ledger's."""
        runtime, ledger = self._runtime, self._ledger
        if runtime is None or ledger is None:
            return {}
        kept = {e.rule: e.body for e in ledger.kept if e.kind is Kind.RUN_END and e.rule}
        ends: dict[str, Mapping[str, Any]] = {}
        for rule in runtime.policies.rules:
            if rule.id in kept:
                ends[rule.id] = kept[rule.id]
            elif (end := ledger.latest(Kind.RUN_END, rule.id)) is not None:
                ends[rule.id] = end.entry.body
        return ends

    def _status(self) -> str:
        runtime = self._runtime
        count = sum(rule.enabled for rule in runtime.policies.rules) if runtime else 0
        running = sorted(self._running)
        if running:
            return f"running {', '.join(running)}; {count} rules scheduled"
        return f"idle; {count} rules scheduled"
