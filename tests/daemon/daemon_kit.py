"""What the daemon tests share: a stand-in for systemd's notify socket, the daemon as a process.

:class:`NotifySocket` binds the AF_UNIX datagram socket a test names in ``$NOTIFY_SOCKET`` and
keeps every message the daemon sends, with the (monotonic) time it arrived.
:class:`DaemonProcess` is ``python -m retentiond --config CONFIG daemon`` as a real process,
its JSON log (stderr) read line by line as it comes; :func:`in_process` is the daemon in the
test's own process, on a clock the test moves (see ``tests/clock.py``).  :func:`make_site`
writes a SQLite store, a policy directory and a config file.  Every wait has a timeout;
whatever is still running when a test ends is killed by the fixtures in ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clock import FakeClock

from retentiond.clock import Clock
from retentiond.daemon.service import Daemon
from retentiond.ledger.chain import AuditLedger, Entry, Kind, Record
from retentiond.ledger.state import StateDB
from retentiond.run.runtime import Setup

RULE = "emails-12-months"
BATCH = 50
"""Rows per batch of the rules the tests write."""
OLD_DAYS = 800
"""Age of the rows a 12-month rule selects."""
YOUNG_DAYS = 10
WAIT = 20.0
"""Longest wait for anything a daemon is expected to do (seconds); a bound, not a pause."""
AGENT_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
                   "CREDENTIALS_DIRECTORY")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without RETENTIOND_* settings or systemd's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RETENTIOND_") and k not in AGENT_VARIABLES}
    env.update(extra)
    return env


# -- the notify socket -------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One sd_notify datagram: when it arrived (time.monotonic) and its KEY=VALUE fields."""

    at: float
    fields: Mapping[str, str]


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd; keeps every message it receives.

    ``address`` is a path, or ``@name`` for the abstract namespace (as in ``$NOTIFY_SOCKET``).
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.messages: list[Message] = []
        self._cursor = 0
        self._changed = threading.Condition()
        self._closed = threading.Event()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind("\0" + address[1:] if address.startswith("@") else address)
        self._socket.settimeout(0.05)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            at = time.monotonic()
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._changed:
                self.messages.append(Message(at, fields))
                self._changed.notify_all()

    def expect(self, key: str, value: str | None = None, timeout: float = WAIT) -> Message:
        """The next message (after the last one expected) carrying ``key`` (``=value``).

        Messages in between are skipped (still in ``messages``); fails after ``timeout``.
        """
        def found() -> int | None:
            for index in range(self._cursor, len(self.messages)):
                fields = self.messages[index].fields
                if key in fields and (value is None or fields[key] == value):
                    return index
            return None

        with self._changed:
            self._changed.wait_for(lambda: found() is not None, timeout)
            index = found()
            if index is None:
                seen = [dict(m.fields) for m in self.messages[self._cursor:]]
                pytest.fail(f"no {key}={value or '*'} within {timeout} s; since then: {seen}")
            self._cursor = index + 1
            return self.messages[index]

    def since(self, moment: float) -> list[Message]:
        """The messages that arrived at or after ``moment`` (time.monotonic)."""
        with self._changed:
            return [m for m in self.messages if m.at >= moment]

    def close(self) -> None:
        """Stop reading and close the socket (a path socket's file is left to tmp_path)."""
        self._closed.set()
        self._reader.join(timeout=5)
        self._socket.close()


# -- the daemon process ------------------------------------------------------------------------


@dataclass
class LogLine:
    """One line of the daemon's log: when it arrived and the JSON event (or the raw text)."""

    at: float
    event: dict[str, Any] = field(default_factory=dict)


