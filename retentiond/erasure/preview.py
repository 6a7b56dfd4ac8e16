"""Previewing an erasure request: what erasing the subject would do, read and never written.

The same engine as a rule's plan: the data map's erasure plan (:func:`~retentiond.policy.
datamap.erasure_plan_for`, children before parents), each table's rows of the subject found
through its column or paths of foreign keys, and the guards a rule's selection has there
(:meth:`~retentiond.run.engine.Engine.guards`: policy holds, holds placed at run time,
subject holds through foreign keys, minimum retentions).  Holds beat a request exactly as
they beat a rule.  Per table the preview says how many rows it found, what erasing does to
them (delete, anonymize or pseudonymize columns, or keep them under the stated exception),
how many are held and by which hold, and how many are blocked: rows to be deleted that a row
staying behind references (a kept invoice naming the customer), which a delete would refuse
or cascade into.

Belonging is strict here, where a hold's is generous: a row whose reference is NULL, or
leads nowhere, is not the subject's, so it is neither counted nor ever erased.  Each store is
read in one read-only transaction; the preview writes nothing, not even to the ledger, so the
auditor's role may run it.  Executing a request (write-ahead audited like a rule's batch),
its certificate and the daemon's part come later, from the same plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from retentiond.errors import SchemaChanged
from retentiond.holds.notation import Subject
from retentiond.policy.datamap import MAX_STEPS, ErasureStep, TableKey, erasure_plan_for
from retentiond.policy.filters import Condition, Op
from retentiond.run.engine import Engine, GuardCount
from retentiond.stores.base import (
    Blocker,
    Census,
    ForeignKey,
    Guard,
    OnDelete,
    Selection,
    TableSchema,
    Through,
)
from retentiond.stores.paths import PathError, follow_from
from retentiond.stores.values import typed_value

_CLEARS = frozenset({OnDelete.SET_NULL, OnDelete.SET_DEFAULT})
"""Keys whose rows stay when their parent goes, with the reference cleared: no block."""


@dataclass(frozen=True)
class TablePreview:
    """What erasing the subject would do to one table's rows."""

    store: str
    table: str
    effect: str
    """``delete``, ``anonymize``, ``pseudonymize`` or ``keep``."""
    ways: tuple[str, ...]
    """How rows belong to the subject: ``customer_id``, ``invoice_id -> customer_id``."""
    census: Census
    guards: tuple[GuardCount, ...] = ()
    """Each hold, minimum retention and blocker, with the rows of the subject it keeps."""
    exception: str | None = None
    """For ``keep``: the exception the rows are kept under."""
    columns: tuple[str, ...] = ()
    """The columns erasure rewrites (anonymizes or pseudonymizes), kept rows' too."""
    cycle: tuple[str, ...] = ()

    @property
    def found(self) -> int:
        """The subject's rows in the table."""
        return self.census.matched

    @property
    def acted(self) -> int:
        """Rows erasure would delete or rewrite (for ``keep`` without columns: none)."""
        if self.effect == "keep" and not self.columns:
            return 0
        return self.census.eligible

    @property
    def held(self) -> int:
        """Rows a hold or minimum retention keeps as they are."""
        return self.census.held + self.census.protected


@dataclass(frozen=True)
class ErasurePreview:
    """The dry run of one request: every mapped table of its subject kind, in erasure order."""

    request: str
    kind: str
    as_of: datetime
    tables: tuple[TablePreview, ...]


def preview_erasure(engine: Engine, request_id: str, subject: Subject, *,
                    as_of: datetime) -> ErasurePreview:
    """What erasing ``subject`` would do at ``as_of``, read-only, store by store.

    SchemaChanged when a mapped table or path no longer fits the live schema.
    """
    steps = erasure_plan_for(engine.policies.data_map, subject.kind, _references(engine, subject))
    by_store: dict[str, list[ErasureStep]] = {}
    for step in steps:
        by_store.setdefault(step.store, []).append(step)
    found: dict[TableKey, TablePreview] = {}
    for store_name, store_steps in by_store.items():
        store = engine.stores.get(store_name)
        selections = [_selection(engine, step, store_steps, subject, as_of=as_of)
                      for step in store_steps]
        with store.reader() as reader:  # one consistent read of the store
            for step, selection in zip(store_steps, selections, strict=True):
                census = reader.census(selection)
                found[step.store, step.table] = TablePreview(
                    store=step.store, table=step.table, effect=step.erase.effect,
                    ways=tuple(" -> ".join(way) for way in step.ways), census=census,
                    guards=tuple(_counts(engine, step, selection, census, as_of)),
                    exception=step.erase.keep,
                    columns=(*step.erase.anonymized, *step.erase.pseudonymized),
                    cycle=step.cycle)
    return ErasurePreview(request=request_id, kind=subject.kind, as_of=as_of,
                          tables=tuple(found[s.store, s.table] for s in steps))


def _references(engine: Engine, subject: Subject) -> dict[TableKey, set[TableKey]]:
    """For each table mapped to the kind: the tables its foreign keys point at (live)."""
    found: dict[TableKey, set[TableKey]] = {}
    for entry in engine.policies.data_map.tables:
        if subject.kind in entry.subject:
            schema = _schema(engine, entry.store, entry.table)
            found[entry.store, entry.table] = {(entry.store, fk.ref_table)
                                               for fk in schema.references}
    return found


