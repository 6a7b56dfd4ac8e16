"""Quarantine batches after the fact: list them, restore one exactly, purge those that are due.

Restoring and purging are audited like any batch: an intent before, an outcome after.  The
quarantine table itself is the marker: a batch gone from it after an intent was carried out.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from retentiond.errors import RetentionError, StoreError
from retentiond.ledger.chain import AuditLedger, Entry, Kind

if TYPE_CHECKING:
    from collections.abc import Collection

    from retentiond.stores.base import Key, QuarantineBatch, Store
    from retentiond.stores.registry import Stores

log = structlog.get_logger("retentiond.quarantine")


def batches(stores: Stores, only: Collection[str] | None = None,
            ) -> list[tuple[str, QuarantineBatch]]:
    """Every quarantined batch of every reachable store (or of those ``only`` names).

    A store that cannot be listed is logged and skipped: one unreachable store must not keep
    the others' due batches from being purged.
    """
    found: list[tuple[str, QuarantineBatch]] = []
    for name in stores.names:
        if only is not None and name not in only:
            continue
        try:
            found.extend((name, batch) for batch in stores.get(name).quarantined())
        except StoreError as exc:
            log.warning("quarantine.store_skipped", store=name, error=exc.public)
    return found


def find(stores: Stores, batch_id: str) -> tuple[str, QuarantineBatch]:
    """The batch with this id; StoreError naming the id when no store has it."""
    for name, batch in batches(stores):
        if batch.batch_id == batch_id:
            return name, batch
    raise StoreError("*", f"no quarantined batch {batch_id!r}",
                     "list them with 'retentiond quarantine list'")


def _entry(kind: Kind, op: str, store: str, batch: QuarantineBatch, *, body: dict[str, Any],
           run_id: str) -> Entry:
    return Entry(kind=kind, run_id=run_id, rule=batch.rule, store=store, table=batch.table,
                 action=op, batch_id=batch.batch_id, body={"op": op, **body})


def _carry_out(ledger: AuditLedger, store_name: str, store: Store, batch: QuarantineBatch, *,
               op: str, extra: dict[str, Any]) -> tuple[Key, ...]:
    run_id = str(uuid.uuid4())
    ledger.append(_entry(Kind.INTENT, op, store_name, batch,
                         body={"rows": batch.rows, **extra}, run_id=run_id))
    try:
        keys = store.restore(batch) if op == "restore" else store.purge(batch)
    except RetentionError as exc:
        ledger.append(_entry(Kind.OUTCOME, op, store_name, batch, run_id=run_id,
                             body={"status": "rolled back", "error": type(exc).__name__}))
        raise
    ledger.append(_entry(Kind.OUTCOME, op, store_name, batch, run_id=run_id,
                         body={"status": "applied", "keys": [list(k) for k in keys],
                               "count": len(keys)}))
    log.info("quarantine.done", op=op, store=store_name, batch=batch.batch_id, rows=len(keys))
    return keys


def restore(stores: Stores, ledger: AuditLedger, batch_id: str, reason: str) -> tuple[Key, ...]:
    """Put one batch back exactly as it was moved."""
    name, batch = find(stores, batch_id)
    return _carry_out(ledger, name, stores.get(name), batch, op="restore",
                      extra={"reason": reason})


def purge_due(stores: Stores, ledger: AuditLedger, *, now: datetime | None = None,
              only: Collection[str] | None = None) -> list[tuple[QuarantineBatch, int]]:
    """Delete for good every batch whose release date has passed; (batch, rows) purged.

    ``only``: the stores to look in (a run passes those its rules use: a store configured
    for no rule is not its business); default every configured store.
    """
    moment = (now or datetime.now(tz=UTC)).astimezone(UTC).isoformat(timespec="seconds")
    purged = []
    for name, batch in batches(stores, only):
        if batch.release_at <= moment:
            keys = _carry_out(ledger, name, stores.get(name), batch, op="purge",
                              extra={"release_at": batch.release_at})
            purged.append((batch, len(keys)))
    return purged


def settle(stores: Stores, ledger: AuditLedger, intent: Entry) -> dict[str, Any]:
    """The outcome of an interrupted restore or purge: done if the batch left quarantine."""
    if intent.store is None or intent.batch_id is None:
        return {"status": "unknown"}
    still = any(b.batch_id == intent.batch_id for b in stores.get(intent.store).quarantined())
    del ledger
    return {"op": intent.body.get("op"), "status": "not applied" if still else "applied",
            "recovered": True}
