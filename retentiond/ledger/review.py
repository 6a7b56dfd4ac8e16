"""What the ledger says was done, per rule: the numbers a compliance reviewer asks for first."""

from __future__ import annotations

from dataclasses import dataclass

from retentiond.ledger.chain import AuditLedger, Kind


@dataclass
class RuleSummary:
    """Everything the ledger holds about one rule, added up over every run."""

    rule: str
    action: str
    acted: int = 0
    """Records deleted, anonymized, pseudonymized or quarantined."""
    reached: int = 0
    """Other records reached through foreign keys (cascaded, nulled, deleted first)."""
    held: int = 0
    """Held back by legal holds, as the latest run counted them."""
    retained: int = 0
    """Kept by a minimum retention, as the latest run counted them."""
    blocked: int = 0
    """Kept because children refused or were protected, as the latest run counted them."""
    batches: int = 0
    runs: int = 0
    failed_runs: int = 0
    brake_stops: int = 0


def summarize(ledger: AuditLedger) -> list[RuleSummary]:
    """One summary per rule that appears in the ledger, in order of first appearance."""
    rules: dict[str, RuleSummary] = {}
    for record in ledger.records():
        entry = record.entry
        if entry.rule is None or entry.action in {"restore", "purge"}:
            continue
        summary = rules.setdefault(entry.rule, RuleSummary(entry.rule, entry.action or ""))
        body = entry.body
        if entry.kind is Kind.RUN_START:
            summary.runs += 1
            census = body.get("census", {})
            summary.held = int(census.get("held", 0))
            summary.retained = int(census.get("protected", 0))
            summary.blocked = int(census.get("blocked", 0))
        elif entry.kind is Kind.OUTCOME and body.get("status") == "applied":
            summary.acted += int(body.get("count", 0))
            summary.reached += int(body.get("reached_count", 0))
            summary.batches += 1
        elif entry.kind is Kind.RUN_END and body.get("status") == "failed":
            summary.failed_runs += 1
        elif entry.kind is Kind.STOPPED:
            summary.brake_stops += 1
    return list(rules.values())
