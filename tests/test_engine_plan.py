"""Engine.plan: exact counts of what a rule would do at a fixed moment, on every backend.

The events table holds naive UTC timestamps (``created_at``) and dates (``billed_on``).  With
the rule "delete after 12 months" and ``as_of`` 2026-03-15 12:00 UTC the cutoff is 2025-03-15
12:00; the comment on each row says where it stands.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from retentiond.policy.loader import load_policies
from retentiond.run.engine import Brakes, Engine
from retentiond.settings import Defaults
from retentiond.stores.registry import Stores
from retentiond.stores.sql import SqlStoreSettings
from retentiond.validation import validate_live

STAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}
AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def at(*parts):
    """A naive UTC wall-clock time, as the naive timestamp column holds it."""
    return datetime(*parts)  # noqa: DTZ001 - naive on purpose: the column is naive UTC


EVENTS = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER,
    kind VARCHAR(10) NOT NULL,
    created_at {stamp},
    billed_on DATE
)
"""
COLUMNS = ("id", "customer_id", "kind", "created_at", "billed_on")
ROWS = [
    (1, 10, "order", at(2024, 1, 10, 8, 0), date(2024, 1, 10)),  # due
    (2, 10, "refund", at(2024, 6, 1), date(2024, 6, 1)),  # due; under 2 years, over 18 months
    (3, 20, "order", at(2024, 2, 1), None),  # due; no billing date
    (4, 20, "refund", at(2025, 1, 1), date(2025, 1, 1)),  # due; under 18 months
    (5, 30, "order", at(2025, 6, 1), date(2025, 6, 1)),  # too young
    (6, 30, "refund", at(2023, 12, 31, 23, 59, 59), date(2023, 12, 31)),  # due; over 2 years
    (7, 40, "order", None, None),  # no age: never selected
    (8, 40, "order", at(2025, 3, 1), date(2025, 3, 1)),  # due, just
    (9, 20, "order", at(2026, 3, 1), date(2026, 3, 1)),  # too young
    (10, 50, "refund", at(2024, 11, 11, 11, 11, 11), date(2024, 11, 11)),  # due; under 18 months
]
"""Due at AS_OF: 1, 2, 3, 4, 6, 8, 10 (7 rows); too young: 5, 9; no age: 7."""

RULE_ID = "events-12-months"
RULE = f"""\
rules:
  - id: {RULE_ID}
    description: Events are deleted 12 months after they happen.
    store: app
    table: events
    age:
      column: created_at
      older_than: 12 months
    action:
      type: delete
"""


def hold(hold_id, where=None, expires=None):
    """One entry of ``holds:`` on the events table."""
    text = f"  - id: {hold_id}\n    reason: Hold {hold_id}.\n    store: app\n    table: events\n"
    if where is not None:
        text += f"    where: {where}\n"
    if expires is not None:
        text += f"    expires: {expires}\n"
    return text


def retention(retention_id, period, where, column="created_at"):
    """One entry of ``retain:`` on the events table."""
    return (f"  - id: {retention_id}\n    reason: Kept {period}.\n    store: app\n"
            f"    table: events\n    column: {column}\n    for: {period}\n    where: {where}\n")


def policy(*, holds=(), retentions=(), rule=RULE):
    """A policy file: ``rule`` plus the given holds and minimum retentions."""
    text = rule
    if holds:
        text += "holds:\n" + "".join(holds)
    if retentions:
        text += "retain:\n" + "".join(retentions)
    return text


def counts(plan):
    """(matched, held, protected, null_age, eligible) of a plan."""
    census = plan.census
    assert census is not None, plan.error
    return census.matched, census.held, census.protected, census.null_age, census.eligible


def keys(plan):
    """The sample keys of a plan as plain ids."""
    return [key[0] for key in plan.samples]


@pytest.fixture
def events(db):
    """The events table above, filled."""
    db.run(EVENTS.format(stamp=STAMP[db.kind]))
    db.insert("events", [dict(zip(COLUMNS, row, strict=True)) for row in ROWS])


@pytest.fixture
def engine_for(tmp_path, backend, make_store):
    """An Engine over a policy text, validated against the live ``app`` store first."""
    numbers = itertools.count()

    def engine_for(text, defaults=None):
        directory = tmp_path / f"policies-{next(numbers)}"
        directory.mkdir()
        (directory / "events.yaml").write_text(text, encoding="utf-8")
        policies = load_policies(directory)
        stores = Stores({"app": SqlStoreSettings(url=backend)},
                        lambda _name, settings: make_store(settings.url))
        assert [] == validate_live(policies, stores)
        return Engine(policies, stores, defaults or Defaults())

    return engine_for


