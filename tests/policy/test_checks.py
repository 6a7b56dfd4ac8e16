"""Checks across entries: unique ids, rules that contradict each other or a minimum retention."""

from __future__ import annotations

import pytest

from retentiond.errors import PolicyError
from retentiond.policy.loader import load_policies

DELETE = "type: delete"
QUARANTINE = "type: quarantine\nrelease_after: 6 months"
ANONYMIZE = "type: anonymize\ncolumns:\n  email: {strategy: nullify}"
ANONYMIZE_PHONE = "type: anonymize\ncolumns:\n  phone: {strategy: nullify}"
PSEUDONYMIZE = "type: pseudonymize\ncolumns:\n  email: {domain: customer-email}"
CLOSED = "{column: status, value: closed}"
OPEN = "{column: status, value: open}"


def rule(rule_id, older_than, action=DELETE, *, where=None, column="submitted_at",
         table="emails"):
    """Return one rule on ``app.<table>`` as an item of a ``rules:`` list (9 lines and more)."""
    lines = [
        f"  - id: {rule_id}",
        f"    description: Rule {rule_id}.",
        "    store: app",
        f"    table: {table}",
        "    age:",
        f"      column: {column}",
        f"      older_than: {older_than}",
        "    action:",
        *(f"      {line}" for line in action.splitlines()),
    ]
    if where is not None:
        lines.append(f"    where: {where}")
    return "\n".join(lines) + "\n"


def retention(retention_id, period, *, where=None, column="submitted_at", table="emails"):
    """Return one minimum retention on ``app.<table>`` as an item of a ``retain:`` list."""
    lines = [
        f"  - id: {retention_id}",
        "    reason: Kept by law.",
        "    store: app",
        f"    table: {table}",
        f"    column: {column}",
        f"    for: {period}",
    ]
    if where is not None:
        lines.append(f"    where: {where}")
    return "\n".join(lines) + "\n"


def hold(hold_id, table="emails"):
    """Return one hold on ``app.<table>`` as an item of a ``holds:`` list."""
    return f"  - id: {hold_id}\n    reason: Litigation.\n    store: app\n    table: {table}\n"


def rules(*items):
    """Return a policy file declaring ``items`` as its rules."""
    return "rules:\n" + "".join(items)


def line_of(text, needle):
    """Return the 1-based number of the line of ``text`` that contains ``needle``."""
    (number,) = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return number


def write(tmp_path, files):
    """Write ``{name: yaml_text}`` into a fresh policy directory and return it."""
    directory = tmp_path / "policies"
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def problems_of(tmp_path, files):
    """Return the problems loading ``files`` reports; an empty list when it loads."""
    try:
        load_policies(write(tmp_path, files))
    except PolicyError as exc:
        return list(exc.problems)
    return []


def test_a_duplicate_id_across_files_is_reported_at_its_second_occurrence(tmp_path):
    """The later entry is the problem, and its message points at the first one's file:line."""
    second = rules(rule("emails-12-months", "12 months", table="invoices"))
    files = {"a.yaml": rules(rule("emails-12-months", "12 months")), "b.yaml": second}

    found = problems_of(tmp_path, files)

    first = tmp_path / "policies" / "a.yaml"
    assert [("b.yaml", 2, "emails-12-months")] == [
        (p.file.name, p.line, p.subject) for p in found
    ]
    assert f"id 'emails-12-months' is already used at {first}:2" == found[0].what
    assert "its own id" in found[0].fix


def test_ids_are_unique_across_rules_holds_and_retentions(tmp_path):
    """A hold or retention may not reuse a rule's id either."""
    files = {
        "a.yaml": rules(rule("shared", "12 months")),
        "b.yaml": "holds:\n" + hold("shared") + "retain:\n" + retention("shared", "1 month"),
    }

    found = problems_of(tmp_path, files)

    assert [("b.yaml", 2, "shared"), ("b.yaml", 7, "shared")] == [
        (p.file.name, p.line, p.subject) for p in found
    ]
    assert all(f"{tmp_path / 'policies' / 'a.yaml'}:2" in p.what for p in found)


def test_a_duplicate_id_in_one_file_is_reported_where_it_is_repeated(tmp_path):
    """Within one file, the entry written further down is the repetition, whatever its kind."""
    text = "retain:\n" + retention("shared", "1 month", table="invoices") + rules(
        rule("shared", "12 months"))

    found = problems_of(tmp_path, {"a.yaml": text})

    assert [(9, "shared")] == [(p.line, p.subject) for p in found]  # retain: 1-7, rules: 8-
    assert f"{tmp_path / 'policies' / 'a.yaml'}:2" in found[0].what