def _schema(engine: Engine, store: str, table: str) -> TableSchema:
    schema = engine.stores.get(store).schema(table)
    if schema is None:
        raise SchemaChanged(store, f"table {table!r} of the data map does not exist",
                            "run 'retentiond validate' and fix the data map")
    return schema


def _selection(engine: Engine, step: ErasureStep, steps: Sequence[ErasureStep],
               subject: Subject, *, as_of: datetime) -> Selection:
    """The subject's rows of one table, with the guards and blockers a rule would have there."""
    throughs = tuple(_throughs(engine, step, subject))
    blockers = tuple(_blockers(engine, step, steps, as_of=as_of)) \
        if step.erase.effect == "delete" else ()
    return Selection(table=step.table, age=None,
                     guards=engine.guards(step.store, step.table, as_of=as_of),
                     blockers=blockers,
                     # no way fits the value: an impossible condition finds no row
                     subject=throughs or (Through(Condition(column=_first_key(engine, step),
                                                            op=Op.IS_NULL)),))


def _first_key(engine: Engine, step: ErasureStep) -> str:
    return _schema(engine, step.store, step.table).primary_key[0]


def _throughs(engine: Engine, step: ErasureStep, subject: Subject) -> Iterator[Through]:
    """Each way to the subject as the subject's condition at its end and the keys on the way.

    A way whose end column cannot hold the value (``customer=abc`` for an integer id) finds
    no row, and is left out.
    """
    store = engine.stores.get(step.store)
    for way in step.ways:
        try:
            followed = follow_from(store.schema, step.table, way)
        except PathError as exc:
            raise SchemaChanged(step.store, f"the data map's way {' -> '.join(way)} from "
                                f"{step.table!r} does not follow the schema: {exc}",
                                "run 'retentiond validate' and fix the data map") from None
        try:
            value = typed_value(followed.table.columns[followed.column], subject.value)
        except ValueError:
            continue
        yield Through(Condition(column=followed.column, op=Op.EQ, value=value), followed.keys)


def _blockers(engine: Engine, step: ErasureStep, steps: Sequence[ErasureStep], *,
              as_of: datetime) -> Iterator[Blocker]:
    """What keeps a row of a deleted table: a row referencing it that stays behind.

    Along the keys referencing the table: a table erasure does not delete (kept, rewritten,
    or not mapped) blocks through every referencing row, unless its key clears the reference
    (SET NULL, SET DEFAULT) when the parent goes.  A table erasure deletes too blocks
    through its held rows, and through whatever blocks its own rows, further down the keys
    (a held invoice line keeps its order, which keeps its customer).  A deleted table's rows
    referencing the subject's row are taken to be the subject's too (its way in the data
    map runs along that key, as an invoice line's runs through its invoice).
    """
    deleted = {s.table for s in steps if s.erase.effect == "delete"}

    def down(table: str, path: tuple[ForeignKey, ...]) -> Iterator[Blocker]:
        for fk in _schema(engine, step.store, table).referenced_by:
            chain = (*path, fk)
            ident = " <- ".join(f"{k.table}.{','.join(k.columns)}" for k in chain)
            if fk.table not in deleted:
                if fk.on_delete not in _CLEARS:
                    yield Blocker(ident, chain)
                continue
            if fk.table in {k.table for k in path} | {step.table} or len(chain) >= MAX_STEPS:
                continue  # a cycle among deleted tables: its rows go together
            guards: tuple[Guard, ...] = engine.guards(step.store, fk.table, as_of=as_of)
            if guards:
                yield Blocker(ident, chain, guards)
            yield from down(fk.table, chain)

    return down(step.table, ())


def _counts(engine: Engine, step: ErasureStep, selection: Selection, census: Census,
            as_of: datetime) -> Iterator[GuardCount]:
    """The rows of the subject each guard and blocker keeps, with its reason."""
    holds, retentions = engine.guarding(step.store, step.table, as_of=as_of)
    reasons = {hold_id: hold.reason for hold_id, hold in holds.items()}
    reasons.update({r_id: r.reason for r_id, r in retentions.items()})
    for guard in selection.guards:
        yield GuardCount(guard.kind, guard.id, reasons.get(guard.id, ""),
                         census.by_guard.get(guard.id, 0))
    for blocker in selection.blockers:
        yield GuardCount("blocker", blocker.id, _blocking(blocker, step, engine),
                         census.by_guard.get(blocker.id, 0))


def _blocking(blocker: Blocker, step: ErasureStep, engine: Engine) -> str:
    fk: ForeignKey = blocker.path[-1]
    entry = engine.policies.data_map.table(step.store, fk.table)
    if blocker.guards is not None:
        return f"referenced by held rows of {fk.table}"
    if entry is None or not set(entry.subject) & set(step_kinds(engine, step)):
        return f"referenced by rows of {fk.table}, which the data map does not map to the subject"
    if entry.erase.keep is not None:
        return f"referenced by rows of {fk.table} kept as {entry.erase.keep}"
    return f"referenced by rows of {fk.table}, which erasure {entry.erase.effect}s"


def step_kinds(engine: Engine, step: ErasureStep) -> tuple[str, ...]:
    """The subject kinds the data map gives the step's table."""
    entry = engine.policies.data_map.table(step.store, step.table)
    return tuple(entry.subject) if entry is not None else ()
