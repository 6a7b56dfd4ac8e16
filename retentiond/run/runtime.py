"""The one composition root: settings and policies, and everything built from them.

:class:`Setup` is the only place that opens the stores and the state database, reads the
signing and pseudonym keys, and builds the engine, the ledger and the enforcer.  The CLI asks
it for what a command needs, in the order that command reports problems; the daemon asks it
for a whole :class:`Runtime`, and for a new one on SIGHUP, swapped in only when all of it is
valid.  Each piece that reads the time is given the setup's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retentiond.actions import action_for
from retentiond.clock import SYSTEM_CLOCK, Clock
from retentiond.errors import PolicyError, Problem, RetentionError, StoreError, StoreUnavailable
from retentiond.holds.exemptions import StateExemptions
from retentiond.holds.scope import StateHolds
from retentiond.keyring import Keyring
from retentiond.ledger.chain import AuditLedger
from retentiond.ledger.evidence import Signer
from retentiond.ledger.state import StateDB
from retentiond.policy.loader import load_policies
from retentiond.run.engine import Engine
from retentiond.run.entrance import Enforcer
from retentiond.run.leases import Leases, leases_for
from retentiond.run.preflight import ConfigPlaces, preflight
from retentiond.settings import Settings, load_settings, settings_file
from retentiond.stores import open_store
from retentiond.stores.registry import Stores
from retentiond.validation import validate_live

if TYPE_CHECKING:
    from pathlib import Path

    from retentiond.policy.model import PolicySet, Rule


class Setup:
    """What a config file and a policy directory make, each piece built when asked for.

    Settings are read once, on first use (``loaded`` is then called with them: the CLI sets
    up logging there); a reload makes a new Setup.  Whatever is opened is closed by the
    caller, or by the context manager it came from.
    """

    def __init__(self, config: Path | None, policy_dir: Path | None = None, *,
                 clock: Clock = SYSTEM_CLOCK,
                 loaded: Callable[[Settings], None] | None = None) -> None:
        self.config = config
        self.policy_dir = policy_dir
        self.clock = clock
        self._loaded = loaded
        self._settings: Settings | None = None
        self._places: ConfigPlaces | None = None

    def anew(self) -> Setup:
        """A setup of the same files on the same clock, to be read afresh (a reload)."""
        return Setup(self.config, self.policy_dir, clock=self.clock)

    @property
    def settings(self) -> Settings:
        """Settings from the config file and the environment (ConfigError when wrong)."""
        if self._settings is None:
            self._settings = load_settings(self.config)
            if self._loaded is not None:
                self._loaded(self._settings)
        return self._settings

    @property
    def places(self) -> ConfigPlaces:
        """The config file the settings came from, and the line of each of its settings."""
        if self._places is None:
            self._places = ConfigPlaces.of(settings_file(self.config))
        return self._places

    def policies(self) -> PolicySet:
        """The policy set, validated in shape (phase one)."""
        return load_policies(self.policy_dir or self.settings.policy_dir)

    def validated(self, stores: Stores, *, away: Collection[str] = (),
                  policies: PolicySet | None = None) -> PolicySet:
        """The policy set, validated in shape and against the live stores (both phases).

        The problems of entries on the stores named in ``away`` are left out: a run records
        their rules as failed (the store cannot be reached) instead of refusing every rule.
        ``policies``: the set as loaded already (default: loaded here).
        """
        policies = self.policies() if policies is None else policies
        problems = validate_live(policies, stores,
                                 pseudonym_key=self.settings.pseudonymize.key_id is not None,
                                 store_problem=self._store_problem, away=away)
        if problems:
            raise PolicyError(problems)
        return policies

    def unreachable(self, stores: Stores, policies: PolicySet) -> dict[str, StoreError]:
        """The configured stores some rule uses that cannot be reached now, with why."""
        used = {rule.store for rule in policies.rules}
        away: dict[str, StoreError] = {}
        for name in sorted(used & set(stores.names)):
            try:
                stores.get(name).ping()
            except StoreUnavailable as exc:
                away[name] = exc
        return away

    def _store_problem(self, store: str, what: str, fix: str) -> Problem:
        """A store that cannot be opened or reached: its ``[stores.NAME]`` in the config."""
        return self.places.problem(("stores", store), what, fix)

    def preflight(self, policies: PolicySet | None) -> list[Problem]:
        """What would stop a run or the daemon besides the policies and stores.

        Keys, the state database, the lease directory, the checkpoint places; nothing is
        written.
        """
        return preflight(self.settings, self.places, policies)

    def open_stores(self) -> Stores:
        """The configured stores (each connects when first used); the caller closes them."""
        return Stores(self.settings.stores, open_store)

    @contextmanager
    def stores(self) -> Iterator[Stores]:
        """The configured stores, closed when the block is done."""
        stores = self.open_stores()
        try:
            yield stores
        finally:
            stores.close()

    def open_state(self) -> StateDB:
        """The state database (ledger, leases, runtime holds); the caller closes it."""
        return StateDB(self.settings.state_url)

    @contextmanager
    def state(self) -> Iterator[StateDB]:
        """The state database, closed when the block is done."""
        state = self.open_state()
        try:
            yield state
        finally:
            state.close()

    def signer(self) -> Signer | None:
        """The configured signing key; ConfigError when it is configured but unreadable."""
        return Signer.from_settings(self.settings.audit)

    def ledger(self, state: StateDB, *, signer: Signer | None = None,
               reading: bool = False) -> AuditLedger:
        """The audit ledger in ``state``, each record it writes signed by ``signer``."""
        return AuditLedger(state, vouch=signer.vouch if signer is not None else None,
                           reading=reading, clock=self.clock)

    def keyring(self, rules: Iterable[Rule]) -> Keyring | None:
        """The pseudonym keys, read only when the action of one of ``rules`` needs them."""
        needs_key = any(action_for(rule.action).needs_pseudonym_key for rule in rules)
        return Keyring.from_settings(self.settings.pseudonymize) if needs_key else None

    def engine(self, policies: PolicySet, stores: Stores, state: StateDB | None = None, *,
               without: Collection[str] = ()) -> Engine:
        """An Engine honouring the policy files' holds, those placed at run time in ``state``.

        And the exemptions of rows restored from quarantine, kept in ``state`` too.

        ``without`` leaves runtime holds out, to preview what releasing them would free.
        """
        sources = () if state is None else (StateHolds(state, policies, stores, without=without),
                                            StateExemptions(state))
        return Engine(policies, stores, self.settings.defaults, hold_sources=sources)

    def leases(self, state: StateDB) -> Leases:
        """Who may run which rule right now, kept in (or beside) ``state``."""
        return leases_for(state)

    def enforcer(self, engine: Engine, ledger: AuditLedger, leases: Leases,
                 signer: Signer | None) -> Enforcer:
        """The one entrance for running the engine's rules, on this setup's clock."""
        return Enforcer(engine, ledger, leases, self.settings, signer, clock=self.clock)

    def runtime(self) -> Runtime:
        """Settings and policies validated against the live stores (both phases), all open.

        Raises ConfigError or PolicyError with every problem; nothing is left open on failure.
        """
        stores = self.open_stores()  # lazy: a store connects when validation first asks
        try:
            policies = self.validated(stores)
            keyring = self.keyring(policies.rules)
            state = self.open_state()
        except RetentionError:
            stores.close()
            raise
        return Runtime(self, policies, stores, self.engine(policies, stores, state), keyring,
                       state)


@dataclass
class Runtime:
    """A validated policy set bound to its stores, and the setup that made it."""

    setup: Setup
    policies: PolicySet
    stores: Stores
    engine: Engine
    keyring: Keyring | None
    state: StateDB | None = None
    """Where the engine reads the holds placed at run time (before every batch)."""

    @property
    def settings(self) -> Settings:
        """The settings the runtime was loaded with."""
        return self.setup.settings

    def enforcer(self, ledger: AuditLedger, leases: Leases, signer: Signer | None) -> Enforcer:
        """The entrance for running this runtime's rules, recording in ``ledger``."""
        return self.setup.enforcer(self.engine, ledger, leases, signer)

    def close(self) -> None:
        """Release the stores' and the state database's connections."""
        self.stores.close()
        if self.state is not None:
            self.state.close()

