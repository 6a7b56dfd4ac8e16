"""The review report lists the runs of the period, each with its certificate's ledger record."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta

from publish_kit import ROOT, cli, elements, query, texts

from retentiond.ledger.chain import Entry, Kind, Record
from retentiond.policy.loader import load_policies
from retentiond.publish.report import LISTED, Collector, Window, build_report, render_report


def _runs(page: str) -> dict[str, str]:
    """Each run row of the page: run id -> its certificate's record number ('' for none)."""
    return {e["data-run"]: e["data-certificate"] for e in elements(page)
            if e["tag"] == "tr" and "data-run" in e}


def test_every_run_is_listed_with_its_certificate(world, tmp_path):
    """Each run of the ledger has a row naming its certificate's record, as SQL finds them."""
    target = tmp_path / "report.html"
    assert 0 == cli(world.config, "audit", "report", "--output", str(target)).returncode
    page = target.read_text(encoding="utf-8")
    runs = {str(run) for (run,) in query(
        world.state_url, "SELECT DISTINCT run_id FROM audit_log WHERE run_id IS NOT NULL AND "
                         "kind IN ('run.start', 'run.end', 'certificate')")}
    certificates = {str(run): (int(str(seq)), str(digest)) for run, seq, digest in query(
        world.state_url, "SELECT run_id, seq, record_hash FROM audit_log "
                         "WHERE kind = 'certificate'")}
    printed = {run: json.loads(cli(world.config, "audit", "certificate", "--run", run).stdout)
               for run in certificates}

    assert runs  # run --once made one
    assert {run: str(certificates[run][0]) for run in runs} == _runs(page)
    assert {run: seq for run, (seq, _) in certificates.items()} == {
        run: document["ledger_seq"] for run, document in printed.items()}
    text = html.unescape(page)
    assert [] == [run for run, (_, digest) in certificates.items() if digest not in text]
    assert "retentiond audit certificate --run RUN" in text


def test_a_run_without_a_certificate_says_so(ledger):
    """A run that never reached its certificate (a crash) is listed with 'no certificate'."""
    ledger.append(Entry(Kind.RUN_START, run_id="run-crashed", rule="notes-30-days"))
    ledger.append(Entry(Kind.RUN_START, run_id="run-whole", rule="notes-30-days"))
    ledger.append(Entry(Kind.RUN_END, run_id="run-whole", rule="notes-30-days",
                        body={"status": "done"}))
    certificate = ledger.append(Entry(Kind.CERTIFICATE, run_id="run-whole", body={
        "certificate": {"run_id": "run-whole"}, "signature": "ab" * 32,
        "signed_by": "example.org/retentiond"}))

    page = render_report(build_report(ledger, load_policies(ROOT / "policies"), Window()))

    assert {"run-crashed": "", "run-whole": str(certificate.seq)} == _runs(page)
    shown = texts(page)
    assert "no certificate" in shown
    assert "no end recorded" in shown
    assert "1 done" in shown
    assert "example.org/retentiond" in shown
    assert certificate.record_hash in shown


def _run_records(count: int):
    """``count`` runs of one rule: start, end and certificate each, a minute apart."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    seq = 0
    for number in range(count):
        run = f"run-{number}"
        for kind, body in ((Kind.RUN_START, {}), (Kind.RUN_END, {"status": "done"}),
                           (Kind.CERTIFICATE, {"certificate": {}, "signature": None})):
            seq += 1
            at = (start + timedelta(minutes=seq)).isoformat()
            yield Record(seq, at, Entry(kind, run_id=run, rule="r", body=body), f"h{seq}", "")


def test_runs_past_the_listed_number_are_counted_not_kept():
    """The first LISTED runs are listed; the others are counted by their certificates."""
    collector = Collector(Window())
    for record in _run_records(LISTED + 7):
        collector.see(record)
    facts = collector.facts

    assert (LISTED, 7) == (len(facts.runs), facts.runs_unlisted)
    first = facts.runs["run-0"]
    assert (["r"], "1 done", 3, "h3", None) == (
        first.rules, first.outcome(), first.certificate_seq, first.certificate_hash,
        first.signed_by)
