"""``validate`` and ``plan``: everything that reads and changes nothing."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

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
from retentiond.cli.render import plan_details, plan_table, plan_to_dict
from retentiond.errors import ConfigError, PolicyError, Problem
from retentiond.policy.model import PolicySet
from retentiond.run.release import (
    ReleaseEffect,
    check_releasable,
    release_effects,
    without_policy_holds,
)
from retentiond.validation import schema_warnings


@click.command()
@click.option("--offline", is_flag=True,
              help="Check the config and policy files only: no store, state database, key or "
                   "credential is touched.")
@json_option
@pass_app
def validate(app: App, *, offline: bool, as_json: bool) -> None:
    """Check everything a run and the daemon need, writing nothing.

    The config, every policy file, every rule against its live store, the pseudonym and
    signing keys, the credentials, a writable state database and lease directory.  Exit 2
    with one line per problem.
    """
    policies, problems, warnings = _preflight(app, offline=offline, as_json=as_json)
    if as_json:
        click.echo(json.dumps({
            "ok": not problems,
            **({} if policies is None else {"rules": len(policies.rules),
                                            "holds": len(policies.holds),
                                            "retentions": len(policies.retentions),
                                            **_mapped(policies)}),
            "problems": [_problem_to_dict(p) for p in problems],
            "warnings": [_problem_to_dict(w) for w in warnings]}, indent=2))
        if problems:
            sys.exit(EXIT_BAD_INPUT)
        return
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if problems or policies is None:
        raise PolicyError(problems)
    mapped = policies.data_map
    also = (f" and a data map of {len(mapped.tables)} tables for {len(mapped.subjects)} "
            "subject kinds") if mapped else ""
    click.echo(f"ok: {len(policies.rules)} rules, {len(policies.holds)} holds, "
               f"{len(policies.retentions)} minimum retentions{also} are valid")


def _preflight(app: App, *, offline: bool, as_json: bool,
               ) -> tuple[PolicySet | None, list[Problem], list[Problem]]:
    """(The policies if they could be read, every problem, every warning) of ``validate``.

    A config error is the only problem there can be (raised as it is, unless ``as_json``).
    """
    problems: list[Problem] = []
    warnings: list[Problem] = []
    policies: PolicySet | None = None
    try:
        app.settings  # noqa: B018 - read first: without settings nothing else can be checked
    except ConfigError as exc:
        if not as_json:
            raise
        return None, [Problem(exc.file, exc.line, None, exc.what, exc.fix)], []
    try:
        if offline:
            policies = app.policies()
        else:
            with app.stores() as stores:
                policies = app.validated(stores)
                warnings = schema_warnings(policies, stores)
    except PolicyError as exc:
        problems.extend(exc.problems)
    if not offline:
        if policies is None:
            with contextlib.suppress(PolicyError):
                policies = app.policies()  # valid in shape: its keys can be checked
        problems.extend(app.setup.preflight(policies))
    return policies, problems, warnings


def _mapped(policies: PolicySet) -> dict[str, int]:
    """What ``validate --json`` says of the data map: nothing when there is none."""
    mapped = policies.data_map
    return {"data_map_tables": len(mapped.tables),
            "subject_kinds": len(mapped.subjects)} if mapped else {}


def _problem_to_dict(problem: Problem) -> dict[str, object]:
    return {"file": None if problem.file is None else str(problem.file), "line": problem.line,
            "rule": problem.subject, "message": problem.what, "fix": problem.fix,
            "text": str(problem)}


def show_plan(app: App, rule_ids: tuple[str, ...], as_of_text: str | None, *,
              as_json: bool, without_holds: tuple[str, ...] = ()) -> None:
    """Plan the rules in read-only transactions and print the plan.

    ``without_holds``: plan as if those holds were released, and say per hold what it keeps
    now and what its release would free.
    """
    as_of = parse_as_of(as_of_text)
    effects: list[ReleaseEffect] = []
    with app.stores() as stores, app.state() as state:
        policies = app.validated(stores)
        check_rule_ids(policies, rule_ids)
        engine = app.engine(policies, stores, state)
        if without_holds:
            problems = check_releasable(without_holds, policies, state, at=as_of)
            if problems:
                raise PolicyError(problems)
            current = engine.plan_all(as_of=as_of, rule_ids=rule_ids or None)
            engine = app.engine(without_policy_holds(policies, without_holds), stores, state,
                                without=without_holds)
        err = Console(stderr=True)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err,
                      transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("planning", total=None)
            plans = engine.plan_all(
                as_of=as_of, rule_ids=rule_ids or None,
                progress=lambda rule: progress.update(task, description=f"counting {rule.id}"))
        if without_holds:
            effects = release_effects(current, plans, without_holds)
    if as_json:
        click.echo(json.dumps([_with_effects(plan_to_dict(p), effects, without_holds)
                               for p in plans], indent=2, default=str))
    else:
        out = Console()
        if without_holds:
            out.print(f"Preview: as if {', '.join(without_holds)} were released "
                      "(nothing is released by this plan)")
        out.print(plan_table(plans), crop=False)
        for plan in plans:
            # Lines are never broken into ids: the terminal wraps them, a pipe keeps them whole.
            out.print(plan_details(plan), soft_wrap=True)
            for effect in (e for e in effects if e.rule == plan.rule.id):
                out.print(f"  released {effect.hold} (preview): it keeps {effect.keeps:,} "
                          f"rows now; {effect.freed:,} more would be acted on", soft_wrap=True)
    failed = [p for p in plans if p.error]
    for plan in failed:
        click.echo(f"error: rule {plan.rule.id}: {plan.error}", err=True)
    if failed:
        sys.exit(EXIT_BAD_INPUT)


def _with_effects(planned: dict[str, Any], effects: list[ReleaseEffect],
                  without_holds: tuple[str, ...]) -> dict[str, Any]:
    if not without_holds:
        return planned
    return {**planned, "released_holds": [
        {"hold": e.hold, "reason": e.reason, "keeps": e.keeps, "frees": e.freed}
        for e in effects if e.rule == planned["rule"]]}


@click.command()
@rule_option
@as_of_option
@click.option("--without-hold", "without_holds", multiple=True, metavar="ID",
              help="Plan as if this hold were released (repeatable): what would its release "
                   "free?  Nothing is released.")
@json_option
@pass_app
def plan(app: App, rule_ids: tuple[str, ...], as_of: str | None,
         without_holds: tuple[str, ...], *, as_json: bool) -> None:
    """Show what every rule would do, in read-only transactions (a dry run)."""
    show_plan(app, rule_ids, as_of, as_json=as_json, without_holds=without_holds)
