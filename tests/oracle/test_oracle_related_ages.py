"""Ages from related records, generated: the SQL stores, the Python evaluator and the oracle agree.

Each example is a small shop: customers, their orders (``placed_at``) and the orders' lines
(``shipped_at``), every key cascading.  Dates are drawn around the cutoff (a second before, at
it, a second after, far from it) and NULL; references may be NULL; some customers have no
orders, some orders no lines.  The rule ages customers by the newest or oldest date one hop
(orders) or two hops (order lines, through orders) away, keeping, acting on or ageing on their
own ``joined_at`` the customers with no related rows; a hold may keep some customers.  The
plan's census and eligible keys, the keys a run deletes, and
:class:`~retentiond.stores.evaluate.Evaluator`'s census must all be what
:func:`retentiond.policy.oracle.decide` decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given, note
from hypothesis import strategies as st
from oracle_kit import examples

from retentiond.ledger.chain import AuditLedger
from retentiond.ledger.state import StateDB
from retentiond.policy import oracle
from retentiond.policy.loader import load_policies
from retentiond.run.enforce import Options, RuleRun
from retentiond.run.engine import Engine
from retentiond.settings import Defaults
from retentiond.stores import evaluate
from retentiond.stores.registry import Stores
from retentiond.stores.sql import SqlStore, SqlStoreSettings
from retentiond.validation import validate_live

AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
CUTOFF = datetime(2024, 3, 15, 12, 0)  # noqa: DTZ001 - 24 months before AS_OF, naive UTC
SECOND = timedelta(seconds=1)
ROOMY = Defaults(batch_size=3, max_rows=10_000, max_percent=100)

dates = st.sampled_from([None, CUTOFF - SECOND, CUTOFF, CUTOFF + SECOND,
                         CUTOFF - timedelta(days=400), CUTOFF + timedelta(days=400)])


@dataclass(frozen=True)
class Shop:
    """One example: rows per table and what the rule says."""

    rows: dict[str, list[dict[str, object]]]
    hops: int
    take: str
    when_none: str
    held: tuple[int, ...]

    def policy(self) -> dict[str, object]:
        """The policy file, as the data YAML reads."""
        related: dict[str, object] = (
            {"table": "orders", "via": ["customer_id"], "column": "placed_at"}
            if self.hops == 1 else
            {"through": [{"table": "orders", "via": ["customer_id"]}], "table": "lines",
             "via": ["order_id"], "column": "shipped_at"})
        rule = {"id": "quiet", "description": "Quiet customers go.", "store": "app",
                "table": "customers", "action": {"type": "delete"},
                "age": {"related": {**related, "take": self.take}, "older_than": "24 months",
                        "when_none": {"use": "joined_at"} if self.when_none == "use"
                        else self.when_none}}
        holds = [{"id": "held", "reason": "Litigation.", "store": "app", "table": "customers",
                  "where": {"column": "id", "op": "in", "value": list(self.held)}}]
        return {"rules": [rule], "holds": holds if self.held else []}


@st.composite
def shops(draw: st.DrawFn) -> Shop:
    """Customers, orders and lines with dates around the cutoff, and a rule over them."""
    customers = list(range(1, draw(st.integers(1, 6)) + 1))
    orders = [{"id": 10 + n, "customer_id": draw(st.sampled_from([None, *customers])),
               "placed_at": draw(dates)} for n in range(draw(st.integers(0, 8)))]
    lines = [{"id": 100 + n, "order_id": draw(st.sampled_from([o["id"] for o in orders])),
              "shipped_at": draw(dates)}
             for n in range(draw(st.integers(0, 10) if orders else st.just(0)))]
    return Shop(
        rows={"customers": [{"id": c, "joined_at": draw(dates)} for c in customers],
              "orders": orders, "lines": lines},
        hops=draw(st.sampled_from([1, 2])), take=draw(st.sampled_from(["newest", "oldest"])),
        when_none=draw(st.sampled_from(["keep", "act", "use"])),
        held=tuple(draw(st.sets(st.sampled_from(customers), max_size=2))))


SCHEMA = oracle.Schema(
    tables=(oracle.Table("customers", ("id", "joined_at"), ("id",)),
            oracle.Table("orders", ("id", "customer_id", "placed_at"), ("id",)),
            oracle.Table("lines", ("id", "order_id", "shipped_at"), ("id",))),
    references=(oracle.Reference("orders", ("customer_id",), "customers", ("id",), "cascade"),
                oracle.Reference("lines", ("order_id",), "orders", ("id",), "cascade")))


def load(engine: sa.Engine, shop: Shop) -> None:
    """Create the three tables (naive timestamps) and insert the shop's rows."""
    metadata = sa.MetaData()
    sa.Table("customers", metadata, sa.Column("id", sa.Integer, primary_key=True,
                                              autoincrement=False),
             sa.Column("joined_at", sa.DateTime))
    sa.Table("orders", metadata, sa.Column("id", sa.Integer, primary_key=True,
                                           autoincrement=False),
             sa.Column("customer_id", sa.Integer,
                       sa.ForeignKey("customers.id", ondelete="CASCADE")),
             sa.Column("placed_at", sa.DateTime))
    sa.Table("lines", metadata, sa.Column("id", sa.Integer, primary_key=True,
                                          autoincrement=False),
             sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id", ondelete="CASCADE"),
                       nullable=False),
             sa.Column("shipped_at", sa.DateTime))
    metadata.create_all(engine)
    with engine.begin() as connection:
        for name in ("customers", "orders", "lines"):
            if shop.rows[name]:
                connection.execute(metadata.tables[name].insert(), shop.rows[name])


