"""Physically gone, not only logically: no deleted or rewritten value stays in the database's files.

A row's values outlive its DELETE or UPDATE: in SQLite's free pages and WAL, in PostgreSQL's
dead tuples, in InnoDB's freed space.  SQLite stores zero them (``secure_delete``) and
checkpoint the WAL after a run; a rule with ``compact`` has PostgreSQL and MariaDB clear them
after the run, and the ledger says so.  Canaries are unique e-mail addresses: after the run,
the bytes of the database file (and of its WAL) are searched for them.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from clock import FakeClock
from enforce_kit import Rig, at, stamp

from retentiond.ledger.chain import AuditLedger, Kind
from retentiond.ledger.evidence import certify
from retentiond.settings import ResidualSettings, Settings
from retentiond.stores.sql import SqlStoreSettings

SQLITE = pytest.param("sqlite", id="sqlite", marks=pytest.mark.sqlite)
POSTGRESQL = pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql)
MARIADB = pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb)

RULES = """\
rules:
  - id: people-delete
    description: People are deleted 12 months after their last visit.
    store: app
    table: people
    age: {{column: last_seen, older_than: 12 months}}
    action: {{type: delete}}{compact}
  - id: contacts-anonymize
    description: Contact e-mails are anonymized 12 months after the last visit.
    store: app
    table: contacts
    age: {{column: last_seen, older_than: 12 months}}
    action:
      type: anonymize
      columns: {{email: {{strategy: nullify}}}}
  - id: leads-pseudonymize
    description: Lead e-mails are pseudonymized 12 months after the last visit.
    store: app
    table: leads
    age: {{column: last_seen, older_than: 12 months}}
    action:
      type: pseudonymize
      columns: {{email: {{domain: lead-email}}}}
"""
TABLES = ("people", "contacts", "leads")
OLD, YOUNG = at(2024, 1, 1), at(2026, 3, 1)


def canary() -> str:
    """A unique e-mail address: found in the file's bytes only if this test put it there."""
    return f"canary-{secrets.token_hex(12)}@example.org"


def seed(rig_db, count: int = 40) -> dict[str, list[str]]:
    """Tables ``people``, ``contacts``, ``leads``: ``count`` due rows each, with canaries.

    Each table also has young rows (kept) with other addresses, so pages stay in use and the
    old values would sit in their free space, not in whole free pages only.
    """
    due: dict[str, list[str]] = {}
    for table in TABLES:
        rig_db.run(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, "
                   f"last_seen {stamp(rig_db.kind)}, email VARCHAR(120))")
        due[table] = [canary() for _ in range(count)]
        rows = [{"id": n, "last_seen": OLD, "email": email}
                for n, email in enumerate(due[table], start=1)]
        rows += [{"id": 1000 + n, "last_seen": YOUNG, "email": f"kept-{n}@example.org"}
                 for n in range(count)]
        rig_db.insert(table, rows)
    return due


def sqlite_files(url: str) -> list[Path]:
    """The SQLite database file and, if there is one, its WAL file."""
    path = Path(url.removeprefix("sqlite:///"))
    return [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]


def found_in(files: list[Path], canaries: list[str]) -> list[str]:
    """The canaries whose bytes are somewhere in ``files``."""
    data = b"".join(p.read_bytes() for p in files)
    return [c for c in canaries if c.encode() in data]


def run_all(rig: Rig) -> None:
    """Run the three rules; each acted on its 40 due rows."""
    assert [40, 40, 40] == [rig.run(rule).acted for rule in
                            ("people-delete", "contacts-anonymize", "leads-pseudonymize")]


@pytest.mark.parametrize("server", [SQLITE], indirect=True)
@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_deleted_and_rewritten_values_are_not_in_the_sqlite_files(rig, db, backend, keyring,
                                                                  journal):
    """After delete, anonymize and pseudonymize, no old value is in the file or its WAL.

    Without ``secure_delete`` some of them are still there, in free space (checked by turning
    it off for the run: see the next test).  In WAL mode the run's checkpoint puts the
    zeroed pages into the file and truncates the WAL while the store is still open.
    """
    db.run(f"PRAGMA journal_mode={journal}")
    due = seed(db)
    canaries = [c for table in TABLES for c in due[table]]
    db.engine.dispose()
    assert canaries == found_in(sqlite_files(backend), canaries)  # they were written
    rig = rig(RULES.format(compact=""), keyring=keyring)

    run_all(rig)

    assert [] == found_in(sqlite_files(backend), canaries)
    rig.engine.stores.close()
    assert [] == found_in(sqlite_files(backend), canaries)


