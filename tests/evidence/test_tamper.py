"""The ledger against an adversary: every attack we know of, each with its exact verdict.

The attacker owns the state database (drops the append-only triggers, rewrites rows) and knows
every algorithm (recomputes record hashes and the chain) but not the daemon's signing key.  The
history is what three runs write, with a hold placed by hand (unsigned) between the first two:

    1 run.start  2 intent  3 outcome  4 run.end  5 checkpoint  6 hold.placed (by hand)
    7 run.start  8 intent  9 outcome 10 run.end 11 checkpoint
   12 run.start 13 intent 14 outcome 15 run.end 16 checkpoint

Every checkpoint also goes to a checkpoint file and to a witness directory.  Each attack runs
on both state databases (SQLite and PostgreSQL); cutting the tail or rolling everything back
is only seen by the witness, which the last tests show.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from evidence_kit import drop_guards
from sqlalchemy import delete, insert, select

from retentiond.ledger.chain import GENESIS, AuditLedger, Entry, Kind, Record, Verification
from retentiond.ledger.checkpoints import Checkpoint, open_note, sign
from retentiond.ledger.evidence import EvidenceAuditor, Signer, write_checkpoint
from retentiond.ledger.state import StateDB, audit_log
from retentiond.ledger.witness import DirectoryWitness, WitnessCheck

ORIGIN = "retentiond.test/tamper"
HASH = "the record's contents do not match its hash"
CHAIN = "the chain hash does not follow from the previous record"
SIGNATURE = "the record's signature does not verify with the configured key"
NOT_CANONICAL = ("the record's body is not its canonical JSON (a duplicate key, or keys out of "
                 "order or spaced): it was not written by retentiond")
HAND_HOLD = ("record 6 of holds placed or released is not signed: written where the signing "
             "key could not be read (the CLI); the chain and later checkpoints still cover them")

Row = dict[str, Any]


def unsigned(kind: str) -> str:
    """The verdict on a record of ``kind`` that nobody signed."""
    return (f"the record ({kind}) is not signed, though the daemon signs every record since 1:"
            " it was forged, or written without the signing key")


@dataclass
class Scene:
    """The ledger under attack, the daemon's signer, and the checkpoint file outside."""

    state: StateDB
    ledger: AuditLedger
    signer: Signer
    outside: Path
    witness: DirectoryWitness

    def run(self, number: int) -> None:
        """One run as the daemon writes it: every record signed, then a checkpoint."""
        batch = f"b{number}"
        for entry in (
                Entry(Kind.RUN_START, run_id=f"run-{number}", rule="emails", body={}),
                Entry(Kind.INTENT, run_id=f"run-{number}", rule="emails", action="delete",
                      batch_id=batch, body={"count": 2}),
                Entry(Kind.OUTCOME, run_id=f"run-{number}", rule="emails", action="delete",
                      batch_id=batch, body={"count": 2, "keys": [[number * 2], [number * 2 + 1]],
                                            "status": "applied"}),
                Entry(Kind.RUN_END, run_id=f"run-{number}", rule="emails",
                      body={"status": "done"})):
            self.ledger.append(entry)
        write_checkpoint(self.ledger, self.signer, file=self.outside, witnesses=[self.witness])

    def verify(self, *, with_outside: bool = False, with_witness: bool = False
               ) -> Verification:
        """What ``audit verify`` answers (the checkpoint file, the witness consulted if asked)."""
        public = self.signer.key.public_key()
        outside = (open_note(self.outside.read_text(), ORIGIN, public) if with_outside
                   else None)
        witnessed = [WitnessCheck(self.witness, ORIGIN, public)] if with_witness else []
        auditor = EvidenceAuditor(ORIGIN, public, timedelta(hours=1), datetime.now(tz=UTC),
                                  outside, pairing=self.ledger.pairing_problems(),
                                  witnessed=witnessed)
        return self.ledger.verify(auditor)


@pytest.fixture
def scene(state: StateDB, tmp_path: Path) -> Scene:
    """The history above, written honestly."""
    signer = Signer(ORIGIN, Ed25519PrivateKey.generate())
    (tmp_path / "witness").mkdir()
    made = Scene(state, AuditLedger(state, vouch=signer.vouch), signer, tmp_path / "checkpoint",
                 DirectoryWitness(tmp_path / "witness"))
    made.run(1)
    AuditLedger(state).append(Entry(Kind.HOLD_PLACED, body={"hold": "H-1"}))  # by hand
    made.run(2)
    made.run(3)
    return made


# -- what the attacker can do -------------------------------------------------------------


def sql(*statements: str) -> Callable[[Scene], None]:
    """An attack of plain SQL statements, the triggers dropped first."""

    def attack(scene: Scene) -> None:
        drop_guards(scene.state)
        with scene.state.engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)

    return attack


def _rows(state: StateDB) -> list[Row]:
    with state.engine.connect() as conn:
        return [dict(row) for row in
                conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings()]


