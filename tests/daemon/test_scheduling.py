"""When rules run: triggers, catch-up after downtime, run windows, lease retries, checkpoints.

The triggers, :func:`missed` and :class:`RunWindow` are tested with the time passed in.  The
daemon's own decisions are tested on the daemon in this process, on a clock the test moves
(``tests/clock.py``): nothing waits on the wall clock but for APScheduler to fire a due job.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, closing
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any

import pytest
from clock import FakeClock
from daemon_kit import RULE, WAIT, make_site, policy, records, rule_yaml, seed_run, wait_until
from structlog.testing import capture_logs

from retentiond.daemon.service import CHECKPOINT_JOB
from retentiond.daemon.triggers import missed, trigger_for
from retentiond.errors import ConfigError
from retentiond.ledger.chain import Kind
from retentiond.ledger.checkpoints import new_keypair
from retentiond.ledger.state import StateDB
from retentiond.policy.model import Rule
from retentiond.run.leases import leases_for
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


def test_rules_of_one_period_and_anchor_fire_on_the_same_ticks():
    """The daemon anchors every ``every`` rule at one moment: they fire together, one period on.

    Without the anchor, each trigger counted from when it was made, microseconds apart.
    """
    one, other = (trigger_for(rule_with({"every": "6 hours"}), Defaults(), anchor=NOW)
                  for _ in range(2))
    expected = [NOW + timedelta(hours=6)] * 2
    assert expected == [t.get_next_fire_time(None, NOW) for t in (one, other)]


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
    assert str(caught.value).startswith(f"{config}:3: {name}: "), str(caught.value)


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


# -- the daemon on a fake clock ---------------------------------------------------------------
#
# The daemon runs in the test's process on a FakeClock.  APScheduler fires jobs on real time, so
# a clock at this minute (at most a minute behind the wall) has a job due "now" fired at once,
# and a clock a few minutes ahead of the wall has nothing fired during the test: what stands
# in the job list is then the daemon's decision alone.


def this_minute(ahead: timedelta = timedelta(0)) -> datetime:
    """The wall clock's time to the minute, plus ``ahead``."""
    return datetime.now(tz=UTC).replace(second=0, microsecond=0) + ahead


def twelve_hours_away(now: datetime) -> str:
    """A daily cron schedule whose fire time is about 12 hours after ``now``."""
    return f'{{cron: "0 {(now.hour + 12) % 24} * * *"}}'


def every_hour(_now: datetime) -> str:
    """An interval schedule."""
    return "{every: 1 hour}"


def stamp(moment: datetime) -> str:
    """``moment`` as the ledger writes its ``at``."""
    return moment.isoformat(timespec="microseconds")


def window(opens: datetime, closes: datetime) -> str:
    """A ``[daemon]`` run window from ``opens`` to ``closes`` (times of day, UTC)."""
    return f'run_window = {{ start = "{opens:%H:%M}", end = "{closes:%H:%M}" }}\n'


@pytest.mark.parametrize(("schedule", "down"), [
    pytest.param(twelve_hours_away, timedelta(days=3), id="cron-missed-3-times"),
    pytest.param(every_hour, timedelta(hours=5), id="every-missed-5-times"),
])
def test_daemon_runs_a_missed_rule_once(tmp_path, local_daemon, schedule, down):
    """A daemon started after downtime over several fire times runs the rule once, not N times.

    The run is dated by the clock: as_of and the ledger's times are the clock's, not the wall's.
    """
    now = this_minute()
    clock = FakeClock(now - down)
    site = make_site(tmp_path, policy(rule_yaml(schedule=schedule(now))), old=30, young=10)
    seed_run(site.state_url, RULE, clock)
    clock.advance(now - clock.now())
    with local_daemon(site, clock) as daemon:
        wait_until(lambda: len(records(site, Kind.RUN_END)) == 2, WAIT, "the missed run")
        wait_until(lambda: daemon.scheduled()[RULE] > now, WAIT, "the next run in the future")
    ends = records(site, Kind.RUN_END)  # the daemon is stopped: no run can follow
    assert [("done", 0), ("done", 30)] == [(r.entry.body["status"], r.entry.body["acted"])
                                           for r in ends]
    starts = records(site, Kind.RUN_START)
    assert 2 == len(starts)
    assert (stamp(now), now.isoformat()) == (starts[-1].at, starts[-1].entry.body["as_of"])
    assert site.young == site.remaining()
    with site.ledger() as ledger:
        assert ledger.verify().ok


