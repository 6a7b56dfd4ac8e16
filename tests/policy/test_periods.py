"""Retention periods in words, and the calendar-correct cutoffs they give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from retentiond.policy.model import Age
from retentiond.policy.periods import Period, cutoff

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12 months", Period(months=12)),
        ("1 year 6 months", Period(years=1, months=6)),
        ("1 year, 6 months", Period(years=1, months=6)),
        ("1 year and 6 months", Period(years=1, months=6)),
        ("30 days", Period(days=30)),
        ("2 weeks", Period(weeks=2)),
        ("1 week", Period(weeks=1)),
        ("1 day", Period(days=1)),
        ("1 days", Period(days=1)),
        ("2 year", Period(years=2)),
        ("12 Months", Period(months=12)),
        ("1 YEAR 2 DAYS", Period(years=1, days=2)),
        ("  30 days  ", Period(days=30)),
        ("12months", Period(months=12)),
        ("1 hour", Period(hours=1)),
        ("90 minutes", Period(minutes=90)),
        ("1 year 0 months", Period(years=1)),
    ],
)
def test_parse_accepts_numbers_with_units(text, expected):
    """A number and a unit, singular or plural, in any case, combined with spaces or commas."""
    assert expected == Period.parse(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is not a period"),
        ("   ", "is not a period"),
        ("0 days", "zero period"),
        ("0 days 0 months", "zero period"),
        ("12 monts", "unknown unit 'monts'"),
        ("months", "is not a period"),
        ("12", "is not a period"),
        ("-1 days", "is not a period"),
        ("1.5 years", "is not a period"),
        ("12 months ago", "is not a period"),
        ("12 months 3 months", "months given twice"),
    ],
)
def test_parse_rejects_what_is_not_a_positive_period(text, words):
    """Empty, zero, misspelt, unit-less, negative, fractional and repeated units are errors."""
    with pytest.raises(ValueError, match=r"period|unit|twice") as info:
        Period.parse(text)

    assert words in str(info.value)


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        ("1 year6 months", Period(years=1, months=6)),
        ("12 months3 days", Period(months=12, days=3)),
    ],
)
def test_parse_never_drops_part_of_the_text(text, whole):
    """Parts written without a space are read whole or rejected, never silently dropped."""
    try:
        actual = Period.parse(text)
    except ValueError:
        actual = whole  # refusing the text keeps the promise as well as reading it whole

    assert whole == actual


def test_str_round_trips_through_parse():
    """The words a period prints parse back to the same period."""
    period = Period(years=1, months=6, weeks=1, days=1, hours=2, minutes=30)

    assert "1 year 6 months 1 week 1 day 2 hours 30 minutes" == str(period)
    assert period == Period.parse(str(period))


def at_utc(*parts):
    """Return a UTC moment from year, month, day[, hour, minute]."""
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "as_of", "expected_day"),
    [
        ("12 months", at_utc(2025, 2, 28), "2024-02-28"),
        ("12 months", at_utc(2024, 2, 29), "2023-02-28"),
        ("1 year", at_utc(2024, 2, 29), "2023-02-28"),
        ("1 month", at_utc(2025, 3, 31), "2025-02-28"),
        ("1 month", at_utc(2024, 3, 31), "2024-02-29"),
        ("1 year 6 months", at_utc(2025, 8, 31), "2024-02-29"),
        ("30 days", at_utc(2025, 3, 1), "2025-01-30"),
        ("2 weeks", at_utc(2025, 1, 7), "2024-12-24"),
    ],
)
def test_cutoff_counts_calendar_months_and_years(period, as_of, expected_day):
    """Months and years step on the calendar and clamp to the month's last day."""
    actual = cutoff(Period.parse(period), as_of, "UTC")

    assert expected_day == actual.day.isoformat()
    assert f"{expected_day}T00:00:00" == actual.local.isoformat()


def test_cutoff_keeps_the_wall_clock_across_the_spring_dst_change():
    """Thirty days before a moment just after the March switch is the same local time of day."""
    as_of = datetime(2025, 4, 5, 12, 0, tzinfo=BERLIN)  # CEST, +02:00

    actual = cutoff(Period.parse("30 days"), as_of, "Europe/Berlin")

    assert "2025-03-06T12:00:00" == actual.local.isoformat()
    assert timedelta(hours=1) == actual.aware.utcoffset()  # CET on that day
    assert at_utc(2025, 3, 6, 11, 0) == actual.aware.astimezone(UTC)
    assert timedelta(days=30) - timedelta(hours=1) == as_of.astimezone(UTC) - actual.aware


