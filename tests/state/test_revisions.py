"""Schema revisions: made on first use, refused when old, upgraded by the database's owner.

Every test runs on SQLite and PostgreSQL (``state_url``: a fresh, empty database each).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError
from state_kit import digest_key, engine, fingerprint, ledger_rows, legacy_install

from retentiond.errors import AuditError
from retentiond.ledger import migrations
from retentiond.ledger.chain import AuditLedger, Entry, Kind
from retentiond.ledger.state import (
    SCHEMA_REVISION,
    VERSION_TABLE,
    SchemaState,
    StateDB,
    Upgrade,
    metadata,
    schema_state,
    upgrade_schema,
)
from retentiond.settings import masked_url


def differences(url):
    """What Alembic finds different between the database's tables and state.py's."""
    target = engine(url)
    try:
        with target.connect() as conn:
            return compare_metadata(
                MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata)
    finally:
        target.dispose()


def set_revision(url, revision):
    """Record ``revision`` in the version table, as a newer retentiond would have."""
    target = engine(url)
    try:
        with target.begin() as conn:
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = :r"), {"r": revision})
    finally:
        target.dispose()


def test_schema_revision_is_the_newest_migration():
    """SCHEMA_REVISION, checked on every open, is Alembic's head; revisions count up from 1."""
    script = ScriptDirectory.from_config(migrations._config(None))
    chain = [(s.revision, s.down_revision) for s in reversed(list(script.walk_revisions()))]

    assert SCHEMA_REVISION == migrations.head()
    assert [(str(n), str(n - 1) if n > 1 else None)
            for n in range(1, int(SCHEMA_REVISION) + 1)] == chain


def test_a_new_state_database_gets_the_newest_schema(state_url):
    """Opening an empty database creates the schema at this retentiond's revision."""
    StateDB(state_url).close()

    assert SchemaState(SCHEMA_REVISION) == schema_state(state_url)
    assert digest_key(state_url) is not None


def test_the_revisions_build_the_tables_state_py_describes(state_url):
    """Migrating from nothing gives exactly the tables, columns and indexes of state.metadata."""
    StateDB(state_url).close()

    assert [] == differences(state_url)


def test_opening_a_current_schema_runs_no_ddl(state_url):
    """A second open reads the revision and changes nothing in the schema (no DDL at all)."""
    StateDB(state_url).close()
    before = fingerprint(state_url)

    StateDB(state_url).close()

    assert before == fingerprint(state_url)


@pytest.mark.parametrize("signature", [False, True], ids=["released", "development-9dbc1bd"])
def test_an_install_made_before_revisions_is_upgraded_in_place(state_url, tmp_path, signature):
    """The old code's tables are revision 1: stamped, migrated, records and digest key kept."""
    rows = legacy_install(state_url, tmp_path, signature=signature)
    key = digest_key(state_url)

    assert Upgrade(before="1", after=SCHEMA_REVISION) == upgrade_schema(state_url)

    assert SchemaState(SCHEMA_REVISION) == schema_state(state_url)
    assert [] == differences(state_url)
    state = StateDB(state_url)
    try:
        ledger = AuditLedger(state)
        ledger.append(Entry(Kind.RUN_END, run_id="run-2"))
        assert (True, 4) == (ledger.verify().ok, ledger.count())
    finally:
        state.close()
    target = engine(state_url)
    try:
        assert rows == ledger_rows(target)[:3]
        assert key == digest_key(state_url)
        with pytest.raises(SQLAlchemyError, match="append-only"), target.begin() as conn:
            conn.exec_driver_sql("DELETE FROM audit_log WHERE seq = 1")
    finally:
        target.dispose()


def test_upgrade_makes_the_digest_key_an_old_install_never_used(state_url, tmp_path):
    """An old install that had not made its digest key gets one from the upgrade."""
    legacy_install(state_url, tmp_path, records=0, digest_key=False)

    upgrade_schema(state_url)

    assert 64 == len(digest_key(state_url) or "")


def test_opening_an_older_revision_is_refused_with_the_fix(state_url, tmp_path):
    """An install at revision 1 is not used (nor changed) until its owner upgrades it."""
    legacy_install(state_url, tmp_path)
    before = fingerprint(state_url)

    with pytest.raises(AuditError) as refused:
        StateDB(state_url)

    assert (f"the state database {masked_url(sa.make_url(state_url))} is at schema revision 1; "
            f"this retentiond needs {SCHEMA_REVISION}: run 'retentiond state upgrade' as its "
            "owner") == refused.value.what
    assert before == fingerprint(state_url)


def test_a_revision_newer_than_this_retentiond_is_refused(state_url):
    """A database a newer retentiond upgraded is neither used nor 'upgraded' back."""
    StateDB(state_url).close()
    later = str(int(SCHEMA_REVISION) + 1)
    set_revision(state_url, later)
    newer = (f"the state database {masked_url(sa.make_url(state_url))} is at schema revision "
             f"{later}, "
             f"which this retentiond (revision {SCHEMA_REVISION}) does not know: upgrade "
             "retentiond")

    with pytest.raises(AuditError) as opening:
        StateDB(state_url)
    with pytest.raises(AuditError) as upgrading:
        upgrade_schema(state_url)

    assert [newer, newer] == [opening.value.what, upgrading.value.what]


def test_upgrading_twice_changes_nothing(state_url):
    """The upgrade is idempotent: on a current schema it runs no DDL."""
    first = upgrade_schema(state_url)
    before = fingerprint(state_url)

    again = upgrade_schema(state_url)

    assert [Upgrade(None, SCHEMA_REVISION), Upgrade(SCHEMA_REVISION, SCHEMA_REVISION)] == [
        first, again]
    assert before == fingerprint(state_url)


def test_status_creates_nothing(state_url):
    """Asking where an empty database stands leaves it empty."""
    assert SchemaState(None) == schema_state(state_url)
    assert SchemaState(None) == schema_state(state_url)


def _lose_the_digest_key(state_url: str) -> None:
    """A current state database whose installation secret was deleted by hand."""
    StateDB(state_url).close()
    target = engine(state_url)
    try:
        with target.begin() as conn:
            conn.exec_driver_sql("DELETE FROM retentiond_meta")
    finally:
        target.dispose()


def test_a_missing_digest_key_is_made_again_by_a_role_that_may(state_url):
    """secret() still makes a missing installation secret where the role may insert it."""
    _lose_the_digest_key(state_url)

    state = StateDB(state_url)
    try:
        made = state.secret("audit-digest-key")
    finally:
        state.close()

    assert made.hex() == digest_key(state_url)


def test_upgrade_makes_a_digest_key_deleted_by_hand(state_url):
    """On a current schema the upgrade runs no DDL but makes a missing installation secret."""
    _lose_the_digest_key(state_url)
    before = fingerprint(state_url)

    done = upgrade_schema(state_url)

    assert Upgrade(SCHEMA_REVISION, SCHEMA_REVISION, ("audit-digest-key",)) == done
    assert (64, before) == (len(digest_key(state_url) or ""), fingerprint(state_url))

