"""The demo store: its shape, its determinism and the promises the demo relies on."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from demo_store import BASE_ROWS, DemoSummary, build_demo_store

from retentiond.ledger.chain import AuditLedger, Kind
from retentiond.ledger.state import StateDB
from retentiond.policy.loader import load_policies
from retentiond.policy.order import ordered

DEMO_STORE = Path(__file__).resolve().parents[1] / "demo" / "demo_store.py"
NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
NOW_NAIVE = NOW.replace(tzinfo=None)
SMALL = 0.05

DATE_COLUMNS = [
    ("customers", "created_at", datetime),
    ("customers", "closed_at", datetime),
    ("emails", "submitted_at", datetime),
    ("usage_events", "occurred_at", datetime),
    ("invoices", "issued_at", date),
    ("support_tickets", "created_at", datetime),
    ("support_tickets", "closed_at", datetime),
]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Build a demo store at 5% scale once, for the tests that only read."""
    path = tmp_path_factory.mktemp("small") / "demo.db"
    return path, build_demo_store(path, now=NOW, scale=SMALL)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """Build the demo store at full scale once (customer 4711 exists only there)."""
    path = tmp_path_factory.mktemp("full") / "demo.db"
    return path, build_demo_store(path, now=NOW)


def query(path, sql, *params):
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def content_digest(path):
    """Digest every table's rows in id order."""
    digest = hashlib.sha256()
    with closing(sqlite3.connect(path)) as conn:
        for table in BASE_ROWS:
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY id"):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def test_row_counts_match_the_summary(small):
    """The summary reports exactly the rows that are in each table."""
    path, summary = small
    actual = {table: query(path, f"SELECT count(*) FROM {table}")[0][0] for table in BASE_ROWS}
    assert dict(summary.rows) == actual


def test_small_scale_scales_every_table(small):
    """Scale multiplies the row count of every table."""
    _, summary = small
    expected = {table: round(base * SMALL) for table, base in BASE_ROWS.items()}
    assert expected == dict(summary.rows)


def test_full_scale_has_the_documented_sizes(full):
    """At scale 1.0 the tables have their documented sizes."""
    _, summary = full
    assert dict(BASE_ROWS) == dict(summary.rows)


def test_same_seed_gives_identical_contents(tmp_path, small):
    """The same seed, now and scale reproduce the store row for row."""
    path, summary = small
    again = tmp_path / "again.db"
    assert summary == build_demo_store(again, now=NOW, scale=SMALL)
    assert content_digest(path) == content_digest(again)


def test_another_seed_gives_other_contents(tmp_path, small):
    """A different seed gives different data."""
    path, _ = small
    other = tmp_path / "other.db"
    build_demo_store(other, now=NOW, seed=1, scale=SMALL)
    assert content_digest(path) != content_digest(other)


def test_existing_file_is_replaced(tmp_path):
    """Building over an existing file replaces it instead of adding to it."""
    path = tmp_path / "demo.db"
    path.write_bytes(b"not a database")
    first = build_demo_store(path, now=NOW, scale=SMALL)
    second = build_demo_store(path, now=NOW, scale=SMALL)
    assert first.rows["customers"] == query(path, "SELECT count(*) FROM customers")[0][0]
    assert first == second


def test_foreign_keys_are_consistent(small):
    """No row points at a parent that does not exist."""
    path, _ = small
    expected: list[tuple[object, ...]] = []
    assert expected == query(path, "PRAGMA foreign_key_check")


def test_foreign_keys_declare_their_on_delete(small):
    """Each foreign key is declared with the ON DELETE the demo relies on."""
    path, _ = small
    expected = {
        ("emails", "customer_id", "customers", "CASCADE"),
        ("email_attachments", "email_id", "emails", "CASCADE"),
        ("usage_events", "customer_id", "customers", "SET NULL"),
        ("invoices", "customer_id", "customers", "RESTRICT"),
        ("support_tickets", "customer_id", "customers", "RESTRICT"),
    }
    actual = {
        (table, column, parent, on_delete)
        for table in BASE_ROWS
        for _, _, parent, column, _, _, on_delete, _ in query(
            path, f"PRAGMA foreign_key_list({table})"
        )
    }
    assert expected == actual


@pytest.mark.parametrize(("table", "column", "kind"), DATE_COLUMNS)
def test_dates_lie_in_the_two_years_before_now(small, table, column, kind):
    """Every date is at most two years old and none lies after now."""
    path, _ = small
    window = (NOW_NAIVE - relativedelta(years=2), NOW_NAIVE)
    earliest, latest = window if kind is datetime else (moment.date() for moment in window)
    low, high = query(path, f"SELECT min({column}), max({column}) FROM {table}")[0]
    assert earliest <= kind.fromisoformat(low)
    assert kind.fromisoformat(high) <= latest


