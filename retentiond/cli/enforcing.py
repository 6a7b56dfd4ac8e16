"""``run``: enforce the rules now (or, with --dry-run, exactly the plan)."""

from __future__ import annotations

import signal
import sys
import threading
import uuid
from typing import Self

import click
import structlog
from rich.console import Console
from rich.table import Table

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
from retentiond.errors import LimitExceeded, RetentionError, redact
from retentiond.run.enforce import Options, RuleReport
from retentiond.run.entrance import Attempt

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
    try:
        with _StopOnSignal() as stop:
            reports, failures = _enforce(app, rule_ids, allow_exceed=allow_exceed, stop=stop)
    except RetentionError as exc:  # nothing ran (the state database away, bad input): say so
        log.error("run.refused", error=redact(str(exc)), error_class=type(exc).__name__)
        raise
    _print_reports(reports)
    for line in failures:
        click.echo(f"error: {line}", err=True)
    if stop.is_set():
        click.echo(f"stopped by {stop.signal_name}: the batch in flight was finished and "
                   "recorded; the rest is left for the next run", err=True)
        sys.exit(EXIT_STOPPED)
    if failures:
        sys.exit(EXIT_FINDINGS)


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
             stop: threading.Event) -> tuple[list[RuleReport], list[str]]:
    failures: list[str] = []
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
                          sleep=pause)
        run_id = str(uuid.uuid4())
        as_of = clock.now()
        attempts: list[Attempt] = []
        for rule in rules:
            if stop.is_set():  # the rules not begun are left for the next run
                break
            attempt = enforcer.run_rule(rule, run_id=run_id, as_of=as_of, options=options)
            attempts.append(attempt)
            failures += _failure(attempt)
        try:
            used = {rule.store for rule in policies.rules} - away.keys()
            purged = [] if stop.is_set() else quarantine.purge_due(stores, ledger,
                                                                   now=clock.now(), only=used)
            for batch, rows in purged:
                click.echo(f"purged quarantine batch {batch.batch_id} ({rows} rows of "
                           f"{batch.table}, released {batch.release_at})")
        except RetentionError as exc:
            failures.append(f"quarantine purge: {exc}")
        failures += enforcer.attest(run_id, attempts, started=as_of)
        click.echo(f"run {run_id}: certificate in the ledger "
                   f"('retentiond audit certificate --run {run_id}')")
    return [a.report for a in attempts if a.report is not None and a.error is None], failures


def _failure(attempt: Attempt) -> list[str]:
    """What ``run --once`` says of a rule that did not run to its end (nothing if it did)."""
    rule = attempt.rule.id
    if attempt.busy:
        return [f"rule {rule}: running on a daemon replica right now; skipped"]
    if isinstance(attempt.error, LimitExceeded):
        return [str(attempt.error)]
    if attempt.error is not None:
        return [f"rule {rule}: {attempt.error} (the rule stopped; nothing more was done)"]
    return []


def _print_reports(reports: list[RuleReport]) -> None:
    table = Table(title="Enforced", title_justify="left")
    for name in ("rule", "status", "acted on", "reached by FK", "batches"):
        table.add_column(name, justify="left" if name in {"rule", "status"} else "right")
    for report in reports:
        table.add_row(report.rule, report.status, f"{report.acted:,}", f"{report.reached:,}",
                      str(report.batches))
    Console().print(table)