CONTRADICTIONS = [
    pytest.param(
        [rule("delete-6", "6 months"), rule("anonymize-12", "12 months", ANONYMIZE)],
        "anonymize-12", "never acts: rule 'delete-6' already removes the same records at 6 months",
        id="delete-then-anonymize",
    ),
    pytest.param(
        [rule("anonymize-12", "12 months", ANONYMIZE), rule("delete-6", "6 months")],
        "anonymize-12", "never acts: rule 'delete-6' already removes the same records at 6 months",
        id="delete-then-anonymize-declared-backwards",
    ),
    pytest.param(
        [rule("delete-30", "30 days"), rule("quarantine-12", "12 months", QUARANTINE)],
        "quarantine-12", "never acts: rule 'delete-30' already removes",
        id="delete-then-quarantine",
    ),
    pytest.param(
        [rule("delete-12", "12 months"), rule("delete-1y", "1 year")],
        "delete-1y", "never acts: rule 'delete-12' already removes",
        id="delete-twice-12-months-is-1-year",
    ),
    pytest.param(
        [rule("first", "12 months", ANONYMIZE), rule("second", "12 months", ANONYMIZE)],
        "second", "contradicts rule 'first' on column(s) email: that rule already anonymizes",
        id="anonymize-twice",
    ),
    pytest.param(
        [rule("first", "12 months", ANONYMIZE), rule("second", "1 year", ANONYMIZE)],
        "second", "contradicts rule 'first' on column(s) email",
        id="anonymize-twice-12-months-is-1-year",
    ),
    pytest.param(
        [rule("anonymize-30", "30 days", ANONYMIZE),
         rule("pseudonymize-12", "12 months", PSEUDONYMIZE)],
        "pseudonymize-12", "contradicts rule 'anonymize-30' on column(s) email",
        id="anonymize-then-pseudonymize",
    ),
    pytest.param(
        [rule("first", "30 days", ANONYMIZE, where=CLOSED),
         rule("second", "12 months", DELETE, where=CLOSED),
         rule("third", "18 months", QUARANTINE, where=CLOSED)],
        "third", "never acts: rule 'second' already removes",
        id="same-filter-compared",
    ),
]


def test_many_rules_on_the_same_records_are_one_problem_each(tmp_path):
    """300 delete rules on one table: each later rule is reported once, not once per pair.

    Every rule from the second on never acts (the first removes the records earlier); that
    is 299 problems, where each pair used to be one (44,850 lines, and super-linear time).
    """
    items = [rule(f"delete-{n}", f"{n} days") for n in range(1, 301)]

    found = problems_of(tmp_path, {"rules.yaml": rules(*items)})

    assert [f"delete-{n}" for n in range(2, 301)] == sorted(
        (p.subject for p in found), key=lambda subject: int(str(subject).split("-")[1]))
    assert all("never acts" in p.what for p in found)


@pytest.mark.parametrize(("items", "reported", "what"), CONTRADICTIONS)
def test_rules_on_the_same_records_must_escalate(tmp_path, items, reported, what):
    """A later rule that takes away no more than an earlier one is an error on the later rule."""
    text = rules(*items)

    found = problems_of(tmp_path, {"rules.yaml": text})

    assert [("rules.yaml", line_of(text, f"- id: {reported}"), reported)] == [
        (p.file.name, p.line, p.subject) for p in found
    ]
    assert what in found[0].what
    assert "make later rules take away more than earlier ones" in found[0].fix


ESCALATIONS = [
    pytest.param([rule("p", "30 days", PSEUDONYMIZE), rule("a", "12 months", ANONYMIZE)],
                 id="pseudonymize-then-anonymize"),
    pytest.param([rule("a", "30 days", ANONYMIZE), rule("d", "12 months")],
                 id="anonymize-then-delete"),
    pytest.param([rule("p", "90 days", PSEUDONYMIZE), rule("q", "12 months", QUARANTINE)],
                 id="pseudonymize-then-quarantine"),
    pytest.param([rule("a", "12 months", ANONYMIZE), rule("b", "12 months", ANONYMIZE_PHONE)],
                 id="anonymize-other-columns"),
    pytest.param([rule("d", "6 months", where=CLOSED),
                  rule("a", "12 months", ANONYMIZE, where=OPEN)],
                 id="different-filters-not-compared"),
    pytest.param([rule("d", "6 months", where=CLOSED), rule("a", "12 months", ANONYMIZE)],
                 id="filter-and-no-filter-not-compared"),
    pytest.param([rule("d", "6 months"), rule("a", "12 months", ANONYMIZE, column="created_at")],
                 id="different-age-column"),
    pytest.param([rule("d", "6 months"), rule("a", "12 months", ANONYMIZE, table="invoices")],
                 id="different-table"),
]


