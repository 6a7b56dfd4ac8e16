"""Every failure is evidence: a run that fails says so in the ledger, status, report, metrics, log.

Issue 15, item 1: a rule stopped being enforced and nothing said so (a traceback from
APScheduler; no ledger record; ``status`` still "done"; the report's "Problems: none").  The
table below is the specification.  Each way a run was seen to fail is made to happen, in the
daemon's scheduled job and in ``run --once``, on real servers:

``permissions``
    The rule's lease cannot be taken (a file stands where the leases' directory goes).
``store down``
    The store's PostgreSQL server is gone (a relay to it, cut; ``outage_kit``).
``state down``
    The state database's PostgreSQL server is gone.  The run's end cannot be written then:
    the daemon says so at once in the log (error) and the metrics, keeps the ``run.end``, and
    writes it (``happened_at``: when it failed) as soon as the state database is back; the
    ledger, ``status`` and the report then show it.  ``run --once`` cannot open its ledger
    and refuses before anything runs: exit 2, one ``error:`` line and an error in the log;
    nothing ran, so no run is recorded.

Where the failure must show: the rule's last ``run.end`` (status ``failed``, ``error_class``),
``retentiond status`` (failed), ``retentiond audit report`` (a "run failed" problem naming the
class), the metrics (``retentiond_last_run_failed`` from the ledger, which tells of both
entrances, and, for the daemon's own runs, ``retentiond_run_errors_total``), and the log at
error priority (``<3>`` under journald).  The daemon runs in this process on a clock the test
moves: the test holds the rule's lease, breaks something while the daemon waits for it, and
lets go.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from clock import FakeClock
from daemon_kit import RULE, WAIT, clean_env, policy, rule_yaml, wait_until
from outage_kit import Relay, free_port
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url
from structlog.testing import capture_logs

from retentiond.ledger.chain import AuditLedger, Kind
from retentiond.ledger.state import StateDB
from retentiond.run.leases import leases_for

LEASE_RETRY = 600
"""Seconds (on the test's clock) the daemon waits for a lease the test holds."""
OLD, YOUNG = 30, 10


@dataclass
class Site:
    """A PostgreSQL store reached through a relay, a state database, policies and a config."""

    root: Path
    config: Path
    store_url: str
    """The store, reached directly (the test's view)."""
    store: Relay
    state_url: str
    """The state database, reached directly (the test's view)."""
    state: Relay | None
    """The relay the daemon reaches a PostgreSQL state database through; None on SQLite."""
    metrics_port: int

    @property
    def leases(self) -> Path:
        """The leases' directory beside a SQLite state database."""
        return Path(make_url(self.state_url).database or "").with_name("state.db.leases")

    def remaining(self) -> int:
        """Rows still in the store's table."""
        engine = sa.create_engine(self.store_url, poolclass=sa.NullPool)
        try:
            with engine.connect() as connection:
                return int(connection.exec_driver_sql("SELECT count(*) FROM emails").scalar_one())
        finally:
            engine.dispose()

    def run_ends(self) -> list[dict[str, Any]]:
        """The bodies of the rule's ``run.end`` records, in order."""
        state = StateDB(self.state_url)
        try:
            return [dict(r.entry.body) for r in AuditLedger(state, reading=True).records()
                    if r.entry.kind is Kind.RUN_END and r.entry.rule == RULE]
        finally:
            state.close()


def make_site(root: Path, database: Callable[[], str], *, state_on_postgresql: bool) -> Site:
    """A site whose store (and, if asked, state database) is a fresh PostgreSQL database."""
    store_url = database()
    now = datetime.now(tz=UTC).replace(tzinfo=None)
    engine = sa.create_engine(store_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE emails (id INTEGER PRIMARY KEY, made_at TIMESTAMP NOT NULL)")
        connection.execute(sa.text("INSERT INTO emails VALUES (:id, :made_at)"), [
            {"id": n, "made_at": now - timedelta(days=800 if n <= OLD else 10)}
            for n in range(1, OLD + YOUNG + 1)])
    engine.dispose()
    target = make_url(store_url)
    address = (target.host or "127.0.0.1", target.port or 5432)
    store = Relay(address)
    state = Relay(address) if state_on_postgresql else None
    state_url = database() if state_on_postgresql else f"sqlite:///{root / 'state' / 'state.db'}"
    (root / "state").mkdir()
    policies = root / "policies"
    policies.mkdir()
    far = (datetime.now(tz=UTC) + timedelta(hours=12)).strftime("'%M %H * * *'")
    (policies / "rules.yaml").write_text(policy(rule_yaml(schedule=f"{{cron: {far}}}")))
    metrics_port = free_port()
    config = root / "retentiond.toml"
    config.write_text(
        f'policy_dir = "{policies}"\n'
        f'state_url = "{state.url_of(state_url) if state else state_url}"\n'
        f'log_format = "json"\nlog_level = "info"\n\n'
        f'[stores.app]\nurl = "{store.url_of(store_url)}"\n\n'
        f"[daemon]\nlease_retry_seconds = {LEASE_RETRY}\nmetrics_port = {metrics_port}\n\n"
        # Often: the daemon writes what it kept as soon as the state database is back.
        "[audit]\ncheckpoint_interval_seconds = 1\n", encoding="utf-8")
    return Site(root, config, store_url, store, state_url, state, metrics_port)


# -- the ways to fail --------------------------------------------------------------------------


def cut_the_leases(site: Site) -> None:
    """A file where the leases' directory goes: no lock file can be opened or made."""
    shutil.rmtree(site.leases, ignore_errors=True)
    site.leases.write_text("not a directory")


def mend_the_leases(site: Site) -> None:
    """The leases' directory may be made again."""
    site.leases.unlink()


def cut_the_store(site: Site) -> None:
    """The store's server goes away."""
    site.store.cut()


def mend_the_store(site: Site) -> None:
    """The store's server is back."""
    site.store.mend()


def cut_the_state(site: Site) -> None:
    """The state database's server goes away."""
    assert site.state is not None
    site.state.cut()


def mend_the_state(site: Site) -> None:
    """The state database's server is back."""
    assert site.state is not None
    site.state.mend()


@dataclass(frozen=True)
class Failure:
    """One way a run fails: how to cause and mend it, and the class of error it ends in."""

    name: str
    cause: Callable[[Site], None]
    mend: Callable[[Site], None]
    error_class: str
    state_on_postgresql: bool = False


FAILURES = [
    Failure("permissions", cut_the_leases, mend_the_leases, "LeaseError"),
    Failure("store down", cut_the_store, mend_the_store, "StoreUnavailable"),
    Failure("state down", cut_the_state, mend_the_state, "AuditError",
            state_on_postgresql=True),
]


@dataclass
class Seen:
    """What a failed run left, gathered once the failure is mended."""

    run_ends: list[dict[str, Any]]
    last_run: dict[str, Any] | None
    """The rule's last run as ``retentiond status --json`` gives it (None: never run)."""
    report_problems: list[str]
    """The rule's "run failed" rows of the report's problems (their text)."""
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    error_events: list[dict[str, Any]]
    """Log events at error priority about the rule's run."""


# -- the two entrances -------------------------------------------------------------------------


def through_the_daemon(site: Site, failure: Failure, local_daemon: Callable[..., Any]
                       ) -> tuple[Seen, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """The daemon's job for the rule fails; (what is seen after, the metrics at once)."""
    clock = FakeClock()
    state = StateDB(site.state_url)
    with closing(state), ExitStack() as lease:
        assert lease.enter_context(leases_for(state).hold(RULE))
        with capture_logs() as logs, local_daemon(site, clock, run_now=True):
            clock.until_waiting(1)  # the job waits for the lease the test holds
            lease.close()
            failure.cause(site)
            clock.advance(timedelta(seconds=LEASE_RETRY))
            wait_until(lambda: errors_counted(site) > 0, WAIT, "the failed run counted")
            at_once = scrape(site.metrics_port)
            failure.mend(site)
            wait_until(lambda: bool(site.run_ends()), WAIT, "the run's end in the ledger")
    errors = [e for e in logs if e.get("log_level") == "error" and e.get("rule") == RULE]
    return seen_after(site, errors, metrics=scrape_later(site, local_daemon)), at_once


def through_run_once(site: Site, failure: Failure, local_daemon: Callable[..., Any]
                     ) -> tuple[Seen, subprocess.CompletedProcess[str]]:
    """``run --once`` fails, its stderr the journal; (what is seen after, the command)."""
    failure.cause(site)
    journal = site.root / "journal"
    with journal.open("w", encoding="utf-8") as stderr:
        found = os.fstat(stderr.fileno())
        done = subprocess.run(
            [sys.executable, "-m", "retentiond", "--config", str(site.config), "run", "--once"],
            stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=120, check=False,
            env=clean_env(JOURNAL_STREAM=f"{found.st_dev}:{found.st_ino}"))
    done.stderr = journal.read_text(encoding="utf-8")
    failure.mend(site)
    errors = [json.loads(line[3:]) for line in done.stderr.splitlines()
              if line.startswith("<3>{")]
    errors = [e for e in errors if e.get("rule") == RULE or e.get("event") == "run.refused"]
    return seen_after(site, errors, metrics=scrape_later(site, local_daemon)), done


def seen_after(site: Site, errors: list[dict[str, Any]],
               metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> Seen:
    """The ledger, ``status`` and the report, read with everything mended."""
    status = cli(site, "status", "--json")
    assert 0 == status.returncode, status.stderr
    (last_run,) = [row["last_run"] for row in json.loads(status.stdout)["rules"]
                   if row["rule"] == RULE]
    page = site.root / "report.html"
    until = (datetime.now(tz=UTC) + timedelta(days=1)).date().isoformat()  # the clock ran on
    report = cli(site, "audit", "report", "--output", str(page), "--until", until)
    assert 0 == report.returncode, report.stderr
    rows = re.findall(r'<tr data-incident="run failed">(.*?)</tr>', page.read_text(), re.DOTALL)
    problems = [re.sub(r"<[^>]+>", " ", row) for row in rows if f"<code>{RULE}</code>" in row]
    return Seen(site.run_ends(), last_run, problems, metrics, errors)


def scrape_later(site: Site, local_daemon: Callable[..., Any]
                 ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The metrics of a daemon started afterwards (the rule not due): what the ledger tells."""
    with local_daemon(site, FakeClock()):
        return scrape(site.metrics_port)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The daemon's metrics: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def errors_counted(site: Site) -> float:
    """The daemon's count of failed runs of the rule, every error class together."""
    return sum(value for (name, labels), value in scrape(site.metrics_port).items()
               if name == "retentiond_run_errors_total" and ("rule", RULE) in labels)


def cli(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    """``retentiond --config CONFIG ARGS``."""
    return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(site.config),
                           *args], capture_output=True, text=True, timeout=120, check=False,
                          env=clean_env())


def last_run_failed(error_class: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The key of ``retentiond_last_run_failed`` for the rule and ``error_class``."""
    return ("retentiond_last_run_failed", (("error", error_class), ("rule", RULE)))


# -- the specification -------------------------------------------------------------------------


@pytest.fixture
def site(request: pytest.FixtureRequest, server: Any, tmp_path: Path) -> Iterator[Site]:
    """The site for the failure this test makes (``request.param``); relays cut afterwards."""
    failure: Failure = request.param
    made = make_site(tmp_path, server.database, state_on_postgresql=failure.state_on_postgresql)
    yield made
    for relay in (made.store, made.state):
        if relay is not None:
            relay.cut()


POSTGRESQL = pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql)


@pytest.mark.parametrize("server", [POSTGRESQL], indirect=True)
@pytest.mark.parametrize(("failure", "site"), [
    pytest.param(f, f, id=f.name) for f in FAILURES], indirect=["site"])
def test_a_failed_scheduled_job_is_in_the_ledger_status_report_metrics_and_log(
        failure, site, local_daemon):
    """The daemon's job fails: every place says failed, with the error's class, nothing acted.

    The metrics say it at once (even while the state database is away); the ledger, status and
    the report once the run's end is written (at once, or when the state database is back).
    """
    seen, at_once = through_the_daemon(site, failure, local_daemon)

    cls = failure.error_class
    assert [("failed", cls)] == [(e["status"], e.get("error_class")) for e in seen.run_ends]
    written_late = failure.state_on_postgresql  # kept while the state database was away
    assert [written_late] == ["happened_at" in e for e in seen.run_ends]
    assert "failed" == (seen.last_run or {}).get("status")
    assert 1 == len(seen.report_problems), seen.report_problems
    assert f"{cls}:" in seen.report_problems[0]
    assert 1.0 == at_once[("retentiond_run_errors_total", (("error", cls), ("rule", RULE)))]
    assert 1.0 == at_once[last_run_failed(cls)]
    assert 1.0 == seen.metrics[last_run_failed(cls)]
    assert [cls] == [e["error_class"] for e in seen.error_events if e["event"] == "run.end"]
    assert OLD + YOUNG == site.remaining()


@pytest.mark.parametrize("server", [POSTGRESQL], indirect=True)
@pytest.mark.parametrize(("failure", "site"), [
    pytest.param(f, f, id=f.name) for f in FAILURES if f.name != "state down"],
    indirect=["site"])
def test_a_failed_run_once_is_in_the_ledger_status_report_metrics_and_log(
        failure, site, local_daemon):
    """``run --once`` fails: exit 1, one error line, every place says failed with the class.

    The log line is at error priority under journald (``<3>``); the daemon's metrics, read
    from the ledger, tell of the operator's run too.
    """
    seen, done = through_run_once(site, failure, local_daemon)

    cls = failure.error_class
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert (1, 1) == (done.returncode, len(errors)), done.stderr
    assert "Traceback" not in done.stderr
    assert [("failed", cls)] == [(e["status"], e.get("error_class")) for e in seen.run_ends]
    assert "failed" == (seen.last_run or {}).get("status")
    assert 1 == len(seen.report_problems), seen.report_problems
    assert f"{cls}:" in seen.report_problems[0]
    assert 1.0 == seen.metrics[last_run_failed(cls)]
    assert [cls] == [e["error_class"] for e in seen.error_events if e["event"] == "run.end"]
    assert OLD + YOUNG == site.remaining()


@pytest.mark.parametrize("server", [POSTGRESQL], indirect=True)
@pytest.mark.parametrize("site", [FAILURES[2]], ids=["state down"], indirect=True)
def test_run_once_without_its_state_database_refuses_before_anything_runs(site, local_daemon):
    """The state database away: exit 2, one error line, an error in the log, nothing done.

    Nothing ran, so no run is recorded: the ledger, ``status`` and the metrics say the rule
    never ran; the refusal is in the exit code and the log at error priority.
    """
    seen, done = through_run_once(site, FAILURES[2], local_daemon)

    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert (2, 1) == (done.returncode, len(errors)), done.stderr
    assert "cannot open the state database" in errors[0]
    assert [("run.refused", "AuditError")] == [(e["event"], e["error_class"])
                                                for e in seen.error_events]
    assert [] == seen.run_ends
    assert seen.last_run is None
    assert [] == seen.report_problems
    assert [] == [key for key in seen.metrics if key[0] == "retentiond_last_run_failed"]
    assert OLD + YOUNG == site.remaining()


def test_run_once_leaves_alone_a_store_no_rule_uses(tmp_path):
    """A configured store that no rule uses is not touched, even to purge its quarantine.

    Its server is down here: before, ``run --once`` tried to list its quarantine shelf and
    logged the store as skipped; now it is not reached for at all, and the run is clean.
    """
    store = tmp_path / "app.db"
    now = datetime.now(tz=UTC).replace(tzinfo=None)
    with closing(sqlite3.connect(store)) as connection, connection:
        connection.execute("CREATE TABLE emails (id INTEGER PRIMARY KEY, made_at DATETIME)")
        connection.executemany("INSERT INTO emails VALUES (?, ?)", [
            (n, (now - timedelta(days=800)).isoformat(sep=" ")) for n in range(1, 4)])
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "rules.yaml").write_text(policy(rule_yaml()))
    config = tmp_path / "retentiond.toml"
    config.write_text(
        f'policy_dir = "{tmp_path / "policies"}"\n'
        f'state_url = "sqlite:///{tmp_path / "state.db"}"\nlog_format = "json"\n\n'
        f'[stores.app]\nurl = "sqlite:///{store}"\n\n'
        f'[stores.archive]\nurl = "postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"\n',
        encoding="utf-8")

    done = subprocess.run([sys.executable, "-m", "retentiond", "--config", str(config), "run",
                           "--once"], capture_output=True, text=True, timeout=120,
                          check=False, env=clean_env())

    assert 0 == done.returncode, done.stderr
    assert [] == [line for line in done.stderr.splitlines() if "archive" in line]