@pytest.mark.parametrize(("schedule", "ago", "due"), [
    pytest.param(twelve_hours_away, timedelta(days=3), True, id="cron-missed"),
    pytest.param(twelve_hours_away, timedelta(hours=1), False, id="cron-not-missed"),
    pytest.param(every_hour, timedelta(hours=5), True, id="every-missed"),
    pytest.param(every_hour, timedelta(minutes=20), False, id="every-not-missed"),
])
def test_at_start_a_rule_is_due_now_only_if_it_missed_a_fire_time(tmp_path, local_daemon,
                                                                   schedule, ago, due):
    """At start a rule whose last run is older than its last fire time is due now; else later.

    The clock is five minutes ahead of the wall, so APScheduler fires nothing meanwhile.
    """
    now = this_minute(ahead=timedelta(minutes=5))
    clock = FakeClock(now - ago)
    site = make_site(tmp_path, policy(rule_yaml(schedule=schedule(now))), old=30, young=10)
    seed_run(site.state_url, RULE, clock)
    clock.advance(now - clock.now())
    with local_daemon(site, clock) as daemon:
        next_run = daemon.scheduled()[RULE]
    assert next_run is not None
    assert due == (now == next_run), f"next run {next_run}, now {now}"
    assert now <= next_run
    assert 1 == len(records(site, Kind.RUN_START))


def test_checkpoints_begin_at_start_and_follow_at_nine_tenths_of_the_interval(tmp_path,
                                                                              local_daemon):
    """The first checkpoint is written at start, the next due 0.9 x checkpoint_interval_seconds on.

    The checkpoint's time in the ledger is the clock's.
    """
    now = this_minute()
    clock = FakeClock(now)
    site = make_site(tmp_path, policy(rule_yaml(schedule=twelve_hours_away(now))), old=3, young=1)
    private, public = new_keypair()
    (tmp_path / "signing.key").write_bytes(private)
    (tmp_path / "verify.pub").write_bytes(public)
    with site.config.open("a", encoding="utf-8") as config:
        config.write(f'\n[audit]\nsigning_key = {{ file = "{tmp_path / "signing.key"}" }}\n'
                     f'verify_key = "{tmp_path / "verify.pub"}"\n'
                     "checkpoint_interval_seconds = 600\n")
    with local_daemon(site, clock) as daemon:
        wait_until(lambda: bool(records(site, Kind.CHECKPOINT, rule=None)), WAIT,
                   "the checkpoint at start")
        wait_until(lambda: daemon.scheduled()[CHECKPOINT_JOB] != now, WAIT,
                   "the next checkpoint scheduled")
        following = daemon.scheduled()[CHECKPOINT_JOB]
    assert [stamp(now)] == [r.at for r in records(site, Kind.CHECKPOINT, rule=None)]
    assert now + timedelta(seconds=540) == following


def test_a_rule_due_outside_the_run_window_waits_for_the_window_to_open(tmp_path, local_daemon):
    """Due while the run window is closed: the rule does not run, and is set for the opening."""
    now = this_minute()
    clock = FakeClock(now)
    site = make_site(tmp_path, policy(rule_yaml()), old=30, young=10,
                     daemon=window(now + timedelta(hours=2), now + timedelta(hours=4)))
    with local_daemon(site, clock, run_now=True) as daemon:
        wait_until(lambda: f"{RULE}:again" in daemon.scheduled(), WAIT, "the rule set again")
        again = daemon.scheduled()[f"{RULE}:again"]
    assert now + timedelta(hours=2) == again
    assert [] == records(site, Kind.RUN_START)
    assert site.old <= site.remaining()


