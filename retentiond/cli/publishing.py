"""``schedule`` and ``audit report``: what retentiond publishes from its policies and ledger."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from retentiond.cli.app import EXIT_FINDINGS, App, parse_as_of, pass_app
from retentiond.cli.coverage import gather
from retentiond.ledger.evidence import auditor_for
from retentiond.publish.report import Window, build_report, render_report
from retentiond.publish.schedule import (
    build_schedule,
    reached_tables,
    read_state,
    render,
    state_holds,
)

output_option = click.option(
    "--output", type=click.Path(path_type=Path, dir_okay=False, writable=True), metavar="FILE",
    help="Write to FILE (replaced whole, never half-written).")


@click.command()
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md",
              show_default=True, help="Markdown for a web page, HTML to send, JSON for scripts.")
@click.option("--as-of", "as_of", metavar="DATE",
              help="The holds in force on DATE (YYYY-MM-DD, midnight UTC); default now.")
@click.option("--public/--internal", "public", default=True, show_default=True,
              help="Public (the default, every format): legal holds are only counted. "
                   "Internal: each hold with its id, case, reason and filter's columns, "
                   "for counsel and reviewers; not for publication.")
@output_option
@pass_app
def schedule(app: App, fmt: str, as_of: str | None, output: Path | None, *,
             public: bool) -> None:
    """The retention schedule: per table, the period, the action, the reason, the holds.

    The public edition (the default) names no legal hold: no id, case, reason, filter or data
    subject, only how many are in force; --internal names them.
    """
    policies = app.policies()
    moment = parse_as_of(as_of)
    with read_state(app.settings.state_url) as engine:
        held = state_holds(engine)
    with app.stores() as stores:  # the reach needs no holds: the policy's own engine will do
        reached, unknown = reached_tables(app.setup.engine(policies, stores), as_of=moment)
        covered, unread = gather(app, policies, stores, stores.names, tolerant=True)
    for store in unknown:
        click.echo(f"warning: store {store!r} could not be read: the tables its rules reach "
                   "through foreign keys are not listed", err=True)
    for store in unread:
        click.echo(f"warning: store {store!r} could not be read: its personal columns without "
                   "a retention promise are not listed", err=True)
    built = build_schedule(policies, as_of=moment, state_holds=held, reached=reached,
                           public=public, residual=app.settings.residual, coverage=covered)
    text = render(built, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        _write(output, text)
        click.echo(f"wrote {output}")


@click.command()
@click.option("--since", metavar="DATE",
              help="First day of the period (YYYY-MM-DD, UTC); default: the ledger's start.")
@click.option("--until", metavar="DATE",
              help="Last day of the period (YYYY-MM-DD, UTC), included; default: now.")
@click.option("--output", required=True, metavar="FILE",
              type=click.Path(path_type=Path, dir_okay=False, writable=True),
              help="The HTML file to write: one page, nothing to fetch to open it.")
@pass_app
def report(app: App, since: str | None, until: str | None, output: Path) -> None:
    """A self-contained HTML review report of the ledger (exit 1 if the ledger is broken)."""
    window = Window(_day(since, "--since"), _day(until, "--until", plus=timedelta(days=1)))
    if window.since and window.until and window.since >= window.until:
        raise click.BadParameter("the period ends before it begins", param_hint="--until")
    policies = app.policies()
    with app.stores() as stores:
        covered, unread = gather(app, policies, stores, stores.names, tolerant=True)
    with app.ledger() as ledger, read_state(app.settings.state_url) as state:
        built = build_report(ledger, policies, window, state_holds=state_holds(state),
                             auditor=auditor_for(app.settings.audit, ledger),
                             coverage=covered, unread=unread)
    _write(output, render_report(built))
    acted = sum(t.total for t in built.facts.rules.values())
    click.echo(f"wrote {output}: {acted:,} records acted on, "
               f"{built.facts.incident_count:,} problem(s), "
               f"ledger {'intact' if built.check.ok else 'BROKEN'} "
               f"({built.check.records:,} records)")
    if not built.check.ok:
        click.echo(f"BROKEN at record {built.check.broken_seq}: {built.check.reason}", err=True)
        sys.exit(EXIT_FINDINGS)


def _day(value: str | None, hint: str, *, plus: timedelta = timedelta(0)) -> datetime | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD",
                                 param_hint=hint) from None
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + plus


def _write(path: Path, text: str) -> None:
    """Write ``text`` beside ``path`` first, then move it into place."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
