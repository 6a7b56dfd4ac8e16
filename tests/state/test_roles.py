"""PostgreSQL: the owner, daemon and auditor roles of ``deploy/state-roles.sql``.

The daemon appends and places holds but owns nothing, so it cannot disarm the append-only
triggers; the auditor reads and verifies and writes nothing.  Each test has its own database
and roles (roles are cluster-wide: unique names, dropped after the test).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from contextlib import closing

import pytest
from sqlalchemy.exc import SQLAlchemyError
from state_kit import (
    AUDIT_COMMANDS,
    GRANTS,
    POLICY,
    ROLE_BACKENDS,
    as_role,
    cli,
    config,
    enforced,
    engine,
    fingerprint,
    legacy_install,
    owned_database,
    privileges,
    read_commands,
    store,
)

from retentiond.errors import AuditError
from retentiond.holds.placing import HoldRequest, LegalHolds
from retentiond.holds.table import list_holds
from retentiond.ledger.chain import AuditLedger, Entry, Kind
from retentiond.ledger.state import VERSION_TABLE, StateDB, upgrade_schema
from retentiond.stores import open_store
from retentiond.stores.registry import Stores
from retentiond.stores.sql import SqlStoreSettings

pytestmark = ROLE_BACKENDS

READ = {"SELECT"}
DAEMON = {"audit_log": {"SELECT", "INSERT"}, "holds": {"SELECT", "INSERT", "UPDATE"},
          "restore_exemptions": {"SELECT", "INSERT"}, "erasure_requests": {"SELECT", "INSERT"},
          "retentiond_meta": READ,
          VERSION_TABLE: READ}
AUDITOR = {"audit_log": READ, "holds": READ, "restore_exemptions": READ,
           "erasure_requests": READ, "retentiond_meta": set(),
           VERSION_TABLE: READ}
"""Not retentiond_meta: with the digest key a reviewer could test a guessed subject."""


def refused(url, statement):
    """The first line of the error PostgreSQL gives ``statement`` run at ``url``."""
    target = engine(url)
    try:
        with pytest.raises(SQLAlchemyError) as caught, target.begin() as conn:
            conn.exec_driver_sql(statement)
    finally:
        target.dispose()
    return str(caught.value.orig).splitlines()[0]


def fill(url, count=3):
    """Append ``count`` records through the ledger at ``url``."""
    state = StateDB(url)
    try:
        ledger = AuditLedger(state)
        for number in range(count):
            ledger.append(Entry(Kind.RUN_START, run_id=f"run-{number}", body={"n": number}))
    finally:
        state.close()


def test_the_grants_give_each_role_exactly_its_privileges(roles):
    """deploy/state-roles.sql: the daemon appends and places holds, the auditor only reads."""
    assert (DAEMON, AUDITOR) == (privileges(roles.admin, roles.name("daemon")),
                                 privileges(roles.admin, roles.name("auditor")))


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_psql_runs_the_grants_file_as_the_readme_says(role_server):
    """The operator's command (psql with -v daemon= -v auditor=) grants the same privileges."""
    url, owner = owned_database(role_server)
    daemon, auditor = role_server.user("pw"), role_server.user("pw")
    upgrade_schema(as_role(url, owner))
    target = as_role(url, owner).replace("postgresql+psycopg://", "postgresql://")

    done = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-v", f"daemon={daemon}",
                           "-v", f"auditor={auditor}", "-d", target, "-q", "-f", str(GRANTS)],
                          capture_output=True, text=True, timeout=60, check=False)

    assert (0, "") == (done.returncode, done.stderr)
    assert (DAEMON, AUDITOR) == (privileges(url, daemon), privileges(url, auditor))


def test_the_daemon_role_opens_the_state_database_without_ddl(roles):
    """Opening as the daemon works (it owns nothing) and leaves every catalog entry as it was."""
    before = fingerprint(roles.admin)

    StateDB(roles.daemon).close()

    assert before == fingerprint(roles.admin)


@pytest.mark.parametrize(("statement", "error"), [
    ("DROP TRIGGER audit_log_append_only ON audit_log", "must be owner of relation audit_log"),
    ("DROP TRIGGER audit_log_no_truncate ON audit_log", "must be owner of relation audit_log"),
    ("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
     "must be owner of table audit_log"),
    ("ALTER TABLE audit_log DISABLE TRIGGER ALL", "must be owner of table audit_log"),
    ("DROP FUNCTION retentiond_append_only() CASCADE",
     "must be owner of function retentiond_append_only"),
    ("CREATE OR REPLACE FUNCTION retentiond_append_only() RETURNS trigger LANGUAGE plpgsql AS "
     "$$ BEGIN RETURN OLD; END $$", "permission denied for schema public"),
    ("ALTER TABLE audit_log RENAME TO audit_log_old", "must be owner of table audit_log"),
    ("DROP TABLE audit_log", "must be owner of table audit_log"),
], ids=["drop-trigger", "drop-truncate-trigger", "disable-trigger", "disable-all",
        "drop-function", "replace-function", "rename-table", "drop-table"])
