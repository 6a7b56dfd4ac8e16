"""Crash test: SIGKILL ``retentiond run --once`` at random points; store and ledger still agree.

Each backend gets an ``emails`` table of a few thousand rows (about two thirds older than the
rule's 12 months, ages scattered over the ids) with a CASCADE child table ``attachments``, and a
delete rule with batches of 25; the state database is SQLite or PostgreSQL.  Real runs are
started over and over and each is killed with SIGKILL at a random point.  After a kill:

(a) what the next run's recovery settles is what the markers said while the intent was open;
(b) the ids gone from ``emails`` are exactly the keys of the batches the ledger (or, for a batch
    whose outcome the kill prevented, its marker) says were applied; no key is removed twice,
    and no row younger than the rule's period is ever gone;
(c) no batch is half-applied: an applied batch removed all its keys and their attachments (and
    recorded exactly those), and what it removed is what its intent committed to (count and
    keyed digest); a batch whose outcome says it was not applied left no marker, and by (b)
    none of its rows went;
(d) the hash chain verifies (``AuditLedger.verify``, and ``retentiond audit verify`` at the end);
(e) every outcome follows the one intent of its batch, and no batch has two outcomes.

A last, unkilled run then deletes everything that is due; after it no intent is open, every old
row is gone exactly once in the ledger, and ``retentiond audit verify`` exits 0.

How the kills are placed: the runs are forked from a server that has done the imports
(crash_worker.py), so no kill is wasted in the import system.  A quarter of the kills are timed
from the start of the run (validation, recovery, census, first batch); the rest wait for the
k-th ``batch.applied`` event (k in 1..12) and then a random part of one batch's duration, so
they spread over every step of a batch.  After a quarter of the kills nothing is checked: the
next run meets the raw aftermath (a hot SQLite journal, a server session not yet ended) itself.
The table is topped up with fresh rows so that every run has work.

``KILLS`` kills per backend run in the default suite (more, should no kill have landed yet in
one of the two windows a batch's intent stays open in); ``RETENTIOND_CRASH_KILLS=500`` runs the
long version (marked ``slow``), ``RETENTIOND_CRASH_SEED`` changes the seed.  ``pytest -s``
shows, per backend, how many kills landed where.

Three more tests: the checks themselves see what the ledger does not account for; a run that
starts while another has a batch in flight must leave that batch alone; and a batch whose COMMIT
the server finishes after its run was killed must be recovered as applied.  In both, recovery
sees no marker yet and takes the batch for rolled back (an unchecked kill in the random test can
land there too).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from crash_worker import ENDED as ENDED_LINE
from crash_worker import READY
from crash_worker import RUN as RUN_LINE
from sqlalchemy.engine import make_url

from retentiond.ledger.chain import AuditLedger, Entry, Kind, Record, canonical
from retentiond.ledger.state import StateDB
from retentiond.stores.sql.keeping import VOID, marker_table

KILLS = 50
"""Kills per backend (and state database) in the default suite."""
LONG_KILLS = int(os.environ.get("RETENTIOND_CRASH_KILLS", "0"))
"""Kills per backend in the long run; 0 (unset) skips it."""
SEED = int(os.environ.get("RETENTIOND_CRASH_SEED", "20260315"))

ROWS = 3000
"""Rows in ``emails`` at the start; about two thirds are due."""
BATCH_SIZE = 25
MOST_BATCHES = 12
"""Batch-timed kills wait for 1..MOST_BATCHES applied batches; the table always holds more."""
TIMED_SHARE = 0.25
"""Share of kills timed from the start of the run rather than from a batch."""
UNCHECKED_SHARE = 0.25
"""Share of kills after which the next run starts at once, before anything is checked (and
before the servers have ended the killed run's sessions: a COMMIT may still be under way)."""
WINDOWS = ("intent written, batch not committed", "batch committed, outcome not written")
"""Where a kill leaves an intent open: the two cases recovery tells apart by the marker."""
RULE = "emails-12-months"
REACHED = "attachments (cascade)"
WORKER = Path(__file__).with_name("crash_worker.py")
BATCH_EVENT = '"event": "batch.applied"'
TEST_APP = "retentiond-crash-test"
"""PostgreSQL application_name of the test's own connections, left out when counting sessions."""

POLICY = f"""\
rules:
  - id: {RULE}
    description: Emails are deleted 12 months after submission, attachments with them.
    store: app
    table: emails
    age:
      column: submitted_at
      older_than: 12 months
    action:
      type: delete
    batch_size: {BATCH_SIZE}
    limits:
      max_percent: 100
      max_rows: 10000000
"""

metadata = sa.MetaData()
emails = sa.Table(
    "emails", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("submitted_at", sa.DateTime, nullable=False),
)
attachments = sa.Table(
    "attachments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email_id", sa.Integer, sa.ForeignKey("emails.id", ondelete="CASCADE"),
              nullable=False, index=True),
)
markers = marker_table("retentiond_batches")
"""The batch markers, where retentiond keeps them by default."""


