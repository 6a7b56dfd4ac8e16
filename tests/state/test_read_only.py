"""SQLite: an auditor verifies a state file it can only read, and writes nothing to it.

SQLite has no roles; the owner and the auditor are split by file permissions.  A file this
user cannot write, or a ``mode=ro`` URI (which holds for root too: root writes any file
whatever its mode), is opened read-only: no journal-mode change, no write lock, no schema.
What SQLite itself needs: a WAL database is read beside its ``-shm`` file, which exists while
the daemon has the database open and which a reader who cannot write the directory cannot make.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from state_kit import (
    AUDIT_COMMANDS,
    NOBODY,
    POLICY,
    cli,
    config,
    enforced,
    engine,
    nobody_python,
    read_commands,
    store,
)

from retentiond.errors import AuditError
from retentiond.ledger.chain import AuditLedger, Entry, Kind
from retentiond.ledger.state import StateDB

pytestmark = pytest.mark.sqlite

READER = """\
import sys
from retentiond.ledger.chain import AuditLedger
from retentiond.errors import AuditError
from retentiond.ledger.state import StateDB
try:
    state = StateDB(sys.argv[1])
    verified = AuditLedger(state).verify()
    print(state.read_only, verified.ok, verified.records)
    state.close()
except AuditError as exc:
    print(exc.what)
"""
"""Verify the ledger at argv[1]: 'read-only ok records', or the error."""


def sha256(path):
    """The sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def filled(path, count=3):
    """An owner's state database at ``path`` with ``count`` records, left open (its handle)."""
    state = StateDB(f"sqlite:///{path}")
    ledger = AuditLedger(state)
    for number in range(count):
        ledger.append(Entry(Kind.RUN_START, run_id=f"run-{number}", body={"n": number}))
    return state


def read_only_copy(tmp_path):
    """A copy of a state database with three records, made read-only (0444)."""
    filled(tmp_path / "state.db").close()
    copy = tmp_path / "copy" / "state.db"
    copy.parent.mkdir()
    shutil.copy(tmp_path / "state.db", copy)
    copy.chmod(0o444)
    return copy


@pytest.mark.parametrize("how", ["mode=ro", "unwritable"])
def test_a_read_only_open_verifies_and_writes_nothing(tmp_path, how):
    """The auditor's open reads and verifies the ledger; appending fails; no byte changes."""
    if how == "unwritable" and os.geteuid() == 0:
        pytest.skip("root may write a file whatever its mode: root says mode=ro (see the "
                    "other case) and another user is tested by the nobody tests below")
    copy = read_only_copy(tmp_path)
    url = {"mode=ro": f"sqlite:///file:{copy}?mode=ro&uri=true",
           "unwritable": f"sqlite:///{copy}"}[how]
    before = sha256(copy)

    state = StateDB(url)
    try:
        ledger = AuditLedger(state)
        verified = ledger.verify()
        with pytest.raises(AuditError, match="attempt to write a readonly database"):
            ledger.append(Entry(Kind.RUN_START))
        read_only = state.read_only
    finally:
        state.close()

    assert (True, True, 3) == (read_only, verified.ok, verified.records)
    assert before == sha256(copy)


def test_the_audit_commands_read_a_file_they_cannot_write(tmp_path):
    """The reviewer's audit commands run on a 0444 copy through a mode=ro state_url."""
    stores = store(tmp_path)
    (tmp_path / "owner").mkdir()
    (tmp_path / "auditor").mkdir()
    owner = config(tmp_path / "owner", f"sqlite:///{tmp_path / 'state.db'}", stores=stores,
                   policy=POLICY)
    for args in (["hold", "add", "--store", "app", "--table", "events", "--reason",
                  "Complaint.", "--by", "counsel"], ["run", "--once"]):
        done = cli(owner, *args)
        assert (0, "") == (done.returncode, done.stderr), args
    copy = tmp_path / "copy.db"
    shutil.copy(tmp_path / "state.db", copy)
    copy.chmod(0o444)
    before = sha256(copy)
    auditor = config(tmp_path / "auditor", f"sqlite:///file:{copy}?mode=ro&uri=true",
                     stores=stores, policy=POLICY)

    runs = {name: cli(auditor, "audit", *args) for name, args in AUDIT_COMMANDS.items()}

    assert dict.fromkeys(runs, (0, "")) == {
        name: (run.returncode, run.stderr) for name, run in runs.items()}
    assert runs["verify"].stdout.startswith("ok: 4 records")
    assert "Complaint." in (tmp_path / "auditor" / "report.html").read_text(encoding="utf-8")
    assert before == sha256(copy)


