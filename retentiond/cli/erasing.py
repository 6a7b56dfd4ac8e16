"""``erasure``: record, list and preview the requests of data subjects to be erased.

Executing a request, its certificate and the daemon's warnings before a due date come in a
later step; until then a request stays ``recorded``.
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import UTC, date, datetime

import click
from rich.console import Console

from retentiond.cli.app import EXIT_BAD_INPUT, App, json_option, pass_app
from retentiond.cli.render import Listing, stamp
from retentiond.erasure.preview import ErasurePreview, TablePreview, preview_erasure
from retentiond.erasure.requests import ErasureRequest, ErasureRequests, RecordedRequest
from retentiond.errors import PolicyError
from retentiond.holds.notation import Subject, parse_subject
from retentiond.policy.periods import utc_now


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment: --by must say who
        return ""


def _refuse(exc: PolicyError) -> None:
    for problem in exc.problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _subject(text: str) -> Subject:
    """``customer=4711``; an empty identity is left for the request's checks to name."""
    kind, sep, value = text.partition("=")
    if sep and kind.strip() and not value.strip():
        return Subject(kind.strip(), "")
    try:
        return parse_subject(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--subject") from None


def _received(text: str | None) -> date:
    if text is None:
        return datetime.now(tz=UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date; write YYYY-MM-DD",
                                 param_hint="--received") from None


@click.group()
def erasure() -> None:
    """Requests of data subjects to have their data erased: record, list, preview."""


@erasure.command("record")
@click.option("--subject", required=True, metavar="KIND=VALUE",
              help="The data subject, as the data map names its kind (customer=4711).")
@click.option("--received", metavar="DATE", help="When the request was received (YYYY-MM-DD, "
              "default today, UTC); the due date counts from it.")
@click.option("--regime", metavar="NAME", help="The law it was made under, as configured "
              "under [erasure.regimes] (its own number of days); absent: [erasure] due_days.")
@click.option("--by", default=None, metavar="NAME",
              help="Who records the request (default: the OS user).")
@click.option("--note", metavar="TEXT", help="A note kept with the request (not in the ledger).")
@pass_app
def record(app: App, *, subject: str, received: str | None, regime: str | None,
           by: str | None, note: str | None) -> None:
    """Record a request; the ledger gets a digest of the identity, never the identity."""
    request = ErasureRequest(subject=_subject(subject), received=_received(received),
                             by=by if by is not None else _user(), regime=regime, note=note)
    policies = app.policies()
    with app.state() as state:
        try:
            recorded = ErasureRequests(state, app.writer(state, by_hand=True)).record(
                request, policies=policies, settings=app.settings.erasure)
        except PolicyError as exc:
            _refuse(exc)
            return
    under = f" under {recorded.regime}" if recorded.regime else ""
    click.echo(f"recorded erasure request {recorded.id} for a {recorded.subject.kind}{under}, "
               f"received {recorded.received}, due {recorded.due}; preview it with "
               f"'retentiond erasure preview {recorded.id[:8]}'")


@erasure.command("list")
@json_option
@pass_app
def list_(app: App, *, as_json: bool) -> None:
    """Every request with its state and due date, the most urgent first; overdue ones marked."""
    today = utc_now().date()
    with app.state() as state:
        found = ErasureRequests(state).all()
    if as_json:
        click.echo(json.dumps([_as_dict(r, today) for r in found], indent=2))
        return
    listing = Listing("Erasure requests", ("id", "subject", "state", "regime", "received",
                                            "due", "recorded"))
    for request in found:
        listing.add(request.id, f"{request.subject.kind}={request.subject.value}",
                    request.state.value, request.regime or "-", request.received.isoformat(),
                    _due(request, today),
                    f"{stamp(request.recorded_at)} by {request.recorded_by}")
    Console().print(listing, crop=False)


def _due(request: RecordedRequest, today: date) -> str:
    left = request.days_left(today)
    if left < 0:
        return f"{request.due} OVERDUE by {-left} day(s)"
    return f"{request.due} (in {left} day(s))"


def _as_dict(request: RecordedRequest, today: date) -> dict[str, object]:
    return {"id": request.id, "subject": {"kind": request.subject.kind,
                                          "value": request.subject.value},
            "state": request.state.value, "regime": request.regime,
            "received": request.received.isoformat(), "due": request.due.isoformat(),
            "overdue": request.overdue(today), "days_left": request.days_left(today),
            "recorded_by": request.recorded_by, "recorded_at": request.recorded_at.isoformat(),
            "note": request.note}


@erasure.command("preview")
@click.argument("request_id", metavar="REQUEST")
@json_option
@pass_app
def preview(app: App, request_id: str, *, as_json: bool) -> None:
    """What erasing the request's subject would do, per store and table; writes nothing."""
    with app.stores() as stores, app.state() as state:
        found = ErasureRequests(state).find(request_id)
        if found is None:
            click.echo(f"error: erasure request {request_id!r}: no request has this id (or it "
                       "names several); see 'retentiond erasure list'", err=True)
            sys.exit(EXIT_BAD_INPUT)
        policies = app.validated(stores)
        dry = preview_erasure(app.engine(policies, stores, state), found.id, found.subject,
                              as_of=utc_now())
    if as_json:
        click.echo(json.dumps(_preview_dict(dry), indent=2))
        return
    listing = Listing(f"Erasure request {dry.request} ({dry.kind}): preview, nothing done",
                      ("table", "way", "erasure", "found", "acted", "held", "blocked", "why"),
                      numbers=frozenset({"found", "acted", "held", "blocked"}))
    for table in dry.tables:
        listing.add(f"{table.store}.{table.table}", "; ".join(table.ways), _effect(table),
                    str(table.found), str(table.acted), str(table.held),
                    str(table.census.blocked), _why(table))
    Console().print(listing, crop=False)


def _effect(table: TablePreview) -> str:
    if table.effect == "keep":
        rewrites = f", rewrite {', '.join(table.columns)}" if table.columns else ""
        return f"keep ({table.exception}){rewrites}"
    if table.effect == "delete":
        return "delete"
    return f"{table.effect} {', '.join(table.columns)}"


def _why(table: TablePreview) -> str:
    parts = [f"{g.kind} {g.id}: {g.rows}" + (f" ({g.reason})" if g.reason else "")
             for g in table.guards if g.rows]
    if table.cycle:
        parts.append(f"foreign keys cycle through {', '.join(table.cycle)}")
    return "; ".join(parts) or "-"


def _preview_dict(dry: ErasurePreview) -> dict[str, object]:
    return {"request": dry.request, "subject": dry.kind, "as_of": dry.as_of.isoformat(),
            "written": False,
            "tables": [{"store": t.store, "table": t.table, "effect": t.effect,
                        "ways": list(t.ways), "exception": t.exception,
                        "columns": list(t.columns), "found": t.found, "acted": t.acted,
                        "held": t.census.held, "protected": t.census.protected,
                        "blocked": t.census.blocked, "cycle": list(t.cycle),
                        "guards": [{"kind": g.kind, "id": g.id, "reason": g.reason,
                                    "rows": g.rows} for g in t.guards]}
                       for t in dry.tables]}
