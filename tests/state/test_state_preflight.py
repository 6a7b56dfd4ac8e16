"""``validate`` checks that a run could write the state database, without writing to it.

As another user (nobody) on root's SQLite file, or root's lease directory; as PostgreSQL's
auditor role (SELECT only) or on an empty database the role cannot create the schema in; and
at an older schema revision.  Each is one ``error:`` line at ``state_url`` with the fix, and
the database is left as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from state_kit import (
    NOBODY,
    POLICY,
    ROLE_BACKENDS,
    cli,
    config,
    fingerprint,
    legacy_install,
    nobody_python,
    store,
)

from retentiond.ledger.state import SCHEMA_REVISION, StateDB

RUN_CLI = "import sys; from retentiond.cli import main; main()"


def errors(result: subprocess.CompletedProcess[str]) -> tuple[int, list[str], bool]:
    """(exit code, stderr lines, whether a traceback shows)."""
    return (result.returncode, result.stderr.splitlines(),
            "Traceback" in result.stdout + result.stderr)


@pytest.fixture
def shared() -> Iterator[tuple[Path, list[str]]]:
    """A directory (0755, root's) that user nobody can read, and nobody's Python.

    Skips unless this is root and user nobody can run retentiond from this checkout.
    """
    if os.geteuid() != 0:
        pytest.skip("only root can run the check as another user (nobody)")
    python = nobody_python()
    if python is None:
        pytest.skip("user nobody cannot run Python with retentiond from this checkout")
    directory = Path(tempfile.mkdtemp(prefix="retentiond-preflight-"))
    directory.chmod(0o755)
    yield directory, python
    shutil.rmtree(directory)


def validate_as_nobody(python: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    """``retentiond --config PATH validate`` run as user nobody."""
    return subprocess.run([*python, RUN_CLI, "--config", str(path), "validate"], user=NOBODY,
                          group=NOBODY, extra_groups=[], capture_output=True, text=True,
                          check=False, timeout=60, cwd="/")


def test_another_users_state_file_is_an_error_for_a_run(shared):
    """Nobody cannot write root's state database: validate says so at state_url, exit 2."""
    directory, python = shared
    path = config(directory, f"sqlite:///{directory}/state.db", stores=store(directory),
                  policy=POLICY)
    StateDB(f"sqlite:///{directory}/state.db").close()
    before = sorted(p.name for p in directory.iterdir())

    result = validate_as_nobody(python, path)

    assert (2, [f"error: {path}:2: this user cannot write the state database "
                f"{directory}/state.db; run as its owner (the service's user), or give the "
                "file to this user",
                f"error: {path}:2: this user cannot create files in {directory}, where SQLite "
                "keeps the journal of state.db; let this user write there",
                "2 problem(s); nothing was run"], False) == errors(result)
    assert before == sorted(p.name for p in directory.iterdir())


def test_a_lease_directory_the_user_cannot_write_is_an_error(shared):
    """Nobody's own state directory, but root's lease directory inside it (0755): an error."""
    directory, python = shared
    home = directory / "state"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    path = config(directory, f"sqlite:///{home}/state.db", stores=store(directory),
                  policy=POLICY)
    leases = home / "state.db.leases"
    leases.mkdir(mode=0o755)

    result = validate_as_nobody(python, path)

    assert (2, [f"error: {path}:2: this user cannot create lock files in the lease directory "
                f"{leases}; let this user read and create files in {leases} (its lock files "
                "may be removed while nothing runs)",
                "1 problem(s); nothing was run"], False) == errors(result)
    assert [leases.name] == [p.name for p in home.iterdir()]


def test_the_service_users_own_state_directory_is_ok(shared):
    """Nobody's state directory (as StateDirectory= makes it): validate is ok, writes nothing."""
    directory, python = shared
    home = directory / "state"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    path = config(directory, f"sqlite:///{home}/state.db", stores=store(directory),
                  policy=POLICY)

    result = validate_as_nobody(python, path)

    assert (0, "ok: 1 rules, 0 holds, 0 minimum retentions are valid\n", "", []) == (
        result.returncode, result.stdout, result.stderr, list(home.iterdir()))


def test_an_older_schema_revision_is_an_error(tmp_path):
    """A state database at revision 1: a run would be refused, so validate says what to run."""
    state = f"sqlite:///{tmp_path}/state.db"
    legacy_install(state, tmp_path)
    path = config(tmp_path, state, stores=store(tmp_path), policy=POLICY)

    result = cli(path, "validate")

    assert (2, [f"error: {path}:2: the state database sqlite:///{tmp_path}/state.db is at "
                "schema revision 1; this retentiond needs "
                f"{SCHEMA_REVISION}; run 'retentiond state upgrade' as its owner",
                "1 problem(s); nothing was run"], False) == errors(result)


@ROLE_BACKENDS
def test_the_auditor_role_is_refused_for_a_run_and_told_what_to_grant(roles, tmp_path):
    """PostgreSQL: the auditor (SELECT only) lacks what a run needs; validate lists it."""
    path = config(tmp_path, roles.auditor, stores=store(tmp_path), policy=POLICY)
    before = fingerprint(roles.admin)

    result = cli(path, "validate")

    assert (2, [f"error: {path}:2: role {roles.name('auditor')} lacks INSERT on audit_log, "
                "INSERT on holds, UPDATE on holds(released_at), UPDATE on holds(released_by), "
                "UPDATE on holds(release_reason), INSERT on restore_exemptions, INSERT on "
                "erasure_requests, SELECT on "
                "retentiond_meta in the state "
                f"database {roles.auditor.replace(':pw@', ':***@')}; grant them as the owner "
                "with deploy/state-roles.sql (see deploy/README.md, 'PostgreSQL: three roles')",
                "1 problem(s); nothing was run"], False) == errors(result)
    assert before == fingerprint(roles.admin)


@ROLE_BACKENDS
def test_the_daemon_role_is_ready(roles, tmp_path):
    """PostgreSQL: the daemon role of deploy/state-roles.sql has all a run needs."""
    path = config(tmp_path, roles.daemon, stores=store(tmp_path), policy=POLICY)

    result = cli(path, "validate")

    assert (0, "") == (result.returncode, result.stderr)


@ROLE_BACKENDS
def test_an_empty_database_the_role_cannot_create_the_schema_in_is_an_error(role_server,
                                                                             tmp_path):
    """PostgreSQL 15: a role without CREATE in public cannot make the schema a run needs."""
    url = role_server.database()
    login = role_server.user("pw")
    state = url.replace("postgres@", f"{login}:pw@", 1)
    path = config(tmp_path, state, stores=store(tmp_path), policy=POLICY)

    result = cli(path, "validate")

    code, lines, traceback = errors(result)
    assert (2, False, 2) == (code, traceback, len(lines)), lines
    assert lines[0].startswith(f"error: {path}:2: the state database ")
    assert lines[0].endswith(" has no schema yet and this role cannot create it; have its "
                             "owner run 'retentiond state upgrade', then grant with "
                             "deploy/state-roles.sql")