@pytest.mark.parametrize("items", ESCALATIONS)
def test_rules_that_escalate_or_touch_other_records_load(tmp_path, items):
    """Taking away more as records age, or acting on other records, is not a contradiction."""
    assert [] == problems_of(tmp_path, {"rules.yaml": rules(*items)})


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(rule("p", "12 months", PSEUDONYMIZE), rule("a", "1 year", ANONYMIZE),
                     id="pseudonymize-and-anonymize"),
        pytest.param(rule("a", "12 months", ANONYMIZE), rule("d", "1 year"),
                     id="anonymize-and-delete"),
        pytest.param(rule("q", "12 months", QUARANTINE), rule("d", "1 year"),
                     id="quarantine-and-delete"),
    ],
)
def test_rules_at_the_same_age_get_one_verdict_whatever_their_order(tmp_path, first, second):
    """Whether two rules acting at the same age contradict does not depend on which comes first."""
    forward = problems_of(tmp_path / "forward", {"rules.yaml": rules(first, second)})
    backward = problems_of(tmp_path / "backward", {"rules.yaml": rules(second, first)})

    assert bool(forward) == bool(backward), (forward, backward)


def test_holds_never_contradict_rules(tmp_path):
    """Holds on a table with rules are fine: they add up and beat every rule."""
    text = rules(rule("d", "12 months")) + "holds:\n" + hold("h1") + hold("h2")

    assert [] == problems_of(tmp_path, {"a.yaml": text})


def test_a_rule_acting_before_a_whole_table_retention_is_an_error(tmp_path):
    """The rule's period is reported at its line, naming the retention and its period."""
    text = "retain:\n" + retention("emails-tax", "10 years") + rules(rule("early", "12 months"))

    found = problems_of(tmp_path, {"a.yaml": text})

    assert [("a.yaml", line_of(text, "older_than: 12 months"), "early")] == [
        (p.file.name, p.line, p.subject) for p in found
    ]
    assert "acts at 12 months but retention 'emails-tax'" in found[0].what
    assert "for 10 years" in found[0].what
    assert "lengthen the rule to at least 10 years" in found[0].fix


def test_a_retention_in_another_file_is_named_too(tmp_path):
    """Rules and retentions are compared across files."""
    files = {
        "billing.yaml": "retain:\n" + retention("emails-tax", "2 years"),
        "emails.yaml": rules(rule("early", "18 months", ANONYMIZE)),
    }

    found = problems_of(tmp_path, files)

    assert [("emails.yaml", 8, "early")] == [(p.file.name, p.line, p.subject) for p in found]
    assert "retention 'emails-tax'" in found[0].what


@pytest.mark.parametrize(
    ("kept", "items"),
    [
        pytest.param(retention("tax", "10 years", where="{column: kind, value: invoice}"),
                     [rule("early", "12 months")], id="retention-with-where"),
        pytest.param(retention("tax", "12 months"), [rule("r", "1 year")],
                     id="12-months-equals-1-year"),
        pytest.param(retention("tax", "1 year"), [rule("r", "12 months")],
                     id="1-year-equals-12-months"),
        pytest.param(retention("tax", "10 years"), [rule("r", "10 years 1 day")],
                     id="rule-longer"),
        pytest.param(retention("tax", "10 years", column="created_at"),
                     [rule("r", "12 months")], id="other-column"),
        pytest.param(retention("tax", "10 years", table="invoices"),
                     [rule("r", "12 months")], id="other-table"),
    ],
)
def test_rules_a_retention_does_not_outlive_load(tmp_path, kept, items):
    """A narrowed retention, or one that ends no later than the rule acts, is no error."""
    assert [] == problems_of(tmp_path, {"a.yaml": "retain:\n" + kept + rules(*items)})