@pytest.fixture
def plan(engine_for):
    """The plan of one rule of a policy text at AS_OF (or another ``as_of``)."""

    def plan(text, *, rule_id=RULE_ID, as_of=AS_OF, defaults=None, samples=5):
        engine = engine_for(text, defaults)
        return engine.plan(engine.policies.rule(rule_id), as_of=as_of, samples=samples)

    return plan


@pytest.mark.usefixtures("events")
def test_counts_without_guards(plan):
    """Without holds or retentions every due row is eligible; rows without age are counted apart."""
    result = plan(policy())

    assert ((7, 0, 0, 1, 7), 10, None) == (counts(result), result.census.population,
                                           result.error)
    assert datetime(2025, 3, 15, 12, 0, tzinfo=UTC) == result.cutoff


@pytest.mark.usefixtures("events")
def test_a_whole_table_hold_holds_everything(plan):
    """A hold without a filter holds every matched row: nothing is eligible."""
    result = plan(policy(holds=[hold("freeze")]))

    assert ((7, 7, 0, 1, 0), [("hold", "freeze", 7)], []) == (
        counts(result), [(g.kind, g.id, g.rows) for g in result.guards], keys(result))


@pytest.mark.usefixtures("events")
def test_a_filtered_hold_holds_exactly_its_customer(plan):
    """A hold on one customer holds that customer's due rows (3, 4) and no other."""
    result = plan(policy(holds=[hold("customer-20", "{column: customer_id, value: 20}")]))

    assert ((7, 2, 0, 1, 5), {"customer-20": 2}, [1, 2, 6, 8, 10]) == (
        counts(result), result.census.by_guard, keys(result))


@pytest.mark.usefixtures("events")
def test_holds_add_up(plan):
    """Two overlapping holds hold the union of their rows; each is counted on its own."""
    holds = [hold("customers", "{column: customer_id, op: in, value: [10, 20]}"),  # 1, 2, 3, 4
             hold("refunds", "{column: kind, value: refund}")]  # 2, 4, 6, 10

    result = plan(policy(holds=holds))

    assert ((7, 6, 0, 1, 1), [("hold", "customers", 4), ("hold", "refunds", 4)], [8]) == (
        counts(result), [(g.kind, g.id, g.rows) for g in result.guards], keys(result))


@pytest.mark.usefixtures("events")
def test_an_expired_hold_no_longer_holds(plan):
    """Holds that expired before as_of hold nothing; one expiring later, or that day, still holds.

    A date expiry holds through that whole day; a moment expiry ends at that instant.
    """
    holds = [
        hold("expired-yesterday", "{column: customer_id, value: 10}", "2026-03-14"),
        hold("expired-this-morning", "{column: customer_id, value: 30}",
             '"2026-03-15T11:59:59+00:00"'),
        hold("expires-tomorrow", "{column: customer_id, value: 20}", "2026-03-16"),  # 3, 4
        hold("expires-today", "{column: customer_id, value: 40}", "2026-03-15"),  # 8
    ]

    result = plan(policy(holds=holds))

    assert ((7, 3, 0, 1, 4), ["expires-tomorrow", "expires-today"], [1, 2, 6, 10]) == (
        counts(result), [g.id for g in result.guards], keys(result))


@pytest.mark.usefixtures("events")
def test_a_longer_minimum_retention_protects_the_rows_in_between(plan):
    """Refunds kept 2 years: due refunds younger than that (2, 4, 10) are protected, older not."""
    keep = retention("refunds-2-years", "2 years", "{column: kind, value: refund}")

    result = plan(policy(retentions=[keep]))

    assert ((7, 0, 3, 1, 4), [("retention", "refunds-2-years", 3)], [1, 3, 6, 8]) == (
        counts(result), [(g.kind, g.id, g.rows) for g in result.guards], keys(result))


@pytest.mark.usefixtures("events")
def test_of_two_retentions_the_longest_wins(plan):
    """18 months protects 4 and 10, 2 years also 2: the union, i.e. the longer one, is kept."""
    keep = [retention("refunds-18-months", "18 months", "{column: kind, value: refund}"),
            retention("refunds-2-years", "2 years", "{column: kind, value: refund}")]

    result = plan(policy(retentions=keep))

    assert ((7, 0, 3, 1, 4), {"refunds-18-months": 2, "refunds-2-years": 3}) == (
        counts(result), result.census.by_guard)


@pytest.mark.usefixtures("events")
def test_a_retention_measured_on_a_missing_date_keeps_the_record(plan):
    """Orders kept 2 years after billing: no billing date (3) protects, like a recent one (8)."""
    keep = retention("orders-2-years", "2 years", "{column: kind, value: order}",
                     column="billed_on")

    result = plan(policy(retentions=[keep]))

    assert ((7, 0, 2, 1, 5), [1, 2, 4, 6, 10]) == (counts(result), keys(result))


