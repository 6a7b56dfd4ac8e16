"""Leases beside a SQLite state database: they work whoever ran first, and a broken one is evidence.

An operator's ``run --once`` as root on the daemon's host used to leave root's lock files in
``state.db.leases/``; the service user's daemon then died on every tick of that rule with a
PermissionError, wrote nothing to the ledger, and ``status`` still showed the last run as done.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from state_kit import NOBODY, nobody_python

from retentiond.run.leases import FileLeases, lease_key

TESTS = Path(__file__).resolve().parents[1]
TAKE = """\
import sys
from pathlib import Path
from retentiond.run.leases import FileLeases
directory, state = Path(sys.argv[1]), Path(sys.argv[2])
leases = FileLeases(directory, beside=state)
for rule in sys.argv[3:]:
    with leases.hold(rule) as taken:
        print(rule, taken)
"""


@pytest.fixture
def service_home() -> Iterator[tuple[Path, list[str]]]:
    """A state directory owned by user nobody (the service user), and nobody's Python."""
    if os.geteuid() != 0:
        pytest.skip("only root can be the operator and run the service user's code (nobody)")
    python = nobody_python()
    if python is None:
        pytest.skip("user nobody cannot run Python with retentiond from this checkout")
    home = Path(tempfile.mkdtemp(prefix="retentiond-service-"))
    home.chmod(0o755)
    os.chown(home, NOBODY, NOBODY)
    sqlite3.connect(home / "state.db").close()
    os.chown(home / "state.db", NOBODY, NOBODY)
    yield home, python
    shutil.rmtree(home)


def take_as_nobody(python: list[str], home: Path, *rules: str) -> list[str]:
    """Each rule's lease taken (and given back) by the service user: ``rule True|False``."""
    done = subprocess.run([*python, TAKE, str(home / "state.db.leases"), str(home / "state.db"),
                           *rules], user=NOBODY, group=NOBODY, extra_groups=[],
                          capture_output=True, text=True, check=False, timeout=60, cwd="/")
    assert "" == done.stderr
    return done.stdout.splitlines()


def test_the_service_user_takes_leases_after_root_ran_first(service_home):
    """Root ran first; the service user takes that rule's lease and a new rule's all the same.

    Root made the directory and the rule's lock file (under umask 022); they belong to the
    state database's owner afterwards.
    """
    home, python = service_home
    previous = os.umask(0o022)
    try:
        with FileLeases(home / "state.db.leases", beside=home / "state.db").hold("a") as taken:
            assert taken
    finally:
        os.umask(previous)

    assert ["a True", "b True"] == take_as_nobody(python, home, "a", "b")
    made = [home / "state.db.leases", home / "state.db.leases" / f"{lease_key('a'):08x}.lock"]
    assert [(NOBODY, NOBODY)] * 2 == [(p.stat().st_uid, p.stat().st_gid) for p in made]


def test_root_takes_leases_the_service_user_made_under_its_umask(service_home):
    """The service's unit sets UMask=0077: its lock files are its own alone; root still locks."""
    home, python = service_home
    assert ["a True"] == take_as_nobody(python, home, "a")
    lock = home / "state.db.leases" / f"{lease_key('a'):08x}.lock"
    lock.chmod(0o600)

    with FileLeases(home / "state.db.leases", beside=home / "state.db").hold("a") as taken:
        assert taken


def test_a_lease_that_cannot_be_taken_is_a_failed_run_in_the_ledger_and_status(tmp_path):
    """A lease that cannot be taken at all is a failed run: in the ledger and in ``status``.

    Here a file stands where the leases' directory should be.  One error line and exit 1,
    ``run.end`` failed with the reason, ``status`` says failed, nothing acted on.  Before, it
    was a traceback and nothing in the ledger.
    """
    sys.path.insert(0, str(TESTS))
    try:
        from test_cli_enforce import _cli, _setup  # noqa: PLC0415 - the enforcing CLI's kit
    finally:
        sys.path.remove(str(TESTS))
    config, store = _setup(tmp_path, rows=3)
    (tmp_path / "state.db.leases").write_text("not a directory")

    enforced = _cli(config, "run", "--once")
    status = _cli(config, "status")

    errors = [line for line in enforced.stderr.splitlines() if line.startswith("error:")]
    assert (1, 1) == (enforced.returncode, len(errors)), enforced.stderr
    assert "cannot take the lease of rule 'tickets-quarantine'" in errors[0]
    assert "Traceback" not in enforced.stderr
    with sqlite3.connect(tmp_path / "state.db") as conn:
        ends = conn.execute("SELECT body FROM audit_log WHERE kind = 'run.end'").fetchall()
        (remaining,) = sqlite3.connect(store).execute("SELECT count(*) FROM tickets").fetchone()
    assert 1 == len(ends)
    assert '"status":"failed"' in ends[0][0].replace(" ", "")
    assert "cannot take the lease" in ends[0][0]
    assert 3 == remaining
    assert "failed" in status.stdout
