"""The daemon under a stand-in for systemd: sd_notify messages, watchdog, reload, graceful stop.

Each test binds its own notify socket, starts ``python -m retentiond --config CFG daemon`` as a
real process with ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` set, and reads what the daemon sends
(one datagram per message) and logs.  The store and the state database are SQLite files under
``tmp_path``.  A "long rule" deletes 400 old rows in batches of 50 at 100 rows/s: about 4 s.
SIGTERM-to-exit times are kept as the user property ``sigterm_to_exit_seconds``.
"""

from __future__ import annotations

import itertools
import secrets
import signal
import time
from pathlib import Path

from daemon_kit import (
    BATCH,
    RULE,
    NotifySocket,
    applied_keys,
    clean_env,
    make_site,
    policy,
    rule_yaml,
    wait_until,
)

from retentiond.errors import PolicyError
from retentiond.ledger.chain import Kind
from retentiond.policy.loader import load_policies

WATCHDOG_USEC = 1_000_000
HALF = WATCHDOG_USEC / 1_000_000 / 2
"""Seconds between watchdog pings the daemon should keep to (half the timeout)."""
SLACK = 0.25
"""Scheduling slack allowed on top of HALF on a busy 2-core machine (seconds)."""
STOP_BOUND = 10.0
"""Longest acceptable time from SIGTERM to exit with a batch in flight (TimeoutStopSec is 90 s)."""
LONG_RULE = policy(rule_yaml(throttle=100))
TWO_RULES = policy(rule_yaml(throttle=100), rule_yaml("sessions-12-months", "sessions"))
BROKEN = "rules:\n  - id: emails-12-months\n    store: app\n   table: emails\n"
"""A YAML syntax error on line 4 (the key is indented one space less than its siblings)."""
REJECTED = "reload rejected; the previous policies stay in force"


def env_for(notify: NotifySocket) -> dict[str, str]:
    """The environment systemd gives a Type=notify service with a watchdog."""
    return clean_env(NOTIFY_SOCKET=notify.address, WATCHDOG_USEC=str(WATCHDOG_USEC))


def store_descriptors(pid: int, store: str) -> int:
    """How many file descriptors process ``pid`` has open on the file ``store``."""
    found = 0
    for link in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found += str(link.readlink()) == store
        except OSError:
            continue  # closed while we looked
    return found


def test_ready_carries_a_status(tmp_path, notify, daemons):
    """Start-up ends with READY=1 and a STATUS saying how many rules are scheduled."""
    site = make_site(tmp_path, policy(rule_yaml()))
    daemon = daemons(site.config, env=env_for(notify))
    ready = notify.expect("READY", "1")
    assert {"READY": "1", "STATUS": "idle; 1 rules scheduled"} == dict(ready.fields)
    assert 1 == daemon.wait_event("daemon.ready")["rules"]
    daemon.signal(signal.SIGTERM)
    assert 0 == daemon.wait()


def test_watchdog_pings_at_half_the_timeout_while_a_rule_runs(tmp_path, notify, daemons):
    """WATCHDOG=1 comes at least every WATCHDOG_USEC/2 (plus slack), also while a rule runs."""
    site = make_site(tmp_path, LONG_RULE)
    daemon = daemons(site.config, "--now", env=env_for(notify))
    ready = notify.expect("READY", "1")
    assert ready.fields["STATUS"].endswith("; 1 rules scheduled")
    pings = [notify.expect("WATCHDOG", "1", timeout=2 * HALF + 1) for _ in range(6)]
    gaps = [round(b.at - a.at, 3) for a, b in itertools.pairwise([ready, *pings])]
    assert [] == [gap for gap in gaps if gap > HALF + SLACK], gaps
    statuses = {m.fields["STATUS"] for m in notify.since(ready.at) if "STATUS" in m.fields}
    assert f"running {RULE}; 1 rules scheduled" in statuses
    daemon.signal(signal.SIGTERM)
    assert 0 == daemon.wait()


