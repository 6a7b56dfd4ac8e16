"""Legal holds and minimum retentions, turned into the guards a selection must respect.

Holds come from sources: the policy files, and the state database (holds placed at run time
by legal counsel: :class:`~retentiond.holds.scope.StateHolds`).  Every active hold from every
source becomes a guard; guards add up and beat every rule.  Minimum retentions become guards
too, so the longest one wins.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from retentiond.policy.model import Hold, PolicySet
from retentiond.policy.periods import cutoff
from retentiond.stores.base import AgeBound, Guard, Partitions

if TYPE_CHECKING:
    from retentiond.holds.exemptions import Exemption


class HoldSource(ABC):
    """Somewhere legal holds are declared."""

    @abstractmethod
    def active(self, store: str, table: str, at: datetime) -> Iterable[Hold]:
        """Holds in force on ``store.table`` at ``at``."""

    def guards(self, store: str, table: str, at: datetime, within: tuple[str, ...] = (),
               ) -> Iterable[Guard]:
        """The guards of the holds in force on ``store.table`` at ``at``.

        ``within``: the leaf partitions they cover (empty: the whole table).  By default each
        hold's filter is its guard; a source whose holds reach rows through foreign keys says
        more (:class:`~retentiond.holds.scope.StateHolds`).
        """
        return (Guard(kind="hold", id=hold.id, where=hold.where, within=within)
                for hold in self.active(store, table, at))

    def exemptions(self, store: str, table: str, rule: str, at: datetime,
                   ) -> Iterable[Exemption]:
        """Restored rows of ``store.table`` exempt from ``rule`` at ``at``; none by default.

        Unlike a hold, an exemption protects rows from one rule only: the one that
        quarantined them (:mod:`~retentiond.holds.exemptions`).
        """
        del store, table, rule, at
        return ()


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
    partitions: Partitions | None = None,
) -> tuple[Guard, ...]:
    """Every hold and minimum retention protecting records of ``store.table`` at ``as_of``.

    Of a partitioned table, guards on the table (or on a partition ``table`` belongs to) cover
    every row; guards on a partition within it cover that partition's rows only.
    """
    guards: list[Guard] = []
    seen: set[str] = set()
    for name, within in (partitions or Partitions()).scopes(table):
        for source in sources:
            for guard in source.guards(store, name, as_of, within):
                if guard.id not in seen:
                    seen.add(guard.id)
                    guards.append(guard)
        for retention in policies.retentions_on(store, name):
            bound = AgeBound(retention.column,
                             cutoff(retention.period, as_of, retention.timezone))
            guards.append(Guard(kind="retention", id=retention.id, where=retention.where,
                                age=bound, within=within))
    return tuple(guards)
