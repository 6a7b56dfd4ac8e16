"""The real CLI, run as a subprocess: bad input is one line per problem; plans change nothing.

Exit code 2 means bad input: stderr carries one ``error: ...`` line per problem (policy problems
end with a count), never a traceback, and the store is left exactly as it was.  Most tests use
SQLite files, where "exactly as it was" is the file's sha256; some run on every backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from demo_store import build_demo_store

from retentiond.policy.loader import load_policies
from retentiond.policy.order import ordered

EXAMPLES = Path(__file__).resolve().parents[1] / "policies"
STAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}
EMAILS = """
CREATE TABLE emails (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    subject VARCHAR(200) NOT NULL,
    submitted_at {stamp}
)
"""
ROWS = [
    (1, 4711, "a", "2024-01-01 10:00:00"),  # due at 2026-03-15, held
    (2, 5, "b", "2024-05-05 00:00:00"),  # due
    (3, 6, "c", "2025-03-14 23:59:59"),  # due
    (4, 6, "d", "2025-03-15 00:00:01"),  # due from 2026-03-16 on
    (5, 7, "e", None),  # no age
    (6, 4711, "f", "2026-01-01 00:00:00"),  # young
    (7, 8, "g", "2025-05-01 00:00:00"),  # due at 2026-06-15
]
AS_OF = "2026-03-15"

DELETE_ID = "emails-12-months"
ANONYMIZE_ID = "emails-anonymized-6-months"
POLICY = f"""\
rules:
  - id: {DELETE_ID}
    description: Emails are deleted 12 months after submission.
    store: app
    table: emails
    age:
      column: submitted_at
      older_than: 12 months
    action:
      type: delete
    limits:
      max_percent: 100
  - id: {ANONYMIZE_ID}
    description: Subjects are blanked 6 months after submission.
    store: app
    table: emails
    age:
      column: submitted_at
      older_than: 6 months
    action:
      type: anonymize
      columns:
        subject: {{strategy: constant, value: gone}}
holds:
  - id: complaint-4711
    reason: Complaint by customer 4711.
    store: app
    table: emails
    where: {{column: customer_id, value: 4711}}
"""

PLAN_KEYS = {
    "rule", "version", "description", "store", "table", "action", "does", "as_of", "cutoff",
    "population", "matched", "held", "protected", "null_age", "blocked", "done", "eligible",
    "guards", "sample_keys", "reached", "limits", "stopped_by", "error",
}
"""The keys every rule's entry in ``plan --json`` has (render.plan_to_dict)."""

EXPECTED = {
    DELETE_ID: {
        "rule": DELETE_ID, "store": "app", "table": "emails", "action": "delete",
        "as_of": "2026-03-15T00:00:00+00:00", "cutoff": "2025-03-15T00:00:00+00:00",
        "population": 7, "matched": 3, "held": 1, "protected": 0, "null_age": 1, "blocked": 0,
        "done": 0, "eligible": 2,
        "guards": [{"kind": "hold", "id": "complaint-4711",
                    "reason": "Complaint by customer 4711.", "rows": 1}],
        "sample_keys": [[2], [3]], "reached": [],
        "limits": {"max_rows": 100_000, "max_percent": 100.0}, "stopped_by": None, "error": None,
    },
    ANONYMIZE_ID: {
        "rule": ANONYMIZE_ID, "store": "app", "table": "emails", "action": "anonymize",
        "as_of": "2026-03-15T00:00:00+00:00", "cutoff": "2025-09-15T00:00:00+00:00",
        "population": 7, "matched": 5, "held": 1, "protected": 0, "null_age": 1, "blocked": 0,
        "done": 0, "eligible": 4,
        "guards": [{"kind": "hold", "id": "complaint-4711",
                    "reason": "Complaint by customer 4711.", "rows": 1}],
        "sample_keys": [[2], [3], [4], [7]], "reached": [],
        "limits": {"max_rows": 100_000, "max_percent": 50.0},
        "stopped_by": {"limit": "max_percent", "allowed": 50.0}, "error": None,
    },
}
"""``plan --as-of 2026-03-15 --json`` of POLICY over ROWS; the anonymization trips the default
50 % brake (4 of 7 rows)."""