def test_abstract_socket(tmp_path, daemons):
    """A NOTIFY_SOCKET starting with '@' is reached in the abstract namespace."""
    site = make_site(tmp_path, policy(rule_yaml()))
    notify = NotifySocket(f"@retentiond-test-{secrets.token_hex(8)}")
    try:
        daemon = daemons(site.config, env=env_for(notify))
        assert "1" == notify.expect("READY", "1").fields["READY"]
        daemon.signal(signal.SIGTERM)
        assert {"STOPPING": "1", "STATUS": "stopping"} == dict(notify.expect("STOPPING").fields)
        assert 0 == daemon.wait()
    finally:
        notify.close()


def test_sighup_with_a_valid_set_reloads(tmp_path, notify, daemons):
    """SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 with the new set in force."""
    site = make_site(tmp_path, policy(rule_yaml()))
    daemon = daemons(site.config, env=env_for(notify))
    notify.expect("READY", "1")
    site.write_policy(TWO_RULES)
    before = time.monotonic()
    daemon.signal(signal.SIGHUP)
    reloading = notify.expect("RELOADING", "1")
    ready = notify.expect("READY", "1")
    stamp = int(reloading.fields["MONOTONIC_USEC"]) / 1_000_000
    assert before <= stamp <= reloading.at, (before, stamp, reloading.at)
    assert {"READY": "1", "STATUS": "idle; 2 rules scheduled"} == dict(ready.fields)
    assert 2 == daemon.wait_event("reload.done")["rules"]
    assert [] == daemon.events("reload.rejected")
    daemon.signal(signal.SIGTERM)
    assert 0 == daemon.wait()


def test_sighup_with_an_invalid_set_keeps_the_old_one_running(tmp_path, notify, daemons):
    """An invalid set is rejected (READY says so, the log names the problem); the rule runs on."""
    site = make_site(tmp_path, LONG_RULE, old=250, young=50)
    daemon = daemons(site.config, "--now", env=env_for(notify))
    notify.expect("READY", "1")
    daemon.wait_event("batch.applied", rule=RULE)
    site.write_policy(BROKEN)
    daemon.signal(signal.SIGHUP)
    notify.expect("RELOADING", "1")
    ready = notify.expect("READY", "1")
    assert REJECTED == ready.fields["STATUS"]
    rejected = daemon.wait_event("reload.rejected")
    expected = []
    try:
        load_policies(site.policies)
    except PolicyError as exc:
        expected = [str(problem) for problem in exc.problems]
    assert [f"{site.policies / 'rules.yaml'}:4: YAML: expected <block end>, but found "
            "'<block mapping start>'; fix the YAML syntax"] == expected
    assert expected == rejected["problems"]
    before = len(daemon.events("batch.applied"))
    end = daemon.wait_event("run.end", rule=RULE)
    assert ("done", len(site.old)) == (end["status"], end["acted"])
    assert len(daemon.events("batch.applied")) > before, "no batch after the rejected reload"
    assert site.young == site.remaining()
    later = {m.fields["STATUS"] for m in notify.since(ready.at) if "STATUS" in m.fields}
    assert {REJECTED} < later
    assert all(text.endswith("; 1 rules scheduled") for text in later - {REJECTED}), later
    assert [] == daemon.events("reload.done")
    daemon.signal(signal.SIGTERM)
    assert 0 == daemon.wait()


def test_sighup_with_an_invalid_setting_is_rejected(tmp_path, notify, daemons):
    """A reload whose settings hold a schedule cron cannot read is rejected; the daemon lives on."""
    site = make_site(tmp_path, policy(rule_yaml()))
    daemon = daemons(site.config, env=env_for(notify))
    notify.expect("READY", "1")
    with site.config.open("a", encoding="utf-8") as config:
        config.write('purge_schedule = "61 * * * *"\n')  # [daemon] is the config's last section
    daemon.signal(signal.SIGHUP)
    notify.expect("RELOADING", "1")
    wait_until(lambda: bool(daemon.events("reload.rejected")) or daemon.process.poll() is not None,
               10, "the reload was neither rejected nor fatal")
    assert daemon.process.poll() is None, f"the reload killed the daemon:\n{daemon.log_tail()}"
    assert REJECTED == notify.expect("READY", "1").fields["STATUS"]
    daemon.signal(signal.SIGTERM)
    assert 0 == daemon.wait()


