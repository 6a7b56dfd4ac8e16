"""Preflight: what a run and the daemon need besides valid policies and reachable stores.

``validate`` asks for it after the policies have been checked against the stores: the
pseudonym key (when a rule's action takes it), the signing key (when one is configured), a
state database this user can write at this retentiond's revision, with a lease directory it
can lock files in, and the checkpoint file's and witness directory's places.  Each missing
thing is one :class:`Problem` at the config file's line of its setting, with the fix.
Nothing is created or written: keys are read, the state database's catalog is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from retentiond.actions import action_for
from retentiond.errors import ConfigError, Problem
from retentiond.keyring import Keyring
from retentiond.ledger.access import write_problems
from retentiond.ledger.evidence import Signer
from retentiond.policy.model import PolicySet
from retentiond.settings import Settings, setting_line, setting_lines


@dataclass(frozen=True)
class ConfigPlaces:
    """The config file (None: defaults and environment only) and where its settings are."""

    file: Path | None
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    @classmethod
    def of(cls, file: Path | None) -> ConfigPlaces:
        """The places of ``file``'s tables and keys."""
        return cls(file, setting_lines(file) if file is not None else {})

    def problem(self, located: tuple[str, ...], what: str, fix: str) -> Problem:
        """A problem of the setting at ``located`` (its line, or its table's when not written)."""
        return Problem(self.file, setting_line(self.lines, *located), None, what, fix)


def preflight(settings: Settings, places: ConfigPlaces,
              policies: PolicySet | None) -> list[Problem]:
    """Every problem that would stop a run or the daemon before it acted (empty: ready)."""
    problems = list(_pseudonym_key(settings, places, policies))
    problems.extend(_signing_key(settings, places))
    problems.extend(places.problem(("state_url",), what, fix)
                    for what, fix in write_problems(settings.state_url))
    problems.extend(_audit_places(settings, places))
    return problems


def _pseudonym_key(settings: Settings, places: ConfigPlaces,
                   policies: PolicySet | None) -> Iterator[Problem]:
    """The current pseudonym key, read as a run reads it, when some rule needs it."""
    pseudonymize = settings.pseudonymize
    if policies is None or pseudonymize.key_id is None or not any(
            action_for(rule.action).needs_pseudonym_key for rule in policies.rules):
        return  # no key_id at all is a problem of each rule that needs it (validation)
    try:
        Keyring.from_settings(pseudonymize)
    except ConfigError as exc:
        source = pseudonymize.keys.get(pseudonymize.key_id)
        key = ("file" if source.file is not None else "credential") if source else ""
        located = ("pseudonymize", "keys", pseudonymize.key_id, key) if key else (
            "pseudonymize", "key_id")
        yield places.problem(located, f"pseudonym key {pseudonymize.key_id!r}: {exc.what}",
                             exc.fix)


def _signing_key(settings: Settings, places: ConfigPlaces) -> Iterator[Problem]:
    """The signing key, read and parsed as a run does, when one is configured."""
    if settings.audit.signing_key is None:
        return
    try:
        Signer.from_settings(settings.audit)
    except ConfigError as exc:
        yield places.problem(("audit", "signing_key"), f"signing key: {exc.what}", exc.fix)


def _audit_places(settings: Settings, places: ConfigPlaces) -> Iterator[Problem]:
    """Where the daemon writes checkpoints: the checkpoint file, the witness directory."""
    checkpoint, witness = settings.audit.checkpoint_file, settings.audit.witness_dir
    if checkpoint is not None:
        target = checkpoint if checkpoint.exists() else checkpoint.parent
        if not os.access(target, os.W_OK):
            yield places.problem(("audit", "checkpoint_file"),
                                 f"this user cannot write the checkpoint file {checkpoint}",
                                 f"let this user write {target}, or change checkpoint_file")
    if witness is not None and not (witness.is_dir() and os.access(witness, os.W_OK | os.X_OK)):
        yield places.problem(("audit", "witness_dir"),
                             f"the witness directory {witness} is missing or this user cannot "
                             "create files in it",
                             "mount or create it for this user (the daemon does not create "
                             "it; see deploy/README.md, 'A witness for the audit ledger')")
