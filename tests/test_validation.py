"""Phase two of validation: every entry checked against the live store, each problem at its key.

Every test runs on SQLite, PostgreSQL and MariaDB.  A problem names the policy file, the line of
the key it is about (the offending column, value or strategy, not just the rule) and the id of
the rule, hold or retention.
"""

from __future__ import annotations

import pytest

from retentiond.errors import Problem
from retentiond.policy.loader import load_policies
from retentiond.stores.registry import Stores
from retentiond.stores.sql import SqlStoreSettings
from retentiond.validation import validate_live

STAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}

PEOPLE = """
CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    email VARCHAR(40) NOT NULL UNIQUE,
    name VARCHAR(60) NOT NULL,
    code VARCHAR(10),
    ip VARCHAR(45),
    status VARCHAR(10),
    score INTEGER,
    customer_id INTEGER,
    created_at {stamp},
    born_on DATE
)
"""
NO_KEY = "CREATE TABLE audit_trail (entry VARCHAR(40), created_at {stamp})"

RULE_ID = "people-12-months"
RULE = f"""\
rules:
  - id: {RULE_ID}
    description: People are deleted 12 months after they sign up.
    store: app
    table: people
    age:
      column: created_at
      older_than: 12 months
    action:
      type: delete
"""
HOLD_ID = "litigation-42"
HOLD = f"""\
holds:
  - id: {HOLD_ID}
    reason: Litigation about customer 42.
    store: app
    table: people
    where: {{column: customer_id, value: 42}}
"""
RETENTION_ID = "people-tax-10-years"
RETENTION = f"""\
retain:
  - id: {RETENTION_ID}
    reason: Kept ten years for tax law.
    store: app
    table: people
    column: created_at
    for: 10 years
"""


def swap(text, old, new):
    """Return ``text`` with ``old`` (which must occur exactly once) replaced by ``new``."""
    assert 1 == text.count(old), old
    return text.replace(old, new)


def with_where(*lines):
    """Return RULE with a block-style ``where:`` made of ``lines`` before its ``age:``."""
    block = "".join(f"      {line}\n" for line in lines)
    return swap(RULE, "    age:\n", f"    where:\n{block}    age:\n")


def with_action(*lines):
    """Return RULE with its action replaced by ``lines`` (under ``action:``)."""
    block = "".join(f"      {line}\n" for line in lines)
    return swap(RULE, "      type: delete\n", block)


def anonymize(column_line):
    """Return RULE anonymizing one column, given as one flow-style YAML line."""
    return with_action("type: anonymize", "columns:", f"  {column_line}")


def pseudonymize(column_line):
    """Return RULE pseudonymizing one column, given as one flow-style YAML line."""
    return with_action("type: pseudonymize", "columns:", f"  {column_line}")


