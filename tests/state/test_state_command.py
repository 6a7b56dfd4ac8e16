"""``retentiond state upgrade`` and ``state status``, and what other commands do meanwhile.

Run as subprocesses: one line of output, exit codes 0 / 1 (status: behind) / 2 (an error: one
``error:`` line, no traceback).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from state_kit import cli, config, legacy_install

from retentiond.ledger.state import SCHEMA_REVISION, VERSION_TABLE, StateDB
from retentiond.settings import masked_url

WANTED = SCHEMA_REVISION
LATER = str(int(SCHEMA_REVISION) + 1)
"""A revision only a newer retentiond would know."""
UPGRADE = "run 'retentiond state upgrade' as its owner"


def said(done):
    """(exit code, stdout lines, stderr lines, whether a traceback shows) of a finished run."""
    return (done.returncode, done.stdout.splitlines(), done.stderr.splitlines(),
            "Traceback" in done.stdout + done.stderr)


@pytest.mark.sqlite
def test_state_upgrade_creates_the_schema_then_has_nothing_to_do(tmp_path):
    """On a new install the upgrade creates the schema; run again, it says so and does nothing."""
    site = config(tmp_path, f"sqlite:///{tmp_path / 'state' / 'state.db'}")

    runs = [said(cli(site, "state", *args)) for args in (["status"], ["upgrade"], ["upgrade"],
                                                          ["status"])]

    assert [
        (1, [f"state database empty; this retentiond needs revision {WANTED}: {UPGRADE}"], [],
         False),
        (0, [f"state database created at revision {WANTED}"], [], False),
        (0, [f"already at revision {WANTED}"], [], False),
        (0, [f"state database at revision {WANTED}, as this retentiond needs"], [], False),
    ] == runs


@pytest.mark.sqlite
def test_state_status_creates_no_file(tmp_path):
    """Asking about a state file that does not exist leaves it (and its directory) absent."""
    site = config(tmp_path, f"sqlite:///{tmp_path / 'state' / 'state.db'}")

    assert 1 == cli(site, "state", "status").returncode
    assert not (tmp_path / "state").exists()


def test_an_install_made_before_revisions_is_refused_until_upgraded(state_url, tmp_path):
    """Commands refuse an old install in one line; status says what to do; upgrade does it."""
    legacy_install(state_url, tmp_path)
    where = masked_url(sa.make_url(state_url))
    site = config(tmp_path, state_url)
    behind = f"the state database {where} is at schema revision 1; this retentiond needs {WANTED}"

    refused = said(cli(site, "audit", "verify"))
    status = said(cli(site, "state", "status"))
    upgraded = said(cli(site, "state", "upgrade"))
    verified = said(cli(site, "audit", "verify"))

    assert (2, [], [f"error: audit ledger: {behind}: {UPGRADE}"], False) == refused
    assert (1, [f"state database at revision 1; this retentiond needs {WANTED}: {UPGRADE}"],
            [], False) == status
    assert (0, [f"state database at revision {WANTED} (was 1)"], [], False) == upgraded
    assert (0, False) == (verified[0], verified[3])
    assert verified[1][0].startswith("ok: 3 records")


def test_a_newer_schema_is_one_error_line(state_url, tmp_path):
    """A state database a newer retentiond upgraded: the upgrade refuses, status exits 1."""
    StateDB(state_url).close()
    engine = sa.create_engine(state_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {VERSION_TABLE} SET version_num = '{LATER}'")
    engine.dispose()
    site = config(tmp_path, state_url)
    where = masked_url(sa.make_url(state_url))

    upgrading = said(cli(site, "state", "upgrade"))
    status = said(cli(site, "state", "status"))

    assert (2, [], [f"error: audit ledger: the state database {where} is at schema revision "
                    f"{LATER}, "
                    f"which this retentiond (revision {WANTED}) does not know: upgrade "
                    "retentiond"], False) == upgrading
    assert (1, [f"state database at revision {LATER}, newer than this retentiond knows "
                f"({WANTED}): "
                "upgrade retentiond"], [], False) == status


@pytest.mark.sqlite
def test_state_upgrade_says_it_made_a_missing_digest_key(tmp_path):
    """A digest key deleted by hand is made again by the upgrade, which says so."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    StateDB(url).close()
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM retentiond_meta")
    engine.dispose()

    done = said(cli(config(tmp_path, url), "state", "upgrade"))

    assert (0, [f"already at revision {WANTED}",
                "made the missing installation secret 'audit-digest-key'"], [], False) == done
