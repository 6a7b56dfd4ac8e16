"""The command line: the only module that prints and exits.

Exit codes: 0 done; 1 a check found something (a broken audit chain); 2 bad input (config,
policies, stores): one line per problem on stderr, no traceback, nothing changed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from retentiond import __version__
from retentiond.engine import Engine
from retentiond.errors import ConfigError, PolicyError, RetentionError
from retentiond.logs import configure_logging
from retentiond.policy.loader import load_policies
from retentiond.policy.model import PolicySet
from retentiond.policy.periods import utc_now
from retentiond.render import plan_details, plan_table, plan_to_dict
from retentiond.settings import Settings, load_settings
from retentiond.stores import open_store
from retentiond.stores.registry import Stores
from retentiond.validation import validate_live

EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2


@dataclass
class App:
    """What every command needs, loaded on first use."""

    config: Path | None
    policy_dir: Path | None
    _settings: Settings | None = field(default=None, init=False)

    @property
    def settings(self) -> Settings:
        """Settings from the config file and environment."""
        if self._settings is None:
            self._settings = load_settings(self.config)
            configure_logging(self._settings.log_format, self._settings.log_level)
        return self._settings

    def policies(self) -> PolicySet:
        """The policy set, validated in shape (phase one)."""
        return load_policies(self.policy_dir or self.settings.policy_dir)

    @contextmanager
    def stores(self) -> Iterator[Stores]:
        """The configured stores, closed when the command is done."""
        stores = Stores(self.settings.stores, open_store)
        try:
            yield stores
        finally:
            stores.close()

    def validated(self, stores: Stores) -> PolicySet:
        """The policy set, validated in shape and against the live stores (both phases)."""
        policies = self.policies()
        problems = validate_live(policies, stores)
        if problems:
            raise PolicyError(problems)
        return policies


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="retentiond")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False),
              help="Config file (default /etc/retentiond/retentiond.toml).")
@click.option("--policies", "policy_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Policy directory, overriding policy_dir from the config.")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, policy_dir: Path | None) -> None:
    """retentiond: enforce retention rules on data stores, with holds and an audit log."""
    configure_logging()
    ctx.obj = App(config=config, policy_dir=policy_dir)


@cli.command()
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


def _as_of(value: str | None) -> datetime:
    if value is None:
        return utc_now()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD or an ISO "
                                 "timestamp", param_hint="--as-of") from None
    if len(value) <= len("YYYY-MM-DD"):
        parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _plan(app: App, rule_ids: tuple[str, ...], as_of_text: str | None, *, as_json: bool) -> None:
    as_of = _as_of(as_of_text)
    with app.stores() as stores:
        policies = app.validated(stores)
        unknown = [r for r in rule_ids if r not in {rule.id for rule in policies.rules}]
        if unknown:
            raise click.BadParameter(f"no rule with id {', '.join(unknown)}", param_hint="--rule")
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
        out = Console(width=max(Console().width, 140))
        out.print(plan_table(plans))
        for plan in plans:
            out.print(plan_details(plan))
    failed = [p for p in plans if p.error]
    if failed:
        for plan in failed:
            click.echo(f"error: rule {plan.rule.id}: {plan.error}", err=True)
        sys.exit(EXIT_BAD_INPUT)


_rule_option = click.option("--rule", "rule_ids", multiple=True, metavar="ID",
                            help="Only this rule (repeatable).")
_as_of_option = click.option("--as-of", "as_of", metavar="DATE",
                             help="Plan as if now were DATE (YYYY-MM-DD, midnight UTC).")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@cli.command()
@_rule_option
@_as_of_option
@_json_option
@pass_app
def plan(app: App, rule_ids: tuple[str, ...], as_of: str | None, *, as_json: bool) -> None:
    """Show what every rule would do, in read-only transactions (a dry run)."""
    _plan(app, rule_ids, as_of, as_json=as_json)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only plan; the same as 'retentiond plan'.")
@_rule_option
@_as_of_option
@_json_option
@pass_app
def run(app: App, rule_ids: tuple[str, ...], as_of: str | None, *, dry_run: bool,
        as_json: bool) -> None:
    """Enforce the rules now; with --dry-run, show what would be done instead."""
    if not dry_run:
        raise ConfigError("enforcement is not available in this version",
                          "use 'retentiond run --dry-run' (or 'retentiond plan')")
    _plan(app, rule_ids, as_of, as_json=as_json)


def main() -> None:
    """Entry point: run the CLI, turning our own errors into one line each and exit code 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{len(exc.problems)} problem(s); nothing was run", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except RetentionError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
