"""The command line: the only part of retentiond that prints and exits.

Exit codes: 0 done; 1 a check found something (a broken ledger, a rule that failed or was
stopped by a brake); 2 bad input (config, policies, stores): one line per problem on stderr,
no traceback, nothing changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from retentiond import __version__
from retentiond.cli.app import (
    CONFIG_HELP,
    CONFIG_PATH,
    EXIT_BAD_INPUT,
    POLICIES_HELP,
    POLICY_DIR,
    App,
    accept_global_options,
)
from retentiond.cli.coverage import coverage_command
from retentiond.cli.enforcing import run
from retentiond.cli.erasing import erasure
from retentiond.cli.explaining import explain_command
from retentiond.cli.holding import hold
from retentiond.cli.ledger import audit
from retentiond.cli.planning import plan, validate
from retentiond.cli.publishing import schedule
from retentiond.cli.serving import daemon, status
from retentiond.cli.shelf import quarantine
from retentiond.cli.state import state
from retentiond.errors import PolicyError, RetentionError
from retentiond.logs import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="retentiond")
@click.option("--config", type=CONFIG_PATH, help=CONFIG_HELP)
@click.option("--policies", "policy_dir", type=POLICY_DIR, help=POLICIES_HELP)
@click.pass_context
def cli(ctx: click.Context, config: Path | None, policy_dir: Path | None) -> None:
    """retentiond: enforce retention rules on data stores, with holds and an audit log.

    --config and --policies may come before the command or after it.
    """
    configure_logging()
    ctx.obj = App(config=config, policy_dir=policy_dir)


for command in (validate, plan, run, audit, quarantine, daemon, status, schedule, hold,
                explain_command, state, coverage_command, erasure):
    cli.add_command(command)
accept_global_options(cli)


def main() -> None:
    """Entry point: run the CLI, turning our own errors into one line each and exit code 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}; see 'retentiond --help'", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{len(exc.problems)} problem(s); nothing was run", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except RetentionError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


__all__ = ["cli", "main"]
