"""The daemon's quarantine purge: every configured store, whatever the rules say today."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta

from clock import FakeClock
from daemon_kit import clean_env, make_site, make_table, policy, records, rule_yaml

from retentiond.ledger.chain import Kind


def test_the_daemons_purge_keeps_its_promise_for_a_rule_since_removed(tmp_path, local_daemon):
    """A batch quarantined by a rule later removed is still purged once its release date passes.

    ``run --once`` looks only in the stores its rules use; the daemon's purge job looks in
    every configured store, so removing a rule never strands what it isolated.
    """
    site = make_site(tmp_path, policy(rule_yaml()))
    archive = tmp_path / "archive.db"
    now = datetime.now(tz=UTC).replace(tzinfo=None)
    with closing(sqlite3.connect(archive)) as connection, connection:
        make_table(connection, "tickets", 5, 2, now)
    config = site.config.read_text(encoding="utf-8").replace(
        "[daemon]", f'[stores.archive]\nurl = "sqlite:///{archive}"\n\n[daemon]')
    site.config.write_text(config, encoding="utf-8")
    shelf = site.policies / "shelf.yaml"
    shelf.write_text(
        "rules:\n  - id: tickets-shelf\n    description: Old tickets are isolated for a day.\n"
        "    store: archive\n    table: tickets\n"
        "    age: {column: made_at, older_than: 12 months}\n"
        "    action: {type: quarantine, release_after: 1 day}\n"
        "    limits: {max_percent: 100, max_rows: 1000}\n", encoding="utf-8")
    ran = subprocess.run([sys.executable, "-m", "retentiond", "--config", str(site.config),
                          "run", "--once"], capture_output=True, text=True, timeout=120,
                         check=False, env=clean_env())
    assert 0 == ran.returncode, ran.stderr
    shelf.unlink()  # the rule is gone; its batch stays on the shelf until its release date
    clock = FakeClock(datetime.now(tz=UTC) + timedelta(days=2))

    with local_daemon(site, clock) as daemon:
        daemon._purge_in_turn()  # the purge job, as its schedule would fire it

    with closing(sqlite3.connect(archive)) as connection:
        left = connection.execute("SELECT count(*) FROM retentiond_q_tickets").fetchone()[0]
    assert 0 == left
    purged = [r.entry.body["count"] for r in records(site, Kind.OUTCOME, "tickets-shelf")
              if r.entry.body.get("op") == "purge"]
    assert [5] == purged