def line_of(text, needle):
    """The 1-based number of the one line of ``text`` that contains ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert 1 == len(found), (needle, found)
    return found[0]


def sha256(path):
    """The sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(path):
    """Journal files SQLite would leave beside ``path`` after a write (or a crash)."""
    return sorted(p.name for p in path.parent.glob(path.name + "-*"))


@dataclass(frozen=True)
class Site:
    """A config file, its policy directory and its store, and a way to run the CLI on them."""

    root: Path
    config: Path
    policies: Path
    database: Path | None

    def run(self, *args, config=True):
        """Run ``python -m retentiond [--config CONFIG] ARGS`` from ``root``; never raises."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("RETENTIOND_") and k != "CREDENTIALS_DIRECTORY"}
        command = [sys.executable, "-m", "retentiond"]
        if config:
            command += ["--config", str(self.config)]
        return subprocess.run([*command, *args], capture_output=True, text=True, env=env,
                              cwd=self.root, timeout=60, check=False)

    def policy(self, text, name="emails.yaml"):
        """Replace the policy directory's content with one file; return its path."""
        for old in self.policies.glob("*"):
            old.unlink()
        path = self.policies / name
        path.write_text(text, encoding="utf-8")
        return path

    def digest(self):
        """The store file's sha256 and the journal files beside it."""
        assert self.database is not None
        return sha256(self.database), leftovers(self.database)


def make_site(root, url, policy=POLICY, extra=""):
    """Write a policy directory and a config file naming ``url`` as store ``app``."""
    policies = root / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "emails.yaml").write_text(policy, encoding="utf-8")
    config = root / "retentiond.toml"
    config.write_text(
        f'policy_dir = "{policies}"\nstate_url = "sqlite:///{root}/state.db"\n'
        f'log_level = "warning"\n\n[stores.app]\nurl = "{url}"\n{extra}',
        encoding="utf-8",
    )
    database = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:") else None
    return Site(root, config, policies, database)


@pytest.fixture
def site(tmp_path):
    """A SQLite store file with the emails table, POLICY, and a config naming both."""
    database = tmp_path / "app.db"
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(EMAILS.format(stamp="DATETIME"))
        connection.executemany("INSERT INTO emails VALUES (?, ?, ?, ?)", ROWS)
    return make_site(tmp_path, f"sqlite:///{database}")


def refused(result):
    """(exit code, stderr lines, whether a traceback shows) of a run, for bad-input asserts."""
    output = result.stdout + result.stderr
    return result.returncode, result.stderr.splitlines(), "Traceback" in output


def problems(*lines):
    """What stderr holds for policy problems: one line each, then the count."""
    return [*lines, f"{len(lines)} problem(s); nothing was run"]


def bad_policy(old, new):
    """POLICY with ``old`` (which occurs once) replaced by ``new``."""
    assert 1 == POLICY.count(old), old
    return POLICY.replace(old, new)


