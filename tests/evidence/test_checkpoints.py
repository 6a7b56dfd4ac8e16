"""Signed checkpoints: what verification catches, and what it needs the key for."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from evidence_kit import tamper

from retentiond.ledger.chain import AuditLedger, Entry, Kind
from retentiond.ledger.checkpoints import Checkpoint, NoteError, key_id, open_note, sign
from retentiond.ledger.evidence import EvidenceAuditor, Signer, write_checkpoint
from retentiond.ledger.state import StateDB

ORIGIN = "retentiond.test/audit"
HOUR = timedelta(hours=1)


@pytest.fixture
def signer():
    return Signer(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def ledger(state: StateDB, signer: Signer) -> AuditLedger:
    """The ledger as a run writes it: every record signed with the daemon's key."""
    return AuditLedger(state, vouch=signer.vouch)


def _auditor(signer: Signer, ledger: AuditLedger, **overrides) -> EvidenceAuditor:
    options = {"origin": ORIGIN, "public": signer.key.public_key(), "interval": HOUR,
               "now": datetime.now(tz=UTC), "pairing": ledger.pairing_problems()}
    options.update(overrides)
    return EvidenceAuditor(**options)


def _history(ledger: AuditLedger, signer: Signer, batches: int = 3) -> None:
    """A few audited batches, each followed by a checkpoint."""
    for number in range(batches):
        batch = f"b{number}"
        ledger.append(Entry(Kind.INTENT, rule="r", action="delete", batch_id=batch,
                            body={"count": 2}))
        ledger.append(Entry(Kind.OUTCOME, rule="r", action="delete", batch_id=batch,
                            body={"status": "applied", "keys": [[number * 2], [number * 2 + 1]],
                                  "count": 2}))
        write_checkpoint(ledger, signer)


def test_a_signed_note_opens_with_the_public_key_only(signer):
    """A checkpoint note signed with the private key opens with the public key."""
    note = sign(Checkpoint(ORIGIN, 7, "ab" * 32), signer.key)
    assert Checkpoint(ORIGIN, 7, "ab" * 32) == open_note(note, ORIGIN, signer.key.public_key())
    assert note.splitlines()[-1].startswith("\u2014 " + ORIGIN + " ")


def test_the_key_id_follows_the_signed_note_spec(signer):
    """Key id = SHA-256(name || 0x0A || 0x01 || public key)[:4], first bytes of the stamp."""
    note = sign(Checkpoint(ORIGIN, 1, "00" * 32), signer.key)
    stamp = base64.b64decode(note.splitlines()[-1].split(" ")[-1])
    assert key_id(ORIGIN, signer.key.public_key()) == stamp[:4]
    assert 68 == len(stamp)


def test_an_untouched_history_verifies(ledger, signer):
    """Chain, checkpoints and intent/outcome pairs all check out on an honest ledger."""
    _history(ledger, signer)
    result = ledger.verify(_auditor(signer, ledger))
    assert (True, 9) == (result.ok, result.records)


def test_a_changed_byte_is_found(ledger, state, signer):
    """One byte changed in a record body breaks verification at that record."""
    _history(ledger, signer)
    tamper(state, "UPDATE audit_log SET body = replace(body, '[2]', '[9]') WHERE seq = 5")
    result = ledger.verify(_auditor(signer, ledger))
    assert (False, 5) == (result.ok, result.broken_seq)


def test_a_deleted_record_is_found(ledger, state, signer):
    """A record removed from the middle leaves a gap in the sequence."""
    _history(ledger, signer)
    tamper(state, "DELETE FROM audit_log WHERE seq = 4")
    result = ledger.verify(_auditor(signer, ledger))
    assert (False, 5) == (result.ok, result.broken_seq)
    assert "missing" in str(result.reason)


def test_two_reordered_records_are_found(ledger, state, signer):
    """Swapping two records' places breaks the hash of the first one moved."""
    _history(ledger, signer)
    tamper(state, "UPDATE audit_log SET seq = 1000 WHERE seq = 4",
            "UPDATE audit_log SET seq = 4 WHERE seq = 5",
            "UPDATE audit_log SET seq = 5 WHERE seq = 1000")
    result = ledger.verify(_auditor(signer, ledger))
    assert (False, 4) == (result.ok, result.broken_seq)


def test_a_truncated_tail_is_found_by_the_checkpoint_kept_outside(ledger, state, signer,
                                                                    tmp_path):
    """Cutting the newest records (checkpoint and all) is caught by the copy outside the DB."""
    outside = tmp_path / "checkpoint"
    _history(ledger, signer)
    write_checkpoint(ledger, signer, file=outside)
    kept = open_note(outside.read_text(), ORIGIN, signer.key.public_key())
    tamper(state, "DELETE FROM audit_log WHERE seq > 6")
    result = ledger.verify(_auditor(signer, ledger, outside=kept))
    assert not result.ok
    assert "truncated" in str(result.reason)


