"""The policy set as APScheduler 3.x jobs: one per rule, plus the quarantine purge.

Jobs coalesce (a backlog of missed runs runs once), never overlap (``max_instances=1``) and
tolerate a late start up to the misfire grace time.  A daemon that was down over a scheduled
time learns it from the ledger: the rule's last run is older than its last scheduled time, so
it runs once at start (:func:`missed`), not once per missed time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.interval import IntervalTrigger

from retentiond.policy.cron import crontab

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

    from retentiond.policy.model import Rule
    from retentiond.settings import Defaults


def trigger_for(rule: Rule, defaults: Defaults, *, anchor: datetime | None = None,
                ) -> BaseTrigger:
    """The rule's own schedule (cron or every), else the default cron schedule.

    An ``every`` schedule first fires one period after ``anchor`` (default: now), so rules of
    one period scheduled with one anchor fire on the same ticks.
    """
    schedule = rule.schedule
    if schedule is not None and schedule.every is not None:
        every = schedule.every
        period = timedelta(weeks=every.weeks, days=every.days, hours=every.hours,
                           minutes=every.minutes)
        return IntervalTrigger(weeks=every.weeks, days=every.days, hours=every.hours,
                               minutes=every.minutes, timezone=defaults.timezone,
                               start_date=None if anchor is None else anchor + period)
    cron = schedule.cron if schedule is not None and schedule.cron else defaults.schedule
    return crontab(cron, defaults.timezone)


def missed(trigger: BaseTrigger, last_run: datetime | None, now: datetime) -> bool:
    """Whether a scheduled time passed since ``last_run`` without a run (never run: no)."""
    if last_run is None:
        return False
    if isinstance(trigger, IntervalTrigger):
        # An interval trigger counts from when it was made; missed means an interval passed.
        return bool(last_run + trigger.interval <= now)
    following = trigger.get_next_fire_time(None, last_run + timedelta(microseconds=1))
    return following is not None and following <= now