POLICY_CASES = [
    pytest.param(
        bad_policy("    store: app\n    table: emails\n    age:\n      column: submitted_at\n"
                   "      older_than: 12", "    store: app\n    table: emails\n    age:\n"
                   "      column: submitted_at\n       older_than: 12"),
        "older_than: 12", None,
        "YAML: mapping values are not allowed here; fix the YAML syntax", id="malformed-yaml",
    ),
    pytest.param(
        bad_policy("      max_percent: 100\n", "      max_percent: 100\n    colour: blue\n"),
        "colour: blue", DELETE_ID,
        "unknown key 'colour'; remove it or correct its spelling", id="unknown-key",
    ),
    pytest.param(
        bad_policy(f"  - id: {DELETE_ID}\n    description: Emails are deleted 12 months after "
                   "submission.\n    store: app",
                   f"  - id: {DELETE_ID}\n    description: Emails are deleted 12 months after "
                   "submission.\n    store: billing"),
        "store: billing", DELETE_ID,
        "store 'billing' is not configured (configured: app); "
        "add [stores.billing] to the config file", id="unknown-store",
    ),
    pytest.param(
        bad_policy("emails-12-months\n    description: Emails are deleted 12 months after "
                   "submission.\n    store: app\n    table: emails",
                   "emails-12-months\n    description: Emails are deleted 12 months after "
                   "submission.\n    store: app\n    table: mails"),
        "table: mails", DELETE_ID,
        "table 'mails' does not exist in store 'app'; "
        "did you mean 'emails'? write it as the store spells it", id="unknown-table",
    ),
    pytest.param(
        bad_policy("value: gone}", "value: gone}\n        sender: {strategy: nullify}"),
        "sender: {strategy", ANONYMIZE_ID,
        "column 'sender' does not exist in table 'emails'; "
        "use one of: customer_id, id, subject, submitted_at", id="unknown-column",
    ),
    pytest.param(
        bad_policy("      column: submitted_at\n      older_than: 6 months",
                   "      column: subject\n      older_than: 6 months"),
        "column: subject", ANONYMIZE_ID,
        "column 'subject' is VARCHAR(200), not a date or time; "
        "measure age on a date/time column (submitted_at)", id="wrong-column-type",
    ),
    pytest.param(
        bad_policy("    table: emails\n    age:\n      column: submitted_at\n      older_than: 12",
                   '    table: "emails; DROP TABLE emails"\n    age:\n'
                   "      column: submitted_at\n      older_than: 12"),
        'table: "emails;', DELETE_ID,
        "table: 'emails; DROP TABLE emails' is not a table name; "
        "write 'table' or 'schema.table' with letters, digits and underscores only "
        "(no quotes, spaces or SQL)", id="semicolon-in-table",
    ),
    pytest.param(
        bad_policy("{column: customer_id, value: 4711}",
                   "{column: \"customer_id' OR '1'='1\", value: 4711}"),
        "OR '1'='1", "complaint-4711",
        "column: \"customer_id' OR '1'='1\" is not a plain identifier; "
        "use letters, digits and underscores only (no quotes, spaces, dots or SQL)",
        id="quote-in-column",
    ),
    pytest.param(
        bad_policy("      max_percent: 100\n",
                   "      max_percent: 100\n    after: [emails-anonymised-6-months]\n"),
        "after: [emails-anonymised", DELETE_ID,
        "after: 'emails-anonymised-6-months' names no rule; did you mean "
        "'emails-anonymized-6-months'? name the id of a rule in the policy directory, "
        "or remove it", id="unknown-after",
    ),
]


@pytest.mark.parametrize(("text", "needle", "subject", "message"), POLICY_CASES)
def test_a_bad_policy_is_one_line_with_file_line_and_fix(site, text, needle, subject, message):
    """Each policy mistake: exit 2, ``error: file:line: subject: what; fix``, store untouched.

    ``plan`` validates both phases before it reads anything, as ``validate`` does.
    """
    path = site.policy(text)
    before = site.digest()

    result = site.run("plan", "--as-of", AS_OF)

    where = f"{path}:{line_of(text, needle)}: " + (f"{subject}: " if subject else "")
    assert (2, problems(f"error: {where}{message}"), False) == refused(result)
    assert ("", before) == (result.stdout, site.digest())


def test_a_missing_policy_directory_is_bad_input(site, tmp_path):
    """A policy directory that does not exist is named, with the way to fix it."""
    missing = tmp_path / "nowhere"
    before = site.digest()

    result = site.run("--policies", str(missing), "plan")

    assert (2, problems(f"error: {missing}: the policy directory does not exist; create it, or "
                        "point policy_dir (or --policies) at it"), False) == refused(result)
    assert before == site.digest()