# -- the store: the rows the test made, the rows still there, the markers ---------------------


class Shop:
    """The store's tables as the test made them, and what is in them now."""

    def __init__(self, url: str, kind: str, rng: random.Random, *, cascade: bool = True) -> None:
        self.url = url
        self.kind = kind
        self.rng = rng
        self.cascade = cascade
        """Whether ``attachments`` exists (its foreign key makes every batch lock its rows)."""
        self.engine = sa.create_engine(url, poolclass=sa.NullPool)
        self.old: set[int] = set()
        self.young: set[int] = set()
        self.parent_of: dict[int, int] = {}
        """Attachment id -> email id."""
        self.next_id = 1
        self._markers: dict[str, dict[str, Any]] = {}

    def create(self, rows: int = ROWS) -> None:
        """Create the tables and the first rows."""
        metadata.create_all(self.engine, tables=None if self.cascade else [emails])
        self.add(rows)

    def add(self, count: int) -> int:
        """Insert ``count`` emails, two thirds of them due, ages scattered; how many are due."""
        now = datetime.now(tz=UTC).replace(tzinfo=None)
        rows, children, due_count = [], [], 0
        for number in range(self.next_id, self.next_id + count):
            due = self.rng.random() < 2 / 3
            due_count += due
            days = self.rng.uniform(400, 4000) if due else self.rng.uniform(0, 300)
            rows.append({"id": number, "submitted_at": now - timedelta(days=days)})
            (self.old if due else self.young).add(number)
            for _ in range(self.rng.choice((0, 0, 1, 2)) if self.cascade else 0):
                child = len(self.parent_of) + 1
                children.append({"id": child, "email_id": number})
                self.parent_of[child] = number
        with self.engine.begin() as connection:
            connection.execute(emails.insert(), rows)
            if children:
                connection.execute(attachments.insert(), children)
        self.next_id += count
        return due_count

    def present(self) -> tuple[set[int], set[int]]:
        """Ids in ``emails`` and in ``attachments``."""
        with self.engine.connect() as connection:
            parents = set(connection.execute(sa.select(emails.c.id)).scalars())
            children = (set(connection.execute(sa.select(attachments.c.id)).scalars())
                        if self.cascade else set())
        return parents, children

    def markers(self) -> dict[str, dict[str, Any]]:
        """Batch id -> the payload of each applied batch's marker (read once each).

        Void markers, which recovery writes to settle a batch as never applied, are left out.
        """
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table("retentiond_batches"):
                return {}
            ids = set(connection.execute(sa.select(markers.c.batch_id)
                                         .where(markers.c.payload != VOID)).scalars())
            new = sorted(ids - self._markers.keys())
            for start in range(0, len(new), 500):
                for batch_id, payload in connection.execute(
                        sa.select(markers.c.batch_id, markers.c.payload)
                        .where(markers.c.batch_id.in_(new[start:start + 500]))):
                    self._markers[batch_id] = json.loads(payload)
        vanished = sorted(self._markers.keys() - ids)
        assert [] == vanished, "batch markers disappeared"
        return dict(self._markers)

    def hot_journal(self) -> bool:
        """SQLite: whether a kill left a rollback journal beside the store file."""
        database = make_url(self.url).database or ""
        return self.kind == "sqlite" and Path(database + "-journal").exists()

    def close(self) -> None:
        """Dispose of the engine."""
        self.engine.dispose()


def sessions(url: str) -> int:
    """PostgreSQL / MariaDB: sessions on ``url``'s database other than the test's own."""
    parsed = make_url(url)
    kind = parsed.get_backend_name()
    if kind == "sqlite":
        return 0
    engine = sa.create_engine(parsed, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            if kind == "postgresql":
                return int(connection.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND application_name <> :mine"),
                    {"mine": TEST_APP}).scalar_one())
            return int(connection.execute(sa.text(
                "SELECT count(*) FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID()")).scalar_one())
    finally:
        engine.dispose()


