"""Validation grows linearly with the number of rules (issue 15, item 9).

Time is not asserted here (the machine is shared; ``bench/validate_rules.py`` measures it):
the work that used to grow faster than the rules is counted instead.  A policy file is
parsed once, its screening riding on the parse that builds it, and only rules that could
contradict each other (one removes rows, or both rewrite a column) are compared.
"""

from __future__ import annotations

import pytest
from ruamel.yaml.composer import Composer
from ruamel.yaml.parser import Parser

from retentiond.errors import PolicyError
from retentiond.policy import checks
from retentiond.policy.loader import load_policies


def anonymize(number, column, *, older_than="30 days", where=None):
    """One rule anonymizing ``column`` of app.emails."""
    narrowed = f"    where: {where}\n" if where else ""
    return (f"  - id: r{number}\n    description: Rule {number}.\n    store: app\n"
            f"    table: emails\n    age: {{column: sent_at, older_than: {older_than}}}\n"
            f"{narrowed}    action: {{type: anonymize, columns: "
            f"{{{column}: {{strategy: constant, value: x}}}}}}\n")


def counting(monkeypatch, owner, name):
    """Count the calls of ``owner.name`` from now on; the count is the returned list's length."""
    calls = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(None)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_each_node_of_a_policy_file_is_parsed_once(tmp_path, monkeypatch):
    """Screening (depth, aliases, tags) reads the events the loader builds from: one parse."""
    (tmp_path / "p.yaml").write_text(
        "rules:\n" + "".join(anonymize(n, f"c{n}") for n in range(50)), encoding="utf-8")
    parsed = counting(monkeypatch, Parser, "parse_node")
    composed = counting(monkeypatch, Composer, "compose_node")

    policies = load_policies(tmp_path)

    assert 50 == len(policies.rules)
    assert len(composed) == len(parsed)


def test_rules_rewriting_each_their_own_column_are_never_compared(tmp_path, monkeypatch):
    """400 rules on the same records, none touching another's column: no pair can contradict."""
    (tmp_path / "p.yaml").write_text(
        "rules:\n" + "".join(anonymize(n, f"c{n}") for n in range(400)), encoding="utf-8")
    compared = counting(monkeypatch, checks, "_contradiction")

    policies = load_policies(tmp_path)

    assert (400, 0) == (len(policies.rules), len(compared))


def test_rules_are_compared_only_with_those_they_could_contradict(tmp_path, monkeypatch):
    """Rules in pairs on a column each: one comparison per pair, however many pairs there are."""
    pairs = 200
    text = "".join(anonymize(2 * n + step, f"c{n}", older_than=f"{step + 1} days")
                   for n in range(pairs) for step in (0, 1))
    (tmp_path / "p.yaml").write_text("rules:\n" + text, encoding="utf-8")
    compared = counting(monkeypatch, checks, "_contradiction")

    with pytest.raises(PolicyError) as raised:  # each pair's later rule redoes the earlier
        load_policies(tmp_path)

    assert (pairs, pairs) == (len(compared), len(raised.value.problems))
