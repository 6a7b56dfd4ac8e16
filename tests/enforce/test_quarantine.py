"""enforce() with ``quarantine``: rows move out with their bookkeeping, and come back exactly.

Or they are purged, once their release date has passed.

Tickets 1-9 are due at AS_OF, 10 and 11 are too young and 12 has no age.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, timedelta

import pytest
import sqlalchemy as sa
from enforce_kit import AS_OF, Rig, at, stamp
from sqlalchemy import Connection

from retentiond import quarantine
from retentiond.errors import AuditError, PolicyError, StoreError, UnknownBatch
from retentiond.holds.exemptions import StateExemptions
from retentiond.ledger.chain import AuditLedger, Entry, Kind, Record
from retentiond.publish.explain import explain
from retentiond.run.enforce import recover
from retentiond.stores.sql import SqlStoreSettings

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

    restored = [quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated",
                                   by="alice").keys
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

    quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated", by="alice")

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

    quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated", by="alice")

    assert before == db.rows("tickets")


def test_an_unreachable_store_does_not_keep_other_stores_from_purging(tickets, rig, tmp_path):
    """Due batches of a healthy store are purged although another configured store is down."""
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    down = SqlStoreSettings(url=f"sqlite:///{tmp_path / 'gone' / 'other.db'}")
    stores = rig(POLICY, stores={"other": down}, validate=False).engine.stores

    purged = quarantine.purge_due(stores, setup.ledger, now=AS_OF + timedelta(days=400))

    left = tickets.rows("retentiond_q_tickets")
    assert ([2, 7], []) == (sorted(rows for _, rows in purged), left)


def index_of(db, table):
    """(access method, columns) of each index on ``table``; the method only on PostgreSQL."""
    db.engine.dispose()  # SQLite's PRAGMA index_list reads a pooled connection's old schema
    indexes = sa.inspect(db.engine).get_indexes(table)
    methods = {}
    if db.kind == "postgresql":
        with db.engine.connect() as conn:
            methods = dict(conn.execute(sa.text(
                "SELECT c.relname, a.amname FROM pg_index i JOIN pg_class c ON c.oid = "
                "i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = "
                "CAST(:t AS regclass)"), {"t": table}).all())
    return sorted((methods.get(index["name"], "btree"), tuple(index["column_names"]))
                  for index in indexes)


def test_a_new_quarantine_table_is_indexed_to_find_its_batches(tickets, rig):
    """PostgreSQL: a BRIN on the batch's time, cheap to keep; elsewhere a B-tree on the batch."""
    setup: Rig = rig(POLICY)

    setup.run("tickets-quarantine")

    expected = ([("brin", ("_rtd_at",))] if tickets.kind == "postgresql"
                else [("btree", ("_rtd_batch",))])
    assert expected == index_of(tickets, "retentiond_q_tickets")


def test_a_quarantine_table_made_before_keeps_its_index_and_restores_exactly(tickets, rig):
    """A table an earlier version created (a B-tree on the batch) is used as it is."""
    before = tickets.rows("tickets")
    tickets.run("CREATE TABLE retentiond_q_tickets AS SELECT * FROM tickets WHERE 1 = 0",
                *(f"ALTER TABLE retentiond_q_tickets ADD COLUMN {name} VARCHAR({size}) NOT NULL"
                  for name, size in zip(BOOKKEEPING, (36, 36, 80, 32, 32), strict=True)),
                "CREATE INDEX ix_retentiond_q_tickets__rtd_batch "
                "ON retentiond_q_tickets (_rtd_batch)")
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    stores = setup.engine.stores

    for batch in stores.get("app").quarantined():
        quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated", by="alice")

    assert (before, []) == (tickets.rows("tickets"), tickets.rows("retentiond_q_tickets"))
    assert [("btree", ("_rtd_batch",))] == index_of(tickets, "retentiond_q_tickets")


