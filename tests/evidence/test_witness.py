"""Witnesses: every checkpoint kept outside the database, and the ledger checked against them."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from evidence_kit import Site, tamper

from retentiond.errors import WitnessError
from retentiond.ledger.chain import AuditLedger, Entry, Kind, Record
from retentiond.ledger.checkpoints import Checkpoint, open_note, sign
from retentiond.ledger.evidence import EvidenceAuditor, Signer, write_checkpoint
from retentiond.ledger.state import StateDB
from retentiond.ledger.witness import DirectoryWitness, WitnessCheck, note_name

ORIGIN = "retentiond.test/audit"
HOUR = timedelta(hours=1)


@pytest.fixture
def signer() -> Signer:
    return Signer(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def ledger(state: StateDB, signer: Signer) -> AuditLedger:
    """The ledger as a run writes it: every record signed with the daemon's key."""
    return AuditLedger(state, vouch=signer.vouch)


@pytest.fixture
def witness(tmp_path: Path) -> DirectoryWitness:
    (tmp_path / "witness").mkdir()
    return DirectoryWitness(tmp_path / "witness")


def _auditor(signer: Signer, ledger: AuditLedger, *witnesses: DirectoryWitness,
             outside: Path | None = None) -> EvidenceAuditor:
    """The auditor ``audit verify`` builds: with the checkpoint file and the witnesses given."""
    public = signer.key.public_key()
    kept = open_note(outside.read_text(), ORIGIN, public) if outside is not None else None
    return EvidenceAuditor(ORIGIN, public, HOUR, datetime.now(tz=UTC), kept,
                           pairing=ledger.pairing_problems(),
                           witnessed=[WitnessCheck(w, ORIGIN, public) for w in witnesses])


def _runs(ledger: AuditLedger, signer: Signer, count: int = 1, **written) -> None:
    """Runs of one batch each, every one ending with a checkpoint written as the daemon does."""
    for _ in range(count):
        batch = f"b{ledger.count()}"
        ledger.append(Entry(Kind.INTENT, rule="r", action="delete", batch_id=batch,
                            body={"count": 1}))
        ledger.append(Entry(Kind.OUTCOME, rule="r", action="delete", batch_id=batch,
                            body={"status": "applied", "keys": [[batch]], "count": 1}))
        write_checkpoint(ledger, signer, **written)


def _checkpoints(ledger: AuditLedger) -> list[Record]:
    return [r for r in ledger.records() if r.entry.kind is Kind.CHECKPOINT]


