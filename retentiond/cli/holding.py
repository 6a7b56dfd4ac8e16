"""``hold``: place, list and release legal holds at run time (kept in the state database)."""

from __future__ import annotations

import getpass
import json
import sys
from datetime import datetime

import click
from rich.console import Console

from retentiond.cli.app import EXIT_BAD_INPUT, App, json_option, pass_app
from retentiond.cli.render import Listing, stamp
from retentiond.errors import PolicyError
from retentiond.holds.notation import parse_subject, parse_term, parse_until, where_notation
from retentiond.holds.placing import HoldRequest, LegalHolds
from retentiond.holds.table import PlacedHold, list_holds
from retentiond.policy.periods import utc_now

WHERE_HELP = ("Only rows where COLUMN compares so with VALUE (repeatable; all must hold). "
              "Operators: = != < <= > >=; the value is read as the column's type, "
              "e.g. customer_id=4711, created_at<2025-01-01.")


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment: --by must say who
        return ""


def _refuse(exc: PolicyError, what: str) -> None:
    for problem in exc.problems:
        click.echo(f"error: {problem}", err=True)
    click.echo(f"nothing was {what}", err=True)
    sys.exit(EXIT_BAD_INPUT)


@click.group()
def hold() -> None:
    """Legal holds placed at run time: they beat every rule, added to the policy files' holds."""


@hold.command("add")
@click.option("--store", metavar="NAME", help="The store (every store, for a --subject hold).")
@click.option("--table", metavar="TABLE", help="The table (absent: every table of the store).")
@click.option("--where", "where", multiple=True, metavar="COLUMN<OP>VALUE", help=WHERE_HELP)
@click.option("--subject", metavar="KIND=VALUE",
              help="Every record of this data subject, in every table the data map (or a "
                   "rule's subjects:) maps KIND to, through foreign-key paths too.")
@click.option("--reason", required=True, help="Why the records are held (kept in the audit log; "
              "name the case, not the person).")
@click.option("--case", "case", metavar="ID", help="The case or matter the hold belongs to.")
@click.option("--until", metavar="DATE", help="Hold through this day (UTC) or until this ISO "
              "timestamp; absent: until released.")
@click.option("--by", default=None, metavar="NAME",
              help="Who places the hold (default: the OS user).")
@pass_app
def add(app: App, *, store: str | None, table: str | None, where: tuple[str, ...],
        subject: str | None, reason: str, case: str | None, until: str | None,
        by: str | None) -> None:
    """Place a legal hold; it takes effect from the next batch of every rule, running ones too."""
    try:
        terms = tuple(parse_term(text) for text in where)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--where") from None
    try:
        who = parse_subject(subject) if subject is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--subject") from None
    try:
        ends = parse_until(until) if until is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--until") from None
    request = HoldRequest(reason=reason, by=by if by is not None else _user(), store=store,
                          table=table, where=terms, subject=who, case=case, until=ends)
    with app.stores() as stores, app.state() as state:
        policies = app.policies() if who is not None else None
        try:
            placed = LegalHolds(state, app.writer(state, by_hand=True)).place(
                request, policies=policies, stores=stores)
        except PolicyError as exc:
            _refuse(exc, "placed")
            return
    click.echo(f"placed hold {placed.id} on {placed.scope()}")


@hold.command("list")
@click.option("--all", "show_all", is_flag=True, help="Released and expired holds too.")
@json_option
@pass_app
def list_(app: App, *, show_all: bool, as_json: bool) -> None:
    """The holds placed at run time (holds in policy files are listed by 'validate' and 'plan')."""
    now = utc_now()
    with app.state() as state:
        found = [h for h in list_holds(state) if show_all or h.status(now) == "active"]
    if as_json:
        click.echo(json.dumps([_as_dict(h, now) for h in found], indent=2))
        return
    listing = Listing("Legal holds placed at run time", ("id", "status", "scope", "reason",
                                                          "case", "until", "placed", "released"))
    for placed in found:
        released = (f"{stamp(placed.released_at)} by {placed.released_by}: "
                    f"{placed.release_reason}" if placed.released_at else "")
        listing.add(placed.id, placed.status(now), placed.scope(), placed.reason,
                    placed.case or "", stamp(placed.until, ""),
                    f"{stamp(placed.placed_at)} by {placed.placed_by}", released)
    Console().print(listing, crop=False)


@hold.command()
@click.argument("hold_id", metavar="ID")
@click.option("--reason", required=True, help="Why the hold ends (kept in the audit log).")
@click.option("--by", default=None, metavar="NAME", help="Who releases it (default: the OS user).")
@pass_app
def release(app: App, hold_id: str, reason: str, by: str | None) -> None:
    """Release a hold.  See first what it frees: 'retentiond plan --without-hold ID'."""
    with app.state() as state:
        try:
            released = LegalHolds(state, app.writer(state, by_hand=True)).release(
                hold_id, reason=reason, by=by if by is not None else _user())
        except PolicyError as exc:
            _refuse(exc, "released")
            return
    click.echo(f"released hold {released.id} ({released.scope()}); the records it kept are "
               "subject to the rules again from the next batch")


def _as_dict(placed: PlacedHold, now: datetime) -> dict[str, object]:
    return {
        "id": placed.id, "status": placed.status(now), "store": placed.store,
        "table": placed.table,
        "where": where_notation(placed.where) if placed.where is not None else None,
        "subject": ({"kind": placed.subject.kind, "value": placed.subject.value}
                    if placed.subject else None),
        "reason": placed.reason, "case": placed.case,
        "until": placed.until.isoformat() if placed.until else None,
        "placed_by": placed.placed_by, "placed_at": placed.placed_at.isoformat(),
        "released_at": placed.released_at.isoformat() if placed.released_at else None,
        "released_by": placed.released_by, "release_reason": placed.release_reason,
    }
