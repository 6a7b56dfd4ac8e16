"""The data map in the policy files, in shape: what it reads as, and each mistake at its line.

No store is needed here; the checks against live tables are in ``tests/test_datamap_live.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retentiond.actions.anonymize import Constant, Nullify
from retentiond.errors import PolicyError
from retentiond.policy.datamap import Category, erasure_plan_for
from retentiond.policy.loader import load_policies

MAP = """\
subjects:
  customer: {description: A customer of the shop}
  employee: Someone who works for the shop
data_map:
  - store: app
    table: customers
    subject: {customer: id}
    personal: {email: contact, name: identity}
    erase: delete
  - store: app
    table: invoices
    subject: {customer: customer_id}
    personal: {billing_name: identity, billing_address: contact}
    erase:
      keep: "business record: credit transactions, tax law (7 years)"
      anonymize: {billing_name: {strategy: constant, value: erased}}
  - store: app
    table: invoice_lines
    subject: {customer: [invoice_id, customer_id]}
    erase: delete
  - store: app
    table: shipments
    subject: {customer: [[invoice_id, customer_id], [order_id, customer_id], buyer_id]}
    personal: {address: location, notes: content}
    erase: {anonymize: {address: nullify}, pseudonymize: {notes: shipment-notes}}
"""
"""A valid map; the entries start at lines 5, 10, 17 and 21."""


def write(tmp_path, files):
    """Write ``{name: yaml}`` into a new policy directory; return it."""
    directory = tmp_path / "policies"
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def problems_of(tmp_path, files):
    """Every problem loading ``files`` reports, as (file name, line, subject, message)."""
    with pytest.raises(PolicyError) as caught:
        load_policies(write(tmp_path, files))
    return [(p.file.name if p.file else None, p.line, p.subject, f"{p.what}; {p.fix}")
            for p in caught.value.problems]


def swap(old, new, text=MAP):
    """``text`` with ``old`` (which occurs once) replaced by ``new``."""
    assert 1 == text.count(old), old
    return text.replace(old, new)


def test_the_map_reads_as_kinds_tables_ways_categories_and_erasures(tmp_path):
    """Shorthands read as their long forms: a column, a path, several ways, a strategy name."""
    mapped = load_policies(write(tmp_path, {"map.yaml": MAP})).data_map
    customers, invoices, lines, shipments = mapped.tables

    assert {"customer": "A customer of the shop", "employee": "Someone who works for the shop"
            } == {kind: s.description for kind, s in mapped.subjects.items()}
    assert [("customer", ("id",))] == [(k, w) for k, ways in customers.subject.items()
                                       for w in ways]
    assert {"email": Category.CONTACT, "name": Category.IDENTITY} == customers.personal
    assert ("delete", "keep", "delete", "anonymize") == tuple(
        t.erase.effect for t in mapped.tables)
    assert ("business record: credit transactions, tax law (7 years)",
            {"billing_name": Constant(strategy="constant", value="erased")}) == (
        invoices.erase.keep, invoices.erase.anonymize.columns if invoices.erase.anonymize
        else None)
    assert (("invoice_id", "customer_id"),) == lines.subject["customer"]
    assert (("invoice_id", "customer_id"), ("order_id", "customer_id"), ("buyer_id",)) == \
        shipments.subject["customer"]
    assert ({"address": Nullify(strategy="nullify")}, ("notes",), "shipment-notes") == (
        shipments.erase.anonymize.columns if shipments.erase.anonymize else None,
        shipments.erase.pseudonymized,
        shipments.erase.pseudonymize.columns["notes"].domain
        if shipments.erase.pseudonymize else None)
    assert [("app", "invoices", ("customer_id",)),
            ("app", "invoice_lines", ("invoice_id", "customer_id"))] == [
        w for w in mapped.ways("customer") if w[1] in {"invoices", "invoice_lines"}]


def test_a_file_may_hold_only_the_data_map_and_the_map_counts_in_the_digest(tmp_path):
    """A map-only file is a policy file; a change of the map changes the policy set's digest."""
    rule = ("rules:\n  - id: r\n    description: d\n    store: app\n    table: t\n"
            "    age: {column: at, older_than: 1 year}\n    action: {type: delete}\n")
    alone = load_policies(write(tmp_path / "a", {"rules.yaml": rule}))
    mapped = load_policies(write(tmp_path / "b", {"rules.yaml": rule, "map.yaml": MAP}))
    changed = load_policies(write(tmp_path / "c", {"rules.yaml": rule, "map.yaml": swap(
        "personal: {email: contact, name: identity}", "personal: {email: contact}")}))

    assert 3 == len({alone.digest, mapped.digest, changed.digest})
    assert (0, 4) == (len(alone.data_map.tables), len(mapped.data_map.tables))


