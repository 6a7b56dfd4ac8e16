"""enforce() with ``pseudonymize``: keyed pseudonyms that join across tables, stores and runs.

Rows created in 2024 are due; those created 2026-01-01 are too young; NULL ages are never due.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
import sqlalchemy as sa
from enforce_kit import KEY_A, KEY_B, Rig, at, reference_pseudonym, stamp

from retentiond.errors import StoreError
from retentiond.stores.sql import SqlStoreSettings

RULE = """\
  - id: {id}
    description: Contact details are pseudonymized after 12 months.
    store: {store}
    table: {table}
    age: {{column: created_at, older_than: 12 months}}
    action:
      type: pseudonymize
      columns: {columns}
"""
POLICY = "rules:\n" + "".join([
    RULE.format(id="customers-pseudonymize", store="app", table="customers",
                columns="{email: {domain: customer-email}, phone: {domain: phone}}"),
    RULE.format(id="orders-pseudonymize", store="app", table="orders",
                columns="{customer_email: {domain: customer-email}, contact: {domain: contact}}"),
    RULE.format(id="legacy-pseudonymize", store="legacy", table="legacy_users",
                columns="{email: {domain: customer-email}}"),
])
OLD, YOUNG = at(2024, 2, 1), at(2026, 1, 1)
PSEUDONYM = re.compile(r"^[a-z2-7]+$")


def members_rule(columns="{login: {domain: login, length: 16}}"):
    """A policy of one rule, ``members-pseudonymize``, over the ``members`` table."""
    return "rules:\n" + RULE.format(id="members-pseudonymize", store="app", table="members",
                                     columns=columns)


def pseudonym(domain, value, length=52, secret=KEY_A):
    """The expected pseudonym, from the documented formula."""
    return reference_pseudonym(secret, domain, value, length)


@pytest.fixture
def tables(db):
    """Customers and orders in the app store, filled."""
    db.run(f"CREATE TABLE customers (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)}, "
           f"email VARCHAR(255) UNIQUE, phone VARCHAR(20))",
           f"CREATE TABLE orders (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)}, "
           f"customer_email VARCHAR(100), contact VARCHAR(255))")
    db.insert("customers", [
        {"id": 1, "created_at": OLD, "email": "ann@example.com", "phone": "+4712345678"},
        {"id": 2, "created_at": OLD, "email": "bob@example.com", "phone": None},
        {"id": 3, "created_at": OLD, "email": None, "phone": "555"},
        {"id": 4, "created_at": YOUNG, "email": "cy@example.com", "phone": "556"},
        {"id": 5, "created_at": None, "email": "di@example.com", "phone": "557"},
    ])
    db.insert("orders", [
        {"id": n, "created_at": OLD if n < 10 else YOUNG,
         "customer_email": ["bob@example.com", "ann@example.com", None][n % 3],
         "contact": "ann@example.com"} for n in range(1, 11)
    ])
    return db


@pytest.fixture
def legacy(tmp_path):
    """A second store: a SQLite file of its own, whatever the backend."""
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE legacy_users (id INTEGER PRIMARY KEY, "
                           "created_at DATETIME, email VARCHAR(64))")
        connection.executemany("INSERT INTO legacy_users VALUES (?, ?, ?)",
                               [(1, "2024-02-01 00:00:00", "ann@example.com"),
                                (2, "2024-02-01 00:00:00", "cy@example.com")])
    connection.close()
    return path


@pytest.fixture
def setup(tables, legacy, rig, keyring):
    """The Rig over both stores (their tables made first), with keyring k1."""
    del tables
    return rig(POLICY, stores={"legacy": SqlStoreSettings(url=f"sqlite:///{legacy}")},
               keyring=keyring)


def legacy_rows(path):
    """Every row of the legacy table."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT id, email FROM legacy_users ORDER BY id").fetchall()
    connection.close()
    return rows


def test_values_become_lowercase_base32_of_the_computed_length(tables, setup: Rig):
    """Each value becomes its keyed pseudonym, as long as the column allows (at most 52)."""
    report = setup.run("customers-pseudonymize")

    assert [
        (1, pseudonym("customer-email", "ann@example.com"), pseudonym("phone", "+4712345678", 20)),
        (2, pseudonym("customer-email", "bob@example.com"), None),
        (3, None, pseudonym("phone", "555", 20)),
        (4, "cy@example.com", "556"),
        (5, "di@example.com", "557"),
    ] == [(r[0], r[2], r[3]) for r in tables.rows("customers")]
    assert (3, [1, 2, 3]) == (report.acted, setup.acted("customers-pseudonymize"))
    assert all(PSEUDONYM.match(r[2] or "x") and PSEUDONYM.match(r[3] or "x")
               for r in tables.rows("customers")[:3])


@pytest.mark.usefixtures("tables")
def test_the_outcome_names_the_key_and_each_columns_domain(setup: Rig):
    """The audit record says which key made the pseudonyms and with which domain and length."""
    setup.run("customers-pseudonymize")

    body = setup.outcomes("customers-pseudonymize")[0]
    assert ("k1", {"email": {"domain": "customer-email", "length": 52},
                   "phone": {"domain": "phone", "length": 20}}) == (body["key_id"],
                                                                    body["columns"])


