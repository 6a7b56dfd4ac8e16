"""What holds do, as an operator sees it: across stores, in plans, and before a release."""

from __future__ import annotations

from evidence_kit import OLD, RULE, make_site, placed_id

from retentiond.ledger.chain import Kind

NOTES = "CREATE TABLE notes (id INTEGER PRIMARY KEY, customer_id INTEGER, noted_at DATETIME)"
ORDERS = "CREATE TABLE orders (id INTEGER PRIMARY KEY, buyer VARCHAR(20), ordered_at DATETIME)"
VISITS = "CREATE TABLE visits (id INTEGER PRIMARY KEY, customer_id INTEGER, seen_at DATETIME)"
OLD_TEXT = OLD.isoformat(sep=" ")
TWO_STORES = """\
rules:
  - id: notes-1-year
    description: Support notes are deleted after a year.
    store: crm
    table: notes
    subjects: {customer: customer_id}
    age: {column: noted_at, older_than: 1 year}
    action: {type: delete}
    limits: {max_percent: 100}
  - id: orders-1-year
    description: Orders are deleted after a year.
    store: shop
    table: orders
    subjects: {customer: buyer}
    age: {column: ordered_at, older_than: 1 year}
    action: {type: delete}
    limits: {max_percent: 100}
  - id: visits-1-year
    description: Visits are deleted after a year; they name no subject.
    store: shop
    table: visits
    age: {column: seen_at, older_than: 1 year}
    action: {type: delete}
    limits: {max_percent: 100}
"""


def test_a_subject_hold_keeps_the_subject_in_every_store_whose_rules_map_it(tmp_path):
    """--subject customer=4711 keeps 4711's notes (crm) and orders (shop); unmapped visits go."""
    site = make_site(tmp_path, {
        "crm": {NOTES: [(1, 4711, OLD_TEXT), (2, 5, OLD_TEXT), (3, None, OLD_TEXT)]},
        "shop": {ORDERS: [(1, "4711", OLD_TEXT), (2, "47110", OLD_TEXT)],
                 VISITS: [(1, 4711, OLD_TEXT), (2, 5, OLD_TEXT)]},
    }, TWO_STORES)
    hold = placed_id(site.ok("hold", "add", "--subject", "customer=4711", "--reason",
                             "Litigation.", "--case", "CASE-9"))
    site.ok("run", "--once")

    assert ([1, 3], [1], []) == (site.ids("crm", "notes"), site.ids("shop", "orders"),
                                 site.ids("shop", "visits"))  # a NULL customer is doubt: kept
    starts = {r.entry.rule: r.entry.body["census"]["by_guard"] for r in site.records()
              if r.entry.kind is Kind.RUN_START}
    assert {"notes-1-year": {hold: 2}, "orders-1-year": {hold: 1}, "visits-1-year": {}} == starts


def test_plan_previews_a_release_and_after_it_the_rows_are_due(site):
    """A plan --without-hold shows what a release frees; after the release, plan agrees."""
    hold = placed_id(site.ok("hold", "add", "--store", "app", "--table", "emails", "--where",
                             "customer_id=4711", "--reason", "Complaint."))
    text = site.ok("plan", "--without-hold", hold)
    (preview,) = site.json("plan", "--without-hold", hold)
    unknown = site.cli("plan", "--without-hold", "H-00000000")
    site.ok("hold", "release", hold, "--reason", "Settled.")
    (released,) = site.json("plan")

    assert f"released {hold} (preview): it keeps 2 rows now; 2 more would be acted on" in text
    assert f"held by {hold}: 2 rows (Complaint.)" not in text  # released in the preview
    assert (RULE, 3, 0) == (preview["rule"], preview["eligible"], preview["held"])
    assert [{"hold": hold, "reason": "Complaint.", "keeps": 2, "frees": 2}] == \
        preview["released_holds"]
    assert (2, "error: H-00000000: no hold has this id") == (
        unknown.returncode, unknown.stderr.splitlines()[0].split(";")[0])
    assert (3, 0) == (released["eligible"], released["held"])
    assert "released_holds" not in released
