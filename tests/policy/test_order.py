"""The order rules run in when due at once: after:, rewrites before removals, then ids.

A reference model checks :func:`ordered`: of every order that keeps each promise (each
``after:``; on one table each rewriting rule before each removing one, unless a chain of
``after:`` leads from the removal to the rewrite), the order is the smallest when the ids
are compared one by one; when no order keeps them all, the rules wait in a cycle, which is
a policy error.
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retentiond.errors import PolicyError
from retentiond.policy.loader import load_policies
from retentiond.policy.model import Rule, Source
from retentiond.policy.order import lanes, order_problems, ordered

ACTIONS = {
    "delete": {"type": "delete"},
    "quarantine": {"type": "quarantine", "release_after": "6 months"},
    "pseudonymize": {"type": "pseudonymize", "columns": {"email": {"domain": "customer-email"}}},
    "anonymize": {"type": "anonymize", "columns": {"email": {"strategy": "nullify"}}},
}
REWRITING = {"pseudonymize", "anonymize"}


def make_rule(rule_id, action, table="tickets", after=(), store="app"):
    """One rule of ``action`` on ``store.table``, running after the rules ``after`` names."""
    return Rule.model_validate({
        "id": rule_id, "description": f"Rule {rule_id}.", "store": store, "table": table,
        "age": {"column": "made_at", "older_than": "12 months"},
        "action": ACTIONS[action], "after": list(after)})


@st.composite
def rule_sets(draw, *, acyclic=True):
    """Up to six rules on two tables with any actions and ``after:`` edges.

    ``acyclic``: edges only go from a rule to rules of lower rank, so ``after:`` alone has no
    cycle (together with rewrites-before-removals it may have one); else any edges.
    """
    ids = draw(st.lists(st.from_regex(r"[a-c0-9][a-c0-9-]{0,2}", fullmatch=True),
                        min_size=1, max_size=6, unique=True))
    rank = draw(st.permutations(range(len(ids))))
    rules = []
    for index, rule_id in enumerate(ids):
        earlier = [ids[j] for j in range(len(ids)) if rank[j] < rank[index] or not acyclic]
        after = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier \
            else []
        rules.append(make_rule(rule_id, draw(st.sampled_from(sorted(ACTIONS))),
                               draw(st.sampled_from(["tickets", "emails"])), after))
    return rules


def after_reach(rules):
    """For each rule, the rules that chains of ``after:`` put after it."""
    then = {rule.id: {r.id for r in rules if rule.id in r.after} for rule in rules}
    reach = {}
    for rule in rules:
        seen, todo = set(), [rule.id]
        while todo:
            for following in then[todo.pop()] - seen:
                seen.add(following)
                todo.append(following)
        reach[rule.id] = seen
    return reach


def promises(rules):
    """Every (first, then) pair the order must keep."""
    pairs = {(first, rule.id) for rule in rules for first in rule.after}
    reach = after_reach(rules)
    for rewrite in rules:
        for removal in rules:
            if (rewrite.table == removal.table and rewrite.action.type in REWRITING
                    and removal.action.type not in REWRITING
                    and rewrite.id not in reach[removal.id]):
                pairs.add((rewrite.id, removal.id))
    return pairs


def model_order(rules):
    """The smallest order of the ids keeping every promise, or None when none can."""
    pairs = promises(rules)
    keeping = [order for order in permutations(sorted(r.id for r in rules))
               if all(order.index(first) < order.index(then) for first, then in pairs)]
    return list(min(keeping)) if keeping else None


def sources(rules):
    """Where each rule stands: one line per rule of a file ``p.yaml``."""
    return {rule.id: Source(Path("p.yaml"), number) for number, rule in enumerate(rules, 1)}


@given(st.one_of(rule_sets(), rule_sets(acyclic=False)), st.randoms())
def test_the_order_is_the_smallest_that_keeps_every_promise(rules, random):
    """Whatever the declaration order, the model's order; a cycle is a problem, not an order.

    Half the sets have ``after:`` edges that may form cycles of their own.
    """
    shuffled = random.sample(rules, len(rules))
    expected = model_order(rules)
    if expected is None:
        with pytest.raises(ValueError, match="cycle"):
            ordered(shuffled)
        found = order_problems(shuffled, sources(shuffled))
        assert found
        assert all("cycle" in p.what or "after itself" in p.what for p in found)
        return
    actual = [rule.id for rule in ordered(shuffled)]
    assert expected == actual
    assert [] == order_problems(shuffled, sources(shuffled))


@given(rule_sets(), st.randoms())
def test_every_after_and_every_rewrite_before_a_removal_is_kept(rules, random):
    """Each after: edge; on one table a rewrite before a removal unless after: says otherwise."""
    if model_order(rules) is None:
        return
    position = {rule.id: n for n, rule in enumerate(ordered(random.sample(rules, len(rules))))}
    reach = after_reach(rules)
    for rule in rules:
        assert all(position[first] < position[rule.id] for first in rule.after)
    for rewrite in (r for r in rules if r.action.type in REWRITING):
        for removal in (r for r in rules if r.action.type not in REWRITING):
            if rewrite.table == removal.table and rewrite.id not in reach[removal.id]:
                assert position[rewrite.id] < position[removal.id]


def test_a_quarantine_runs_after_the_pseudonymization_of_its_table():
    """Declared first, smaller id: the quarantine still runs after the pseudonymization."""
    rules = [make_rule("a-quarantine", "quarantine"), make_rule("b-pseudonymize", "pseudonymize"),
             make_rule("c-delete-emails", "delete", table="emails")]

    assert ["b-pseudonymize", "a-quarantine", "c-delete-emails"] == [
        r.id for r in ordered(rules)]


def test_after_puts_a_removal_before_a_rewrite_of_its_table():
    """``after:`` wins over rewrites-before-removals: the pseudonymization runs last."""
    rules = [make_rule("b-pseudonymize", "pseudonymize", after=["a-quarantine"]),
             make_rule("a-quarantine", "quarantine")]

    assert ["a-quarantine", "b-pseudonymize"] == [r.id for r in ordered(rules)]


def test_after_ties_the_stores_it_joins_into_one_lane():
    """Rules take turns per store, and across the stores ``after:`` ties together."""
    rules = [make_rule("a", "delete", store="app"), make_rule("b", "delete", store="crm"),
             make_rule("c", "delete", store="web", after=["a"]),
             make_rule("d", "delete", store="erp")]

    assert {"a": "app", "b": "crm", "c": "app", "d": "erp"} == lanes(rules)


def test_two_thousand_rules_on_one_table_are_ordered_quickly():
    """A thousand rewrites and a thousand removals on one table: 2,000 edges, not a million."""
    rules = [make_rule(f"r{n:04}", "pseudonymize" if n % 2 else "delete") for n in range(2000)]

    order = [r.id for r in ordered(rules)]

    assert sorted(r.id for r in rules if r.action.type == "pseudonymize") == order[:1000]


RULE = """\
  - id: {id}
    description: Rule {id}.
    store: app
    table: {table}
    age: {{column: made_at, older_than: 12 months}}
    action: {action}