def test_a_batch_whose_rows_disagree_on_when_they_moved_is_not_restored(tickets, rig):
    """Restore finds a batch's rows by id and time: a row that matches only the id stops it.

    The listing counts rows by batch id; if the lookup found fewer, restoring would leave a
    row behind.  So nothing moves, and the error says why.
    """
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    stores = setup.engine.stores
    batch, other = sorted(stores.get("app").quarantined(), key=lambda b: -b.rows)
    tickets.run(f"UPDATE retentiond_q_tickets SET _rtd_batch = '{batch.batch_id}', "
                f"_rtd_at = '2999-01-01T00:00:00+00:00' WHERE _rtd_batch = '{other.batch_id}' "
                "AND id = 8")
    shelf = tickets.rows("retentiond_q_tickets")

    with pytest.raises(StoreError, match=f"batch {batch.batch_id} holds 7 rows, not the 8 "
                                         "listed; nothing was done"):
        quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated", by="alice")

    assert ([10, 11, 12], shelf) == (ids(tickets), tickets.rows("retentiond_q_tickets"))


def test_purging_on_postgresql_lets_the_freed_pages_be_summarized_afresh(tickets, rig):
    """The BRIN ranges that held a purged batch are forgotten, so VACUUM summarizes them anew.

    Otherwise a range keeps the purged batch's time as its minimum after later batches reuse
    its pages, and over the years every lookup would scan every range.
    """
    if tickets.kind != "postgresql":
        pytest.skip("BRIN indexes are PostgreSQL's; SQLite and MariaDB keep a B-tree")
    setup: Rig = rig(TWO_RULES)
    setup.run("a-quarantine")
    setup.run("b-quarantine")
    summarize = sa.text("SELECT brin_summarize_new_values("
                        "CAST('ix_retentiond_q_tickets__rtd_at' AS regclass))")
    with tickets.engine.begin() as conn:
        conn.execute(summarize)
        nothing_new = conn.execute(summarize).scalar_one()

    quarantine.purge_due(setup.engine.stores, setup.ledger, now=AS_OF + timedelta(days=61))

    with tickets.engine.begin() as conn:
        after_purge = conn.execute(summarize).scalar_one()
    assert (0, 1) == (nothing_new, after_purge)
    assert [2, 4, 6, 8] == ids(tickets, "retentiond_q_tickets")


def test_a_restored_batch_stays_restored_until_its_exemption_ends(tickets, rig, state):
    """Restored rows are exempt from the rule that moved them through --until; then they go again.

    Issue 15, item 4: the next run used to quarantine a restored batch straight back.
    """
    setup: Rig = rig(POLICY, holds=(StateExemptions(state),))
    setup.run("tickets-quarantine")
    stores = setup.engine.stores
    for batch in stores.get("app").quarantined():
        quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated", by="alice",
                           until=date(2026, 4, 30), now=AS_OF + timedelta(days=1))

    within = setup.run("tickets-quarantine", as_of=AS_OF + timedelta(days=2))
    last_day = setup.run("tickets-quarantine", as_of=at(2026, 4, 30, 23).replace(tzinfo=UTC))
    kept = ids(tickets)
    after = setup.run("tickets-quarantine", as_of=at(2026, 5, 1).replace(tzinfo=UTC))

    assert (0, 0, list(range(1, 13))) == (within.acted, last_day.acted, kept)
    assert (9, [10, 11, 12]) == (after.acted, ids(tickets))


def test_an_exemption_binds_only_the_rule_that_quarantined_the_rows(tickets, rig, state):
    """Another quarantine rule on the same table still takes restored rows it selects."""
    setup: Rig = rig(TWO_RULES, holds=(StateExemptions(state),))
    setup.run("a-quarantine")
    stores = setup.engine.stores
    (batch,) = stores.get("app").quarantined()
    quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated", by="alice",
                       now=AS_OF)

    again = setup.run("a-quarantine", as_of=AS_OF + timedelta(days=1))
    other = setup.run("b-quarantine", as_of=AS_OF + timedelta(days=1))

    assert (0, 4) == (again.acted, other.acted)
    assert [1, 3, 5, 7, 9, 10, 11, 12] == ids(tickets)