def test_every_read_only_command_reads_a_file_it_cannot_write(tmp_path):
    """The other read-only commands (certificate, explain, status, schedule) on a 0444 copy."""
    stores = store(tmp_path)
    (tmp_path / "owner").mkdir()
    (tmp_path / "auditor").mkdir()
    run = enforced(tmp_path / "owner", f"sqlite:///{tmp_path / 'state.db'}", stores)
    copy = tmp_path / "copy.db"
    shutil.copy(tmp_path / "state.db", copy)
    copy.chmod(0o444)
    before = sha256(copy)

    runs = read_commands(config(tmp_path / "auditor", f"sqlite:///file:{copy}?mode=ro&uri=true",
                                stores=stores, policy=POLICY), run)

    assert dict.fromkeys(runs, (0, "")) == {
        name: (done.returncode, done.stderr) for name, done in runs.items()}
    assert run == json.loads(runs["certificate"].stdout)["certificate"]["run_id"]
    assert "events-1-year" in runs["status"].stdout
    assert "Complaint." in runs["schedule"].stdout
    assert "NOT IN THE TABLE" in runs["explain"].stdout
    assert before == sha256(copy)


def test_a_read_only_open_creates_nothing(tmp_path, monkeypatch):
    """An empty file is not given a schema, a missing one not made, nothing made beside them."""
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty.db"
    empty.touch()

    with pytest.raises(AuditError) as on_empty:
        StateDB(f"sqlite:///file:{empty}?mode=ro&uri=true")
    with pytest.raises(AuditError) as on_missing:
        StateDB(f"sqlite:///file:{tmp_path / 'missing.db'}?mode=ro&uri=true")

    assert on_empty.value.what.endswith(" has no schema yet: run 'retentiond state upgrade' as "
                                        "its owner")
    assert on_missing.value.what.endswith(": unable to open database file")
    assert (["empty.db"], 0) == (sorted(p.name for p in tmp_path.iterdir()),
                                 empty.stat().st_size)


def test_a_digest_key_missing_from_a_read_only_file_names_the_fix(tmp_path):
    """The ledger cannot make its digest key in a file it only reads: one error, the fix."""
    filled(tmp_path / "state.db").close()
    owner = engine(f"sqlite:///{tmp_path / 'state.db'}")
    with owner.begin() as conn:
        conn.exec_driver_sql("DELETE FROM retentiond_meta")
    owner.dispose()
    state = StateDB(f"sqlite:///file:{tmp_path / 'state.db'}?mode=ro&uri=true")

    try:
        with pytest.raises(AuditError) as missing:
            AuditLedger(state)
    finally:
        state.close()

    assert (f"the installation secret 'audit-digest-key' is missing from the state database "
            f"sqlite:///{tmp_path / 'state.db'}, which is open read-only: run 'retentiond state "
            "upgrade' as its owner") == missing.value.what


@pytest.fixture
def shared_directory() -> Iterator[tuple[Path, list[str]]]:
    """A directory (0755, root's) that nobody can reach but not write, and nobody's Python.

    Skips unless this is root and user nobody can run retentiond from this checkout.
    """
    if os.geteuid() != 0:
        pytest.skip("only root can run a reader as another user (nobody)")
    python = nobody_python()
    if python is None:
        pytest.skip("user nobody cannot run Python with retentiond from this checkout")
    directory = Path(tempfile.mkdtemp(prefix="retentiond-shared-"))
    directory.chmod(0o755)
    yield directory, python
    shutil.rmtree(directory)


def read_as_nobody(python, url):
    """What READER prints, run as user nobody on ``url``."""
    done = subprocess.run([*python, READER, url], user=NOBODY, group=NOBODY, extra_groups=[],
                          capture_output=True, text=True, check=False, timeout=60, cwd="/")
    assert "" == done.stderr
    return done.stdout.strip()


def test_another_user_verifies_the_daemons_file_while_it_is_open(shared_directory):
    """Nobody, who can read but not write the file or its directory, verifies it read-only."""
    directory, python = shared_directory
    path = directory / "state.db"
    daemon = filled(path)
    try:
        seen = read_as_nobody(python, f"sqlite:///{path}")
        siblings = sorted(p.name for p in directory.iterdir())
    finally:
        daemon.close()

    assert "True True 3" == seen
    assert ["state.db", "state.db-shm", "state.db-wal"] == siblings


def test_another_user_cannot_read_a_closed_wal_file_and_is_told_why(shared_directory):
    """With no -shm beside the file and none to be made, SQLite refuses; the error says why."""
    directory, python = shared_directory
    path = directory / "state.db"
    filled(path).close()

    seen = read_as_nobody(python, f"sqlite:///{path}")

    assert ["state.db"] == sorted(p.name for p in directory.iterdir())
    assert seen.endswith(
        f": attempt to write a readonly database (SQLite reads a WAL database only beside its "
        f"-shm file, which this user cannot create in {directory}: verify while "
        "retentiond has the database open, or verify a copy; see README)")
