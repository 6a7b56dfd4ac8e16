"""The audit ledger as files for reviewers and their tools: CSV or JSON Lines, stable columns.

Every record becomes one line with these columns, in this order (see the README)::

    seq, at, kind, run_id, rule, rule_version, store, table, action, batch_id,
    status, count, keys, record_hash, chain_hash, signature

JSON Lines adds ``body``, the record's whole body.  ``status``, ``count`` and ``keys`` are
taken from the body where it has them (batch outcomes); ``keys`` is a JSON array of primary
keys.  Records are read page by page and turned into lines one at a time, so memory stays
bounded whatever the ledger's size.  Nothing here prints: the CLI writes the lines.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from retentiond.ledger.chain import AuditLedger, Record, canonical

COLUMNS = ("seq", "at", "kind", "run_id", "rule", "rule_version", "store", "table", "action",
           "batch_id", "status", "count", "keys", "record_hash", "chain_hash", "signature")
"""The export's columns, in order; JSON Lines adds ``body``."""

FORMATS = ("csv", "jsonl")


def parse_bound(text: str, *, end: bool) -> datetime:
    """A ``--since`` / ``--until`` bound as the first instant it admits, or the first it does not.

    A date means the whole day (UTC): ``--since 2026-03-01`` starts at its midnight,
    ``--until 2026-03-31`` ends at the midnight after it.  A timestamp is taken as given
    (naive ones as UTC) and is itself included.  ValueError when it is neither.
    """
    try:
        if len(text) <= len("YYYY-MM-DD"):
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write YYYY-MM-DD or an ISO timestamp") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment + timedelta(microseconds=1) if end else moment


@dataclass(frozen=True)
class ExportQuery:
    """Which records to export: ``since`` <= at < ``before``, of ``rules`` (empty: all)."""

    since: datetime | None = None
    before: datetime | None = None
    rules: Collection[str] = field(default_factory=frozenset)

    def admits(self, record: Record) -> bool:
        """Whether the record is one to export."""
        if self.rules and record.entry.rule not in self.rules:
            return False
        if self.since is None and self.before is None:
            return True
        at = datetime.fromisoformat(record.at)
        return (self.since is None or at >= self.since) and \
            (self.before is None or at < self.before)


def export_rows(ledger: AuditLedger, query: ExportQuery) -> Iterator[dict[str, Any]]:
    """The records ``query`` asks for as rows of :data:`COLUMNS` plus ``body``, in ledger order."""
    for record in ledger.records():
        if query.admits(record):
            yield row_of(record)


def row_of(record: Record) -> dict[str, Any]:
    """One record as an export row (``keys`` a list, ``body`` a dict)."""
    entry = record.entry
    body = dict(entry.body)
    keys = body.get("keys")
    count = body.get("count")
    return {"seq": record.seq, "at": record.at, "kind": entry.kind.value,
            "run_id": entry.run_id, "rule": entry.rule, "rule_version": entry.rule_version,
            "store": entry.store, "table": entry.table, "action": entry.action,
            "batch_id": entry.batch_id,
            "status": body.get("status") if isinstance(body.get("status"), str) else None,
            "count": count if isinstance(count, int) else None,
            "keys": keys if isinstance(keys, list) else [],
            "record_hash": record.record_hash, "chain_hash": record.chain_hash,
            "signature": record.signature, "body": body}


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A header line, then one CSV line per row (empty cells for absent values)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(values: Iterable[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(COLUMNS)
    for row in rows:
        yield line("" if row[c] is None else canonical(row[c]) if c == "keys" else row[c]
                   for c in COLUMNS)


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON object per line: the columns in order, then ``body``."""
    for row in rows:
        yield json.dumps({c: row[c] for c in (*COLUMNS, "body")}, ensure_ascii=False,
                         separators=(",", ":"), default=str) + "\n"
