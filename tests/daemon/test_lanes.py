"""Rules on one store take turns in the daemon, in the declared order."""

from __future__ import annotations

from clock import FakeClock
from daemon_kit import WAIT, make_site, policy, records, rule_yaml, wait_until

from retentiond.ledger.chain import Kind

TABLES = ("emails", "sessions", "calls", "notes", "visits", "orders")


def test_rules_on_one_sqlite_store_firing_at_once_all_succeed(tmp_path, local_daemon):
    """Six rules on one SQLite store, all due at the same tick: every run ends done."""
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
