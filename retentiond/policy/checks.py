"""Checks across entries: unique ids, rules that contradict each other or a retention, order.

Two rules on the same records (same store, table, age column and filter) must escalate: a
later rule must take away more than an earlier one (pseudonymize, then anonymize, then
quarantine or delete).  Otherwise one of them can never keep its promise, which is an error
the author must resolve, not something the daemon may guess about.  Likewise a rule that acts
before a whole-table minimum retention on the same column has passed could never act.  And
``after:`` must name rules, and make no cycle (:mod:`retentiond.policy.order`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from retentiond.actions import action_for
from retentiond.errors import Problem
from retentiond.policy.model import Hold, Retention, Rule, Source
from retentiond.policy.order import order_problems
from retentiond.policy.periods import Period

_REFERENCES = tuple(datetime(*day, tzinfo=UTC) for day in
                    ((2001, 3, 1), (2000, 3, 1), (2001, 1, 31), (2001, 7, 31), (2001, 12, 31)))
"""Periods are compared by their cutoffs from several days, because months differ in length:
"1 month" is longer than "30 days" from 31 July but shorter from 1 March."""


def _longer_or_equal(first: Period, second: Period) -> bool:
    """Whether ``first`` reaches at least as far back as ``second`` from every reference day."""
    return all(a <= b for a, b in zip(_cutoffs(first), _cutoffs(second), strict=True))


@lru_cache(maxsize=1024)
def _cutoffs(period: Period) -> tuple[datetime, ...]:
    """``period`` counted back from each reference day, once per distinct period.

    Thousands of rules share a handful of periods.
    """
    return tuple(period.before(day) for day in _REFERENCES)


def cross_check(
    rules: Sequence[Rule],
    holds: Sequence[Hold],
    retentions: Sequence[Retention],
    sources: Sequence[tuple[str, Source]],
) -> list[Problem]:
    """Every problem that only shows when entries are looked at together."""
    del holds  # holds never contradict anything: they add up and beat every rule
    where = dict(sources)
    problems = _duplicate_ids(sources)
    active = [rule for rule in rules if rule.enabled]  # a disabled rule acts on nothing
    problems.extend(_contradictions(active, where))
    problems.extend(order_problems(rules, where))
    guards: dict[tuple[str, str, str], list[Retention]] = defaultdict(list)
    for retention in retentions:  # only a whole-table retention can outlive a rule
        if retention.where is None:
            guards[retention.store, retention.table, retention.column].append(retention)
    for rule in active:
        for retention in guards.get((rule.store, rule.table, rule.age.column), ()):
            problem = _outlived(rule, retention, where)
            if problem is not None:
                problems.append(problem)
    return problems


def _duplicate_ids(sources: Sequence[tuple[str, Source]]) -> list[Problem]:
    seen: dict[str, Source] = {}
    problems = []
    for entry_id, source in sources:
        earlier = seen.get(entry_id)
        if earlier is None:
            seen[entry_id] = source
            continue
        problems.append(Problem(source.file, source.line, entry_id,
                                f"id {entry_id!r} is already used at {earlier.file}:{earlier.line}",
                                "give every rule, hold and retention its own id"))
    return problems


def _contradictions(active: Sequence[Rule], where: dict[str, Source]) -> list[Problem]:
    """Each rule that an earlier one on the same records leaves nothing to do, reported once.

    Only rules on the same records are compared, and a rule already reported is not compared
    again as the later one: 2,000 rules on one table are one problem each, not two million.
    """
    groups: dict[tuple[str, str, str, str], list[Rule]] = defaultdict(list)
    for rule in active:
        records = rule.where.model_dump_json() if rule.where is not None else ""
        groups[rule.store, rule.table, rule.age.column, records].append(rule)
    reported: set[str] = set()
    problems = []
    for group in groups.values():
        for first, second in _candidates(group):
            if first.id in reported and second.id in reported:
                continue
            problem = _contradiction(first, second, where)
            if problem is not None and problem.subject not in reported:
                reported.add(str(problem.subject))
                problems.append(problem)
    return problems


def _candidates(group: Sequence[Rule]) -> Iterator[tuple[Rule, Rule]]:
    """The pairs of ``group`` that can contradict, in the order of declaration.

    Only a pair where one rule removes rows, or both rewrite a column, can: 2,000 rules on
    the same records rewriting each its own column are never compared with each other.
    """
    actions = [action_for(rule.action) for rule in group]
    removers = [index for index, action in enumerate(actions) if action.removes_rows]
    touching: dict[str, list[int]] = defaultdict(list)
    for index, action in enumerate(actions):
        for column in set(action.touched_columns()):
            touching[column].append(index)
    for index, action in enumerate(actions):
        if action.removes_rows:
            later: Iterable[int] = range(index + 1, len(group))
        else:
            partners = set(removers[bisect_right(removers, index):])
            for column in set(action.touched_columns()):
                indices = touching[column]
                partners.update(indices[bisect_right(indices, index):])
            later = sorted(partners)
        yield from ((group[index], group[other]) for other in later)


def _contradiction(a: Rule, b: Rule, where: dict[str, Source]) -> Problem | None:
    """What is wrong between two rules on the same records, or None."""
    # `early` acts first; where neither period is always the shorter, the gentler action is
    # taken to come first, so the verdict does not depend on the order of declaration.
    action_a, action_b = action_for(a.action), action_for(b.action)
    a_first = _longer_or_equal(b.age.older_than, a.age.older_than)
    b_first = _longer_or_equal(a.age.older_than, b.age.older_than)
    if a_first == b_first:
        a_first = action_a.severity <= action_b.severity
    early, late = (a, b) if a_first else (b, a)
    early_action, late_action = (action_a, action_b) if a_first else (action_b, action_a)
    removes = early_action.removes_rows
    overlap = set(early_action.touched_columns()) & set(late_action.touched_columns())
    if removes:
        what = (f"never acts: rule {early.id!r} already removes the same records at "
                f"{early.age.older_than}, no later than this rule's {late.age.older_than}")
    elif overlap and early_action.severity >= late_action.severity:
        what = (f"contradicts rule {early.id!r} on column(s) {', '.join(sorted(overlap))}: "
                f"that rule already {early.action.type}s them at {early.age.older_than}")
    else:
        return None
    source = where[late.id]
    return Problem(source.file, source.line, late.id, what,
                   "make later rules take away more than earlier ones, change a period, "
                   "or narrow one rule with 'where'")


def _outlived(rule: Rule, retention: Retention, where: dict[str, Source]) -> Problem | None:
    same_scope = (rule.store, rule.table, rule.age.column) == (
        retention.store, retention.table, retention.column)
    if not same_scope or retention.where is not None:
        return None
    if _longer_or_equal(rule.age.older_than, retention.period):
        return None
    source = where[rule.id]
    return Problem(
        source.file, source.line_of(("age", "older_than")), rule.id,
        f"acts at {rule.age.older_than} but retention {retention.id!r} keeps every record of "
        f"{rule.table} for {retention.period}, so the rule could never keep its promise",
        f"lengthen the rule to at least {retention.period}, or narrow the retention with 'where'",
    )