def _record_hash(row: Row) -> str:
    """The record hash as anyone who read the code computes it, over the stored body."""
    entry = Entry(Kind(row["kind"]), run_id=row["run_id"], rule=row["rule"],
                  rule_version=row["rule_version"], store=row["store"], table=row["table_name"],
                  action=row["action"], batch_id=row["batch_id"])
    text = Record(row["seq"], row["at"], entry, "", "").hashed_text(row["body"])
    return hashlib.sha256(text.encode()).hexdigest()


def rewrite(edit: Callable[[list[Row]], list[Row]], *, renumber: bool = True,
            resign: Signer | None = None) -> Callable[[Scene], None]:
    """An attack that edits the rows, then renumbers them and recomputes every hash and link.

    Without the key the old signatures stay (or ``resign``: a key of the attacker's own
    signs the records and the checkpoints again).
    """

    def attack(scene: Scene) -> None:
        rows = edit(_rows(scene.state))
        chain = GENESIS
        for number, row in enumerate(rows, start=1):
            if renumber:
                row["seq"] = number
            if resign is not None and row["kind"] == Kind.CHECKPOINT.value:
                note = sign(Checkpoint(ORIGIN, row["seq"] - 1, chain), resign.key)
                row["body"] = (f'{{"head":"{chain}","note":{_json(note)},'
                               f'"size":{row["seq"] - 1}}}')
            row["record_hash"] = _record_hash(row)
            chain = row["chain_hash"] = hashlib.sha256(
                (chain + row["record_hash"]).encode()).hexdigest()
            if resign is not None and row["signature"] is not None:
                row["signature"] = resign.vouch(row["record_hash"])
        drop_guards(scene.state)
        with scene.state.engine.begin() as conn:
            conn.execute(delete(audit_log))
            conn.execute(insert(audit_log), rows)

    return attack


def _json(text: str) -> str:
    import json  # noqa: PLC0415 - only the re-signing attack needs it

    return json.dumps(text, ensure_ascii=False)


def without(*seqs: int) -> Callable[[list[Row]], list[Row]]:
    """Drop these records."""
    return lambda rows: [row for row in rows if row["seq"] not in seqs]


def without_checkpoints(rows: list[Row]) -> list[Row]:
    """Drop every checkpoint record."""
    return [row for row in rows if row["kind"] != Kind.CHECKPOINT.value]


def forged_after(seq: int, *kinds: Kind) -> Callable[[list[Row]], list[Row]]:
    """Insert records of ``kinds`` after record ``seq``, looking like a run's batch."""

    def edit(rows: list[Row]) -> list[Row]:
        at = rows[seq - 1]["at"]
        forged = [{"seq": 0, "at": at, "kind": kind.value, "run_id": "run-2", "rule": "emails",
                   "rule_version": None, "store": None, "table_name": None, "action": "delete",
                   "batch_id": "forged", "body": '{"count":2}', "record_hash": "",
                   "chain_hash": "", "signature": None} for kind in kinds]
        return rows[:seq] + forged + rows[seq:]

    return edit


def body_of(seq: int, text: str) -> Callable[[list[Row]], list[Row]]:
    """Record ``seq`` with ``text`` for its stored body."""

    def edit(rows: list[Row]) -> list[Row]:
        rows[seq - 1]["body"] = text
        return rows

    return edit


DUPLICATE_KEY = '{"count":2000,"count":2,"keys":[[4],[5]],"status":"applied"}'
"""Record 9's body with a second ``count``: Python's json reads 2, SQLite's json_extract 2000."""

BROKEN_AT: list[tuple[str, Callable[[Scene], None], int | None, str]] = [
    ("byte flip in a body", sql("UPDATE audit_log SET body = replace(body, '[4]', '[7]') "
                                "WHERE seq = 9"), 9, HASH),
    ("bit flip in a chain hash",
     sql("UPDATE audit_log SET chain_hash = CASE WHEN substr(chain_hash, 1, 1) = '0' THEN "
         "'1' || substr(chain_hash, 2) ELSE '0' || substr(chain_hash, 2) END WHERE seq = 8"),
     8, CHAIN),
    ("changed column", sql("UPDATE audit_log SET rule = 'invoices' WHERE seq = 13"), 13, HASH),
    ("deleted record", sql("DELETE FROM audit_log WHERE seq = 8"), 9,
     "sequence jumps from 7 to 9: records are missing"),
    ("deleted batch, chain recomputed", rewrite(without(8, 9)), 8, SIGNATURE),
    ("swapped records", sql("UPDATE audit_log SET seq = 1000 WHERE seq = 8",
                            "UPDATE audit_log SET seq = 8 WHERE seq = 9",
                            "UPDATE audit_log SET seq = 9 WHERE seq = 1000"), 8, HASH),
    ("forged record mid-ledger", rewrite(forged_after(9, Kind.OUTCOME)), 10,
     unsigned("batch.outcome")),
    ("dropped checkpoints, chain recomputed", rewrite(without_checkpoints), 6, SIGNATURE),
    ("history re-signed with another key",
     rewrite(without(8, 9), resign=Signer(ORIGIN, Ed25519PrivateKey.generate())), 1, SIGNATURE),
    ("forged tail after the last checkpoint", rewrite(forged_after(16, Kind.INTENT,
                                                                   Kind.OUTCOME)),
     17, unsigned("batch.intent")),
    ("signature removed", sql("UPDATE audit_log SET signature = NULL WHERE seq = 13"), 13,
     unsigned("batch.intent")),
    ("signature copied from another record",
     sql("UPDATE audit_log SET signature = (SELECT signature FROM audit_log WHERE seq = 12) "
         "WHERE seq = 13"), 13, SIGNATURE),
    ("duplicate key, hash untouched",
     sql(f"UPDATE audit_log SET body = '{DUPLICATE_KEY}' WHERE seq = 9"), 9, HASH),
    ("duplicate key, hashes recomputed", rewrite(body_of(9, DUPLICATE_KEY)), 9, NOT_CANONICAL),
    ("spaced body, hashes recomputed",
     rewrite(body_of(9, '{"count": 2, "keys": [[4], [5]], "status": "applied"}')), 9,
     NOT_CANONICAL),
]


