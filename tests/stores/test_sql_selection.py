"""Census, keys and referencing counts of a selection, on every backend."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from retentiond.errors import StoreError
from retentiond.policy.filters import AllOf, AnyOf, Condition, NotOf
from retentiond.policy.periods import Cutoff
from retentiond.stores.base import AgeBound, Census, Guard, Reach, Reached, Selection

STAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}


def wall(*parts):
    """A naive wall-clock time, as naive DATETIME columns hold them."""
    return datetime(*parts)  # noqa: DTZ001 - naive on purpose: the columns are naive


CUTOFF_AT = wall(2024, 1, 1)
CUTOFF = Cutoff(local=CUTOFF_AT, aware=CUTOFF_AT.replace(tzinfo=UTC), day=CUTOFF_AT.date())

EVENTS = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    created_at {stamp},
    status VARCHAR(10),
    region VARCHAR(10),
    kind VARCHAR(10) NOT NULL,
    invoiced_on DATE
)
"""


def _row(values):
    id_, created, status, region, kind, invoiced_on = (*values, None)[:6]
    created_at = datetime.fromisoformat(created) if created else None
    invoiced = date.fromisoformat(invoiced_on) if invoiced_on else None
    return {
        "id": id_,
        "created_at": created_at,
        "status": status,
        "region": region,
        "kind": kind,
        "invoiced_on": invoiced,
    }


# Cutoff 2024-01-01 00:00.  Filter: status in (closed, disputed).
ROWS = [
    _row((1, "2023-06-01", "closed", "eu", "ticket")),  # matched, held (eu)
    _row((2, "2023-06-01", "closed", "us", "invoice", "2023-12-01")),  # eligible: invoice expired
    _row((3, "2023-12-31", "closed", None, "ticket")),  # held: NULL region, in doubt
    _row((4, "2024-01-01 00:00", "closed", "us", "ticket")),  # eligible: exactly at the cutoff
    _row((5, "2024-02-01", "closed", "eu", "ticket")),  # too young
    _row((6, None, "closed", "eu", "ticket")),  # no age
    _row((7, "2023-01-01", "open", "eu", "ticket")),  # filtered out
    _row((8, "2023-01-01", None, "us", "ticket")),  # filter is NULL: not selected
    _row((9, "2023-03-01", "disputed", "us", "invoice", "2024-06-01")),  # held and retained
    _row((10, "2023-03-01", "disputed", "eu", "invoice")),  # held twice, retained (NULL date)
    _row((11, "2023-05-05", "closed", "us", "invoice", "2024-03-01")),  # protected by retention
    _row((12, None, "disputed", "us", "ticket")),  # no age
    _row((13, "2022-01-01", "closed", "us", "ticket")),  # eligible
    _row((14, "2022-01-01", "closed", "us", "invoice", "2022-06-01")),  # eligible
]

CLOSED = Condition(column="status", value="closed")
OPEN = Condition(column="status", value="open")
CLOSED_OR_DISPUTED = Condition(column="status", op="in", value=["closed", "disputed"])
HOLD_EU = Guard("hold", "h-eu", where=Condition(column="region", value="eu"))
HOLD_DISPUTED = Guard("hold", "h-disputed", where=Condition(column="status", value="disputed"))
KEEP_INVOICES = Guard(
    "retention",
    "r-invoices",
    where=Condition(column="kind", value="invoice"),
    age=AgeBound("invoiced_on", CUTOFF),
)


def _selection(where=CLOSED_OR_DISPUTED, guards=()):
    return Selection("events", AgeBound("created_at", CUTOFF), where=where, guards=guards)


@pytest.fixture
def events(db):
    """The events table above, filled."""
    db.run(EVENTS.format(stamp=STAMP[db.kind]))
    db.insert("events", ROWS)


@pytest.mark.usefixtures("events")
def test_census_counts_holds_retentions_and_null_ages(sql_store):
    """Held, protected, eligible and NULL-age rows add up; overlapping guards count once."""
    selection = _selection(guards=(HOLD_EU, HOLD_DISPUTED, KEEP_INVOICES))
    expected = Census(
        population=14,
        matched=9,
        null_age=2,
        held=4,
        protected=1,
        eligible=4,
        by_guard={"h-eu": 3, "h-disputed": 2, "r-invoices": 3},
    )

    with sql_store.reader() as reader:
        assert expected == reader.census(selection)