def test_a_tail_after_an_old_checkpoint_is_a_warning_not_a_break(ledger, state, signer):
    """Without the outside copy, records after an hour-old checkpoint are reported unsigned.

    A crash before a run's checkpoint looks the same as a cut newest checkpoint: only a copy
    kept outside the database (above) tells them apart, so this is no break of integrity.
    """
    _history(ledger, signer)
    ledger.append(Entry(Kind.RUN_START, rule="r", body={}))
    write_checkpoint(ledger, signer)
    tamper(state, "DELETE FROM audit_log WHERE seq = 11")  # the newest checkpoint
    later = datetime.now(tz=UTC) + 2 * HOUR
    result = ledger.verify(_auditor(signer, ledger, now=later))
    assert (True, 1) == (result.ok, len(result.warnings))
    assert result.warnings[0].startswith("records 10-10 follow the last checkpoint")


def test_a_history_re_signed_with_another_key_is_refused(ledger, state, signer):
    """A forged history with fresh checkpoints signed by a different key does not verify."""
    forger = Signer(ORIGIN, Ed25519PrivateKey.generate())
    _history(ledger, signer, batches=1)
    tamper(state, "DELETE FROM audit_log WHERE seq = 3")
    write_checkpoint(ledger, forger)
    result = ledger.verify(_auditor(signer, ledger))
    assert (False, 3) == (result.ok, result.broken_seq)
    assert "the record's signature does not verify with the configured key" == result.reason


def test_a_forger_without_the_key_cannot_make_a_note_that_opens(signer):
    """A note whose body was edited after signing is refused."""
    note = sign(Checkpoint(ORIGIN, 5, "cd" * 32), signer.key).replace("\n5\n", "\n6\n", 1)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note, ORIGIN, signer.key.public_key())


def test_checkpoints_too_far_apart_are_a_warning_about_liveness(ledger, signer):
    """Two checkpoints further apart than the interval: intact, with the gap reported."""
    _history(ledger, signer, batches=2)
    result = ledger.verify(_auditor(signer, ledger, interval=timedelta(microseconds=1)))
    assert (True, None, 1) == (result.ok, result.broken_seq, len(result.warnings))
    assert result.warnings[0].startswith("checkpoints at records 3 and 6 are ")


def test_a_month_of_daily_runs_verifies_without_a_false_alarm(ledger, signer):
    """Thirty runs a day apart (every gap longer than the interval), holds between: intact."""
    for day in range(30):  # a run: its batch, then its checkpoint
        batch = f"day{day}"
        ledger.append(Entry(Kind.INTENT, rule="r", action="delete", batch_id=batch,
                            body={"count": 1}))
        ledger.append(Entry(Kind.OUTCOME, rule="r", action="delete", batch_id=batch,
                            body={"status": "applied", "keys": [[day]], "count": 1}))
        write_checkpoint(ledger, signer)
        if day % 7 == 3:
            ledger.append(Entry(Kind.HOLD_PLACED, body={"hold": f"H-{day}"}))
    tiny = timedelta(microseconds=1)  # every gap between two runs is longer than it
    result = ledger.verify(_auditor(signer, ledger, interval=tiny,
                                    now=datetime.now(tz=UTC) + 2 * HOUR))
    assert (True, None, 29) == (result.ok, result.reason, len(result.warnings))


def test_a_new_install_with_a_hold_and_no_run_yet_is_intact(ledger, signer):
    """A hold placed before the first run: intact, nothing signed yet."""
    ledger.append(Entry(Kind.HOLD_PLACED, body={"hold": "H-1"}))
    result = ledger.verify(_auditor(signer, ledger))
    assert (True, ("no signed checkpoint yet: the 1 records are not signed (the next run signs "
                   "them)",)) == (result.ok, result.warnings)


def test_a_crash_before_the_first_checkpoint_is_intact(ledger, signer):
    """A first run that died before its checkpoint (its batch settled): intact, unsigned."""
    ledger.append(Entry(Kind.RUN_START, rule="r", body={}))
    ledger.append(Entry(Kind.INTENT, rule="r", action="delete", batch_id="b", body={}))
    ledger.append(Entry(Kind.OUTCOME, rule="r", action="delete", batch_id="b",
                        body={"status": "not applied", "recovered": True}))
    result = ledger.verify(_auditor(signer, ledger, now=datetime.now(tz=UTC) + 2 * HOUR))
    assert (True, 1) == (result.ok, len(result.warnings))


def test_an_intent_without_outcome_is_reported_once_stale(ledger, signer):
    """An intent left without an outcome is a finding once it is older than a batch can be."""
    ledger.append(Entry(Kind.INTENT, rule="r", action="delete", batch_id="lost", body={}))
    write_checkpoint(ledger, signer)
    fresh = ledger.verify(_auditor(signer, ledger))
    stale = ledger.verify(_auditor(signer, ledger, now=datetime.now(tz=UTC) + HOUR / 2))
    assert (True, False, 1) == (fresh.ok, stale.ok, stale.broken_seq)


def test_a_second_outcome_for_one_batch_is_reported(ledger, signer):
    """Two outcomes for one batch would count its rows twice: a finding."""
    _history(ledger, signer, batches=1)
    ledger.append(Entry(Kind.OUTCOME, rule="r", action="delete", batch_id="b0",
                        body={"status": "applied"}))
    write_checkpoint(ledger, signer)
    result = ledger.verify(_auditor(signer, ledger))
    assert (False, 4) == (result.ok, result.broken_seq)
