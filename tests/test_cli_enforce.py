"""The enforcing commands as an operator types them: run --once, audit, quarantine."""

from __future__ import annotations

import getpass
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from retentiond.ledger.chain import AuditLedger, Kind, Record
from retentiond.ledger.state import StateDB

RULES = """
rules:
  - id: tickets-quarantine
    description: Closed tickets are isolated after 30 days.
    store: app
    table: tickets
    age: {{column: closed_at, older_than: 30 days}}
    action: {{type: quarantine, release_after: {release}}}
    limits: {{max_rows: {max_rows}, max_percent: 100}}
    batch_size: 3
"""


def _setup(tmp_path: Path, *, rows: int = 10, max_rows: int = 1000,
           release: str = "1 day") -> tuple[Path, Path]:
    store = tmp_path / "app.db"
    old = (datetime.now(tz=UTC) - timedelta(days=90)).replace(tzinfo=None)
    with sqlite3.connect(store) as conn:
        conn.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, requester VARCHAR(100), "
                     "closed_at DATETIME)")
        conn.executemany("INSERT INTO tickets VALUES (?, ?, ?)",
                         [(i, f"person{i}@example.com", old.isoformat(sep=" "))
                          for i in range(1, rows + 1)])
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "tickets.yaml").write_text(RULES.format(release=release, max_rows=max_rows))
    config = tmp_path / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{tmp_path}/state.db"\n'
                      f'log_format = "json"\n[stores.app]\nurl = "sqlite:///{store}"\n')
    return config, store


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def _count(store: Path, table: str) -> int:
    with sqlite3.connect(store) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_run_once_enforces_and_the_ledger_verifies(tmp_path):
    """Run --once acts on every eligible row, and audit verify then passes (exit 0)."""
    config, store = _setup(tmp_path)
    enforced = _cli(config, "run", "--once")
    verified = _cli(config, "audit", "verify")
    assert (0, 0) == (enforced.returncode, verified.returncode), enforced.stderr
    assert 0 == _count(store, "tickets")
    assert 10 == _count(store, "retentiond_q_tickets")
    assert verified.stdout.startswith("ok: ")
    assert "Traceback" not in enforced.stderr + verified.stderr


def test_a_brake_stops_the_rule_with_exit_1_and_changes_nothing(tmp_path):
    """Over max_rows the rule stops before acting: exit 1, one error line, rows untouched."""
    config, store = _setup(tmp_path, max_rows=5)
    result = _cli(config, "run", "--once")
    assert 1 == result.returncode
    assert 10 == _count(store, "tickets")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert 1 == len(errors)
    assert "would act on 10 of 10 rows, over max_rows=5" in errors[0]


def test_allow_exceed_acts_once_and_is_audited(tmp_path):
    """--allow-exceed lets the rule act beyond its brake, and the override is in the ledger."""
    config, store = _setup(tmp_path, max_rows=5)
    result = _cli(config, "run", "--once", "--allow-exceed")
    assert 0 == result.returncode, result.stderr
    assert 0 == _count(store, "tickets")
    with sqlite3.connect(tmp_path / "state.db") as conn:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM audit_log ORDER BY seq")]
    assert 1 == kinds.count("brake.override")


def test_audit_verify_names_a_tampered_record_and_exits_1(tmp_path):
    """A record changed behind the ledger's back is found: exit 1 and its sequence number."""
    config, _ = _setup(tmp_path)
    assert 0 == _cli(config, "run", "--once").returncode
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET body = replace(body, '\"count\":3', '\"count\":2') "
                     "WHERE seq = (SELECT min(seq) FROM audit_log WHERE kind = 'batch.outcome')")
        broken = conn.execute("SELECT min(seq) FROM audit_log WHERE kind = 'batch.outcome'"
                              ).fetchone()[0]
    result = _cli(config, "audit", "verify")
    assert 1 == result.returncode
    assert f"BROKEN at record {broken}:" in result.stderr


def test_quarantine_restore_puts_rows_back_exactly(tmp_path):
    """Quarantine restore --batch returns each row exactly as it was, and is audited."""
    config, store = _setup(tmp_path, rows=3)
    with sqlite3.connect(store) as conn:
        before = conn.execute("SELECT * FROM tickets ORDER BY id").fetchall()
    assert 0 == _cli(config, "run", "--once").returncode
    with sqlite3.connect(store) as conn:
        (batch,) = conn.execute("SELECT DISTINCT _rtd_batch FROM retentiond_q_tickets").fetchone()
    restored = _cli(config, "quarantine", "restore", "--batch", batch, "--reason", "dispute")
    with sqlite3.connect(store) as conn:
        after = conn.execute("SELECT * FROM tickets ORDER BY id").fetchall()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        ops = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'restore'").fetchone()
    assert 0 == restored.returncode, restored.stderr
    assert before == after
    assert (2,) == ops  # intent and outcome


