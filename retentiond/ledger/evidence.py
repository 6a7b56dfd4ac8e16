"""Evidence on top of the chain: record signatures, signed checkpoints, run certificates.

Writing: a :class:`Signer` vouches for every record its writer appends (an Ed25519 signature
over the record hash); :func:`write_checkpoint` appends a ``checkpoint`` record that signs the
chain head of every record before it, keeps a copy of the note in a file outside the database
if configured, and publishes it to the witnesses (:mod:`retentiond.ledger.witness`).  The
daemon writes one after every run and at least every interval.

Verifying: :class:`EvidenceAuditor` rides along :meth:`AuditLedger.verify` and checks that
every record a run wrote carries a valid signature (a checkpoint vouches for the chain, not
for who wrote a record), that every checkpoint is signed by the configured key and matches
the chain where it stands, that every intent has exactly one outcome, and that the ledger
still reaches the checkpoint kept outside the database and every checkpoint a witness saw.
Checkpoints further apart than the interval, records that follow the last checkpoint (a new
install, a crash before a run's checkpoint, a hold placed between daily runs), records from
before signing began and holds placed by hand without the key are warnings, not breaks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature

from retentiond import __version__
from retentiond.actions import action_for
from retentiond.ledger.chain import Entry, Kind, Record, canonical
from retentiond.ledger.checkpoints import (
    Checkpoint,
    NoteError,
    load_private_key,
    load_public_key,
    open_note,
    sign,
)
from retentiond.ledger.witness import WitnessCheck, publish_to, witnesses_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from retentiond.ledger.chain import AuditLedger, Auditor
    from retentiond.ledger.witness import Witness
    from retentiond.policy.model import Rule
    from retentiond.run.enforce import RuleReport
    from retentiond.settings import AuditSettings, ResidualSettings, Settings

OPEN_INTENT_GRACE = timedelta(minutes=10)
"""An intent younger than this may belong to a batch in flight; older ones are a finding."""


@dataclass(frozen=True)
class Signer:
    """The daemon's signing key and the log's name."""

    origin: str
    key: Ed25519PrivateKey

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> Signer | None:
        """The configured signer, or None when no signing key is configured."""
        if settings.signing_key is None:
            return None
        return cls(settings.origin, load_private_key(settings.signing_key.read()))

    def vouch(self, record_hash: str) -> str:
        """The signature (hex) by which the writer vouches that it wrote this record."""
        return self.key.sign(record_message(self.origin, record_hash)).hex()


def record_message(origin: str, record_hash: str) -> bytes:
    """What a record's signature signs: its hash, under a header no checkpoint note has."""
    return f"retentiond record signature v1\n{origin}\n{record_hash}\n".encode()


def vouched(public: Ed25519PublicKey, origin: str, record: Record) -> bool:
    """Whether ``record`` carries a signature by ``public`` over its hash."""
    try:
        public.verify(bytes.fromhex(record.signature or ""), record_message(origin,
                                                                       record.record_hash))
    except (InvalidSignature, ValueError):
        return False
    return True


WRITTEN_BY_HAND = frozenset({Kind.HOLD_PLACED, Kind.HOLD_RELEASED, Kind.ERASURE_RECORDED})
"""Kinds that people write through the CLI, where the daemon's signing key may be out of reach.

Every other kind is written by a run (the daemon or ``run --once``), which holds the key."""


@dataclass
class Span:
    """Sequence numbers seen, in bounded memory: how many, the first and the last."""

    count: int = 0
    first: int = 0
    last: int = 0

    def add(self, seq: int) -> None:
        """Count ``seq`` in."""
        self.count += 1
        self.first = self.first or seq
        self.last = seq

    def __str__(self) -> str:
        if self.count == 1:
            return f"record {self.first}"
        return f"{self.count} records between {self.first} and {self.last}"