class DaemonProcess:
    """``python -m retentiond --config CONFIG daemon ARGS`` as a real process, its log read live."""

    def __init__(self, config: Path, *args: str, env: Mapping[str, str] | None = None,
                 command: str = "daemon") -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "retentiond", "--config", str(config), command, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=dict(env) if env is not None else clean_env(), cwd=config.parent)
        self.pid = self.process.pid
        self.lines: list[LogLine] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for text in self.process.stderr:
            try:
                event = json.loads(text)
            except ValueError:
                event = {"event": None, "raw": text.rstrip("\n")}
            if not isinstance(event, dict):
                event = {"event": None, "raw": text.rstrip("\n")}
            with self._changed:
                self.lines.append(LogLine(time.monotonic(), event))
                self._changed.notify_all()

    def events(self, name: str | None = None, **match: object) -> list[dict[str, Any]]:
        """The log events named ``name`` (every one when None) whose fields match ``match``."""
        with self._changed:
            return [line.event for line in self.lines if _matches(line.event, name, match)]

    def arrivals(self, name: str, **match: object) -> list[float]:
        """When each ``name`` event matching ``match`` arrived (time.monotonic)."""
        with self._changed:
            return [line.at for line in self.lines if _matches(line.event, name, match)]

    def wait_event(self, name: str, count: int = 1, timeout: float = WAIT,
                   **match: object) -> dict[str, Any]:
        """Wait until ``count`` events ``name`` matching ``match`` were logged; the last one."""
        def enough() -> bool:
            return sum(_matches(line.event, name, match) for line in self.lines) >= count

        with self._changed:
            self._changed.wait_for(lambda: enough() or not self._reader.is_alive(), timeout)
            if not enough():
                pytest.fail(f"no {count} x {name} {match or ''} within {timeout} s "
                            f"(exit code {self.process.poll()}); log:\n{self.log_tail()}")
        return self.events(name, **match)[count - 1]

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log, for failure messages."""
        with self._changed:
            return "\n".join(json.dumps(line.event) for line in self.lines[-lines:])

    def signal(self, signum: signal.Signals) -> float:
        """Send ``signum``; when it was sent (time.monotonic)."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        return sent

    def wait(self, timeout: float = WAIT) -> int:
        """The exit code, once the process has ended (killed and failed after ``timeout``)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            pytest.fail(f"the daemon did not exit within {timeout} s; log:\n{self.log_tail()}")
        self._reader.join(timeout=10)
        return code

    def cleanup(self) -> None:
        """Kill the process if it still runs, reap it, and close its pipe."""
        if self.process.poll() is None:
            self.process.kill()
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


def _matches(event: Mapping[str, Any], name: str | None, match: Mapping[str, object]) -> bool:
    return (name is None or event.get("event") == name) and all(
        event.get(key) == value for key, value in match.items())


# -- a site: store, policies, config -----------------------------------------------------------


@dataclass
class Site:
    """A SQLite store ``app`` with a table of dated rows, a policy directory and a config."""

    root: Path
    config: Path
    policies: Path
    store: Path
    state_url: str
    old: set[int]
    young: set[int]

    def write_policy(self, text: str, name: str = "rules.yaml") -> None:
        """Write (or replace) a policy file."""
        (self.policies / name).write_text(text, encoding="utf-8")

    def remaining(self, table: str = "emails") -> set[int]:
        """Ids still in ``table``."""
        with closing(sqlite3.connect(self.store)) as connection:
            return {row[0] for row in connection.execute(f"SELECT id FROM {table}")}

    @contextmanager
    def ledger(self) -> Iterator[AuditLedger]:
        """The audit ledger of the site's state database."""
        state = StateDB(self.state_url)
        try:
            yield AuditLedger(state)
        finally:
            state.close()


def rule_yaml(rule_id: str = RULE, table: str = "emails", *, batch_size: int = BATCH,
              throttle: float | None = None, schedule: str | None = None,
              enabled: bool = True) -> str:
    """One delete rule over ``table`` (rows older than 12 months), as an item of ``rules:``."""
    lines = [
        f"  - id: {rule_id}",
        f"    description: Rows of {table} are deleted 12 months after they were made.",
        "    store: app",
        f"    table: {table}",
        "    age: {column: made_at, older_than: 12 months}",
        "    action: {type: delete}",
        f"    batch_size: {batch_size}",
        "    limits: {max_percent: 100, max_rows: 1000000}",
    ]
    if throttle is not None:
        lines.append(f"    throttle: {throttle}")
    if schedule is not None:
        lines.append(f"    schedule: {schedule}")
    if not enabled:
        lines.append("    enabled: false")
    return "\n".join(lines) + "\n"


def policy(*rules: str) -> str:
    """A policy file holding ``rules`` (items made by :func:`rule_yaml`)."""
    return "rules:\n" + "".join(rules)


