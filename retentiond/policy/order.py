"""The order rules run in when several are due at once: one function, for every runner.

The daemon, ``run --once`` (and so ``make demo``) and ``plan`` all take the order from
:func:`ordered`:

1. a rule runs after every rule its ``after: [id, ...]`` names;
2. on the same store and table, a rule that rewrites records in place (pseudonymize,
   anonymize) runs before one that removes them (quarantine, delete): the other way round,
   the removed records would leave with what the rewrite was meant to take away (quarantined
   tickets keeping plaintext addresses).  A chain of ``after:`` from the removing rule to the
   rewriting one says otherwise, and wins;
3. of the rules free to go next, the smallest id goes first, so the order never depends on
   the order of files or of declaration.

The order is taken over every rule of the set, enabled or not, so that a part of it (the
rules named by ``--rule``, the rules due on one tick of the daemon) runs in the order the
whole set gives it.  ``after:`` naming no rule, or rules waiting for each other in a cycle,
are policy errors (:func:`order_problems`).
"""

from __future__ import annotations

import difflib
import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from retentiond.actions import action_for
from retentiond.errors import Problem
from retentiond.policy.model import Rule, Source

_TABLE = "\0"
"""Prefix of the node that stands for 'every rewriting rule on this table has run' (no rule
id can start with it): n rewriting and m removing rules then need n + m edges, not n * m."""


@dataclass(frozen=True)
class _Graph:
    """Who runs before whom: each node's successors, each with the reason in words."""

    after: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, first: str, then: str, why: str) -> None:
        self.after.setdefault(first, []).append((then, why))
        self.after.setdefault(then, [])

    def sort(self) -> tuple[list[str], set[str]]:
        """Rule ids in order (smallest id first among the free), and the nodes left in cycles."""
        waiting = dict.fromkeys(self.after, 0)
        for successors in self.after.values():
            for then, _ in successors:
                waiting[then] += 1
        free = [(not node.startswith(_TABLE), node) for node, count in waiting.items()
                if count == 0]
        heapq.heapify(free)
        order: list[str] = []
        while free:
            _, node = heapq.heappop(free)
            if not node.startswith(_TABLE):
                order.append(node)
            for then, _ in self.after[node]:
                waiting[then] -= 1
                if waiting[then] == 0:
                    heapq.heappush(free, (not then.startswith(_TABLE), then))
        return order, {node for node, count in waiting.items() if count > 0}

    def cycle(self, left: set[str]) -> list[tuple[str, str]]:
        """One cycle among ``left`` as (node, why it runs after the node before), in order."""
        before: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for node in sorted(left):
            for then, why in self.after[node]:
                if then in left:
                    before[then].append((node, why))
        node = min(left)
        seen: dict[str, int] = {}
        path: list[tuple[str, str]] = []
        while node not in seen:  # each node left waits for another node left: walk back
            seen[node] = len(path)
            previous, why = before[node][0]
            path.append((node, why))
            node = previous
        return list(reversed(path[seen[node]:]))


def _graph(rules: Sequence[Rule], skip: frozenset[tuple[str, str]] = frozenset()) -> _Graph:
    graph = _Graph()
    ids = {rule.id for rule in rules}
    for rule in rules:
        graph.after.setdefault(rule.id, [])
        for first in dict.fromkeys(rule.after):
            if first in ids and (first, rule.id) not in skip:
                graph.add(first, rule.id, "after")
    named = {node: [then for then, _ in successors] for node, successors in graph.after.items()}
    tables: dict[tuple[str, str], list[Rule]] = defaultdict(list)
    for rule in rules:
        tables[rule.store, rule.table].append(rule)
    for (store, table), group in tables.items():
        _rewrites_first(graph, named, f"{store}.{table}", group)
    return graph


def _rewrites_first(graph: _Graph, named: Mapping[str, Iterable[str]], table: str,
                    group: Sequence[Rule]) -> None:
    """On one table: each rewriting rule before each removing one not put first by after."""
    removing = [r.id for r in group if action_for(r.action).removes_rows]
    rewriting = [r.id for r in group if not action_for(r.action).removes_rows]
    if not removing or not rewriting:
        return
    why = f"on {table} records are rewritten before they are removed"
    reached = {first: _reachable(named, first) for first in removing if named[first]}
    done = f"{_TABLE}{table}"
    for then in removing:
        graph.add(done, then, why)
    for first in rewriting:
        excepted = {then for then, seen in reached.items() if first in seen}
        if not excepted:
            graph.add(first, done, why)
            continue
        for then in removing:
            if then not in excepted:
                graph.add(first, then, why)


