"""Coverage against the live stores, on every backend: personal data with no retention promise.

A clinic's tables: patients (mapped, one column ruled, one not, one found by its name),
notes (free text, a rule with a ``where:``: partly), visits (on PostgreSQL an ``INET``
column found by its type), products (nothing personal: ``product_name``, ``domain_name``)
and a ``retentiond_`` table of retentiond's own (left out, though it has an email).  The CLI
is run as an operator runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

STAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}
PEER = {"sqlite": "VARCHAR(45)", "postgresql": "INET", "mariadb": "VARCHAR(45)"}
"""How the visits' peer address is stored: found by its type on PostgreSQL only."""
CLINIC = [
    "CREATE TABLE patients (id INTEGER PRIMARY KEY, email VARCHAR(80), full_name VARCHAR(80), "
    "phone VARCHAR(40), created_at {stamp})",
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, patient_id INTEGER, kind VARCHAR(10), "
    "notes TEXT, written_at {stamp}, FOREIGN KEY (patient_id) REFERENCES patients (id))",
    "CREATE TABLE visits (id INTEGER PRIMARY KEY, peer {peer}, seen_at {stamp})",
    "CREATE TABLE products (id INTEGER PRIMARY KEY, product_name VARCHAR(80), "
    "domain_name VARCHAR(80))",
    "CREATE TABLE retentiond_own (id INTEGER PRIMARY KEY, email VARCHAR(80))",
]
POLICY = """\
subjects:
  patient: {description: A patient of the clinic}
data_map:
  - store: app
    table: patients
    subject: {patient: id}
    personal: {email: contact, full_name: identity}
    erase: {anonymize: {email: pk_derived, full_name: nullify}}
  - store: app
    table: notes
    subject: {patient: patient_id}
    erase: delete
rules:
  - id: patients-email
    description: A patient's email is anonymized two years after the account was made.
    store: app
    table: patients
    age: {column: created_at, older_than: 2 years}
    action: {type: anonymize, columns: {email: {strategy: pk_derived}}}
  - id: call-notes
    description: Notes of phone calls are deleted after a year.
    store: app
    table: notes
    age: {column: written_at, older_than: 1 year}
    where: {column: kind, op: eq, value: call}
    action: {type: delete}
"""


@dataclass(frozen=True)
class Clinic:
    """A config naming the backend's database as store ``app``, and its policy directory."""

    root: Path
    config: Path
    policies: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m retentiond --config CONFIG ARGS``; never raises."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTIOND_")}
        env["COLUMNS"] = "200"
        return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(self.config),
                               *args], capture_output=True, text=True, env=env, cwd=self.root,
                              timeout=120, check=False)


@pytest.fixture
def clinic(db, backend, tmp_path):
    """The clinic's tables on the backend, its data map and rules."""
    db.run(*(s.format(stamp=STAMP[db.kind], peer=PEER[db.kind]) for s in CLINIC))
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "clinic.yaml").write_text(POLICY, encoding="utf-8")
    config = tmp_path / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{tmp_path}/state.db"\n'
                      f'log_level = "warning"\n\n[stores.app]\nurl = "{backend}"\n',
                      encoding="utf-8")
    return Clinic(tmp_path, config, policies)


def expected_gaps(kind):
    """(table, column, source, retention, erasure) of each column not covered, by backend."""
    gaps = [("notes", "notes", "free text: notes", "partly", "delete"),
            ("patients", "full_name", "data map", "no", "anonymize"),
            ("patients", "phone", "name: phone", "no", None)]
    if kind == "postgresql":
        gaps.append(("visits", "peer", "type: INET", "no", None))
    return gaps


def gaps_of(document):
    """The same tuples, read from ``coverage --json``."""
    return [(t["table"], c["column"], c["source"], c["retention"], c["erasure"])
            for t in document["tables"] for c in t["columns"] if not c["covered"]]


def test_coverage_lists_each_personal_column_no_rule_or_mapping_covers(clinic, db):
    """Mapped and unruled, found by name, found by type, partly by a where: exit 1, as JSON."""
    result = clinic.cli("coverage", "--json")

    document = json.loads(result.stdout)
    assert (1, expected_gaps(db.kind), "") == (result.returncode, gaps_of(document),
                                               result.stderr)


def test_a_mapped_and_ruled_column_is_covered_and_state_tables_are_left_out(clinic, db):
    """patients.email has a rule and an erasure; retentiond_own and products are not listed."""
    document = json.loads(clinic.cli("coverage", "--json").stdout)

    email = next(c for t in document["tables"] if t["table"] == "patients"
                 for c in t["columns"] if c["column"] == "email")
    assert ({"column": "email", "category": "contact", "source": "data map",
             "retention": "yes", "rules": ["patients-email"], "erasure": "anonymize",
             "covered": True, "gaps": []},
            {"notes", "patients"} | ({"visits"} if db.kind == "postgresql" else set())) == (
        email, {t["table"] for t in document["tables"]})