def make_table(connection: sqlite3.Connection, table: str, old: int, young: int,
               now: datetime) -> tuple[set[int], set[int]]:
    """Create ``table(id, made_at)``: every third row young, the rest old; (old ids, young ids)."""
    connection.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, made_at DATETIME NOT NULL)")
    olds, youngs, rows = set(), set(), []
    for number in range(1, old + young + 1):
        is_young = len(youngs) < young and (number % 3 == 0 or len(olds) >= old)
        days = YOUNG_DAYS if is_young else OLD_DAYS
        (youngs if is_young else olds).add(number)
        stamp = (now - timedelta(days=days, minutes=number)).strftime("%Y-%m-%d %H:%M:%S")
        rows.append((number, stamp))
    connection.executemany(f"INSERT INTO {table} VALUES (?, ?)", rows)
    return olds, youngs


def make_site(root: Path, rules: str, *, old: int = 400, young: int = 200,
              daemon: str = "", tables: tuple[str, ...] = ("emails", "sessions"),
              lease_retry: float = 1) -> Site:
    """A store with ``tables`` (``emails`` gets ``old`` + ``young`` rows, others 30 + 10).

    ``daemon``: more lines of the config's ``[daemon]`` section (its last).
    """
    now = datetime.now(tz=UTC).replace(tzinfo=None)
    store = root / "app.db"
    with closing(sqlite3.connect(store)) as connection, connection:
        olds, youngs = make_table(connection, tables[0], old, young, now)
        for table in tables[1:]:
            make_table(connection, table, 30, 10, now)
    policies = root / "policies"
    policies.mkdir()
    (policies / "rules.yaml").write_text(rules, encoding="utf-8")
    state_url = f"sqlite:///{root / 'state' / 'state.db'}"
    config = root / "retentiond.toml"
    config.write_text(
        f'policy_dir = "{policies}"\nstate_url = "{state_url}"\nlog_format = "json"\n'
        f'log_level = "info"\n\n[stores.app]\nurl = "sqlite:///{store}"\n\n'
        f"[daemon]\nlease_retry_seconds = {lease_retry}\n{daemon}",
        encoding="utf-8")
    return Site(root, config, policies, store, state_url, olds, youngs)


# -- the ledger --------------------------------------------------------------------------------


def seed_run(state_url: str, rule: str, clock: FakeClock) -> None:
    """Write one finished run of ``rule`` into the ledger: started now, ended a second later.

    ``clock`` (a FakeClock set in the past) stamps the records, and is left a second on.
    """
    state = StateDB(state_url)
    run_id = "00000000-0000-4000-8000-000000000001"
    try:
        ledger = AuditLedger(state, clock=clock)
        ledger.append(Entry(Kind.RUN_START, run_id, rule,
                            body={"as_of": clock.now().isoformat()}))
        clock.advance(timedelta(seconds=1))
        ledger.append(Entry(Kind.RUN_END, run_id, rule,
                            body={"status": "done", "acted": 0, "reached": 0, "batches": 0}))
    finally:
        state.close()


def applied_keys(records: list[Record]) -> list[int]:
    """The keys of every applied batch outcome, in ledger order (a key twice: acted on twice)."""
    return [key[0] for record in records
            if record.entry.kind is Kind.OUTCOME and record.entry.body.get("status") == "applied"
            for key in record.entry.body.get("keys", [])]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 50 ms until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)


# -- the daemon in this process ----------------------------------------------------------------


@contextmanager
def in_process(site: Site, clock: Clock, *, run_now: bool = False) -> Iterator[Daemon]:
    """The site's daemon started in this process on ``clock``, stopped when the block ends.

    APScheduler fires its jobs on real time; what they decide (what is due, the run window,
    when to try again, the times in the ledger) reads ``clock``.
    """
    daemon = Daemon(Setup(site.config, clock=clock), run_now=run_now)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


def records(site: Site, kind: Kind, rule: str = RULE) -> list[Record]:
    """The ledger's records of ``kind`` about ``rule``, in order."""
    with site.ledger() as ledger:
        return [r for r in ledger.records() if r.entry.kind is kind and r.entry.rule == rule]
