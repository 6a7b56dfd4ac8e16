"""``validate`` and ``plan``: everything that reads and changes nothing."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from retentiond.cli.app import (
    EXIT_BAD_INPUT,
    App,
    as_of_option,
    check_rule_ids,
    json_option,
    parse_as_of,
    pass_app,
    rule_option,
)
from retentiond.engine import Engine
from retentiond.render import plan_details, plan_table, plan_to_dict

WIDE = 160


@click.command()
@click.option("--offline", is_flag=True,
              help="Check the policy files only, without connecting to any store.")
@pass_app
def validate(app: App, *, offline: bool) -> None:
    """Check every policy file, then every rule against its live store."""
    if offline:
        policies = app.policies()
    else:
        with app.stores() as stores:
            policies = app.validated(stores)
    click.echo(f"ok: {len(policies.rules)} rules, {len(policies.holds)} holds, "
               f"{len(policies.retentions)} minimum retentions are valid")


def show_plan(app: App, rule_ids: tuple[str, ...], as_of_text: str | None, *,
              as_json: bool) -> None:
    """Plan the rules in read-only transactions and print the plan."""
    as_of = parse_as_of(as_of_text)
    with app.stores() as stores:
        policies = app.validated(stores)
        check_rule_ids(policies, rule_ids)
        engine = Engine(policies, stores, app.settings.defaults)
        err = Console(stderr=True)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err,
                      transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("planning", total=None)
            plans = engine.plan_all(
                as_of=as_of, rule_ids=rule_ids or None,
                progress=lambda rule: progress.update(task, description=f"counting {rule.id}"))
    if as_json:
        click.echo(json.dumps([plan_to_dict(p) for p in plans], indent=2, default=str))
    else:
        out = Console(width=max(Console().width, WIDE))
        out.print(plan_table(plans))
        for plan in plans:
            out.print(plan_details(plan))
    failed = [p for p in plans if p.error]
    for plan in failed:
        click.echo(f"error: rule {plan.rule.id}: {plan.error}", err=True)
    if failed:
        sys.exit(EXIT_BAD_INPUT)


@click.command()
@rule_option
@as_of_option
@json_option
@pass_app
def plan(app: App, rule_ids: tuple[str, ...], as_of: str | None, *, as_json: bool) -> None:
    """Show what every rule would do, in read-only transactions (a dry run)."""
    show_plan(app, rule_ids, as_of, as_json=as_json)
