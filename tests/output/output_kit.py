"""A small site (SQLite store, policies, config) and ways to run the CLI on it and read output.

The output tests are about shapes and formats, not backends: the store is a SQLite file.
``cli`` runs the command in this process at a given terminal width (``COLUMNS``), as a pipe;
``on_terminal`` runs it in a subprocess whose stdout and stderr are a pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import sqlite3
import struct
import subprocess
import sys
import termios
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from click.testing import CliRunner

from retentiond.cli import main

LONG_RULE = "tickets-closed-quarantine-after-thirty-days"
"""A rule id longer than a narrow terminal's columns leave a table."""
BRAKED_RULE = "tickets-anonymized-after-ten-days"
HOLD = "complaint-4711-about-tickets"
ROWS = 30
BATCH = 7

POLICY = f"""\
rules:
  - id: {LONG_RULE}
    description: Closed tickets are isolated 30 days after closing.
    store: app
    table: tickets
    age: {{column: closed_at, older_than: 30 days}}
    action: {{type: quarantine, release_after: 1 day}}
    limits: {{max_rows: 1000, max_percent: 100}}
    batch_size: {BATCH}
  - id: {BRAKED_RULE}
    description: Requesters are blanked 10 days after closing.
    store: app
    table: tickets
    age: {{column: closed_at, older_than: 10 days}}
    action:
      type: anonymize
      columns:
        requester: {{strategy: constant, value: gone}}
    limits: {{max_rows: 3}}
holds:
  - id: {HOLD}
    reason: Complaint by customer 4711.
    store: app
    table: tickets
    where: {{column: customer_id, value: 4711}}
"""
"""30 tickets closed 90 days ago, three of them customer 4711's (held): the quarantine rule
acts on 27 in batches of 7; the anonymization is stopped by its max_rows brake of 3."""

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
"""How every moment is shown to people: ISO 8601, UTC, to the second."""
MOMENT = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d[^\s│┃]*")
"""Anything that looks like a moment, whatever its format."""


@dataclass(frozen=True)
class Site:
    """A config file naming a SQLite store and the policy directory."""

    root: Path
    config: Path
    store: Path


def make_site(root: Path) -> Site:
    """The tickets table with ROWS closed tickets, POLICY, and a config naming both."""
    store = root / "app.db"
    closed = (datetime.now(tz=UTC) - timedelta(days=90)).replace(tzinfo=None)
    with closing(sqlite3.connect(store)) as connection, connection:
        connection.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, customer_id INTEGER, "
                           "requester VARCHAR(100), closed_at DATETIME)")
        connection.executemany("INSERT INTO tickets VALUES (?, ?, ?, ?)", [
            (i, 4711 if i <= 3 else i, f"person{i}@example.com", closed.isoformat(sep=" "))
            for i in range(1, ROWS + 1)])
    policies = root / "policies"
    policies.mkdir()
    (policies / "tickets.yaml").write_text(POLICY, encoding="utf-8")
    config = root / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{root}/state.db"\n'
                      f'log_level = "warning"\n[stores.app]\nurl = "sqlite:///{store}"\n',
                      encoding="utf-8")
    return Site(root, config, store)


@dataclass(frozen=True)
class Output:
    """What a command printed, and its exit code."""

    code: int | str | None
    stdout: str
    stderr: str


def cli(site: Site, *args: str, columns: int = 80) -> Output:
    """``retentiond --config CONFIG ARGS`` in this process, into a pipe ``columns`` wide."""
    runner = CliRunner()
    saved = sys.argv
    code: int | str | None = 0
    with runner.isolation(env={"COLUMNS": str(columns)}) as (out, err, _):
        sys.argv = ["retentiond", "--config", str(site.config), *args]
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.argv = saved
            structlog.reset_defaults()
        sys.stdout.flush()
        sys.stderr.flush()
        return Output(code, out.getvalue().decode(), err.getvalue().decode())


def on_terminal(site: Site, *args: str, columns: int = 120) -> tuple[int, str]:
    """Run the CLI in a subprocess on a pseudo-terminal: (exit code, all it wrote there)."""
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES", "NO_COLOR",
                                                               "TERM"}
           and not k.startswith("RETENTIOND_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "retentiond", "--config", str(site.config), *args],
        stdin=child, stdout=child, stderr=child, env={**env, "TERM": "xterm-256color"})
    os.close(child)
    written = bytearray()
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        written += chunk
    os.close(parent)
    return process.wait(timeout=120), written.decode(errors="replace")


def in_a_pipe(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess whose stdout and stderr are pipes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTIOND_")}
    return subprocess.run(
        [sys.executable, "-m", "retentiond", "--config", str(site.config), *args],
        capture_output=True, text=True, env=env, timeout=120, check=False)


def lines_with(text: str, value: str) -> list[str]:
    """The lines of ``text`` that hold ``value`` whole."""
    return [line for line in text.splitlines() if value in line]


def run_ids(site: Site) -> list[str]:
    """The ids of the runs the ledger has ended, oldest first (read straight from the table)."""
    with closing(sqlite3.connect(site.root / "state.db")) as connection:
        return [run_id for (run_id,) in connection.execute(
            "SELECT DISTINCT run_id FROM audit_log WHERE kind = 'run.end' ORDER BY run_id")]
