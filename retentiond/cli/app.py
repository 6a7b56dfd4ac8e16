"""What every command shares: the composition root, exit codes, options, ``--as-of``."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import click

from retentiond.clock import SYSTEM_CLOCK, Clock
from retentiond.errors import ConfigError
from retentiond.ledger.chain import AuditLedger
from retentiond.ledger.evidence import Signer
from retentiond.ledger.state import StateDB
from retentiond.logs import configure_logging
from retentiond.policy.model import PolicySet
from retentiond.policy.periods import utc_now
from retentiond.run.engine import Engine
from retentiond.run.runtime import Setup
from retentiond.settings import DEFAULT_CONFIG, Settings, settings_file
from retentiond.stores.registry import Stores

EXIT_OK = 0
EXIT_FINDINGS = 1
"""A check found something: a broken ledger, a rule that failed or was stopped by a brake."""
EXIT_BAD_INPUT = 2
"""Config, policies or a store are wrong; nothing was changed."""
EXIT_STOPPED = 3
"""SIGTERM or SIGINT stopped ``run --once``: the batch in flight finished, the rest waits."""


CONFIG_PATH = click.Path(path_type=Path, dir_okay=False)
CONFIG_HELP = f"Config file (default {DEFAULT_CONFIG})."
POLICY_DIR = click.Path(path_type=Path, file_okay=False)
POLICIES_HELP = "Policy directory, overriding policy_dir from the config."


def _configure_logging(settings: Settings) -> None:
    configure_logging(settings.log_format, settings.log_level)


@dataclass
class App:
    """What every command needs, built by the runtime's :class:`Setup` on first use.

    The commands only parse and print: each piece (settings, policies, stores, the state
    database, the ledger, an engine) comes from ``setup``.  Logging is set up from the
    settings as soon as they are read.
    """

    config: Path | None
    policy_dir: Path | None
    clock: Clock = SYSTEM_CLOCK
    setup: Setup = field(init=False)

    def __post_init__(self) -> None:
        self.use(config=self.config, policy_dir=self.policy_dir)

    def use(self, *, config: Path | None, policy_dir: Path | None) -> None:
        """Read the settings from ``config`` and the policies from ``policy_dir`` (when read)."""
        self.config, self.policy_dir = config, policy_dir
        self.setup = Setup(config, policy_dir, clock=self.clock, loaded=self._loaded)

    def _loaded(self, settings: Settings) -> None:
        _configure_logging(settings)
        if self.config is None and settings_file(None) is None:
            click.echo(f"note: {DEFAULT_CONFIG} does not exist, so only the defaults and "
                       "RETENTIOND_* variables apply; pass --config FILE, or install one there "
                       "(deploy/README.md)", err=True)

    @property
    def settings(self) -> Settings:
        """Settings from the config file and environment."""
        return self.setup.settings

    def policies(self) -> PolicySet:
        """The policy set, validated in shape (phase one)."""
        return self.setup.policies()

    def stores(self) -> AbstractContextManager[Stores]:
        """The configured stores, closed when the command is done."""
        return self.setup.stores()

    def state(self) -> AbstractContextManager[StateDB]:
        """The state database (ledger and runtime holds), closed when the command is done."""
        return self.setup.state()

    @contextmanager
    def ledger(self) -> Iterator[AuditLedger]:
        """The audit ledger in the state database, to read; closed when the command is done."""
        with self.setup.state() as state:
            yield self.setup.ledger(state, reading=True)

    def signer(self) -> Signer | None:
        """The configured signing key; ConfigError when it is configured but unreadable."""
        return self.setup.signer()

    def writer(self, state: StateDB, *, by_hand: bool = False) -> AuditLedger:
        """The ledger, signing each record it writes with the configured key.

        A run must have the key (ConfigError before anything is done).  Holds placed or
        released ``by_hand`` may be written where the key cannot be read (the key is the
        service's credential): unsigned then, which ``audit verify`` lists, and said here.
        """
        try:
            signer = self.signer()
        except ConfigError as exc:
            if not by_hand:
                raise
            click.echo(f"note: this record is not signed ({exc.what}); 'audit verify' "
                       "will list it", err=True)
            signer = None
        return self.setup.ledger(state, signer=signer)

    def engine(self, policies: PolicySet, stores: Stores, state: StateDB, *,
               without: Collection[str] = ()) -> Engine:
        """An Engine honouring the policy files' holds and those placed at run time.

        ``without`` leaves runtime holds out, to preview what releasing them would free.
        """
        return self.setup.engine(policies, stores, state, without=without)

    def validated(self, stores: Stores) -> PolicySet:
        """The policy set, validated in shape and against the live stores (both phases)."""
        return self.setup.validated(stores)


pass_app = click.make_pass_decorator(App)


def accept_global_options(command: click.Command) -> None:
    """Let ``--config`` and ``--policies`` follow every command below ``command`` as well.

    ``retentiond validate --config X`` reads X as ``retentiond --config X validate`` does:
    each subcommand gets both options, which set the App the group made.
    """
    for sub in getattr(command, "commands", {}).values():
        sub.params.extend([
            click.Option(["--config"], type=CONFIG_PATH, expose_value=False,
                         callback=_use_config, help=CONFIG_HELP + " Also before the command."),
            click.Option(["--policies"], type=POLICY_DIR, expose_value=False,
                         callback=_use_policies, help=POLICIES_HELP),
        ])
        accept_global_options(sub)


def _use_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        app = ctx.find_object(App)
        if app is not None:
            app.use(config=value, policy_dir=app.policy_dir)


def _use_policies(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        app = ctx.find_object(App)
        if app is not None:
            app.use(config=app.config, policy_dir=value)


def parse_as_of(value: str | None) -> datetime:
    """``--as-of``: a date (midnight UTC) or an ISO timestamp; now when absent."""
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


rule_option = click.option("--rule", "rule_ids", multiple=True, metavar="ID",
                           help="Only this rule (repeatable).")
as_of_option = click.option("--as-of", "as_of", metavar="DATE",
                            help="Plan as if now were DATE (YYYY-MM-DD, midnight UTC).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def check_rule_ids(policies: PolicySet, rule_ids: tuple[str, ...]) -> None:
    """Refuse unknown rule ids before anything runs."""
    unknown = [r for r in rule_ids if r not in {rule.id for rule in policies.rules}]
    if unknown:
        raise click.BadParameter(f"no rule with id {', '.join(unknown)}", param_hint="--rule")
