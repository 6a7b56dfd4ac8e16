"""Restored rows exempt from the rule that quarantined them, until a date the operator gave.

Without this, a batch put back with ``retentiond quarantine restore`` would be quarantined
again by the rule's next run: the rows are as old as they were.  Each applied restore keeps
its keys in the state database (:data:`~retentiond.ledger.state.restore_exemptions`), written
in the same transaction as the restore's ``batch.outcome``; until ``until`` they are a guard
of the rule that moved them, and of no other rule: a hold scoped to those keys and that rule.
Other rules (a pseudonymization of the same table, a deletion with a longer period) still see
them.  An exemption is a date-bound decision, not a release: once ``until`` has passed the
rule takes the rows again, unless it has been changed meanwhile.

:class:`StateExemptions` is the source the engine reads before every batch, like the holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from retentiond.errors import AuditError
from retentiond.holds.guards import HoldSource
from retentiond.holds.table import in_force, stamp, stored_until
from retentiond.ledger.chain import canonical, jsonable
from retentiond.ledger.state import StateDB, restore_exemptions
from retentiond.policy.filters import MAX_VALUES, AllOf, AnyOf, Condition, Filter, Op
from retentiond.policy.model import Hold
from retentiond.stores.base import ColumnKind, Guard, Key, TableSchema
from retentiond.stores.values import typed_value

DEFAULT_DAYS = 30
"""Without ``--until``, restored rows are exempt through the 30th day after the restore (UTC)."""


def default_until(now: datetime) -> date:
    """The exemption's end when the operator gives none: :data:`DEFAULT_DAYS` days from now."""
    return (now.astimezone(UTC) + timedelta(days=DEFAULT_DAYS)).date()


@dataclass(frozen=True)
class Exemption:
    """Rows of ``store.table`` put back from quarantine batch ``batch_id``, exempt from ``rule``."""

    id: str
    """The restore's run id in the ledger (its intent and outcome carry it)."""
    batch_id: str
    store: str
    table: str
    rule: str
    keys: tuple[tuple[object, ...], ...]
    """The restored primary keys, as the ledger writes them (JSON values)."""
    reason: str
    by: str
    restored_at: datetime
    until: date | datetime

    @property
    def guard_id(self) -> str:
        """The guard's name in plans and censuses: ``restored-<batch id>``."""
        return f"restored-{self.batch_id}"

    def in_force(self, at: datetime) -> bool:
        """Whether the rows are still exempt at ``at`` (a date: through that day, UTC)."""
        return in_force(self.until, at)

    def ends(self) -> datetime:
        """The first moment the rows are no longer exempt."""
        if isinstance(self.until, datetime):
            return self.until if self.until.tzinfo else self.until.replace(tzinfo=UTC)
        return datetime.combine(self.until + timedelta(days=1), datetime.min.time(), tzinfo=UTC)

    def describe(self) -> str:
        """Who restored the rows, when, why and until when, in one line for a reader."""
        return (f"restored from quarantine batch {self.batch_id} by {self.by} on "
                f"{self.restored_at:%Y-%m-%d}, exempt until {self.until.isoformat()}: "
                f"{self.reason}")

    def guard(self, schema: TableSchema) -> Guard:
        """A hold on exactly the restored keys of ``schema`` (its primary key typed anew)."""
        return Guard(kind="hold", id=self.guard_id, where=key_filter(schema, self.keys))


def key_filter(schema: TableSchema, keys: Sequence[Sequence[object]]) -> Filter:
    """``primary key IN keys`` in the filter language, in lists of at most MAX_VALUES values.

    A composite key becomes ``a = 1 AND b IN (...)`` per value of the other columns, the
    ``IN`` taken on the column that makes the fewest such groups: SQLite refuses an
    expression more than 1,000 terms deep, and ``OR`` chains count.
    """
    columns = schema.primary_key
    typed = [tuple(_typed(schema, c, v) for c, v in zip(columns, key, strict=True))
             for key in keys]
    if not typed:  # a batch of no rows: a filter that matches nothing
        return Condition(column=columns[0], op=Op.IS_NULL)
    listed = min(range(len(columns)),
                 key=lambda i: len({key[:i] + key[i + 1:] for key in typed}))
    groups: dict[tuple[object, ...], list[object]] = {}
    for key in typed:
        groups.setdefault(key[:listed] + key[listed + 1:], []).append(key[listed])
    others = [c for i, c in enumerate(columns) if i != listed]
    parts: list[Filter] = []
    for fixed, values in groups.items():
        for start in range(0, len(values), MAX_VALUES):
            inside = Condition(column=columns[listed], op=Op.IN,
                               value=values[start:start + MAX_VALUES])
            equal = [Condition(column=c, value=v) for c, v in zip(others, fixed, strict=True)]
            parts.append(AllOf(all=[*equal, inside]) if equal else inside)
    return parts[0] if len(parts) == 1 else AnyOf(any=parts)


