"""enforce() with ``quarantine``: rows move out with their bookkeeping, and come back exactly.

Or they are purged, once their release date has passed.

Tickets 1-9 are due at AS_OF, 10 and 11 are too young and 12 has no age.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from enforce_kit import AS_OF, Rig, at, stamp

from retentiond import quarantine
from retentiond.settings import StoreSettings

RULE = """\
  - id: {id}
    description: Tickets are isolated after 12 months, purged {release} later.
    store: app
    table: tickets
    age: {{column: created_at, older_than: 12 months}}
    where: {{column: kind, value: {kind}}}
    action: {{type: quarantine, release_after: {release}}}
"""
POLICY = "rules:\n" + RULE.format(id="tickets-quarantine", release="6 months", kind="a").replace(
    "    where: {column: kind, value: a}\n", "")
TWO_RULES = "rules:\n" + "".join([RULE.format(id="a-quarantine", release="1 month", kind="a"),
                                  RULE.format(id="b-quarantine", release="12 months", kind="b")])
TYPES = {
    "sqlite": {"float": "REAL", "binary": "BLOB"},
    "postgresql": {"float": "DOUBLE PRECISION", "binary": "BYTEA"},
    "mariadb": {"float": "DOUBLE", "binary": "BLOB"},
}
BOOKKEEPING = ("_rtd_batch", "_rtd_run", "_rtd_rule", "_rtd_at", "_rtd_release")


def ticket(n):
    """Ticket ``n``: due unless 10-11 (young) or 12 (no age); kind a when odd, b when even."""
    created = {10: at(2026, 1, 10), 11: at(2026, 1, 11), 12: None}.get(n, at(2024, 1, n, 8, n))
    return {"id": n, "created_at": created, "kind": "ab"[n % 2 == 0],
            "subject": f"Zoë · 東京 {n}" if n % 3 else None, "body": "line\n" * n,
            "opened": date(2024, 1, n), "score": n / 3, "cents": 10**12 + n,
            "paid": n % 2 == 0, "attachment": bytes([0, 255, n]) + b"\x00tail" if n != 5 else None}


@pytest.fixture
def tickets(db):
    """The tickets table, filled with one row of every kind of value (and NULLs)."""
    types = TYPES[db.kind]
    db.run(f"CREATE TABLE tickets (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)}, "
           f"kind VARCHAR(10) NOT NULL, subject VARCHAR(200), body TEXT, opened DATE, "
           f"score {types['float']}, cents BIGINT, paid BOOLEAN, attachment {types['binary']})")
    db.insert("tickets", [ticket(n) for n in range(1, 13)])
    return db


def ids(db, table="tickets"):
    """The keys in ``table``."""
    return [row[0] for row in db.rows(table)]


def test_rows_move_to_the_quarantine_table_with_their_bookkeeping(tickets, rig):
    """Eligible rows leave; the quarantine table holds them unchanged, with who and when."""
    before = {row[0]: row for row in tickets.rows("tickets")}
    setup: Rig = rig(POLICY)

    report = setup.run("tickets-quarantine")

    shelf = tickets.rows("retentiond_q_tickets")
    batches = [record.entry.batch_id for record in setup.ledger.records()
               if record.entry.kind.value == "batch.outcome"]
    assert ([10, 11, 12], list(range(1, 10))) == (ids(tickets), [row[0] for row in shelf])
    assert [before[n] for n in range(1, 10)] == [row[:-len(BOOKKEEPING)] for row in shelf]
    assert ({(batches[0], "run-1", "tickets-quarantine", "2026-09-15T12:00:00+00:00"),
             (batches[1], "run-1", "tickets-quarantine", "2026-09-15T12:00:00+00:00")}
            == {(row[-5], row[-4], row[-3], row[-1]) for row in shelf})
    assert (9, 2, list(range(1, 10))) == (report.acted, report.batches,
                                          setup.acted("tickets-quarantine"))
    assert ([7, 2], "2026-09-15T12:00:00+00:00") == (
        [body["count"] for body in setup.outcomes()], setup.outcomes()[0]["release_at"])
    assert [("tickets", "tickets-quarantine", "run-1", "2026-09-15T12:00:00+00:00", 7),
            ("tickets", "tickets-quarantine", "run-1", "2026-09-15T12:00:00+00:00", 2)] == sorted(
        ((b.table, b.rule, b.run_id, b.release_at, b.rows)
         for b in setup.engine.stores.get("app").quarantined()), key=lambda b: -b[4])


def test_restore_puts_back_byte_identical_rows(tickets, rig):
    """Restoring every batch gives back exactly the table there was, and empties quarantine."""
    before = tickets.rows("tickets")
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    stores = setup.engine.stores

    restored = [quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated")
                for batch in stores.get("app").quarantined()]

    assert (before, []) == (tickets.rows("tickets"), tickets.rows("retentiond_q_tickets"))
    assert list(range(1, 10)) == sorted(key[0] for keys in restored for key in keys)
    assert [{"status": "applied", "op": "restore"}] * 2 == [
        {"status": r.entry.body["status"], "op": r.entry.body["op"]}
        for r in setup.ledger.records()
        if r.entry.kind.value == "batch.outcome" and r.entry.action == "restore"]


def test_purge_deletes_only_batches_whose_release_date_has_passed(tickets, rig):
    """At AS_OF nothing is due; two months later the one-month batch goes, the other stays."""
    setup: Rig = rig(TWO_RULES)
    setup.run("a-quarantine")
    setup.run("b-quarantine")
    stores = setup.engine.stores

    early = quarantine.purge_due(stores, setup.ledger, now=AS_OF + timedelta(days=30))
    later = quarantine.purge_due(stores, setup.ledger, now=AS_OF + timedelta(days=61))

    assert ([], [("a-quarantine", 5)]) == (early, [(b.rule, n) for b, n in later])
    assert [2, 4, 6, 8] == ids(tickets, "retentiond_q_tickets")
    assert [10, 11, 12] == ids(tickets)
    purged = [r.entry.body for r in setup.ledger.records()
              if r.entry.kind.value == "batch.outcome" and r.entry.action == "purge"]
    assert [("applied", [[1], [3], [5], [7], [9]])] == [(b["status"], b["keys"]) for b in purged]


def test_a_quarantined_batch_is_not_quarantined_twice(tickets, rig):
    """A second run finds nothing left to move: no batch is recorded."""
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    batches = setup.batch_count()

    again = setup.run("tickets-quarantine")

    assert (0, batches, 9) == (again.acted, setup.batch_count(),
                               len(tickets.rows("retentiond_q_tickets")))


GENERATED = {
    "sqlite": "GENERATED ALWAYS AS (cents * 2) VIRTUAL",
    "postgresql": "GENERATED ALWAYS AS (cents * 2) STORED",
    "mariadb": "AS (cents * 2) VIRTUAL",
}


def test_a_table_with_a_generated_column_is_restored_exactly(db, rig):
    """Restoring a batch works where the table computes a column: the database recomputes it."""
    db.run(f"CREATE TABLE tickets (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)}, "
           f"kind VARCHAR(10) NOT NULL, cents INTEGER, doubled INTEGER {GENERATED[db.kind]})")
    db.insert("tickets", [{"id": n, "created_at": at(2024, 1, n), "kind": "a", "cents": n}
                          for n in (1, 2)])
    before = db.rows("tickets")
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    stores = setup.engine.stores
    (batch,) = stores.get("app").quarantined()

    quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated")

    assert before == db.rows("tickets")


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_a_table_with_an_always_generated_identity_key_is_restored_exactly(db, rig):
    """PostgreSQL: rows keyed by GENERATED ALWAYS AS IDENTITY come back under their own keys."""
    db.run("CREATE TABLE tickets (id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
           "created_at TIMESTAMP, kind VARCHAR(10) NOT NULL)")
    db.run("INSERT INTO tickets (created_at, kind) VALUES ('2024-01-01', 'a'), ('2024-01-02', 'a')")
    before = db.rows("tickets")
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    stores = setup.engine.stores
    (batch,) = stores.get("app").quarantined()

    quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated")

    assert before == db.rows("tickets")


def test_an_unreachable_store_does_not_keep_other_stores_from_purging(tickets, rig, tmp_path):
    """Due batches of a healthy store are purged although another configured store is down."""
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    down = StoreSettings(url=f"sqlite:///{tmp_path / 'gone' / 'other.db'}")
    stores = rig(POLICY, stores={"other": down}, validate=False).engine.stores

    purged = quarantine.purge_due(stores, setup.ledger, now=AS_OF + timedelta(days=400))

    left = tickets.rows("retentiond_q_tickets")
    assert ([2, 7], []) == (sorted(rows for _, rows in purged), left)
