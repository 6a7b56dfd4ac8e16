"""Previewing the release of holds: what each rule would act on if they were released.

``retentiond plan --without-hold ID`` plans twice, as things are and as if the named holds
(from the policy files or placed at run time) were released, and says per rule and hold what
the hold keeps now and what its release would free.  Nothing is released.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from retentiond.errors import Problem
from retentiond.holds.table import find_hold, normalized_id
from retentiond.ledger.state import StateDB
from retentiond.policy.model import PolicySet
from retentiond.run.engine import RulePlan


def without_policy_holds(policies: PolicySet, hold_ids: Collection[str]) -> PolicySet:
    """The policy set with the named policy-file holds left out (for a release preview)."""
    return dataclasses.replace(policies,
                               holds=tuple(h for h in policies.holds if h.id not in hold_ids))


def check_releasable(
    hold_ids: Sequence[str], policies: PolicySet, state: StateDB, *, at: datetime,
) -> list[Problem]:
    """Problems with previewing the release of ``hold_ids``: each must be a hold in force."""
    problems = []
    for hold_id in hold_ids:
        if any(h.id == hold_id for h in policies.holds):
            if not any(h.id == hold_id and h.active(at) for h in policies.holds):
                problems.append(Problem(None, None, hold_id, "this policy hold has expired",
                                        "it holds nothing any more"))
            continue
        found = find_hold(state, hold_id)
        if found is None:
            problems.append(Problem(None, None, hold_id, "no hold has this id",
                                    "list them with 'retentiond hold list'"))
        elif found.status(at) != "active":
            problems.append(Problem(None, None, found.id, f"this hold is {found.status(at)}",
                                    "it holds nothing any more"))
    return problems


@dataclass(frozen=True)
class ReleaseEffect:
    """What releasing holds would do to one rule's plan."""

    rule: str
    hold: str
    reason: str
    keeps: int
    """Matched rows of the rule this hold protects now (holds overlap: they need not add up)."""
    freed: int
    """How many more rows the rule would act on with all the previewed holds released."""


def release_effects(
    current: Sequence[RulePlan], preview: Sequence[RulePlan], hold_ids: Collection[str],
) -> list[ReleaseEffect]:
    """Per rule and released hold: the rows it keeps now, and what the release frees."""
    wanted = {normalized_id(h) for h in hold_ids} | set(hold_ids)
    after = {plan.rule.id: plan for plan in preview}
    effects: list[ReleaseEffect] = []
    for plan in current:
        later = after.get(plan.rule.id)
        if plan.census is None or later is None or later.census is None:
            continue
        freed = later.census.eligible - plan.census.eligible
        effects.extend(ReleaseEffect(plan.rule.id, guard.id, guard.reason, guard.rows, freed)
                       for guard in plan.guards if guard.kind == "hold" and guard.id in wanted)
    return effects
