"""``daemon`` and ``status``: the long-running service and what it is up to."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from retentiond import quarantine
from retentiond.cli.app import App, pass_app
from retentiond.daemon.service import Daemon
from retentiond.daemon.triggers import trigger_for
from retentiond.ledger.chain import Kind
from retentiond.policy.periods import utc_now


@click.command()
@click.option("--now", "run_now", is_flag=True,
              help="Run every rule once at start, then on schedule.")
@pass_app
def daemon(app: App, *, run_now: bool) -> None:
    """Enforce every rule on its schedule until SIGTERM (the systemd service)."""
    sys.exit(Daemon(app.setup, run_now=run_now).run())


@click.command()
@pass_app
def status(app: App) -> None:
    """The rules, their next run, the last run's outcome, quarantine and holds."""
    settings = app.settings
    policies = app.policies()
    now = utc_now()
    table = Table(title="Rules", title_justify="left")
    for name in ("rule", "store.table", "action", "next run (UTC)", "last run", "outcome",
                 "acted on"):
        table.add_column(name, no_wrap=name != "outcome")
    with app.ledger() as ledger:
        for rule in policies.rules:
            following = trigger_for(rule, settings.defaults).get_next_fire_time(None, now)
            start = ledger.latest(Kind.RUN_START, rule.id)
            end = ledger.latest(Kind.RUN_END, rule.id)
            outcome = str(end.entry.body.get("status", "")) if end else "never run"
            acted = f"{int(end.entry.body.get('acted', 0)):,}" if end else ""
            table.add_row(rule.id, f"{rule.store}.{rule.table}", rule.action.type,
                          following.strftime("%Y-%m-%d %H:%M") if following else "-",
                          start.at[:16] if start else "-", outcome if rule.enabled else
                          "disabled", acted)
    console = Console(width=max(Console().width, 140))
    console.print(table)
    with app.stores() as stores:
        batches = quarantine.batches(stores)
    console.print(f"quarantine: {len(batches)} batch(es) open, "
                  f"{sum(b.rows for _, b in batches):,} rows")
    active = [h for h in policies.holds if h.active(now)]
    console.print(f"holds in force: {len(active)}" + "".join(
        f"\n  {h.id} on {h.store}.{h.table}: {h.reason}" for h in active))