@pytest.mark.parametrize("server", [SQLITE], indirect=True)
def test_without_secure_delete_the_values_stay_in_the_file(rig, db, backend, keyring,
                                                          monkeypatch):
    """The control: with ``secure_delete`` off, deleted and rewritten values are found.

    Not all of them: SQLite reuses some of the freed space within the run (measured: 5 of 40
    deleted, 22 of 40 anonymized and 14 of 40 pseudonymized values were left).  This is what
    the test above would see if stores did not turn it on, on an SQLite built without
    ``SQLITE_SECURE_DELETE`` (Debian's is built with it, so it is switched off here).
    """
    from retentiond.stores.sql.engines import Engines  # noqa: PLC0415 - the part turned off

    setup = Engines._session_setup
    monkeypatch.setattr(Engines, "_session_setup", lambda self, c: [
        s.replace("secure_delete=ON", "secure_delete=OFF") for s in setup(self, c)])
    due = seed(db)
    db.engine.dispose()
    rig = rig(RULES.format(compact=""), keyring=keyring)

    run_all(rig)
    rig.engine.stores.close()

    files = sqlite_files(backend)
    left = {table: len(found_in(files, due[table])) for table in TABLES}
    assert dict.fromkeys(TABLES, True) == {table: n > 0 for table, n in left.items()}


def compacted(rig: Rig) -> list[dict[str, object]]:
    """The bodies of the ``table.compacted`` records, in order, with rule and table."""
    return [{"rule": r.entry.rule, **r.entry.body} for r in rig.ledger.records()
            if r.entry.kind is Kind.COMPACTED]