def write_checkpoint(ledger: AuditLedger, signer: Signer, *, file: Path | None = None,
                     witnesses: Sequence[Witness] = ()) -> Record:
    """Sign the ledger's current head; the checkpoint record follows what it signs.

    Then the note goes to ``file`` and to the ``witnesses``; when a witness does not keep it
    (WitnessError), the record is in the ledger all the same.
    """

    def make(seq: int, head: str) -> Entry:
        note = sign(Checkpoint(signer.origin, seq, head), signer.key)
        return Entry(kind=Kind.CHECKPOINT, body={"size": seq, "head": head, "note": note})

    record = ledger.append_at_tail(make, vouch=signer.vouch)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary = file.with_suffix(file.suffix + ".tmp")
        temporary.write_text(str(record.entry.body["note"]), encoding="utf-8")
        temporary.replace(file)
    body = record.entry.body
    publish_to(witnesses, str(body["note"]), int(body["size"]), str(body["head"]))
    return record


@dataclass
class EvidenceAuditor:
    """The checks beyond the chain; see the module docstring."""

    origin: str
    public: Ed25519PublicKey | None
    interval: timedelta
    now: datetime
    outside: Checkpoint | None = None
    """The checkpoint kept outside the database, already opened with the public key."""
    _last_checkpoint: datetime | None = None
    _last_checkpoint_seq: int = 0
    _open: dict[tuple[str | None, str | None], tuple[int, datetime]] = field(
        default_factory=dict)
    pairing: list[tuple[int, str]] = field(default_factory=list)
    """Duplicate and orphaned intents/outcomes, as the ledger's own query found them."""
    _heads: dict[int, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """Findings about liveness, not integrity: long gaps between checkpoints, unsigned tails."""
    _first_signed: int | None = None
    _before_signing: Span = field(default_factory=Span)
    _by_hand: Span = field(default_factory=Span)
    witnessed: Sequence[Auditor] = ()
    """Checks against the checkpoints witnesses saw (:class:`~.witness.WitnessCheck`)."""

    def see(self, record: Record, chain_before: str) -> str | None:
        """Check one record: its signature, what witnesses saw, checkpoints, intent pairing."""
        unvouched = self._vouched(record)
        if unvouched is not None:
            return unvouched
        for witness in self.witnessed:
            if (problem := witness.see(record, chain_before)) is not None:
                return problem
        at = datetime.fromisoformat(record.at)
        if self.outside is not None and record.seq == self.outside.size:
            self._heads[record.seq] = record.chain_hash
        entry = record.entry
        if entry.kind is Kind.CHECKPOINT:
            return self._checkpoint(record, chain_before, at)
        # Only intents still waiting for their outcome are kept (a handful at any time);
        # duplicates and orphans are found by the database (AuditLedger.pairing_problems).
        pair = (entry.batch_id, entry.action)
        if entry.kind is Kind.INTENT:
            self._open[pair] = (record.seq, at)
        elif entry.kind is Kind.OUTCOME:
            self._open.pop(pair, None)
        return None

    def _vouched(self, record: Record) -> str | None:
        """Whether the writer of ``record`` signed it, where it should have.

        A forger who knows the algorithm but not the key can append records and recompute
        the chain, and the next checkpoint would sign them; only each record's own signature
        tells the daemon's records from those.  Unsigned records before the first signed one
        predate signing (an upgrade, a key configured later); holds placed through the CLI
        may be written where the key cannot be read.  Both are listed, not broken.
        """
        if self.public is None:
            return None
        if record.signature is not None:
            if not vouched(self.public, self.origin, record):
                return "the record's signature does not verify with the configured key"
            if self._first_signed is None:
                self._first_signed = record.seq
            return None
        if record.entry.kind in WRITTEN_BY_HAND:
            self._by_hand.add(record.seq)
        elif self._first_signed is None:
            self._before_signing.add(record.seq)
        else:
            return (f"the record ({record.entry.kind.value}) is not signed, though the daemon "
                    f"signs every record since {self._first_signed}: it was forged, or written "
                    "without the signing key")
        return None

    def _unsigned(self) -> None:
        """Warn of the records no signature covers (see :meth:`_vouched`)."""
        if self._before_signing.count:
            self.warnings.append(
                f"{self._before_signing} {'is' if self._before_signing.count == 1 else 'are'} "
                "not signed: written before records were signed (an older version, or no "
                "signing key then); the chain and later checkpoints still cover them")
        if self._by_hand.count:
            self.warnings.append(
                f"{self._by_hand} of holds placed or released "
                f"{'is' if self._by_hand.count == 1 else 'are'} not signed: written where the "
                "signing key could not be read (the CLI); the chain and later checkpoints "
                "still cover them")

    def _checkpoint(self, record: Record, chain_before: str, at: datetime) -> str | None:
        body = record.entry.body
        if self.public is None:
            return None  # no key to check with: the chain check alone applies
        try:
            signed = open_note(str(body.get("note", "")), self.origin, self.public)
        except NoteError as exc:
            return f"checkpoint: {exc}"
        if signed.size != record.seq - 1 or signed.head != chain_before:
            return (f"the checkpoint signs {signed.size} records up to another head than the "
                    "ledger holds before it")
        if self._last_checkpoint is not None and at - self._last_checkpoint > self.interval:
            # A daily timer, a daemon stopped for maintenance: a gap in liveness, which the
            # chain and the signatures around it still vouch for.
            self.warnings.append(
                f"checkpoints at records {self._last_checkpoint_seq} and {record.seq} are "
                f"{at - self._last_checkpoint} apart, more than the configured {self.interval}")
        self._last_checkpoint, self._last_checkpoint_seq = at, record.seq
        return None

    def finish(  # noqa: C901 - the checks in order of weight, each one flat
            self, records: int, head: str) -> tuple[int | None, str] | None:
        """After the last record: open intents, the unsigned tail, the outside checkpoint."""
        for witness in self.witnessed:
            found = witness.finish(records, head)
            self.warnings.extend(witness.warnings)
            if found is not None:
                return found
        del head
        if self.pairing:
            return self.pairing[0]
        stale = [(seq, at) for seq, at in self._open.values() if self.now - at > OPEN_INTENT_GRACE]
        if stale:
            seq, _ = min(stale)
            return seq, "an intent without an outcome (run 'retentiond run --once' to settle it)"
        if self.outside is not None:
            if records < self.outside.size:
                return (None, f"the ledger holds {records} records but the checkpoint kept "
                              f"outside the database covers {self.outside.size}: it was truncated")
            if self._heads.get(self.outside.size) != self.outside.head:
                return (self.outside.size, "the ledger differs from the checkpoint kept outside "
                                           "the database")
        if self.public is None:
            return None
        self._unsigned()
        # A new install (a hold placed before the first run), a crash before a run's
        # checkpoint, a hold placed between daily runs: records not signed yet are no break.
        # Only a checkpoint kept outside the database (above) proves a tail was not cut.
        if self._last_checkpoint is None:
            if records:
                self.warnings.append(f"no signed checkpoint yet: the {records} records are "
                                     "not signed (the next run signs them)")
            return None
        if records > self._last_checkpoint_seq and self.now - self._last_checkpoint > self.interval:
            self.warnings.append(
                f"records {self._last_checkpoint_seq + 1}-{records} follow the last checkpoint, "
                f"which is older than {self.interval}: not signed yet (checkpoints stopped, or "
                "no run since); a checkpoint_file kept elsewhere is what detects a cut tail")
        return None


def auditor_for(settings: AuditSettings, ledger: AuditLedger, *, now: datetime | None = None,
                witnesses: Sequence[Witness] | None = None) -> EvidenceAuditor:
    """The auditor the settings ask for (checkpoint checks only with a verify key).

    ``witnesses``: those to check against instead of the configured ``witness_dir``.
    """
    public = (load_public_key(settings.verify_key.read_bytes())
              if settings.verify_key is not None else None)
    chosen = witnesses_for(settings) if witnesses is None else witnesses
    outside = None
    if settings.checkpoint_file is not None and settings.checkpoint_file.exists() and public:
        try:
            outside = open_note(settings.checkpoint_file.read_text(encoding="utf-8"),
                                settings.origin, public)
        except NoteError:
            outside = Checkpoint(settings.origin, -1, "")
    return EvidenceAuditor(settings.origin, public,
                           timedelta(seconds=settings.checkpoint_interval_seconds),
                           now or datetime.now(tz=UTC), outside,
                           pairing=ledger.pairing_problems(),
                           witnessed=[WitnessCheck(w, settings.origin, public) for w in chosen])


def config_digest(settings: Settings) -> str:
    """A digest of the settings as they shape enforcement (no secrets: only their locations)."""
    payload = settings.model_dump(mode="json")
    return hashlib.sha256(canonical(payload).encode()).hexdigest()[:16]


def certify(ledger: AuditLedger, signer: Signer | None, *, run_id: str, settings: Settings,
            reports: list[tuple[Rule, RuleReport]], started: datetime, ended: datetime,
            ) -> Record:
    """The disposition certificate of a run: what was done, under which rule versions, how.

    It dates both ends of an erasure: the values left the tables by the end of the window,
    and ``residual_horizon`` says when the copies outside them are gone (see
    :func:`residual_horizon`).
    """
    rules = []
    for rule, report in reports:
        census = report.census
        rules.append({
            "rule": rule.id, "version": rule.version, "action": rule.action.type,
            "method": action_for(rule.action).describe(), "status": report.status,
            "acted": report.acted, "reached": report.reached, "batches": report.batches,
            "held": census.held if census else None,
            "retained": census.protected if census else None,
            "blocked": census.blocked if census else None,
            "old_values": old_values(report, ended),
        })
    certificate = {
        "run_id": run_id, "tool": f"retentiond {__version__}",
        "config": config_digest(settings), "window": [started.isoformat(), ended.isoformat()],
        "key_id": settings.pseudonymize.key_id, "rules": rules,
        "residual_horizon": residual_horizon(settings.residual, rules, ended),
    }
    signature = None
    if signer is not None:
        signature = signer.key.sign(canonical(certificate).encode()).hex()
    return ledger.append(Entry(kind=Kind.CERTIFICATE, run_id=run_id,
                               body={"certificate": certificate, "signature": signature,
                                     "signed_by": signer.origin if signer else None}))


def old_values(report: RuleReport, ended: datetime) -> dict[str, object] | None:
    """Where the values a rule's run removed or rewrote still are, inside the database.

    ``gone_at``: when the last copy in the database's own files went (the compaction's end,
    or the run's end where the store zeroes them as it acts); ``remain``: what still holds
    them, and until when, when that is not dated.  None when the run changed no row.
    """
    if report.acted == 0 and report.reached == 0:
        return None
    compacted = report.compacted
    if report.residue is not None:
        return {"gone_at": None, "remain": report.residue, "compacted": compacted}
    at = compacted["at"] if compacted is not None else ended.isoformat()
    return {"gone_at": at, "remain": None, "compacted": compacted}


def residual_horizon(residual: ResidualSettings, rules: Sequence[dict[str, Any]],
                     ended: datetime) -> dict[str, object]:
    """When every copy of what the run erased is gone: in the database, in backups, in WAL.

    ``erased`` is the run's end: no table shows the values after it.  ``backups`` and
    ``archived_wal`` are that moment plus the configured retention (``[residual]``), or
    unknown when it is not configured.  ``physically_gone`` is the latest of all of them,
    or None while any one is undated (then ``undated`` says which, and why).
    """
    copies: dict[str, object] = {"erased": ended.isoformat()}
    dated: list[str] = []
    undated: list[str] = []
    for rule in rules:
        found = rule["old_values"]
        if found is None:
            continue
        if found["gone_at"] is not None:
            dated.append(str(found["gone_at"]))
        else:
            undated.append(f"{rule['rule']}: {found['remain']}")
    for name, setting, period in (("backups", "backups", residual.backups),
                                  ("archived_wal", "wal", residual.wal)):
        if period is None:
            copies[name] = {"kept_for": None, "gone_by": None}
            if name == "backups":
                undated.append(f"backups: their retention is not stated ([residual] {setting})")
            continue
        gone = (ended + period.as_relativedelta()).isoformat()
        copies[name] = {"kept_for": str(period), "gone_by": gone}
        dated.append(gone)
    copies["physically_gone"] = (max(dated, key=datetime.fromisoformat, default=ended.isoformat())
                                 if not undated else None)
    copies["undated"] = undated
    return copies


def certificate_json(record: Record) -> str:
    """A certificate record as the JSON document handed to a reviewer."""
    return json.dumps({**record.entry.body, "ledger_seq": record.seq,
                       "record_hash": record.record_hash}, indent=2, sort_keys=True)