@pytest.mark.usefixtures("events")
def test_whole_table_hold_holds_every_matched_row(sql_store):
    """A hold without a filter holds every matched row; nothing is eligible."""
    selection = _selection(guards=(Guard("hold", "h-all"), KEEP_INVOICES))
    expected = Census(
        population=14,
        matched=9,
        null_age=2,
        held=9,
        protected=0,
        eligible=0,
        by_guard={"h-all": 9, "r-invoices": 3},
    )

    with sql_store.reader() as reader:
        assert expected == reader.census(selection)


@pytest.mark.usefixtures("events")
def test_census_without_guards_makes_every_matched_row_eligible(sql_store):
    """With no guard, eligible equals matched."""
    expected = Census(population=14, matched=9, null_age=2, held=0, protected=0, eligible=9)

    with sql_store.reader() as reader:
        assert expected == reader.census(_selection())


@pytest.mark.usefixtures("events")
def test_keys_are_the_eligible_rows(sql_store):
    """keys() returns exactly the rows the census calls eligible, as tuples in key order."""
    selection = _selection(guards=(HOLD_EU, HOLD_DISPUTED, KEEP_INVOICES))

    with sql_store.reader() as reader:
        assert [(2,), (4,), (13,), (14,)] == reader.keys(selection, after=None, limit=100)


def test_a_null_in_a_retentions_filter_protects(db, sql_store):
    """A retention whose filter is NULL for a row protects that row (doubt keeps it)."""
    db.run(EVENTS.format(stamp=STAMP[db.kind]).replace("NOT NULL", ""))
    db.insert(
        "events",
        [
            _row((1, "2023-01-01", "closed", "us", None)),
            _row((2, "2023-01-01", "closed", "us", "ticket")),
        ],
    )
    selection = _selection(guards=(KEEP_INVOICES,))

    with sql_store.reader() as reader:
        actual = (reader.census(selection).protected, reader.keys(selection, after=None, limit=9))

    assert (1, [(2,)]) == actual


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (Condition(column="status", op="eq", value="closed"), [1, 2, 3, 4, 11, 13, 14]),
        (Condition(column="status", op="ne", value="closed"), [7, 9, 10]),
        (Condition(column="invoiced_on", op="lt", value=date(2023, 12, 1)), [14]),
        (Condition(column="invoiced_on", op="le", value=date(2023, 12, 1)), [2, 14]),
        (Condition(column="invoiced_on", op="gt", value=date(2023, 12, 1)), [9, 11]),
        (Condition(column="invoiced_on", op="ge", value=date(2023, 12, 1)), [2, 9, 11]),
        (Condition(column="invoiced_on", op="le", value="2023-12-01"), [2, 14]),
        (Condition(column="created_at", op="lt", value=wall(2023, 1, 1)), [13, 14]),
        (Condition(column="status", op="in", value=["open", "disputed"]), [7, 9, 10]),
        (Condition(column="status", op="not_in", value=["closed"]), [7, 9, 10]),
        (Condition(column="region", op="is_null"), [3]),
        (Condition(column="region", op="not_null"), [1, 2, 4, 7, 8, 9, 10, 11, 13, 14]),
        (Condition(column="status", op="like", value="dis%"), [9, 10]),
        (AllOf(all=[CLOSED, Condition(column="region", value="us")]), [2, 4, 11, 13, 14]),
        (AnyOf(any=[OPEN, Condition(column="region", value="eu")]), [1, 7, 10]),
        (NotOf(not_=Condition(column="region", value="eu")), [2, 4, 8, 9, 11, 13, 14]),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
@pytest.mark.usefixtures("events")
def test_filter_operators_select_what_they_say(sql_store, where, expected):
    """Each filter operator selects the rows it names; a NULL comparison never selects."""
    with sql_store.reader() as reader:
        keys = reader.keys(_selection(where=where), after=None, limit=100)

    assert expected == [key[0] for key in keys]


