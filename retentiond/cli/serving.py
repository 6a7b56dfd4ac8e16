"""``daemon`` and ``status``: the long-running service and what it is up to."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from retentiond import quarantine
from retentiond.cli.app import App, json_option, pass_app
from retentiond.cli.render import Listing, stamp
from retentiond.daemon.service import Daemon
from retentiond.daemon.triggers import trigger_for
from retentiond.ledger.chain import Kind, Record
from retentiond.policy.periods import utc_now


@click.command()
@click.option("--now", "run_now", is_flag=True,
              help="Run every rule once at start, then on schedule.")
@pass_app
def daemon(app: App, *, run_now: bool) -> None:
    """Enforce every rule on its schedule until SIGTERM (the systemd service)."""
    sys.exit(Daemon(app.setup, run_now=run_now).run())


@click.command()
@json_option
@pass_app
def status(app: App, *, as_json: bool) -> None:
    """The rules, their next run, the last run's outcome, quarantine and holds.

    Every moment is ISO 8601 in UTC to the second; ``--json`` has the keys the README lists.
    """
    settings = app.settings
    policies = app.policies()
    now = utc_now()
    rules: list[dict[str, Any]] = []
    with app.ledger() as ledger:
        for rule in policies.rules:
            following = trigger_for(rule, settings.defaults).get_next_fire_time(None, now)
            rules.append({
                "rule": rule.id, "store": rule.store, "table": rule.table,
                "action": rule.action.type, "enabled": rule.enabled,
                "next_run": stamp(following) if rule.enabled and following else None,
                "last_run": _last_run(ledger.latest(Kind.RUN_START, rule.id),
                                      ledger.latest(Kind.RUN_END, rule.id))})
    with app.stores() as stores:
        batches = quarantine.batches(stores)
    holds = [{"id": h.id, "store": h.store, "table": h.table, "reason": h.reason}
             for h in policies.holds if h.active(now)]
    shelf = {"batches": len(batches), "rows": sum(b.rows for _, b in batches)}
    if as_json:
        click.echo(json.dumps({"now": stamp(now), "rules": rules, "quarantine": shelf,
                               "holds": holds}, indent=2))
        return
    console = Console()
    console.print(_rules_listing(rules), crop=False)
    console.print(f"quarantine: {shelf['batches']} batch(es) open, {shelf['rows']:,} rows")
    console.print(f"holds in force: {len(holds)}" + "".join(
        f"\n  {h['id']} on {h['store']}.{h['table']}: {h['reason']}" for h in holds),
        markup=False, highlight=False)


def _last_run(start: Record | None, end: Record | None) -> dict[str, Any] | None:
    """The rule's last run: its full id, when it started and ended, how it ended."""
    latest = end if start is None or (end is not None and end.seq > start.seq) else start
    if latest is None:
        return None
    run_id = latest.entry.run_id
    ended = end if end is not None and end.entry.run_id == run_id else None
    began = start if start is not None and start.entry.run_id == run_id else None
    return {
        "run_id": run_id,
        "started_at": stamp(began.at) if began else None,
        "ended_at": stamp(ended.at) if ended else None,
        "status": str(ended.entry.body.get("status", "")) if ended else "no end yet",
        "acted": int(ended.entry.body.get("acted", 0)) if ended else None,
    }


def _rules_listing(rules: list[dict[str, Any]]) -> Listing:
    listing = Listing("Rules", ("rule", "store.table", "action", "next run", "last run",
                                "outcome", "acted on", "run id"), numbers=frozenset({"acted on"}))
    for rule in rules:
        last = rule["last_run"]
        outcome = "disabled" if not rule["enabled"] else last["status"] if last else "never run"
        listing.add(rule["rule"], f"{rule['store']}.{rule['table']}", rule["action"],
                    rule["next_run"] or "-",
                    (last["started_at"] or last["ended_at"] or "-") if last else "-", outcome,
                    f"{last['acted']:,}" if last and last["acted"] is not None else "",
                    last["run_id"] or "" if last else "")
    return listing
