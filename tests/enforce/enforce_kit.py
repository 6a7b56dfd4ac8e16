"""What the enforcement tests share by name: the moment of every run, ledger checks, a Rig, fakes.

Fixtures are in ``conftest.py`` next to this module; tests import these names directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retentiond.holds.guards import HoldSource
from retentiond.keyring import Keyring
from retentiond.ledger.chain import AuditLedger, Kind, Record
from retentiond.ledger.state import StateDB
from retentiond.policy.model import Hold, Rule
from retentiond.run.enforce import Options, RuleReport, RuleRun
from retentiond.run.engine import Engine
from retentiond.settings import Defaults, PseudonymSettings, SecretSource

AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
"""The moment runs are made at, unless a test says otherwise."""

ROOMY = Defaults(batch_size=7, max_rows=10_000, max_percent=100)
"""Defaults that let small test tables be acted on whole, in several batches of 7."""

KEY_A = b"retentiond-test-key-one-" + b"a" * 24
KEY_B = b"retentiond-test-key-two-" + b"b" * 24


def at(*parts: int) -> datetime:
    """A naive UTC wall-clock time (year, month, day[, hour, minute, second]), as stored."""
    return datetime(*parts)  # noqa: DTZ001 - naive on purpose: the columns are naive UTC


def stamp(kind: str) -> str:
    """The naive timestamp column type of a backend."""
    return {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}[kind]


def batch_records(ledger: AuditLedger) -> list[Record]:
    """Every intent and outcome in the ledger, in order."""
    return [r for r in ledger.records() if r.entry.kind in {Kind.INTENT, Kind.OUTCOME}]


def ledger_problems(ledger: AuditLedger) -> list[str]:
    """Why the ledger is not sound: a broken chain, or intents without exactly one outcome."""
    problems = []
    verification = ledger.verify()
    if not verification.ok:
        problems.append(f"chain broken at {verification.broken_seq}: {verification.reason}")
    records = list(ledger.records())
    # A restore or purge of a quarantined batch is audited under that batch's id: told apart
    # from the quarantining itself by its action.
    intents = Counter((r.entry.batch_id, r.entry.action) for r in records
                      if r.entry.kind is Kind.INTENT)
    outcomes = Counter((r.entry.batch_id, r.entry.action) for r in records
                       if r.entry.kind is Kind.OUTCOME)
    problems.extend(f"batch {batch}: {intents[batch]} intents, {outcomes[batch]} outcomes"
                    for batch in sorted(set(intents) | set(outcomes), key=str)
                    if (intents[batch], outcomes[batch]) != (1, 1))
    return problems


def make_keyring(directory: Path, key_id: str, secret: bytes) -> Keyring:
    """A keyring read from a key file, as the daemon reads it from its settings."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{key_id}.key"
    path.write_bytes(secret + b"\n")
    settings = PseudonymSettings(key_id=key_id, keys={key_id: SecretSource(file=path)})
    return Keyring.from_settings(settings)


def reference_pseudonym(secret: bytes, domain: str, value: str, length: int) -> str:
    """The pseudonym of a text value, computed from the documented formula alone."""
    derived = hmac.new(secret, b"retentiond pseudonym v1\x00" + domain.encode(),
                       hashlib.sha256).digest()
    payload = value.encode()
    mac = hmac.new(derived, b"s" + len(payload).to_bytes(8, "big") + payload, hashlib.sha256)
    return base64.b32encode(mac.digest()).decode().lower()[:length]


def hold(hold_id: str, table: str, where: Mapping[str, Any] | None = None) -> Hold:
    """A legal hold on ``app.table``, narrowed by ``where``."""
    return Hold.model_validate({"id": hold_id, "reason": "Litigation.", "store": "app",
                                "table": table, "where": where})