def test_an_empty_policy_directory_is_bad_input(site, tmp_path):
    """A policy directory without policy files is refused: an empty set would enforce nothing."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.txt").write_text("not a policy\n", encoding="utf-8")
    before = site.digest()

    result = site.run("--policies", str(empty), "validate")

    assert (2, problems(f"error: {empty}: the policy directory holds no *.yaml or *.yml files; "
                        "add policy files; see policies/ in the project for examples"),
            False) == refused(result)
    assert before == site.digest()


def test_an_unreachable_database_is_one_line_per_store(tmp_path):
    """A closed port: one problem for the store (not one per entry), at its ``[stores.app]``."""
    site = make_site(tmp_path, "postgresql+psycopg://retentiond@127.0.0.1:1/app")
    table = line_of(site.config.read_text(encoding="utf-8"), "[stores.app]")

    result = site.run("plan")

    code, lines, traceback = refused(result)
    pattern = (re.escape(f"error: {site.config}:{table}: store 'app': "
                         "cannot connect to postgresql+psycopg://retentiond@127.0.0.1:1/app: ")
               + r".*Connection refused.*; check stores\.app\.url, its password, and that the "
                 r"server runs and accepts this user")
    assert (2, 2, False) == (code, len(lines), traceback)
    assert re.fullmatch(pattern, lines[0]), lines[0]
    assert "1 problem(s); nothing was run" == lines[1]


@pytest.mark.parametrize("server", [pytest.param("mariadb", marks=pytest.mark.mariadb)],
                         indirect=True)
def test_a_wrong_password_is_refused_without_showing_it(server, backend, tmp_path):
    """MariaDB refuses a wrong password from password_file; neither password reaches any output."""
    right, wrong = secrets.token_hex(8), secrets.token_hex(8)
    user = server.user(right)
    (tmp_path / "password").write_text(wrong + "\n", encoding="utf-8")
    url = backend.replace("root@", f"{user}@", 1)
    site = make_site(tmp_path, url, extra=f'password_file = "{tmp_path / "password"}"\n')

    table = line_of(site.config.read_text(encoding="utf-8"), "[stores.app]")

    result = site.run("plan")

    code, lines, traceback = refused(result)
    output = result.stdout + result.stderr
    assert (2, False, False, False) == (code, traceback, right in output, wrong in output)
    assert re.fullmatch(
        re.escape(f"error: {site.config}:{table}: store 'app': "
                  f"cannot connect to {url}: ") + r".*Access denied for user.*\(1045\); "
                  r"check stores\.app\.url, its password, .*", lines[0]), lines
    assert ["1 problem(s); nothing was run"] == lines[1:]


def test_a_missing_config_file_is_bad_input(site, tmp_path):
    """An explicit --config that does not exist: one line naming it, nothing read or run."""
    missing = tmp_path / "nope.toml"
    before = site.digest()

    result = site.run("--config", str(missing), "plan", config=False)

    assert (2, [f"error: config file {missing} does not exist; check the --config path "
                "(an example is deploy/retentiond.toml)"], False) == refused(result)
    assert before == site.digest()


def test_bad_toml_is_one_line_with_the_line_number(site):
    """A TOML syntax error names the config file and the line (``file:line:``)."""
    text = site.config.read_text(encoding="utf-8").replace("[stores.app]", "[stores.app")
    site.config.write_text(text, encoding="utf-8")
    line = line_of(text, "[stores.app")
    before = site.digest()

    result = site.run("validate")

    code, lines, traceback = refused(result)
    assert (2, 1, False) == (code, len(lines), traceback)
    assert lines[0].startswith(f"error: {site.config}:{line}: not valid TOML: "), lines
    assert before == site.digest()


def test_an_unknown_config_key_is_bad_input(site):
    """A misspelt setting is refused, named, never silently ignored."""
    site.config.write_text('colour = "blue"\n' + site.config.read_text(encoding="utf-8"),
                           encoding="utf-8")
    before = site.digest()

    result = site.run("plan")

    assert (2, [f"error: {site.config}:1: colour: unknown setting; fix the setting in the "
                "config file or the RETENTIOND_* environment"], False) == refused(result)
    assert before == site.digest()


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        pytest.param(("plan", "--rule", "nope"), "no rule with id nope", id="unknown-rule"),
        pytest.param(("plan", "--as-of", "not-a-date"), "'not-a-date' is not a date",
                     id="bad-as-of"),
    ],
)
def test_a_bad_option_value_is_one_error_line(site, args, mentions):
    """A bad option value is bad input like any other: exit 2 and one ``error:`` line on stderr."""
    before = site.digest()

    result = site.run(*args)

    code, lines, traceback = refused(result)
    assert (2, False) == (code, traceback)
    assert (1, True, True) == (len(lines), lines[0].startswith("error: "), mentions in lines[0]), (
        lines)
    assert before == site.digest()


def test_validate_says_ok_with_counts(site):
    """A valid set: exit 0 and one line counting rules, holds and retentions."""
    result = site.run("validate")

    assert (0, "ok: 2 rules, 1 holds, 0 minimum retentions are valid\n", "") == (
        result.returncode, result.stdout, result.stderr)


def test_plan_prints_a_table_row_per_rule(site, monkeypatch):
    """``plan`` on a wide terminal prints the dry-run table with a row per rule, and exits 0."""
    monkeypatch.setenv("COLUMNS", "250")  # narrower, it is a block per rule (tests/output)
    result = site.run("plan", "--as-of", AS_OF)

    rows = {rule: [line for line in result.stdout.splitlines()
                   if line.startswith("│") and f" {rule} " in line]
            for rule in (DELETE_ID, ANONYMIZE_ID)}
    assert (0, "", True) == (result.returncode, result.stderr,
                             "Retention plan (dry run: nothing was changed)" in result.stdout)
    assert {DELETE_ID: 1, ANONYMIZE_ID: 1} == {rule: len(found) for rule, found in rows.items()}


def test_plan_json_has_every_documented_key_and_exact_counts(site):
    """``plan --json`` lists each rule with the documented keys and the exact numbers."""
    result = site.run("plan", "--as-of", AS_OF, "--json")

    plans = json.loads(result.stdout)
    # In the order they run: the rewrite of the emails' subjects before their deletion.
    assert (0, [ANONYMIZE_ID, DELETE_ID]) == (result.returncode, [p["rule"] for p in plans])
    assert [True, True] == [PLAN_KEYS <= set(p) for p in plans]
    assert EXPECTED == {p["rule"]: {k: p[k] for k in EXPECTED[p["rule"]]} for p in plans}


def test_a_dry_run_is_the_plan(site):
    """``run --dry-run --json`` prints exactly what ``plan --json`` prints for the same as_of."""
    planned = site.run("plan", "--as-of", AS_OF, "--json")
    dry = site.run("run", "--dry-run", "--as-of", AS_OF, "--json")

    assert (0, 0) == (planned.returncode, dry.returncode)
    assert json.loads(planned.stdout) == json.loads(dry.stdout)


def test_as_of_moves_the_cutoff(site):
    """A later --as-of moves the cutoff by as much and makes more rows due (--rule: one rule)."""
    march = json.loads(site.run("plan", "--as-of", "2026-03-15", "--json",
                                "--rule", DELETE_ID).stdout)
    june = json.loads(site.run("plan", "--as-of", "2026-06-15", "--json",
                               "--rule", DELETE_ID).stdout)

    assert [
        (DELETE_ID, "2025-03-15T00:00:00+00:00", 3, 2),
        (DELETE_ID, "2025-06-15T00:00:00+00:00", 5, 4),
    ] == [(p["rule"], p["cutoff"], p["matched"], p["eligible"]) for p in (*march, *june)]


def test_run_without_dry_run_is_refused_cleanly(site):
    """``run`` without --dry-run (and without --once) fails cleanly and changes nothing."""
    before = site.digest()

    result = site.run("run", "--as-of", AS_OF)

    code, _, traceback = refused(result)
    assert (True, False, before) == (code != 0, traceback, site.digest())


def _write_counters(db):
    """What would show a write: the table's rows, and per backend its write counters."""
    content = db.rows("emails")
    if db.kind == "postgresql":
        db.settle()
        with db.engine.connect() as connection:
            # Sessions flush their statistics on exit: wait until the CLI's have ended.
            others = ("SELECT count(*) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            for _ in range(10_000):
                if connection.exec_driver_sql(others).scalar_one() == 0:
                    break
                connection.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
            connection.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
            counters = connection.exec_driver_sql(
                "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables "
                "WHERE relname = 'emails'").one()
        return content, tuple(counters)
    if db.kind == "mariadb":
        with db.engine.connect() as connection:
            return content, connection.exec_driver_sql("CHECKSUM TABLE emails").one()[1]
    path = Path(db.url.removeprefix("sqlite:///"))
    return content, sha256(path), leftovers(path)


@pytest.fixture
def emails_site(db, backend, tmp_path):
    """POLICY over the emails table in the throwaway database of this backend."""
    db.run(EMAILS.format(stamp=STAMP[db.kind]))
    columns = ("id", "customer_id", "subject", "submitted_at")
    db.insert("emails", [
        dict(zip(columns, (*row[:3], row[3] and datetime.fromisoformat(row[3])), strict=True))
        for row in ROWS
    ])
    return make_site(tmp_path, backend)


def test_validate_and_plan_json_on_every_backend(emails_site):
    """The same policy over the same rows gives the same verdict and numbers on every backend."""
    validated = emails_site.run("validate")
    planned = emails_site.run("plan", "--as-of", AS_OF, "--json")

    plans = json.loads(planned.stdout)
    assert (0, 0) == (validated.returncode, planned.returncode), validated.stderr
    assert EXPECTED == {p["rule"]: {k: p[k] for k in EXPECTED[p["rule"]]} for p in plans}


def test_a_dry_run_writes_nothing_on_any_backend(db, emails_site):
    """``plan`` and ``run --dry-run``: content and write counters of the table stay the same.

    PostgreSQL: n_tup_ins/upd/del of pg_stat_user_tables; MariaDB: CHECKSUM TABLE; SQLite: the
    file's sha256, and no -journal or -wal file left beside it.
    """
    before = _write_counters(db)

    codes = [emails_site.run("plan", "--as-of", AS_OF).returncode,
             emails_site.run("run", "--dry-run", "--as-of", AS_OF, "--json").returncode]

    assert ([0, 0], before) == (codes, _write_counters(db))
    assert db.kind != "sqlite" or [] == before[2]


DEMO_NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)


def test_the_demo_validates_and_plans_every_example_rule(tmp_path):
    """The demo store and the shipped policies/: validate exits 0, every rule plans cleanly."""
    database = tmp_path / "app.db"
    build_demo_store(database, now=DEMO_NOW, scale=0.05)
    key = tmp_path / "pseudonym.key"
    key.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    site = make_site(tmp_path, f"sqlite:///{database}", extra=(
        f'\n[pseudonymize]\nkey_id = "demo-1"\n\n[pseudonymize.keys.demo-1]\nfile = "{key}"\n'))
    site.config.write_text(site.config.read_text(encoding="utf-8").replace(
        f'policy_dir = "{site.policies}"', f'policy_dir = "{EXAMPLES}"'), encoding="utf-8")
    before = site.digest()

    validated = site.run("validate")
    planned = site.run("plan", "--as-of", DEMO_NOW.date().isoformat(), "--json")

    plans = json.loads(planned.stdout)
    assert (0, 0) == (validated.returncode, planned.returncode), validated.stderr
    assert [rule.id for rule in ordered(load_policies(EXAMPLES).rules)] == [
        p["rule"] for p in plans]
    assert [] == [(p["rule"], p["error"]) for p in plans if p["error"] is not None]
    assert before == site.digest()
