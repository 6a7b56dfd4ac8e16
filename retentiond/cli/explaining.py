"""``explain``: one record, every rule that applies, its dates, what protects it, and why."""

from __future__ import annotations

import json
from datetime import date, datetime

import click

from retentiond.cli.app import App, as_of_option, json_option, parse_as_of, pass_app
from retentiond.cli.render import stamp
from retentiond.publish.explain import Explanation, Verdict, explain, explanation_to_dict, parse_key

DECISIONS = {"act": "WILL ACT", "not due": "NOT DUE", "held": "HELD",
             "exempt": "EXEMPT (RESTORED FROM QUARANTINE)", "retained": "RETAINED",
             "blocked": "BLOCKED", "done": "DONE", "no date": "KEPT (NO DATE)",
             "not selected": "NOT SELECTED", "absent": "NOT IN THE TABLE", "error": "ERROR"}


@click.command("explain")
@click.option("--store", required=True, metavar="NAME", help="The record's store.")
@click.option("--table", required=True, metavar="TABLE", help="The record's table.")
@click.option("--key", "key_texts", required=True, multiple=True, metavar="VALUE",
              help="The record's primary key (repeat for each column of a composite key, in "
                   "key order).")
@as_of_option
@json_option
@pass_app
def explain_command(app: App, store: str, table: str, key_texts: tuple[str, ...],
                    as_of: str | None, *, as_json: bool) -> None:
    """Why one record is kept or acted on: rules, dates, holds, retentions, audit records.

    Read-only; the audit records are found by scanning the whole ledger for the key.
    """
    moment = parse_as_of(as_of)
    with app.stores() as stores, app.state() as state:
        policies = app.validated(stores)
        if store not in stores:
            raise click.BadParameter(f"no store {store!r} is configured (configured: "
                                     f"{', '.join(stores.names) or 'none'})", param_hint="--store")
        schema = stores.get(store).schema(table)
        if schema is None:
            raise click.BadParameter(f"table {table!r} does not exist in store {store!r}",
                                     param_hint="--table")
        try:
            key = parse_key(schema, key_texts)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--key") from None
        found = explain(app.engine(policies, stores, state), store=store, table=table, key=key,
                        as_of=moment, ledger=app.setup.ledger(state, reading=True))
    if as_json:
        click.echo(json.dumps(explanation_to_dict(found), indent=2, default=str))
        return
    for line in _lines(found):
        click.echo(line)


def _lines(found: Explanation) -> list[str]:
    key = ", ".join(str(part) for part in found.key)
    lines = [f"{found.store}.{found.table} key {key}, as of {stamp(found.as_of)}"]
    if found.exists is None:
        lines.append("  no rule of its own acts on this table")
    else:
        lines.append("  the record is in the table" if found.exists
                     else "  the record is not in the table (any more)")
    for reached in found.reached_by:
        protected = (f"; a row protected by {', '.join(reached.protected_by)} keeps its parent"
                     if reached.protected_by else "")
        lines.append(f"  rows go with their parent in {reached.table} under rule {reached.rule} "
                     f"({', '.join(reached.ways)}){protected}")
    for verdict in found.verdicts:
        lines.extend(_verdict(verdict))
    lines.append(f"audit records about this key ({found.scanned} ledger records scanned):")
    if not found.mentions:
        lines.append("  none")
    lines.extend(f"  #{m.seq} {stamp(m.at)} rule {m.rule} batch {m.batch_id}: {m.how}, "
                 f"{m.status or 'no status'}" for m in found.mentions)
    return lines


def _verdict(verdict: Verdict) -> list[str]:
    lines = [f"rule {verdict.rule} ({verdict.action}): {verdict.description}"]
    if verdict.decision not in {"absent", "error"}:
        lines.append(f"  filter matches: {'yes' if verdict.matches else 'no'}")
        age = verdict.age.isoformat() if verdict.age is not None else "none (NULL)"
        lines.append(f"  age:            {verdict.age_column} = {age}")
        lines.append(f"  keep until:     {_when(verdict.keep_until, 'unknown')}")
        lines.append(f"  act at:         {_when(verdict.act_at, 'not foreseeable')}")
        for protection in verdict.protected_by:
            until = f"until {_when(protection.until, '')}" if protection.until else "no end known"
            lines.append(f"  protected by:   {protection.kind} {protection.id}, {until}"
                         + (f": {protection.reason}" if protection.reason else ""))
    lines.append(f"  decision:       {DECISIONS.get(verdict.decision, verdict.decision)}: "
                 f"{verdict.reason}")
    return lines


def _when(value: date | datetime | None, missing: str) -> str:
    return stamp(value, missing)