def test_cutoff_in_an_ambiguous_autumn_hour_takes_the_earlier_instant():
    """A cutoff in the hour that happens twice uses its first occurrence: less is selected."""
    as_of = datetime(2025, 11, 25, 2, 30, tzinfo=BERLIN)

    actual = cutoff(Period.parse("30 days"), as_of, "Europe/Berlin")

    assert "2025-10-26T02:30:00" == actual.local.isoformat()
    assert at_utc(2025, 10, 26, 0, 30) == actual.aware.astimezone(UTC)


def test_cutoff_in_the_spring_gap_selects_nothing_the_wall_clock_keeps():
    """A record under 30 days old by any clock is not due when the cutoff falls in the DST gap."""
    as_of = datetime(2025, 4, 29, 2, 30, tzinfo=BERLIN)  # 30 days back is 02:30 on 30 March,
    record = datetime(2025, 3, 30, 3, 15, tzinfo=BERLIN)  # a wall-clock time that never existed

    actual = cutoff(Period.parse("30 days"), as_of, "Europe/Berlin")

    elapsed = as_of.astimezone(UTC) - record.astimezone(UTC)
    due_on_wall_clock = record.replace(tzinfo=None) <= actual.local
    due_by_instant = record.astimezone(UTC) <= actual.aware.astimezone(UTC)
    assert elapsed < timedelta(days=30)
    assert (False, False) == (due_on_wall_clock, due_by_instant)


@pytest.mark.parametrize(
    ("as_of", "timezone"),
    [
        (at_utc(2025, 6, 30, 23, 30), "Europe/Berlin"),
        (at_utc(2025, 4, 5, 10, 0), "Europe/Berlin"),
        (at_utc(2025, 1, 1, 3, 0), "America/New_York"),
        (at_utc(2024, 2, 29, 12, 0), "Asia/Kolkata"),
        (datetime(2025, 6, 1, 8, 0, tzinfo=BERLIN), "UTC"),
    ],
)
def test_cutoff_local_aware_and_day_agree(as_of, timezone):
    """``aware`` is ``local`` on the rule's zone, and ``day`` is its calendar date."""
    actual = cutoff(Period.parse("1 month"), as_of, timezone)

    assert ZoneInfo(timezone) == actual.aware.tzinfo
    assert actual.local == actual.aware.replace(tzinfo=None)
    assert actual.local == actual.aware.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    assert actual.local.date() == actual.day


def test_cutoff_day_is_on_the_rules_calendar_not_utc():
    """Late evening in UTC is already the next day in Berlin, and the day counts from there."""
    as_of = at_utc(2025, 6, 30, 23, 30)  # 2025-07-01 01:30 in Berlin

    in_berlin = cutoff(Period.parse("1 month"), as_of, "Europe/Berlin")
    in_utc = cutoff(Period.parse("1 month"), as_of, "UTC")

    assert ("2025-06-01", "2025-05-30") == (in_berlin.day.isoformat(), in_utc.day.isoformat())


def test_age_without_timezone_counts_in_utc():
    """A rule's age gives no timezone: the calendar is UTC, whatever zone ``as_of`` is in."""
    age = Age.model_validate({"column": "submitted_at", "older_than": "1 day"})
    as_of = datetime(2025, 3, 1, 0, 30, tzinfo=BERLIN)  # still 28 February in UTC

    actual = cutoff(age.older_than, as_of, age.timezone)

    assert "UTC" == age.timezone
    assert "2025-02-27T23:30:00" == actual.local.isoformat()
    assert at_utc(2025, 2, 27, 23, 30) == actual.aware.astimezone(UTC)


def test_cutoff_rejects_a_naive_as_of():
    """A moment without a timezone is refused rather than guessed."""
    with pytest.raises(ValueError, match="as_of must be timezone-aware"):
        cutoff(Period.parse("30 days"), datetime(2025, 1, 1), "UTC")  # noqa: DTZ001


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "", "../etc"])
def test_cutoff_rejects_an_unknown_timezone(timezone):
    """Only IANA zone names are accepted, and the error suggests one."""
    with pytest.raises(ValueError, match="unknown timezone") as info:
        cutoff(Period.parse("30 days"), at_utc(2025, 1, 1), timezone)

    assert "Europe/Berlin" in str(info.value)
