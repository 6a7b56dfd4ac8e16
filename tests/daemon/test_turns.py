"""Rules due at once take turns: one at a time per store, in the declared order.

The daemon and ``run --once`` run the same rules in the same order
(:func:`retentiond.policy.order.ordered`); the daemon never runs two rules on one store at
once, so rules on one SQLite store do not fail with ``SQLITE_BUSY``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest
from clock import FakeClock
from daemon_kit import (
    OLD_DAYS,
    WAIT,
    YOUNG_DAYS,
    clean_env,
    make_site,
    policy,
    records,
    rule_yaml,
    wait_until,
)

from retentiond.daemon.turns import Turns
from retentiond.ledger.chain import Kind
from retentiond.policy.loader import load_policies
from retentiond.policy.model import Rule
from retentiond.policy.order import ordered

TABLES = ("emails", "sessions", "calls", "notes", "visits", "orders")
OLD_TICKETS = 20
QUARANTINE = "a-tickets-quarantine"
PSEUDONYMIZE = "b-tickets-pseudonymize"
DELETE_LAST = "0-emails-delete"
"""Its id comes first, but its ``after:`` puts it after the quarantine."""

TICKET_RULES = f"""rules:
  - id: {QUARANTINE}
    description: Tickets are isolated 12 months after they were made.
    store: app
    table: tickets
    age: {{column: made_at, older_than: 12 months}}
    action: {{type: quarantine, release_after: 6 months}}
    limits: {{max_percent: 100, max_rows: 1000000}}
  - id: {PSEUDONYMIZE}
    description: The requester's address is pseudonymized 90 days after a ticket was made.
    store: app
    table: tickets
    age: {{column: made_at, older_than: 90 days}}
    action:
      type: pseudonymize
      columns:
        email: {{domain: customer-email}}
    limits: {{max_percent: 100, max_rows: 1000000}}
"""
DELETE_AFTER = f"""  - id: {DELETE_LAST}
    description: Emails are deleted 12 months after they were made, after the tickets.
    store: app
    table: emails
    age: {{column: made_at, older_than: 12 months}}
    action: {{type: delete}}
    limits: {{max_percent: 100, max_rows: 1000000}}
    after: [{QUARANTINE}]
"""


def ticket_site(tmp_path, rules=TICKET_RULES + DELETE_AFTER):
    """A site whose rules quarantine and pseudonymize ``tickets`` (declared in that order)."""
    site = make_site(tmp_path, rules, old=30, young=10, tables=("emails",))
    now = datetime.now(tz=UTC).replace(tzinfo=None)
    tickets = [(n, (now - timedelta(days=OLD_DAYS if n <= OLD_TICKETS else YOUNG_DAYS))
                .strftime("%Y-%m-%d %H:%M:%S"), f"person{n}@example.org")
               for n in range(1, OLD_TICKETS + 6)]
    with closing(sqlite3.connect(site.store)) as connection, connection:
        connection.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, "
                           "made_at DATETIME NOT NULL, email TEXT NOT NULL)")
        connection.executemany("INSERT INTO tickets VALUES (?, ?, ?)", tickets)
    key = tmp_path / "pseudonym.key"
    key.write_text("k" * 48, encoding="utf-8")
    with site.config.open("a", encoding="utf-8") as config:
        config.write(f'\n[pseudonymize]\nkey_id = "k1"\n\n[pseudonymize.keys.k1]\nfile = "{key}"\n')
    return site


def started(site):
    """The rules in the order their runs started, from the ledger's ``run.start`` records."""
    with site.ledger() as ledger:
        return [r.entry.rule for r in ledger.records() if r.entry.kind is Kind.RUN_START]


def shelved_emails(site):
    """The addresses of the quarantined tickets, as they lie on the quarantine shelf."""
    with closing(sqlite3.connect(site.store)) as connection:
        return [row[0] for row in connection.execute(
            "SELECT email FROM retentiond_q_tickets ORDER BY id")]


def run_once(site):
    """``retentiond run --once`` on the site, as an operator types it."""
    result = subprocess.run(
        [sys.executable, "-m", "retentiond", "--config", str(site.config), "run", "--once"],
        env=clean_env(), cwd=site.root, capture_output=True, text=True, check=False)
    assert 0 == result.returncode, result.stderr


def run_daemon(site, local_daemon):
    """The daemon started with every rule due at once, until each rule's run ended."""
    rules = [rule.id for rule in load_policies(site.policies).rules]
    with local_daemon(site, FakeClock(), run_now=True):
        wait_until(lambda: all(records(site, Kind.RUN_END, rule) for rule in rules), WAIT,
                   "every rule's run")


