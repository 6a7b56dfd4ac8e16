"""The audit ledger: append-only, gapless, hash-chained, and verifiable."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import SQLAlchemyError

from retentiond.ledger.chain import AuditLedger, Body, Entry, Kind, canonical
from retentiond.ledger.state import StateDB


def _fill(ledger: AuditLedger, count: int) -> None:
    for number in range(count):
        ledger.append(Entry(Kind.RUN_START, run_id=f"run-{number}", rule="r",
                            body={"n": number}))


def test_appends_are_numbered_without_gaps_and_verify(ledger):
    """Records get sequence numbers 1..n and the untouched chain verifies."""
    _fill(ledger, 5)
    verification = ledger.verify()
    assert [1, 2, 3, 4, 5] == [r.seq for r in ledger.records()]
    assert verification.ok
    assert 5 == verification.records


def test_append_many_keeps_order_in_one_transaction(ledger):
    """Several records appended together keep their order and chain."""
    records = ledger.append_many([Entry(Kind.INTENT, batch_id="b1"),
                                  Entry(Kind.OUTCOME, batch_id="b1")])
    assert [1, 2] == [r.seq for r in records]
    assert ledger.verify().ok


def test_the_database_refuses_update_and_delete(ledger, state):
    """Triggers in the state database reject UPDATE and DELETE on the ledger."""
    _fill(ledger, 2)
    for statement in ("UPDATE audit_log SET rule = 'x' WHERE seq = 1",
                      "DELETE FROM audit_log WHERE seq = 2"):
        with pytest.raises(SQLAlchemyError, match="append-only"), state.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert 2 == ledger.count()


def _drop_guards(state: StateDB) -> None:
    """What an attacker with owner rights would do first."""
    with state.engine.begin() as conn:
        if state.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_append_only ON audit_log")


@pytest.mark.parametrize(("tamper", "broken"), [
    ("UPDATE audit_log SET body = '{\"n\":99}' WHERE seq = 3", 3),
    ("UPDATE audit_log SET rule = 'other' WHERE seq = 2", 2),
    ("DELETE FROM audit_log WHERE seq = 3", 4),
    ("UPDATE audit_log SET seq = 1000 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3;"
     " UPDATE audit_log SET seq = 3 WHERE seq = 1000", 2),
])
def test_tampering_is_found_at_the_first_broken_record(ledger, state, tamper, broken):
    """A changed, deleted or reordered record breaks verification exactly there."""
    _fill(ledger, 5)
    _drop_guards(state)
    with state.engine.begin() as conn:
        for statement in tamper.split(";"):
            conn.exec_driver_sql(statement)
    verification = ledger.verify()
    assert not verification.ok
    assert broken == verification.broken_seq


def test_open_intents_are_those_without_outcome(ledger):
    """An intent without an outcome is open; one with an outcome is not."""
    ledger.append(Entry(Kind.INTENT, batch_id="done"))
    ledger.append(Entry(Kind.INTENT, batch_id="open"))
    ledger.append(Entry(Kind.OUTCOME, batch_id="done"))
    assert ["open"] == [r.entry.batch_id for r in ledger.open_intents()]


def test_concurrent_appenders_keep_one_chain(state_url):
    """Appenders on separate connections never fork the chain or reuse a number."""
    states = [StateDB(state_url) for _ in range(4)]
    ledgers = [AuditLedger(state) for state in states]

    def work(ledger: AuditLedger) -> None:
        for number in range(25):
            ledger.append(Entry(Kind.RUN_START, body={"n": number}))

    threads = [threading.Thread(target=work, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verification = ledgers[0].verify()
    for state in states:
        state.close()
    assert verification.ok
    assert 100 == verification.records


def test_key_digest_is_keyed_per_installation(tmp_path, ledger):
    """The same keys digest alike in one installation and differently in another."""
    other_state = StateDB(f"sqlite:///{tmp_path / 'other.db'}")
    other = AuditLedger(other_state)
    keys = [(1,), (2,), (3,)]
    assert ledger.key_digest(keys) == ledger.key_digest(list(keys))
    assert ledger.key_digest(keys) != other.key_digest(keys)
    other_state.close()


def test_values_that_are_not_plain_data_are_refused(ledger):
    """Only plain data (numbers, text, dates, keys) can enter a record."""
    with pytest.raises(TypeError):
        ledger.append(Entry(Kind.RUN_START, body={"row": object()}))
    assert 0 == ledger.count()


@pytest.mark.parametrize("body", [
    {"status": "applied", "keys": [[1], [2]], "count": 2, "reached": {}, "skipped": 0},
    {"keys": [["o'brien", 7], ["zoë", 8]], "Zeta": 1, "alpha": {"b": [1.5, None]}, "ä": True},
    {"keys": []},
])
def test_a_body_built_from_known_key_text_is_the_canonical_text(body):
    """Splicing in the keys' text (encoded once for the intent) changes nothing in the hash."""
    known = {"keys": canonical([tuple(key) for key in body["keys"]])}

    assert canonical(body) == Body(body, known=known).text == Body(body).text


@pytest.mark.parametrize(("batch", "page_chars"), [(5000, 10**9), (3, 10**9), (5000, 1),
                                                   (5000, 120), (2, 120)])
def test_records_come_back_once_in_order_whatever_the_page_bounds(ledger, batch, page_chars):
    """Pages bounded by record count and by body size (a big body is a page of its own)."""
    bodies = [{"keys": [[n] for n in range(size)]} for size in (0, 40, 1, 3, 60, 2, 0, 25)]
    ledger.append_many([Entry(Kind.OUTCOME, batch_id=f"b{i}", body=body)
                        for i, body in enumerate(bodies)])

    read = list(ledger.records(batch=batch, page_chars=page_chars))

    assert (list(range(1, 9)), bodies) == ([r.seq for r in read], [r.entry.body for r in read])