def test_sigterm_mid_rule_stops_after_the_batch_in_flight(tmp_path, notify, daemons, request):
    """SIGTERM mid-rule: STOPPING=1, exit 0 soon, whole batches only, the ledger settled."""
    site = make_site(tmp_path, LONG_RULE)
    daemon = daemons(site.config, "--now", env=env_for(notify))
    notify.expect("READY", "1")
    daemon.wait_event("batch.applied", count=3, rule=RULE)
    sent = daemon.signal(signal.SIGTERM)
    stopping = notify.expect("STOPPING", "1")
    code = daemon.wait(timeout=STOP_BOUND + 5)
    took = time.monotonic() - sent
    request.node.user_properties.append(("sigterm_to_exit_seconds", round(took, 3)))
    assert 0 == code
    assert took < STOP_BOUND, f"SIGTERM took {took:.2f} s"
    assert stopping.at - sent < 1.0
    gone = site.old - site.remaining()
    assert site.young <= site.remaining()
    assert 0 == len(gone) % BATCH, f"{len(gone)} rows gone: not whole batches of {BATCH}"
    assert 0 < len(gone) < len(site.old)
    end = daemon.wait_event("run.end", rule=RULE)
    assert ("stopped", len(gone), len(gone) // BATCH) == (
        end["status"], end["acted"], end["batches"])
    with site.ledger() as ledger:
        records = list(ledger.records())
        assert [] == ledger.open_intents()
        assert ledger.verify().ok
        last = ledger.latest(Kind.RUN_END, RULE)
    assert sorted(gone) == sorted(applied_keys(records))
    assert last is not None
    assert "stopped" == last.entry.body["status"]


def test_sigterm_does_not_wait_out_the_throttle(tmp_path, notify, daemons, request):
    """SIGTERM between batches ends a throttled run at once, not after the throttle's pause.

    Batches of 15 at 5 rows/s pause 3 s after each batch; a stop must not sit the pause out
    (with ``batch_size: 10000`` and ``throttle: 50`` it would be 200 s, beyond TimeoutStopSec).
    """
    site = make_site(tmp_path, policy(rule_yaml(batch_size=15, throttle=5)))
    daemon = daemons(site.config, "--now", env=env_for(notify))
    daemon.wait_event("batch.applied", rule=RULE)
    sent = daemon.signal(signal.SIGTERM)
    code = daemon.wait(timeout=15)
    took = time.monotonic() - sent
    request.node.user_properties.append(("sigterm_to_exit_seconds", round(took, 3)))
    assert 0 == code
    assert took < 2.0, f"SIGTERM took {took:.2f} s: the run slept out its throttle pause"


def test_reloads_do_not_pile_up_store_connections(tmp_path, notify, daemons):
    """Each valid reload releases the replaced set's store connections once no run uses them."""
    site = make_site(tmp_path, policy(rule_yaml()))
    daemon = daemons(site.config, env=env_for(notify))
    notify.expect("READY", "1")
    store = str(site.store)
    at_start = store_descriptors(daemon.pid, store)
    for _ in range(4):
        daemon.signal(signal.SIGHUP)
        notify.expect("RELOADING", "1")
        assert "idle; 1 rules scheduled" == notify.expect("READY", "1").fields["STATUS"]
    wait_until(lambda: len(daemon.events("reload.done")) == 4, 5, "four reloads logged")
    assert at_start == store_descriptors(daemon.pid, store)
    daemon.signal(signal.SIGTERM)
    assert 0 == daemon.wait()


def test_status_counts_only_the_rules_that_are_scheduled(tmp_path, notify, daemons):
    """A disabled rule is not scheduled, and the STATUS does not count it."""
    site = make_site(tmp_path, policy(rule_yaml(), rule_yaml("sessions-12-months", "sessions",
                                                             enabled=False)))
    daemon = daemons(site.config, env=env_for(notify))
    assert "idle; 1 rules scheduled" == notify.expect("READY", "1").fields["STATUS"]
    daemon.signal(signal.SIGTERM)
    assert 0 == daemon.wait()