@pytest.mark.usefixtures("tickets")
def test_a_restore_records_who_why_and_until_and_the_plan_shows_the_exemption(rig, state):
    """The ledger's restore says who, why and until; the plan counts the exempt rows apart."""
    setup: Rig = rig(POLICY, holds=(StateExemptions(state),))
    setup.run("tickets-quarantine")
    stores = setup.engine.stores
    batch = max(stores.get("app").quarantined(), key=lambda b: b.rows)
    quarantine.restore(stores, setup.ledger, batch.batch_id, "customer disputes", by="alice",
                       until=date(2026, 4, 30), now=AS_OF)

    plan = setup.engine.plan(setup.rule("tickets-quarantine"), as_of=AS_OF + timedelta(days=1))

    restores = [(r.entry.kind.value, r.entry.body.get("by"), r.entry.body.get("reason"),
                 r.entry.body.get("until")) for r in setup.ledger.records()
                if r.entry.action == "restore"]
    assert [("batch.intent", "alice", "customer disputes", "2026-04-30"),
            ("batch.outcome", "alice", "customer disputes", "2026-04-30")] == restores
    assert [("restore", f"restored-{batch.batch_id}", 7, "2026-04-30")] == [
        (g.kind, g.id, g.rows, g.until) for g in plan.guards]
    assert (7, 0) == (plan.census.held, plan.census.eligible)
    assert "by alice" in plan.guards[0].reason
    assert "customer disputes" in plan.guards[0].reason


@pytest.mark.usefixtures("tickets")
def test_a_batch_is_found_by_a_unique_prefix_of_its_id(rig):
    """Four or more leading characters name a batch when no other batch starts with them."""
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    stores = setup.engine.stores
    first, second = stores.get("app").quarantined()
    shortest = next(n for n in range(4, 37)
                    if first.batch_id[:n] != second.batch_id[:n])

    done = quarantine.restore(stores, setup.ledger, first.batch_id[:shortest], "wrongly isolated",
                              by="alice")

    assert (first.batch_id, first.rows) == (done.batch.batch_id, len(done.keys))


def test_an_unknown_or_ambiguous_batch_is_refused_with_the_candidates(tickets, rig):
    """No batch: says no store has it; a shared prefix lists the candidates; nothing moves."""
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    stores = setup.engine.stores
    for batch, new in zip(stores.get("app").quarantined(), ("abcd-1", "abcd-2"), strict=True):
        tickets.run(f"UPDATE retentiond_q_tickets SET _rtd_batch = '{new}' "
                    f"WHERE _rtd_batch = '{batch.batch_id}'")

    with pytest.raises(UnknownBatch) as unknown:
        quarantine.restore(stores, setup.ledger, "nope-nope", "x", by="alice")
    with pytest.raises(UnknownBatch) as ambiguous:
        quarantine.restore(stores, setup.ledger, "abcd", "x", by="alice")
    with pytest.raises(UnknownBatch) as short:
        quarantine.restore(stores, setup.ledger, "abc", "x", by="alice")

    assert ("no quarantined batch 'nope-nope' in any store (app); list them with "
            "'retentiond quarantine list'") == str(unknown.value)
    assert ("batch 'abcd' is ambiguous: 2 quarantined batches start with it "
            "(abcd-1, abcd-2); give more of the id") == str(ambiguous.value)
    assert ("abcd-1", "abcd-2") == tuple(sorted(short.value.matches))
    assert [10, 11, 12] == ids(tickets)
    assert "abcd-2" == quarantine.restore(stores, setup.ledger, "abcd-2", "x",
                                          by="alice").batch.batch_id


def test_a_restore_without_who_or_with_a_past_date_is_refused(tickets, rig):
    """Who restores must be known and --until lie ahead; the batch stays in quarantine."""
    setup: Rig = rig(POLICY)
    setup.run("tickets-quarantine")
    stores = setup.engine.stores
    batch = stores.get("app").quarantined()[0]

    with pytest.raises(PolicyError) as refused:
        quarantine.restore(stores, setup.ledger, batch.batch_id, "x", by=" ",
                           until=date(2026, 1, 1), now=AS_OF)

    assert ["who restores the batch is unknown", "--until 2026-01-01 has already passed"] == [
        p.what for p in refused.value.problems]
    assert [10, 11, 12] == ids(tickets)


