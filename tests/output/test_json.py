"""``--json`` for scripts: one JSON document on stdout with the keys the README lists.

``status``, ``audit summary`` and ``run --once`` print nothing else on stdout with it; errors
stay on stderr.

Before, none of the three had it: ``status --json`` and ``audit summary --json`` were "no
such option", and ``run --once --json`` printed the human table.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

from output_kit import BRAKED_RULE, HOLD, LONG_RULE, ROWS, STAMP, cli, run_ids

RULE_KEYS = {"rule", "store", "table", "action", "enabled", "next_run", "last_run"}
LAST_RUN_KEYS = {"run_id", "started_at", "ended_at", "status", "acted"}


def test_status_json_has_the_documented_keys_and_the_last_runs(site):
    """``status --json``: per rule its next run and last run (full id, moments, outcome)."""
    assert 0 == cli(site, "run", "--once", "--rule", LONG_RULE).code
    (run_id,) = run_ids(site)

    shown = cli(site, "status", "--json")

    status = json.loads(shown.stdout)
    rules = {rule["rule"]: rule for rule in status["rules"]}
    last = rules[LONG_RULE]["last_run"]
    assert (0, "") == (shown.code, shown.stderr)
    assert {"now", "rules", "quarantine", "holds"} == set(status)
    assert [RULE_KEYS, RULE_KEYS] == [set(rule) for rule in status["rules"]]
    assert (LAST_RUN_KEYS, run_id, "done", 27, None) == (
        set(last), last["run_id"], last["status"], last["acted"], rules[BRAKED_RULE]["last_run"])
    assert [True] * 5 == [bool(STAMP.fullmatch(moment)) for moment in (
        status["now"], last["started_at"], last["ended_at"], rules[LONG_RULE]["next_run"],
        rules[BRAKED_RULE]["next_run"])]
    assert {"batches": 4, "rows": 27} == status["quarantine"]
    assert [{"id": HOLD, "store": "app", "table": "tickets",
             "reason": "Complaint by customer 4711."}] == status["holds"]


def test_audit_summary_json_is_the_ledger_per_rule(site):
    """``audit summary --json``: one object per rule with every count, as the ledger adds up."""
    assert 0 == cli(site, "run", "--once", "--rule", LONG_RULE).code

    shown = cli(site, "audit", "summary", "--json")

    assert (0, "") == (shown.code, shown.stderr)
    assert [{"rule": LONG_RULE, "action": "quarantine", "acted": 27, "reached": 0, "held": 3,
             "retained": 0, "blocked": 0, "batches": 4, "runs": 1, "failed_runs": 0,
             "brake_stops": 0}] == json.loads(shown.stdout)


def test_run_once_json_is_one_document_with_the_run_and_each_rule(site):
    """``run --once --json``: the run's id, and per rule its status, counts and batches."""
    shown = cli(site, "run", "--once", "--rule", LONG_RULE, "--json")

    done = json.loads(shown.stdout)
    assert (0, "") == (shown.code, shown.stderr)
    assert {"run_id", "rules", "purged", "problems", "stopped_by"} == set(done)
    assert (run_ids(site), [], [], None) == (
        [done["run_id"]], done["purged"], done["problems"], done["stopped_by"])
    assert [{"rule": LONG_RULE, "status": "done", "acted": 27, "reached": 0, "batches": 4,
             "error": None}] == done["rules"]


def test_run_once_json_of_a_braked_rule_says_stopped_and_exits_1(site):
    """A brake: the JSON says ``stopped`` with the reason, stderr has the error line, exit 1."""
    shown = cli(site, "run", "--once", "--rule", BRAKED_RULE, "--json")

    done = json.loads(shown.stdout)
    (rule,) = done["rules"]
    errors = [line for line in shown.stderr.splitlines() if line.startswith("error: ")]
    assert (1, "stopped", 0, 1) == (shown.code, rule["status"], rule["acted"], len(errors))
    assert f"would act on {ROWS - 3} of {ROWS} rows, over max_rows=3" in rule["error"]
    assert [errors[0].removeprefix("error: ")] == done["problems"]


def test_audit_verify_json_says_ok_with_counts_and_the_head(site):
    """``audit verify --json``: ok, how many records, the chain head, no warnings or intents."""
    assert 0 == cli(site, "run", "--once", "--rule", LONG_RULE).code
    with closing(sqlite3.connect(site.root / "state.db")) as connection:
        records, head = connection.execute(
            "SELECT count(*), (SELECT chain_hash FROM audit_log ORDER BY seq DESC LIMIT 1) "
            "FROM audit_log").fetchone()

    shown = cli(site, "audit", "verify", "--json")

    verified = json.loads(shown.stdout)
    assert (0, "") == (shown.code, shown.stderr)
    assert {"ok": True, "records": records, "head": head, "broken_seq": None, "reason": None,
            "signatures_checked": False, "witnesses": [], "warnings": [],
            "open_intents": []} == verified


def test_audit_verify_json_names_a_tampered_record_and_exits_1(site):
    """A changed record: ``ok`` false, its sequence number and the reason, exit 1."""
    assert 0 == cli(site, "run", "--once", "--rule", LONG_RULE).code
    with closing(sqlite3.connect(site.root / "state.db")) as connection, connection:
        connection.execute("DROP TRIGGER audit_log_no_update")
        (seq,) = connection.execute("SELECT min(seq) FROM audit_log "
                                    "WHERE kind = 'batch.outcome'").fetchone()
        connection.execute("UPDATE audit_log SET body = replace(body, '\"count\":7', "
                           "'\"count\":6') WHERE seq = ?", (seq,))

    shown = cli(site, "audit", "verify", "--json")

    verified = json.loads(shown.stdout)
    assert (1, False, seq, True) == (shown.code, verified["ok"], verified["broken_seq"],
                                     bool(verified["reason"]))
