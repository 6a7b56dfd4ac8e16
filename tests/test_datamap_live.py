"""The data map against the live stores, and the subject holds it reaches, on every backend.

A shop: customers, their orders and invoices, and invoice lines that name no customer: a line
belongs to the customer of its invoice, and to the customer of its order (two paths).  The
CLI is run as an operator runs it; each mistake in the map is one line with file and line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retentiond.ledger.chain import AuditLedger, Kind
from retentiond.ledger.state import StateDB
from retentiond.policy.filters import Condition
from retentiond.policy.periods import Period, cutoff
from retentiond.stores.base import AgeBound, Guard, Selection, Through
from retentiond.stores.evaluate import Evaluator, by_key
from retentiond.stores.paths import PathError, follow_from

STAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}
INTEGER = {"mariadb": "INTEGER(11)"}
"""How a backend names an INTEGER column's type where it is not ``INTEGER``."""
SHOP = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(80) NOT NULL UNIQUE, "
    "name VARCHAR(80), closed_at {stamp})",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, placed_at {stamp}, "
    "FOREIGN KEY (customer_id) REFERENCES customers (id))",
    "CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER, "
    "billing_name VARCHAR(80) NOT NULL, issued_at {stamp}, "
    "FOREIGN KEY (customer_id) REFERENCES customers (id))",
    "CREATE TABLE invoice_lines (id INTEGER PRIMARY KEY, invoice_id INTEGER, order_id INTEGER, "
    "amount INTEGER NOT NULL, created_at {stamp}, "
    "FOREIGN KEY (invoice_id) REFERENCES invoices (id), "
    "FOREIGN KEY (order_id) REFERENCES orders (id))",
]
OLD, YOUNG = "2020-01-10 10:00:00", "2999-01-10 10:00:00"
CUSTOMER = 7
ROWS = [
    "INSERT INTO customers VALUES (7, 'seven@example.org', 'Seven', NULL), "
    "(8, 'eight@example.org', 'Eight', NULL)",
    "INSERT INTO orders VALUES (20, 7, '2020-01-01'), (21, 8, '2020-01-01')",
    "INSERT INTO invoices VALUES (10, 7, 'Seven', '2020-01-01'), (11, 8, 'Eight', '2020-01-01'),"
    " (12, NULL, 'Nobody', '2020-01-01')",
    "INSERT INTO invoice_lines VALUES "
    f"(1, 10, 21, 5, '{OLD}'), "  # customer 7's invoice: held (the first path)
    f"(2, 11, 21, 5, '{OLD}'), "  # customer 8's invoice and order: deleted
    f"(3, 11, 20, 5, '{OLD}'), "  # customer 7's order: held (the second path)
    f"(4, 12, 21, 5, '{OLD}'), "  # an invoice of no known customer: doubt, held
    f"(5, NULL, 21, 5, '{OLD}'), "  # no invoice: doubt, held
    f"(6, 11, 21, 5, '{YOUNG}'), "  # not due
    f"(7, 11, 21, 5, '{OLD}')",  # customer 8's: deleted
]
DATA_MAP = """\
subjects:
  customer: {description: A customer of the shop}
data_map:
  - store: app
    table: customers
    subject: {customer: id}
    personal: {email: contact, name: identity}
    erase: {anonymize: {email: pk_derived, name: nullify}}
  - store: app
    table: invoices
    subject: {customer: customer_id}
    personal: {billing_name: identity}
    erase:
      keep: "business record: credit transactions, tax law (10 years)"
      anonymize: {billing_name: {strategy: constant, value: erased}}
  - store: app
    table: invoice_lines
    subject: {customer: [[invoice_id, customer_id], [order_id, customer_id]]}
    erase: delete
"""
LINES_RULE = """\
rules:
  - id: lines-1-year
    description: Invoice lines are deleted after a year; the rule maps no subject itself.
    store: app
    table: invoice_lines
    age: {column: created_at, older_than: 1 year}
    action: {type: delete}
    limits: {max_percent: 100}
"""


@dataclass(frozen=True)
class Shop:
    """A config naming the backend's database as store ``app``, and its policy directory."""

    root: Path
    config: Path
    policies: Path

    def write(self, text: str, name: str = "shop.yaml") -> Path:
        """Make ``text`` the one policy file; its path."""
        for old in self.policies.glob("*"):
            old.unlink()
        path = self.policies / name
        path.write_text(text, encoding="utf-8")
        return path

    def by_guard(self, rule: str) -> list[dict[str, int]]:
        """The rows each guard covered when each run of ``rule`` started, from the ledger."""
        state = StateDB(f"sqlite:///{self.root}/state.db")
        try:
            return [r.entry.body["census"]["by_guard"] for r in AuditLedger(state).records()
                    if r.entry.kind is Kind.RUN_START and r.entry.rule == rule]
        finally:
            state.close()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m retentiond --config CONFIG ARGS``; never raises."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTIOND_")}
        return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(self.config),
                               *args], capture_output=True, text=True, env=env, cwd=self.root,
                              timeout=120, check=False)