@pytest.mark.usefixtures("tickets")
def test_explain_says_a_restored_row_is_exempt_who_restored_it_why_and_until(rig, state):
    """explain: a restored ticket is exempt from its rule until the date, then due again."""
    setup: Rig = rig(POLICY, holds=(StateExemptions(state),))
    setup.run("tickets-quarantine")
    stores = setup.engine.stores
    for batch in stores.get("app").quarantined():
        quarantine.restore(stores, setup.ledger, batch.batch_id, "customer disputes",
                           by="alice", until=date(2026, 4, 30), now=AS_OF)

    (now,) = explain(setup.engine, store="app", table="tickets", key=(1,),
                     as_of=AS_OF + timedelta(days=1)).verdicts
    (later,) = explain(setup.engine, store="app", table="tickets", key=(1,),
                       as_of=at(2026, 5, 1).replace(tzinfo=UTC)).verdicts

    (protection,) = now.protected_by
    assert ("exempt", "restore", at(2026, 5, 1).replace(tzinfo=UTC)) == (
        now.decision, protection.kind, protection.until)
    assert "by alice" in now.reason
    assert "customer disputes" in now.reason
    assert "exempt until 2026-04-30" in now.reason
    assert ("act", ()) == (later.decision, later.protected_by)


class OutcomeLost(AuditLedger):
    """A ledger that cannot write a restore's outcome: the process died after the store's work."""

    def append(self, entry: Entry, *, along: Callable[[Connection], object] | None = None,
               ) -> Record:
        """Append, but fail on a restore's outcome (nothing of it is written)."""
        if entry.kind is Kind.OUTCOME and entry.action == "restore":
            raise AuditError("cannot write the ledger: the state database went away")
        return super().append(entry, along=along)


def test_a_restore_interrupted_before_its_outcome_is_exempt_once_settled(tickets, rig, state):
    """Recovery finds the batch restored, writes its outcome and its exemption together."""
    setup: Rig = rig(POLICY, holds=(StateExemptions(state),))
    setup.run("tickets-quarantine")
    stores = setup.engine.stores
    batch = max(stores.get("app").quarantined(), key=lambda b: b.rows)
    with pytest.raises(AuditError):
        quarantine.restore(stores, OutcomeLost(state), batch.batch_id, "customer disputes",
                           by="alice", until=date(2026, 4, 30), now=AS_OF)

    settled = recover(setup.engine, setup.ledger, rule="tickets-quarantine")
    again = setup.run("tickets-quarantine", as_of=AS_OF + timedelta(days=1))

    assert ([batch.batch_id], 0) == (settled, again.acted)
    assert [1, 2, 3, 4, 5, 6, 7, 10, 11, 12] == ids(tickets)
    assert [("applied", "alice", "2026-04-30")] == [
        (body["status"], body["by"], body["until"]) for body in setup.outcomes(status=None)
        if body.get("op") == "restore"]


LINES = """\
rules:
  - id: lines-quarantine
    description: Order lines are isolated after 12 months.
    store: app
    table: order_lines
    age: {column: created_at, older_than: 12 months}
    action: {type: quarantine, release_after: 6 months}
    batch_size: 2000
"""


def test_a_restored_batch_of_a_composite_key_table_stays_restored(db, rig, state):
    """1,500 restored (order, line) keys, each order its own: exempt on every backend.

    SQLite refuses an expression over 1,000 terms deep: the keys are listed per line
    number (one group), not per order (1,500 groups).
    """
    db.run(f"CREATE TABLE order_lines (order_id INTEGER NOT NULL, line_no INTEGER NOT NULL, "
           f"created_at {stamp(db.kind)}, PRIMARY KEY (order_id, line_no))")
    db.insert("order_lines", [{"order_id": n, "line_no": 1, "created_at": at(2024, 1, 1)}
                        for n in range(1, 1501)])
    setup: Rig = rig(LINES, holds=(StateExemptions(state),))
    setup.run("lines-quarantine")
    stores = setup.engine.stores
    (batch,) = stores.get("app").quarantined()
    quarantine.restore(stores, setup.ledger, batch.batch_id, "wrongly isolated", by="alice",
                       now=AS_OF)

    again = setup.run("lines-quarantine", as_of=AS_OF + timedelta(days=1))

    assert (1500, 0, 1500) == (batch.rows, again.acted, len(db.rows("order_lines")))
