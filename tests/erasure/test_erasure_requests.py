"""Erasure requests on every backend: recorded with a digest, listed by due date, previewed.

A shop whose customers, orders and invoice lines are deleted on request, while invoices are
kept as business records (their billing name rewritten).  An invoice line belongs to a
customer through its invoice and through its order: two paths.  The CLI is run as a privacy
officer runs it; a preview must leave every database exactly as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from retentiond.ledger.chain import AuditLedger, Kind
from retentiond.ledger.state import StateDB

STAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}
SHOP = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(80) NOT NULL UNIQUE, "
    "name VARCHAR(80))",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, placed_at {stamp}, "
    "FOREIGN KEY (customer_id) REFERENCES customers (id))",
    "CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER, "
    "billing_name VARCHAR(80) NOT NULL, "
    "FOREIGN KEY (customer_id) REFERENCES customers (id))",
    "CREATE TABLE invoice_lines (id INTEGER PRIMARY KEY, invoice_id INTEGER, order_id INTEGER, "
    "amount INTEGER NOT NULL, "
    "FOREIGN KEY (invoice_id) REFERENCES invoices (id), "
    "FOREIGN KEY (order_id) REFERENCES orders (id))",
]
ROWS = [
    "INSERT INTO customers VALUES (7, 'seven@example.org', 'Seven'), "
    "(8, 'eight@example.org', 'Eight')",
    "INSERT INTO orders VALUES (20, 7, '2020-01-01'), (21, 8, '2020-01-01'), "
    "(22, 7, '2020-01-01')",
    "INSERT INTO invoices VALUES (10, 7, 'Seven'), (11, 8, 'Eight'), (12, NULL, 'Nobody')",
    "INSERT INTO invoice_lines VALUES "
    "(1, 10, 21, 5), "  # customer 7's invoice (first path)
    "(2, 11, 21, 5), "  # customer 8's invoice and order: not 7's
    "(3, 11, 20, 5), "  # customer 7's order (second path): held below
    "(4, 10, 20, 5), "  # 7's by both paths: counted once
    "(5, NULL, 22, 5), "  # no invoice, 7's order
    "(6, 12, 21, 5), "  # an invoice of no known customer and 8's order: not 7's
    "(7, NULL, NULL, 5)",  # nobody's
]
EXCEPTION = "business record: credit transactions, tax law (10 years)"
DATA_MAP = f"""\
subjects:
  customer: {{description: A customer of the shop (by id)}}
  contact: {{description: Someone who wrote to us (by email)}}
data_map:
  - store: app
    table: customers
    subject: {{customer: id, contact: email}}
    personal: {{email: contact, name: identity}}
    erase: delete
  - store: app
    table: orders
    subject: {{customer: customer_id}}
    erase: delete
  - store: app
    table: invoices
    subject: {{customer: customer_id}}
    personal: {{billing_name: identity}}
    erase:
      keep: "{EXCEPTION}"
      anonymize: {{billing_name: {{strategy: constant, value: erased}}}}
  - store: app
    table: invoice_lines
    subject: {{customer: [[invoice_id, customer_id], [order_id, customer_id]]}}
    erase: delete
"""
CONFIG = """\
policy_dir = "{policies}"
state_url = "sqlite:///{root}/state.db"
log_level = "warning"

[erasure]
due_days = 30

[erasure.regimes]
ccpa = 45