@dataclass
class Rig:
    """An Engine over one policy text, the ledger, and shortcuts to enforce its rules."""

    engine: Engine
    ledger: AuditLedger
    keyring: Keyring | None = None
    state: StateDB | None = None
    """The state database the ledger is kept in."""
    runs: list[RuleRun] = field(default_factory=list)

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id."""
        return self.engine.policies.rule(rule_id)

    def runner(self, rule_id: str, *, as_of: datetime = AS_OF, **options: Any) -> RuleRun:
        """A RuleRun to call, so that a test can still read its report after an error."""
        options.setdefault("keyring", self.keyring)
        run = RuleRun(self.engine, self.ledger, self.rule(rule_id), as_of=as_of,
                      run_id=f"run-{len(self.runs) + 1}", options=Options(**options))
        self.runs.append(run)
        return run

    def run(self, rule_id: str, *, as_of: datetime = AS_OF, **options: Any) -> RuleReport:
        """Enforce the rule once; its report."""
        return self.runner(rule_id, as_of=as_of, **options)()

    def outcomes(self, rule_id: str | None = None, *, run_id: str | None = None,
                 status: str | None = "applied") -> list[Mapping[str, Any]]:
        """Bodies of batch outcomes (of one rule, one run, one status; None: any), in order."""
        return [r.entry.body for r in self.ledger.records()
                if r.entry.kind is Kind.OUTCOME
                and rule_id in {None, r.entry.rule} and run_id in {None, r.entry.run_id}
                and status in {None, r.entry.body.get("status")}]

    def acted(self, rule_id: str | None = None, *, run_id: str | None = None) -> list[object]:
        """The (single-column) keys applied outcomes list, in ledger order."""
        return [key[0] for body in self.outcomes(rule_id, run_id=run_id)
                for key in body.get("keys", [])]

    def reached(self, rule_id: str | None = None) -> dict[str, list[int]]:
        """Integer keys reached through foreign keys by applied outcomes, per ``table (effect)``."""
        found: dict[str, list[int]] = {}
        for body in self.outcomes(rule_id):
            for label, keys in body.get("reached", {}).items():
                found.setdefault(label, []).extend(key[0] for key in keys)
        return {label: sorted(keys) for label, keys in found.items()}

    def kinds(self) -> list[str]:
        """The kind of every ledger record, in order."""
        return [r.entry.kind.value for r in self.ledger.records()]

    def batch_count(self) -> int:
        """How many intents and outcomes the ledger holds."""
        return len(batch_records(self.ledger))


class LateHold(HoldSource):
    """Holds ``holds`` from the first time ``ready()`` is true (asked before every batch)."""

    def __init__(self, ready: Callable[[], bool], holds: Iterable[Hold]) -> None:
        self._ready = ready
        self._holds = tuple(holds)
        self.holding = False

    def active(self, store: str, table: str, at: datetime) -> Iterable[Hold]:
        """The holds on ``store.table``, once ``ready()`` has said so."""
        del at
        self.holding = self.holding or self._ready()
        return [h for h in self._holds if self.holding and (h.store, h.table) == (store, table)]


class Meddler(HoldSource):
    """Holds nothing; runs ``then()`` once, the first time ``ready()`` is true when asked."""

    def __init__(self, ready: Callable[[], bool], then: Callable[[], None]) -> None:
        self._ready = ready
        self._then = then
        self.done = False

    def active(self, store: str, table: str, at: datetime) -> Iterable[Hold]:
        """No holds; the world possibly changed first."""
        del store, table, at
        if not self.done and self._ready():
            self.done = True
            self._then()
        return ()


class FailingHolds(HoldSource):
    """A hold lookup that fails (a RetentionError) from the first time ``ready()`` is true."""

    def __init__(self, ready: Callable[[], bool], error: Exception) -> None:
        self._ready = ready
        self._error = error
        self.calls = 0

    def active(self, store: str, table: str, at: datetime) -> Iterable[Hold]:
        """Raise once ready; until then, no holds."""
        del store, table, at
        self.calls += 1
        if self._ready():
            raise self._error
        return ()


def batches_begun(ledger: AuditLedger) -> int:
    """How many batches have written their intent.

    Asked as a batch starts (holds are read first), it counts the batches before it; their
    outcomes may still wait to go into the ledger with the next intent.
    """
    return sum(1 for r in ledger.records() if r.entry.kind is Kind.INTENT)

