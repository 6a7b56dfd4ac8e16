"""When rules run: triggers, catch-up after downtime, run windows.

The triggers, :func:`missed` and :class:`RunWindow` are tested in-process with the time passed
in.  The last test starts the real daemon after a (seeded) downtime and watches the ledger.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import pytest
from daemon_kit import RULE, make_site, policy, rule_yaml, seed_runs

from retentiond.daemon.triggers import missed, trigger_for
from retentiond.errors import ConfigError
from retentiond.ledger.chain import Kind
from retentiond.policy.model import Rule
from retentiond.settings import Defaults, RunWindow, load_settings

NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
"""A Sunday."""


def rule_with(schedule: dict[str, Any] | None) -> Rule:
    """A delete rule with ``schedule`` (None: none of its own)."""
    return Rule.model_validate({
        "id": RULE, "description": "Emails go after 12 months.", "store": "app",
        "table": "emails", "age": {"column": "made_at", "older_than": "12 months"},
        "action": {"type": "delete"}, "schedule": schedule})


def fires(schedule: dict[str, Any] | None, defaults: Defaults, after: datetime) -> datetime:
    """The first time the rule's trigger fires after ``after``."""
    following = trigger_for(rule_with(schedule), defaults).get_next_fire_time(None, after)
    assert following is not None
    return following.astimezone(UTC)


def utc(text: str) -> datetime:
    """A UTC datetime from ``YYYY-MM-DD HH:MM[:SS]``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- triggers ----------------------------------------------------------------------------------


def test_cron_schedule():
    """A rule's cron expression decides when it runs."""
    assert utc("2026-03-16 02:15") == fires({"cron": "15 2 * * *"}, Defaults(), NOW)


def test_cron_schedule_on_the_default_timezone():
    """Cron times are read on the clock of ``defaults.timezone``."""
    berlin = Defaults(timezone="Europe/Berlin")
    assert utc("2026-03-16 01:15") == fires({"cron": "15 2 * * *"}, berlin, NOW)


@pytest.mark.parametrize(("every", "interval"), [
    ("6 hours", timedelta(hours=6)),
    ("1 week 2 days", timedelta(days=9)),
    ("90 minutes", timedelta(minutes=90)),
])
def test_every_schedule(every, interval):
    """``every`` runs the rule again that long after its previous run."""
    trigger = trigger_for(rule_with({"every": every}), Defaults())
    assert interval == trigger.get_next_fire_time(NOW, NOW) - NOW


def test_default_schedule():
    """A rule without a schedule runs on ``defaults.schedule``."""
    assert utc("2026-03-15 03:00") == fires(None, Defaults(), utc("2026-03-14 12:00"))
    monthly = Defaults(schedule="30 4 1 * *")
    assert utc("2026-04-01 04:30") == fires(None, monthly, NOW)


@pytest.mark.parametrize(("cron", "expected"), [
    pytest.param("0 3 * * 0", utc("2026-03-22 03:00"), id="0-is-sunday"),
    pytest.param("0 3 * * 7", utc("2026-03-22 03:00"), id="7-is-sunday"),
    pytest.param("0 3 * * 1", utc("2026-03-16 03:00"), id="1-is-monday"),
    pytest.param("0 3 * * sun", utc("2026-03-22 03:00"), id="sun"),
    pytest.param("0 3 * * mon", utc("2026-03-16 03:00"), id="mon"),
])
def test_cron_day_of_week_counts_as_crontab_does(cron, expected):
    """Day-of-week numbers mean what crontab(5) says: 0 and 7 are Sunday, 1 is Monday."""
    assert expected == fires({"cron": cron}, Defaults(), NOW)


