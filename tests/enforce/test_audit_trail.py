"""The write-ahead trail: each intent commits to its keys, and recover() settles what a crash left.

Ten events, all due at AS_OF; batches of seven.
"""

from __future__ import annotations

import pytest
from enforce_kit import Rig, at, stamp

from retentiond import quarantine
from retentiond.errors import AuditError
from retentiond.ledger.chain import AuditLedger, Entry, Kind, canonical
from retentiond.run.enforce import recover

RULE = """\
rules:
  - id: events-{action}
    description: Events are {action}d after 12 months.
    store: app
    table: events
    age: {{column: created_at, older_than: 12 months}}
    action: {{type: {action}{options}}}
"""
DELETE = RULE.format(action="delete", options="")
QUARANTINE = RULE.format(action="quarantine", options=", release_after: 6 months")


@pytest.fixture
def events(db):
    """Ten due events."""
    db.run(f"CREATE TABLE events (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)})")
    db.insert("events", [{"id": n, "created_at": at(2024, 1, n)} for n in range(1, 11)])
    return db


def records(ledger, kind):
    """The records of one kind, in order."""
    return [r for r in ledger.records() if r.entry.kind is kind]


@pytest.mark.parametrize("policy", [DELETE, QUARANTINE], ids=["delete", "quarantine"])
@pytest.mark.usefixtures("events")
def test_each_intent_commits_to_exactly_the_keys_its_outcome_lists(rig, policy):
    """Per batch: the intent's count and keyed digest match the keys of its applied outcome."""
    setup: Rig = rig(policy)
    rule = setup.engine.policies.rules[0].id

    setup.run(rule)

    intents = {r.entry.batch_id: r.entry.body for r in records(setup.ledger, Kind.INTENT)}
    outcomes = {r.entry.batch_id: r.entry.body for r in records(setup.ledger, Kind.OUTCOME)}
    assert list(intents) == list(outcomes)
    assert [(body["count"], body["keys_digest"]) for body in intents.values()] == [
        (len(body["keys"]), setup.ledger.key_digest(body["keys"])) for body in outcomes.values()]
    assert list(range(1, 11)) == setup.acted()


def crashed_intent(setup, batch_id, keys, *, rule="events-delete"):
    """Append the intent of a batch whose run then crashed (as RuleRun writes it)."""
    rule_model = setup.rule(rule)
    setup.ledger.append(Entry(kind=Kind.INTENT, run_id="crashed-run", rule=rule,
                              rule_version=rule_model.version, store="app", table="events",
                              action="delete", batch_id=batch_id,
                              body={"count": len(keys),
                                    "keys_digest": setup.ledger.key_digest(keys)}))


@pytest.mark.usefixtures("events")
def test_recover_settles_an_intent_with_a_marker_as_applied(rig):
    """A batch that left its marker was applied: the outcome takes what the marker says."""
    setup: Rig = rig(DELETE)
    store = setup.engine.stores.get("app")
    store.prepare()
    crashed_intent(setup, "batch-marked", [(1,), (2,)])
    payload = {"keys": [[1], [2]], "count": 2, "reached": {}, "reached_count": 0}
    with store.writer() as writer:
        writer.mark("batch-marked", "crashed-run", "events-delete", canonical(payload))

    settled = recover(setup.engine, setup.ledger)

    assert ["batch-marked"] == settled
    assert [{"status": "applied", "recovered": True, **payload}] == setup.outcomes()
    assert [] == recover(setup.engine, setup.ledger)


def test_recover_settles_an_intent_without_a_marker_as_not_applied(events, rig):
    """A batch without a marker never committed: its outcome says not applied."""
    setup: Rig = rig(DELETE)
    setup.engine.stores.get("app").prepare()
    crashed_intent(setup, "batch-lost", [(3,)])

    settled = recover(setup.engine, setup.ledger)

    assert (["batch-lost"], [{"status": "not applied", "recovered": True}]) == (
        settled, setup.outcomes(status=None))
    assert 10 == len(events.rows("events"))