def line_of(text, needle):
    """The 1-based number of the one line of ``text`` that contains ``needle``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert 1 == len(found), (needle, found)
    return found[0]


def seen(problem, fragment):
    """A problem as (file, line, subject, fragment); its whole text when it lacks ``fragment``."""
    what = fragment if fragment in problem.what else problem.what
    return problem.file, problem.line, problem.subject, what


@pytest.fixture
def people(db):
    """The people table (every kind of column a check looks at) and a table without a key."""
    db.run(PEOPLE.format(stamp=STAMP[db.kind]), NO_KEY.format(stamp=STAMP[db.kind]))


@pytest.fixture
def connect(make_store):
    """Stores with one store ``app`` at the given URL, opened through ``make_store``."""

    def connect(url):
        return Stores({"app": SqlStoreSettings(url=url)}, lambda _name, settings: make_store(
            settings.url))

    return connect


@pytest.fixture
def check(tmp_path, backend, connect):
    """Validate ``{file name: YAML}`` against the live ``app`` store; return the problems."""

    def check(files, url=None, **options):
        directory = tmp_path / "policies"
        directory.mkdir(exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text, encoding="utf-8")
        return validate_live(load_policies(directory), connect(url or backend), **options)

    return check


RULE_CASES = [
    pytest.param(swap(RULE, "table: people", "table: nope"), "table: nope",
                 "table 'nope' does not exist in store 'app'", id="table-missing"),
    pytest.param(swap(RULE, "table: people", "table: audit_trail"), "table: audit_trail",
                 "table 'audit_trail' has no primary key", id="no-primary-key"),
    pytest.param(swap(RULE, "column: created_at", "column: nope"), "column: nope",
                 "column 'nope' does not exist in table 'people'", id="age-column-missing"),
    pytest.param(swap(RULE, "column: created_at", "column: name"), "column: name",
                 "not a date or time", id="age-column-not-a-time"),
    pytest.param(with_where("column: nope", "op: eq", "value: 1"), "column: nope",
                 "column 'nope' does not exist in table 'people'", id="filter-column-missing"),
    pytest.param(with_where("any:", "  - {column: status, value: closed}", "  - column: nope",
                            "    op: is_null"), "column: nope",
                 "column 'nope' does not exist in table 'people'", id="nested-filter-column"),
    pytest.param(with_where("column: score", "op: eq", "value: abc"), "value: abc",
                 "'abc' is not a integer value for column 'score'", id="text-for-integer"),
    pytest.param(with_where("column: status", "op: eq", "value: 42"), "value: 42",
                 "42 is not a text value for column 'status'", id="integer-for-text"),
    pytest.param(with_where("column: score", "op: in", "value: [1, two]"), "value: [1, two]",
                 "'two' is not a integer value for column 'score'", id="one-bad-in-a-list"),
    pytest.param(with_where("column: born_on", "op: lt", "value: 2024-01-01 10:00:00"),
                 "value: 2024-01-01", "has a time but column 'born_on' holds dates",
                 id="time-for-date"),
    pytest.param(with_where("column: score", "op: like", "value: '1%'"), "value: '1%'",
                 "'like' needs a text column; 'score' is", id="like-on-integer"),
    pytest.param(anonymize("name: {strategy: nullify}"), "name: {strategy: nullify}",
                 "column 'name' is NOT NULL, so nullify cannot empty it",
                 id="nullify-not-null"),
    pytest.param(anonymize("code: {strategy: constant, value: much too long for ten}"),
                 "code: {strategy: constant",
                 "'much too long for ten' has 21 characters but column 'code' holds 10",
                 id="constant-too-long"),
    pytest.param(anonymize("email: {strategy: constant, value: gone@example.invalid}"),
                 "email: {strategy: constant",
                 "column 'email' is unique; one constant would collide", id="constant-on-unique"),
    pytest.param(anonymize("score: {strategy: mask}"), "score: {strategy: mask}",
                 "mask needs a text column; 'score' is", id="mask-on-integer"),
    pytest.param(anonymize("status: {strategy: generalize, to: month}"), "status: {strategy",
                 "generalize to month needs a date or time column; 'status' is",
                 id="month-on-text"),
    pytest.param(anonymize("status: {strategy: generalize, step: 10}"), "status: {strategy",
                 "generalize with step needs a number column; 'status' is", id="step-on-text"),
    pytest.param(anonymize("code: {strategy: generalize, to: network}"), "code: {strategy",
                 "generalize to network needs a text column of at least 15 characters; 'code'",
                 id="network-on-short-text"),
    pytest.param(anonymize("code: {strategy: pk_derived}"), "code: {strategy: pk_derived}",
                 "'erased+{pk}@example.invalid' can need 43 characters but column 'code' holds 10",
                 id="pk-derived-too-long"),
    pytest.param(anonymize("id: {strategy: constant, value: 0}"), "id: {strategy",
                 "'id' is the primary key", id="anonymize-primary-key"),
    pytest.param(anonymize("nope: {strategy: nullify}"), "nope: {strategy",
                 "column 'nope' does not exist in table 'people'", id="anonymize-missing-column"),
    pytest.param(swap(RULE, "    age:\n", "    subjects: {customer: customer_id, person: nope}\n"
                                           "    age:\n"), "subjects:",
                 "column 'nope' does not exist in table 'people'", id="subject-column-missing"),
    pytest.param(swap(RULE, "    age:\n", "    subjects:\n      customer: customer_id\n"
                                           "      person: nope\n    age:\n"), "person: nope",
                 "column 'nope' does not exist in table 'people'", id="subject-column-block"),
    pytest.param(pseudonymize("score: {domain: people}"), "score: {domain",
                 "pseudonyms are text; 'score' is", id="pseudonymize-integer"),
    pytest.param(pseudonymize("code: {domain: people, length: 52}"), "code: {domain",
                 "column 'code' holds 10 characters, fewer than the 52 needed",
                 id="pseudonym-too-long"),
    pytest.param(pseudonymize("email: {domain: people, length: 8}"), "email: {domain",
                 "'email' is unique or joined; a pseudonym of 8 characters may collide",
                 id="pseudonym-short-on-unique"),
]


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(("text", "needle", "fragment"), RULE_CASES)
def test_a_rule_that_does_not_fit_the_table_is_reported_at_its_key(
    check, tmp_path, text, needle, fragment,
):
    """A rule that does not fit the live table gives one problem at the offending key's line."""
    found = check({"people.yaml": text})

    expected = (tmp_path / "policies" / "people.yaml", line_of(text, needle), RULE_ID, fragment)
    assert [expected] == [seen(problem, fragment) for problem in found]