def test_a_run_stops_as_its_window_closes_and_is_set_for_the_next_opening(tmp_path,
                                                                          local_daemon):
    """The window closing while a rule runs ends the run after its batch; it resumes next night.

    The rule pauses 50 s (on the clock) after each batch of 50 at 1 row/s; the test moves the
    clock past the window's end during the first pause.
    """
    now = this_minute()
    clock = FakeClock(now)
    site = make_site(tmp_path, policy(rule_yaml(throttle=1)), old=200, young=10,
                     daemon=window(now - timedelta(hours=1), now + timedelta(hours=1)))
    with local_daemon(site, clock, run_now=True) as daemon:
        clock.until_waiting()
        assert 50 - 5 < clock.waits[0] <= 50
        closed = clock.advance(timedelta(hours=2))
        wait_until(lambda: f"{RULE}:again" in daemon.scheduled(), WAIT, "the rule set again")
        again = daemon.scheduled()[f"{RULE}:again"]
    end = records(site, Kind.RUN_END)
    assert [("stopped", 50, 1)] == [(r.entry.body["status"], r.entry.body["acted"],
                                     r.entry.body["batches"]) for r in end]
    assert stamp(closed) == end[0].at
    assert now - timedelta(hours=1) + timedelta(days=1) == again
    assert 50 == len(site.old - site.remaining())


def test_a_rule_leased_elsewhere_is_tried_again_every_lease_retry_seconds(tmp_path,
                                                                          local_daemon):
    """While another replica holds the rule, the daemon looks again every lease_retry_seconds.

    The test holds the rule's lease itself (a lock beside the state database, as a replica
    on this host would) and moves the clock; the run follows the release at the next look.
    """
    now = this_minute()
    clock = FakeClock(now)
    site = make_site(tmp_path, policy(rule_yaml()), old=30, young=10, lease_retry=30)
    state = StateDB(site.state_url)
    with closing(state), ExitStack() as lease:
        assert lease.enter_context(leases_for(state).hold(RULE))
        with local_daemon(site, clock, run_now=True):
            clock.until_waiting(1)
            clock.advance(timedelta(seconds=30))
            clock.until_waiting(2)
            assert [30.0, 30.0] == clock.waits
            assert [] == records(site, Kind.RUN_START)
            lease.close()  # the other replica is done with the rule
            clock.advance(timedelta(seconds=30))
            wait_until(lambda: bool(records(site, Kind.RUN_END)), WAIT, "the run after release")
    start = records(site, Kind.RUN_START)
    assert [stamp(now + timedelta(seconds=60))] == [r.at for r in start]
    assert site.young == site.remaining()


def test_a_rule_another_replica_finished_meanwhile_is_not_run_again(tmp_path, local_daemon):
    """A rule found busy, then finished by the replica that held it, is not run a second time."""
    now = this_minute()
    clock = FakeClock(now)
    site = make_site(tmp_path, policy(rule_yaml()), old=30, young=10, lease_retry=30)
    state = StateDB(site.state_url)
    with closing(state), ExitStack() as lease:
        assert lease.enter_context(leases_for(state).hold(RULE))
        with capture_logs() as logs, local_daemon(site, clock, run_now=True):
            clock.until_waiting(1)
            clock.advance(timedelta(seconds=10))
            seed_run(site.state_url, RULE, clock)  # the other replica's run, ended now
            lease.close()
            clock.advance(timedelta(seconds=20))
            wait_until(lambda: any(e["event"] == "rule.settled_elsewhere" for e in logs), WAIT,
                       "the daemon finding the rule settled")
    assert [30.0] == clock.waits
    assert 1 == len(records(site, Kind.RUN_START))
    assert site.old <= site.remaining()