CASES = [
    pytest.param(swap("    erase: delete\n  - store: app\n    table: invoices",
                      "    erase: remove\n  - store: app\n    table: invoices"),
                 9, "data map app.customers",
                 "erase: 'remove' is not an erasure; write 'delete', or a mapping with "
                 "'anonymize', 'pseudonymize' or 'keep' (the exception)",
                 id="unknown-erasure"),
    pytest.param(swap("name: identity}", "name: identiti}"), 8, "data map app.customers",
                 "name: Input should be 'contact', 'identity', 'content', 'financial', "
                 "'network', 'location', 'health' or 'other'; correct the value",
                 id="unknown-category"),
    pytest.param(swap('keep: "business record: credit transactions, tax law (7 years)"',
                      'keep: "  "'), 15, "data map app.invoices",
                 "keep: the exception is empty; state why the rows are kept (e.g. 'business "
                 "record: tax law, 10 years')", id="empty-exception"),
    pytest.param(swap('keep: "business record: credit transactions, tax law (7 years)"\n'
                      "      anonymize: {billing_name: {strategy: constant, value: erased}}",
                      "delete: true\n      keep: tax law"), 14, "data map app.invoices",
                 "erase: 'delete' removes the rows, so 'keep', 'anonymize' and 'pseudonymize' "
                 "have nothing to act on; give 'delete' alone, or keep or rewrite the rows "
                 "instead", id="delete-and-keep"),
    pytest.param(swap("subject: {customer: id}", "subject: {custmer: id}"), 7,
                 "data map app.customers",
                 "subject kind 'custmer' is not declared (declared: customer, employee); "
                 "declare it under 'subjects:' (custmer: {description: ...}) or correct its "
                 "spelling", id="undeclared-kind"),
    pytest.param(swap("subject: {customer: [invoice_id, customer_id]}",
                      "subject: {customer: [[invoice_id, customer_id], []]}"), 19,
                 "data map app.invoice_lines",
                 "customer: a path names at least one column; correct the value",
                 id="empty-path"),
    pytest.param(swap("subject: {customer: id}", "subject: {customer: id, employee: 'id; --'}"),
                 7, "data map app.customers",
                 "employee: 'id; --' is not a plain identifier; use letters, digits and "
                 "underscores only (no quotes, spaces, dots or SQL)",
                 id="path-column-not-an-identifier"),
    pytest.param(swap("erase: {anonymize: {address: nullify}, pseudonymize: {notes: "
                      "shipment-notes}}", "erase: {anonymize: {address: nullify}}"), 25,
                 "data map app.shipments",
                 "erasure leaves personal column(s) notes as they are; anonymize them too, or "
                 "state with 'keep:' the exception that needs them", id="personal-left-as-is"),
    pytest.param(swap("erase: {anonymize: {address: nullify}, pseudonymize: {notes: "
                      "shipment-notes}}", "erase: {anonymize: {address: nullify, notes: mask}, "
                      "pseudonymize: {notes: shipment-notes}}"), 25, "data map app.shipments",
                 "erase: column(s) notes both anonymized and pseudonymized; choose one",
                 id="anonymized-and-pseudonymized"),
    pytest.param(swap("{billing_name: {strategy: constant, value: erased}}",
                      "{billing_name: {strategy: mask, keep_last: -1}}"), 16,
                 "data map app.invoices",
                 "keep_last: Input should be greater than or equal to 0; correct the value",
                 id="strategy-option-out-of-range"),
    pytest.param(MAP + "    colour: blue\n", 26, "data map app.shipments",
                 "unknown key 'colour'; remove it or correct its spelling", id="unknown-key"),
]


@pytest.mark.parametrize(("text", "line", "subject", "message"), CASES)
def test_each_mistake_is_one_problem_at_its_line(tmp_path, text, line, subject, message):
    """A mistake in the map: one problem with the file, the line, the table, what and fix."""
    assert [("map.yaml", line, subject, message)] == problems_of(tmp_path, {"map.yaml": text})


def test_across_files_a_table_is_mapped_once_and_a_kind_declared_once(tmp_path):
    """The second mapping of a table and the second declaration of a kind name the first."""
    again = ("subjects:\n  customer: {description: again}\ndata_map:\n  - store: app\n"
             "    table: customers\n    subject: {customer: id}\n    erase: delete\n")
    first = tmp_path / "policies" / "a.yaml"

    assert [("b.yaml", 2, "subject customer",
             f"subject kind 'customer' is already declared at {first}:2; declare each kind "
             "once"),
            ("b.yaml", 4, "data map app.customers",
             f"app.customers is already mapped at {first}:5; map each table once; give it "
             "every subject kind there"),
            ] == problems_of(tmp_path, {"a.yaml": MAP, "b.yaml": again})


def test_once_kinds_are_declared_a_rule_maps_only_declared_kinds(tmp_path):
    """A rule's ``subjects:`` kind that the map does not declare is a typo, named at its line."""
    rule = ("rules:\n  - id: notes-1-year\n    description: Notes go after a year.\n"
            "    store: app\n    table: notes\n    subjects: {client: customer_id}\n"
            "    age: {column: at, older_than: 1 year}\n    action: {type: delete}\n")

    assert [("rules.yaml", 6, "notes-1-year",
             "subject kind 'client' is not declared (declared: customer, employee); declare "
             "it under 'subjects:' or correct its spelling")] == problems_of(
        tmp_path, {"map.yaml": MAP, "rules.yaml": rule})
    assert () == load_policies(write(tmp_path / "alone", {"rules.yaml": rule})).data_map.tables