GUARD_CASES = [
    pytest.param(swap(HOLD, "table: people", "table: nope"), ("table: nope", HOLD_ID),
                 "table 'nope' does not exist in store 'app'", id="hold-table-missing"),
    pytest.param(swap(HOLD, "column: customer_id", "column: nope"), ("where:", HOLD_ID),
                 "column 'nope' does not exist in table 'people'", id="hold-filter-column"),
    pytest.param(swap(HOLD, "value: 42", "value: forty-two"), ("where:", HOLD_ID),
                 "'forty-two' is not a integer value", id="hold-filter-value"),
    pytest.param(swap(RETENTION, "table: people", "table: nope"), ("table: nope", RETENTION_ID),
                 "table 'nope' does not exist in store 'app'", id="retention-table-missing"),
    pytest.param(swap(RETENTION, "column: created_at", "column: nope"),
                 ("column: nope", RETENTION_ID), "column 'nope' does not exist in table 'people'",
                 id="retention-column-missing"),
    pytest.param(swap(RETENTION, "column: created_at", "column: score"),
                 ("column: score", RETENTION_ID), "not a date or time",
                 id="retention-column-not-a-time"),
]


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(("text", "at", "fragment"), GUARD_CASES)
def test_a_hold_or_retention_that_does_not_fit_is_reported_at_its_key(
    check, tmp_path, text, at, fragment,
):
    """Holds and minimum retentions are checked like rules: table, columns, filter values."""
    needle, subject = at

    found = check({"guards.yaml": text})

    expected = (tmp_path / "policies" / "guards.yaml", line_of(text, needle), subject, fragment)
    assert [expected] == [seen(problem, fragment) for problem in found]


@pytest.mark.usefixtures("people")
def test_a_pseudonymize_rule_without_a_configured_key_is_reported(check, tmp_path):
    """Without a pseudonym key in the settings, a pseudonymize rule could never run: a problem."""
    text = pseudonymize("email: {domain: people}")

    found = check({"people.yaml": text}, pseudonym_key=False)

    fragment = "pseudonymizing needs a key, and the config names none"
    assert [(tmp_path / "policies" / "people.yaml", line_of(text, "action:"), RULE_ID,
             fragment)] == [seen(problem, fragment) for problem in found]


@pytest.mark.usefixtures("people")
def test_an_unknown_store_is_reported_at_the_store_key(check, tmp_path):
    """A store the config does not name is a problem at the entry's ``store:`` line."""
    text = swap(RULE, "store: app", "store: billing")

    found = check({"people.yaml": text})

    fragment = "store 'billing' is not configured (configured: app)"
    assert [(tmp_path / "policies" / "people.yaml", 4, RULE_ID, fragment)] == [
        seen(problem, fragment) for problem in found
    ]
    assert ["add [stores.billing] to the config file"] == [problem.fix for problem in found]


def test_an_unreachable_store_is_reported_once(check, server, tmp_path):
    """A store that cannot be reached is one problem, at the first entry using it, not one each.

    PostgreSQL and MariaDB: a closed port.  SQLite: a database file that does not exist (the
    store never creates one).
    """
    url = {
        "sqlite": f"sqlite:///{tmp_path}/missing.db",
        "postgresql": "postgresql+psycopg://postgres@127.0.0.1:1/app",
        "mariadb": "mysql+pymysql://root@127.0.0.1:1/app",
    }[server.kind]
    second = swap(swap(RULE, RULE_ID, "people-6-months"), "than: 12 months", "than: 6 months")
    second = swap(second, "type: delete", "type: anonymize\n      columns: {code: {strategy: "
                                          "nullify}}")

    found = check({"people.yaml": RULE + second[len("rules:\n"):], "holds.yaml": HOLD}, url=url)

    fragment = "store 'app': cannot connect to "
    assert [(tmp_path / "policies" / "people.yaml", 4, RULE_ID, fragment)] == [
        seen(problem, fragment) for problem in found
    ]
    assert found[0].fix.startswith("check stores.app.url")
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.usefixtures("people")
def test_several_problems_are_all_reported(check, tmp_path):
    """Problems in several entries and files are all reported together, each at its own key."""
    bad_age = swap(RULE, "column: created_at", "column: nope")
    two_problems = swap(
        with_where("column: score", "op: eq", "value: abc"), "      type: delete\n",
        "      type: anonymize\n      columns:\n        score: {strategy: mask}\n",
    )
    two_problems = swap(swap(two_problems, RULE_ID, "people-masked"), "than: 12 months",
                        "than: 6 months")
    guards = swap(HOLD, "table: people", "table: nope") + swap(
        RETENTION, "column: created_at", "column: gone")
    files = {"a.yaml": bad_age, "b.yaml": two_problems, "c.yaml": guards}

    found = check(files)

    directory = tmp_path / "policies"
    expected = [
        (directory / "a.yaml", line_of(bad_age, "column: nope"), RULE_ID),
        (directory / "b.yaml", line_of(two_problems, "value: abc"), "people-masked"),
        (directory / "b.yaml", line_of(two_problems, "score: {strategy: mask}"), "people-masked"),
        (directory / "c.yaml", line_of(guards, "table: nope"), HOLD_ID),
        (directory / "c.yaml", line_of(guards, "column: gone"), RETENTION_ID),
    ]
    assert sorted(expected) == sorted((p.file, p.line, p.subject) for p in found)