@pytest.mark.parametrize(("setting", "name"), [
    pytest.param('[defaults]\nschedule = "0 25 * * *"', "defaults.schedule", id="schedule"),
    pytest.param('[daemon]\npurge_schedule = "61 * * * *"', "daemon.purge_schedule",
                 id="purge_schedule"),
])
def test_a_schedule_setting_that_is_not_cron_is_a_config_error(tmp_path, monkeypatch, setting,
                                                               name):
    """A cron setting that cron cannot read is refused when settings load, naming the setting."""
    for variable in [v for v in os.environ if v.startswith("RETENTIOND_")]:
        monkeypatch.delenv(variable)
    config = tmp_path / "retentiond.toml"
    config.write_text(f'policy_dir = "{tmp_path}"\n{setting}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value).startswith(f"{config}: {name}: "), str(caught.value)


# -- catch-up ----------------------------------------------------------------------------------


DAILY = trigger_for(rule_with({"cron": "0 3 * * *"}), Defaults())


@pytest.mark.parametrize(("last_run", "now", "expected"), [
    pytest.param(utc("2026-03-13 03:00:05"), NOW, True, id="down-over-two-fire-times"),
    pytest.param(utc("2026-03-14 03:00:05"), NOW, True, id="down-over-one-fire-time"),
    pytest.param(utc("2026-03-14 02:59"), utc("2026-03-14 03:00"), True, id="fire-time-is-now"),
    pytest.param(utc("2026-03-15 03:00:05"), NOW, False, id="ran-at-the-last-fire-time"),
    pytest.param(utc("2026-03-14 02:59"), utc("2026-03-14 02:59:59"), False, id="not-yet-due"),
    pytest.param(None, NOW, False, id="never-run"),
])
def test_missed_on_cron(last_run, now, expected):
    """A cron rule missed a run when a fire time passed since its last run; never run: no."""
    assert expected == missed(DAILY, last_run, now)


@pytest.mark.parametrize(("ago", "expected"), [
    pytest.param(timedelta(hours=3), True, id="down-three-intervals"),
    pytest.param(timedelta(minutes=61), True, id="down-one-interval"),
    pytest.param(timedelta(minutes=20), False, id="within-the-interval"),
])
def test_missed_on_every(ago, expected):
    """An ``every`` rule missed a run when its interval has passed since its last run."""
    trigger = trigger_for(rule_with({"every": "1 hour"}), Defaults())
    now = datetime.now(tz=UTC)
    assert expected == missed(trigger, now - ago, now)


# -- run windows -------------------------------------------------------------------------------


OVERNIGHT = RunWindow(start=clock(22, 0), end=clock(4, 0), timezone="Europe/Berlin")
"""22:00 to 04:00 Berlin time: 21:00 to 03:00 UTC in winter, 20:00 to 02:00 in summer."""
NIGHT_NY = RunWindow(start=clock(1, 0), end=clock(5, 0), timezone="America/New_York")


@pytest.mark.parametrize(("window", "moment", "expected"), [
    pytest.param(OVERNIGHT, utc("2026-01-15 20:59"), False, id="before-opening"),
    pytest.param(OVERNIGHT, utc("2026-01-15 21:00"), True, id="at-opening"),
    pytest.param(OVERNIGHT, utc("2026-01-15 23:30"), True, id="before-midnight"),
    pytest.param(OVERNIGHT, utc("2026-01-16 02:59"), True, id="after-midnight"),
    pytest.param(OVERNIGHT, utc("2026-01-16 03:00"), False, id="at-closing"),
    pytest.param(OVERNIGHT, utc("2026-07-15 20:00"), True, id="summer-opening"),
    pytest.param(OVERNIGHT, utc("2026-07-16 02:30"), False, id="summer-after-closing"),
    pytest.param(NIGHT_NY, utc("2026-01-15 07:30"), True, id="new-york-02-30"),
    pytest.param(NIGHT_NY, utc("2026-01-15 10:00"), False, id="new-york-05-00"),
    pytest.param(NIGHT_NY, utc("2026-01-15 03:00"), False, id="new-york-22-00"),
])
def test_run_window_contains(window, moment, expected):
    """A window holds the moments from its start (inclusive) to its end, on its own clock."""
    assert expected == window.contains(moment)


@pytest.mark.parametrize(("window", "moment", "expected"), [
    pytest.param(OVERNIGHT, utc("2026-01-15 12:00"), utc("2026-01-15 21:00"), id="same-day"),
    pytest.param(OVERNIGHT, utc("2026-01-15 22:00"), utc("2026-01-16 21:00"), id="inside"),
    pytest.param(OVERNIGHT, utc("2026-01-16 03:30"), utc("2026-01-16 21:00"), id="after-close"),
    pytest.param(OVERNIGHT, utc("2026-03-28 22:00"), utc("2026-03-29 20:00"), id="into-summer"),
    pytest.param(OVERNIGHT, utc("2026-10-24 21:00"), utc("2026-10-25 21:00"),
                 id="into-winter"),
    pytest.param(NIGHT_NY, utc("2026-01-15 12:00"), utc("2026-01-16 06:00"), id="new-york"),
])
def test_run_window_next_start(window, moment, expected):
    """The next opening after a moment, on the window's clock across a DST change."""
    following = window.next_start(moment)
    assert expected == following.astimezone(UTC)
    assert window.contains(following)


# -- the daemon after downtime -----------------------------------------------------------------


def twelve_hours_away() -> str:
    """A daily cron schedule whose fire time is about 12 hours from now (never during a test)."""
    return f'{{cron: "0 {(datetime.now(tz=UTC).hour + 12) % 24} * * *"}}'


@pytest.mark.parametrize(("schedule", "down"), [
    pytest.param(twelve_hours_away(), timedelta(days=3), id="cron-missed-3-times"),
    pytest.param("{every: 1 hour}", timedelta(hours=5), id="every-missed-5-times"),
])
def test_daemon_runs_a_missed_rule_once(tmp_path, daemons, schedule, down):
    """A daemon started after downtime over several fire times runs the rule once, not N times."""
    site = make_site(tmp_path, policy(rule_yaml(schedule=schedule)), old=30, young=10)
    last = datetime.now(tz=UTC) - down
    seed_runs(site.state_url, RULE, last, last + timedelta(seconds=1))
    daemon = daemons(site.config)
    daemon.wait_event("daemon.ready")
    end = daemon.wait_event("run.end", rule=RULE, timeout=4)
    assert ("done", 30) == (end["status"], end["acted"])
    time.sleep(1.5)  # the daemon's real clock: a second run would follow at once
    assert 1 == len(daemon.events("run.end"))
    assert site.young == site.remaining()
    with site.ledger() as ledger:
        starts = [r for r in ledger.records() if r.entry.kind is Kind.RUN_START]
        assert ledger.verify().ok
    assert 2 == len(starts)
