"""Fixtures for enforcement tests: an Engine over a policy written under ``tmp_path``, the ledger.

``rig(policy_text, ...)`` writes the policy, loads it, checks it against the live ``app`` store
(the test's ``backend``) and returns an :class:`enforce_kit.Rig`: the Engine, the AuditLedger
(on a SQLite state database under ``tmp_path``) and shortcuts to enforce its rules.  Every store
it opened is checked for leaked connections and closed afterwards, and the ledger must be sound
when the test ends: the chain verifies and every intent has exactly one outcome.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from enforce_kit import KEY_A, KEY_B, ROOMY, Rig, ledger_problems, make_keyring

from retentiond.holds.guards import HoldSource
from retentiond.keyring import Keyring
from retentiond.ledger.chain import AuditLedger
from retentiond.ledger.state import StateDB
from retentiond.policy.loader import load_policies
from retentiond.run.engine import Engine
from retentiond.settings import Defaults
from retentiond.stores.registry import Stores
from retentiond.stores.sql import SqlStore, SqlStoreSettings
from retentiond.validation import validate_live


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    """A state database (SQLite) under ``tmp_path``."""
    database = StateDB(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    yield database
    database.close()


@pytest.fixture
def ledger(state: StateDB) -> Iterator[AuditLedger]:
    """The audit ledger; at the end it must verify, every intent with exactly one outcome."""
    made = AuditLedger(state)
    yield made
    assert [] == ledger_problems(made)


def _checked_out(store: SqlStore) -> int:
    engines = (store._engine, store._read_engine)
    return sum(getattr(e.pool, "checkedout", lambda: 0)() for e in engines if e is not None)


@pytest.fixture
def open_store(backend: str) -> Iterator[Callable[..., SqlStore]]:
    """Open SqlStores: ``open_store(name, settings)``; checked for leaks and closed afterwards."""
    made: list[SqlStore] = []

    def open_store(name: str, settings: SqlStoreSettings | None = None) -> SqlStore:
        store = SqlStore(name, settings or SqlStoreSettings(url=backend))
        made.append(store)
        return store

    yield open_store
    leaked = {store.name: _checked_out(store) for store in made}
    for store in made:
        store.close()
    assert {store.name: 0 for store in made} == leaked, "a store kept connections checked out"


@pytest.fixture
def rig(tmp_path: Path, backend: str, open_store: Callable[..., SqlStore], state: StateDB,
        ledger: AuditLedger) -> Iterator[Callable[..., Rig]]:
    """Build a Rig from a policy text.

    ``rig(text, defaults=ROOMY, holds=(), stores={}, app=None, keyring=None, validate=True)``:
    ``stores`` adds named stores to ``app`` (the backend, or the settings given as ``app``);
    ``holds`` are extra HoldSources; ``validate`` checks the policy against the live stores.
    """
    numbers = itertools.count()
    made: list[Stores] = []

    def build(text: str, *, defaults: Defaults = ROOMY, holds: Sequence[HoldSource] = (),
              stores: Mapping[str, SqlStoreSettings] | None = None,
              app: SqlStoreSettings | None = None, keyring: Keyring | None = None,
              validate: bool = True) -> Rig:
        directory = tmp_path / f"policies-{next(numbers)}"
        directory.mkdir()
        (directory / "policy.yaml").write_text(text, encoding="utf-8")
        policies = load_policies(directory)
        configured = {"app": app or SqlStoreSettings(url=backend), **(stores or {})}
        registry = Stores(configured, open_store)
        made.append(registry)
        if validate:
            assert [] == [str(p) for p in validate_live(policies, registry)]
        return Rig(Engine(policies, registry, defaults, holds), ledger, keyring, state)

    yield build
    for registry in made:
        registry.close()


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    """The pseudonym keyring ``k1``, read from a key file under ``tmp_path``."""
    return make_keyring(tmp_path / "keys", "k1", KEY_A)


@pytest.fixture
def other_keyring(tmp_path: Path) -> Keyring:
    """Another keyring, ``k2``, with a different secret."""
    return make_keyring(tmp_path / "keys", "k2", KEY_B)
