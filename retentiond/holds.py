"""Legal holds and minimum retentions, turned into the guards a selection must respect.

Holds come from sources: the policy files now, the state database (holds placed at run time
by legal counsel) later.  Every active hold from every source becomes a guard; guards add up
and beat every rule.  Minimum retentions become guards too, so the longest one wins.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime

from retentiond.policy.model import Hold, PolicySet
from retentiond.policy.periods import cutoff
from retentiond.stores.base import AgeBound, Guard


class HoldSource(ABC):
    """Somewhere legal holds are declared."""

    @abstractmethod
    def active(self, store: str, table: str, at: datetime) -> Iterable[Hold]:
        """Holds in force on ``store.table`` at ``at``."""


class PolicyHolds(HoldSource):
    """Holds declared in the policy files."""

    def __init__(self, policies: PolicySet) -> None:
        self._policies = policies

    def active(self, store: str, table: str, at: datetime) -> Iterable[Hold]:
        """Holds from the policy files in force on ``store.table`` at ``at``."""
        return self._policies.holds_on(store, table, at)


def guards_for(
    policies: PolicySet,
    sources: Sequence[HoldSource],
    *,
    store: str,
    table: str,
    as_of: datetime,
) -> tuple[Guard, ...]:
    """Every hold and minimum retention protecting records of ``store.table`` at ``as_of``."""
    guards: list[Guard] = []
    seen: set[str] = set()
    for source in sources:
        for hold in source.active(store, table, as_of):
            if hold.id not in seen:
                seen.add(hold.id)
                guards.append(Guard(kind="hold", id=hold.id, where=hold.where))
    for retention in policies.retentions_on(store, table):
        bound = AgeBound(retention.column, cutoff(retention.period, as_of, retention.timezone))
        guards.append(Guard(kind="retention", id=retention.id, where=retention.where, age=bound))
    return tuple(guards)
