"""``quarantine``: list, restore and purge quarantined batches."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from retentiond import quarantine as shelf
from retentiond.cli.app import App, pass_app


@click.group()
def quarantine() -> None:
    """Rows isolated from processing until they may be deleted."""


@quarantine.command("list")
@pass_app
def list_batches(app: App) -> None:
    """Every quarantined batch, with its rule and release date."""
    with app.stores() as stores:
        found = shelf.batches(stores)
    table = Table(title="Quarantine", title_justify="left")
    for name in ("batch", "store", "table", "rule", "rows", "quarantined", "release"):
        table.add_column(name, justify="right" if name == "rows" else "left")
    for store, batch in found:
        table.add_row(batch.batch_id, store, batch.table, batch.rule, str(batch.rows),
                      batch.quarantined_at, batch.release_at)
    Console(width=max(Console().width, 140)).print(table)


@quarantine.command()
@click.option("--batch", "batch_id", required=True, help="The batch to put back.")
@click.option("--reason", required=True, help="Why it goes back (kept in the audit log).")
@pass_app
def restore(app: App, batch_id: str, reason: str) -> None:
    """Put one quarantined batch back exactly as it was moved."""
    with app.stores() as stores, app.state() as state:
        keys = shelf.restore(stores, app.writer(state), batch_id, reason)
    click.echo(f"restored batch {batch_id}: {len(keys)} rows")


@quarantine.command()
@pass_app
def purge(app: App) -> None:
    """Delete for good every batch whose release date has passed."""
    with app.stores() as stores, app.state() as state:
        purged = shelf.purge_due(stores, app.writer(state))
    for batch, rows in purged:
        click.echo(f"purged batch {batch.batch_id}: {rows} rows of {batch.table}")
    click.echo(f"{len(purged)} batch(es) purged")
