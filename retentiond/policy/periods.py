"""Human retention periods ("12 months", "1 year 6 months", "30 days") and their cutoffs.

Months and years are calendar units: twelve months before 2025-02-28 is 2024-02-28, and one
month before 31 March is the last day of February.  The arithmetic happens on the wall clock
of the rule's timezone, so "30 days" in Europe/Berlin means thirty local calendar days even
across a daylight-saving change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta
from pydantic import BeforeValidator, PlainSerializer

_UNITS = {
    "minute": "minutes",
    "hour": "hours",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "year": "years",
}
_PART = re.compile(r"(\d+)\s*([a-z]+)")
_GLUE = re.compile(r"^(\s*,?\s*(and\s+)?)?$")
"""What may stand between two parts: spaces, a comma, 'and'."""


MAX_YEARS = 1000
"""The longest period a rule or retention may give (counted back, it stays in the calendar)."""
_LONGEST_ZONE = 64
"""Longer than any IANA zone name (the longest are about 30 characters)."""
_SHOWN = 40


@dataclass(frozen=True, order=False)
class Period:
    """A calendar period: years, months, weeks, days, hours and minutes, never negative."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0

    @classmethod
    def parse(cls, text: str) -> Period:
        """Parse ``"12 months"``, ``"1 year 6 months"``, ``"30 days"``; ValueError otherwise."""
        cleaned = text.strip().lower()
        hint = "write a number and a unit, e.g. '30 days', '12 months' or '1 year 6 months'"
        matches = list(_PART.finditer(cleaned))
        if not matches:
            raise ValueError(f"{text!r} is not a period; {hint}")
        gaps = [cleaned[: matches[0].start()], cleaned[matches[-1].end():]]
        gaps += [cleaned[a.end(): b.start()] for a, b in pairwise(matches)]
        if gaps[0] or gaps[1] or any(not gap or not _GLUE.match(gap) for gap in gaps[2:]):
            raise ValueError(f"{text!r} is not a period; {hint}")
        amounts: dict[str, int] = {}
        for match in matches:
            number, word = match.groups()
            field = _UNITS.get(word.removesuffix("s"))
            if field is None:
                raise ValueError(
                    f"unknown unit {word!r} in {text!r}; use minutes, hours, days, weeks, "
                    "months or years",
                )
            if field in amounts:
                raise ValueError(f"{field} given twice in {text!r}; give each unit once")
            amounts[field] = int(number)
        period = cls(**amounts)
        if period.is_zero():
            raise ValueError(f"{text!r} is a zero period; a retention period must be positive")
        if period.approx_days() > MAX_YEARS * 365.25:
            # Counted back from today, a longer period leaves the calendar (before year 1).
            raise ValueError(f"{_shown(text)} is longer than {MAX_YEARS} years; write a "
                             "period of at most that, or keep the records with a hold")
        return period

    def is_zero(self) -> bool:
        """Whether every unit is zero."""
        return not any((self.years, self.months, self.weeks, self.days, self.hours, self.minutes))

    def as_relativedelta(self) -> relativedelta:
        """The period as a dateutil relativedelta (calendar-correct month and year steps)."""
        return relativedelta(
            years=self.years,
            months=self.months,
            weeks=self.weeks,
            days=self.days,
            hours=self.hours,
            minutes=self.minutes,
        )

    def before(self, moment: datetime) -> datetime:
        """The moment this period before ``moment``, computed on ``moment``'s own wall clock."""
        return moment - self.as_relativedelta()

    def approx_days(self) -> float:
        """A rough length for ordering and display only, never for selecting records."""
        return (
            self.years * 365.25
            + self.months * 30.44
            + self.weeks * 7
            + self.days
            + self.hours / 24
            + self.minutes / 1440
        )

    def __str__(self) -> str:
        parts = []
        for field in ("years", "months", "weeks", "days", "hours", "minutes"):
            amount = getattr(self, field)
            if amount:
                unit = field if amount != 1 else field[:-1]
                parts.append(f"{amount} {unit}")
        return " ".join(parts)


def zone(name: str) -> ZoneInfo:
    """The IANA timezone ``name``; raise ValueError with a fix when it does not exist."""
    unknown = ValueError(f"unknown timezone {_shown(name)}; use an IANA name such as 'UTC' "
                         "or 'Europe/Berlin'")
    if len(name) > _LONGEST_ZONE:
        raise unknown
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: no such file name
        raise unknown from exc


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut short when it is long (a message is one line)."""
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "..."


@dataclass(frozen=True)
class Cutoff:
    """The moment before which (inclusive) a record's age column makes it due.

    ``local`` is the cutoff on the rule's wall clock (compared with naive datetime columns,
    which hold local times), ``aware`` the same instant with its offset (compared with
    timezone-aware columns), ``day`` the calendar date (compared with DATE columns).
    """

    local: datetime
    aware: datetime
    day: date


def cutoff(period: Period, as_of: datetime, timezone: str) -> Cutoff:
    """The cutoff of ``period`` measured back from ``as_of`` on ``timezone``'s calendar."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    tz = zone(timezone)
    wall = as_of.astimezone(tz).replace(tzinfo=None)
    local = period.before(wall)
    # Of the two readings of a wall time that falls in a DST gap or overlap, take the earlier
    # instant: an earlier cutoff selects fewer records, so doubt keeps the record.
    aware = min(local.replace(tzinfo=tz, fold=0), local.replace(tzinfo=tz, fold=1),
                key=lambda moment: moment.astimezone(UTC))
    return Cutoff(local=local, aware=aware, day=local.date())


def utc_now() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(tz=UTC)



def _parse_period(value: object) -> object:
    return Period.parse(value) if isinstance(value, str) else value


PeriodField = Annotated[
    Period, BeforeValidator(_parse_period), PlainSerializer(str, return_type=str),
]
"""A period written in words in YAML (``12 months``), parsed calendar-correctly."""
