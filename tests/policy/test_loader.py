"""Phase one of validation: every problem in the policy files names file, line, what and fix."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from retentiond.actions import AnonymizeOptions, DeleteOptions
from retentiond.actions.anonymize import Generalize, PkDerived
from retentiond.errors import PolicyError
from retentiond.policy.filters import AllOf, AnyOf, Condition, NotOf, Op
from retentiond.policy.loader import load_policies
from retentiond.policy.model import Age, Hold, Limits, Retention, Rule, Schedule
from retentiond.policy.periods import Period

BASE = """\
rules:
  - id: emails-12-months
    description: Emails are deleted 12 months after submission.
    store: app
    table: emails
    age:
      column: submitted_at
      older_than: 12 months
    action:
      type: delete
"""
"""A valid rule; its lines are numbered 1 to 10, and added lines start at 11."""

RULE_ID = "emails-12-months"


def swap(old, new):
    """Return BASE with ``old`` replaced by ``new`` (which must be there)."""
    assert old in BASE
    return BASE.replace(old, new)


def after_older_than(line):
    """Return BASE with ``line`` added to ``age`` after ``older_than`` (as line 9)."""
    return swap("      older_than: 12 months\n", f"      older_than: 12 months\n      {line}\n")


def anonymize(columns):
    """Return BASE with its delete action replaced by anonymizing ``columns`` (YAML lines)."""
    block = "".join(f"        {line}\n" for line in columns)
    return swap("      type: delete\n", f"      type: anonymize\n      columns:\n{block}")


def write(directory, files):
    """Write each ``{name: yaml_text}`` into ``directory`` and return the directory."""
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def problems_of(tmp_path, files):
    """Return the problems that loading ``files`` (``{name: yaml_text}``) reports."""
    directory = write(tmp_path / "policies", files)
    with pytest.raises(PolicyError) as info:
        load_policies(directory)
    return info.value.problems


def single_problem(tmp_path, text):
    """Return the one problem loading ``text`` as ``policy.yaml`` reports (failing on more)."""
    found = problems_of(tmp_path, {"policy.yaml": text})
    assert ["policy.yaml"] == [problem.file.name for problem in found], found
    return found[0]


PHASE_ONE = [
    pytest.param(
        swap("    store: app\n", "   store: app\n"), (4, None),
        ("YAML", "expected"), "fix the YAML syntax", id="bad-indentation",
    ),
    pytest.param(
        swap("    store: app\n", "    store: app: db\n"), (4, None),
        ("YAML", "mapping values are not allowed"), "fix the YAML syntax", id="stray-colon",
    ),
    pytest.param(
        "rules:\n\t- id: x\n", (2, None),
        ("YAML", "'\\t'"), "fix the YAML syntax", id="tab",
    ),
    pytest.param(
        BASE + "    description: Said twice.\n", (11, None),
        ("duplicate key", "description"), "remove or rename one of the duplicate keys",
        id="duplicate-rule-key",
    ),
    pytest.param(
        after_older_than("older_than: 6 months"),
        (9, None), ("duplicate key", "older_than"), "duplicate keys", id="duplicate-nested-key",
    ),
    pytest.param(
        BASE + "    colour: red\n", (11, RULE_ID),
        ("unknown key", "colour"), "correct its spelling", id="unknown-rule-key",
    ),
    pytest.param(
        after_older_than("olderthan: 3 days"),
        (9, RULE_ID), ("unknown key", "olderthan"), "correct its spelling", id="unknown-age-key",
    ),
    pytest.param(
        anonymize(["email: {strategy: mask, keep_lst: 2}"]), (12, RULE_ID),
        ("unknown key", "keep_lst"), "correct its spelling", id="unknown-strategy-key",
    ),
    pytest.param(
        "rule:\n" + BASE.removeprefix("rules:\n"), (1, None),
        ("unknown key", "rule"), "correct its spelling", id="unknown-top-level-key",
    ),
    pytest.param(
        swap("    description: Emails are deleted 12 months after submission.\n", ""), (2, RULE_ID),
        ("'description' is missing",), "add 'description:'", id="missing-description",
    ),
    pytest.param(
        swap("      column: submitted_at\n", ""), (6, RULE_ID),
        ("'column' is missing",), "add 'column:'", id="missing-age-column",
    ),
    pytest.param(
        swap("    action:\n      type: delete\n", ""), (2, RULE_ID),
        ("'action' is missing",), "add 'action:'", id="missing-action",
    ),
    pytest.param(
        swap("  - id: emails-12-months\n    description", "  - description"), (2, "rule #1"),
        ("'id' is missing",), "add 'id:'", id="missing-id",
    ),
    pytest.param(
        swap("12 months", "12 monts"), (8, RULE_ID),
        ("older_than", "unknown unit 'monts'", "12 monts"), "months", id="misspelt-unit",
    ),
    pytest.param(
        swap("12 months", "twelve months"), (8, RULE_ID),
        ("older_than", "is not a period"), "'30 days'", id="period-in-words",
    ),
    pytest.param(
        swap("12 months", "0 days"), (8, RULE_ID),
        ("older_than", "zero period"), "must be positive", id="zero-period",
    ),
    pytest.param(
        after_older_than("timezone: Mars/Olympus"),
        (9, RULE_ID), ("timezone", "unknown timezone 'Mars/Olympus'"), "Europe/Berlin",
        id="unknown-timezone",
    ),
    pytest.param(
        swap("type: delete", "type: shred"), (9, RULE_ID),
        ("action", "'shred'"), "'delete', 'anonymize', 'pseudonymize', 'quarantine'",
        id="unknown-action-type",
    ),
    pytest.param(
        swap("type: delete", "on_children: refuse"), (9, RULE_ID),
        ("action", "'type'"), "add the missing key", id="action-without-type",
    ),
    pytest.param(
        anonymize(["email: {strategy: shred}"]), (12, RULE_ID),
        ("email", "'shred'"), "'nullify', 'constant', 'mask', 'generalize', 'pk_derived'",
        id="unknown-anonymize-strategy",
    ),
    pytest.param(
        BASE + "    where: {column: status, op: equals, value: closed}\n", (11, RULE_ID),
        ("op", "'eq'"), "correct the value", id="unknown-operator",
    ),
    pytest.param(
        BASE + "    schedule: {cron: '61 * * * *'}\n", (11, RULE_ID),
        ("cron", "'61 * * * *' is not a cron expression"), "five fields", id="cron-minute-61",
    ),
    pytest.param(
        BASE + "    schedule: {cron: '0 3 * *'}\n", (11, RULE_ID),
        ("cron", "is not a cron expression"), "five fields", id="cron-four-fields",
    ),
    pytest.param(
        BASE + "    schedule: {cron: '0 3 * * *', every: 1 hour}\n", (11, RULE_ID),
        ("schedule", "exactly one of 'cron' or 'every'"), "correct the value",
        id="schedule-cron-and-every",
    ),
    pytest.param(
        BASE + "    schedule: {}\n", (11, RULE_ID),
        ("schedule", "exactly one of 'cron' or 'every'"), "correct the value",
        id="schedule-neither",
    ),
    pytest.param(
        anonymize(["born_on: {strategy: generalize, to: year, step: 10}"]), (12, RULE_ID),
        ("born_on", "exactly one of 'to'", "'step'"), "correct the value",
        id="generalize-to-and-step",
    ),
    pytest.param(
        anonymize(["born_on: {strategy: generalize}"]), (12, RULE_ID),
        ("born_on", "exactly one of 'to'", "'step'"), "correct the value",
        id="generalize-neither",
    ),
    pytest.param(
        anonymize(["email: {strategy: pk_derived, template: erased@example.invalid}"]),
        (12, RULE_ID), ("email", "'{pk}' exactly once"), "correct the value",
        id="pk-derived-no-pk",
    ),
    pytest.param(
        anonymize(["email: {strategy: pk_derived, template: '{pk}-{pk}'}"]),
        (12, RULE_ID), ("email", "'{pk}' exactly once"), "correct the value",
        id="pk-derived-two-pks",
    ),
    pytest.param(
        anonymize([]).replace("      columns:\n", "      columns: {}\n"), (11, RULE_ID),
        ("columns", "at least 1 item"), "correct the value", id="anonymize-no-columns",
    ),
    pytest.param(
        swap("      type: delete\n", "      type: pseudonymize\n      columns:\n"
                                       "        email: {domain: mail, length: 7}\n"),
        (12, RULE_ID), ("length", "greater than or equal to 8"), "correct the value",
        id="pseudonym-too-short",
    ),
    pytest.param(
        swap("      type: delete\n", "      type: quarantine\n"), (9, RULE_ID),
        ("'release_after' is missing",), "add 'release_after:'", id="quarantine-no-release",
    ),
    pytest.param(
        BASE + "    batch_size: 0\n", (11, RULE_ID),
        ("batch_size", "greater than 0"), "correct the value", id="batch-size-zero",
    ),
    pytest.param(
        "rules: {}\n", (1, None), ("rules", "valid list"), "correct the value",
        id="rules-not-a-list",
    ),
    pytest.param(
        "retain:\n  - id: tax\n    reason: Tax law.\n    store: app\n    table: invoices\n"
        "    column: issued_at\n", (2, "tax"), ("'for' is missing",), "add 'for:'",
        id="retention-without-for",
    ),
    pytest.param(
        "holds:\n  - id: lit-1\n    store: app\n    table: invoices\n", (2, "lit-1"),
        ("'reason' is missing",), "add 'reason:'", id="hold-without-reason",
    ),
]


@pytest.mark.parametrize(("text", "at", "what", "fix"), PHASE_ONE)
def test_each_phase_one_error_is_one_problem_at_its_line(tmp_path, text, at, what, fix):
    """One mistake gives exactly one problem naming file, line, entry, what is wrong and the fix."""
    problem = single_problem(tmp_path, text)

    assert at == (problem.line, problem.subject)
    assert list(what) == [word for word in what if word in problem.what], problem.what
    assert fix in problem.fix


UNSAFE_NAMES = ['"emails"', "emails;", "emails; DROP TABLE users", "'my emails'", "a.b.c",
                "x) OR (1=1", "emails--", "`emails`"]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_table_names_must_be_plain_identifiers(tmp_path, name):
    """Quotes, semicolons, spaces, SQL and three-part names are refused in ``table``."""
    quoted = "'" + name.replace("'", "''") + "'"

    problem = single_problem(tmp_path, swap("table: emails", f"table: {quoted}"))

    assert (5, RULE_ID) == (problem.line, problem.subject)
    assert f"{name!r} is not a table name" in problem.what
    assert "letters, digits and underscores only" in problem.fix


COLUMN_PLACES = [
    pytest.param(lambda name: swap("column: submitted_at", f"column: {name}"), 7, id="age-column"),
    pytest.param(lambda name: BASE + f"    where: {{column: {name}, value: 1}}\n", 11,
                 id="where-column"),
    pytest.param(lambda name: BASE + f"    where:\n      not:\n        column: {name}\n"
                 "        op: is_null\n", 13, id="nested-where-column"),
    pytest.param(lambda name: anonymize([f"{name}: {{strategy: nullify}}"]), 12,
                 id="anonymized-column"),
]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
@pytest.mark.parametrize(("place", "line"), COLUMN_PLACES)
def test_column_names_must_be_plain_identifiers(tmp_path, place, line, name):
    """Wherever a column is named, anything but a plain identifier is refused at its line."""
    quoted = "'" + name.replace("'", "''") + "'"

    problem = single_problem(tmp_path, place(quoted))

    assert (line, RULE_ID) == (problem.line, problem.subject)
    assert f"{name!r} is not a plain identifier" in problem.what
    assert "letters, digits and underscores only" in problem.fix


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ("    where: {}\n", 11),
        ("    where: {all: []}\n", 11),
        ("    where: {any: []}\n", 11),
        ("    where:\n      not: {}\n", 12),
        ("    where:\n      all:\n        - {column: status, value: closed}\n        - any: []\n",
         14),
    ],
)
def test_an_empty_filter_is_reported_as_matching_everything(tmp_path, where, line):
    """``{}``, ``all: []`` and ``any: []`` would select every record, so they are errors."""
    problem = single_problem(tmp_path, BASE + where)

    assert (line, RULE_ID) == (problem.line, problem.subject)
    assert "an empty filter would match every record" == problem.what
    assert "remove 'where'" in problem.fix


@pytest.mark.parametrize(
    ("condition", "what", "fix"),
    [
        ("{column: status, op: in, value: closed}", "op 'in' needs a non-empty list", "value"),
        ("{column: status, op: not_in, value: []}", "op 'not_in' needs a non-empty list",
         "value"),
        ("{column: closed_at, op: is_null, value: 1}", "op 'is_null' takes no value",
         "remove 'value'"),
        ("{column: status, op: eq}", "op 'eq' needs a single 'value'", "value"),
        ("{column: status}", "op 'eq' needs a single 'value'", "value"),
        ("{column: status, op: ne, value: [a, b]}", "op 'ne' needs a single 'value'", "value"),
        ("{column: status, op: like, value: 3}", "op 'like' needs a text 'value'", "value"),
    ],
)
def test_operator_and_value_must_fit(tmp_path, condition, what, fix):
    """List operators need a list, null tests take no value, the others exactly one value."""
    text = BASE + (
        "    where:\n"
        "      all:\n"
        "        - {column: kind, value: mail}\n"
        f"        - {condition}\n"
    )
    problem = single_problem(tmp_path, text)

    assert (14, RULE_ID) == (problem.line, problem.subject)
    assert what in problem.what
    assert fix in problem.what + problem.fix


def test_an_impossible_date_is_a_problem_not_a_crash(tmp_path):
    """``expires: 2027-02-30`` is reported at its line like every other mistake."""
    text = ("holds:\n  - id: lit-1\n    reason: Litigation.\n    store: app\n"
            "    table: invoices\n    expires: 2027-02-30\n")

    problem = single_problem(tmp_path, text)

    assert 6 == problem.line
    assert "2027-02-30" in str(problem)


def test_a_missing_directory_is_one_problem(tmp_path):
    """A policy directory that does not exist is named, with how to point at the right one."""
    with pytest.raises(PolicyError) as info:
        load_policies(tmp_path / "nowhere")

    (problem,) = info.value.problems
    assert (tmp_path / "nowhere", None) == (problem.file, problem.line)
    assert "does not exist" in problem.what
    assert "policy_dir" in problem.fix


@pytest.mark.parametrize("names", [[], ["README.md", "rules.json"]])
def test_a_directory_without_policy_files_is_one_problem(tmp_path, names):
    """A directory holding no *.yaml or *.yml file is an error, not an empty policy set."""
    directory = write(tmp_path / "policies", dict.fromkeys(names, "rules: []\n"))

    with pytest.raises(PolicyError) as info:
        load_policies(directory)

    (problem,) = info.value.problems
    assert directory == problem.file
    assert "no *.yaml or *.yml files" in problem.what
    assert "add policy files" in problem.fix


@pytest.mark.parametrize(
    ("text", "what", "fix"),
    [
        ("", "the file is empty", "remove the file"),
        ("# retention rules go here\n\n# nothing yet\n", "the file is empty", "remove the file"),
        ("- id: a\n- id: b\n", "a policy file must be a mapping", "start with 'rules:'"),
        ("just words\n", "a policy file must be a mapping", "start with 'rules:'"),
        ("rules: []\nholds: []\n", "the file declares nothing", "remove the file"),
    ],
)
def test_a_file_without_entries_is_one_problem_at_line_one(tmp_path, text, what, fix):
    """Empty files, comment-only files, lists and empty lists are errors at line 1."""
    problem = single_problem(tmp_path, text)

    assert (1, None) == (problem.line, problem.subject)
    assert what == problem.what
    assert fix in problem.fix


def test_every_problem_in_every_file_is_reported_at_once(tmp_path):
    """Loading does not stop at the first mistake: all files and all entries are checked."""
    second = BASE.replace(RULE_ID, "second").replace("12 months", "12 monts")
    third = (BASE.replace(RULE_ID, "third").replace("    store: app\n", "    colour: red\n"
             "    store: app\n") + "    batch_size: 0\n")
    files = {
        "a.yaml": BASE,
        "b.yaml": second,
        "c.yml": third,
        "d.yaml": "rules:\n  - id: x\n   store: app\n",
        "e.yaml": "",
    }

    found = problems_of(tmp_path, files)

    expected = [
        ("b.yaml", 8, "second"),
        ("c.yml", 4, "third"),
        ("c.yml", 12, "third"),
        ("d.yaml", 3, None),
        ("e.yaml", 1, None),
    ]
    actual = sorted((p.file.name, p.line, p.subject) for p in found)
    assert expected == actual


def test_policy_error_message_names_the_first_problem_and_counts_the_rest(tmp_path):
    """The exception text is the first problem as ``file:line: subject: what; fix``."""
    directory = write(tmp_path / "policies", {
        "a.yaml": BASE.replace("12 months", "12 monts"),
        "b.yaml": "",
    })

    with pytest.raises(PolicyError) as info:
        load_policies(directory)

    expected = (f"{directory / 'a.yaml'}:8: {RULE_ID}: older_than: unknown unit 'monts' in "
                "'12 monts'; use minutes, hours, days, weeks, months or years (and 1 more)")
    assert expected == str(info.value)
    assert (directory / "a.yaml", 8) == (info.value.file, info.value.line)


FULL = """\
# Everything the language offers, once.
rules:
  - id: tickets-anonymize
    description: Closed tickets lose the requester after a year and a half.
    store: app
    table: support.tickets
    age:
      column: closed_at
      older_than: 1 year, 6 months
      timezone: Europe/Berlin
    where:
      all:
        - {column: status, op: in, value: [closed, resolved]}
        - not:
            column: customer_id
            op: is_null
        - any:
            - {column: priority, op: lt, value: 3}
            - {column: channel, value: mail}
    action:
      type: anonymize
      columns:
        requester_email: {strategy: pk_derived}
        birth_date: {strategy: generalize, to: year}
    schedule:
      every: 1 hour
    limits:
      max_rows: 5000
      max_percent: 12.5
    batch_size: 500

  - id: emails-12-months
    description: Emails are deleted 12 months after submission.
    store: app
    table: emails
    age: {column: submitted_at, older_than: 12 months}
    action: {type: delete, on_children: delete}
    schedule: {cron: "15 2 * * *"}
    enabled: false