[stores.app]
url = "{backend}"
"""


@dataclass(frozen=True)
class Shop:
    """A config naming the backend's database as store ``app``, and its policy directory."""

    root: Path
    config: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m retentiond --config CONFIG ARGS``; never raises."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTIOND_")}
        return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(self.config),
                               *args], capture_output=True, text=True, env=env, cwd=self.root,
                              timeout=120, check=False)

    def ok(self, *args: str) -> str:
        """The stdout of a command that must succeed."""
        result = self.cli(*args)
        assert (0, "") == (result.returncode, result.stderr), result
        return result.stdout

    def records(self) -> list[tuple[Kind, dict[str, object]]]:
        """Every ledger record's kind and body."""
        state = StateDB(f"sqlite:///{self.root}/state.db")
        try:
            return [(r.entry.kind, dict(r.entry.body)) for r in AuditLedger(state).records()]
        finally:
            state.close()

    def state_rows(self) -> dict[str, list[tuple[object, ...]]]:
        """Every row of every table of the state database: what a write would change."""
        with sqlite3.connect(f"file:{self.root}/state.db?mode=ro", uri=True) as conn:
            names = [n for (n,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            return {n: sorted(conn.execute(f'SELECT * FROM "{n}"'), key=repr) for n in names}


@pytest.fixture
def shop(db, backend, tmp_path):
    """The shop's tables and rows on the backend, its data map, and regimes in the config."""
    db.run(*(s.format(stamp=STAMP[db.kind]) for s in SHOP), *ROWS)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "shop.yaml").write_text(DATA_MAP, encoding="utf-8")
    config = tmp_path / "retentiond.toml"
    config.write_text(CONFIG.format(policies=policies, root=tmp_path, backend=backend),
                      encoding="utf-8")
    return Shop(tmp_path, config)


def request_id(stdout: str) -> str:
    """The id ``erasure record`` printed."""
    return stdout.split("erasure request ", 1)[1].split(" ", 1)[0]


def test_a_recorded_request_is_audited_with_a_digest_never_the_identity(shop):
    """The ledger's record names the request, kind, who, received and due; not the email."""
    out = shop.ok("erasure", "record", "--subject", "contact=seven@example.org",
                  "--received", "2026-12-01", "--by", "alice", "--note", "by letter")
    made = request_id(out)
    exported = shop.ok("audit", "export", "--format", "jsonl")
    verified = shop.cli("audit", "verify", "--json")
    reported = shop.cli("audit", "report", "--output", str(shop.root / "report.html"))

    state = StateDB(f"sqlite:///{shop.root}/state.db")
    try:
        digest = AuditLedger(state).key_digest([["contact", "seven@example.org"]])
    finally:
        state.close()
    recorded = [body for kind, body in shop.records() if kind is Kind.ERASURE_RECORDED]
    assert [{"request": made, "subject": "contact", "subject_digest": digest, "by": "alice",
             "received": "2026-12-01", "due": "2026-12-31", "regime": None}] == [
        {k: v for k, v in body.items() if k != "recorded_at"} for body in recorded]
    assert (True, False) == (made in exported, "seven@example.org" in exported)
    assert ((0, True), 0, False) == (
        (verified.returncode, json.loads(verified.stdout)["ok"]), reported.returncode,
        "seven@example.org" in (shop.root / "report.html").read_text(encoding="utf-8"))
    assert "seven@example.org" not in json.dumps(shop.records())


def test_requests_are_listed_by_due_date_with_their_regimes_and_overdue_marked(shop):
    """30 days by default, 45 under CCPA; an old request is overdue; --json says the same."""
    today = datetime.now(tz=UTC).date()
    late = request_id(shop.ok("erasure", "record", "--subject", "customer=7", "--received",
                              (today - timedelta(days=40)).isoformat(), "--by", "alice"))
    ccpa = request_id(shop.ok("erasure", "record", "--subject", "customer=8", "--received",
                              today.isoformat(), "--by", "bob", "--regime", "ccpa"))
    plain = request_id(shop.ok("erasure", "record", "--subject", "contact=x@example.org",
                               "--received", today.isoformat(), "--by", "bob"))

    listed = json.loads(shop.ok("erasure", "list", "--json"))
    text = shop.ok("erasure", "list")

    assert [(late, "customer", "7", None, today - timedelta(days=10), True, -10, "recorded"),
            (plain, "contact", "x@example.org", None, today + timedelta(days=30), False, 30,
             "recorded"),
            (ccpa, "customer", "8", "ccpa", today + timedelta(days=45), False, 45, "recorded"),
            ] == [(r["id"], r["subject"]["kind"], r["subject"]["value"], r["regime"],
                   date.fromisoformat(r["due"]), r["overdue"], r["days_left"], r["state"])
                  for r in listed]
    assert (1, 0) == (text.count("OVERDUE by 10 day(s)"), text.count("OVERDUE by 30"))


BAD_INPUT = [
    pytest.param(("--subject", "supplier=1"), "error: erasure request: subject kind 'supplier' "
                 "is not declared in the data map (declared: contact, customer); give one of "
                 "those kinds, or declare it under 'subjects:'", id="unknown-kind"),
    pytest.param(("--subject", "customer="), "error: erasure request: the subject's identity "
                 "is empty; give it as kind=value, e.g. --subject customer=4711",
                 id="empty-identity"),
    pytest.param(("--subject", "customer=7", "--regime", "lgpd"), "error: erasure request: "
                 "regime 'lgpd' is not configured (known: ccpa); add it under "
                 "[erasure.regimes] in the config (e.g. lgpd = 45), or leave --regime out",
                 id="unknown-regime"),
    pytest.param(("--subject", "customer=7", "--received", "1.12.2026"),
                 "error: Invalid value for --received: '1.12.2026' is not a date; write "
                 "YYYY-MM-DD; see 'retentiond --help'", id="bad-date"),
]


@pytest.mark.parametrize(("args", "line"), BAD_INPUT)
def test_a_bad_request_is_one_error_line_and_nothing_is_recorded(shop, args, line):
    """Exit 2, one line saying what is wrong and how to fix it; no request, no record."""
    result = shop.cli("erasure", "record", "--by", "alice", *args)

    assert (2, "", [line]) == (result.returncode, result.stdout, result.stderr.splitlines())
    assert [] == json.loads(shop.ok("erasure", "list", "--json"))
    assert [] == [kind for kind, _ in shop.records() if kind is Kind.ERASURE_RECORDED]


def test_an_unknown_request_cannot_be_previewed(shop):
    """Exit 2, one line naming the id and where to find the right one."""
    result = shop.cli("erasure", "preview", "0123abcd")

    assert (2, ["error: erasure request '0123abcd': no request has this id (or it names "
                "several); see 'retentiond erasure list'"]) == (
        result.returncode, result.stderr.splitlines())


def test_the_preview_counts_each_table_holds_blocks_and_keeps_and_writes_nothing(shop, db):
    """Customer 7, counted by hand, and the preview leaves every database as it was.

    Lines 1, 3, 4, 5 (two paths, 4 once), line 3 held by a hold; orders 20 (kept by held
    line 3) and 22; invoice 10, kept as a business record with its billing name rewritten;
    customer 7, kept by invoice 10 and by order 20.
    """
    placed = shop.ok("hold", "add", "--store", "app", "--table", "invoice_lines",
                     "--where", "id=3", "--reason", "Complaint about line 3.", "--by", "dpo")
    hold = placed.split()[2]
    made = request_id(shop.ok("erasure", "record", "--subject", "customer=7", "--by", "alice"))
    before_app = {t: db.rows(t) for t in ("customers", "orders", "invoices", "invoice_lines")}
    before_state = shop.state_rows()

    preview = json.loads(shop.ok("erasure", "preview", made[:8], "--json"))
    text = shop.ok("erasure", "preview", made)

    def row(t):
        return (t["table"], t["effect"], t["found"], t["acted"], t["held"], t["blocked"],
                t["exception"], t["columns"],
                sorted((g["kind"], g["id"], g["rows"]) for g in t["guards"] if g["rows"]))
    assert (made, "customer", False) == (preview["request"], preview["subject"],
                                         preview["written"])
    assert [
        ("invoice_lines", "delete", 4, 3, 1, 0, None, [], [("hold", hold, 1)]),
        ("invoices", "keep", 1, 1, 0, 0, EXCEPTION, ["billing_name"], []),
        ("orders", "delete", 2, 1, 0, 1, None, [],
         [("blocker", "invoice_lines.order_id", 1)]),
        ("customers", "delete", 1, 0, 0, 1, None, [],
         [("blocker", "invoices.customer_id", 1),
          ("blocker", "orders.customer_id <- invoice_lines.order_id", 1)]),
    ] == [row(t) for t in preview["tables"]]
    assert ["invoice_id -> customer_id", "order_id -> customer_id"] == \
        preview["tables"][0]["ways"]
    assert (True, True) == (EXCEPTION in text, hold in text)
    assert before_app == {t: db.rows(t) for t in before_app}
    assert before_state == shop.state_rows()


def test_a_subject_by_email_is_found_and_an_unmatched_value_finds_nothing(shop):
    """The contact kind maps the customers table only; an unknown email finds no row."""
    known = request_id(shop.ok("erasure", "record", "--subject", "contact=eight@example.org",
                               "--by", "alice"))
    unknown = request_id(shop.ok("erasure", "record", "--subject",
                                 "contact=nobody@example.org", "--by", "alice"))

    found = [[(t["table"], t["found"], t["acted"], t["blocked"]) for t in json.loads(
        shop.ok("erasure", "preview", made, "--json"))["tables"]] for made in (known, unknown)]

    assert [[("customers", 1, 0, 1)], [("customers", 0, 0, 0)]] == found