@pytest.mark.usefixtures("events")
def test_unknown_column_is_a_store_error(sql_store):
    """A selection naming a column the table lacks raises StoreError, not a database error."""
    selection = _selection(where=Condition(column="nope", value=1))

    with sql_store.reader() as reader, pytest.raises(StoreError) as caught:
        reader.census(selection)

    assert "table 'events' has no column 'nope'" in str(caught.value)


# -- keyset pagination over scattered ages --------------------------------------------------------

SCATTERED = 300
BASE = wall(2023, 9, 1)


def _scattered_age(n):
    # 7919 is prime to 300: every day offset appears once, in an order unrelated to the key.
    return BASE + timedelta(days=(n * 7919) % SCATTERED) if n % 13 else None


def test_keys_walk_single_keys_in_batches_across_the_whole_selection(db, sql_store):
    """Batches follow the key strictly upward and together are exactly the eligible set."""
    db.run(EVENTS.format(stamp=STAMP[db.kind]))
    regions = ["eu", "us", None, "us"]
    rows = [
        {"id": n, "created_at": _scattered_age(n), "region": regions[n % 4], "kind": "ticket"}
        for n in range(1, SCATTERED + 1)
    ]
    db.insert("events", rows)
    selection = _selection(where=None, guards=(HOLD_EU,))
    expected = [
        (row["id"],)
        for row in rows
        if row["created_at"] is not None
        and row["created_at"] <= CUTOFF_AT
        and row["region"] == "us"
    ]

    batches = _walk(sql_store, selection, limit=7)

    assert (expected, True) == (
        [key for batch in batches for key in batch],
        all(len(batch) == 7 for batch in batches[:-1]),
    )


def test_keys_walk_composite_keys_in_batches(db, sql_store):
    """A composite primary key is walked as a tuple, across the boundaries of its first column."""
    db.run(
        "CREATE TABLE visits (tenant INTEGER NOT NULL, seq INTEGER NOT NULL,"
        f" seen_at {STAMP[db.kind]}, PRIMARY KEY (tenant, seq))",
    )
    rows = [
        {"tenant": t, "seq": s, "seen_at": _scattered_age(t * 25 + s)}
        for t in range(12)
        for s in range(25)
    ]
    db.insert("visits", rows)
    selection = Selection("visits", AgeBound("seen_at", CUTOFF))
    expected = sorted(
        (row["tenant"], row["seq"])
        for row in rows
        if row["seen_at"] is not None and row["seen_at"] <= CUTOFF_AT
    )

    batches = _walk(sql_store, selection, limit=11)

    assert expected == [key for batch in batches for key in batch]


@pytest.mark.usefixtures("events")
def test_walk_keys_yields_the_same_batches_as_keys(sql_store):
    """Store.walk_keys pages through one reader with keys()."""
    selection = _selection()

    batches = list(sql_store.walk_keys(selection, batch_size=2))

    assert [[(1,), (2,)], [(3,), (4,)], [(9,), (10,)], [(11,), (13,)], [(14,)]] == batches


def test_keys_need_a_primary_key(db, sql_store):
    """keys() on a table without a primary key raises StoreError naming the table."""
    db.run(f"CREATE TABLE loose (seen_at {STAMP[db.kind]})")
    selection = Selection("loose", AgeBound("seen_at", CUTOFF))

    with sql_store.reader() as reader, pytest.raises(StoreError) as caught:
        reader.keys(selection, after=None, limit=10)

    assert "table 'loose' has no primary key" in str(caught.value)


def _walk(store, selection, *, limit):
    batches = []
    with store.reader() as reader:
        after = None
        while batch := reader.keys(selection, after=after, limit=limit):
            batches.append(batch)
            after = batch[-1]
    return batches


# -- rows referencing the selection ---------------------------------------------------------------