RUNNERS = [pytest.param(lambda site, _: run_once(site), id="run-once"),
           pytest.param(run_daemon, id="daemon")]


@pytest.mark.parametrize("runner", RUNNERS)
def test_rules_due_at_once_run_in_the_declared_order(tmp_path, local_daemon, runner):
    """The pseudonymization before the quarantine of the same table, the after: last.

    The ledger's ``run.start`` records show the order of :func:`ordered`, in the daemon and
    in ``run --once`` alike, whatever the order of declaration or of the ids.
    """
    site = ticket_site(tmp_path)

    runner(site, local_daemon)

    expected = [rule.id for rule in ordered(load_policies(site.policies).rules)]
    assert [PSEUDONYMIZE, QUARANTINE, DELETE_LAST] == expected
    assert expected == started(site)


@pytest.mark.parametrize("runner", RUNNERS)
def test_quarantined_records_are_pseudonymized_first(tmp_path, local_daemon, runner):
    """Tickets due for both leave for the quarantine shelf with their address pseudonymized."""
    site = ticket_site(tmp_path, TICKET_RULES)

    runner(site, local_daemon)

    shelf = shelved_emails(site)
    assert (OLD_TICKETS, []) == (len(shelf), [e for e in shelf if e.endswith("@example.org")])


def test_rules_on_one_sqlite_store_firing_at_once_all_succeed(tmp_path, local_daemon):
    """Six rules on one SQLite store, all due on one tick: every run ends done.

    The store's lock timeout is 1 ms, so two rules writing at once would fail with
    ``SQLITE_BUSY`` (as they did): the rules take turns instead.
    """
    rules = [rule_yaml(f"purge-{table}", table, batch_size=3) for table in TABLES]
    site = make_site(tmp_path, policy(*rules), old=120, young=10, tables=TABLES)
    text = site.config.read_text(encoding="utf-8")
    site.config.write_text(text.replace("[daemon]", "lock_timeout_ms = 1\n\n[daemon]"),
                           encoding="utf-8")
    with local_daemon(site, FakeClock(), run_now=True):
        wait_until(lambda: all(records(site, Kind.RUN_END, f"purge-{t}") for t in TABLES),
                   WAIT, "every rule's run")
    ends = {t: records(site, Kind.RUN_END, f"purge-{t}")[0].entry.body for t in TABLES}
    expected = dict.fromkeys(TABLES, (None, "done"))
    assert expected == {t: (body.get("error"), body.get("status")) for t, body in ends.items()}


def unit_rule(rule_id, action, store="app"):
    """A rule on ``store.tickets`` with the action ``{type: action}`` (and its options)."""
    options = {"quarantine": {"release_after": "6 months"},
               "pseudonymize": {"columns": {"email": {"domain": "customer-email"}}}}
    return Rule.model_validate({
        "id": rule_id, "description": "A rule.", "store": store, "table": "tickets",
        "age": {"column": "made_at", "older_than": "12 months"},
        "action": {"type": action, **options.get(action, {})}})


def test_a_turn_runs_the_first_queued_rule_of_the_lane_in_order():
    """Whichever job gets the lane first, the queued rules run in the declared order."""
    turns = Turns()
    turns.arrange([unit_rule(QUARANTINE, "quarantine"), unit_rule(PSEUDONYMIZE, "pseudonymize"),
                   unit_rule("c-other-store", "delete", store="crm")])
    for rule_id in (QUARANTINE, PSEUDONYMIZE, "c-other-store"):
        turns.queue(rule_id)
    chosen = []

    for rule_id in (QUARANTINE, PSEUDONYMIZE, QUARANTINE):
        with turns.turn(rule_id, handed_over=lambda: None) as rule:
            chosen.append(rule)

    assert [PSEUDONYMIZE, QUARANTINE, None] == chosen


def test_the_purge_waits_for_the_rule_running_in_a_lane():
    """``every_lane`` (the quarantine purge) begins only once the running rule has ended."""
    turns = Turns()
    turns.arrange([unit_rule(QUARANTINE, "quarantine")])
    turns.queue(QUARANTINE)
    inside, release, happened = threading.Event(), threading.Event(), []

    def rule():
        with turns.turn(QUARANTINE, handed_over=lambda: None):
            inside.set()
            release.wait(WAIT)
            happened.append("rule ended")

    def purge():
        with turns.every_lane():
            happened.append("purge")

    running = threading.Thread(target=rule)
    running.start()
    assert inside.wait(WAIT)
    purging = threading.Thread(target=purge)
    purging.start()
    purging.join(0.3)  # a bound: the purge must still be waiting
    release.set()
    running.join(WAIT)
    purging.join(WAIT)

    assert ["rule ended", "purge"] == happened