def _batches(store: Path) -> list[str]:
    with sqlite3.connect(store) as conn:
        return [row[0] for row in conn.execute(
            "SELECT DISTINCT _rtd_batch FROM retentiond_q_tickets ORDER BY _rtd_batch")]


def _restores(state: Path) -> list[dict[str, object]]:
    with sqlite3.connect(state) as conn:
        return [json.loads(body) for (body,) in conn.execute(
            "SELECT body FROM audit_log WHERE action = 'restore' AND kind = 'batch.outcome'")]


def test_a_restored_batch_stays_out_of_quarantine_and_plan_and_explain_say_why(tmp_path):
    """A batch restored by prefix stays out of quarantine; plan and explain say why, until when."""
    config, store = _setup(tmp_path, rows=3)
    assert 0 == _cli(config, "run", "--once").returncode
    (batch,) = _batches(store)
    until = (datetime.now(tz=UTC) + timedelta(days=10)).date().isoformat()

    restored = _cli(config, "quarantine", "restore", batch[:8], "--until", until, "--by",
                    "alice", "--reason", "customer disputes")
    again = _cli(config, "run", "--once")
    planned = _cli(config, "plan")
    explained = _cli(config, "explain", "--store", "app", "--table", "tickets", "--key", "1")

    assert (0, 0, 0, 0) == (restored.returncode, again.returncode, planned.returncode,
                            explained.returncode), restored.stderr + again.stderr
    assert (f"restored batch {batch}: 3 rows of app.tickets, exempt from rule "
            f"tickets-quarantine until {until} (by alice)\n") == restored.stdout
    assert (3, 0) == (_count(store, "tickets"), _count(store, "retentiond_q_tickets"))
    assert [{"by": "alice", "reason": "customer disputes", "until": until}] == [
        {k: body[k] for k in ("by", "reason", "until")}
        for body in _restores(tmp_path / "state.db")]
    assert f"exempt:  3 rows restored from quarantine batch {batch} by alice" in planned.stdout
    assert f"exempt until {until}: customer disputes" in " ".join(planned.stdout.split())
    assert "decision:       EXEMPT (RESTORED FROM QUARANTINE): restored from quarantine" \
        in explained.stdout


def test_a_restore_without_by_is_recorded_as_the_os_user_for_30_days(tmp_path):
    """Without --by the OS user restores; without --until the exemption lasts 30 days."""
    config, store = _setup(tmp_path, rows=3)
    assert 0 == _cli(config, "run", "--once").returncode
    (batch,) = _batches(store)

    restored = _cli(config, "quarantine", "restore", batch, "--reason", "dispute")

    assert 0 == restored.returncode, restored.stderr
    (body,) = _restores(tmp_path / "state.db")
    assert (getpass.getuser(), (datetime.now(tz=UTC) + timedelta(days=30)).date().isoformat()
            ) == (body["by"], body["until"])


def test_quarantine_list_shows_full_batch_ids_and_json(tmp_path):
    """Quarantine list prints every batch id whole, on a pipe too; --json gives them to scripts."""
    config, store = _setup(tmp_path, rows=10)
    assert 0 == _cli(config, "run", "--once").returncode

    listed = _cli(config, "quarantine", "list")
    as_json = _cli(config, "quarantine", "list", "--json")

    assert (0, 0) == (listed.returncode, as_json.returncode)
    assert all(batch in listed.stdout for batch in _batches(store))
    assert "…" not in listed.stdout
    assert (_batches(store), [3, 3, 3, 1]) == (
        sorted(b["batch"] for b in json.loads(as_json.stdout)),
        sorted((b["rows"] for b in json.loads(as_json.stdout)), reverse=True))


def test_quarantine_list_is_a_table_where_it_fits_and_blocks_where_it_does_not(tmp_path):
    """160 columns: one table row per batch, ids whole; 60 columns: a block per batch."""
    config, store = _setup(tmp_path, rows=3)
    assert 0 == _cli(config, "run", "--once").returncode
    (batch,) = _batches(store)
    command = [sys.executable, "-m", "retentiond", "--config", str(config), "quarantine", "list"]

    wide, narrow = (subprocess.run(command, capture_output=True, text=True, timeout=120,
                                   check=True, env={**os.environ, "COLUMNS": columns}).stdout
                    for columns in ("160", "60"))

    assert [True] == [batch in line and "tickets-quarantine" in line
                      for line in wide.splitlines() if line.startswith("│")]
    assert [f"  batch:       {batch}", "  rule:        tickets-quarantine"] == [
        line for line in narrow.splitlines() if line.startswith(("  batch:", "  rule:"))]