@examples(40)
@given(shop=shops())
@pytest.mark.usefixtures("server")
def test_sql_python_and_oracle_decide_related_ages_alike(fresh, shop):
    """Census, eligible keys and the keys a run deletes are the oracle's, on every backend."""
    note(repr(shop))
    place = fresh()
    load(place.engine, shop)
    place.directory.mkdir(parents=True)
    (place.directory / "policy.yaml").write_text(json.dumps(shop.policy(), default=str),
                                                 encoding="utf-8")
    policies = load_policies(place.directory)
    opened: list[SqlStore] = []

    def opener(name: str, settings: SqlStoreSettings) -> SqlStore:
        store = SqlStore(name, settings)
        opened.append(store)
        return store

    registry = Stores({"app": SqlStoreSettings(url=place.url)}, opener)
    state = StateDB(f"sqlite:///{place.directory / 'state.db'}")
    try:
        assert [] == [str(p) for p in validate_live(policies, registry)]
        engine = Engine(policies, registry, ROOMY)
        rule = policies.rule("quiet")
        plan = engine.plan(rule, as_of=AS_OF, samples=100)
        selection = engine.selection(rule, as_of=AS_OF)
        report = RuleRun(engine, AuditLedger(state), rule, as_of=AS_OF, run_id="r1",
                         options=Options())()
        with place.engine.connect() as connection:
            left = {row[0] for row in connection.exec_driver_sql("SELECT id FROM customers")}
    finally:
        registry.close()
        state.close()

    decree, guards = oracle.from_policy(policies, rule, AS_OF)
    decision = oracle.decide(SCHEMA, shop.rows, decree, guards)
    judge = evaluate.Evaluator("app", lambda row: (row["id"],),
                               related=lambda name: shop.rows[name])
    in_python = judge.census(selection, shop.rows["customers"])
    counts = decision.counts
    census = plan.census
    assert census is not None, plan.error
    everyone = {c["id"] for c in shop.rows["customers"]}
    expected = (counts, list(decision.eligible), everyone - {k[0] for k in decision.eligible})
    assert expected == (
        oracle.Counts(census.population, census.matched, census.null_age, census.held,
                      census.protected, census.blocked, census.eligible),
        list(plan.samples), left), report
    assert counts == oracle.Counts(in_python.population, in_python.matched, in_python.null_age,
                                   in_python.held, in_python.protected, in_python.blocked,
                                   in_python.eligible)
