"""What the evidence tests share by name: a site on disk, the CLI as a subprocess, the ledger.

A *site* is what an operator has: SQLite store files, a policy directory and a config file
naming them and a state database.  Tests drive it with the real CLI (``site.cli(...)``) and
look into the stores and the ledger directly.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retentiond.holds.notation import Term, parse_term
from retentiond.holds.placing import HoldRequest, LegalHolds
from retentiond.holds.scope import StateHolds
from retentiond.holds.table import PlacedHold
from retentiond.ledger.chain import AuditLedger, Record
from retentiond.ledger.state import StateDB
from retentiond.policy.loader import load_policies
from retentiond.policy.model import PolicySet
from retentiond.run.engine import Engine
from retentiond.settings import Defaults
from retentiond.stores.registry import Stores

NOW = datetime.now(tz=UTC).replace(tzinfo=None)
OLD = datetime(2024, 1, 10, 10, 0)  # noqa: DTZ001 - naive: the columns hold naive UTC
"""Due under every rule of these tests at any time they run (and kept 10 years as an invoice)."""
YOUNG = (NOW - timedelta(days=30)).replace(microsecond=0)

EMAILS = ("CREATE TABLE emails (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, "
          "kind VARCHAR(20) NOT NULL, submitted_at DATETIME)")
EMAIL_ROWS = [
    (1, 5, "mail", OLD.isoformat(sep=" ")),  # due, nothing protects it
    (2, 4711, "mail", OLD.isoformat(sep=" ")),  # due; customer 4711's
    (3, 6, "invoice", OLD.isoformat(sep=" ")),  # due, kept 10 years as an invoice
    (4, 7, "mail", YOUNG.isoformat(sep=" ")),  # not due for eleven months
    (5, 4711, "mail", OLD.isoformat(sep=" ")),  # due; customer 4711's
    (6, 8, "mail", None),  # no date: kept
]
POLICY = """\
rules:
  - id: emails-12-months
    description: Emails are deleted 12 months after submission.
    store: app
    table: emails
    subjects: {customer: customer_id}
    age: {column: submitted_at, older_than: 12 months}
    action: {type: delete}
    limits: {max_percent: 100}
    batch_size: 2
retain:
  - id: invoices-10-years
    reason: Emails carrying invoices are business records, kept 10 years for tax law.
    store: app
    table: emails
    column: submitted_at
    for: 10 years
    where: {column: kind, value: invoice}
"""
RULE = "emails-12-months"

SQLITE_ONLY = pytest.mark.parametrize("server", [pytest.param("sqlite", marks=pytest.mark.sqlite)],
                                      indirect=True)
"""For library tests whose point does not depend on the store's database."""


@dataclass
class Site:
    """Store files, policies and a config on disk, driven through the real CLI."""

    root: Path
    config: Path
    stores: dict[str, Path]
    state_url: str
    runs: list[list[str]] = field(default_factory=list)
    hold: str = ""
    """The id of the hold a fixture placed, if any."""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``retentiond --config <config> *args``; the finished process."""
        self.runs.append(list(args))
        return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(self.config),
                               *args], capture_output=True, text=True, timeout=120, check=False,
                              cwd=self.root)

    def ok(self, *args: str) -> str:
        """Run the CLI, insist on exit 0 and a clean stderr; its stdout."""
        result = self.cli(*args)
        assert (0, "") == (result.returncode, result.stderr), (args, result.stderr)
        return result.stdout

    def json(self, *args: str) -> Any:
        """Run the CLI with ``--json`` and parse what it prints."""
        return json.loads(self.ok(*args, "--json"))

    def ids(self, store: str, table: str) -> list[int]:
        """The primary keys left in ``table`` of ``store``, in order."""
        with closing(sqlite3.connect(self.stores[store])) as conn:
            return [row[0] for row in conn.execute(f"SELECT id FROM {table} ORDER BY id")]

    @contextmanager
    def ledger(self) -> Iterator[AuditLedger]:
        """The audit ledger of the site's state database."""
        state = StateDB(self.state_url)
        try:
            yield AuditLedger(state)
        finally:
            state.close()

    def records(self) -> list[Record]:
        """Every ledger record, in order."""
        with self.ledger() as ledger:
            return list(ledger.records())


