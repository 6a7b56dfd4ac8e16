"""``validate`` is the preflight: what ``run`` and the daemon will need is checked, not assumed.

Each missing thing (a pseudonym key file, the signing key, a credential, a writable state
database) is one ``error:`` line naming the config file and the line of its setting, with the
fix, and exit 2; nothing is written.  ``--json`` says the same to scripts.  ``--config`` and
``--policies`` may follow the command; relative paths in a config file are taken from its
directory.  (Another user's files: tests/state/test_state_preflight.py.)
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest
from click.testing import CliRunner

import retentiond.cli.app
import retentiond.settings
from retentiond.cli import cli

RULES = """\
rules:
  - id: tickets-1-year
    description: Tickets are deleted a year after they were closed.
    store: app
    table: tickets
    age: {column: closed_at, older_than: 1 year}
    action: {type: delete}
"""
PSEUDONYMIZE = """\
  - id: tickets-pseudonymize-90-days
    description: Requesters are pseudonymized 90 days after a ticket was closed.
    store: app
    table: tickets
    age: {column: closed_at, older_than: 90 days}
    action:
      type: pseudonymize
      columns:
        requester: {domain: customer-email}
"""
SUMMARY = "ok: 1 rules, 0 holds, 0 minimum retentions are valid\n"


def line_of(text, needle):
    """The 1-based number of the one line of ``text`` that contains ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert 1 == len(found), (needle, found)
    return found[0]


def make_setup(root, *, rules=RULES, extra=""):
    """A store file, a policy directory and a config in ``root`` naming them (absolute paths).

    ``extra`` is appended to the config, each ``{root}`` in it filled in.
    """
    with closing(sqlite3.connect(root / "app.db")) as connection, connection:
        connection.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, "
                           "requester VARCHAR(200), closed_at DATETIME)")
    (root / "policies").mkdir()
    (root / "policies" / "tickets.yaml").write_text(rules, encoding="utf-8")
    config = root / "retentiond.toml"
    config.write_text(f'policy_dir = "{root}/policies"\nstate_url = "sqlite:///{root}/var/'
                      f'state.db"\nlog_level = "warning"\n\n[stores.app]\nurl = "sqlite:///{root}/'
                      'app.db"\n' + extra.format(root=root), encoding="utf-8")
    return config


def call(*args, cwd="/", env=None):
    """Run ``python -m retentiond ARGS`` in ``cwd`` without the caller's settings; never raises."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("RETENTIOND_") and k != "CREDENTIALS_DIRECTORY"}
    return subprocess.run([sys.executable, "-m", "retentiond", *args], capture_output=True,
                          text=True, env={**clean, **(env or {})}, cwd=cwd, timeout=60,
                          check=False)


def outcome(result):
    """(exit code, stdout, stderr lines, whether a traceback shows)."""
    return (result.returncode, result.stdout, result.stderr.splitlines(),
            "Traceback" in result.stdout + result.stderr)


def written(root):
    """Every file under ``root`` with its size and mtime: what a command that writes changes."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def key_file(path):
    """A pseudonym or signing key file: 32 random bytes, base64."""
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n", encoding="utf-8")
    return path


def test_a_ready_setup_is_ok_and_nothing_is_written(tmp_path):
    """Everything in place: exit 0, the summary; no state database, no lease directory made."""
    config = make_setup(tmp_path)
    before = written(tmp_path)

    result = call("--config", str(config), "validate")

    assert (0, SUMMARY, [], False) == outcome(result)
    assert (before, False) == (written(tmp_path), (tmp_path / "var").exists())


def test_a_missing_pseudonym_key_file_is_one_error_at_its_setting(tmp_path):
    """A rule pseudonymizes and the key file is missing: named, at its line, exit 2."""
    config = make_setup(tmp_path, rules=RULES + PSEUDONYMIZE, extra=(
        '\n[pseudonymize]\nkey_id = "k1"\n\n[pseudonymize.keys.k1]\nfile = "{root}/keys/k1"\n'))
    line = line_of(config.read_text(encoding="utf-8"), 'keys/k1"')

    result = call("--config", str(config), "validate")

    assert (2, "", [
        f"error: {config}:{line}: pseudonym key 'k1': cannot read the key file "
        f"{tmp_path / 'keys' / 'k1'}: No such file or directory; check the path and that the "
        "service user may read it",
        "1 problem(s); nothing was run"], False) == outcome(result)


def test_the_pseudonym_key_file_in_place_is_ok(tmp_path):
    """The same setup with the key file made: validate says ok."""
    config = make_setup(tmp_path, rules=RULES + PSEUDONYMIZE, extra=(
        '\n[pseudonymize]\nkey_id = "k1"\n\n[pseudonymize.keys.k1]\nfile = "{root}/keys/k1"\n'))
    (tmp_path / "keys").mkdir()
    key_file(tmp_path / "keys" / "k1")

    result = call("--config", str(config), "validate")

    assert (0, SUMMARY.replace("1 rules", "2 rules"), [], False) == outcome(result)


