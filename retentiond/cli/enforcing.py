"""``run``: enforce the rules now (or, with --dry-run, exactly the plan)."""

from __future__ import annotations

import json
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import click
import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from retentiond import quarantine
from retentiond.cli.app import (
    EXIT_FINDINGS,
    EXIT_STOPPED,
    App,
    as_of_option,
    check_rule_ids,
    json_option,
    pass_app,
    rule_option,
)
from retentiond.cli.planning import show_plan
from retentiond.cli.render import Listing, stamp
from retentiond.errors import LimitExceeded, RetentionError, redact
from retentiond.logs import configure_logging
from retentiond.run.enforce import Options, RuleReport
from retentiond.run.entrance import Attempt
from retentiond.settings import LogFormat
from retentiond.stores.base import QuarantineBatch

log = structlog.get_logger("retentiond.cli.enforcing")


@click.command()
@click.option("--dry-run", is_flag=True, help="Only plan; exactly 'retentiond plan'.")
@click.option("--once", is_flag=True, help="Enforce every (or each --rule) rule once, now.")
@click.option("--allow-exceed", is_flag=True,
              help="Let a rule act beyond its max_rows / max_percent brake this once (audited).")
@rule_option
@as_of_option
@json_option
@pass_app
def run(app: App, rule_ids: tuple[str, ...], as_of: str | None, *, dry_run: bool, once: bool,
        allow_exceed: bool, as_json: bool) -> None:
    """Enforce the rules now; with --dry-run, show what would be done instead."""
    if dry_run:
        show_plan(app, rule_ids, as_of, as_json=as_json)
        return
    if not once:
        raise click.UsageError("say --once to enforce now, or --dry-run to see the plan "
                               "(the daemon enforces on schedule)")
    if as_of is not None:
        raise click.UsageError("--as-of only goes with --dry-run: enforcement uses the real time")
    settings = app.settings
    err = Console(stderr=True)
    shown = (not as_json and err.is_terminal and Console().is_terminal
             and settings.log_format is not LogFormat.JSON)
    try:
        with (_StopOnSignal() as stop,
              _Bars(err, shown=shown, relog=lambda: configure_logging(
                  settings.log_format, settings.log_level)) as bars):
            done = _enforce(app, rule_ids, allow_exceed=allow_exceed, stop=stop,
                            observe=bars.show)
    except RetentionError as exc:  # nothing ran (the state database away, bad input): say so
        log.error("run.refused", error=redact(str(exc)), error_class=type(exc).__name__)
        raise
    if as_json:
        click.echo(json.dumps(done.to_dict(stop.signal_name or None), indent=2))
    else:
        _print(done)
    for line in done.failures:
        click.echo(f"error: {line}", err=True)
    if stop.is_set():
        click.echo(f"stopped by {stop.signal_name}: the batch in flight was finished and "
                   "recorded; the rest is left for the next run", err=True)
        sys.exit(EXIT_STOPPED)
    if done.failures:
        sys.exit(EXIT_FINDINGS)


class _Bars(Progress):
    """On a terminal, a bar per rule: rows acted on of those eligible, and batches.

    Fed by the engine's ``observe`` callback (the engine reports, the CLI renders); shown on
    stderr only when both stdout and stderr are terminals, never in a pipe, with --json or
    where the logs are JSON for a machine.
    """

    def __init__(self, console: Console, *, shown: bool, relog: Callable[[], None]) -> None:
        super().__init__(TextColumn("{task.description}"), BarColumn(),
                         TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"),
                         TextColumn("{task.fields[batches]:,} batches"), console=console,
                         transient=True, disable=not shown)
        self._bars: dict[str, TaskID] = {}
        self._relog = relog
        """Sets logging up again on ``sys.stderr`` as it is now (see __enter__ and __exit__)."""

    def __enter__(self) -> Self:
        super().__enter__()
        if not self.disable:  # stderr is the bars' now: log lines are printed above them
            self._relog()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(None, None, None)
        if not self.disable:  # stderr is itself again
            self._relog()

    def show(self, report: RuleReport) -> None:
        """The rule's bar, as the report says so far."""
        total = report.census.eligible if report.census else 0
        if report.rule not in self._bars:
            self._bars[report.rule] = self.add_task(report.rule, total=total, batches=0)
        self.update(self._bars[report.rule], total=max(total, report.acted),
                    completed=report.acted, batches=report.batches)


