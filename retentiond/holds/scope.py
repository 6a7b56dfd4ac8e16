"""What a hold placed at run time covers: the tables its subject reaches, the rows it holds.

A hold's scope is a store (every store, for a subject hold), a table (every table of the
store when absent), a filter (``--where``) and a data subject (``--subject kind=value``).  A
subject hold reaches every table the data map maps the subject kind to
(:mod:`retentiond.policy.datamap`), through a column or a path of foreign keys, and every
table whose rules map the kind to a column (``subjects: {customer: customer_id}`` in a rule):
there it holds the rows that belong to the subject.  As with every hold, a NULL in a filtered
column is doubt, and doubt keeps the record; so is a NULL reference on a path.

:class:`StateHolds` is the hold source the engine reads before every batch, so a hold placed
(or released) takes effect at the next batch of a running rule.  Holds from the state
database and from the policy files add up; runtime ids (``H-`` and eight hex digits) can never
collide with policy ids, which are lowercase.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from retentiond.errors import StoreError
from retentiond.holds.guards import HoldSource
from retentiond.holds.table import PlacedHold, in_force, normalized_id, read_holds
from retentiond.ledger.state import StateDB, holds
from retentiond.policy.filters import AllOf, AnyOf, Condition, Filter, Op
from retentiond.policy.model import Hold, PolicySet
from retentiond.stores.base import Guard, Through
from retentiond.stores.paths import PathError, follow_from
from retentiond.stores.registry import Stores
from retentiond.stores.values import typed_value

_VALIDATED_ID = "runtime-hold"
"""A placeholder id that passes the policy id pattern; replaced by the runtime id after."""


def _unknown(table: str) -> None:
    """No table can be read (holds looked at without the stores)."""
    del table


@dataclass(frozen=True)
class Target:
    """A table holding rows of a subject kind, and the way from its rows to the subject's id.

    ``way`` is one column of the table, or a path of foreign-key columns whose last column
    (of the table the path ends at) holds the subject's id.
    """

    store: str
    table: str
    way: tuple[str, ...]

    @property
    def direct(self) -> bool:
        """Whether the subject's id is a column of the table itself."""
        return len(self.way) == 1


def subject_targets(
    policies: PolicySet, kind: str, store: str | None = None, table: str | None = None,
) -> list[Target]:
    """Every table and way the data map and the rules give subject ``kind``, within the scope.

    The data map's entries first (the preferred place to map subjects), then the rules'
    ``subjects:``; each way once.
    """
    found: dict[Target, None] = {}
    ways = [*policies.data_map.ways(kind),
            *((r.store, r.table, (r.subjects[kind],)) for r in policies.rules
              if kind in r.subjects)]
    for on_store, on_table, way in ways:
        if store in {None, on_store} and table in {None, on_table}:
            found[Target(on_store, on_table, tuple(way))] = None
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
        """The runtime holds in force on ``store.table`` at ``at``, as policy holds.

        A subject hold that reaches the table through foreign keys is among them, but its
        filter cannot say so: :meth:`guards` gives what it protects.
        """
        for placed in self._placed(store, table, at):
            scoped = self._scoped(placed, store, table)
            if scoped is not None:
                yield scoped[0]

    def guards(self, store: str, table: str, at: datetime, within: tuple[str, ...] = (),
               ) -> Iterator[Guard]:
        """The guards of the runtime holds, subject holds through foreign keys included."""
        for placed in self._placed(store, table, at):
            scoped = self._scoped(placed, store, table)
            if scoped is None:
                continue
            hold, through = scoped
            if through:
                yield Guard(kind="hold", id=hold.id, where=placed.where, within=within,
                            through=through)
            else:
                yield Guard(kind="hold", id=hold.id, where=hold.where, within=within)

    def _placed(self, store: str, table: str, at: datetime) -> Iterator[PlacedHold]:
        query = select(holds).where(
            holds.c.released_at.is_(None),
            or_(holds.c.store.is_(None), holds.c.store == store),
            or_(holds.c.table_name.is_(None), holds.c.table_name == table),
        ).order_by(holds.c.placed_at, holds.c.id)
        for placed in read_holds(self._state.engine, query):
            if placed.id not in self._without and in_force(placed.until, at):
                yield placed

    def _scoped(self, placed: PlacedHold, store: str, table: str,
                ) -> tuple[Hold, tuple[Through, ...]] | None:
        """The hold on ``store.table``, and the ways it reaches rows through foreign keys.

        None when the hold's subject has no rows here.  Where every way is a column of the
        table, the hold's filter says it all and the second item is empty.
        """
        where = placed.where
        through: tuple[Through, ...] = ()
        if placed.subject is not None:
            targets = subject_targets(self._policies, placed.subject.kind, store, table)
            if not targets:
                return None  # nothing maps the subject here: nothing of it to hold
            each = [self._through(t, placed.subject.value) for t in targets]
            if all(t.direct for t in targets):
                conditions = [t.where for t in each]
                subject: Filter = conditions[0] if len(conditions) == 1 else AnyOf(
                    any=list(conditions))
                where = subject if where is None else AllOf(all=[where, subject])
            else:
                through = tuple(each)
        hold = Hold(id=_VALIDATED_ID, reason=placed.reason, case=placed.case, store=store,
                    table=table, where=where, expires=placed.until)
        return hold.model_copy(update={"id": placed.id}), through

    def _through(self, target: Target, value: str) -> Through:
        """The subject's condition at the end of the target's way, and the keys on the way."""
        store = self._stores.get(target.store) if self._stores is not None else None
        try:
            followed = follow_from(store.schema if store is not None else _unknown,
                                   target.table, target.way)
        except PathError as exc:
            if target.direct:  # compiled against the live table, the column stops the rule
                return Through(Condition(column=target.way[0], op=Op.EQ, value=value))
            raise StoreError(target.store, f"the data map's way to a subject in "
                             f"{target.table!r} does not follow the schema: {exc}",
                             "run 'retentiond validate'") from None
        info = followed.table.columns[followed.column]
        try:
            condition = Condition(column=followed.column, op=Op.EQ,
                                  value=typed_value(info, value))
        except ValueError:
            # No value of the column equals it; a NULL there is doubt, which keeps the record.
            condition = Condition(column=followed.column, op=Op.IS_NULL)
        return Through(condition, followed.keys)