@pytest.mark.parametrize(("signing_key", "what"), [
    pytest.param('{{ file = "{root}/signing.key" }}',
                 "cannot read the key file {root}/signing.key: No such file or directory; "
                 "check the path and that the service user may read it", id="missing-file"),
    pytest.param('{{ credential = "audit-signing-key" }}',
                 "credential 'audit-signing-key' is named but $CREDENTIALS_DIRECTORY is not "
                 "set; run under systemd with LoadCredential=; outside it, set "
                 "CREDENTIALS_DIRECTORY to a directory holding the file 'audit-signing-key' "
                 "(see deploy/README.md); or use 'file'", id="credential-without-directory"),
])
def test_a_configured_signing_key_that_cannot_be_read_is_an_error(tmp_path, signing_key, what):
    """Signing is configured and its key is out of reach: one error at ``signing_key``."""
    config = make_setup(tmp_path, extra=f"\n[audit]\nsigning_key = {signing_key}\n")
    line = line_of(config.read_text(encoding="utf-8"), "signing_key =")

    result = call("--config", str(config), "validate")

    assert (2, "", [f"error: {config}:{line}: signing key: {what.format(root=tmp_path)}",
                    "1 problem(s); nothing was run"], False) == outcome(result)


def test_a_store_credential_without_its_directory_is_an_error_at_the_store(tmp_path):
    """``password_credential`` outside systemd: one error at ``[stores.crm]``, with what to set."""
    config = make_setup(tmp_path, rules=RULES + RULES.replace("store: app", "store: crm")
                        .replace("tickets-1-year", "crm-tickets-1-year").replace("rules:\n", ""),
                        extra='\n[stores.crm]\nurl = "postgresql+psycopg://crm@127.0.0.1:1/crm"\n'
                              'password_credential = "crm-db-password"\n')
    line = line_of(config.read_text(encoding="utf-8"), "[stores.crm]")

    result = call("--config", str(config), "validate")

    assert (2, "", [
        f"error: {config}:{line}: store 'crm': password_credential 'crm-db-password' is set but "
        "$CREDENTIALS_DIRECTORY is not; run under systemd with LoadCredential=; outside it, set "
        "CREDENTIALS_DIRECTORY to a directory holding the file 'crm-db-password' (see "
        "deploy/README.md); or use password_file",
        "1 problem(s); nothing was run"], False) == outcome(result)


def test_a_read_only_state_url_is_an_error_at_state_url(tmp_path):
    """``mode=ro`` is an auditor's URL: a run could not write its ledger there."""
    config = make_setup(tmp_path)
    text = config.read_text(encoding="utf-8").replace("var/state.db", "var/state.db?mode=ro")
    config.write_text(text, encoding="utf-8")

    result = call("--config", str(config), "validate")

    assert (2, "", [
        f"error: {config}:2: state_url opens the state database {tmp_path / 'var/state.db'} "
        "read-only (mode=ro), but a run writes the ledger; remove mode=ro (it is for auditors' "
        "configs)", "1 problem(s); nothing was run"], False) == outcome(result)


def test_every_missing_thing_is_one_line(tmp_path):
    """Pseudonym key, signing key and state database all wrong: three lines, one run."""
    config = make_setup(tmp_path, rules=RULES + PSEUDONYMIZE, extra=(
        '\n[pseudonymize]\nkey_id = "k1"\n\n[pseudonymize.keys.k1]\nfile = "{root}/k1"\n'
        '\n[audit]\nsigning_key = {{ file = "{root}/signing.key" }}\n'))
    config.write_text(config.read_text(encoding="utf-8").replace(
        "var/state.db", "var/state.db?mode=ro"), encoding="utf-8")

    result = call("--config", str(config), "validate")

    code, _, lines, traceback = outcome(result)
    assert (2, False, 4) == (code, traceback, len(lines)), lines
    assert [True, True, True] == [
        any(needle in line for line in lines[:3])
        for needle in ("pseudonym key 'k1'", "signing key:", "mode=ro")]
    assert "3 problem(s); nothing was run" == lines[3]


def test_validate_json_lists_each_problem_with_file_line_rule_and_message(tmp_path):
    """``validate --json``: every problem as an object, exit 2; stderr stays empty."""
    config = make_setup(tmp_path, rules=RULES.replace("closed_at, older", "closed_on, older"),
                        extra='\n[audit]\nsigning_key = {{ file = "{root}/signing.key" }}\n')
    text = config.read_text(encoding="utf-8")
    policy = tmp_path / "policies" / "tickets.yaml"

    result = call("--config", str(config), "validate", "--json")

    found = json.loads(result.stdout)
    assert (2, "") == (result.returncode, result.stderr)
    assert {"ok": False, "rules": 1, "holds": 0, "retentions": 0, "warnings": [], "problems": [
        {"file": str(policy), "line": 6, "rule": "tickets-1-year",
         "message": "column 'closed_on' does not exist in table 'tickets'",
         "fix": "use one of: closed_at, id, requester"},
        {"file": str(config), "line": line_of(text, "signing_key"), "rule": None,
         "message": f"signing key: cannot read the key file {tmp_path / 'signing.key'}: "
                    "No such file or directory",
         "fix": "check the path and that the service user may read it"},
    ]} == {**found, "problems": [{k: v for k, v in p.items() if k != "text"}
                                 for p in found["problems"]]}


