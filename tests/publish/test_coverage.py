"""Coverage without a database: the name and type heuristics, and what covers a column."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retentiond.policy.loader import load_policies
from retentiond.publish.coverage import Promise, coverage, looks_personal, words
from retentiond.stores.base import ColumnInfo, ColumnKind, TableSchema

KNOWN = [
    ("email", "contact", "name: email"),
    ("e_mail", "contact", "name: mail"),
    ("EmailAddress", "contact", "name: email"),
    ("phone_number", "contact", "name: phone"),
    ("mobile", "contact", "name: mobile"),
    ("first_name", "identity", "name: name"),
    ("LastName", "identity", "name: name"),
    ("full_name", "identity", "name: name"),
    ("name", "identity", "name: name"),
    ("surname", "identity", "name: surname"),
    ("username", "identity", "name: username"),
    ("ip_address", "network", "name: ip"),
    ("client_ipv6", "network", "name: ipv"),
    ("street", "location", "name: street"),
    ("billing_address", "location", "name: address"),
    ("zip", "location", "name: zip"),
    ("postcode", "location", "name: postcode"),
    ("date_of_birth", "identity", "name: birth"),
    ("dob", "identity", "name: dob"),
    ("ssn", "identity", "name: ssn"),
    ("iban", "financial", "name: iban"),
    ("card_number", "financial", "name: card"),
]
NOT_PERSONAL = ["id", "created_at", "domain_name", "product_name", "file_name", "table_name",
                "zipper", "shipment", "status", "amount", "description", "notes"]


@pytest.mark.parametrize(("name", "category", "because"), KNOWN)
def test_known_personal_names_are_found_with_their_category(name, category, because):
    """Each documented name pattern, case-insensitive and at word boundaries."""
    found = looks_personal(name)

    assert (category, because) == (found and (str(found.category), found.because))


@pytest.mark.parametrize("name", NOT_PERSONAL)
def test_names_that_only_contain_a_pattern_are_not_found(name):
    """``domain_name``, ``zipper``; and short text called notes is not free text."""
    assert None is looks_personal(name, type_name="VARCHAR(80)", kind=ColumnKind.TEXT, length=80)


def test_long_text_with_a_free_text_name_is_content():
    """``notes TEXT`` is free text; ``description VARCHAR(2000)`` too; ``status TEXT`` is not."""
    found = [looks_personal(n, type_name=t, kind=ColumnKind.TEXT, length=length)
             for n, t, length in (("notes", "TEXT", None),
                                  ("description", "VARCHAR(2000)", 2000),
                                  ("status", "TEXT", None))]

    assert ["free text: notes", "free text: description", None] == [
        g and g.because for g in found]


def test_postgresql_network_types_are_network_data():
    """``INET``, ``CIDR`` and ``MACADDR`` columns, whatever their names."""
    found = [looks_personal("peer", type_name=t) for t in ("INET", "cidr", "MACADDR")]

    assert [("network", "type: INET"), ("network", "type: CIDR"),
            ("network", "type: MACADDR")] == [(str(g.category), g.because) for g in found if g]


@given(st.text(max_size=60), st.text(max_size=20))
def test_any_name_and_type_give_a_guess_or_none(name, type_name):
    """No name or type, however strange, makes the heuristic fail."""
    found = looks_personal(name, type_name=type_name, kind=ColumnKind.TEXT)

    assert found is None or found.because


@given(st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=3),
       st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=3),
       st.sampled_from(["_", "-", " ", "__"]))
def test_an_email_word_anywhere_in_a_name_is_contact(before, after, joint):
    """Whatever words surround it, a name with the word ``email`` is contact data."""
    name = joint.join([*before, "email", *after])

    found = looks_personal(name)

    assert ("contact", "email" in words(name)) == (found and str(found.category), True)


def column(name, kind=ColumnKind.TEXT, type_name="VARCHAR(80)", length=80):
    """A reflected column."""
    return ColumnInfo(name, kind, type_name, nullable=True, length=length)


def table(name, *columns):
    """A reflected table with an ``id`` and a ``created_at``, and these columns."""
    found = {c.name: c for c in (column("id", ColumnKind.INTEGER, "INTEGER", None),
                                 column("created_at", ColumnKind.DATETIME, "DATETIME", None),
                                 *columns)}
    return TableSchema(name, found, ("id",))


POLICY = """\
subjects:
  customer: A customer
data_map:
  - store: app
    table: invoices
    subject: {customer: customer_id}
    personal: {billing_name: identity}
    erase: {keep: "business record: tax law"}
rules:
  - id: customers-old
    description: Old customers go.
    store: app
    table: customers
    age: {column: created_at, older_than: 5 years}
    action: {type: delete}
  - id: invoices-pseudonymized
    description: Invoices lose the email, not the name.
    store: app
    table: invoices
    age: {column: created_at, older_than: 1 year}
    action: {type: anonymize, columns: {email: {strategy: nullify}}}
  - id: invoices-off
    description: Disabled, so no promise.
    store: app
    table: invoices
    enabled: false
    age: {column: created_at, older_than: 1 year}
    action: {type: delete}
"""


@pytest.fixture
def policies(tmp_path):
    """The policy set above."""
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    return load_policies(tmp_path)


def test_what_covers_each_column(policies):
    """Rewrites cover their columns, disabled rules nothing, parents' rules their children.

    An exception to keep is an erasure mapping; retentiond's own tables are left out.
    """
    schemas = {"app": [table("invoices", column("billing_name"), column("email")),
                       table("orders", column("shipping_address")),
                       table("retentiond_batches", column("email"))]}

    found = coverage(policies, schemas, {("app", "orders"): [("customers-old", True)]})

    assert [("invoices", "billing_name", Promise.NO, (), "keep: business record: tax law"),
            ("invoices", "email", Promise.YES, ("invoices-pseudonymized",),
             "keep: business record: tax law"),
            ("orders", "shipping_address", Promise.PARTLY,
             ("customers-old (with its parent, where)",), None)] == [
        (t.table, c.column, c.retention, c.rules, c.erasure)
        for t in found.tables for c in t.columns]