def test_each_gap_is_a_line_that_names_it(clinic, db):
    """The human listing: one entry per gap, store.table.column, what is missing, uncropped."""
    result = clinic.cli("coverage")

    named = {f"app.{table}.{column}" for table, column, *_ in expected_gaps(db.kind)}
    found = {word for word in result.stdout.split() if word.startswith("app.")}
    assert (1, named, f"{len(named)} not covered") == (
        result.returncode, found, result.stdout.splitlines()[0].split("; ")[1])


def test_no_gap_exits_zero(clinic, db):
    """A rule on every personal column and an erasure for each: nothing listed, exit 0."""
    db.run("DROP TABLE notes", "DROP TABLE visits")
    (clinic.policies / "clinic.yaml").write_text("""\
subjects:
  patient: {description: A patient of the clinic}
data_map:
  - store: app
    table: patients
    subject: {patient: id}
    personal: {email: contact, full_name: identity, phone: contact}
    erase: delete
rules:
  - id: patients
    description: Patients are deleted two years after the account was made.
    store: app
    table: patients
    age: {column: created_at, older_than: 2 years}
    action: {type: delete}
""", encoding="utf-8")

    result = clinic.cli("coverage")

    assert (0, "3 personal column(s) in 1 table(s); 0 not covered\n") == (
        result.returncode, result.stdout)


def test_a_store_not_configured_is_bad_input(clinic):
    """``--store`` must name a configured store: one line, exit 2."""
    result = clinic.cli("coverage", "--store", "nope")

    assert (2, "error: Invalid value for --store: no store 'nope' is configured (configured: "
               "app); see 'retentiond --help'\n") == (result.returncode, result.stderr)


def test_the_review_report_shows_the_gaps(clinic, db):
    """``audit report``: a row per column not covered, named by store, table and column."""
    page = clinic.root / "report.html"

    result = clinic.cli("audit", "report", "--output", str(page))

    html = page.read_text(encoding="utf-8")
    named = sorted(f"app.{table}.{column}" for table, column, *_ in expected_gaps(db.kind))
    found = sorted(part.split('"')[0] for part in html.split('data-gap="')[1:])
    assert (0, named) == (result.returncode, found)


def test_the_public_schedule_counts_the_gaps_per_table(clinic, db):
    """The public JSON schedule: per table, how many columns and their categories, no names."""
    result = clinic.cli("schedule", "--format", "json")

    document = json.loads(result.stdout)
    expected = [{"store": "app", "table": "notes", "columns": 1, "categories": ["content"]},
                {"store": "app", "table": "patients", "columns": 2,
                 "categories": ["contact", "identity"]}]
    if db.kind == "postgresql":
        expected.append({"store": "app", "table": "visits", "columns": 1,
                         "categories": ["network"]})
    assert (0, expected, False) == (result.returncode, document["unpromised"],
                                    "full_name" in result.stdout)


def test_the_internal_schedule_names_the_columns(clinic):
    """The internal Markdown schedule names each column and what it lacks."""
    result = clinic.cli("schedule", "--internal")

    section = result.stdout.split("## Personal data without a retention promise")[1]
    assert ("- `app.patients`: full_name (identity, found by data map): no retention rule; "
            "phone (contact, found by name: phone): no retention rule, no erasure mapping.") in (
        section.splitlines())


def test_a_store_that_cannot_be_read_is_named_not_fatal_to_the_report(clinic):
    """The report and the schedule name a store they could not read; coverage refuses (2)."""
    with clinic.config.open("a", encoding="utf-8") as config:
        config.write(f'\n[stores.gone]\nurl = "sqlite:///{clinic.root}/no-such-dir/x.db"\n')
    page = clinic.root / "report.html"

    reported = clinic.cli("audit", "report", "--output", str(page))
    scheduled = clinic.cli("schedule")
    covered = clinic.cli("coverage")

    assert ((0, True),
            (0, "warning: store 'gone' could not be read: its personal columns without a "
                "retention promise are not listed\n"),
            (2, True)) == (
        (reported.returncode, "not read: <code>gone</code>" in page.read_text(encoding="utf-8")),
        (scheduled.returncode, scheduled.stderr),
        (covered.returncode, covered.stderr.startswith("error: store 'gone': cannot connect")))