def test_children_lie_within_their_customers_lifetime(small):
    """No email, event, invoice or ticket predates its customer or follows its closing."""
    path, _ = small
    # Both sides are written by SQLAlchemy in one text format, so text order is time order.
    outside = query(
        path,
        """
        SELECT 'email', e.id FROM emails e JOIN customers c ON c.id = e.customer_id
        WHERE e.submitted_at < c.created_at OR e.submitted_at > c.closed_at
        UNION ALL
        SELECT 'event', u.id FROM usage_events u JOIN customers c ON c.id = u.customer_id
        WHERE u.occurred_at < c.created_at OR u.occurred_at > c.closed_at
        UNION ALL
        SELECT 'invoice', i.id FROM invoices i JOIN customers c ON c.id = i.customer_id
        WHERE i.issued_at < date(c.created_at) OR i.issued_at > date(c.closed_at)
        UNION ALL
        SELECT 'ticket', t.id FROM support_tickets t JOIN customers c ON c.id = t.customer_id
        WHERE t.created_at < c.created_at OR t.closed_at > c.closed_at
           OR t.closed_at < t.created_at
        """,
    )
    expected: list[tuple[str, int]] = []
    assert expected == outside


def test_some_emails_have_no_submitted_at(small):
    """A few emails (0.5%) have a NULL date, to show that doubt keeps a record."""
    path, summary = small
    undated = query(path, "SELECT count(*) FROM emails WHERE submitted_at IS NULL")[0][0]
    assert round(summary.rows["emails"] * 0.005) == undated


def test_tickets_are_closed_exactly_when_they_have_a_closing_date(small):
    """A ticket has closed_at if and only if its status is closed."""
    path, _ = small
    actual = query(
        path,
        "SELECT status, closed_at IS NULL, count(*) > 0 FROM support_tickets GROUP BY 1, 2",
    )
    expected = [("closed", 0, 1), ("open", 1, 1)]
    assert expected == actual


def test_personal_data_is_obviously_fake(small):
    """Addresses, phones and IPs come only from reserved example and documentation ranges."""
    path, _ = small
    real_looking = query(
        path,
        """
        SELECT email FROM customers
        WHERE email NOT LIKE '%@example.com' AND email NOT LIKE '%@example.org'
        UNION ALL SELECT phone FROM customers WHERE phone NOT LIKE '+1-555-01__'
        UNION ALL SELECT ip_address FROM usage_events
        WHERE ip_address NOT LIKE '192.0.2.%' AND ip_address NOT LIKE '198.51.100.%'
          AND ip_address NOT LIKE '203.0.113.%' AND ip_address NOT LIKE '2001:db8:%'
        """,
    )
    expected: list[tuple[str]] = []
    assert expected == real_looking


def test_customer_4711_has_old_emails_and_invoices(full):
    """Customer 4711 has at least 20 emails, several older than 12 months, and invoices."""
    path, _ = full
    year_ago = str(NOW_NAIVE - relativedelta(months=12))
    emails, old = query(
        path,
        "SELECT count(*), count(*) FILTER (WHERE submitted_at < ?) FROM emails"
        " WHERE customer_id = 4711",
        year_ago,
    )[0]
    invoices = query(path, "SELECT count(*) FROM invoices WHERE customer_id = 4711")[0][0]
    assert emails >= 20
    assert old >= 5
    assert invoices >= 5


TOTALS = """
    SELECT (SELECT count(*) FROM emails),
           (SELECT count(*) FROM email_attachments),
           (SELECT count(*) FROM usage_events WHERE customer_id IS NULL)
"""
OWNED = """
    SELECT (SELECT count(*) FROM emails WHERE customer_id = :c),
           (SELECT count(*) FROM email_attachments a JOIN emails e ON e.id = a.email_id
            WHERE e.customer_id = :c),
           (SELECT count(*) FROM usage_events WHERE customer_id = :c)
"""


def test_deleting_a_customer_cascades_to_emails_and_attachments(tmp_path, small):
    """With foreign keys on, deleting a customer removes its emails and their attachments."""
    path, _ = small
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)
    with closing(sqlite3.connect(copy)) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        (customer_id,) = conn.execute(
            "SELECT min(e.customer_id) FROM email_attachments a JOIN emails e ON e.id = a.email_id",
        ).fetchone()
        # Invoices and tickets RESTRICT the delete (they are kept for other reasons).
        conn.execute("DELETE FROM invoices WHERE customer_id = ?", (customer_id,))
        conn.execute("DELETE FROM support_tickets WHERE customer_id = ?", (customer_id,))
        emails, attachments, events = conn.execute(OWNED, {"c": customer_id}).fetchone()
        total_emails, total_attachments, anonymous_events = conn.execute(TOTALS).fetchone()
        conn.execute("DELETE FROM customers WHERE id = ?", (customer_id,))
        conn.commit()
        after = conn.execute(TOTALS).fetchone()
    assert attachments > 0
    expected = (total_emails - emails, total_attachments - attachments, anonymous_events + events)
    assert expected == after


