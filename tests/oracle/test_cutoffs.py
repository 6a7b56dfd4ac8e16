"""The oracle's own calendar agrees with retentiond.policy.periods and the documented cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle_kit import ZONES, examples

from retentiond.policy import oracle
from retentiond.policy.filters import AllOf, AnyOf, Condition, NotOf
from retentiond.policy.periods import Period, cutoff


def local(*parts: int) -> datetime:
    """A naive wall-clock time, as a cutoff's ``local`` reads."""
    return datetime(*parts)  # noqa: DTZ001 - naive on purpose


@pytest.mark.parametrize(
    ("period", "as_of", "expected"),
    [
        (Period(months=12), datetime(2026, 3, 31, 12, tzinfo=UTC), local(2025, 3, 31, 12)),
        (Period(years=1), datetime(2024, 2, 29, 12, tzinfo=UTC), local(2023, 2, 28, 12)),
        (Period(months=1), datetime(2026, 3, 31, tzinfo=UTC), local(2026, 2, 28)),
        (Period(months=12), datetime(2025, 2, 28, tzinfo=UTC), local(2024, 2, 28)),
        (Period(months=1, days=1), datetime(2026, 3, 31, tzinfo=UTC), local(2026, 2, 27)),
    ],
)
def test_calendar_months_end_on_the_last_day_a_month_has(period, as_of, expected):
    """Months are calendar months; a day the earlier month lacks becomes its last day."""
    assert expected == oracle.moment_before(oracle.span_of(period), as_of, "UTC").local


def test_wall_clock_steps_cross_daylight_saving_in_local_days():
    """Days are local calendar days: 30 days before a summer noon in Berlin is a winter noon."""
    moment = oracle.moment_before(oracle.Span(days=30), datetime(2026, 4, 15, 10, tzinfo=UTC),
                                  "Europe/Berlin")

    assert (local(2026, 3, 16, 12), datetime(2026, 3, 16, 11, tzinfo=UTC)) == (
        moment.local, moment.aware.astimezone(UTC))


periods = st.builds(Period, years=st.integers(0, 3), months=st.integers(0, 25),
                    weeks=st.integers(0, 5), days=st.integers(0, 40), hours=st.integers(0, 30),
                    minutes=st.integers(0, 90)).filter(lambda p: not p.is_zero())
moments = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2037, 12, 31),  # noqa: DTZ001
                       timezones=st.just(UTC))


@examples(300)
@given(period=periods, as_of=moments, zone=st.sampled_from(ZONES))
def test_the_oracle_and_the_policy_compute_the_same_cutoff(period, as_of, zone):
    """Local time, instant and day of a cutoff are the same from both implementations."""
    mine = oracle.moment_before(oracle.span_of(period), as_of, zone)
    theirs = cutoff(period, as_of, zone)

    assert (mine.local, mine.aware, mine.day) == (theirs.local, theirs.aware, theirs.day)


ROW = {"n": None, "s": "ab", "m": 2}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (Condition(column="n", op="eq", value=1), None),
        (Condition(column="n", op="is_null"), True),
        (NotOf(**{"not": Condition(column="n", op="ne", value=1)}), None),
        (AllOf(all=[Condition(column="n", value=1), Condition(column="m", value=3)]), False),
        (AnyOf(any=[Condition(column="n", value=1), Condition(column="m", value=2)]), True),
        (AnyOf(any=[Condition(column="n", value=1), Condition(column="m", value=3)]), None),
        (Condition(column="s", op="like", value="a_"), True),
        (Condition(column="s", op="not_in", value=["x", "y"]), True),
        (Condition(column="n", op="not_in", value=[1]), None),
    ],
)
def test_filters_follow_three_valued_logic(where, expected):
    """A NULL makes a comparison unknown; AND, OR and NOT treat unknown as SQL does."""
    assert expected == oracle.evaluate(where, ROW)


def test_a_guard_whose_filter_is_unknown_protects():
    """Doubt keeps the record: a guard whose filter is NULL protects (a retention: if young)."""
    keep = oracle.Retain("keep", "t", "ts", oracle.moment_before(
        oracle.Span(years=1), datetime(2026, 1, 1, tzinfo=UTC), "UTC"),
        Condition(column="n", value=1))
    guards = oracle.Guards((oracle.Hold("hold", "t", Condition(column="n", value=1)),), (keep,))
    old = local(2020, 1, 1)

    assert (True, True, False, True, False) == (
        guards.held("t", ROW), keep.protects({**ROW, "ts": None}),
        keep.protects({**ROW, "ts": old}), keep.protects({**ROW, "n": 1, "ts": None}),
        keep.protects({**ROW, "n": 2, "ts": None}))


def test_dates_compare_with_the_cutoff_day():
    """A DATE age is due on or before the cutoff's calendar day."""
    moment = oracle.moment_before(oracle.Span(days=1), datetime(2026, 1, 2, 5, tzinfo=UTC), "UTC")

    assert (True, False) == (moment.reached_by(date(2026, 1, 1)),
                             moment.reached_by(date(2026, 1, 1) + timedelta(days=1)))
