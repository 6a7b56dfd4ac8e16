"""``quarantine``: list, restore and purge quarantined batches."""

from __future__ import annotations

import getpass
import json
import sys

import click
from rich.console import Console
from rich.table import Table

from retentiond import quarantine as shelf
from retentiond.cli.app import EXIT_BAD_INPUT, App, json_option, pass_app
from retentiond.errors import PolicyError
from retentiond.holds.exemptions import DEFAULT_DAYS
from retentiond.holds.notation import parse_until
from retentiond.policy.periods import utc_now
from retentiond.stores.base import QuarantineBatch

COLUMNS = ("batch", "store", "table", "rule", "rows", "quarantined", "release")


@click.group()
def quarantine() -> None:
    """Rows isolated from processing until they may be deleted."""


def _fields(store: str, batch: QuarantineBatch) -> tuple[str, ...]:
    return (batch.batch_id, store, batch.table, batch.rule, str(batch.rows),
            batch.quarantined_at, batch.release_at)


@quarantine.command("list")
@json_option
@pass_app
def list_batches(app: App, *, as_json: bool) -> None:
    """Every quarantined batch, with its rule and release date (full batch ids)."""
    with app.stores() as stores:
        found = shelf.batches(stores)
    if as_json:
        click.echo(json.dumps([{"batch": b.batch_id, "store": store, "table": b.table,
                                "rule": b.rule, "run_id": b.run_id, "rows": b.rows,
                                "quarantined_at": b.quarantined_at, "release_at": b.release_at}
                               for store, b in found], indent=2))
        return
    table = Table(title="Quarantine", title_justify="left")
    for name in COLUMNS:
        table.add_column(name, justify="right" if name == "rows" else "left", no_wrap=True)
    for store, batch in found:
        table.add_row(*_fields(store, batch))
    console = Console()
    wide = console.measure(table, options=console.options.update(max_width=10_000))
    if wide.maximum <= console.width:
        console.print(table)
        return
    # Too narrow for the whole table (or a pipe): one block per batch, nothing cut.
    click.echo(f"Quarantine: {len(found)} batch(es)")
    for store, batch in found:
        click.echo("")
        for name, value in zip(COLUMNS, _fields(store, batch), strict=True):
            click.echo(f"  {name + ':':<13}{value}")


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment: --by must say who
        return ""


@quarantine.command()
@click.argument("batch", required=False, metavar="BATCH")
@click.option("--batch", "batch_option", metavar="BATCH", help="The batch (same as BATCH).")
@click.option("--reason", required=True, help="Why it goes back (kept in the audit log).")
@click.option("--until", metavar="DATE",
              help="Exempt the rows from the rule that quarantined them through this day (UTC) "
                   f"or until this ISO timestamp (default: {DEFAULT_DAYS} days from now).")
@click.option("--by", default=None, metavar="NAME",
              help="Who restores the batch (kept in the audit log; default: the OS user).")
@pass_app
def restore(app: App, batch: str | None, batch_option: str | None, *, reason: str,
            until: str | None, by: str | None) -> None:
    """Put one quarantined batch back exactly as it was moved.

    BATCH is the batch id as 'quarantine list' shows it, or a unique start of it (at least
    4 characters).  The rows are then exempt from the rule that quarantined them until
    --until, so its next run does not move them again; after that date it may.
    """
    if batch is not None and batch_option is not None and batch != batch_option:
        raise click.BadParameter("give the batch once (BATCH or --batch)", param_hint="BATCH")
    wanted = batch if batch is not None else batch_option
    if not wanted:
        raise click.BadParameter("which batch? give its id (see 'retentiond quarantine list')",
                                 param_hint="BATCH")
    try:
        ends = parse_until(until) if until is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--until") from None
    with app.stores() as stores, app.state() as state:
        try:
            done = shelf.restore(stores, app.writer(state), wanted, reason,
                                 by=by if by is not None else _user(), until=ends,
                                 now=utc_now())
        except PolicyError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(EXIT_BAD_INPUT)
    exemption = done.exemption
    click.echo(f"restored batch {done.batch.batch_id}: {len(done.keys)} rows of "
               f"{done.store}.{done.batch.table}, exempt from rule {exemption.rule} until "
               f"{exemption.until.isoformat()} (by {exemption.by})")


@quarantine.command()
@pass_app
def purge(app: App) -> None:
    """Delete for good every batch whose release date has passed."""
    with app.stores() as stores, app.state() as state:
        purged = shelf.purge_due(stores, app.writer(state))
    for batch, rows in purged:
        click.echo(f"purged batch {batch.batch_id}: {rows} rows of {batch.table}")
    click.echo(f"{len(purged)} batch(es) purged")