VALID = f"""\
rules:
  - id: {RULE_ID}
    description: People are deleted 12 months after they sign up.
    store: app
    table: people
    where:
      all:
        - {{column: status, op: in, value: [closed, left]}}
        - {{column: score, op: ge, value: 3}}
        - {{column: born_on, op: lt, value: 2000-01-01}}
        - {{column: created_at, op: gt, value: 2001-01-01}}
        - {{column: name, op: like, value: "A%"}}
        - not: {{column: customer_id, op: is_null}}
    age:
      column: created_at
      older_than: 12 months
    action:
      type: delete
  - id: people-anonymized
    description: People's details are coarsened after six months.
    store: app
    table: people
    where: {{column: status, value: open}}
    age:
      column: created_at
      older_than: 6 months
    action:
      type: anonymize
      columns:
        email: {{strategy: pk_derived, template: "erased+{{pk}}@x.invalid"}}
        name: {{strategy: mask, keep_last: 2}}
        code: {{strategy: nullify}}
        status: {{strategy: constant, value: gone}}
        ip: {{strategy: generalize, to: network}}
        score: {{strategy: generalize, step: 10}}
        born_on: {{strategy: generalize, to: year}}
  - id: people-pseudonymized
    description: Addresses of people born long ago are pseudonymized.
    store: app
    table: people
    where: {{column: status, value: archived}}
    age:
      column: born_on
      older_than: 50 years
    action:
      type: pseudonymize
      columns:
        email: {{domain: people}}
        code: {{domain: codes, length: 10}}
holds:
  - id: {HOLD_ID}
    reason: Litigation about customer 42.
    store: app
    table: people
    where: {{column: customer_id, op: in, value: [42, 43]}}
    expires: 2030-01-01
retain:
  - id: {RETENTION_ID}
    reason: Kept ten years for tax law.
    store: app
    table: people
    column: born_on
    for: 10 years
    where: {{column: status, value: closed}}
"""


def test_an_unreachable_store_is_pinned_where_the_caller_says(check, tmp_path):
    """With ``store_problem``, a store's problem is made there (the config's ``[stores.NAME]``)."""
    config = tmp_path / "retentiond.toml"

    found = check({"people.yaml": RULE}, url=f"sqlite:///{tmp_path}/missing.db",
                  store_problem=lambda _store, what, fix: Problem(config, 7, None, what, fix))

    assert [(config, 7, None, "store 'app': cannot connect to ")] == [
        seen(problem, "store 'app': cannot connect to ") for problem in found]


@pytest.mark.parametrize(("table", "fix"), [
    pytest.param("invoice", "did you mean 'Invoice'? write it as the store spells it (table "
                 "names are case-sensitive)", id="other-case"),
    pytest.param("invoices", "did you mean 'Invoice'? write it as the store spells it",
                 id="misspelt"),
    pytest.param("receipts", "check the table name (and schema) in the rule", id="far-off"),
])
def test_a_table_spelt_otherwise_is_named_with_the_real_spelling(check, db, tmp_path, table,
                                                                  fix):
    """``table: invoice`` where the table is ``Invoice``: not a driver error, the name to write."""
    db.run(f'CREATE TABLE "Invoice" (id INTEGER PRIMARY KEY, issued_at {STAMP[db.kind]})'
           if db.kind != "mariadb" else
           f"CREATE TABLE `Invoice` (id INTEGER PRIMARY KEY, issued_at {STAMP[db.kind]})")
    text = swap(swap(RULE, "table: people", f"table: {table}"), "column: created_at",
                "column: issued_at")

    found = check({"invoices.yaml": text})

    assert [(tmp_path / "policies" / "invoices.yaml", line_of(text, "table:"), RULE_ID,
             f"table {table!r} does not exist in store 'app'", fix)] == [
        (p.file, p.line, p.subject, p.what, p.fix) for p in found]


@pytest.mark.usefixtures("people")
def test_a_valid_set_has_no_problems(check):
    """Rules, holds and retentions that fit the live tables give no problems at all."""
    assert [] == check({"people.yaml": VALID})