@pytest.fixture
def shop(db, backend, tmp_path):
    """The shop's tables and rows on the backend, the data map and the lines rule."""
    db.run(*(s.format(stamp=STAMP[db.kind]) for s in SHOP), *ROWS)
    policies = tmp_path / "policies"
    policies.mkdir()
    config = tmp_path / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{tmp_path}/state.db"\n'
                      f'log_level = "warning"\n\n[stores.app]\nurl = "{backend}"\n',
                      encoding="utf-8")
    made = Shop(tmp_path, config, policies)
    made.write(DATA_MAP + LINES_RULE)
    return made


def line_of(text, needle):
    """The 1-based number of the one line of ``text`` containing ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert 1 == len(found), (needle, found)
    return found[0]


def test_the_shops_map_validates(shop):
    """The map fits the live tables: validate says so and counts it."""
    result = shop.cli("validate")

    assert (0, "ok: 1 rules, 0 holds, 0 minimum retentions and a data map of 3 tables for 1 "
               "subject kinds are valid\n", "") == (result.returncode, result.stdout,
                                                   result.stderr)


def swap(old, new, *more):
    """DATA_MAP + LINES_RULE with ``old`` (once in it) replaced by ``new``, and so on."""
    text = DATA_MAP + LINES_RULE
    pairs = [(old, new), *zip(more[::2], more[1::2], strict=True)]
    for before, after in pairs:
        assert 1 == text.count(before), before
        text = text.replace(before, after)
    return text


LIVE_CASES = [
    pytest.param(swap("    table: invoice_lines\n    subject",
                      "    table: invoice_lnes\n    subject"),
                 "table: invoice_lnes", "data map app.invoice_lnes",
                 "table 'invoice_lnes' does not exist in store 'app'; did you mean "
                 "'invoice_lines'? write it as the store spells it", id="unknown-table"),
    pytest.param(swap("personal: {billing_name: identity}",
                      "personal: {billing_name: identity, billing_adress: contact}"),
                 "personal: {billing_name", "data map app.invoices",
                 "column 'billing_adress' does not exist in table 'invoices'; use one of: "
                 "billing_name, customer_id, id, issued_at", id="unknown-personal-column"),
    pytest.param(swap("subject: {customer: customer_id}", "subject: {customer: buyer_id}"),
                 "subject: {customer: buyer_id}", "data map app.invoices",
                 "subject 'customer': column 'buyer_id' does not exist in table 'invoices'; "
                 "name a column of the table, or a path along its declared foreign keys "
                 "ending at the subject's id", id="unknown-subject-column"),
    pytest.param(swap("[order_id, customer_id]]", "[amount, customer_id]]"),
                 "subject: {customer: [[", "data map app.invoice_lines",
                 "subject 'customer': column invoice_lines.amount is no foreign key, so the "
                 "path cannot follow it (foreign keys of invoice_lines: invoice_id -> "
                 "invoices, order_id -> orders); name a column of the table, or a path along "
                 "its declared foreign keys ending at the subject's id", id="path-off-the-keys"),
    pytest.param(swap("[order_id, customer_id]]", "[order_id, client_id]]"),
                 "subject: {customer: [[", "data map app.invoice_lines",
                 "subject 'customer': column 'client_id' does not exist in table 'orders' "
                 "(reached through order_id); name a column of the table, or a path along its "
                 "declared foreign keys ending at the subject's id", id="path-end-missing"),
    pytest.param(swap("      anonymize: {billing_name: {strategy: constant, value: erased}}",
                      "      anonymize:\n        billing_name: {strategy: constant, value: x}\n"
                      "        customer_id: mask",
                      "personal: {billing_name: identity}",
                      "personal: {billing_name: identity, customer_id: identity}"),
                 "customer_id: mask", "data map app.invoices",
                 "mask needs a text column; 'customer_id' is {integer}; use constant, nullify or "
                 "generalize", id="mask-on-an-integer"),
    pytest.param(swap("      anonymize: {billing_name: {strategy: constant, value: erased}}",
                      "      anonymize: {billing_name: nullify}"),
                 "anonymize: {billing_name: nullify}", "data map app.invoices",
                 "column 'billing_name' is NOT NULL, so nullify cannot empty it; add a "
                 "'fallback' value, or use constant or mask", id="nullify-not-null"),
    pytest.param(swap("      anonymize: {billing_name: {strategy: constant, value: erased}}",
                      "      pseudonymize: {billing_name: names}"),
                 "pseudonymize: {billing_name", "data map app.invoices",
                 "pseudonymizing needs a key, and the config names none; set [pseudonymize] "
                 "key_id and [pseudonymize.keys.<id>] file or credential", id="no-key"),
]


@pytest.mark.parametrize(("text", "needle", "subject", "message"), LIVE_CASES)
def test_a_map_that_does_not_fit_the_store_is_one_line_with_file_and_line(  # noqa: PLR0917
        shop, db, text, needle, subject, message):
    """Unknown tables and columns, paths off the foreign keys, unfit strategies: exit 2."""
    path = shop.write(text)

    result = shop.cli("validate")

    where = f"{path}:{line_of(text, needle)}: {subject}: "
    said = message.format(integer=INTEGER.get(db.kind, "INTEGER"))
    assert (2, [f"error: {where}{said}", "1 problem(s); nothing was run"]) == (
        result.returncode, result.stderr.splitlines())


def test_a_strategy_that_does_not_fit_a_column_of_a_rewrite_is_refused(shop, db):
    """Hashing (pseudonymizing) an integer, with a key configured: its line, and what fits."""
    key = shop.root / "pseudonym.key"
    key.write_text("k" * 64, encoding="utf-8")
    with shop.config.open("a", encoding="utf-8") as config:
        config.write(f'\n[pseudonymize]\nkey_id = "k1"\n\n[pseudonymize.keys.k1]\nfile = "{key}"\n')
    text = swap("      anonymize: {billing_name: {strategy: constant, value: erased}}",
                "      pseudonymize:\n        billing_name: names\n        customer_id: customers",
                "personal: {billing_name: identity}",
                "personal: {billing_name: identity, customer_id: identity}")
    path = shop.write(text)

    result = shop.cli("validate")

    assert (2, [f"error: {path}:{line_of(text, 'customer_id: customers')}: data map "
                "app.invoices: pseudonyms are text; 'customer_id' is "
                f"{INTEGER.get(db.kind, 'INTEGER')}; pseudonymize text columns",
                "1 problem(s); nothing was run"]) == (
        result.returncode, result.stderr.splitlines())


def test_a_subject_hold_keeps_the_rows_its_paths_reach(shop, db):
    """A subject hold keeps the lines its paths reach from a rule that maps no subject.

    ``hold add --subject customer=7``: the lines of 7's invoices and of 7's orders stay; 8's
    go; a line whose path is in doubt (a NULL on the way) stays.
    """
    placed = shop.cli("hold", "add", "--subject", f"customer={CUSTOMER}", "--reason",
                      "Complaint by customer 7.")
    hold = placed.stdout.split()[2]
    ran = shop.cli("run", "--once")

    assert (0, 0, "") == (placed.returncode, ran.returncode, ran.stderr), placed.stderr
    assert [1, 3, 4, 5, 6] == [row[0] for row in db.rows("invoice_lines")]
    assert [{hold: 4}] == shop.by_guard("lines-1-year")


def test_without_the_hold_the_same_rule_deletes_those_rows(shop, db):
    """The counterpart: no hold, and every due line goes but those in the young row."""
    ran = shop.cli("run", "--once")

    assert (0, "") == (ran.returncode, ran.stderr)
    assert [6] == [row[0] for row in db.rows("invoice_lines")]


@pytest.mark.usefixtures("shop")
def test_a_path_is_followed_on_the_live_schema(sql_store):
    """Both paths of the lines end at customer_id; a step off the keys names the step."""
    ways = [follow_from(sql_store.schema, "invoice_lines", way)
            for way in (("invoice_id", "customer_id"), ("order_id", "customer_id"))]
    with pytest.raises(PathError) as caught:
        follow_from(sql_store.schema, "invoices", ("billing_name", "id"))

    assert [(("invoices",), "invoices", "customer_id"), (("orders",), "orders", "customer_id")
            ] == [(w.tables, w.table.name, w.column) for w in ways]
    assert str(caught.value).startswith("column invoices.billing_name is no foreign key")


CYCLE = [
    "CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(40), home_address_id INTEGER, "
    "closed_at {stamp})",
    "CREATE TABLE addresses (id INTEGER PRIMARY KEY, owner_id INTEGER, street VARCHAR(40), "
    "moved_out_at {stamp}, FOREIGN KEY (owner_id) REFERENCES people (id))",
    {"sqlite": [], "postgresql": "ALTER TABLE people ADD FOREIGN KEY (home_address_id) "
     "REFERENCES addresses (id)", "mariadb": "ALTER TABLE people ADD FOREIGN KEY "
     "(home_address_id) REFERENCES addresses (id)"},
]
CYCLE_SQLITE_PEOPLE = ("CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(40), "
                       "home_address_id INTEGER REFERENCES addresses (id), closed_at {stamp})")
CYCLE_MAP = """\
subjects:
  person: {description: Someone with an address}