def test_invoices_restrict_deleting_their_customer(tmp_path, small):
    """With foreign keys on, a customer with invoices cannot be deleted."""
    path, _ = small
    copy = tmp_path / "copy.db"
    shutil.copy(path, copy)
    with closing(sqlite3.connect(copy)) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        (customer_id,) = conn.execute("SELECT customer_id FROM invoices LIMIT 1").fetchone()
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed"):
            conn.execute("DELETE FROM customers WHERE id = ?", (customer_id,))


def test_naive_now_is_refused(tmp_path):
    """A naive ``now`` is refused: the dates would silently depend on the machine's zone."""
    with pytest.raises(ValueError, match="timezone-aware"):
        build_demo_store(tmp_path / "demo.db", now=NOW_NAIVE)


def test_command_line_builds_and_reports(tmp_path):
    """``python demo/demo_store.py`` builds the store and prints one summary line."""
    path = tmp_path / "cli.db"
    result = subprocess.run(
        [sys.executable, str(DEMO_STORE), str(path), "--now", "2026-03-15T09:30:00",
         "--scale", str(SMALL)], capture_output=True, text=True, check=False)
    expected = build_demo_store(tmp_path / "api.db", now=NOW, scale=SMALL)
    assert (0, f"demo store {path}: {expected}\n") == (result.returncode, result.stdout)
    assert content_digest(tmp_path / "api.db") == content_digest(path)


def test_summary_total_adds_up():
    """The summary's total is the sum of its tables."""
    expected = 7
    assert expected == DemoSummary({"a": 3, "b": 4}).total


DEMO_CONFIG = Path(__file__).resolve().parents[1] / "demo" / "retentiond.toml"
EXAMPLES = Path(__file__).resolve().parents[1] / "policies"


def demo_cli(config, *args):
    """One CLI command as ``make demo`` runs it; the result."""
    return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(config), *args],
                          capture_output=True, text=True, check=False)


def test_the_demo_config_finds_the_example_policies_wherever_it_is_run_from(tmp_path):
    """Relative paths in a config are read from its directory: the demo's reach ../policies."""
    result = subprocess.run([sys.executable, "-m", "retentiond", "--config", str(DEMO_CONFIG),
                             "validate", "--offline"], capture_output=True, text=True,
                            check=False, cwd=tmp_path)

    assert (0, "") == (result.returncode, result.stderr)
    assert result.stdout.startswith("ok: 6 rules")


def test_the_demo_enforces_in_the_declared_order(tmp_path):
    """``make demo``'s ``run --once`` starts the rules in the order the daemon runs them.

    So the support tickets are pseudonymized before they are quarantined: none lies on the
    quarantine shelf with its plaintext address.
    """
    build_demo_store(tmp_path / "app.db", now=datetime.now(tz=UTC), scale=SMALL)
    (tmp_path / "pseudonym.key").write_text("k" * 48, encoding="utf-8")
    config = tmp_path / "retentiond.toml"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8")
                      .replace('policy_dir = "../policies"', f'policy_dir = "{EXAMPLES}"')
                      .replace("../.demo/", f"{tmp_path}/"), encoding="utf-8")
    assert 0 == demo_cli(config, "audit", "keygen", "--out", str(tmp_path / "keys")).returncode
    plaintext = {row[0] for row in query(tmp_path / "app.db",
                                         "SELECT requester_email FROM support_tickets")}

    result = demo_cli(config, "run", "--once")

    assert 0 == result.returncode, result.stderr
    state = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        started = [r.entry.rule for r in AuditLedger(state).records()
                   if r.entry.kind is Kind.RUN_START]
    finally:
        state.close()
    expected = [rule.id for rule in ordered(load_policies(EXAMPLES).rules)]
    assert expected == started
    assert expected.index("tickets-pseudonymize-90-days") < expected.index(
        "tickets-quarantine-12-months")
    shelf = [row[0] for row in query(tmp_path / "app.db",
                                     "SELECT requester_email FROM retentiond_q_support_tickets")]
    assert shelf
    assert [] == [email for email in shelf if email in plaintext]
