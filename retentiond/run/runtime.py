"""Everything a run needs, loaded and validated together: settings, policies, stores, engine.

The daemon loads a new runtime on SIGHUP and swaps it in only when all of it is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from retentiond.actions import action_for
from retentiond.errors import PolicyError, RetentionError
from retentiond.holds.scope import StateHolds
from retentiond.keyring import Keyring
from retentiond.ledger.state import StateDB
from retentiond.policy.loader import load_policies
from retentiond.run.engine import Engine
from retentiond.settings import Settings, load_settings
from retentiond.stores import open_store
from retentiond.stores.registry import Stores
from retentiond.validation import validate_live

if TYPE_CHECKING:
    from pathlib import Path

    from retentiond.policy.model import PolicySet


@dataclass
class Runtime:
    """A validated policy set bound to its stores."""

    settings: Settings
    policies: PolicySet
    stores: Stores
    engine: Engine
    keyring: Keyring | None
    state: StateDB | None = None
    """Where the engine reads the holds placed at run time (before every batch)."""

    def close(self) -> None:
        """Release the stores' and the state database's connections."""
        self.stores.close()
        if self.state is not None:
            self.state.close()


def load_runtime(config: Path | None, policy_dir: Path | None = None) -> Runtime:
    """Load settings and policies and validate them against the live stores (both phases).

    Raises ConfigError or PolicyError with every problem; nothing is left open on failure.
    """
    settings = load_settings(config)
    policies = load_policies(policy_dir or settings.policy_dir)
    stores = Stores(settings.stores, open_store)
    try:
        problems = validate_live(policies, stores,
                                 pseudonym_key=settings.pseudonymize.key_id is not None)
        if problems:
            raise PolicyError(problems)
        needs_key = any(action_for(rule.action).needs_pseudonym_key for rule in policies.rules)
        keyring = Keyring.from_settings(settings.pseudonymize) if needs_key else None
        state = StateDB(settings.state_url)
    except RetentionError:
        stores.close()
        raise
    engine = Engine(policies, stores, settings.defaults,
                    hold_sources=(StateHolds(state, policies, stores),))
    return Runtime(settings, policies, stores, engine, keyring, state)
