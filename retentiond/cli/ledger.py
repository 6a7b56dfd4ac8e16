"""``audit``: verify the ledger's chain, and summarize what it records."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.table import Table

from retentiond.cli.app import EXIT_FINDINGS, App, pass_app
from retentiond.review import summarize


@click.group()
def audit() -> None:
    """The audit ledger: what was done, and whether the record is intact."""


@audit.command()
@pass_app
def verify(app: App) -> None:
    """Recompute every hash of the ledger; name the first broken record (exit 1)."""
    with app.ledger() as ledger:
        result = ledger.verify()
        open_intents = ledger.open_intents()
    if not result.ok:
        click.echo(f"BROKEN at record {result.broken_seq}: {result.reason} "
                   f"({result.records} records read)", err=True)
        sys.exit(EXIT_FINDINGS)
    click.echo(f"ok: {result.records} records, chain head {result.head}")
    if open_intents:
        click.echo(f"{len(open_intents)} batch intent(s) have no outcome yet; the next run "
                   "settles them from the stores' batch markers")


@audit.command()
@pass_app
def summary(app: App) -> None:
    """Per rule: records acted on, reached through foreign keys, held back, blocked."""
    with app.ledger() as ledger:
        rows = summarize(ledger)
    table = Table(title="What the audit ledger records", title_justify="left")
    for name in ("rule", "action", "acted on", "reached by FK", "held back", "retained",
                 "blocked", "runs", "failed", "brake stops"):
        table.add_column(name, justify="left" if name in {"rule", "action"} else "right")
    for row in rows:
        table.add_row(row.rule, row.action, f"{row.acted:,}", f"{row.reached:,}",
                      f"{row.held:,}", f"{row.retained:,}", f"{row.blocked:,}", str(row.runs),
                      str(row.failed_runs), str(row.brake_stops))
    Console(width=max(Console().width, 140)).print(table)
