"""``coverage``: personal data with no retention promise, per store and table."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import click
from rich.console import Console

from retentiond.cli.app import EXIT_FINDINGS, App, json_option, pass_app
from retentiond.cli.render import Listing
from retentiond.errors import RetentionError
from retentiond.policy.periods import utc_now
from retentiond.publish.coverage import (
    Coverage,
    coverage,
    coverage_to_dict,
    live_schemas,
    reached_by_rules,
)
from retentiond.publish.schedule import reached_tables

if TYPE_CHECKING:
    from retentiond.policy.model import PolicySet
    from retentiond.stores.base import TableSchema
    from retentiond.stores.registry import Stores


@click.command("coverage")
@click.option("--store", "only", metavar="NAME", help="Only this store (default: every one).")
@json_option
@pass_app
def coverage_command(app: App, only: str | None, *, as_json: bool) -> None:
    """Personal columns that no rule or no erasure mapping covers (exit 1 if any).

    Personal columns are those of the data map's ``personal:`` and those whose name or type
    looks personal (email, phone, name, address, IP, birth date, free text).  A column is
    covered when an enabled rule promises when its values go (for every row: a rule with a
    where: covers them partly) and the data map says what erasure does to it.  Read-only.
    """
    with app.stores() as stores:
        policies = app.validated(stores)
        if only is not None and only not in stores:
            raise click.BadParameter(f"no store {only!r} is configured (configured: "
                                     f"{', '.join(stores.names) or 'none'})",
                                     param_hint="--store")
        found, _ = gather(app, policies, stores, (only,) if only is not None else stores.names)
    if as_json:
        click.echo(json.dumps(coverage_to_dict(found), indent=2))
    else:
        _print(found)
    if found.gap_count:
        sys.exit(EXIT_FINDINGS)


def gather(app: App, policies: PolicySet, stores: Stores, names: Iterable[str], *,
           tolerant: bool = False) -> tuple[Coverage, list[str]]:
    """The coverage of the named stores, and those that could not be read.

    With ``tolerant`` (the report and the schedule), a store that cannot be read is left out
    and named; else its error is raised.
    """
    schemas: dict[str, list[TableSchema]] = {}
    unread: list[str] = []
    for name in names:
        try:
            schemas.update(live_schemas(stores, (name,)))
        except RetentionError:
            if not tolerant:
                raise
            unread.append(name)
    goes_with, _ = reached_tables(app.setup.engine(policies, stores), as_of=utc_now())
    reached = reached_by_rules(policies, {place: [(g.rule, g.ways) for g in gone]
                                          for place, gone in goes_with.items()})
    return coverage(policies, schemas, reached), unread


def _print(found: Coverage) -> None:
    columns = sum(len(t.columns) for t in found.tables)
    click.echo(f"{columns} personal column(s) in {len(found.tables)} table(s); "
               f"{found.gap_count} not covered")
    if not found.gap_count:
        return
    listing = Listing("Personal data with no retention promise",
                      ("store.table.column", "category", "found by", "retention rule",
                       "erasure"))
    for table in found.gaps:
        for column in table.gaps:
            rules = ", ".join(column.rules)
            listing.add(f"{table.store}.{table.table}.{column.column}", column.category,
                        column.source, f"{column.retention}" + (f": {rules}" if rules else ""),
                        column.erasure or "no mapping")
    Console().print(listing, crop=False)