data_map:
  - store: app
    table: addresses
    subject: {person: [owner_id, home_address_id, owner_id, home_address_id, owner_id, id]}
    personal: {street: location}
    erase: delete
rules:
  - id: addresses-1-year
    description: Addresses moved out of are deleted after a year.
    store: app
    table: addresses
    age: {column: moved_out_at, older_than: 1 year}
    action: {type: delete}
    limits: {max_percent: 100}
"""


def test_a_path_round_a_foreign_key_cycle_ends_and_holds(db, backend, tmp_path):
    """People -> addresses -> people: a path round the cycle validates and holds; no loop.

    Person 2's addresses are held (21; 20 is also still someone's home), person 1's spare
    address goes (11; 10 is still their home, so its deletion is blocked).
    """
    statements = [s if isinstance(s, dict) else s.format(stamp=STAMP[db.kind]) for s in CYCLE]
    if db.kind == "sqlite":
        statements[0] = CYCLE_SQLITE_PEOPLE.format(stamp=STAMP[db.kind])
    db.run(*statements,
           "INSERT INTO people VALUES (1, 'one', NULL, NULL), (2, 'two', NULL, NULL)",
           f"INSERT INTO addresses VALUES (10, 1, 'a', '{OLD}'), (11, 1, 'd', '{OLD}'), "
           f"(20, 2, 'b', '{OLD}'), (21, 2, 'c', '{OLD}')",
           "UPDATE people SET home_address_id = 10 WHERE id = 1",
           "UPDATE people SET home_address_id = 20 WHERE id = 2")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "cycle.yaml").write_text(CYCLE_MAP, encoding="utf-8")
    config = tmp_path / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{tmp_path}/state.db"\n'
                      f'log_level = "warning"\n\n[stores.app]\nurl = "{backend}"\n',
                      encoding="utf-8")
    shop = Shop(tmp_path, config, policies)

    validated = shop.cli("validate")
    placed = shop.cli("hold", "add", "--subject", "person=2", "--reason", "Dispute.")
    ran = shop.cli("run", "--once")

    assert (0, 0, 0) == (validated.returncode, placed.returncode, ran.returncode), (
        validated.stderr, placed.stderr, ran.stderr)
    assert [10, 20, 21] == [row[0] for row in db.rows("addresses")]


def test_explain_names_the_subject_hold_on_a_row_it_reaches(shop):
    """`explain` of a held line names the hold and its reason, as for any hold."""
    hold = shop.cli("hold", "add", "--subject", f"customer={CUSTOMER}", "--reason",
                    "Complaint by customer 7.").stdout.split()[2]

    explained = json.loads(shop.cli("explain", "--store", "app", "--table", "invoice_lines",
                                    "--key", "3", "--json").stdout)

    (verdict,) = explained["rules"]
    assert ("held", [(hold, "Complaint by customer 7.")]) == (
        verdict["decision"], [(p["id"], p["reason"]) for p in verdict["protected_by"]])


@pytest.mark.parametrize("customer", [7, 8, 9])
@pytest.mark.usefixtures("shop")
def test_sql_and_python_decide_a_hold_through_keys_alike(db, sql_store, customer):
    """The same guard through both paths, compiled to SQL and decided in Python: same rows."""
    ways = [follow_from(sql_store.schema, "invoice_lines", way).keys
            for way in (("invoice_id", "customer_id"), ("order_id", "customer_id"))]
    hold = Guard("hold", "h-subject", through=tuple(
        Through(Condition(column="customer_id", value=customer), keys) for keys in ways))
    selection = Selection(table="invoice_lines", guards=(hold,), age=AgeBound(
        "created_at", cutoff(Period(years=1), datetime(2026, 3, 15, tzinfo=UTC), "UTC")))
    rows = {name: [dict(zip(("id", *columns), row, strict=True)) for row in db.rows(name)]
            for name, columns in (("invoices", ("customer_id", "billing_name", "issued_at")),
                                  ("orders", ("customer_id", "placed_at")),
                                  ("invoice_lines", ("invoice_id", "order_id", "amount",
                                                     "created_at")))}
    judge = Evaluator("app", by_key(("id",)), related=rows.__getitem__)

    with sql_store.reader() as reader:
        census = reader.census(selection)
    walked = [key for batch in sql_store.walk_keys(selection, batch_size=2) for key in batch]

    python = judge.census(selection, rows["invoice_lines"])
    assert (python.held, python.eligible) == (census.held, census.eligible)
    assert [by_key(("id",))(r) for r in judge.eligible(selection, rows["invoice_lines"])] == \
        walked
    assert {7: 4, 8: 6, 9: 2}[customer] == census.held  # a NULL on the way: held for anyone