def test_restoring_an_unknown_or_ambiguous_batch_is_one_line_and_exit_2(tmp_path):
    """No such batch, or a prefix two batches share: one error line naming the fix, exit 2."""
    config, store = _setup(tmp_path, rows=6)
    assert 0 == _cli(config, "run", "--once").returncode
    with sqlite3.connect(store) as conn:
        for batch, new in zip(_batches(store), ("abcd-1", "abcd-2"), strict=True):
            conn.execute("UPDATE retentiond_q_tickets SET _rtd_batch = ? WHERE _rtd_batch = ?",
                         (new, batch))

    unknown = _cli(config, "quarantine", "restore", "nope-nope", "--reason", "x", "--by", "a")
    ambiguous = _cli(config, "quarantine", "restore", "abcd", "--reason", "x", "--by", "a")

    assert (2, "error: no quarantined batch 'nope-nope' in any store (app); list them with "
               "'retentiond quarantine list'\n") == (unknown.returncode, unknown.stderr)
    assert (2, "error: batch 'abcd' is ambiguous: 2 quarantined batches start with it "
               "(abcd-1, abcd-2); give more of the id\n") == (ambiguous.returncode,
                                                                ambiguous.stderr)
    assert 0 == _count(store, "tickets")


def _sign(config: Path, keys: Path) -> None:
    """Configure a signing key and its public half, as the daemon's service has them."""
    assert 0 == _cli(config, "audit", "keygen", "--out", str(keys)).returncode
    with config.open("a", encoding="utf-8") as file:
        file.write(f'[audit]\nsigning_key = {{ file = "{keys / "signing.key"}" }}\n'
                   f'verify_key = "{keys / "verify.pub"}"\n')


def test_a_restore_is_signed_like_a_run_and_the_ledger_verifies_without_a_warning(tmp_path):
    """The restore's intent and outcome carry the key's signature: verify exits 0, no remark."""
    config, _ = _setup(tmp_path, rows=3)
    _sign(config, tmp_path / "keys")
    assert 0 == _cli(config, "run", "--once").returncode
    with sqlite3.connect(tmp_path / "app.db") as conn:
        (batch,) = conn.execute("SELECT DISTINCT _rtd_batch FROM retentiond_q_tickets").fetchone()
    restored = _cli(config, "quarantine", "restore", "--batch", batch, "--reason", "dispute")
    verified = _cli(config, "audit", "verify")
    assert (0, 0, "") == (restored.returncode, verified.returncode, verified.stderr)
    assert [] == [line for line in verified.stdout.splitlines() if line.startswith("warning")]


def test_a_restore_where_the_key_cannot_be_read_is_refused_before_it_acts(tmp_path):
    """Without the key the restore's records could not be told from a forgery: exit 2, no change."""
    config, store = _setup(tmp_path, rows=3)
    _sign(config, tmp_path / "keys")
    assert 0 == _cli(config, "run", "--once").returncode
    (tmp_path / "keys" / "signing.key").unlink()
    with sqlite3.connect(store) as conn:
        (batch,) = conn.execute("SELECT DISTINCT _rtd_batch FROM retentiond_q_tickets").fetchone()
    restored = _cli(config, "quarantine", "restore", "--batch", batch, "--reason", "dispute")
    assert (2, 0) == (restored.returncode, _count(store, "tickets"))
    assert restored.stderr.startswith("error: cannot read the key file ")


def test_quarantine_purge_leaves_batches_before_their_release(tmp_path):
    """Quarantine purge deletes nothing whose release date lies in the future."""
    config, store = _setup(tmp_path, rows=3, release="1 minute")
    assert 0 == _cli(config, "run", "--once").returncode
    result = _cli(config, "quarantine", "purge")
    listed = _cli(config, "quarantine", "list")
    assert (0, 0) == (result.returncode, listed.returncode)
    assert "0 batch(es) purged" in result.stdout
    assert 3 == _count(store, "retentiond_q_tickets")
    assert "tickets-quarantine" in listed.stdout


def test_run_without_once_or_dry_run_is_refused(tmp_path):
    """Plain 'run' says what to add, exits 2 and touches nothing."""
    config, store = _setup(tmp_path)
    result = _cli(config, "run")
    assert 2 == result.returncode
    assert 10 == _count(store, "tickets")
    assert result.stderr.startswith("error: ")
    assert 1 == len(result.stderr.strip().splitlines())


