"""Store kinds: a kind registered from outside retentiond runs a rule like the built-in SQL kind.

The ``memory`` kind lives in its own module (``memory_kind``), not in the package, and is
found the way an installed plugin is found: through an entry point in the group
``retentiond.stores`` of a distribution on the path.  Every command runs as a subprocess of
the real CLI, so nothing here is registered by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RULES = """
rules:
  - id: calls-90-days
    description: Call notes are deleted 90 days after the call.
    store: app
    table: calls
    age: {column: called_at, older_than: 90 days}
    action: {type: delete}
    limits: {max_percent: 100}
    batch_size: 2
holds:
  - id: dispute-7
    reason: Customer 7 disputes a bill.
    store: app
    table: calls
    where: {column: customer, value: 7}
"""
NOW = datetime.now(tz=UTC).replace(tzinfo=None, microsecond=0)


def _days_ago(days: int) -> str:
    return (NOW - timedelta(days=days)).isoformat(sep=" ")


CALLS = [
    {"id": 1, "customer": 5, "called_at": _days_ago(400)},  # due
    {"id": 2, "customer": 7, "called_at": _days_ago(390)},  # due, held
    {"id": 3, "customer": 6, "called_at": _days_ago(200)},  # due
    {"id": 4, "customer": 6, "called_at": None},  # no age: kept
    {"id": 5, "customer": 5, "called_at": _days_ago(10)},  # young
    {"id": 6, "customer": 8, "called_at": _days_ago(91)},  # due
]

@pytest.fixture
def plugin(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python finds a distribution declaring the ``memory`` kind."""
    site = tmp_path / "site"
    info = site / "memory_kind-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: memory-kind\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[retentiond.stores]\nmemory = memory_kind:KIND\n")
    path = os.pathsep.join(filter(None, [str(site), str(HERE), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _world(tmp_path: Path, rules: str = RULES) -> tuple[Path, Path]:
    records = tmp_path / "records.json"
    records.write_text(json.dumps({"tables": {"calls": {
        "key": ["id"],
        "columns": {"id": "integer", "customer": "integer", "called_at": "datetime"},
        "rows": CALLS}}}))
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "calls.yaml").write_text(rules)
    config = tmp_path / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{tmp_path}/state.db"\n'
                      f'log_format = "json"\n[stores.app]\nkind = "memory"\n'
                      f'file = "{records}"\n')
    return config, records


def _cli(env: dict[str, str], config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, check=False, env=env)


def _ids(records: Path) -> list[int]:
    return [row["id"] for row in json.loads(records.read_text())["tables"]["calls"]["rows"]]


def test_a_kind_from_an_entry_point_plans_runs_explains_and_verifies(tmp_path, plugin):
    """Plan, run, explain and audit verify all work on a store kind retentiond never imports.

    The plan counts what the run then deletes (rows 1, 3 and 6); the held row, the undated
    row and the young row stay; explain finds the deleted row's batch in the ledger and the
    hold that keeps the held row; the ledger verifies.
    """
    config, records = _world(tmp_path)

    validated = _cli(plugin, config, "validate")
    planned = _cli(plugin, config, "plan", "--json")
    enforced = _cli(plugin, config, "run", "--once")
    explained = _cli(plugin, config, "explain", "--store", "app", "--table", "calls",
                     "--key", "3", "--json")
    kept = _cli(plugin, config, "explain", "--store", "app", "--table", "calls", "--key", "2",
                "--json")
    verified = _cli(plugin, config, "audit", "verify")

    for done in (validated, planned, enforced, explained, kept, verified):
        assert (0, "") == (done.returncode, done.stderr.partition("Traceback")[1]), done.stderr
    (plan,) = json.loads(planned.stdout)
    assert (6, 4, 1, 1, 3) == (plan["population"], plan["matched"], plan["held"],
                               plan["null_age"], plan["eligible"])
    assert [2, 4, 5] == _ids(records)
    deleted, held = json.loads(explained.stdout), json.loads(kept.stdout)
    assert (False, ["acted on (delete)"]) == (deleted["exists"],
                                              [a["how"] for a in deleted["audit"]])
    assert ["dispute-7"] == [guard["id"] for guard in held["rules"][0]["protected_by"]]
    assert verified.stdout.startswith("ok: ")


def test_a_kind_that_cannot_rewrite_refuses_an_anonymize_rule_at_validation(tmp_path, plugin):
    """An action the store's kind cannot do is one error line at validation, exit 2."""
    rules = RULES.replace("action: {type: delete}", "action: {type: anonymize, columns: "
                          "{customer: {strategy: nullify}}}")
    config, records = _world(tmp_path, rules)
    before = records.read_bytes()

    result = _cli(plugin, config, "validate")

    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert 2 == result.returncode
    assert 1 == len(errors), result.stderr
    assert "calls.yaml" in errors[0]
    assert "store 'app' (kind 'memory') cannot rewrite values in place" in errors[0]
    assert "Traceback" not in result.stderr
    assert before == records.read_bytes()


def test_an_unknown_kind_is_one_config_error_naming_the_setting(tmp_path):
    """A kind no installed package provides: exit 2, the setting named, the kinds there are."""
    config, _ = _world(tmp_path)

    line = next(number for number, text in enumerate(
        config.read_text(encoding="utf-8").splitlines(), start=1) if text.startswith("kind"))

    result = _cli(dict(os.environ), config, "validate")

    assert 2 == result.returncode
    assert result.stderr.startswith(f"error: {config}:{line}: stores.app.kind: store kind 'memory' "
                                    "is not installed (installed: sql)"), result.stderr
    assert "Traceback" not in result.stderr