def test_reached_counts_children_of_eligible_rows(db, sql_store):
    """Children of eligible parents are counted; children of held or young parents are not."""
    stamp = STAMP[db.kind]
    db.run(
        f"CREATE TABLE customers (id INTEGER PRIMARY KEY, closed_at {stamp})",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER,"
        " CONSTRAINT fk_orders FOREIGN KEY (customer_id) REFERENCES customers (id))",
        "CREATE TABLE accounts (tenant INTEGER NOT NULL, seq INTEGER NOT NULL,"
        f" closed_at {stamp}, PRIMARY KEY (tenant, seq))",
        "CREATE TABLE logins (id INTEGER PRIMARY KEY, tenant INTEGER, seq INTEGER, CONSTRAINT"
        " fk_logins FOREIGN KEY (tenant, seq) REFERENCES accounts (tenant, seq))",
    )
    old, new = wall(2023, 1, 1), wall(2024, 6, 1)
    db.insert(
        "customers",
        [
            {"id": 1, "closed_at": old},
            {"id": 2, "closed_at": old},
            {"id": 3, "closed_at": new},
            {"id": 4, "closed_at": None},
            {"id": 5, "closed_at": old},  # held below
            {"id": 6, "closed_at": old},
        ],
    )
    owners = [1, 1, 2, 3, 4, 5, 5, None, 6]
    db.insert("orders", [{"id": i, "customer_id": c} for i, c in enumerate(owners, start=1)])
    db.insert(
        "accounts",
        [
            {"tenant": 1, "seq": 1, "closed_at": old},
            {"tenant": 1, "seq": 2, "closed_at": new},
            {"tenant": 2, "seq": 1, "closed_at": old},
        ],
    )
    logins = [(1, 1), (1, 1), (1, 2), (2, 1), (2, 1), (None, None)]
    db.insert(
        "logins",
        [{"id": i, "tenant": t, "seq": s} for i, (t, s) in enumerate(logins, start=1)],
    )
    customers = Selection(
        "customers",
        AgeBound("closed_at", CUTOFF),
        guards=(Guard("hold", "h-5", where=Condition(column="id", value=5)),),
    )
    accounts = Selection("accounts", AgeBound("closed_at", CUTOFF))
    orders_fk = sql_store.schema("customers").referenced_by[0]
    logins_fk = sql_store.schema("accounts").referenced_by[0]

    with sql_store.reader() as reader:
        actual = (
            reader.reached(customers, [Reach((orders_fk,), "cascade")]),
            reader.reached(accounts, [Reach((logins_fk,), "set null")]),
        )

    assert ((Reached("orders", "delete", 4, 9, ("cascade",)),),
            (Reached("logins", "set null", 4, 6, ("set null",)),)) == actual


def test_age_bound_compares_on_the_columns_own_kind(db, sql_store):
    """DATE compares with the day, timestamptz with the instant, naive times with the wall clock.

    The cutoff is midnight in Berlin (23:00 UTC).  Only PostgreSQL has an aware column type, so
    only there does 23:30 UTC fall after the cutoff.
    """
    aware = db.kind == "postgresql"
    db.run(
        f"CREATE TABLE stamps (id INTEGER PRIMARY KEY, d DATE, ts {STAMP[db.kind]},"
        f" tz {'TIMESTAMPTZ' if aware else STAMP[db.kind]})",
    )

    def instant(hour, minute):
        moment = datetime(2023, 12, 31, hour, minute, tzinfo=UTC)
        return moment if aware else moment.replace(tzinfo=None)

    db.insert(
        "stamps",
        [
            {"id": 1, "d": date(2024, 1, 1), "ts": wall(2024, 1, 1), "tz": instant(23, 30)},
            {"id": 2, "d": date(2024, 1, 2), "ts": wall(2024, 1, 1, 0, 1), "tz": instant(22, 30)},
        ],
    )
    midnight = wall(2024, 1, 1)
    berlin = Cutoff(midnight, midnight.replace(tzinfo=ZoneInfo("Europe/Berlin")), midnight.date())

    due = {}
    with sql_store.reader() as reader:
        for column in ("d", "ts", "tz"):
            selection = Selection("stamps", AgeBound(column, berlin))
            due[column] = [key[0] for key in reader.keys(selection, after=None, limit=9)]

    assert {"d": [1], "ts": [1], "tz": [2] if aware else [1, 2]} == due