def test_equal_values_join_across_tables_and_stores_in_one_domain(tables, legacy, setup: Rig):
    """ann@example.com gets one pseudonym in customers, orders and the other store's table."""
    for rule in ("customers-pseudonymize", "orders-pseudonymize", "legacy-pseudonymize"):
        setup.run(rule)

    ann = pseudonym("customer-email", "ann@example.com")
    customers = {r[0]: r[2] for r in tables.rows("customers")}
    orders = {r[0]: r[2] for r in tables.rows("orders")}
    assert ann == customers[1] == orders[1] == orders[4] == dict(legacy_rows(legacy))[1]
    assert customers[2] == orders[3]
    assert pseudonym("customer-email", "cy@example.com") == dict(legacy_rows(legacy))[2]


def test_domains_do_not_join(tables, setup: Rig):
    """The same value in another domain gets another pseudonym."""
    setup.run("orders-pseudonymize")

    first = tables.rows("orders")[0]
    assert (pseudonym("customer-email", "ann@example.com"),
            pseudonym("contact", "ann@example.com")) == (first[2], first[3])
    assert first[2] != first[3]


def test_another_key_gives_other_pseudonyms(tables, rig, other_keyring):
    """Under key k2 the same value in the same domain gets a different pseudonym."""
    setup: Rig = rig(POLICY.split("  - id: legacy")[0], keyring=other_keyring)

    setup.run("customers-pseudonymize")

    email = tables.rows("customers")[0][2]
    assert pseudonym("customer-email", "ann@example.com", secret=KEY_B) == email
    assert pseudonym("customer-email", "ann@example.com") != email
    assert "k2" == setup.outcomes()[0]["key_id"]


def test_pseudonyms_are_stable_across_runs_and_a_rerun_acts_on_nothing(tables, setup: Rig):
    """A second run changes nothing; rows added later get the pseudonyms earlier rows got."""
    setup.run("orders-pseudonymize")
    first = tables.rows("orders")
    batches = setup.batch_count()

    idle = setup.run("orders-pseudonymize")
    assert (0, batches, first) == (idle.acted, setup.batch_count(), tables.rows("orders"))
    tables.insert("orders", [{"id": 11, "created_at": OLD, "customer_email": "ann@example.com",
                              "contact": None}])

    later = setup.run("orders-pseudonymize")

    assert (1, [11]) == (later.acted, setup.acted(run_id=later.run_id))
    assert first[0][2] == tables.rows("orders")[10][2]


def test_every_personal_value_is_replaced_even_one_shaped_like_a_pseudonym(db, rig, keyring):
    """A short login that happens to be lowercase base32 ("jonathan") is pseudonymized too.

    The pending check recognizes pseudonyms by their shape only, so a real value of that
    shape would be taken for done and kept forever.
    """
    db.run(f"CREATE TABLE members (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)}, "
           f"login VARCHAR(8))")
    db.insert("members", [{"id": n, "created_at": OLD, "login": login}
                          for n, login in enumerate(["ann", "jonathan", "michelle"], start=1)])
    setup: Rig = rig(members_rule("{login: {domain: login}}"), keyring=keyring)

    setup.run("members-pseudonymize")

    assert [(1, pseudonym("login", "ann", 8)), (2, pseudonym("login", "jonathan", 8)),
            (3, pseudonym("login", "michelle", 8))] == [r[::2] for r in db.rows("members")]


@pytest.mark.parametrize("key", ["code VARCHAR(300) PRIMARY KEY",
                                 "code VARCHAR(20), n INTEGER, PRIMARY KEY (code, n)"],
                         ids=["text", "composite"])
def test_rows_with_text_and_composite_keys_are_recorded_once_done(db, rig, keyring, key):
    """The done record of each key matches the key the next run's claim looks up.

    A key longer than the done table's 255 characters is cut as the lookup cuts it.
    """
    db.run(f"CREATE TABLE members (created_at {stamp(db.kind)}, login VARCHAR(16), {key})")
    composite = "n INTEGER" in key
    codes = ["7", "007", "o'brien", "zoë", 'say "hi"'] + ([] if composite else ["x" * 300])
    db.insert("members", [{"code": code, **({"n": 1} if composite else {}),
                           "created_at": OLD, "login": f"user-{i}"}
                          for i, code in enumerate(codes)])
    setup: Rig = rig(members_rule(), keyring=keyring)

    first = setup.run("members-pseudonymize")
    again = setup.run("members-pseudonymize")

    assert (len(codes), 0) == (first.acted, again.acted)