def _typed(schema: TableSchema, column: str, value: object) -> object:
    """A key value as the ledger wrote it, typed again by its column where it was text."""
    info = schema.columns.get(column)
    if not isinstance(value, str) or info is None or info.kind is ColumnKind.TEXT:
        return value
    try:
        return typed_value(info, value)
    except ValueError:
        return value


def exempting(exemption: Exemption) -> Callable[[Connection], None]:
    """Store ``exemption`` in the ledger's transaction (``AuditLedger.append(along=...)``)."""
    row = {"id": exemption.id, "batch_id": exemption.batch_id, "store": exemption.store,
           "table_name": exemption.table, "rule": exemption.rule,
           "keys": canonical([[jsonable(part) for part in key] for key in exemption.keys]),
           "reason": exemption.reason, "restored_by": exemption.by,
           "restored_at": stamp(exemption.restored_at), "until": exemption.until.isoformat()}

    def write(conn: Connection) -> None:
        try:
            conn.execute(insert(restore_exemptions).values(**row))
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot store the restore's exemption: {type(exc).__name__}",
                             ) from None
    return write


def read_exemptions(engine: Engine, *, store: str | None = None, table: str | None = None,
                    rule: str | None = None) -> list[Exemption]:
    """The exemptions kept (of ``store.table`` and ``rule`` when given), oldest first."""
    query = select(restore_exemptions).order_by(restore_exemptions.c.restored_at,
                                                restore_exemptions.c.id)
    for column, value in (("store", store), ("table_name", table), ("rule", rule)):
        if value is not None:
            query = query.where(restore_exemptions.c[column] == value)
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(query).mappings())
    except SQLAlchemyError as exc:
        raise AuditError(f"cannot read the restore exemptions: {type(exc).__name__}") from None
    try:
        return [Exemption(id=r["id"], batch_id=r["batch_id"], store=r["store"],
                          table=r["table_name"], rule=r["rule"],
                          keys=tuple(tuple(k) for k in json.loads(r["keys"])),
                          reason=r["reason"], by=r["restored_by"],
                          restored_at=datetime.fromisoformat(r["restored_at"]),
                          until=_until(r["until"])) for r in rows]
    except (ValueError, TypeError):
        raise AuditError("a restore exemption in the state database cannot be read back; "
                         "the table was changed outside retentiond") from None


def _until(value: object) -> date | datetime:
    until = stored_until(value)
    if until is None:  # pragma: no cover - the column is NOT NULL
        raise ValueError("no until")
    return until


class StateExemptions(HoldSource):
    """The exemptions of restored rows kept in the state database; holds nothing table-wide."""

    def __init__(self, state: StateDB) -> None:
        self._state = state

    def active(self, store: str, table: str, at: datetime) -> Iterator[Hold]:
        """No holds: an exemption protects rows from one rule only (:meth:`exemptions`)."""
        del store, table, at
        yield from ()

    def exemptions(self, store: str, table: str, rule: str, at: datetime) -> list[Exemption]:
        """The exemptions from ``rule`` in force on ``store.table`` at ``at``."""
        return [e for e in read_exemptions(self._state.engine, store=store, table=table,
                                           rule=rule) if e.in_force(at)]


def restored(keys: Sequence[Key]) -> tuple[tuple[object, ...], ...]:
    """Keys as an exemption keeps them: each part in its JSON form."""
    return tuple(tuple(jsonable(part) for part in key) for key in keys)