holds:
  - id: complaint-4711
    reason: Complaint by customer 4711.
    case: CASE-2026-017
    store: app
    table: emails
    where: {column: customer_id, value: 4711}
    expires: 2027-12-31

retain:
  - id: invoices-tax
    reason: Tax law.
    store: app
    table: invoices
    column: issued_at
    for: 10 years
"""


def test_a_valid_file_loads_into_the_models(tmp_path):
    """Periods are parsed, filters become a tree, holds keep their expiry, ``for`` is the period."""
    directory = write(tmp_path / "policies", {"full.yaml": FULL})

    loaded = load_policies(directory)

    tickets = Rule(
        id="tickets-anonymize",
        description="Closed tickets lose the requester after a year and a half.",
        store="app",
        table="support.tickets",
        age=Age(column="closed_at", older_than=Period(years=1, months=6),
                timezone="Europe/Berlin"),
        where=AllOf(all=[
            Condition(column="status", op=Op.IN, value=["closed", "resolved"]),
            NotOf(not_=Condition(column="customer_id", op=Op.IS_NULL)),
            AnyOf(any=[
                Condition(column="priority", op=Op.LT, value=3),
                Condition(column="channel", op=Op.EQ, value="mail"),
            ]),
        ]),
        action=AnonymizeOptions(columns={
            "requester_email": PkDerived(strategy="pk_derived"),
            "birth_date": Generalize(strategy="generalize", to="year"),
        }),
        schedule=Schedule(every=Period(hours=1)),
        limits=Limits(max_rows=5000, max_percent=12.5),
        batch_size=500,
    )
    emails = Rule(
        id="emails-12-months",
        description="Emails are deleted 12 months after submission.",
        store="app",
        table="emails",
        age=Age(column="submitted_at", older_than=Period(months=12)),
        action=DeleteOptions(on_children="delete"),
        schedule=Schedule(cron="15 2 * * *"),
        enabled=False,
    )
    hold = Hold(id="complaint-4711", reason="Complaint by customer 4711.", case="CASE-2026-017",
                store="app", table="emails",
                where=Condition(column="customer_id", value=4711), expires=date(2027, 12, 31))
    retention = Retention(id="invoices-tax", reason="Tax law.", store="app", table="invoices",
                          column="issued_at", period=Period(years=10))
    assert (tickets, emails) == loaded.rules
    assert (hold,) == loaded.holds
    assert (retention,) == loaded.retentions
    assert "UTC" == loaded.rules[1].age.timezone
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert ["complaint-4711"] == [h.id for h in loaded.holds_on("app", "emails", at)]
    assert ["invoices-tax"] == [r.id for r in loaded.retentions_on("app", "invoices")]



def test_sources_point_at_every_entry_and_nested_key(tmp_path):
    """``Source.line_of`` finds nested keys and list items, else their nearest ancestor."""
    directory = write(tmp_path / "policies", {"full.yaml": FULL})

    sources = load_policies(directory).sources

    tickets = sources["tickets-anonymize"]
    assert (directory / "full.yaml", 3) == (tickets.file, tickets.line)
    expected = {
        ("age",): 7,
        ("age", "older_than"): 9,
        ("age", "timezone"): 10,
        ("where", "all", 0): 13,
        ("where", "all", 1, "not", "op"): 16,
        ("where", "all", 2, "any", 1, "column"): 19,
        ("action", "columns", "birth_date"): 24,
        ("action", "columns", "birth_date", "to"): 24,
        ("limits", "max_percent"): 29,
        ("action", "columns", "nickname"): 22,
        ("no", "such", "key"): 3,
        (): 3,
    }
    actual = {path: tickets.line_of(path) for path in expected}
    assert expected == actual
    lines = {entry: (source.file.name, source.line) for entry, source in sources.items()}
    assert {
        "tickets-anonymize": ("full.yaml", 3),
        "emails-12-months": ("full.yaml", 32),
        "complaint-4711": ("full.yaml", 42),
        "invoices-tax": ("full.yaml", 51),
    } == lines


@pytest.mark.parametrize(("text", "key", "fix"), [
    pytest.param(after_older_than("olderthan: 3 days"), "olderthan",
                 "did you mean 'older_than'? correct its spelling", id="age"),
    pytest.param(BASE + "    descripton: again\n", "descripton",
                 "did you mean 'description'? correct its spelling", id="rule"),
    pytest.param(anonymize(["email: {strategy: mask, keep_lst: 2}"]), "keep_lst",
                 "did you mean 'keep_last'? correct its spelling", id="strategy-option"),
    pytest.param(BASE + "    colour: red\n", "colour", "remove it or correct its spelling",
                 id="nothing-close"),
])
def test_an_unknown_key_suggests_the_nearest_known_one(tmp_path, text, key, fix):
    """A misspelt key names the key of that place it is closest to (difflib), if one is close."""
    found = problems_of(tmp_path, {"policy.yaml": text})

    assert [(f"unknown key {key!r}", fix)] == [
        (problem.what, problem.fix) for problem in found if "unknown key" in problem.what]