def test_the_daemon_role_cannot_disarm_the_append_only_guard(roles, statement, error):
    """Only the owner may drop, disable or replace the triggers, their function or the table."""
    assert error == refused(roles.daemon, statement)


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET body = '{}' WHERE seq = 1",
    "DELETE FROM audit_log WHERE seq = 3",
    "TRUNCATE audit_log",
    "UPDATE retentiond_meta SET value = 'x'",
    "DELETE FROM retentiond_meta",
    "INSERT INTO retentiond_meta VALUES ('other', 'x')",
    f"UPDATE {VERSION_TABLE} SET version_num = '1'",
    "UPDATE holds SET reason = 'x'",
    "DELETE FROM holds",
])
def test_the_daemon_role_cannot_rewrite_what_is_written(roles, statement):
    """No UPDATE, DELETE or TRUNCATE of the ledger; the secret, revision and scopes stay."""
    fill(roles.daemon)

    assert refused(roles.daemon, statement).startswith("permission denied for table ")


def test_the_daemon_role_appends_and_places_and_releases_holds(roles, tmp_path):
    """What the daemon and 'hold add/release' do works with the daemon's grants alone."""
    store(tmp_path)
    stores = Stores({"app": SqlStoreSettings(url=f"sqlite:///{tmp_path / 'app.db'}")}, open_store)
    state = StateDB(roles.daemon)
    try:
        ledger = AuditLedger(state)
        ledger.append(Entry(Kind.RUN_START, run_id="run-1"))
        holds = LegalHolds(state, ledger)
        placed = holds.place(HoldRequest(reason="Complaint.", by="counsel", store="app",
                                         table="events"), policies=None, stores=stores)
        holds.release(placed.id, reason="Case closed.", by="dpo")
        kinds = [r.entry.kind for r in ledger.records()]
        released = [(h.id, h.released_by) for h in list_holds(state)]
        intact = ledger.verify().ok
    finally:
        state.close()
        stores.close()

    assert [Kind.RUN_START, Kind.HOLD_PLACED, Kind.HOLD_RELEASED] == kinds
    assert [(placed.id, "dpo")] == released
    assert intact


def test_a_missing_digest_key_is_an_error_naming_the_fix_for_the_daemon(roles):
    """The daemon may not make the installation secret: one error names the owner's upgrade."""
    target = engine(roles.owner)
    try:
        with target.begin() as conn:
            conn.exec_driver_sql("DELETE FROM retentiond_meta")
    finally:
        target.dispose()
    state = StateDB(roles.daemon)
    try:
        with pytest.raises(AuditError) as missing:
            AuditLedger(state)
    finally:
        state.close()

    assert missing.value.what.startswith(
        "the installation secret 'audit-digest-key' is missing from the state database ")
    assert missing.value.what.endswith(
        " and this role cannot make it (permission denied for table retentiond_meta): run "
        "'retentiond state upgrade' as its owner")
    assert ("audit-digest-key",) == upgrade_schema(roles.owner).secrets_made


def test_the_auditor_role_verifies_and_writes_nothing(roles):
    """The auditor verifies the daemon's ledger; writes, and reading the digest key, are refused."""
    fill(roles.daemon)
    state = StateDB(roles.auditor)
    try:
        ledger = AuditLedger(state, reading=True)
        verified = ledger.verify()
        with pytest.raises(AuditError, match="permission denied for table audit_log"):
            ledger.append(Entry(Kind.RUN_START))
    finally:
        state.close()

    assert (True, 3) == (verified.ok, verified.records)
    assert ["permission denied for table holds", "permission denied for table retentiond_meta",
            "permission denied for table retentiond_meta",
            ] == [refused(roles.auditor, "INSERT INTO holds (id, reason, placed_by, placed_at) "
                                         "VALUES ('H-1', 'r', 'b', 'now')"),
                  refused(roles.auditor, "INSERT INTO retentiond_meta VALUES ('x', 'y')"),
                  refused(roles.auditor, "SELECT value FROM retentiond_meta")]  # the digest key


