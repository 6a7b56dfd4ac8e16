"""Holds placed at run time beat the rules on every store backend, from the next batch on."""

from __future__ import annotations

from datetime import timedelta

from evidence_kit import AS_OF, CUSTOMER, HELD_IDS, SQLITE_ONLY, where

from retentiond.holds.notation import Subject
from retentiond.holds.scope import StateHolds
from retentiond.ledger.chain import Kind
from retentiond.run.enforce import Options, enforce

RULE = "events-delete"


def _left(bench) -> list[int]:
    store = bench.stores.get("app")
    with store.engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT id FROM events ORDER BY id")]


def test_a_runtime_hold_keeps_rows_a_rule_would_delete(make_bench, state_url):
    """The rows a hold in the state database covers stay; every other due row goes."""
    bench = make_bench(state_url)
    hold = bench.place(store="app", table="events", where=where(f"customer_id={CUSTOMER}"))
    report = enforce(bench.engine(), bench.ledger, bench.policies.rule(RULE), as_of=AS_OF)

    assert HELD_IDS == _left(bench)
    assert (8, 4) == (report.acted, report.census.held if report.census else None)
    (start,) = [r for r in bench.ledger.records() if r.entry.kind is Kind.RUN_START]
    assert {hold.id: 4} == start.entry.body["census"]["by_guard"]


def test_a_hold_placed_during_a_run_is_honoured_from_the_next_batch(bench):
    """A hold placed between two batches keeps its rows; the first batch had already gone."""
    asked = []

    def place_after_first_batch() -> bool:
        asked.append(1)
        if len(asked) == 2:  # asked before the first batch, then after it
            bench.place(store="app", table="events", where=where(f"customer_id={CUSTOMER}"))
        return False

    report = enforce(bench.engine(), bench.ledger, bench.policies.rule(RULE), as_of=AS_OF,
                     options=Options(should_stop=place_after_first_batch))

    assert [5, 8, 11] == _left(bench)  # 2 went in the first batch (1, 2, 3)
    assert (9, 3) == (report.acted, report.batches)  # 1-3, then 4, 6, 7 and 9, 10, 12


@SQLITE_ONLY
def test_an_expired_hold_stops_holding(bench):
    """A hold with --until holds through that day, and no longer after it."""
    placed_at = AS_OF - timedelta(days=10)
    until = (AS_OF - timedelta(days=5)).date()
    hold = bench.place(store="app", table="events", where=where(f"customer_id={CUSTOMER}"),
                       until=until, now=placed_at)
    last_day = AS_OF - timedelta(days=5) + timedelta(hours=11)

    assert (4, 0) == (bench.held(RULE, last_day), bench.held(RULE, AS_OF))
    assert ("active", "expired") == (hold.status(last_day), hold.status(AS_OF))


def test_a_subject_hold_becomes_a_hold_on_each_mapped_column(bench):
    """A subject hold holds the subject's rows wherever a rule maps the subject's kind."""
    hold = bench.place(subject=Subject("customer", str(CUSTOMER)))
    holds = StateHolds(bench.state, bench.policies, bench.stores)

    (found,) = holds.active("app", "events", AS_OF)
    assert (hold.id, {"column": "customer_id", "op": "eq", "value": CUSTOMER}) == (
        found.id, found.where.model_dump(mode="json") if found.where else None)
    assert [] == list(holds.active("app", "other", AS_OF))
    assert 4 == bench.held(RULE, AS_OF)


@SQLITE_ONLY
def test_a_preview_leaves_out_the_holds_it_releases(bench):
    """StateHolds(without=...) plans as if the hold were released; the hold itself stays."""
    hold = bench.place(store="app", table="events", where=where(f"customer_id={CUSTOMER}"))
    rule = bench.policies.rule(RULE)
    now = bench.engine().plan(rule, as_of=AS_OF).census
    preview = bench.engine(without=[hold.id]).plan(rule, as_of=AS_OF).census

    assert now is not None
    assert preview is not None
    assert (8, 4) == (now.eligible, now.held)
    assert (12, 0) == (preview.eligible, preview.held)
    assert 4 == bench.held(RULE, AS_OF)
