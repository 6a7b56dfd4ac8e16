"""``audit export``: the ledger as CSV or JSON Lines, stable columns, filtered by time and rule."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from evidence_kit import RULE

from retentiond.ledger.export import COLUMNS

TODAY = datetime.now(tz=UTC).date()


def _csv(site, *args: str) -> list[dict[str, str]]:
    text = site.ok("audit", "export", "--format", "csv", *args)
    reader = csv.DictReader(io.StringIO(text))
    assert list(COLUMNS) == reader.fieldnames
    return list(reader)


def test_csv_has_the_documented_columns_and_every_record(enforced):
    """One CSV line per ledger record, in order, with the documented columns (today: all)."""
    rows = _csv(enforced, "--since", TODAY.isoformat(), "--until", TODAY.isoformat())
    records = enforced.records()
    (outcome,) = [r for r in rows if r["kind"] == "batch.outcome"]

    assert [str(r.seq) for r in records] == [r["seq"] for r in rows]
    assert ["seq", "at", "kind", "run_id", "rule", "rule_version", "store", "table", "action",
            "batch_id", "status", "count", "keys", "record_hash", "chain_hash",
            "signature"] == list(COLUMNS)
    assert (RULE, "app", "emails", "delete", "applied", "1", "[[1]]") == (
        outcome["rule"], outcome["store"], outcome["table"], outcome["action"],
        outcome["status"], outcome["count"], outcome["keys"])
    assert [r.chain_hash for r in records] == [r["chain_hash"] for r in rows]
    assert ("hold.placed", "", "[]") == (rows[0]["kind"], rows[0]["rule"], rows[0]["keys"])


def test_jsonl_adds_the_body_and_keeps_the_columns_in_order(enforced):
    """Each JSON line has the columns in order, then the record's body."""
    lines = enforced.ok("audit", "export", "--format", "jsonl").splitlines()
    parsed = [json.loads(line) for line in lines]
    (outcome,) = [p for p in parsed if p["kind"] == "batch.outcome"]

    assert {(*COLUMNS, "body")} == {tuple(p) for p in parsed}
    assert ([[1]], 1, "applied") == (outcome["keys"], outcome["count"], outcome["status"])
    assert [[1]] == outcome["body"]["keys"]
    assert [r.record_hash for r in enforced.records()] == [p["record_hash"] for p in parsed]


def test_since_until_and_rule_select_records(enforced):
    """--since/--until take whole UTC days or timestamps; --rule keeps that rule's records."""
    records = enforced.records()
    second = records[1].at
    windows = {
        "from tomorrow": _csv(enforced, "--since", (TODAY + timedelta(days=1)).isoformat()),
        "to the second record": _csv(enforced, "--until", second),
        "of the rule": _csv(enforced, "--rule", RULE),
    }

    assert {"from tomorrow": 0, "to the second record": 2,
            "of the rule": sum(r.entry.rule == RULE for r in records)} == {
        name: len(rows) for name, rows in windows.items()}
    assert {RULE} == {r["rule"] for r in windows["of the rule"]}