def test_the_auditor_role_runs_the_audit_commands(roles, tmp_path):
    """The CLI's audit verify, export, report and summary run with the auditor's state_url."""
    stores = store(tmp_path)
    (tmp_path / "daemon").mkdir()
    (tmp_path / "auditor").mkdir()
    daemon = config(tmp_path / "daemon", roles.daemon, stores=stores, policy=POLICY)
    auditor = config(tmp_path / "auditor", roles.auditor, stores=stores, policy=POLICY)
    for args in (["hold", "add", "--store", "app", "--table", "events", "--reason",
                  "Complaint.", "--by", "counsel"], ["run", "--once"]):
        done = cli(daemon, *args)
        assert (0, "") == (done.returncode, done.stderr), args

    runs = {name: cli(auditor, "audit", *args) for name, args in AUDIT_COMMANDS.items()}

    assert dict.fromkeys(runs, (0, "")) == {
        name: (run.returncode, run.stderr) for name, run in runs.items()}
    kinds = [json.loads(line)["kind"] for line in runs["export"].stdout.splitlines()]
    assert ["hold.placed", "run.start", "run.end", "certificate"] == kinds
    assert runs["verify"].stdout.startswith(f"ok: {len(kinds)} records")
    assert "Complaint." in (tmp_path / "auditor" / "report.html").read_text(encoding="utf-8")


def test_the_auditor_role_runs_every_read_only_command(roles, tmp_path):
    """The other read-only commands (certificate, explain, status, schedule) with SELECT only."""
    stores = store(tmp_path)
    (tmp_path / "daemon").mkdir()
    (tmp_path / "auditor").mkdir()
    run = enforced(tmp_path / "daemon", roles.daemon, stores)
    before = fingerprint(roles.admin)

    runs = read_commands(config(tmp_path / "auditor", roles.auditor, stores=stores,
                                policy=POLICY), run)

    assert dict.fromkeys(runs, (0, "")) == {
        name: (done.returncode, done.stderr) for name, done in runs.items()}
    assert run == json.loads(runs["certificate"].stdout)["certificate"]["run_id"]
    assert "events-1-year" in runs["status"].stdout
    assert "Complaint." in runs["schedule"].stdout
    assert "NOT IN THE TABLE" in runs["explain"].stdout
    assert before == fingerprint(roles.admin)


def test_a_role_that_may_not_create_is_told_who_can(role_server):
    """An empty database opened by a role without CREATE: one error naming the fix."""
    url = role_server.database()
    daemon = role_server.user("pw")

    with pytest.raises(AuditError) as refused_open:
        StateDB(as_role(url, daemon))

    assert "permission denied for schema public" in refused_open.value.what
    assert "have its owner run 'retentiond state upgrade'" in refused_open.value.what


def test_only_the_owner_can_upgrade(role_server, tmp_path):
    """An old install upgraded as another role is refused in one line; the owner's works."""
    url, owner = owned_database(role_server)
    daemon = role_server.user("pw")
    legacy_install(as_role(url, owner), tmp_path)

    with pytest.raises(AuditError) as refused_upgrade:
        upgrade_schema(as_role(url, daemon))

    assert refused_upgrade.value.what.startswith("cannot upgrade the state database ")
    assert refused_upgrade.value.what.endswith(
        ": permission denied for schema public; run 'retentiond state upgrade' as the owner "
        "of its tables")
    assert "1" == upgrade_schema(as_role(url, owner)).before


VISITORS = POLICY + """\
subjects:
  visitor: {description: A visitor (by event id)}
data_map:
  - store: app
    table: events
    subject: {visitor: id}
    erase: delete
"""


def test_the_daemon_role_records_erasure_requests_and_the_auditor_previews_them(roles, tmp_path):
    """'erasure record' works with the daemon's grants; 'list' and 'preview' with the auditor's."""
    stores = store(tmp_path)
    with closing(sqlite3.connect(tmp_path / "app.db")) as conn, conn:
        conn.execute("INSERT INTO events VALUES (1, '2020-01-01'), (2, '2020-01-01')")
    (tmp_path / "daemon").mkdir()
    (tmp_path / "auditor").mkdir()
    daemon = config(tmp_path / "daemon", roles.daemon, stores=stores, policy=VISITORS)
    auditor = config(tmp_path / "auditor", roles.auditor, stores=stores, policy=VISITORS)
    recorded = cli(daemon, "erasure", "record", "--subject", "visitor=1", "--by", "alice")
    assert (0, "") == (recorded.returncode, recorded.stderr)
    made = recorded.stdout.split("erasure request ", 1)[1].split(" ", 1)[0]
    before = fingerprint(roles.admin)

    listed = cli(auditor, "erasure", "list", "--json")
    previewed = cli(auditor, "erasure", "preview", made, "--json")
    refused_record = cli(auditor, "erasure", "record", "--subject", "visitor=2", "--by", "eve")

    assert ((0, ""), [made]) == ((listed.returncode, listed.stderr),
                                 [r["id"] for r in json.loads(listed.stdout)])
    assert ((0, ""), [("events", 1)]) == (
        (previewed.returncode, previewed.stderr),
        [(t["table"], t["found"]) for t in json.loads(previewed.stdout)["tables"]])
    assert (2, True) == (refused_record.returncode,
                         "permission denied for table" in refused_record.stderr)
    assert before == fingerprint(roles.admin)
