"""Ages from related records: a customer is as old as its newest (or oldest) invoice.

Runs are made at AS_OF (2026-03-15 12:00 UTC); "24 months" puts the cutoff at 2024-03-15
12:00.  The comment on each customer says where it stands under "newest invoice older than 24
months, no invoices: keep".
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from enforce_kit import AS_OF, at, stamp
from rich.console import Console
from test_concurrent import application

from retentiond.cli.render import plan_details
from retentiond.errors import PolicyError
from retentiond.ledger.chain import Kind
from retentiond.policy.loader import load_policies
from retentiond.stores.base import Census
from retentiond.stores.registry import Stores
from retentiond.stores.sql import SqlStoreSettings
from retentiond.validation import validate_live

CUTOFF = at(2024, 3, 15, 12, 0)
SECOND_AFTER = at(2024, 3, 15, 12, 0, 1)

CUSTOMERS = [
    # id, invoices' issued_at
    (1, [at(2023, 1, 1), at(2024, 1, 1)]),  # newest is old: due
    (2, [at(2023, 1, 1), at(2025, 1, 1)]),  # newest is young (oldest is old)
    (3, []),  # no invoices: no age, kept (when_none: act makes it due)
    (4, [at(2023, 1, 1), None]),  # an invoice with no date: in doubt, kept
    (5, [CUTOFF]),  # exactly at the cutoff: due
    (6, [SECOND_AFTER]),  # a second after it: young
    (7, [CUTOFF, CUTOFF]),  # a tie, at the cutoff: due
    (8, [at(2020, 1, 1)]),  # due, but held
    (9, [None]),  # only an undated invoice: in doubt, kept
]


def rule(take="newest", when_none=None, action="delete", extra=""):
    """The customers rule: age from invoices.issued_at, the hold on customer 8."""
    none = f"\n      when_none: {when_none}" if when_none else ""
    return f"""\
rules:
  - id: quiet-customers
    description: Customers whose {take} invoice is over 24 months old are removed.
    store: app
    table: customers
    age:
      related: {{table: invoices, via: [customer_id], column: issued_at, take: {take}}}
      older_than: 24 months{none}
    action: {{type: {action}}}
{extra}holds:
  - id: customer-8
    reason: Litigation.
    store: app
    table: customers
    where: {{column: id, value: 8}}
