"""Fixtures of the evidence tests: an operator's site driven through the CLI, and a bench.

``site`` has one SQLite store ``app`` with an ``emails`` table (rows of every standing: due,
held by customer, kept by a minimum retention, young, undated) and ``evidence_kit.POLICY``.
``bench`` is library-level: ``events`` on every store backend, with every state backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from evidence_kit import (
    EMAIL_ROWS,
    EMAILS,
    EVENTS_POLICY,
    POLICY,
    Bench,
    Site,
    event_rows,
    load,
    make_site,
    placed_id,
    stamp,
)

from retentiond.ledger.chain import AuditLedger
from retentiond.ledger.state import StateDB
from retentiond.stores import open_store
from retentiond.stores.registry import Stores
from retentiond.stores.sql import SqlStoreSettings


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """The ``app`` store with ``emails``, POLICY, and a SQLite state database."""
    return make_site(tmp_path, {"app": {EMAILS: EMAIL_ROWS}}, POLICY)


@pytest.fixture
def make_bench(tmp_path: Path, db, backend: str) -> Iterator[Callable[[str], Bench]]:
    """``make_bench(state_url)``: a Bench with a state database at ``state_url``.

    ``events`` is on the test's backend (store ``app``), with the events policy; every bench
    is closed afterwards.
    """
    db.run(f"CREATE TABLE events (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, "
           f"created_at {stamp(db.kind)})")
    db.insert("events", event_rows())
    policies = load(tmp_path / "policies", EVENTS_POLICY)
    made: list[Bench] = []

    def make(state_url: str) -> Bench:
        stores = Stores({"app": SqlStoreSettings(url=backend)}, open_store)
        state = StateDB(state_url)
        made.append(Bench(stores, state, AuditLedger(state), policies))
        return made[-1]

    yield make
    for bench in made:
        bench.stores.close()
        bench.state.close()


@pytest.fixture
def bench(make_bench: Callable[[str], Bench], tmp_path: Path) -> Bench:
    """A bench on the test's store backend with a SQLite state database."""
    return make_bench(f"sqlite:///{tmp_path / 'state' / 'state.db'}")


@pytest.fixture(scope="module")
def enforced(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """A site (shared by a module's tests) after: a hold on customer 4711, then ``run --once``.

    Row 1 is deleted; 2 and 5 are held; 3 is retained as an invoice; 4 is young; 6 undated.
    """
    made = make_site(tmp_path_factory.mktemp("enforced"), {"app": {EMAILS: EMAIL_ROWS}}, POLICY)
    made.hold = placed_id(made.ok("hold", "add", "--store", "app", "--table", "emails",
                                  "--where", "customer_id=4711", "--reason", "Complaint.",
                                  "--case", "C-7"))
    made.ok("run", "--once")
    return made
