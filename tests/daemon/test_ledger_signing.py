"""The daemon signs what it writes; a restart leaves a ledger that verifies with no alarm."""

from __future__ import annotations

import signal
import subprocess
import sys

from daemon_kit import RULE, clean_env, make_site, policy, rule_yaml


def _verify(config) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(config), "audit",
                           "verify"], capture_output=True, text=True, timeout=120, check=False,
                          env=clean_env(), cwd=config.parent)


def test_a_daemon_stopped_mid_run_and_restarted_leaves_an_intact_signed_ledger(tmp_path,
                                                                               daemons):
    """SIGTERM in the middle of a throttled run, a restart that finishes it: verify exits 0.

    Every record either daemon wrote is signed (the only warnings would name unsigned ones).
    """
    site = make_site(tmp_path, policy(rule_yaml(batch_size=20, throttle=100)), old=200, young=10)
    subprocess.run([sys.executable, "-m", "retentiond", "audit", "keygen", "--out",
                    str(tmp_path / "keys")], check=True, capture_output=True, env=clean_env())
    with site.config.open("a", encoding="utf-8") as config:
        config.write(f'\n[audit]\norigin = "retentiond.test/daemon"\n'
                     f'signing_key = {{ file = "{tmp_path / "keys" / "signing.key"}" }}\n'
                     f'verify_key = "{tmp_path / "keys" / "verify.pub"}"\n')
    first = daemons(site.config, "--now")
    first.wait_event("batch.applied", count=2, rule=RULE)
    first.signal(signal.SIGTERM)
    assert 0 == first.wait()
    second = daemons(site.config, "--now")
    second.wait_event("run.end", rule=RULE, status="done", timeout=60)
    second.signal(signal.SIGTERM)
    assert 0 == second.wait()
    result = _verify(site.config)
    with site.ledger() as ledger:
        records = list(ledger.records())
    assert (0, "") == (result.returncode, result.stderr)
    assert [] == [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert ([], set()) == ([r.seq for r in records if r.signature is None],
                           site.old & site.remaining())
