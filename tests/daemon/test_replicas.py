"""Three replicas on one PostgreSQL state database: one runs a rule, the others take over.

Three real daemons start with ``--now`` on the same config: a PostgreSQL store with 2,000 due
rows (and 400 young ones) and a rule deleting them in batches of 100 at 250 rows/s (about 8 s).
The replica holding the rule's lease is found by its log (``batch.applied``) and stopped
mid-run; another must take the rule over and finish it.  The ledger must then show every due
row deleted exactly once, one hash chain, no open intent, and no two runs at the same time.

Needs the PostgreSQL server of the suite (see tests/conftest.py): skipped when it cannot be
reached, failed when ``CI=true``.
"""

from __future__ import annotations

import gc
import itertools
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_kit import (
    OLD_DAYS,
    RULE,
    WAIT,
    YOUNG_DAYS,
    DaemonProcess,
    applied_keys,
    clean_env,
    policy,
    rule_yaml,
    wait_until,
)

from retentiond.errors import AuditError
from retentiond.ledger.chain import AuditLedger, Kind, Record
from retentiond.ledger.state import StateDB

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.parametrize("state_url", ["postgresql"], indirect=True),
]
store_on_postgresql = pytest.mark.parametrize("server", ["postgresql"], indirect=True)

OLD, YOUNG = 2000, 400
LEASE_RETRY = 1


@dataclass
class Replicas:
    """The config the replicas share, the rows made, and a look into the store."""

    config: Path
    state_url: str
    old: set[int]
    young: set[int]
    remaining: Callable[[], set[int]]


@pytest.fixture
def replicas(tmp_path, db, backend, state_url) -> Replicas:
    """The store (PostgreSQL), the policy, and a config naming the PostgreSQL state database."""
    db.run("CREATE TABLE emails (id INTEGER PRIMARY KEY, made_at TIMESTAMP NOT NULL)")
    now = datetime.now(tz=UTC).replace(tzinfo=None)
    young = {n for n in range(1, OLD + YOUNG + 1) if n % 6 == 0}
    db.insert("emails", [
        {"id": n, "made_at": now - timedelta(days=YOUNG_DAYS if n in young else OLD_DAYS)}
        for n in range(1, OLD + YOUNG + 1)])
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "rules.yaml").write_text(policy(rule_yaml(batch_size=100, throttle=250)),
                                         encoding="utf-8")
    config = tmp_path / "retentiond.toml"
    config.write_text(
        f'policy_dir = "{policies}"\nstate_url = "{state_url}"\nlog_format = "json"\n\n'
        f'[stores.app]\nurl = "{backend}"\n\n[daemon]\nlease_retry_seconds = {LEASE_RETRY}\n',
        encoding="utf-8")

    def remaining() -> set[int]:
        with db.engine.connect() as connection:
            return {row[0] for row in connection.exec_driver_sql("SELECT id FROM emails")}

    old = set(range(1, OLD + YOUNG + 1)) - young
    return Replicas(config, state_url, old, young, remaining)


def start_three(daemons, site: Replicas) -> tuple[DaemonProcess, list[DaemonProcess]]:
    """Start three replicas with --now; the one running the rule (mid-run), and the other two.

    Each starts once the one before is ready: replicas opening the state database at the same
    moment race (test_replicas_opening_the_state_database_at_once_all_succeed).  The holder
    is returned two batches after the last replica is up, with most of its run still ahead.
    """
    started: list[DaemonProcess] = []
    for _ in range(3):
        started.append(daemons(site.config, "--now"))
        started[-1].wait_event("daemon.ready")
    wait_until(lambda: any(d.events("batch.applied") for d in started), WAIT,
               "a replica applying batches")
    holder = next(d for d in started if d.events("batch.applied"))
    holder.wait_event("batch.applied", count=len(holder.events("batch.applied")) + 2)
    assert [] == holder.events("run.end"), "the run ended before every replica was up"
    return holder, [d for d in started if d is not holder]


@dataclass
class Run:
    """One run in the ledger: its first and last record (records of recovery left out)."""

    run_id: str
    first: int
    last: int
    status: str | None
    """The run.end status; None when the run has no end (it was killed)."""