def test_validate_json_says_ok(tmp_path):
    """``validate --json`` of a ready setup: ok with the counts, exit 0."""
    config = make_setup(tmp_path)

    result = call("--config", str(config), "validate", "--json")

    assert (0, "", {"ok": True, "rules": 1, "holds": 0, "retentions": 0, "problems": [],
                    "warnings": []}) == (result.returncode, result.stderr,
                                         json.loads(result.stdout))


def test_validate_json_carries_a_config_error_too(tmp_path):
    """A config mistake is a problem in the JSON as well, at its file and line."""
    config = make_setup(tmp_path, extra='pasword_file = "x"\n')

    result = call("--config", str(config), "validate", "--json")

    assert (2, {"ok": False, "problems": [{
        "file": str(config), "line": 7, "rule": None,
        "message": "stores.app.pasword_file: unknown setting",
        "fix": "did you mean 'password_file'? fix the setting in the config file or the "
               "RETENTIOND_* environment",
        "text": f"{config}:7: stores.app.pasword_file: unknown setting; did you mean "
                "'password_file'? fix the setting in the config file or the RETENTIOND_* "
                "environment"}], "warnings": []}) == (result.returncode, json.loads(result.stdout))


def test_offline_checks_the_files_only(tmp_path):
    """``--offline`` reads config and policies; a missing key or store is not its business."""
    config = make_setup(tmp_path,
                        extra='\n[audit]\nsigning_key = {{ file = "{root}/signing.key" }}\n')
    (tmp_path / "app.db").unlink()

    result = call("--config", str(config), "validate", "--offline")

    assert (0, SUMMARY, [], False) == outcome(result)


@pytest.mark.parametrize("args", [
    pytest.param(["validate", "--config", "{config}"], id="config-after"),
    pytest.param(["--policies", "/nowhere", "validate", "--config", "{config}",
                  "--policies", "{policies}"], id="both-after-override-before"),
    pytest.param(["validate", "--policies", "{policies}", "--config", "{config}"],
                 id="policies-first"),
])
def test_global_options_may_follow_the_command(tmp_path, args):
    """``retentiond validate --config X`` reads X, as ``retentiond --config X validate`` does."""
    config = make_setup(tmp_path)
    filled = [a.format(config=config, policies=tmp_path / "policies") for a in args]

    result = call(*filled)

    assert (0, SUMMARY, [], False) == outcome(result)


def test_global_options_follow_a_nested_command(tmp_path):
    """``state status --config X`` too: a group's commands take them after their own name."""
    config = make_setup(tmp_path)

    after = call("state", "status", "--config", str(config))
    before = call("--config", str(config), "state", "status")

    assert (before.returncode, before.stdout, "") == (after.returncode, after.stdout,
                                                      after.stderr)


def test_relative_paths_are_read_from_the_config_files_directory(tmp_path):
    """Relative paths (policy_dir, SQLite files, a key file) are found beside the config.

    Whichever the working directory: nothing is looked for or made there.
    """
    config = make_setup(tmp_path, rules=RULES + PSEUDONYMIZE, extra=(
        '\n[pseudonymize]\nkey_id = "k1"\n\n[pseudonymize.keys.k1]\nfile = "k1.key"\n'))
    config.write_text(config.read_text(encoding="utf-8").replace(f"{tmp_path}/", ""),
                      encoding="utf-8")
    assert str(tmp_path) not in config.read_text(encoding="utf-8")
    key_file(tmp_path / "k1.key")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = call("--config", str(config), "validate", cwd=elsewhere)

    assert (0, SUMMARY.replace("1 rules", "2 rules"), [], False) == outcome(result)
    assert [] == list(elsewhere.iterdir())


def test_a_missing_default_config_is_said(tmp_path, monkeypatch):
    """Without --config and without the default file, a note says so and how to fix it."""
    missing = tmp_path / "etc" / "retentiond.toml"
    monkeypatch.setattr(retentiond.settings, "DEFAULT_CONFIG", missing)
    monkeypatch.setattr(retentiond.cli.app, "DEFAULT_CONFIG", missing, raising=False)
    make_setup(tmp_path)
    env = {"RETENTIOND_POLICY_DIR": str(tmp_path / "policies")}

    result = CliRunner().invoke(cli, ["validate", "--offline"], env=env)

    assert (0, SUMMARY, f"note: {missing} does not exist, so only the defaults and "
            "RETENTIOND_* variables apply; pass --config FILE, or install one there "
            "(deploy/README.md)\n") == (result.exit_code, result.stdout, result.stderr)


def test_an_explicit_config_says_no_note(tmp_path):
    """With --config no note is printed: the file named is the file read."""
    config = make_setup(tmp_path)

    result = CliRunner().invoke(cli, ["--config", str(config), "validate", "--offline"])

    assert (0, SUMMARY, "") == (result.exit_code, result.stdout, result.stderr)