def test_a_done_row_whose_value_lost_the_pseudonym_shape_is_pseudonymized_again(db, rig, keyring):
    """Done means recorded and still 16 lowercase base32 characters; any other value is new."""
    db.run(f"CREATE TABLE members (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)}, "
           f"login VARCHAR(20))")
    db.insert("members", [{"id": n, "created_at": OLD, "login": f"user-{n}"} for n in range(6)])
    setup: Rig = rig(members_rule(), keyring=keyring)
    setup.run("members-pseudonymize")
    done = pseudonym("login", "user-0", 16)
    rewritten = {1: done.upper(), 2: done[:15] + "1", 3: done[:15], 4: done + "a",
                 5: done[:15] + "é"}
    with db.engine.begin() as connection:
        for n, login in rewritten.items():
            connection.execute(sa.text("UPDATE members SET login = :login WHERE id = :n"),
                               {"login": login, "n": n})

    again = setup.run("members-pseudonymize")

    assert [1, 2, 3, 4, 5] == setup.acted(run_id=again.run_id)


REFUSING_KEY_9 = {
    # Made before retentiond makes it; key k is bit k & 31 of the row with word k >> 5.
    "integer": ("id INTEGER PRIMARY KEY",
                "CREATE TABLE retentiond_pseudonymized_bits (rule VARCHAR(80), word BIGINT, "
                "bits BIGINT NOT NULL, PRIMARY KEY (rule, word), CHECK ((bits & 512) = 0))"),
    # On a database server, text keys are recorded from a helper thread.
    "text": ("id VARCHAR(10) PRIMARY KEY",
             "CREATE TABLE retentiond_pseudonymized (rule VARCHAR(80), row_key VARCHAR(255), "
             "PRIMARY KEY (rule, row_key), CHECK (row_key <> 'k09'))"),
}


@pytest.mark.parametrize("kind", REFUSING_KEY_9)
def test_a_batch_whose_keys_cannot_be_recorded_is_rolled_back_whole(db, rig, keyring, kind):
    """A failure to record the done keys rolls the batch back whole, and the run stops.

    The done table refuses key 9, in the second batch of seven.
    """
    key, done = REFUSING_KEY_9[kind]
    db.run(f"CREATE TABLE members ({key}, created_at {stamp(db.kind)}, login VARCHAR(20))",
           done)
    keys = list(range(1, 13)) if kind == "integer" else [f"k{n:02}" for n in range(1, 13)]
    db.insert("members", [{"id": k, "created_at": OLD, "login": f"user-{n}"}
                          for n, k in enumerate(keys, start=1)])
    setup: Rig = rig(members_rule(), keyring=keyring)

    with pytest.raises(StoreError):
        setup.run("members-pseudonymize")

    logins = [row[2] for row in db.rows("members")]
    assert [pseudonym("login", f"user-{n}", 16) for n in range(1, 8)] == logins[:7]
    assert [f"user-{n}" for n in range(8, 13)] == logins[7:]
    assert (["applied", "rolled back"], keys[:7]) == (
        [body["status"] for body in setup.outcomes(status=None)], setup.acted())


KEYS = [-(2**62), -33, -32, -1, 0, 1, 31, 32, 33, 2**40 + 5, 2**62]
"""Integer keys recorded as bits (k & 31 of word k >> 5): negative, word edges, large."""


def test_integer_keys_are_recorded_one_bit_each(db, rig, keyring):
    """A re-run finds every done key, and only those.

    A real value shaped like a pseudonym, in the same 32-key word as done keys, is still
    pseudonymized.
    """
    db.run(f"CREATE TABLE members (id BIGINT PRIMARY KEY, created_at {stamp(db.kind)}, "
           f"login VARCHAR(20))")
    db.insert("members", [{"id": key, "created_at": OLD, "login": f"user{n}"}
                          for n, key in enumerate(KEYS)])
    setup: Rig = rig(members_rule(), keyring=keyring)
    setup.run("members-pseudonymize")
    # Keys 2, 30 and 34 share words with done keys; their logins look like pseudonyms.
    shaped = "abcdefghijklmnop"
    db.insert("members", [{"id": key, "created_at": OLD, "login": shaped} for key in (2, 30, 34)])

    again = setup.run("members-pseudonymize")

    assert [2, 30, 34] == setup.acted(run_id=again.run_id)
    assert {pseudonym("login", shaped, 16)} == {
        login for key, _, login in db.rows("members") if key in {2, 30, 34}}


def test_integer_keys_recorded_as_text_by_an_earlier_version_stay_done(db, rig, keyring):
    """Rows an earlier version recorded in the text table are not pseudonymized twice."""
    db.run(f"CREATE TABLE members (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)}, "
           f"login VARCHAR(20))",
           "CREATE TABLE retentiond_pseudonymized (rule VARCHAR(80), row_key VARCHAR(255), "
           "PRIMARY KEY (rule, row_key))")
    done = pseudonym("login", "user-1", 16)
    db.insert("members", [{"id": 1, "created_at": OLD, "login": done},
                          {"id": 2, "created_at": OLD, "login": done}])
    db.insert("retentiond_pseudonymized", [{"rule": "members-pseudonymize", "row_key": "1"}])
    setup: Rig = rig(members_rule(), keyring=keyring)

    report = setup.run("members-pseudonymize")

    assert [2] == setup.acted(run_id=report.run_id)
    assert [done, pseudonym("login", done, 16)] == [row[2] for row in db.rows("members")]
