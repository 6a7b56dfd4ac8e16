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
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from state_kit import NOBODY, nobody_python

from retentiond.run.leases import FileLeases, lease_key

TAKE = """\
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