def test_sigterm_finishes_the_batch_in_flight_records_the_stop_and_exits_3(tmp_path):
    """Run --once under a timer, stopped by SIGTERM: no open intent, run.end says stopped."""
    config, store = _setup(tmp_path, rows=12)
    policy = tmp_path / "policies" / "tickets.yaml"
    policy.write_text(policy.read_text() + "    throttle: 3\n")  # 1 s between batches of 3
    state = StateDB(f"sqlite:///{tmp_path}/state.db")
    ledger = AuditLedger(state)
    command = [sys.executable, "-m", "retentiond", "--config", str(config), "run", "--once"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        deadline = time.monotonic() + 60
        while not any(r.entry.kind is Kind.OUTCOME for r in _records(ledger)):
            assert time.monotonic() < deadline, "no batch was recorded within a minute"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)

    records = _records(ledger)
    intents = {r.entry.batch_id for r in records if r.entry.kind is Kind.INTENT}
    outcomes = {r.entry.batch_id for r in records if r.entry.kind is Kind.OUTCOME}
    ends = [r.entry.body["status"] for r in records if r.entry.kind is Kind.RUN_END]
    state.close()
    assert (3, ["stopped"], intents) == (process.returncode, ends, outcomes), errors
    assert "stopped by SIGTERM" in errors
    assert 0 < _count(store, "tickets") < 12
    assert 0 == _cli(config, "audit", "verify").returncode


def _records(ledger: AuditLedger) -> list[Record]:
    return list(ledger.records())


def test_a_lease_that_cannot_be_taken_is_a_failed_run_in_the_ledger_and_status(tmp_path):
    """A lease that cannot be taken at all is a failed run: in the ledger and in ``status``.

    Here a file stands where the leases' directory should be.  One error line and exit 1,
    ``run.end`` failed with the reason, ``status`` says failed, nothing acted on.  Before, it
    was a traceback and nothing in the ledger.
    """
    config, store = _setup(tmp_path, rows=3)
    (tmp_path / "state.db.leases").write_text("not a directory")

    enforced = _cli(config, "run", "--once")
    status = _cli(config, "status")

    errors = [line for line in enforced.stderr.splitlines() if line.startswith("error:")]
    assert (1, 1) == (enforced.returncode, len(errors)), enforced.stderr
    assert "cannot take the lease of rule 'tickets-quarantine'" in errors[0]
    assert "Traceback" not in enforced.stderr
    with sqlite3.connect(tmp_path / "state.db") as conn:
        ends = conn.execute("SELECT body FROM audit_log WHERE kind = 'run.end'").fetchall()
        (remaining,) = sqlite3.connect(store).execute("SELECT count(*) FROM tickets").fetchone()
    assert 1 == len(ends)
    assert '"status":"failed"' in ends[0][0].replace(" ", "")
    assert "cannot take the lease" in ends[0][0]
    assert 3 == remaining
    assert "failed" in status.stdout


@pytest.mark.parametrize("server", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)
def test_a_failed_compaction_is_an_error_line_and_the_run_stands(tmp_path, backend):
    """``run --once``: a compaction that cannot have its lock is one ``error:`` line, exit 1.

    The rows are deleted all the same and the ledger verifies: compaction undoes nothing.
    """
    engine = sa.create_engine(backend, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE people (id INTEGER PRIMARY KEY, "
                                   "last_seen TIMESTAMP, email VARCHAR(80))")
        connection.exec_driver_sql("INSERT INTO people SELECT g, TIMESTAMP '2020-01-01', "
                                   "'p' || g || '@example.org' FROM generate_series(1, 6) g")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "people.yaml").write_text(
        "rules:\n  - id: people-delete\n    description: People go after a year.\n"
        "    store: app\n    table: people\n"
        "    age: {column: last_seen, older_than: 12 months}\n"
        "    action: {type: delete}\n    limits: {max_rows: 100, max_percent: 100}\n"
        "    compact: rewrite\n")
    config = tmp_path / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{tmp_path}/state.db"\n'
                      f'log_format = "json"\n[stores.app]\nurl = "{backend}"\n'
                      "lock_timeout_ms = 300\n")
    try:
        with engine.connect() as reader:  # a transaction that has read the table
            reader.exec_driver_sql("SELECT count(*) FROM people").scalar_one()
            result = _cli(config, "run", "--once")
        with engine.connect() as connection:
            left = connection.exec_driver_sql("SELECT count(*) FROM people").scalar_one()
    finally:
        engine.dispose()
    verified = _cli(config, "audit", "verify")

    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert (1, 0, 0) == (result.returncode, left, verified.returncode), result.stderr
    assert 1 == len(errors)
    assert errors[0].startswith("error: rule people-delete: compaction failed: ")
    assert errors[0].endswith("(the run is done and recorded; the old values wait for the next "
                              "compaction)")
