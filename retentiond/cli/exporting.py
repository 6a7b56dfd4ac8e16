"""``audit export``: the ledger as CSV or JSON Lines, with stable columns, for reviewers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from retentiond.cli.app import App, pass_app
from retentiond.ledger.export import (
    FORMATS,
    ExportQuery,
    csv_lines,
    export_rows,
    jsonl_lines,
    parse_bound,
)


def _bound(text: str | None, *, end: bool, hint: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_bound(text, end=end)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


@click.command("export")
@click.option("--since", metavar="DATE", help="From this day (UTC) or ISO timestamp on.")
@click.option("--until", metavar="DATE", help="Through this day (UTC) or up to this timestamp.")
@click.option("--rule", "rule_ids", multiple=True, metavar="ID",
              help="Only records about this rule (repeatable).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
              help="csv (a header line, then one line per record) or jsonl (adds the body).")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
@pass_app
def export(app: App, *, since: str | None, until: str | None, rule_ids: tuple[str, ...],
           fmt: str, output: Path | None) -> None:
    """Export ledger records in a window, streamed in bounded memory (columns: see README)."""
    query = ExportQuery(since=_bound(since, end=False, hint="--since"),
                        before=_bound(until, end=True, hint="--until"), rules=frozenset(rule_ids))
    with app.ledger() as ledger, click.open_file(str(output or "-"), "w",
                                                 encoding="utf-8") as out:
        rows = export_rows(ledger, query)
        for line in csv_lines(rows) if fmt == "csv" else jsonl_lines(rows):
            out.write(line)
