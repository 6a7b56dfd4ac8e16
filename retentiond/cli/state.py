"""``state``: the state database's schema revision, and its upgrade by the database's owner."""

from __future__ import annotations

import sys

import click

from retentiond.cli.app import EXIT_FINDINGS, App, pass_app
from retentiond.ledger.state import schema_state, upgrade_schema


@click.group()
def state() -> None:
    """The state database's schema: where it stands, and the upgrade its owner runs."""


@state.command()
@pass_app
def upgrade(app: App) -> None:
    """Create the schema or migrate it to this retentiond's revision (as the owner)."""
    done = upgrade_schema(app.settings.state_url)
    if done.before == done.after:
        click.echo(f"already at revision {done.after}")
    elif done.before is None:
        click.echo(f"state database created at revision {done.after}")
    else:
        click.echo(f"state database at revision {done.after} (was {done.before})")
    for name in done.secrets_made:
        click.echo(f"made the missing installation secret {name!r}")


@state.command()
@pass_app
def status(app: App) -> None:
    """Print the schema's revision and the one this retentiond needs (exit 1 unless equal)."""
    found = schema_state(app.settings.state_url)
    if found.current:
        click.echo(f"state database at revision {found.found}, as this retentiond needs")
        return
    if found.found is None:
        click.echo(f"state database empty; this retentiond needs revision {found.wanted}: "
                   "run 'retentiond state upgrade' as its owner")
    elif found.newer:
        click.echo(f"state database at revision {found.found}, newer than this retentiond "
                   f"knows ({found.wanted}): upgrade retentiond")
    else:
        click.echo(f"state database at revision {found.found}; this retentiond needs "
                   f"{found.wanted}: run 'retentiond state upgrade' as its owner")
    sys.exit(EXIT_FINDINGS)