SHOP = """\
subjects:
  customer: A customer
  employee: Someone who works here
data_map:
  - {store: app, table: customers, subject: {customer: id}, erase: delete}
  - {store: app, table: orders, subject: {customer: customer_id}, erase: delete}
  - store: app
    table: invoices
    subject: {customer: customer_id}
    erase: {keep: "business record: tax law"}
  - store: app
    table: invoice_lines
    subject: {customer: [[invoice_id, customer_id], [order_id, customer_id]]}
    erase: delete
  - {store: app, table: people, subject: {customer: [home_address_id, owner_id]}, erase: delete}
  - {store: app, table: addresses, subject: {customer: owner_id}, erase: delete}
  - {store: app, table: staff, subject: {employee: id}, erase: delete}
"""
REFERENCES = {
    ("app", "orders"): [("app", "customers")],
    ("app", "invoices"): [("app", "customers"), ("app", "ledger_accounts")],  # not mapped
    ("app", "invoice_lines"): [("app", "invoices"), ("app", "orders")],
    ("app", "people"): [("app", "addresses")],
    ("app", "addresses"): [("app", "people"), ("app", "customers")],
    ("app", "staff"): [("app", "staff")],
}
"""The shop's foreign keys: a diamond (lines -> invoices, orders -> customers), a cycle
(people <-> addresses) and a table that references itself."""


def test_an_erasure_plan_puts_children_before_parents_and_a_cycle_together(tmp_path):
    """Children come before parents; the tables of a cycle come together and say so.

    Lines before invoices and orders (they reference both), customers last; ties go by name.
    """
    mapped = load_policies(write(tmp_path, {"shop.yaml": SHOP})).data_map

    plan = erasure_plan_for(mapped, "customer", REFERENCES)

    assert [("addresses", "delete", ("addresses", "people")),
            ("people", "delete", ("addresses", "people")), ("invoice_lines", "delete", ()),
            ("invoices", "keep", ()), ("orders", "delete", ()), ("customers", "delete", ())] == [
        (s.table, s.erase.effect, s.cycle) for s in plan]
    assert (("invoice_id", "customer_id"), ("order_id", "customer_id")) == plan[2].ways
    assert [("staff", ("staff",))] == [(s.table, s.cycle) for s in
                                       erasure_plan_for(mapped, "employee", REFERENCES)]
    assert () == erasure_plan_for(mapped, "visitor", REFERENCES)


TABLES = [f"t{n}" for n in range(7)]


@settings(max_examples=200, deadline=None)
@given(edges=st.lists(st.tuples(st.sampled_from(TABLES), st.sampled_from(TABLES)), max_size=20))
def test_every_plan_orders_each_reference_outside_a_cycle_child_first(tmp_path_factory, edges):
    """Any foreign keys at all: each table once, a child before its parent, or both in a cycle.

    The tables of a cycle are adjacent and each names the cycle; the plan always ends.
    """
    text = "subjects: {s: a subject}\ndata_map:\n" + "".join(
        f"  - {{store: app, table: {t}, subject: {{s: id}}, erase: delete}}\n" for t in TABLES)
    mapped = load_policies(write(tmp_path_factory.mktemp("p"), {"m.yaml": text})).data_map
    references: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for child, parent in edges:
        references.setdefault(("app", child), []).append(("app", parent))

    plan = erasure_plan_for(mapped, "s", references)

    position = {s.table: n for n, s in enumerate(plan)}
    cycle = {s.table: set(s.cycle) for s in plan}
    assert sorted(TABLES) == sorted(position)
    assert [] == [(c, p) for c, p in edges
                  if position[c] > position[p] and p not in cycle[c]]
    assert [] == [(c, p) for c, p in edges if c == p and c not in cycle[c]]
    assert [] == [s.table for s in plan if s.cycle and sorted(
        position[t] for t in s.cycle) != list(range(min(position[t] for t in s.cycle),
                                                    min(position[t] for t in s.cycle)
                                                    + len(s.cycle)))]


def test_an_erasure_rewrites_only_columns_listed_as_personal(tmp_path):
    """A rewritten column missing from ``personal:`` is named at its own line."""
    text = swap("anonymize: {billing_name: {strategy: constant, value: erased}}",
                "anonymize:\n        billing_name: {strategy: constant, value: erased}\n"
                "        notes: nullify")

    assert [("map.yaml", 18, "data map app.invoices",
             "erasure would anonymize 'notes', which is not listed as personal; add it under "
             "'personal:' with its category (notes: contact, identity, ...), or leave it as "
             "it is")] == problems_of(tmp_path, {"map.yaml": text})