"""


@pytest.fixture
def invoices(db):
    """Customers and their invoices (deleted with them), as listed above.

    Only customer 3 (no invoices) has signed up on record: in 2020.
    """
    db.run(f"CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(20), "
           f"signed_up {stamp(db.kind)})",
           f"CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES "
           f"customers (id) ON DELETE CASCADE, issued_at {stamp(db.kind)})")
    db.insert("customers", [{"id": c, "name": f"c{c}", "signed_up": at(2020, 1, 1) if c == 3
                             else None} for c, _ in CUSTOMERS])
    numbers = iter(range(1, 100))
    db.insert("invoices", [{"id": next(numbers), "customer_id": c, "issued_at": when}
                           for c, dates in CUSTOMERS for when in dates])


def plan_of(rig, text):
    """The census and eligible keys of the plan of ``quiet-customers``."""
    made = rig(text)
    plan = made.engine.plan(made.rule("quiet-customers"), as_of=AS_OF, samples=20)
    assert plan.error is None
    return plan.census, [key[0] for key in plan.samples]


@pytest.mark.usefixtures("invoices")
def test_the_newest_invoice_dates_the_customer(rig):
    """Due at or before the cutoff (ties too); no invoices or an undated one keeps; holds hold."""
    expected = (Census(population=9, matched=4, null_age=3, held=1, protected=0, eligible=3,
                       by_guard={"customer-8": 1}), [1, 5, 7])

    assert expected == plan_of(rig, rule())


@pytest.mark.usefixtures("invoices")
def test_the_oldest_invoice_dates_the_customer(rig):
    """With take: oldest one old invoice is enough; an undated one still keeps the customer."""
    expected = (Census(population=9, matched=5, null_age=3, held=1, protected=0, eligible=4,
                       by_guard={"customer-8": 1}), [1, 2, 5, 7])

    assert expected == plan_of(rig, rule(take="oldest"))


@pytest.mark.usefixtures("invoices")
def test_when_none_act_makes_a_customer_without_invoices_due(rig):
    """when_none: act: no related rows at all is due; an undated invoice is still doubt."""
    expected = (Census(population=9, matched=5, null_age=2, held=1, protected=0, eligible=4,
                       by_guard={"customer-8": 1}), [1, 3, 5, 7])

    assert expected == plan_of(rig, rule(when_none="act"))


@pytest.mark.usefixtures("invoices")
def test_when_none_use_ages_a_customer_without_invoices_on_its_own_column(rig, db):
    """when_none: {use: signed_up}: no invoices, so the own column decides; NULL keeps."""
    db.insert("customers", [{"id": 10, "name": "young", "signed_up": at(2026, 1, 1)},
                            {"id": 11, "name": "unknown", "signed_up": None}])
    expected = (Census(population=11, matched=5, null_age=3, held=1, protected=0, eligible=4,
                       by_guard={"customer-8": 1}), [1, 3, 5, 7])

    assert expected == plan_of(rig, rule(when_none="{use: signed_up}"))


@pytest.mark.usefixtures("invoices")
def test_a_run_removes_exactly_the_due_customers_and_their_invoices(rig, db):
    """Enforcing deletes customers 1, 5 and 7 (their invoices cascade); the held one stays."""
    made = rig(rule())
    kept = [2, 3, 4, 6, 8, 9]

    report = made.run("quiet-customers")

    assert ("done", [1, 5, 7], kept, sorted(c for c, dates in CUSTOMERS if c in kept
                                             for _ in dates)) == (
        report.status, sorted(made.acted("quiet-customers")),
        [row[0] for row in db.rows("customers")],
        sorted(row[1] for row in db.rows("invoices")))


def problems_of(tmp_path, backend, make_store, text):
    """(line, what) of each problem validate finds in ``text`` against the live store."""
    directory = tmp_path / "checked"
    directory.mkdir()
    (directory / "policy.yaml").write_text(text, encoding="utf-8")
    stores = Stores({"app": SqlStoreSettings(url=backend)},
                    lambda _name, settings: make_store(settings.url))
    return [(p.file, p.line, p.subject, p.what)
            for p in validate_live(load_policies(directory), stores)]


RELATED = "related: {table: invoices, via: [customer_id], column: issued_at, take: newest}"


@pytest.mark.usefixtures("invoices")
@pytest.mark.parametrize(("related", "what"), [
    ("related: {table: invoices, via: [id], column: issued_at}",
     "table 'invoices' has no foreign key (id) -> 'customers' (its keys to 'customers': "
     "(customer_id))"),
    ("related: {table: bills, via: [customer_id], column: issued_at}",
     "table 'bills' does not exist in the store"),
    ("related: {table: invoices, via: [customer_id], column: paid_at}",
     "column 'paid_at' does not exist in table 'invoices'"),
    ("related: {table: invoices, via: [customer_id], column: id}",
     "column 'id' is INTEGER, not a date or time"),
    ("related: {through: [{table: invoices, via: [customer_id]}], table: customers, "
     "via: [id], column: name}",
     "table 'customers' has no foreign key (id) -> 'invoices' (its keys to 'invoices': none)"),
])
def test_a_path_that_is_no_foreign_key_or_a_column_that_is_no_date_is_refused(
        tmp_path, backend, make_store, related, what):
    """Validation names the file, the line of ``related`` and what is wrong with the path."""
    text = rule().replace(RELATED, related)
    file = tmp_path / "checked" / "policy.yaml"

    found = problems_of(tmp_path, backend, make_store, text)

    # The type's name is the database's own: MariaDB's INTEGER(11) is read as INTEGER.
    assert [(file, 7, "quiet-customers", what)] == [
        (f, line, subject, w.replace("INTEGER(11)", "INTEGER")) for f, line, subject, w in found]


@pytest.mark.usefixtures("invoices")
def test_a_fallback_column_the_table_lacks_is_refused(tmp_path, backend, make_store):
    """when_none: {use: ...} names a date column of the rule's own table, checked at its line."""
    file = tmp_path / "checked" / "policy.yaml"

    found = problems_of(tmp_path, backend, make_store, rule(when_none="{use: joined}"))

    assert [(file, 9, "quiet-customers", "column 'joined' does not exist in table "
             "'customers'")] == found