def runs_of(records: list[Record]) -> list[Run]:
    """The rule's runs in the order they started."""
    found: dict[str, Run] = {}
    for record in records:
        entry = record.entry
        if entry.rule != RULE or entry.run_id is None or entry.body.get("recovered"):
            continue  # a recovered outcome carries the killed run's id, written by its successor
        run = found.setdefault(entry.run_id, Run(entry.run_id, record.seq, record.seq, None))
        run.last = record.seq
        if entry.kind is Kind.RUN_END:
            run.status = str(entry.body["status"])
    return sorted(found.values(), key=lambda run: run.first)


def overlapping(runs: list[Run]) -> list[tuple[str, str]]:
    """Pairs of runs whose records interleave: both ran at once."""
    return [(a.run_id, b.run_id) for a, b in itertools.pairwise(runs) if b.first < a.last]


@store_on_postgresql
def test_a_killed_replica_s_rule_is_finished_by_another(replicas, daemons, request):
    """SIGKILL the lease holder mid-run: another replica finishes; each row acted on once."""
    holder, others = start_three(daemons, replicas)
    holder.process.kill()
    killed_at = time.monotonic()
    assert -signal.SIGKILL == holder.wait()
    wait_until(lambda: any(d.events("run.end", status="done") for d in others), 30,
               "another replica finishing the rule")
    took_over = next(d for d in others if d.events("run.end", status="done"))
    first = took_over.arrivals("batch.applied")[0]
    request.node.user_properties.append(("takeover_seconds", round(first - killed_at, 3)))
    time.sleep(LEASE_RETRY + 0.5)  # the third replica looks again, and must not run the rule
    for replica in others:
        replica.signal(signal.SIGTERM)
    codes = [replica.wait() for replica in others]
    assert [0, 0] == codes, "\n\n".join(replica.log_tail() for replica in others)

    state = StateDB(replicas.state_url)
    try:
        ledger = AuditLedger(state)
        records = list(ledger.records())
        open_after_takeover = ledger.open_intents()
        assert ledger.verify().ok
    finally:
        state.close()
    runs = runs_of(records)
    assert [None, "done"] == [run.status for run in runs]
    assert [] == overlapping(runs)
    assert [] == holder.events("run.end")
    assert [runs[1].run_id] == [e["run"] for e in took_over.events("run.end")]
    assert [] == open_after_takeover
    keys = applied_keys(records)
    assert len(keys) == len(set(keys)), "a row was acted on twice"
    assert replicas.old == set(keys)
    assert replicas.young == replicas.remaining()

    once = subprocess.run([sys.executable, "-m", "retentiond", "--config", str(replicas.config),
                           "run", "--once"], capture_output=True, text=True, timeout=60,
                          env=clean_env(), check=False)
    assert 0 == once.returncode, once.stderr
    state = StateDB(replicas.state_url)
    try:
        ledger = AuditLedger(state)
        assert [] == ledger.open_intents()
        assert ledger.verify().ok
    finally:
        state.close()


@store_on_postgresql
def test_a_stopped_replica_s_rule_is_finished_by_another(replicas, daemons):
    """SIGTERM the lease holder mid-run (a rolling restart): another replica finishes the rule."""
    holder, others = start_three(daemons, replicas)
    holder.signal(signal.SIGTERM)
    assert 0 == holder.wait()
    assert "stopped" == holder.wait_event("run.end")["status"]
    wait_until(lambda: any(d.events("batch.applied") for d in others), LEASE_RETRY + 2,
               "another replica taking over the rule the stopped one left")
    wait_until(lambda: any(d.events("run.end", status="done") for d in others), WAIT,
               "another replica finishing the rule")
    for replica in others:
        replica.signal(signal.SIGTERM)
    assert [0, 0] == [replica.wait() for replica in others]
    assert replicas.young == replicas.remaining()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("schema", ["fresh", "existing"])
def test_replicas_opening_the_state_database_at_once_all_succeed(state_url, schema):
    """Replicas starting at the same moment all open the state database, new or not.

    (A StateDB that fails to open leaves its connection open; the warnings that raises when
    it is collected are ignored here and collected below, so that the failure shows alone.)
    """
    if schema == "existing":
        StateDB(state_url).close()
    barrier = threading.Barrier(4)
    errors: list[str] = []

    def open_state() -> None:
        barrier.wait(timeout=WAIT)
        try:
            StateDB(state_url).close()
        except AuditError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=open_state) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT)
    gc.collect()
    assert [] == errors
