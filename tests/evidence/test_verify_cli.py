"""``audit verify`` through the CLI: forgeries a key-less attacker can make, and no false alarms.

These drive the real CLI on a SQLite state database and tamper with plain SQL, so they say the
same of any version of retentiond: each failed before issue 13 (a forged tail and a duplicate
key verified; a gap between daily runs and a hold on a new install were BROKEN) and passes
since.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from evidence_kit import EMAIL_ROWS, EMAILS, POLICY, Site, make_site

from retentiond.ledger.chain import Entry, Kind, Record

FORGED_BODY = '{"count":1}'


def signing_site(root: Path, audit: str = "") -> Site:
    """The emails site with a signing key and its public half configured (``audit``: more)."""
    made = make_site(root, {"app": {EMAILS: EMAIL_ROWS}}, POLICY)
    made.ok("audit", "keygen", "--out", str(root / "keys"))
    with made.config.open("a", encoding="utf-8") as config:
        config.write(f'\n[audit]\n{audit}'
                     f'signing_key = {{ file = "{root / "keys" / "signing.key"}" }}\n'
                     f'verify_key = "{root / "keys" / "verify.pub"}"\n')
    return made


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """The signing site after one run."""
    made = signing_site(tmp_path, 'origin = "retentiond.test/forgery"\n')
    made.ok("run", "--once")
    return made


def _state(site: Site) -> sqlite3.Connection:
    conn = sqlite3.connect(site.state_url.removeprefix("sqlite:///"))
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    return conn


def _forge_tail(site: Site) -> int:
    """Append an intent and an outcome with a recomputed chain; the first forged seq."""
    with closing(_state(site)) as conn, conn:
        seq, at, chain = conn.execute(
            "SELECT seq, at, chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        first = seq + 1
        for kind in (Kind.INTENT, Kind.OUTCOME):
            seq += 1
            entry = Entry(kind, rule="emails-12-months", action="delete", batch_id="forged")
            record_hash = hashlib.sha256(Record(seq, at, entry, "", "").hashed_text(
                FORGED_BODY).encode()).hexdigest()
            chain = hashlib.sha256((chain + record_hash).encode()).hexdigest()
            conn.execute(
                "INSERT INTO audit_log (seq, at, kind, rule, action, batch_id, body, "
                "record_hash, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, at, kind.value, entry.rule, entry.action, entry.batch_id, FORGED_BODY,
                 record_hash, chain))
    return first


def test_a_forged_tail_is_broken_before_and_after_the_next_genuine_run(site):
    """An intent and outcome appended by someone without the key: exit 1 now and after a run."""
    first = _forge_tail(site)
    before = site.cli("audit", "verify")
    site.ok("run", "--once")
    after = site.cli("audit", "verify")
    expected = (f"BROKEN at record {first}: the record (batch.intent) is not signed, though "
                "the daemon signs every record since 1: it was forged, or written without the "
                "signing key")
    assert (1, 1) == (before.returncode, after.returncode)
    assert [expected, expected] == [result.stderr.strip().rsplit(" (", 1)[0]  # "(N records read)"
                                    for result in (before, after)]


def test_a_body_with_a_duplicate_key_is_broken(site):
    """A second ``count`` before the real one: Python reads the old value, SQLite the new."""
    with closing(_state(site)) as conn, conn:
        seq, body = conn.execute("SELECT seq, body FROM audit_log WHERE kind = 'batch.outcome' "
                                 "ORDER BY seq LIMIT 1").fetchone()
        conn.execute("UPDATE audit_log SET body = ? WHERE seq = ?",
                     ('{"count":2000,' + body[1:], seq))
        read_by_sqlite = conn.execute("SELECT json_extract(body, '$.count') FROM audit_log "
                                      "WHERE seq = ?", (seq,)).fetchone()[0]
    result = site.cli("audit", "verify")
    assert (2000, 1) == (read_by_sqlite, result.returncode)
    assert result.stderr.startswith(f"BROKEN at record {seq}: the record's contents do not "
                                    "match its hash")


def test_a_hold_placed_where_the_key_cannot_be_read_is_listed_not_broken(site, tmp_path):
    """Counsel's ``hold add`` away from the service's key: said at once, a warning in verify."""
    key = tmp_path / "keys" / "signing.key"
    key.rename(tmp_path / "elsewhere.key")
    placed = site.cli("hold", "add", "--store", "app", "--table", "emails", "--where",
                      "customer_id=4711", "--reason", "Complaint.")
    key.parent.joinpath("signing.key").symlink_to(tmp_path / "elsewhere.key")
    result = site.cli("audit", "verify")
    seq = len(site.records())
    assert (0, True) == (placed.returncode, placed.stderr.startswith(
        "note: this record is not signed (cannot read the key file"))
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert (0, [f"warning: record {seq} of holds placed or released is not signed: written "
                "where the signing key could not be read (the CLI); the chain and later "
                "checkpoints still cover them"]) == (result.returncode, warnings)


def test_a_hold_placed_with_the_key_at_hand_is_signed(site):
    """Where the key can be read, a hold's record is signed like a run's: nothing to list."""
    site.ok("hold", "add", "--store", "app", "--table", "emails", "--where", "customer_id=4711",
            "--reason", "Complaint.")
    result = site.cli("audit", "verify")
    assert (0, []) == (result.returncode, [line for line in result.stdout.splitlines()
                                           if line.startswith("warning:")])


def test_daily_runs_further_apart_than_the_interval_verify_with_a_warning(tmp_path):
    """Two runs more than ``checkpoint_interval_seconds`` apart: exit 0, the gap a warning.

    The CLI takes no clock, so the gap is a real one: a second between two runs, with the
    interval at one second (a daily timer against the default hour, scaled down).
    """
    made = signing_site(tmp_path, "checkpoint_interval_seconds = 1\n")
    made.ok("run", "--once")
    time.sleep(1.1)
    made.ok("run", "--once")
    result = made.cli("audit", "verify")
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert (0, "", 1) == (result.returncode, result.stderr, len(warnings))
    assert warnings[0].startswith("warning: checkpoints at records ")


def test_a_hold_on_a_new_install_verifies_as_nothing_signed_yet(tmp_path):
    """``hold add`` before the first run, then verify: intact, exit 0, nothing signed yet."""
    made = make_site(tmp_path, {"app": {EMAILS: EMAIL_ROWS}}, POLICY)
    made.ok("audit", "keygen", "--out", str(tmp_path / "keys"))
    with made.config.open("a", encoding="utf-8") as config:
        config.write(f'\n[audit]\nverify_key = "{tmp_path / "keys" / "verify.pub"}"\n')
    made.ok("hold", "add", "--store", "app", "--table", "emails", "--where", "customer_id=4711",
            "--reason", "Complaint.")
    result = made.cli("audit", "verify")
    assert (0, "") == (result.returncode, result.stderr)
    assert "warning: no signed checkpoint yet: the 1 records are not signed" in result.stdout