def dead_tuples(db, table: str) -> int:
    """PostgreSQL: the table's dead tuples, counted exactly (pgstattuple reads every page)."""
    db.run("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    return int(db.scalar(f"SELECT dead_tuple_count FROM pgstattuple('{table}')"))


def pg_file_canaries(db, table: str, canaries: list[str]) -> list[str]:
    """PostgreSQL: the canaries in the table's file on disk (after a CHECKPOINT writes it)."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("CHECKPOINT")
        path = connection.exec_driver_sql(f"SELECT pg_relation_filepath('{table}')").scalar_one()
        data = bytes(connection.exec_driver_sql(
            f"SELECT pg_read_binary_file('{path}')").scalar_one())
    return [c for c in canaries if c.encode() in data]


DELETE_ONLY = """\
rules:
  - id: people-delete
    description: People are deleted 12 months after their last visit.
    store: app
    table: people
    age: {{column: last_seen, older_than: 12 months}}
    action: {{type: delete}}{compact}
"""


def seed_people(db) -> list[str]:
    """``people`` with 40 due rows (canaries) and 40 young ones; no autovacuum meddling."""
    options = " WITH (autovacuum_enabled = false)" if db.kind == "postgresql" else ""
    db.run(f"CREATE TABLE people (id INTEGER PRIMARY KEY, last_seen {stamp(db.kind)}, "
           f"email VARCHAR(120)){options}")
    due = [canary() for _ in range(40)]
    rows = [{"id": n, "last_seen": OLD, "email": email} for n, email in enumerate(due, start=1)]
    rows += [{"id": 1000 + n, "last_seen": YOUNG, "email": f"kept-{n}@example.org"}
             for n in range(40)]
    db.insert("people", rows)
    return due


@pytest.mark.parametrize("server", [POSTGRESQL], indirect=True)
@pytest.mark.parametrize(("compact", "dead"), [("", 40), ("vacuum", 0), ("rewrite", 0)])
def test_compact_leaves_postgresql_no_dead_tuples(rig, db, compact, dead):
    """``compact: vacuum`` or ``rewrite``: the deleted rows' dead tuples are gone after the run.

    Without it they stay (autovacuum is off for the table, as a busy one waits for it).
    """
    seed_people(db)
    rig = rig(DELETE_ONLY.format(compact=f"\n    compact: {compact}" if compact else ""))

    report = rig.run("people-delete")
    assert (40, None if not compact else "done") == (
        report.acted, report.compacted and report.compacted["status"]), report.compacted

    assert dead == dead_tuples(db, "people")
    assert 40 == db.scalar("SELECT count(*) FROM people")


@pytest.mark.parametrize("server", [POSTGRESQL], indirect=True)
@pytest.mark.parametrize(("compact", "left"), [("vacuum", True), ("rewrite", False)])
def test_only_a_rewrite_takes_the_bytes_out_of_the_postgresql_file(rig, db, compact, left):
    """``VACUUM`` frees the dead tuples' space, their bytes stay; ``VACUUM (FULL)`` removes them.

    The table's file is read from the server (``pg_read_binary_file``) after a CHECKPOINT.
    """
    canaries = seed_people(db)
    rig = rig(DELETE_ONLY.format(compact=f"\n    compact: {compact}"))

    rig.run("people-delete")

    assert left == bool(pg_file_canaries(db, "people", canaries))


def innodb_table_id(db, table: str) -> int:
    """MariaDB: InnoDB's id of the table; a rebuild (into a new file) gives it a new one."""
    return int(db.scalar("SELECT table_id FROM information_schema.innodb_sys_tables "
                         "WHERE name = :name", name=f"{db.schema_name}/{table}"))


@pytest.mark.parametrize("server", [MARIADB], indirect=True)
@pytest.mark.parametrize(("compact", "rebuilt"), [("", False), ("vacuum", True),
                                                  ("rewrite", True)])
def test_compact_rebuilds_the_mariadb_table(rig, db, compact, rebuilt):
    """``compact`` runs ``OPTIMIZE TABLE`` on MariaDB: the table is rebuilt into a new file."""
    seed_people(db)
    before = innodb_table_id(db, "people")
    rig = rig(DELETE_ONLY.format(compact=f"\n    compact: {compact}" if compact else ""))

    assert rig.run("people-delete").acted == 40

    assert rebuilt == (innodb_table_id(db, "people") != before)
    assert 40 == db.scalar("SELECT count(*) FROM people")


@pytest.mark.parametrize("server", [POSTGRESQL, MARIADB], indirect=True)
def test_the_ledger_records_the_compaction(rig, db):
    """A ``table.compacted`` record after the run's batches: method, tables, when, how long."""
    seed_people(db)
    rig = rig(DELETE_ONLY.format(compact="\n    compact: vacuum"))

    report = rig.run("people-delete")

    method = {"postgresql": "VACUUM", "mariadb": "OPTIMIZE TABLE"}[db.kind]
    records = compacted(rig)
    assert [("people-delete", "done", method, ["people"])] == [
        (r["rule"], r["status"], r["method"], r["tables"]) for r in records]
    assert report.compacted == {k: v for k, v in records[0].items() if k != "rule"} | {
        "at": next(r.at for r in rig.ledger.records() if r.entry.kind is Kind.COMPACTED)}
    assert float(str(records[0]["seconds"])) >= 0
    assert ["run.start", "table.compacted", "run.end"] == [
        k for k in rig.kinds() if k not in {"batch.intent", "batch.outcome"}]


@pytest.mark.parametrize("server", [POSTGRESQL, MARIADB], indirect=True)
def test_a_failed_compaction_is_reported_and_undoes_nothing(rig, db, backend):
    """A rewrite that cannot have its lock (a reader keeps the table open) is recorded failed.

    The run is done all the same: its rows stay deleted and audited; the next run compacts.
    """
    seed_people(db)
    rig = rig(DELETE_ONLY.format(compact="\n    compact: rewrite"),
              app=SqlStoreSettings(url=backend, lock_timeout_ms=300))
    reader = sa.create_engine(backend, poolclass=sa.NullPool)
    try:
        with reader.connect() as connection:  # a transaction that has read the table
            connection.exec_driver_sql("SELECT count(*) FROM people").scalar_one()
            report = rig.run("people-delete")
    finally:
        reader.dispose()

    assert ("done", 40) == (report.status, report.acted)
    assert report.compacted is not None
    assert "failed" == report.compacted["status"]
    assert [("people-delete", "failed")] == [(r["rule"], r["status"]) for r in compacted(rig)]
    end = [r.entry.body for r in rig.ledger.records() if r.entry.kind is Kind.RUN_END]
    assert [("done", "failed")] == [(b["status"], b["compacted"]) for b in end]
    assert 40 == db.scalar("SELECT count(*) FROM people")


ENDED = datetime(2026, 3, 15, 12, 30, tzinfo=UTC)


def certificate_of(rig: Rig, rule_id: str, residual: ResidualSettings) -> dict[str, Any]:
    """Run ``rule_id`` and certify the run as ``run --once`` does, ending at ``ENDED``."""
    rig.ledger = AuditLedger(rig.state, clock=FakeClock(ENDED))  # the run ends at ENDED
    report = rig.run(rule_id)
    record = certify(rig.ledger, None, run_id=report.run_id,
                     settings=Settings(residual=residual),
                     reports=[(rig.rule(rule_id), report)], started=ENDED, ended=ENDED)
    return dict(record.entry.body["certificate"])


@pytest.mark.parametrize("server", [POSTGRESQL], indirect=True)
def test_the_certificate_dates_when_the_last_copy_is_gone(rig, db):
    """Compacted by a rewrite, with backups kept 35 days and WAL archives 7: all dated.

    The values left the table at the run's end, the database's files at the compaction, and
    the last backup holding them expires 35 days after the run: that is when they are gone.
    """
    seed_people(db)
    rig = rig(DELETE_ONLY.format(compact="\n    compact: rewrite"))

    certificate = certificate_of(rig, "people-delete", ResidualSettings.model_validate(
        {"backups": "35 days", "wal": "7 days"}))

    old = certificate["rules"][0]["old_values"]
    assert (None, "VACUUM, VACUUM (FULL)") == (old["remain"], old["compacted"]["method"])
    assert "2026-03-15T12:30:00.000000+00:00" == old["gone_at"] == old["compacted"]["at"]
    assert {"erased": "2026-03-15T12:30:00+00:00",
            "backups": {"kept_for": "35 days", "gone_by": "2026-04-19T12:30:00+00:00"},
            "archived_wal": {"kept_for": "7 days", "gone_by": "2026-03-22T12:30:00+00:00"},
            "physically_gone": "2026-04-19T12:30:00+00:00",
            "undated": []} == certificate["residual_horizon"]


@pytest.mark.parametrize("server", [POSTGRESQL, MARIADB], indirect=True)
def test_the_certificate_says_which_copies_are_undated(rig, db):
    """No compaction and no stated backup retention: the certificate dates only the erasure.

    It names what still holds the values (dead tuples until autovacuum; InnoDB's purge) and
    that the backup retention is not stated; ``physically_gone`` is None, never a guess.
    """
    seed_people(db)
    rig = rig(DELETE_ONLY.format(compact=""))

    certificate = certificate_of(rig, "people-delete", ResidualSettings())

    old = certificate["rules"][0]["old_values"]
    word = {"postgresql": "autovacuum", "mariadb": "InnoDB purges"}[db.kind]
    assert (None, None, True) == (old["gone_at"], old["compacted"], word in old["remain"])
    horizon = certificate["residual_horizon"]
    assert (None, 2) == (horizon["physically_gone"], len(horizon["undated"]))
    assert horizon["undated"][0].startswith("people-delete: ")
    assert "backups: their retention is not stated ([residual] backups)" == horizon["undated"][1]


@pytest.mark.parametrize("server", [SQLITE], indirect=True)
def test_sqlite_values_are_gone_from_the_file_when_the_run_ends(rig, db):
    """SQLite zeroes old values as each batch commits: gone from its file by the run's end."""
    seed_people(db)
    rig = rig(DELETE_ONLY.format(compact=""))

    certificate = certificate_of(rig, "people-delete", ResidualSettings.model_validate(
        {"backups": "1 month"}))

    old = certificate["rules"][0]["old_values"]
    assert {"gone_at": "2026-03-15T12:30:00+00:00", "remain": None, "compacted": None} == old
    assert "2026-04-15T12:30:00+00:00" == certificate["residual_horizon"]["physically_gone"]


@pytest.mark.parametrize("server", [POSTGRESQL], indirect=True)
def test_a_transaction_that_may_still_see_the_rows_makes_the_compaction_partial(rig, db,
                                                                               backend):
    """A snapshot taken before the run can still read the deleted rows: VACUUM must keep them.

    The compaction says so (``partial``), and the run's residue names what keeps them, so no
    certificate dates their end.
    """
    seed_people(db)
    rig = rig(DELETE_ONLY.format(compact="\n    compact: vacuum"))
    reader = sa.create_engine(backend, poolclass=sa.NullPool,
                              isolation_level="REPEATABLE READ")
    try:
        with reader.connect() as connection:  # its snapshot still sees every row
            connection.exec_driver_sql("SELECT count(*) FROM people").scalar_one()
            report = rig.run("people-delete")
            assert 40 == dead_tuples(db, "people")
    finally:
        reader.dispose()

    assert report.compacted is not None
    assert ("done", "partial") == (report.status, report.compacted["status"])
    assert "transaction(s) open since before the compaction" in str(report.residue)


@pytest.mark.parametrize("server", [POSTGRESQL], indirect=True)
def test_a_vacuum_postgresql_skips_is_a_failed_compaction(rig, db, backend, server):
    """A store role that may delete but does not own the table: VACUUM only warns and skips.

    That warning fails the compaction; it is not recorded as done.
    """
    seed_people(db)
    password = secrets.token_hex(8)
    user = server.user(password)
    db.run(f"GRANT SELECT, DELETE ON people TO {user}",
           f"GRANT CREATE, USAGE ON SCHEMA public TO {user}")
    url = sa.make_url(backend).set(username=user, password=password)
    rig = rig(DELETE_ONLY.format(compact="\n    compact: vacuum"),
              app=SqlStoreSettings(url=url.render_as_string(hide_password=False)))

    report = rig.run("people-delete")

    assert ("done", 40) == (report.status, report.acted)
    assert report.compacted is not None
    assert ("failed", True) == (report.compacted["status"],
                                "VACUUM did not compact" in report.compacted["error"])
    assert 40 == dead_tuples(db, "people")