@pytest.mark.parametrize(("attack", "seq", "reason"),
                         [pytest.param(a, s, r, id=name) for name, a, s, r in BROKEN_AT])
def test_each_attack_is_broken_at_the_record_it_touched(scene, attack, seq, reason):
    """Verify names the first record the attack touched, and why, on both state databases."""
    assert (True, None) == (scene.verify().ok, scene.verify().reason)
    attack(scene)
    result = scene.verify()
    assert (False, seq, reason) == (result.ok, result.broken_seq, result.reason)


def test_an_untouched_history_is_intact_with_the_hand_written_hold_listed(scene):
    """No false alarm: the only remark is the hold written without the key."""
    result = scene.verify(with_outside=True)
    assert (True, 16, (HAND_HOLD,)) == (result.ok, result.records, result.warnings)


def test_a_forged_tail_stays_broken_after_the_next_genuine_run(scene):
    """The next run's checkpoint signs the chain over the forgery, yet the forgery shows."""
    rewrite(forged_after(16, Kind.INTENT, Kind.OUTCOME))(scene)
    scene.run(4)
    result = scene.verify()
    assert (False, 17, unsigned("batch.intent")) == (result.ok, result.broken_seq,
                                                     result.reason)


def test_a_body_with_a_duplicate_key_reads_as_unreadable_not_as_either_value(scene):
    """Two JSON readers disagree on a duplicate key; ours takes neither value for the body."""
    sql(f"UPDATE audit_log SET body = '{DUPLICATE_KEY}' WHERE seq = 9")(scene)
    read = next(scene.ledger.records(after_seq=8)).entry.body
    assert {"unreadable": True} == dict(read)


def test_a_tail_cut_after_the_last_checkpoint_is_caught_by_the_checkpoint_file(scene):
    """Deleting the newest run, checkpoint and all: the file outside still covers 15 records."""
    sql("DELETE FROM audit_log WHERE seq > 11")(scene)
    result = scene.verify(with_outside=True)
    assert (False, None, "the ledger holds 11 records but the checkpoint kept outside the "
                         "database covers 15: it was truncated") == (
        result.ok, result.broken_seq, result.reason)


def test_a_cut_tail_is_invisible_without_the_witness_and_broken_with_it(scene):
    """The newest run cut, checkpoint file included in the cut: only the witness tells."""
    sql("DELETE FROM audit_log WHERE seq > 11")(scene)
    scene.outside.write_text(next(
        r for r in scene.ledger.records() if r.seq == 11).entry.body["note"])
    alone, witnessed = scene.verify(with_outside=True), scene.verify(with_witness=True)
    assert (True, False, None) == (alone.ok, witnessed.ok, witnessed.broken_seq)
    assert witnessed.reason == (f"the ledger holds 11 records but the witness in "
                                f"{scene.witness.where} saw 15: it was truncated or rolled back")


def test_a_rollback_with_the_checkpoint_file_is_broken_with_the_witness(scene):
    """The state database and the checkpoint file put back to an earlier copy, then a new run.

    Rolled back to after run 2 (records 1-11), the daemon carries on with run 4: the chain is
    whole and signed, the checkpoint file agrees, and only the witness saw another record 15.
    """
    sql("DELETE FROM audit_log WHERE seq > 11")(scene)
    scene.outside.write_text(next(
        r for r in scene.ledger.records() if r.seq == 11).entry.body["note"])
    scene.run(4)
    alone, witnessed = scene.verify(with_outside=True), scene.verify(with_witness=True)
    assert (True, False, 15) == (alone.ok, witnessed.ok, witnessed.broken_seq)
    assert witnessed.reason.startswith("the record differs from what the witness in ")