@dataclass
class _Done:
    """What ``run --once`` did: the run, each rule's attempt, the purged quarantine batches."""

    run_id: str
    attempts: list[Attempt] = field(default_factory=list)
    purged: list[tuple[QuarantineBatch, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def to_dict(self, stopped_by: str | None) -> dict[str, Any]:
        """The run with stable keys for scripts (the README lists them)."""
        return {
            "run_id": self.run_id,
            "rules": [_attempt_dict(a) for a in self.attempts],
            "purged": [{"batch_id": b.batch_id, "table": b.table, "rule": b.rule,
                        "rows": rows, "release_at": b.release_at} for b, rows in self.purged],
            "problems": self.failures,
            "stopped_by": stopped_by,
        }


def _attempt_dict(attempt: Attempt) -> dict[str, Any]:
    report = attempt.report
    if report is None:
        return {"rule": attempt.rule.id, "status": "busy" if attempt.busy else "settled",
                "acted": 0, "reached": 0, "batches": 0, "error": None}
    return {"rule": report.rule, "status": report.status, "acted": report.acted,
            "reached": report.reached, "batches": report.batches, "error": report.error}


class _StopOnSignal(threading.Event):
    """SIGTERM and SIGINT ask the run to stop between batches, as the daemon does.

    Under a timer or cron a run is stopped with SIGTERM; dying mid-batch would leave an open
    intent and no ``run.end``.  The handlers are the previous ones again afterwards.
    """

    signal_name = ""

    def __enter__(self) -> Self:
        self._previous = {number: signal.signal(number, self._on_signal)
                          for number in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _on_signal(self, number: int, _frame: object) -> None:
        self.signal_name = signal.Signals(number).name
        self.set()


def _enforce(app: App, rule_ids: tuple[str, ...], *, allow_exceed: bool,
             stop: threading.Event, observe: Callable[[RuleReport], None]) -> _Done:
    setup, clock = app.setup, app.setup.clock
    with setup.stores() as stores, setup.state() as state:
        signer = setup.signer()  # read before anything is done: every record is signed with it
        ledger = setup.ledger(state, signer=signer)
        loaded = setup.policies()
        # A store that cannot be reached fails its rules' runs (recorded), not the others'.
        away = setup.unreachable(stores, loaded)
        policies = setup.validated(stores, away=away, policies=loaded)
        check_rule_ids(policies, rule_ids)
        engine = setup.engine(policies, stores, state)
        enforcer = setup.enforcer(engine, ledger, setup.leases(state), signer)
        rules = engine.rules(rule_ids or None)
        keyring = setup.keyring(rules)

        def pause(seconds: float) -> None:  # a throttle's pause ends at once on a stop
            clock.wait(stop, seconds)

        options = Options(allow_exceed=allow_exceed, keyring=keyring, should_stop=stop.is_set,
                          sleep=pause, observe=observe)
        done = _Done(run_id=str(uuid.uuid4()))
        as_of = clock.now()
        for rule in rules:
            if stop.is_set():  # the rules not begun are left for the next run
                break
            attempt = enforcer.run_rule(rule, run_id=done.run_id, as_of=as_of, options=options)
            done.attempts.append(attempt)
            done.failures += _failure(attempt)
        try:
            used = {rule.store for rule in policies.rules} - away.keys()
            if not stop.is_set():
                done.purged = quarantine.purge_due(stores, ledger, now=clock.now(), only=used)
        except RetentionError as exc:
            done.failures.append(f"quarantine purge: {exc}")
        done.failures += enforcer.attest(done.run_id, done.attempts, started=as_of)
    return done


def _failure(attempt: Attempt) -> list[str]:
    """What ``run --once`` says of a rule that did not run to its end (nothing if it did)."""
    rule = attempt.rule.id
    if attempt.busy:
        return [f"rule {rule}: running on a daemon replica right now; skipped"]
    if isinstance(attempt.error, LimitExceeded):
        return [str(attempt.error)]
    if attempt.error is not None:
        return [f"rule {rule}: {attempt.error} (the rule stopped; nothing more was done)"]
    compacted = attempt.report.compacted if attempt.report is not None else None
    if compacted is not None and compacted["status"] == "failed":
        return [f"rule {rule}: compaction failed: {compacted['error']} (the run is done and "
                "recorded; the old values wait for the next compaction)"]
    return []


def _print(done: _Done) -> None:
    for batch, rows in done.purged:
        click.echo(f"purged quarantine batch {batch.batch_id} ({rows} rows of "
                   f"{batch.table}, released {stamp(batch.release_at)})")
    click.echo(f"run {done.run_id}: certificate in the ledger "
               f"('retentiond audit certificate --run {done.run_id}')")
    listing = Listing("Enforced", ("rule", "status", "acted on", "reached by FK", "batches"),
                      numbers=frozenset({"acted on", "reached by FK", "batches"}))
    for attempt in done.attempts:
        report = attempt.report
        if report is not None and attempt.error is None:
            listing.add(report.rule, report.status, f"{report.acted:,}", f"{report.reached:,}",
                        f"{report.batches:,}")
    Console().print(listing, crop=False)