def test_a_null_in_a_holds_filter_column_is_held(db, events, plan):  # noqa: ARG001 - fills db
    """A row whose customer is NULL cannot be ruled out of a hold on one customer: it is held."""
    db.insert("events", [{"id": 11, "customer_id": None, "kind": "order",
                          "created_at": at(2024, 4, 4), "billed_on": None}])

    result = plan(policy(holds=[hold("customer-20", "{column: customer_id, value: 20}")]))

    assert ((8, 3, 0, 1, 5), 11, [1, 2, 6, 8, 10]) == (
        counts(result), result.census.population, keys(result))


def test_the_cutoff_is_calendar_correct_and_inclusive(db, events, plan):  # noqa: ARG001
    """12 months before 2024-02-29 12:00 is 2023-02-28 12:00, and a row exactly that old is due.

    The bound is inclusive (``age <= cutoff``): a timestamp at the cutoff is due, one second
    younger is not.  A DATE column is compared with the cutoff's calendar day, so a date on
    that day is due and the next day is not.  365 days back would have reached 2023-03-01.
    """
    db.run("DELETE FROM events")
    db.insert("events", [
        {"id": 1, "customer_id": 1, "kind": "order", "created_at": at(2023, 2, 28, 12, 0, 0),
         "billed_on": date(2023, 2, 28)},
        {"id": 2, "customer_id": 1, "kind": "order", "created_at": at(2023, 2, 28, 12, 0, 1),
         "billed_on": date(2023, 3, 1)},
        {"id": 3, "customer_id": 1, "kind": "order", "created_at": at(2023, 3, 1, 0, 0, 0),
         "billed_on": date(2023, 3, 1)},
    ])
    by_date = RULE.replace(RULE_ID, "events-by-billing").replace("column: created_at",
                                                                 "column: billed_on")
    text = RULE + by_date.removeprefix("rules:\n")
    as_of = datetime(2024, 2, 29, 12, 0, tzinfo=UTC)

    by_time = plan(text, as_of=as_of)
    by_day = plan(text, rule_id="events-by-billing", as_of=as_of)

    assert (datetime(2023, 2, 28, 12, 0, tzinfo=UTC), [1]) == (by_time.cutoff, keys(by_time))
    assert [1] == keys(by_day)


@pytest.mark.usefixtures("events")
def test_sample_keys_are_the_first_eligible_keys_in_key_order(plan):
    """Samples are the lowest eligible keys, in key order, whatever the ages; held rows skipped."""
    text = policy(holds=[hold("customer-10", "{column: customer_id, value: 10}")])

    three = plan(text, samples=3)
    none = plan(text, samples=0)

    assert ([3, 4, 6], []) == (keys(three), keys(none))


CHILDREN = {
    "notes": ("CASCADE", [1, 4, 4, 5, None]),
    "tags": ("SET NULL", [3, 9]),
    "locks": ("RESTRICT", [8, 8, 7, 6]),
}
"""Child tables of events: ON DELETE and the parent of each child row."""


@pytest.fixture
def children(db, events):  # noqa: ARG001 - the parents must exist first
    """The child tables above, filled."""
    for child, (on_delete, parents) in CHILDREN.items():
        db.run(f"CREATE TABLE {child} (id INTEGER PRIMARY KEY, event_id INTEGER, "
               f"CONSTRAINT fk_{child} FOREIGN KEY (event_id) REFERENCES events (id) "
               f"ON DELETE {on_delete})")
        db.insert(child, [{"id": n, "event_id": p} for n, p in enumerate(parents, start=1)])


HOLD_10 = hold("customer-10", "{column: customer_id, value: 10}")


@pytest.mark.usefixtures("children")
def test_a_delete_reports_what_it_does_to_children(plan):
    """Each table a removal reaches is reported with its effect and its distinct rows reached.

    Customer 10 (events 1, 2) is held.  With ``on_children: refuse`` the events that locks
    (RESTRICT) reference, 6 and 8, are blocked, so no lock is reached; of the eligible events
    3, 4 and 10, notes (CASCADE) reference 4 twice and tags (SET NULL) reference 3 once.
    """
    result = plan(policy(holds=[HOLD_10]))

    assert ((7, 2, 0, 1, 3), 2, [3, 4, 10]) == (counts(result), result.census.blocked,
                                                keys(result))
    assert [("notes", "delete", 2, 5), ("tags", "set null", 1, 2)] == [
        (r.table, r.effect, r.rows, r.population) for r in result.reached]
    assert [("hold", "customer-10", 2),
            ("blocker", "restricted by locks (via locks.event_id)", 2)] == [
        (g.kind, g.id, g.rows) for g in result.guards]