def _reachable(after: Mapping[str, Iterable[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for then in after[todo.pop()]:
            if then not in seen:
                seen.add(then)
                todo.append(then)
    return seen


def ordered(rules: Sequence[Rule]) -> list[Rule]:
    """``rules`` in the order they run when due at once (see the module's docstring).

    Validation refuses a set whose rules wait for each other in a cycle; given one anyway,
    this raises ValueError.
    """
    order, left = _graph(rules).sort()
    if left:
        raise ValueError(f"rules wait for each other in a cycle: {', '.join(sorted(left))}")
    by_id = {rule.id: rule for rule in rules}
    return [by_id[rule_id] for rule_id in order]


def lanes(rules: Sequence[Rule]) -> dict[str, str]:
    """Each rule's lane: the rules of one lane run one at a time, in :func:`ordered` order.

    A lane is a store, or several stores that ``after:`` ties together (so that the order
    holds across them): its name is the first of them.
    """
    stores = {rule.id: rule.store for rule in rules}
    parent = {store: store for store in stores.values()}

    def root(store: str) -> str:
        while parent[store] != store:
            store = parent[store]
        return store

    for rule in rules:
        for first in rule.after:
            if first in stores:
                one, other = sorted((root(rule.store), root(stores[first])))
                parent[other] = one
    return {rule_id: root(store) for rule_id, store in stores.items()}


def order_problems(rules: Sequence[Rule], where: Mapping[str, Source]) -> list[Problem]:
    """``after:`` entries naming no rule, and each cycle of rules waiting for each other."""
    problems = []
    ids = sorted({rule.id for rule in rules})
    for rule in rules:
        for index, name in enumerate(rule.after):
            if name in ids:
                continue
            close = difflib.get_close_matches(name, ids, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            source = where[rule.id]
            problems.append(Problem(
                source.file, source.line_of(("after", index)), rule.id,
                f"after: {name!r} names no rule",
                f"{hint}name the id of a rule in the policy directory, or remove it"))
    if len(ids) < len(rules):  # a duplicate id is a problem of its own; no order to speak of
        return problems
    skip: frozenset[tuple[str, str]] = frozenset()
    while True:
        graph = _graph(rules, skip)
        _, left = graph.sort()
        if not left:
            return problems
        cycle = graph.cycle(left)
        problem, edge = _cycle_problem(cycle, {rule.id: rule for rule in rules}, where)
        problems.append(problem)
        skip |= {edge}


def _cycle_problem(cycle: list[tuple[str, str]], rules: Mapping[str, Rule],
                   where: Mapping[str, Source]) -> tuple[Problem, tuple[str, str]]:
    """The problem of one cycle, and the ``after:`` step it is reported on.

    The rule reported is the smallest id among those whose ``after:`` makes a step of the
    cycle; that step is left out when looking for more cycles.
    """
    steps = [(cycle[index - 1][0], node, why) for index, (node, why) in enumerate(cycle)]
    named = sorted((then, first) for first, then, why in steps if why == "after")
    rule_id, first = named[0]  # a cycle always has an 'after' step: the others go one way
    rules_in = [node for node, _ in cycle if not node.startswith(_TABLE)]
    start = rules_in.index(rule_id)
    rules_in = rules_in[start:] + rules_in[:start]
    chain = " -> ".join([*rules_in, rules_in[0]])
    reasons = sorted({why for _, _, why in steps if why != "after"})
    source = where[rule_id]
    index = rules[rule_id].after.index(first)
    what = ("a rule cannot run after itself" if rules_in == [rule_id] else
            f"rules wait for each other in a cycle: {chain}"
            + "".join(f" ({reason})" for reason in reasons))
    return (Problem(source.file, source.line_of(("after", index)), rule_id, what,
                    "remove one 'after:' entry of the cycle (or, to let a removal run first, "
                    "name the removing rule in the rewriting rule's 'after:')"),
            (first, rule_id))