"""
PSEUDONYMIZE = "{type: pseudonymize, columns: {email: {domain: customer-email}}}"


def policy_file(tmp_path, *items):
    """A policy directory with one file ``rules.yaml`` holding ``items``; its path."""
    directory = tmp_path / "policies"
    directory.mkdir()
    path = directory / "rules.yaml"
    path.write_text("rules:\n" + "".join(items), encoding="utf-8")
    return path


def item(rule_id, after=None, table="tickets", action="{type: delete}"):
    """One rule of a ``rules:`` list, with ``after:`` as its last line when given."""
    text = RULE.format(id=rule_id, table=table, action=action)
    return text + (f"    after: {after}\n" if after is not None else "")


def problems_in(path):
    """(line, rule, what, fix) of each problem loading the directory of ``path``."""
    with pytest.raises(PolicyError) as caught:
        load_policies(path.parent)
    return [(p.file, p.line, p.subject, p.what, p.fix) for p in caught.value.problems]


def test_after_naming_no_rule_is_a_problem_on_its_line(tmp_path):
    """The unknown id, the rule and the line of the entry, and the likely meant id."""
    path = policy_file(tmp_path, item("tickets-delete"),
                       item("emails-delete", "[tickets-delet]", table="emails"))

    assert [(path, 14, "emails-delete", "after: 'tickets-delet' names no rule",
             "did you mean 'tickets-delete'? name the id of a rule in the policy directory, "
             "or remove it")] == problems_in(path)


def test_rules_after_each_other_are_one_problem(tmp_path):
    """A cycle is reported once, on the smallest id whose ``after:`` closes it."""
    path = policy_file(tmp_path, item("a", "[b]"), item("b", "[a]", table="emails"))

    assert [(path, 8, "a", "rules wait for each other in a cycle: a -> b -> a",
             "remove one 'after:' entry of the cycle (or, to let a removal run first, name "
             "the removing rule in the rewriting rule's 'after:')")] == problems_in(path)


def test_a_rule_after_itself_is_a_problem(tmp_path):
    """``after:`` naming its own rule."""
    path = policy_file(tmp_path, item("a", "[a]"))

    assert [(8, "a", "a rule cannot run after itself")] == [
        (line, rule, what) for _, line, rule, what, _ in problems_in(path)]


def test_a_cycle_through_rewrites_before_removals_says_so(tmp_path):
    """after: across two tables, against rewrites-before-removals on each: one cycle."""
    path = policy_file(
        tmp_path,
        item("emails-pseudonymize", "[tickets-delete]", table="emails", action=PSEUDONYMIZE),
        item("emails-delete", table="emails"),
        item("tickets-pseudonymize", "[emails-delete]", action=PSEUDONYMIZE),
        item("tickets-delete"))

    assert [(8, "emails-pseudonymize",
             "rules wait for each other in a cycle: emails-pseudonymize -> emails-delete -> "
             "tickets-pseudonymize -> tickets-delete -> emails-pseudonymize (on app.emails records "
             "are rewritten before they are removed) (on app.tickets records are rewritten "
             "before they are removed)")] == [
        (line, rule, what) for _, line, rule, what, _ in problems_in(path)]


def test_rules_sharing_an_id_are_reported_once_not_as_a_cycle(tmp_path):
    """Two rules ``a`` (one after ``b``) and ``b`` after ``a``: the duplicate id is the problem."""
    path = policy_file(tmp_path, item("a"), item("b", "[a]", table="calls"),
                       item("a", "[b]", table="emails"))

    assert [(15, "a", "id 'a' is already used at " f"{path}:2")] == [
        (line, rule, what) for _, line, rule, what, _ in problems_in(path)]