def make_site(root: Path, tables: Mapping[str, Mapping[str, Sequence[tuple[Any, ...]]]],
              policy: str, *, state_url: str | None = None) -> Site:
    """SQLite stores (``{store: {table_ddl: rows}}``), one policy file and a config."""
    stores: dict[str, Path] = {}
    config_stores = []
    for store, ddl_rows in tables.items():
        path = root / f"{store}.db"
        with closing(sqlite3.connect(path)) as conn, conn:
            for ddl, rows in ddl_rows.items():
                conn.execute(ddl)
                if rows:
                    name = ddl.split()[2]
                    marks = ", ".join("?" * len(rows[0]))
                    conn.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
        stores[store] = path
        config_stores.append(f'[stores.{store}]\nurl = "sqlite:///{path}"\n')
    policies = root / "policies"
    policies.mkdir()
    (policies / "policy.yaml").write_text(policy, encoding="utf-8")
    state = state_url or f"sqlite:///{root / 'state.db'}"
    config = root / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "{state}"\nlog_level = "warning"\n'
                      + "\n".join(config_stores), encoding="utf-8")
    return Site(root, config, stores, state)


def drop_guards(state: StateDB) -> None:
    """What an attacker who owns the state database does first: drop the append-only triggers."""
    with state.engine.begin() as conn:
        if state.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_append_only ON audit_log")


def tamper(state: StateDB, *statements: str) -> None:
    """Run ``statements`` on the state database as an attacker would: the guards dropped first."""
    drop_guards(state)
    with state.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def placed_id(stdout: str) -> str:
    """The hold id from 'placed hold H-... on ...'."""
    words = stdout.split()
    assert words[:2] == ["placed", "hold"], stdout
    return words[2]


def verdict(explained: Mapping[str, Any], rule: str) -> Mapping[str, Any]:
    """One rule's part of an ``explain --json`` answer."""
    (found,) = [v for v in explained["rules"] if v["rule"] == rule]
    return found


EVENTS_POLICY = """\
rules:
  - id: events-delete
    description: Events are deleted after one year.
    store: app
    table: events
    subjects: {customer: customer_id}
    age: {column: created_at, older_than: 1 year}
    action: {type: delete}
    limits: {max_percent: 100}
    batch_size: 3
"""
AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
"""The moment library-level runs are made at."""
CUSTOMER = 4711
HELD_IDS = [2, 5, 8, 11]
"""The events of customer 4711 among ids 1..12."""


def stamp(kind: str) -> str:
    """The naive timestamp column type of a backend."""
    return {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}[kind]


def event_rows() -> list[dict[str, object]]:
    """Twelve events from 2020, every third one (from id 2) customer 4711's."""
    return [{"id": i, "customer_id": CUSTOMER if i in HELD_IDS else i,
             "created_at": datetime(2020, 1, i)} for i in range(1, 13)]  # noqa: DTZ001 - naive column


@dataclass
class Bench:
    """Library-level: the stores, the state database, its ledger and the events policy."""

    stores: Stores
    state: StateDB
    ledger: AuditLedger
    policies: PolicySet

    def engine(self, *, without: Sequence[str] = ()) -> Engine:
        """An Engine with the runtime holds, as the CLI and the daemon build it."""
        return Engine(self.policies, self.stores, ROOMY,
                      hold_sources=(StateHolds(self.state, self.policies, self.stores,
                                               without=without),))

    def place(self, *, now: datetime | None = None, **request: Any) -> PlacedHold:
        """Place a hold (reason and who filled in) through LegalHolds, as ``hold add`` does."""
        request.setdefault("reason", "Complaint by a customer.")
        request.setdefault("by", "counsel")
        return LegalHolds(self.state, self.ledger).place(
            HoldRequest(**request), policies=self.policies, stores=self.stores, now=now)

    def held(self, rule: str, as_of: datetime) -> int:
        """How many rows the plan of ``rule`` at ``as_of`` counts as held."""
        census = self.engine().plan(self.policies.rule(rule), as_of=as_of).census
        assert census is not None
        return census.held


ROOMY = Defaults(batch_size=3, max_rows=10_000, max_percent=100)


def where(*terms: str) -> tuple[Term, ...]:
    """``--where`` terms, parsed as the CLI parses them."""
    return tuple(parse_term(t) for t in terms)


def load(directory: Path, text: str) -> PolicySet:
    """Write one policy file into a new ``directory`` and load it."""
    directory.mkdir()
    (directory / "policy.yaml").write_text(text, encoding="utf-8")
    return load_policies(directory)