def _kept(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Each file: inode, modification time and content, to see that none was rewritten."""
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns, path.read_bytes())
            for path in sorted(directory.iterdir())}


def test_every_checkpoint_is_published_as_a_new_file_that_is_never_rewritten(ledger, signer,
                                                                            witness):
    """One file per checkpoint, named by size and head, holding the signed note exactly."""
    _runs(ledger, signer, 2, witnesses=[witness])
    before = _kept(witness.path)
    _runs(ledger, signer, 2, witnesses=[witness])
    after = _kept(witness.path)
    published = {note_name(int(r.entry.body["size"]), str(r.entry.body["head"])):
                 str(r.entry.body["note"]).encode() for r in _checkpoints(ledger)}
    assert published == {name: content for name, (_, _, content) in after.items()}
    assert before == {name: after[name] for name in before}
    assert {0o444} == {path.stat().st_mode & 0o777 for path in witness.path.iterdir()}


def test_publishing_the_same_note_again_keeps_the_one_file(witness, signer):
    """The same checkpoint published twice: one file, unchanged, no error."""
    note = sign(Checkpoint(ORIGIN, 7, "ab" * 32), signer.key)
    witness.publish(note, 7, "ab" * 32)
    before = _kept(witness.path)
    witness.publish(note, 7, "ab" * 32)
    assert before == _kept(witness.path)
    assert [note_name(7, "ab" * 32)] == list(before)


def test_another_note_under_a_published_name_is_refused(witness, signer):
    """A different note for a size and head already published is refused; the file stays."""
    forger = Ed25519PrivateKey.generate()
    witness.publish(sign(Checkpoint(ORIGIN, 7, "ab" * 32), signer.key), 7, "ab" * 32)
    before = _kept(witness.path)
    with pytest.raises(WitnessError, match="holds another note") as raised:
        witness.publish(sign(Checkpoint(ORIGIN, 7, "ab" * 32), forger), 7, "ab" * 32)
    assert (str(witness.path), before) == (raised.value.witness, _kept(witness.path))


def test_a_witness_that_cannot_keep_the_note_leaves_the_checkpoint_in_the_ledger(
        ledger, signer, tmp_path):
    """A missing witness directory (not mounted) is a WitnessError; the record is written."""
    missing = DirectoryWitness(tmp_path / "not-mounted")
    with pytest.raises(WitnessError, match="not mounted"):
        _runs(ledger, signer, witnesses=[missing])
    assert ([3], False) == ([r.seq for r in _checkpoints(ledger)], missing.path.exists())


def test_an_untouched_ledger_that_grew_since_the_last_checkpoint_verifies(ledger, signer,
                                                                         witness):
    """No false alarm: every witnessed head matches, and newer unsigned records are fine."""
    _runs(ledger, signer, 3, witnesses=[witness])
    ledger.append(Entry(Kind.HOLD_PLACED, body={"hold": "H-1"}))
    ledger.append(Entry(Kind.RUN_START, rule="r", body={}))
    result = ledger.verify(_auditor(signer, ledger, witness))
    assert (True, None, 11, ()) == (result.ok, result.reason, result.records, result.warnings)


def test_a_cut_tail_is_found_by_the_witness_and_was_not_before(ledger, state, signer, witness):
    """The newest run and its checkpoint deleted: intact to the ledger, BROKEN to the witness."""
    _runs(ledger, signer, 3, witnesses=[witness])
    tamper(state, "DELETE FROM audit_log WHERE seq > 6")
    alone = ledger.verify(_auditor(signer, ledger))
    witnessed = ledger.verify(_auditor(signer, ledger, witness))
    assert (True, False, None) == (alone.ok, witnessed.ok, witnessed.broken_seq)
    assert (f"the ledger holds 6 records but the witness in {witness.path} saw 8: it was "
            "truncated or rolled back") == witnessed.reason


def test_a_rollback_with_the_checkpoint_file_is_found_by_the_witness(ledger, state, signer,
                                                                     witness, tmp_path):
    """Ledger and checkpoint file put back to an earlier day, then run on: the witness differs."""
    outside = tmp_path / "checkpoint"
    _runs(ledger, signer, 2, file=outside, witnesses=[witness])
    saved = outside.read_bytes()
    _runs(ledger, signer, 2, file=outside, witnesses=[witness])
    seen = {r.seq: r.chain_hash for r in ledger.records()}
    tamper(state, "DELETE FROM audit_log WHERE seq > 6")
    outside.write_bytes(saved)
    _runs(ledger, signer, 2, file=outside, witnesses=[witness])  # the daemon carries on
    alone = ledger.verify(_auditor(signer, ledger, outside=outside))
    witnessed = ledger.verify(_auditor(signer, ledger, witness, outside=outside))
    assert (True, False, 8) == (alone.ok, witnessed.ok, witnessed.broken_seq)
    assert (f"the record differs from what the witness in {witness.path} saw "
            f"({note_name(8, seen[8])}): the ledger was rewritten or rolled back"
            ) == witnessed.reason


def test_a_note_signed_by_another_key_in_the_witness_is_a_finding(ledger, signer, witness):
    """A checkpoint the verify key does not open, found among the witness's notes: BROKEN."""
    _runs(ledger, signer, 2, witnesses=[witness])
    forged = sign(Checkpoint(ORIGIN, 5, "cd" * 32), Ed25519PrivateKey.generate())
    witness.publish(forged, 5, "cd" * 32)
    result = ledger.verify(_auditor(signer, ledger, witness))
    assert (False, None) == (result.ok, result.broken_seq)
    assert (f"the witness in {witness.path} holds {note_name(5, 'cd' * 32)}, which does not "
            f"open with the verify key: not signed by the configured key of {ORIGIN!r}"
            ) == result.reason


def test_a_checkpoint_the_witness_did_not_see_is_a_warning(ledger, signer, witness):
    """The newest checkpoint not published (the witness was away): intact, with a warning."""
    _runs(ledger, signer, 2, witnesses=[witness])
    _runs(ledger, signer)
    result = ledger.verify(_auditor(signer, ledger, witness))
    assert (True, (f"the ledger's newest checkpoint signs 8 records and the witness in "
                   f"{witness.path} did not see it (the newest it saw signs 5): publishing "
                   "failed, or the witness is new",)) == (result.ok, result.warnings)


def test_an_empty_note_is_a_finding(ledger, signer, witness):
    """A note file left empty (a crash mid-publish, or a note erased) is BROKEN, not passed over."""
    _runs(ledger, signer, 1, witnesses=[witness])
    (witness.path / note_name(9, "00" * 32)).touch()
    result = ledger.verify(_auditor(signer, ledger, witness))
    assert (False, f"the witness in {witness.path} holds {note_name(9, '00' * 32)}, which is "
                   "empty: a publish cut short by a crash, or a note erased"
            ) == (result.ok, result.reason)


def test_an_older_note_copied_over_a_newer_one_is_a_finding(ledger, state, signer, witness):
    """The newest note's file overwritten with an older valid note, the tail cut: BROKEN."""
    _runs(ledger, signer, 3, witnesses=[witness])
    first, _, newest = sorted(witness.path.iterdir())
    newest.chmod(0o644)
    newest.write_bytes(first.read_bytes())
    tamper(state, "DELETE FROM audit_log WHERE seq > 6")
    result = ledger.verify(_auditor(signer, ledger, witness))
    assert (False, f"the witness in {witness.path} holds {newest.name}, which is the checkpoint "
                   "of 2 records (a note copied under another name)"
            ) == (result.ok, result.reason)


# -- the CLI, as an operator runs it ------------------------------------------------------------


@pytest.fixture
def signed(site: Site) -> Site:
    """The site with a signing key, a checkpoint file and a witness directory configured."""
    site.ok("audit", "keygen", "--out", str(site.root / "keys"))
    (site.root / "witness").mkdir()
    plain = site.root / "plain.toml"
    shutil.copy(site.config, plain)
    audit = (f'\n[audit]\norigin = "{ORIGIN}"\n'
             f'signing_key = {{file = "{site.root / "keys" / "signing.key"}"}}\n'
             f'verify_key = "{site.root / "keys" / "verify.pub"}"\n'
             f'checkpoint_file = "{site.root / "checkpoint"}"\n')
    with plain.open("a", encoding="utf-8") as handle:
        handle.write(audit)
    with site.config.open("a", encoding="utf-8") as handle:
        handle.write(audit + f'witness_dir = "{site.root / "witness"}"\n')
    return site


def test_the_cli_verifies_an_untouched_ledger_against_its_witness(signed):
    """Two runs, then 'audit verify --witness DIR': exit 0, the witness named."""
    signed.ok("run", "--once")
    signed.ok("run", "--once")
    stdout = signed.ok("audit", "verify", "--witness", str(signed.root / "witness"))
    assert stdout.startswith("ok: ")
    assert ("record signatures and checkpoints verified, including what the witness in "
            f"{signed.root / 'witness'} saw") == stdout.splitlines()[0].split("; ")[1]
    assert 2 == len(list((signed.root / "witness").iterdir()))


def test_the_cli_finds_the_state_file_and_checkpoint_file_rolled_back_together(signed):
    """State database and checkpoint file copied, a run, both put back: exit 1, one line."""
    signed.ok("run", "--once")
    copies = signed.root / "copies"
    copies.mkdir()
    kept = ["state.db", "state.db-wal", "state.db-shm", "checkpoint"]
    for name in kept:
        if (signed.root / name).exists():
            shutil.copy2(signed.root / name, copies / name)
    records = len(signed.records())
    signed.ok("run", "--once")
    witnessed = int(_last_checkpoint(signed).entry.body["size"])
    for name in kept:
        (signed.root / name).unlink(missing_ok=True)
        if (copies / name).exists():
            shutil.copy2(copies / name, signed.root / name)
    configured = signed.cli("audit", "verify")
    named = signed.cli("audit", "verify", "--witness", str(signed.root / "witness"))
    before = replace(signed, config=signed.root / "plain.toml").cli("audit", "verify")
    expected = (f"BROKEN at the ledger: the ledger holds {records} records but the witness in "
                f"{signed.root / 'witness'} saw {witnessed}: it was truncated or rolled back "
                f"({records} records read)\n")
    assert (1, expected) == (configured.returncode, configured.stderr)
    assert (1, expected) == (named.returncode, named.stderr)
    assert (0, "") == (before.returncode, before.stderr)


def test_run_once_reports_a_witness_that_is_away_and_keeps_the_checkpoint(signed):
    """Witness directory gone: the run exits 1 naming it; the ledger ends with its checkpoint."""
    (signed.root / "witness").rmdir()
    result = signed.cli("run", "--once")
    assert 1 == result.returncode
    assert (f"error: witness {signed.root / 'witness'}: is not a directory (not mounted?) (the "
            "checkpoint is in the ledger)\n") == result.stderr
    assert Kind.CHECKPOINT is signed.records()[-1].entry.kind


def _last_checkpoint(site: Site) -> Record:
    return [r for r in site.records() if r.entry.kind is Kind.CHECKPOINT][-1]