def wait_for_sessions_to_end(urls: list[str], timeout: float = 20.0) -> float:
    """Wait until the killed run's server sessions are gone; the seconds waited.

    A server ends a killed client's transaction (a COMMIT already sent still commits) only once
    it notices the closed socket; until then a marker may yet appear, and the checks would guess.
    """
    started = time.monotonic()
    while any(sessions(url) for url in urls):
        if time.monotonic() - started > timeout:
            pytest.fail(f"the killed run's sessions were still open after {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - started


def tagged(url: str) -> str:
    """PostgreSQL: ``url`` with the test's application_name, so sessions() leaves it out."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.update_query_dict({"application_name": TEST_APP}).render_as_string(
        hide_password=False)


# -- the ledger, and what it must agree with -------------------------------------------------


@dataclass
class BatchRecord:
    """One batch as the ledger tells it."""

    intent: Record
    outcome: Record | None = None
    marker_while_open: bool | None = None
    """Whether the marker existed while the intent had no outcome (what recovery must find)."""


@dataclass
class Reading:
    """The ledger read so far (incrementally), and what its settled batches removed."""

    ledger: AuditLedger
    last_seq: int = 0
    batches: dict[str, BatchRecord] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """(e) violations seen while reading; they stay in the ledger, so they stay here."""
    settled: set[str] = field(default_factory=set)
    """Batches with an outcome, already checked against their marker."""
    gone: Counter[int] = field(default_factory=Counter)
    """Email ids removed by settled, applied batches (a count above 1 is a problem)."""
    reached: Counter[int] = field(default_factory=Counter)

    def read(self) -> list[Record]:
        """Read the records appended since the last call; the new ones."""
        new = list(self.ledger.records(after_seq=self.last_seq))
        for record in new:
            self._take(record)
        if new:
            self.last_seq = new[-1].seq
        return new

    def _take(self, record: Record) -> None:
        entry = record.entry
        batch_id = entry.batch_id
        if entry.kind is Kind.INTENT:
            if batch_id is None or batch_id in self.batches:
                self.problems.append(f"record {record.seq}: an intent for batch {batch_id} "
                                     "that is missing or has been seen before")
            else:
                self.batches[batch_id] = BatchRecord(record)
        elif entry.kind is Kind.OUTCOME:
            batch = self.batches.get(batch_id or "")
            if batch is None:
                self.problems.append(f"record {record.seq}: an outcome for batch {batch_id} "
                                     "without an intent before it")
            elif batch.outcome is not None:
                self.problems.append(
                    f"record {record.seq}: a second outcome for batch {batch_id}, "
                    f"{entry.body.get('status')!r} after {batch.outcome.entry.body.get('status')!r}"
                    f" (record {batch.outcome.seq})")
            else:
                batch.outcome = record

    def open(self) -> list[str]:
        """Batch ids with an intent but no outcome."""
        return [b for b, batch in self.batches.items() if batch.outcome is None]


@dataclass
class Verdict:
    """What the ledger and markers say was removed, and whatever does not add up."""

    gone: set[int]
    reached: set[int]
    markers: dict[str, dict[str, Any]]
    problems: list[str]


def judge(reading: Reading, shop: Shop) -> Verdict:
    """Check (a), (b), (c) and (e) against the store as it is now.

    Read the ledger first.  No run may be in flight, and the servers must have ended the
    sessions of killed runs.
    """
    problems = list(reading.problems)
    found = shop.markers()
    problems.extend(f"marker of batch {batch_id} has no intent in the ledger: an action the "
                    "ledger does not know of" for batch_id in found.keys() - reading.batches.keys())
    open_gone: Counter[int] = Counter()
    open_reached: Counter[int] = Counter()
    for batch_id, batch in reading.batches.items():
        if batch_id in reading.settled:
            continue
        marker = found.get(batch_id)
        applied = _applied(batch, marker, problems)
        settled = batch.outcome is not None
        if settled:
            reading.settled.add(batch_id)
        if applied and marker is not None:
            keys, children = _removed(batch, marker, reading.ledger, problems)
            (reading.gone if settled else open_gone).update(keys)
            (reading.reached if settled else open_reached).update(children)
    gone, reached = reading.gone + open_gone, reading.reached + open_reached
    problems.extend(_compare(shop, gone, reached))
    return Verdict(set(gone), set(reached), found, problems)


def _applied(batch: BatchRecord, marker: dict[str, Any] | None, problems: list[str]) -> bool:
    """Whether the batch was applied: its outcome says so (or, while open, its marker)."""
    batch_id = batch.intent.entry.batch_id
    if batch.outcome is None:
        if batch.marker_while_open is not None and batch.marker_while_open != (marker is not None):
            problems.append(f"batch {batch_id}: its marker came or went while its intent was open")
        batch.marker_while_open = marker is not None
        return marker is not None
    body = dict(batch.outcome.entry.body)
    status = body.get("status")
    applied = status == "applied"
    if status not in {"applied", "not applied", "rolled back"}:
        problems.append(f"batch {batch_id}: outcome status {status!r}")
    if applied != (marker is not None):
        problems.append(f"batch {batch_id}: outcome {status!r}, but the marker is "
                        f"{'there' if marker is not None else 'missing'}")
    elif applied and {k: v for k, v in body.items() if k != "recovered"} != marker:
        problems.append(f"batch {batch_id}: the applied outcome differs from the marker")
    if batch.marker_while_open is not None:
        if not body.get("recovered"):
            problems.append(f"batch {batch_id}: left open by a kill, settled without recovery")
        elif batch.marker_while_open != applied:
            problems.append(f"batch {batch_id}: recovered as {status!r} although the marker "
                            f"{'was' if batch.marker_while_open else 'was not'} there")
    return applied


def _removed(batch: BatchRecord, marker: dict[str, Any], ledger: AuditLedger,
             problems: list[str]) -> tuple[list[int], list[int]]:
    """The email and attachment ids an applied batch removed; its intent must match them."""
    batch_id = batch.intent.entry.batch_id
    keys = [tuple(key) for key in marker.get("keys", [])]
    intent = batch.intent.entry.body
    if not intent.get("count") == marker.get("count") == len(keys):
        problems.append(f"batch {batch_id}: intent count {intent.get('count')}, marker count "
                        f"{marker.get('count')}, {len(keys)} keys removed")
    if intent.get("keys_digest") != ledger.key_digest(keys):
        problems.append(f"batch {batch_id}: the keys removed are not the keys claimed (their "
                        "digest differs from the intent's)")
    children = marker.get("reached", {}).get(REACHED, [])
    if len(children) != marker.get("reached_count"):
        problems.append(f"batch {batch_id}: reached_count {marker.get('reached_count')}, "
                        f"{len(children)} attachments listed")
    return [key[0] for key in keys], [child[0] for child in children]


def _compare(shop: Shop, gone: Counter[int], reached: Counter[int]) -> list[str]:
    """Problems where the store does not show what the ledger says was removed."""
    problems = [f"{what} ids removed by more than one batch: {sorted(twice)[:10]}"
                for what, counted in (("email", gone), ("attachment", reached))
                if (twice := [k for k, n in counted.items() if n > 1])]
    parents, children = shop.present()
    missing = (shop.old | shop.young) - parents
    if missing != set(gone):
        problems.append(f"gone but not in the ledger: {sorted(missing - set(gone))[:10]}; in "
                        f"the ledger but still there: {sorted(set(gone) - missing)[:10]}")
    if missing & shop.young:
        problems.append(f"rows younger than 12 months are gone: {sorted(missing & shop.young)}")
    cascaded = {c for c, p in shop.parent_of.items() if p in missing}
    if cascaded != set(shop.parent_of) - children:
        problems.append(f"attachments of removed emails still there: "
                        f"{sorted(cascaded & children)[:10]}; gone while their email stays: "
                        f"{sorted(set(shop.parent_of) - children - cascaded)[:10]}")
    if cascaded != set(reached):
        problems.append(f"attachments cascaded but not recorded: "
                        f"{sorted(cascaded - set(reached))[:10]}; recorded but not cascaded: "
                        f"{sorted(set(reached) - cascaded)[:10]}")
    return problems


def landing(new: list[Record], found: dict[str, dict[str, Any]]) -> str:
    """Where in a run the kill landed, from the last record the killed run appended."""
    if not new:
        return "starting (validation, recovery reads)"
    last = new[-1].entry
    if last.kind is Kind.OUTCOME and last.body.get("recovered"):
        return "recovering"
    if last.kind is Kind.INTENT:
        return ("batch committed, outcome not written" if last.batch_id in found
                else "intent written, batch not committed")
    return {Kind.RUN_START: "census done, before the first batch",
            Kind.OUTCOME: "between batches (claiming)",
            Kind.RUN_END: "after the rule (purge, exit)"}.get(last.kind, last.kind.value)


# -- the runs we kill ------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """The environment without settings that would override the test's config file."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("RETENTIOND_") and k != "CREDENTIALS_DIRECTORY"}


@dataclass
class Run:
    """One forked run: its pid, when it started, its log, and when each batch was applied."""

    pid: int
    started: float
    lines: list[str] = field(default_factory=list)
    batches: list[float] = field(default_factory=list)
    """When each ``batch.applied`` event arrived (monotonic seconds)."""
    ended: bool = False
    """Whether its log is complete (the server has seen it end)."""


class Worker:
    """The fork server (crash_worker.py) of ``retentiond --config CONFIG run --once``."""

    def __init__(self, config: Path, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), "--config", str(config), "run", "--once"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env(), cwd=cwd)
        self._changed = threading.Condition()
        self._replies: list[str] = []
        self._runs: dict[int, Run] = {}
        self._stray: list[str] = []
        self._current: Run | None = None
        """The run whose log lines stderr carries now."""
        self._readers = [threading.Thread(target=self._read_replies, daemon=True),
                         threading.Thread(target=self._read_log, daemon=True)]
        for reader in self._readers:
            reader.start()
        self._reply(READY)

    def _read_replies(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._replies.append(line.strip())
                self._changed.notify_all()
        with self._changed:
            self._replies.append("")
            self._changed.notify_all()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if not line.strip():
                continue
            with self._changed:
                if line.startswith(RUN_LINE):
                    self._current = Run(int(line.split()[-1]), 0.0)
                    self._runs[self._current.pid] = self._current
                elif line.startswith(ENDED_LINE) and self._current is not None:
                    self._current.ended = True
                elif self._current is None:
                    self._stray.append(line)
                else:
                    self._current.lines.append(line)
                    if BATCH_EVENT in line:
                        self._current.batches.append(time.monotonic())
                self._changed.notify_all()

    def _reply(self, prefix: str) -> str:
        with self._changed:
            self._changed.wait_for(lambda: bool(self._replies), 60)
            reply = self._replies.pop(0) if self._replies else ""
        assert reply.startswith(prefix), (prefix, reply, "".join(self._stray[-20:]))
        return reply.removeprefix(prefix)

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n")
        self.process.stdin.flush()

    def start(self) -> Run:
        """Fork a run."""
        started = time.monotonic()
        self._send("go")
        pid = int(self._reply("pid "))
        with self._changed:  # its first line may have been read already
            assert self._changed.wait_for(lambda: pid in self._runs, 60), "the run is silent"
            run = self._runs.pop(pid)
        run.started = started
        return run

    def applied(self, run: Run, count: int, timeout: float = 60) -> bool:
        """Wait until ``count`` batches of ``run`` were applied; False when it ended first."""
        with self._changed:
            self._changed.wait_for(lambda: len(run.batches) >= count or run.ended, timeout)
            return len(run.batches) >= count

    def kill(self, run: Run) -> int:
        """SIGKILL the run (a no-op once it has ended: its pid is kept until reaped).

        Its exit code: ``-signal.SIGKILL`` when the kill is what ended it.
        """
        os.kill(run.pid, signal.SIGKILL)
        self._reply("ended")
        self._send("reap")
        code = int(self._reply("exit "))
        with self._changed:
            assert self._changed.wait_for(lambda: run.ended, 60), "the run's log did not end"
        return code

    def close(self) -> None:
        """End the fork server."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)
        for reader in self._readers:
            reader.join(timeout=30)
        for stream in (self.process.stdout, self.process.stderr):
            assert stream is not None
            stream.close()


@dataclass(frozen=True)
class Site:
    """A store, a state database, a policy directory and a config naming them."""

    root: Path
    config: Path
    store_url: str
    state_url: str
    kind: str
    state: str
    """The state database's kind."""
    cascade: bool = True
    """Whether the store has ``attachments``, whose cascade keeps every claim locked."""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m retentiond --config CONFIG ARGS``, to the end; never raises."""
        return subprocess.run(
            [sys.executable, "-m", "retentiond", "--config", str(self.config), *args],
            capture_output=True, text=True, env=clean_env(), cwd=self.root, timeout=300,
            check=False)


def make_site(root: Path, store_url: str, kind: str, state_url: str, extra: str = "", *,
              cascade: bool = True, policy: str = POLICY) -> Site:
    """Write the policy directory and a config naming ``store_url`` as store ``app``."""
    policies = root / "policies"
    policies.mkdir()
    (policies / "rules.yaml").write_text(policy, encoding="utf-8")
    config = root / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "{state_url}"\n'
                      f'log_level = "info"\n\n[stores.app]\nurl = "{store_url}"\n{extra}',
                      encoding="utf-8")
    return Site(root, config, store_url, state_url, kind, make_url(state_url).get_backend_name(),
                cascade)


# -- the crash loop ----------------------------------------------------------------------------


@dataclass
class Pace:
    """How long a run takes to its first batch, and one batch; learnt from every run."""

    to_first: float = 0.2
    per_batch: float = 0.01

    def wait(self, worker: Worker, run: Run, rng: random.Random) -> str:
        """Wait for a random point of the run; how it was chosen."""
        if rng.random() < TIMED_SHARE:
            delay = rng.uniform(0, self.to_first * 1.5)
            time.sleep(max(0.0, run.started + delay - time.monotonic()))
            return f"{delay * 1000:.1f} ms after the start"
        batches = rng.randint(1, MOST_BATCHES)
        delay = rng.uniform(0, self.per_batch)
        if worker.applied(run, batches):
            time.sleep(delay)
        return f"{delay * 1000:.1f} ms after batch {batches}"

    def learn(self, run: Run) -> None:
        """Update the estimates from the times of this run's batches."""
        times = run.batches
        if times:
            self.to_first = 0.7 * self.to_first + 0.3 * (times[0] - run.started)
        if len(times) > 1:
            gaps = sorted(b - a for a, b in itertools.pairwise(times))
            self.per_batch = 0.7 * self.per_batch + 0.3 * gaps[len(gaps) // 2]


@dataclass
class Tally:
    """What the crash loop did."""

    kills: int = 0
    finished: list[str] = field(default_factory=list)
    """Runs that ended by themselves before their kill: exit code, when, their log."""
    landings: Counter[str] = field(default_factory=Counter)
    unchecked: int = 0
    """Kills after which the next run started at once."""
    hot_journals: int = 0
    """SQLite: kills that left a rollback journal (``met``: found by the next run itself)."""
    hot_journals_met: int = 0
    warnings: Counter[str] = field(default_factory=Counter)
    """Warning and error events the runs logged (e.g. ``batch.retry`` after a lock wait)."""
    waited: float = 0.0
    """Longest wait for a server to end a killed run's sessions (seconds)."""
    seconds: float = 0.0


class CrashLoop:
    """Start runs, kill them at random points, check after (most) kills."""

    def __init__(self, site: Site, shop: Shop, reading: Reading, rng: random.Random) -> None:
        self.site = site
        self.shop = shop
        self.reading = reading
        self.rng = rng
        self.tally = Tally()
        self.pace = Pace()
        self.due = len(shop.old)
        """Due rows left (at least; exact after each check)."""
        self._unchecked: list[tuple[list[Record], bool]] = []
        self._context: list[str] = []

    def kill(self, kills: int) -> Tally:
        """Kill ``kills`` runs, and more (up to 3 x) until a kill has landed in each WINDOWS."""
        started = time.monotonic()
        verify_every = max(1, kills // 50)
        worker = Worker(self.site.config, self.site.root)
        attempt = 0
        try:
            while self.tally.kills < kills or (self.tally.kills < 3 * kills and not all(
                    self.tally.landings[window] for window in WINDOWS)):
                attempt += 1
                assert attempt <= 4 * kills, (f"only {self.tally.kills} of {attempt} runs "
                                              f"killed; the others: {self.tally.finished[:3]}")
                check = self.tally.kills >= kills - 1 or self.rng.random() > UNCHECKED_SHARE
                if self._one(worker, attempt, check=check) and attempt % verify_every == 0:
                    verification = self.reading.ledger.verify()
                    assert verification.ok, f"seed {SEED}, run {attempt}: {verification}"
        finally:
            worker.close()
        self.tally.seconds = time.monotonic() - started
        return self.tally

    def _one(self, worker: Worker, attempt: int, *, check: bool) -> bool:
        """Start, kill and (if ``check``) check one run; whether it was checked."""
        if self.due < (MOST_BATCHES + 4) * BATCH_SIZE:
            self.due += self.shop.add(ROWS // 2)
        run = worker.start()
        how = self.pace.wait(worker, run, self.rng)
        code = worker.kill(run)
        killed = code == -signal.SIGKILL
        self.pace.learn(run)
        self.due -= (len(run.batches) + 1) * BATCH_SIZE
        self.tally.warnings.update(_event(line) for line in run.lines
                                   if '"level": "warning"' in line or '"level": "error"' in line)
        if killed:
            self.tally.kills += 1
        else:
            self.tally.finished.append(f"exit {code} ({how}): {''.join(run.lines[-3:])}")
        hot = self.shop.hot_journal()
        self.tally.hot_journals += hot
        self._context.append(f"run {attempt} ({how}, {'killed' if killed else f'exit {code}'})"
                             f", its log ends: {''.join(run.lines[-3:])}")
        if not check:
            self.tally.unchecked += 1
            self.tally.hot_journals_met += hot
            self._unchecked.append((self.reading.read(), killed))
            return False
        self.tally.waited = max(self.tally.waited, wait_for_sessions_to_end(
            [self.site.store_url, self.site.state_url]))
        self._unchecked.append((self.reading.read(), killed))
        verdict = judge(self.reading, self.shop)
        context = (f"seed {SEED}, {self.site.kind}, state on {self.site.state}: "
                   + "; ".join(self._context))
        assert [] == verdict.problems, "\n".join([context, *verdict.problems])
        self.tally.landings.update(landing(new, verdict.markers)
                                   for new, killed in self._unchecked if killed)
        self._unchecked.clear()
        self._context.clear()
        self.due = len(self.shop.old - verdict.gone)
        return True


def _event(line: str) -> str:
    """The event name of a JSON log line (a kill may have torn it)."""
    try:
        return str(json.loads(line).get("event", "?"))
    except ValueError:
        return "(torn line)"


def crash(site: Site, kills: int, rng: random.Random) -> Tally:
    """Kill ``kills`` runs at random points, checking as it goes; then let one run finish."""
    shop = Shop(site.store_url, site.kind, rng, cascade=site.cascade)
    state = StateDB(tagged(site.state_url))
    try:
        shop.create()
        reading = Reading(AuditLedger(state))
        tally = CrashLoop(site, shop, reading, rng).kill(kills)
        finish(site, shop, reading)
    finally:
        state.close()
        shop.close()
    return tally


def finish(site: Site, shop: Shop, reading: Reading) -> None:
    """The CLI reports what is open; an unkilled run settles it and deletes all that is due."""
    reading.read()
    still_open = len(reading.open())
    before = site.cli("audit", "verify")
    assert (0, "") == (before.returncode, before.stderr)
    assert before.stdout.startswith(f"ok: {reading.last_seq} records"), before.stdout
    assert (f"{still_open} batch intent(s) have no outcome yet" in before.stdout) == bool(
        still_open), before.stdout

    result = site.cli("run", "--once")

    assert 0 == result.returncode, result.stderr
    reading.read()
    verdict = judge(reading, shop)
    assert [] == verdict.problems, "\n".join(verdict.problems)
    assert [] == reading.open()
    assert shop.old == verdict.gone
    assert {c for c, p in shop.parent_of.items() if p in shop.old} == verdict.reached
    assert reading.ledger.verify().ok
    after = site.cli("audit", "verify")
    assert (0, "") == (after.returncode, after.stderr)
    assert [f"ok: {reading.last_seq} records"] == [after.stdout.split(", chain head")[0]]


def report(site: Site, tally: Tally) -> None:
    """A few lines on what the loop did (shown with ``pytest -s``)."""
    print(f"\n{site.kind}, state on {site.state}: {tally.kills} kills in "  # noqa: T201
          f"{tally.seconds:.1f} s ({tally.unchecked} unchecked before the next run), "
          f"{len(tally.finished)} runs ended by themselves; server sessions ended within "
          f"{tally.waited:.3f} s; hot journals {tally.hot_journals} "
          f"({tally.hot_journals_met} met by the next run); warnings {dict(tally.warnings)}",
          *(f"  {n:3} {where}" for where, n in tally.landings.most_common()),
          *tally.finished, sep="\n")


@pytest.fixture
def site(server, backend, state_url, tmp_path):
    """The store ``app`` on the backend, a state database, the rule, and the config."""
    return make_site(tmp_path, backend, server.kind, state_url)


def seeded(site: Site, *more: str) -> random.Random:
    """The random generator of one test and backend, from SEED."""
    return random.Random("-".join([str(SEED), site.kind, site.state, *more]))  # noqa: S311


def test_sigkill_at_random_points_leaves_store_and_ledger_agreeing(site):
    """KILLS runs killed at random points: removed rows match the ledger, batches are whole."""
    tally = crash(site, KILLS, seeded(site))
    report(site, tally)

    assert KILLS <= tally.kills
    assert [True, True] == [tally.landings[window] > 0 for window in WINDOWS], tally.landings


@pytest.mark.parametrize("server", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)
def test_sigkill_where_postgresql_claims_without_locks(server, backend, state_url, tmp_path):
    """The same kills and checks with no foreign key reaching ``emails``.

    Then PostgreSQL claims rows without locking them and the DELETE re-checks them; in every
    run, each batch's outcome waits to go into the ledger with the next batch's intent.
    """
    site = make_site(tmp_path, backend, server.kind, state_url, cascade=False)

    tally = crash(site, KILLS, seeded(site, "unlocked"))
    report(site, tally)

    assert KILLS <= tally.kills
    assert [True, True] == [tally.landings[window] > 0 for window in WINDOWS], tally.landings


@pytest.mark.slow
@pytest.mark.skipif(not LONG_KILLS, reason="set RETENTIOND_CRASH_KILLS=N for the long run")
@pytest.mark.timeout(300 + 3 * LONG_KILLS)
def test_sigkill_at_many_more_points(site):
    """The long run: RETENTIOND_CRASH_KILLS kills per backend, the same checks."""
    tally = crash(site, LONG_KILLS, seeded(site, "long"))
    report(site, tally)

    assert LONG_KILLS <= tally.kills
    assert [True, True] == [tally.landings[window] > 0 for window in WINDOWS], tally.landings


# -- a batch in flight is not a crash --------------------------------------------------------

LOCK_WAITS = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                  "AND wait_event_type = 'Lock'",
    "mariadb": "SELECT count(*) FROM information_schema.innodb_trx t "
               "JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
               "WHERE t.trx_state = 'LOCK WAIT' AND p.db = DATABASE()",
}


def until(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Poll ``condition()`` until it holds; fail naming ``what`` after ``timeout`` seconds.

    Polls every 0.25 s: MariaDB refreshes ``information_schema.innodb_trx`` only when it has
    not been read for 0.1 s, so faster polling would read the same snapshot forever.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.25)


@pytest.mark.parametrize("server", [pytest.param("postgresql", marks=pytest.mark.postgresql),
                                    pytest.param("mariadb", marks=pytest.mark.mariadb)],
                         indirect=True)
def test_a_run_started_during_a_batch_leaves_that_batch_alone(server, backend, state_url,
                                                              tmp_path):
    """A second run's recovery must not settle the batch another run has in flight.

    ``run --once`` recovers a rule's open intents before enforcing it.  A batch whose intent is
    written and whose store transaction has not committed yet looks just like one a crash left:
    no marker.  Here the first run's batch is held (a test transaction locks one attachment its
    cascade must delete) until the second run has passed its recovery and waits for the first
    run's rows, or has ended (skipping the rule another run holds is fine).
    """
    site = make_site(tmp_path, backend, server.kind, state_url, extra="lock_timeout_ms = 30000\n")
    shop = Shop(backend, server.kind, random.Random(SEED))  # noqa: S311
    state = StateDB(tagged(site.state_url))
    reading = Reading(AuditLedger(state))
    command = [sys.executable, "-m", "retentiond", "--config", str(site.config), "run", "--once"]
    runs: list[subprocess.Popen[str]] = []

    def start() -> None:
        runs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=clean_env(), cwd=tmp_path))

    def waiting() -> int:
        with shop.engine.connect() as connection:
            return int(connection.exec_driver_sql(LOCK_WAITS[server.kind]).scalar_one())

    try:
        shop.create(300)
        first_batch = sorted(shop.old)[:BATCH_SIZE]
        held = min(c for c, p in shop.parent_of.items() if p in first_batch)
        with shop.engine.connect() as holder:
            holder.execute(sa.select(attachments.c.id).where(attachments.c.id == held)
                           .with_for_update())
            start()
            until(lambda: reading.ledger.open_intents() and waiting() == 1,
                  "the first run has written its intent and waits to delete")
            start()
            until(lambda: waiting() == 2 or runs[1].poll() is not None,
                  "the second run has recovered and waits for the first run's rows")
            holder.rollback()
        errors = [run.communicate(timeout=120)[1] for run in runs]
        assert 0 == runs[0].returncode, errors

        reading.read()
        verdict = judge(reading, shop)
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.communicate()
        state.close()
        shop.close()

    assert [] == verdict.problems, "\n".join(verdict.problems)
    assert shop.old == verdict.gone


# -- the checks themselves -------------------------------------------------------------------


@pytest.mark.parametrize("server", [pytest.param("sqlite", marks=pytest.mark.sqlite)],
                         indirect=True)
def test_the_checks_name_what_the_ledger_does_not_account_for(server, backend, tmp_path):
    """The checks are not vacuous: rows removed, kept or forged behind the ledger's back show."""
    shop = Shop(backend, server.kind, random.Random(SEED))  # noqa: S311
    state = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        shop.create(100)
        ledger = AuditLedger(state)
        alone = min(e for e in shop.old if e not in shop.parent_of.values())
        kept, claimed = sorted(shop.old - {alone})[:2]
        orphan = min(c for c, p in shop.parent_of.items() if p not in {alone, kept})
        body = {"status": "applied", "keys": [[kept]], "count": 1, "reached": {},
                "reached_count": 0}
        ledger.append_many([
            Entry(Kind.INTENT, rule=RULE, store="app", batch_id="claimed-but-kept",
                  body={"count": 1, "keys_digest": ledger.key_digest([[claimed]])}),
            Entry(Kind.OUTCOME, rule=RULE, store="app", batch_id="claimed-but-kept",
                  body=body)])
        markers.create(shop.engine)
        with shop.engine.begin() as connection:
            connection.execute(emails.delete().where(emails.c.id == alone))
            connection.execute(attachments.delete().where(attachments.c.id == orphan))
            connection.execute(markers.insert(), [
                {"batch_id": "claimed-but-kept", "run_id": "r", "rule": RULE,
                 "payload": canonical(body)},
                {"batch_id": "forged", "run_id": "r", "rule": RULE, "payload": "{}"}])
        reading = Reading(ledger)
        reading.read()

        verdict = judge(reading, shop)
    finally:
        state.close()
        shop.close()

    assert [
        "marker of batch forged has no intent in the ledger: an action the ledger does not "
        "know of",
        "batch claimed-but-kept: the keys removed are not the keys claimed (their digest "
        "differs from the intent's)",
        f"gone but not in the ledger: [{alone}]; in the ledger but still there: [{kept}]",
        f"attachments of removed emails still there: []; gone while their email stays: "
        f"[{orphan}]",
    ] == verdict.problems


# -- a commit can outlive the process that sent it -------------------------------------------

SLOW_FIRST_COMMIT = (
    "CREATE SEQUENCE commits_seen",
    "CREATE FUNCTION slow_first_commit() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN IF nextval('commits_seen') = 1 THEN PERFORM pg_sleep(3); END IF; "
    "RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER slow_first_commit AFTER INSERT ON retentiond_batches "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_first_commit()",
)
"""The first batch's COMMIT takes 3 s on the server (as it may waiting for a synchronous
standby); a sequence, not being transactional, lets every later commit through at once."""


@pytest.mark.parametrize("server", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)
def test_a_commit_that_outlives_the_killed_run_is_recovered_as_applied(server, backend, tmp_path):
    """Killed while its COMMIT is under way, a batch still commits; recovery must not say no.

    The server finishes a COMMIT it has received whether or not the client is still there.  The
    next run starts while it is under way: no marker is visible yet, but the batch is not
    rolled back either, and its marker appears a moment later.
    """
    site = make_site(tmp_path, backend, server.kind, f"sqlite:///{tmp_path / 'state.db'}")
    shop = Shop(backend, server.kind, random.Random(SEED))  # noqa: S311
    state = StateDB(site.state_url)
    command = [sys.executable, "-m", "retentiond", "--config", str(site.config), "run", "--once"]

    def committing() -> int:
        with shop.engine.connect() as connection:
            return int(connection.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event = 'PgSleep'").scalar_one())

    try:
        shop.create(300)
        markers.create(shop.engine)
        with shop.engine.begin() as connection:
            for statement in SLOW_FIRST_COMMIT:
                connection.exec_driver_sql(statement)
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=clean_env(), cwd=tmp_path)
        try:
            until(lambda: committing() == 1, "the first batch is committing")
        finally:
            first.kill()
            first.wait()

        second = site.cli("run", "--once")

        wait_for_sessions_to_end([backend])
        reading = Reading(AuditLedger(state))
        reading.read()
        verdict = judge(reading, shop)
    finally:
        state.close()
        shop.close()

    assert (-signal.SIGKILL, 0) == (first.returncode, second.returncode), second.stderr
    assert [] == verdict.problems, "\n".join(verdict.problems)
    assert shop.old == verdict.gone
