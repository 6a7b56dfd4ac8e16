"""Crontab expressions as people write them, read the way crontab reads them.

APScheduler 3 takes day-of-week numbers as 0 = Monday, while crontab has 0 (and 7) =
Sunday; a rule written ``0 3 * * 1`` must run on Mondays, so numbers become names first.
"""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_days(field: str) -> str:
    """A crontab day-of-week field with numbers turned into names.

    In crontab 0 and 7 are Sunday; APScheduler 3 reads numbers as 0 = Monday, so numbers are
    never handed to it.  Names mean the same to both.
    """
    if not any(ch.isdigit() for ch in field):
        return field
    days: set[int] = set()
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            start, end = span.split("-", 1)
            low, high = _day(start), _day(end)
        else:
            low = high = _day(span)
        if high < low:
            raise ValueError(f"day range {span!r} runs backwards")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_DAYS[day] for day in sorted(days))


def _day(text: str) -> int:
    if text.isdigit():
        number = int(text)
        if not 0 <= number <= 7:  # noqa: PLR2004 - crontab allows 0-7
            raise ValueError(f"day of week {number} is not 0-7")
        return number
    if text.lower() in _DAYS:
        return _DAYS.index(text.lower())
    raise ValueError(f"{text!r} is not a day of the week")


def crontab(expression: str, timezone: str = "UTC") -> CronTrigger:
    """A five-field crontab expression as a trigger, with crontab's weekday numbering."""
    fields = expression.split()
    if len(fields) != 5:  # noqa: PLR2004 - minute hour day month weekday
        raise ValueError(f"{expression!r} has {len(fields)} fields, not 5")
    minute, hour, day, month, weekday = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_cron_days(weekday), timezone=timezone)