@pytest.mark.usefixtures("events")
def test_recover_before_any_run_finds_no_marker_table_and_says_not_applied(rig):
    """Even where the store never got its marker table, an open intent is settled."""
    setup: Rig = rig(DELETE)
    crashed_intent(setup, "batch-early", [(3,)])

    assert ["batch-early"] == recover(setup.engine, setup.ledger)
    assert [{"status": "not applied", "recovered": True}] == setup.outcomes(status=None)


class LostAfterFirstIntent(AuditLedger):
    """A ledger whose database goes away once the first intent is written, until told back."""

    gone = False

    def append_many(self, entries, **options):
        """Refuse every write after the first intent, as if the state database had gone away."""
        if self.gone:
            raise AuditError("cannot write the ledger: database is locked")
        records = super().append_many(entries, **options)
        self.gone = any(entry.kind is Kind.INTENT for entry in entries)
        return records


def test_a_batch_applied_but_not_recorded_is_recovered_from_its_marker(events, rig, state):
    """The store committed the batch, the outcome was lost: recover() records exactly its keys."""
    setup: Rig = rig(DELETE)
    setup.ledger = LostAfterFirstIntent(state)

    with pytest.raises(AuditError):
        setup.run("events-delete")
    assert [] == setup.outcomes(status=None)
    setup.ledger.gone = False
    settled = recover(setup.engine, setup.ledger)

    assert [8, 9, 10] == [row[0] for row in events.rows("events")]
    assert (1, [{"status": "applied", "recovered": True, "count": 7,
                 "keys": [[n] for n in range(1, 8)], "reached": {}, "reached_count": 0}]) == (
        len(settled), setup.outcomes())


class FailsOnce(AuditLedger):
    """A ledger that refuses one write: the one carrying the first batch's outcome."""

    failed = False

    def append_many(self, entries, **options):
        """Refuse the first write that holds an outcome, then work again."""
        if not self.failed and any(entry.kind is Kind.OUTCOME for entry in entries):
            self.failed = True
            raise AuditError("cannot write the ledger: database is locked")
        return super().append_many(entries, **options)


def test_an_outcome_that_missed_the_next_intent_is_written_when_the_run_ends(events, rig, state):
    """If batch 1's outcome cannot go in with batch 2's intent, the run's end writes it.

    Batch 2 does not act without its intent, and nothing is left open for recover().
    """
    setup: Rig = rig(DELETE)
    setup.ledger = FailsOnce(state)

    with pytest.raises(AuditError):
        setup.run("events-delete")

    assert [8, 9, 10] == [row[0] for row in events.rows("events")]
    assert list(range(1, 8)) == setup.acted()
    assert ([], [], True) == (setup.ledger.open_intents(), setup.ledger.pairing_problems(),
                              setup.ledger.verify().ok)


@pytest.mark.usefixtures("events")
def test_an_interrupted_restore_is_settled_by_recover(rig):
    """A restore whose intent was written but whose run then died is settled on the next start.

    Restores are audited under the quarantined batch's own id, whose quarantine outcome is
    already in the ledger; the restore intent must still count as open.
    """
    setup: Rig = rig(QUARANTINE)
    setup.run("events-quarantine")
    stores = setup.engine.stores
    batch = stores.get("app").quarantined()[0]
    setup.ledger.append(Entry(kind=Kind.INTENT, run_id="crashed-restore", rule=batch.rule,
                              store="app", table=batch.table, action="restore",
                              batch_id=batch.batch_id,
                              body={"op": "restore", "rows": batch.rows, "reason": "mistake"}))

    settled = recover(setup.engine, setup.ledger)

    assert [batch.batch_id] == settled
    assert {"op": "restore", "status": "not applied", "recovered": True} == dict(
        records(setup.ledger, Kind.OUTCOME)[-1].entry.body)
    assert batch.batch_id in {b.batch_id for _, b in quarantine.batches(stores)}


@pytest.mark.parametrize("server", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)
def test_postgresql_compresses_batch_markers_with_lz4(sql_store, db):
    """A marker lists a batch's keys (~90 kB for 10,000): lz4 writes it ~4x faster than pglz."""
    sql_store.prepare()

    with db.engine.connect() as connection:
        method = connection.exec_driver_sql(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'retentiond_batches'::regclass AND attname = 'payload'").scalar()
    assert "l" == method