@pytest.mark.usefixtures("children")
def test_a_delete_of_children_first_reaches_restricting_children(plan):
    """With ``on_children: delete`` nothing is blocked: locks of events 6 and 8 are reached."""
    rule = RULE.replace("type: delete", "type: delete\n      on_children: delete")

    result = plan(policy(rule=rule, holds=[HOLD_10]))

    assert ((7, 2, 0, 1, 5), 0, [3, 4, 6, 8, 10]) == (counts(result), result.census.blocked,
                                                      keys(result))
    assert {"locks": 3, "notes": 2, "tags": 1} == {r.table: r.rows for r in result.reached}


@pytest.mark.usefixtures("children")
def test_a_held_child_blocks_its_parent(plan):
    """A hold on notes of event 4 keeps event 4: deleting it would cascade to held notes."""
    rule = RULE.replace("type: delete", "type: delete\n      on_children: delete")
    text = policy(rule=rule) + "holds:\n" + hold("note-hold", "{column: event_id, value: 4}",
                                                 ).replace("table: events", "table: notes")

    result = plan(text)

    assert ((7, 0, 0, 1, 6), 1, [1, 2, 3, 6, 8]) == (counts(result), result.census.blocked,
                                                     keys(result))


@pytest.mark.usefixtures("children")
def test_a_rule_that_rewrites_columns_has_no_effect_on_children(plan):
    """Anonymizing keeps the rows, so children are neither reached nor blocking."""
    rule = RULE.replace("type: delete", "type: anonymize\n      columns: {kind: {strategy: "
                                        "constant, value: gone}}")

    result = plan(policy(rule=rule, holds=[HOLD_10]))

    assert ((7, 2, 0, 1, 5), 0, ()) == (counts(result), result.census.blocked, result.reached)


BRAKE_CASES = {
    # case: (the rule's limits, the defaults) -> (brakes in force, the one that trips)
    "max-rows": ("{max_rows: 3}", Defaults(), Brakes(3, 50.0), ("max_rows", 3)),
    "max-percent": ("{max_percent: 50}", Defaults(max_rows=1000), Brakes(1000, 50.0),
                    ("max_percent", 50.0)),
    "exactly-at-both-limits": ("{max_rows: 7, max_percent: 70}", Defaults(), Brakes(7, 70.0),
                               None),
    "defaults-are-on": (None, Defaults(), Brakes(100_000, 50.0), ("max_percent", 50.0)),
    "default-max-rows": (None, Defaults(max_rows=5, max_percent=100), Brakes(5, 100.0),
                         ("max_rows", 5)),
    "unset-limit-from-defaults": ("{max_rows: 100}", Defaults(max_percent=60),
                                  Brakes(100, 60.0), ("max_percent", 60.0)),
}


@pytest.mark.usefixtures("events")
def test_brakes_stop_a_rule_that_would_act_on_too_much(plan):
    """7 of 10 rows eligible: a brake below that stops the rule and says by how much.

    The rule's limits apply, the defaults fill any it leaves unset (the brakes are never off),
    and at the limit itself nothing trips.  The cases share one database, to stay fast.
    """
    expected, found, stops = {}, {}, []
    for case, (limits, defaults, brakes, stop) in BRAKE_CASES.items():
        rule = RULE + (f"    limits: {limits}\n" if limits else "")
        result = plan(policy(rule=rule), defaults=defaults)
        stopped = result.stopped_by
        expected[case] = (brakes, stop)
        found[case] = (result.brakes, stopped and (stopped.limit, stopped.allowed))
        if stopped is not None:
            stops.append((stopped.rule, stopped.selected, stopped.population))

    assert expected == found
    assert [(RULE_ID, 7, 10)] * 5 == stops


ARCHIVE = "CREATE TABLE archive (id INTEGER PRIMARY KEY, created_at {stamp})"


def test_a_table_dropped_after_validation_fails_closed(db, events, engine_for):  # noqa: ARG001
    """A rule whose table vanished after validation gets a plan with an error, not an exception.

    The other rules are still planned.
    """
    db.run(ARCHIVE.format(stamp=STAMP[db.kind]))
    db.insert("archive", [{"id": 1, "created_at": at(2020, 1, 1)}])
    archive = RULE.replace(RULE_ID, "archive-12-months").replace("table: events",
                                                                 "table: archive")
    engine = engine_for(RULE + archive.removeprefix("rules:\n"))
    db.run("DROP TABLE events")

    plans = {plan.rule.id: plan for plan in engine.plan_all(as_of=AS_OF)}
    dropped, kept = plans[RULE_ID], plans["archive-12-months"]

    assert (RULE_ID, None, None, (), None) == (
        dropped.rule.id, dropped.census, dropped.stopped_by, dropped.samples, dropped.brakes)
    assert "events" in (dropped.error or "")
    assert ("archive-12-months", None, (1, 0, 0, 0, 1)) == (kept.rule.id, kept.error,
                                                           counts(kept))
