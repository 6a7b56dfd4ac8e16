"""What deploy/ ships: a unit systemd accepts and scores as hardened, a config that loads.

``systemd-analyze`` checks the unit; without it those tests are skipped (failed under
``CI=true``: install the ``systemd`` package).  ``verify`` can exit 0 while printing
"Failed to parse ..., ignoring", so any output on stderr fails.
"""

from __future__ import annotations

import base64
import importlib.util
import itertools
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from retentiond.settings import DEFAULT_CONFIG, load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNIT = DEPLOY / "retentiond.service"
CONFIG = DEPLOY / "retentiond.toml"
INSTALLED = "/opt/retentiond/bin/retentiond"
"""Where the unit expects the program (deploy/README.md); absent on a development machine."""
EXPOSURE = re.compile(r"Overall exposure level for retentiond\.service: (\d+\.\d+)")


@pytest.fixture
def systemd_analyze() -> str:
    """The path of ``systemd-analyze``; skips (fails under CI=true) when it is missing."""
    found = shutil.which("systemd-analyze")
    if found is None:
        reason = "systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No RETENTIOND_* variable or credentials directory of the caller leaks into a test."""
    for name in [n for n in os.environ if n.startswith("RETENTIOND_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def service_directives(path: Path = UNIT) -> dict[str, list[str]]:
    """The [Service] section: each key with its values in order (keys may repeat)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        if section == "Service":
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_unit_verifies(systemd_analyze, tmp_path):
    """``systemd-analyze verify`` accepts the unit without a word on stderr."""
    program = Path(sys.executable).parent / "retentiond"
    assert program.is_file(), f"{program} is missing: install the package into this venv"
    text = UNIT.read_text(encoding="utf-8")
    assert 1 == text.count(INSTALLED)
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED, str(program)), encoding="utf-8")
    result = subprocess.run([systemd_analyze, "verify", str(copy)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert ("", 0) == (result.stderr, result.returncode)


def test_unit_is_hardened(systemd_analyze):
    """``systemd-analyze security --offline=true`` scores the unit 2.0 or better."""
    result = subprocess.run([systemd_analyze, "security", "--offline=true", str(UNIT)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert 0 == result.returncode, result.stderr
    found = EXPOSURE.search(result.stdout)
    assert found is not None, result.stdout[-500:]
    assert float(found.group(1)) <= 2.0, found.group(0)


def test_unit_directives():
    """The unit is a notify service with a watchdog, a stop timeout, and the hardening."""
    expected = {
        "Type": ["notify"],
        "NotifyAccess": ["main"],
        "WatchdogSec": ["120s"],
        "TimeoutStopSec": ["90s"],
        "DynamicUser": ["yes"],
        "StateDirectory": ["retentiond"],
        "ConfigurationDirectory": ["retentiond"],
        "ProtectSystem": ["strict"],
        "NoNewPrivileges": ["yes"],
        "CapabilityBoundingSet": [""],
        "SystemCallFilter": ["@system-service", "~@privileged @resources"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
        "PrivateTmp": ["yes"],
        "LoadCredential": ["app-db-password:/etc/retentiond/credentials/app-db-password",
                           "pseudonym-key:/etc/retentiond/credentials/pseudonym-key"],
    }
    directives = service_directives()
    assert expected == {key: directives.get(key) for key in expected}


def test_unit_and_config_agree():
    """The unit starts the daemon on the default config, whose state and secrets it provides."""
    directives = service_directives()
    command = directives["ExecStart"][0].split()
    assert [INSTALLED, "--config", str(DEFAULT_CONFIG), "daemon"] == command
    settings = load_settings(CONFIG)
    state_file = Path(make_url(settings.state_url).database or "")
    assert Path("/var/lib") / directives["StateDirectory"][0] == state_file.parent
    assert Path("/etc") / directives["ConfigurationDirectory"][0] == DEFAULT_CONFIG.parent
    loaded = {entry.split(":")[0] for entry in directives["LoadCredential"]}
    named = {store.password_credential for store in settings.stores.values()} | {
        key.credential for key in settings.pseudonymize.keys.values()}
    assert loaded == named - {None}


def test_example_config_loads_into_the_documented_values():
    """deploy/retentiond.toml loads (no RETENTIOND_* set) into the values its comments give."""
    loaded = load_settings(CONFIG).model_dump(mode="json")
    store_keys = ("url", "password_credential", "password_file", "plan_url", "lock_timeout_ms",
                  "statement_timeout_ms", "marker_table", "quarantine_prefix")
    assert {
        "policy_dir": "/etc/retentiond/policies",
        "state_url": "sqlite:////var/lib/retentiond/state.db",
        "log_format": "auto",
        "log_level": "info",
        "defaults": {"batch_size": 1000, "max_rows": 100000, "max_percent": 50.0,
                     "schedule": "0 3 * * *", "timezone": "UTC"},
        "stores": {
            "app": {"url": "postgresql+psycopg://retentiond@db.internal/app",
                    "password_credential": "app-db-password", "password_file": None,
                    "plan_url": None, "lock_timeout_ms": 2000, "statement_timeout_ms": 60000,
                    "marker_table": "retentiond_batches", "quarantine_prefix": "retentiond_q_"},
            "crm": {"url": "mysql+pymysql://retentiond@crm.internal/crm",
                    "password_credential": None, "password_file": "/etc/retentiond/crm.password",
                    "plan_url": None, "lock_timeout_ms": 2000, "statement_timeout_ms": 60000,
                    "marker_table": "retentiond_batches", "quarantine_prefix": "retentiond_q_"},
        },
        "pseudonymize": {"key_id": "2026-11",
                         "keys": {"2026-11": {"credential": "pseudonym-key", "file": None}}},
    } == {
        "policy_dir": loaded["policy_dir"],
        "state_url": loaded["state_url"],
        "log_format": loaded["log_format"],
        "log_level": loaded["log_level"],
        "defaults": loaded["defaults"],
        "stores": {name: {key: store[key] for key in store_keys}
                   for name, store in loaded["stores"].items()},
        "pseudonymize": loaded["pseudonymize"],
    }


STATUS_RULES = """\
rules:
  - id: emails-12-months
    description: Emails are deleted 12 months after submission.
    store: app
    table: emails
    age: {column: made_at, older_than: 12 months}
    action: {type: delete}
    schedule: {cron: "15 2 * * *"}
  - id: sessions-30-days
    description: Sessions are deleted 30 days after they were made.
    store: app
    table: sessions
    age: {column: made_at, older_than: 30 days}
    action: {type: delete}
    schedule: {every: 6 hours}
  - id: logins-90-days
    description: Logins are deleted 90 days after they were made (paused).
    store: app
    table: logins
    age: {column: made_at, older_than: 90 days}
    action: {type: delete}
    enabled: false
"""


def test_status_lists_every_rule(tmp_path):
    """``retentiond status`` prints every rule id, enabled or not, and exits 0."""
    store = tmp_path / "app.db"
    with closing(sqlite3.connect(store)) as connection, connection:
        for table in ("emails", "sessions", "logins"):
            connection.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, made_at DATETIME)")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "rules.yaml").write_text(STATUS_RULES, encoding="utf-8")
    config = tmp_path / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{tmp_path}/state.db"\n'
                      f'[stores.app]\nurl = "sqlite:///{store}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTIOND_")}
    result = subprocess.run([sys.executable, "-m", "retentiond", "--config", str(config),
                             "status"], capture_output=True, text=True, timeout=60, env=env,
                            check=False)
    assert 0 == result.returncode, result.stderr
    rules = ["emails-12-months", "sessions-30-days", "logins-90-days"]
    assert rules == [rule for rule in rules if rule in result.stdout], result.stdout
    assert "disabled" in result.stdout


README = DEPLOY / "README.md"
PRE_ENABLE = "Check everything before you enable it"
AS_THE_SERVICE = "To check as the service itself runs"
DEPLOY_RULES = """\
rules:
  - id: customers-2-years
    description: Customers are deleted two years after their last order.
    store: app
    table: customers
    age: {column: last_order_at, older_than: 2 years}
    action: {type: delete}
  - id: customers-pseudonymize-1-year
    description: A customer's address is pseudonymized a year after their last order.
    store: app
    table: customers
    age: {column: last_order_at, older_than: 1 year}
    action:
      type: pseudonymize
      columns:
        email: {domain: customer-email}
  - id: contacts-3-years
    description: CRM contacts are deleted three years after they were last seen.
    store: crm
    table: contacts
    age: {column: seen_at, older_than: 3 years}
    action: {type: delete}
"""


def readme_block(after: str) -> list[str]:
    """The lines of the first code block of deploy/README.md after the text ``after``.

    Backslash continuations are joined: each item is one command line as a shell reads it.
    """
    text = README.read_text(encoding="utf-8")
    assert after in text, f"deploy/README.md no longer says {after!r}"
    found = re.search(r"^```\n(.*?)^```", text[text.index(after):], re.DOTALL | re.MULTILINE)
    assert found is not None, f"no code block after {after!r}"
    joined = re.sub(r"\\\n\s*", "", found.group(1))
    return [line for line in joined.splitlines() if line.strip()]


def replaced(text: str, changes: dict[str, str]) -> str:
    """``text`` with each key replaced by its value; each key must occur (the config changed?)."""
    for old, new in changes.items():
        assert old in text, f"{old!r} is no longer in the text"
        text = text.replace(old, new)
    return text


@pytest.fixture
def deploy_servers(_admins, tmp_path):
    """The PostgreSQL and MariaDB servers the shipped config's two stores stand for.

    Made with the suite's own helpers of tests/conftest.py, loaded by path: the module name
    ``conftest`` may be another directory's when several are collected.
    """
    spec = importlib.util.spec_from_file_location("suite_conftest",
                                                  Path(__file__).with_name("conftest.py"))
    assert spec is not None
    assert spec.loader is not None
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)
    made = {kind: suite.Server(kind, suite._admin(_admins, kind), tmp_path)
            for kind in ("postgresql", "mariadb")}
    yield made
    for server in made.values():
        server.drop_all()


def store_of(server, table: str, password: str) -> tuple[str, str]:
    """(user, database) of a new database holding ``table`` and a user who may read it."""
    url = server.database()
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(table)
    finally:
        engine.dispose()
    return server.user(password, select_on=url), str(make_url(url).database)


@pytest.mark.postgresql
@pytest.mark.mariadb
def test_the_pre_enable_check_runs_as_written_with_the_shipped_config(deploy_servers, tmp_path):
    """deploy/README.md's pre-enable commands, as written, pass on the shipped config.

    A temporary root stands for ``/etc/retentiond`` and ``/var/lib/retentiond``; the two
    stores of deploy/retentiond.toml are real databases on this machine's servers, the app's
    password comes from its credential, the CRM's from its file, and the pseudonym key from
    its credential: everything the check needs, and only the documented way to give it.
    """
    etc, state = tmp_path / "etc" / "retentiond", tmp_path / "var" / "lib" / "retentiond"
    (etc / "policies").mkdir(parents=True)
    (etc / "credentials").mkdir(mode=0o700)
    state.mkdir(parents=True)  # StateDirectory=: systemd makes it before the service starts
    app_user, app_db = store_of(deploy_servers["postgresql"], "CREATE TABLE customers (id "
                                "INTEGER PRIMARY KEY, email VARCHAR(200), last_order_at "
                                "TIMESTAMP)", "apppw")
    crm_password = secrets.token_hex(8)
    crm_user, crm_db = store_of(deploy_servers["mariadb"], "CREATE TABLE contacts (id INTEGER "
                                "PRIMARY KEY, seen_at DATETIME)", crm_password)
    (etc / "credentials" / "app-db-password").write_text("apppw\n", encoding="utf-8")
    (etc / "credentials" / "pseudonym-key").write_text(
        base64.b64encode(secrets.token_bytes(32)).decode() + "\n", encoding="utf-8")
    (etc / "crm.password").write_text(crm_password + "\n", encoding="utf-8")
    (etc / "policies" / "customers.yaml").write_text(DEPLOY_RULES, encoding="utf-8")
    (etc / "retentiond.toml").write_text(replaced(CONFIG.read_text(encoding="utf-8"), {
        "/etc/retentiond": str(etc),
        "/var/lib/retentiond/": f"{state}/",
        "retentiond@db.internal/app": f"{app_user}@127.0.0.1:5432/{app_db}",
        "retentiond@crm.internal/crm": f"{crm_user}@127.0.0.1:3306/{crm_db}",
    }), encoding="utf-8")
    program = str(Path(sys.executable).parent / "retentiond")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RETENTIOND_") and k != "CREDENTIALS_DIRECTORY"}
    commands = readme_block(PRE_ENABLE)

    results, made = [], []
    for line in commands:
        results.append(subprocess.run(
            ["sh", "-c", replaced(line, {"/etc/retentiond": str(etc), INSTALLED: program})],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False))
        made.append(sorted(p.name for p in state.iterdir()))

    assert (["validate", "plan"], [0] * len(commands)) == (
        [line.split()[-1] for line in commands],
        [result.returncode for result in results]), [result.stderr for result in results]
    assert ("ok: 3 rules, 0 holds, 0 minimum retentions are valid\n", "", []) == (
        results[0].stdout, results[0].stderr, made[0])  # the check wrote nothing
    assert [] == [line for result in results for line in result.stderr.splitlines()
                  if line.startswith("error:") or "Traceback" in line]


def test_the_check_as_the_service_loads_what_the_unit_loads():
    """The README's systemd-run check gives the unit's user, state directory and credentials."""
    command = readme_block(AS_THE_SERVICE)
    properties: dict[str, list[str]] = {}
    words = command[0].split() if len(command) == 1 else []
    for flag, value in itertools.pairwise(words):
        if flag == "-p":
            key, _, setting = value.partition("=")
            properties.setdefault(key, []).append(setting)
    directives = service_directives()

    assert 1 == len(command), command
    assert (["systemd-run", "--pipe"], [INSTALLED, "--config", str(DEFAULT_CONFIG), "validate"]
            ) == (words[:2], words[-4:])
    assert {key: directives[key] for key in ("DynamicUser", "StateDirectory", "LoadCredential")
            } == properties