@pytest.mark.parametrize(("lines", "line", "what"), [
    (["column: created_at", RELATED], 6, "both 'column' and 'related' are given"),
    ([], 6, "'column' is missing"),
    (["column: created_at", "when_none: act"], 6, "'when_none' is for ages from 'related' rows"),
    (["related: {table: invoices, via: [customer_id], column: issued_at, take: latest}"], 7,
     "take: Input should be 'newest' or 'oldest'"),
])
def test_an_age_with_both_or_neither_source_is_refused_when_loaded(tmp_path, lines, line, what):
    """An age needs its own column or related rows, not both; when_none only for related."""
    text = rule().replace(f"      {RELATED}\n", "".join(f"      {line}\n" for line in lines))
    (tmp_path / "policy.yaml").write_text(text, encoding="utf-8")

    with pytest.raises(PolicyError) as raised:
        load_policies(tmp_path)

    assert (line, True) == (raised.value.line, what in str(raised.value)), str(raised.value)


@pytest.mark.usefixtures("invoices")
def test_an_invoice_cannot_be_redated_between_the_claim_and_the_act(rig, db, backend,
                                                                     monkeypatch):
    """The claim locks the related rows too: what decided the batch cannot change under it.

    Right after the first batch's intent is written, the application re-dates customer 5's
    invoice to last week, on its own connection with a short lock timeout.  The act deletes
    by key, so were the invoice not locked, customer 5 (no longer due) would be deleted with
    a fresh invoice; locked, the application waits for the batch and times out.
    """
    made = rig(rule())
    engine = application(backend, db.kind)
    what_happened = []
    append_many = made.ledger.append_many

    def append_then_redate(entries, **options):
        records = append_many(entries, **options)
        if any(entry.kind is Kind.INTENT for entry in entries) and not what_happened:
            try:
                with engine.begin() as connection:
                    connection.execute(sa.text(
                        "UPDATE invoices SET issued_at = :now WHERE customer_id = 5"),
                        {"now": at(2026, 3, 8)})
                what_happened.append("changed")
            except sa.exc.OperationalError:
                what_happened.append("blocked")
        return records

    monkeypatch.setattr(made.ledger, "append_many", append_then_redate)
    report = made.run("quiet-customers", sleep=lambda _seconds: None)
    engine.dispose()

    assert (["blocked"], "done", [1, 5, 7], [2, 3, 4, 6, 8, 9]) == (
        what_happened, report.status, sorted(made.acted("quiet-customers")),
        [row[0] for row in db.rows("customers")])


@pytest.mark.usefixtures("invoices")
def test_the_plan_says_the_age_comes_from_related_rows(rig):
    """The plan details name the related column and path, and what the rows kept lack."""
    made = rig(rule())
    plan = made.engine.plan(made.rule("quiet-customers"), as_of=AS_OF)
    console = Console(width=200)
    with console.capture() as captured:
        console.print(plan_details(plan))
    lines = [line.strip() for line in captured.get().splitlines()]

    assert [
        "age:     from related rows: the newest invoices.issued_at via invoices(customer_id); "
        "rows with none are kept",
        "kept:    3 rows have no invoices rows, or a related invoices row with no issued_at "
        "(doubt keeps the record)",
    ] == [line for line in lines if line.startswith(("age:", "kept:"))]
