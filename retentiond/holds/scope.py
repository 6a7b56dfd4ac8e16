"""What a hold placed at run time covers: the tables its subject reaches, the rows it holds.

A hold's scope is a store (every store, for a subject hold), a table (every table of the
store when absent), a filter (``--where``) and a data subject (``--subject kind=value``).  A
subject hold reaches every table whose rules map the subject kind to a column
(``subjects: {customer: customer_id}`` in a rule): there it holds the rows whose column equals
the value.  As with every hold, a NULL in a filtered column is doubt, and doubt keeps the record.

:class:`StateHolds` is the hold source the engine reads before every batch, so a hold placed
(or released) takes effect at the next batch of a running rule.  Holds from the state
database and from the policy files add up; runtime ids (``H-`` and eight hex digits) can never
collide with policy ids, which are lowercase.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime

from sqlalchemy import or_, select

from retentiond.holds.guards import HoldSource
from retentiond.holds.table import PlacedHold, in_force, normalized_id, read_holds
from retentiond.ledger.state import StateDB, holds
from retentiond.policy.filters import AllOf, AnyOf, Condition, Filter, Op
from retentiond.policy.model import Hold, PolicySet
from retentiond.stores.registry import Stores
from retentiond.stores.values import typed_value

_VALIDATED_ID = "runtime-hold"
"""A placeholder id that passes the policy id pattern; replaced by the runtime id after."""


def subject_targets(
    policies: PolicySet, kind: str, store: str | None = None, table: str | None = None,
) -> list[tuple[str, str, str]]:
    """Every (store, table, column) a rule maps subject ``kind`` to, within the scope."""
    found: dict[tuple[str, str, str], None] = {}
    for rule in policies.rules:
        column = rule.subjects.get(kind)
        if column is None or store not in {None, rule.store} or table not in {None, rule.table}:
            continue
        found[rule.store, rule.table, column] = None
    return list(found)


class StateHolds(HoldSource):
    """Holds placed at run time, read from the state database each time they are asked for.

    ``without`` leaves holds out, to preview what releasing them would free.  A failure to
    read the state database is an AuditError: the rule stops, and doubt keeps the records.
    """

    def __init__(self, state: StateDB, policies: PolicySet, stores: Stores | None = None, *,
                 without: Collection[str] = ()) -> None:
        self._state = state
        self._policies = policies
        self._stores = stores
        self._without = {normalized_id(h) for h in without}

    def active(self, store: str, table: str, at: datetime) -> Iterator[Hold]:
        """The runtime holds in force on ``store.table`` at ``at``, as policy holds."""
        query = select(holds).where(
            holds.c.released_at.is_(None),
            or_(holds.c.store.is_(None), holds.c.store == store),
            or_(holds.c.table_name.is_(None), holds.c.table_name == table),
        ).order_by(holds.c.placed_at, holds.c.id)
        for placed in read_holds(self._state.engine, query):
            if placed.id in self._without or not in_force(placed.until, at):
                continue
            hold = self._hold(placed, store, table)
            if hold is not None:
                yield hold

    def _hold(self, placed: PlacedHold, store: str, table: str) -> Hold | None:
        where = placed.where
        if placed.subject is not None:
            columns = [c for s, t, c in subject_targets(self._policies, placed.subject.kind,
                                                        store, table)]
            if not columns:
                return None  # no rule maps the subject here: nothing of it to hold
            each = [self._subject_condition(store, table, c, placed.subject.value)
                    for c in columns]
            subject: Filter = each[0] if len(each) == 1 else AnyOf(any=list(each))
            where = subject if where is None else AllOf(all=[where, subject])
        hold = Hold(id=_VALIDATED_ID, reason=placed.reason, case=placed.case, store=store,
                    table=table, where=where, expires=placed.until)
        return hold.model_copy(update={"id": placed.id})

    def _subject_condition(self, store: str, table: str, column: str, value: str) -> Condition:
        schema = self._stores.get(store).schema(table) if self._stores is not None else None
        info = schema.columns.get(column) if schema is not None else None
        if info is None:  # compiled against the live table, a missing column stops the rule
            return Condition(column=column, op=Op.EQ, value=value)
        try:
            return Condition(column=column, op=Op.EQ, value=typed_value(info, value))
        except ValueError:
            # No value of the column equals it; a NULL there is doubt, which keeps the record.
            return Condition(column=column, op=Op.IS_NULL)
