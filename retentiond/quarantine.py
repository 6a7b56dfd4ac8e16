"""Quarantine batches after the fact: list them, restore one exactly, purge those that are due.

Restoring and purging are audited like any batch: an intent before, an outcome after.  The
quarantine table itself is the marker: a batch gone from it after an intent was carried out.

A restore says who restored the batch and why, and exempts its rows from the rule that moved
them until a date (:mod:`retentiond.holds.exemptions`; 30 days by default): otherwise that
rule's next run would quarantine them again.  The exemption is stored with the restore's
outcome, in one transaction; the intent carries the keys, so that an interrupted restore
settled later (:func:`settle`, :func:`recovered_exemption`) is exempted all the same.

A batch is named by its full id or by a unique prefix of at least :data:`MIN_PREFIX`
characters.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import structlog

from retentiond.errors import PolicyError, Problem, RetentionError, StoreError, UnknownBatch
from retentiond.holds.exemptions import Exemption, default_until, exempting, restored
from retentiond.holds.table import in_force, stored_until
from retentiond.ledger.chain import AuditLedger, Entry, Kind

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy import Connection

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


MIN_PREFIX = 4
"""The fewest characters of a batch id that name it (when no other batch starts with them)."""


def find(stores: Stores, batch_id: str) -> tuple[str, QuarantineBatch]:
    """The batch with this id, or the one batch whose id starts with it.

    UnknownBatch when no batch has it, or a prefix is ambiguous (it names the candidates) or
    shorter than :data:`MIN_PREFIX`.
    """
    wanted = batch_id.strip()
    found = batches(stores)
    for name, batch in found:
        if batch.batch_id == wanted:
            return name, batch
    starting = [(name, b) for name, b in found if wanted and b.batch_id.startswith(wanted)]
    if len(starting) == 1 and len(wanted) >= MIN_PREFIX:
        return starting[0]
    raise UnknownBatch(wanted, matches=tuple(b.batch_id for _, b in starting),
                       stores=tuple(stores.names), shortest=MIN_PREFIX)


def _entry(kind: Kind, op: str, store: str, batch: QuarantineBatch, *, body: dict[str, Any],
           run_id: str) -> Entry:
    return Entry(kind=kind, run_id=run_id, rule=batch.rule, store=store, table=batch.table,
                 action=op, batch_id=batch.batch_id, body={"op": op, **body})


def _carry_out(ledger: AuditLedger, store_name: str, store: Store, batch: QuarantineBatch, *,
               op: str, extra: dict[str, Any], run_id: str | None = None,
               intent_extra: dict[str, Any] | None = None,
               along: Callable[[Connection], None] | None = None) -> tuple[Key, ...]:
    """Intent, the store's work, outcome; ``along`` changes the state database with the outcome."""
    run_id = run_id or str(uuid.uuid4())
    ledger.append(_entry(Kind.INTENT, op, store_name, batch, run_id=run_id,
                         body={"rows": batch.rows, **extra, **(intent_extra or {})}))
    try:
        keys = store.restore(batch) if op == "restore" else store.purge(batch)
    except RetentionError as exc:
        ledger.append(_entry(Kind.OUTCOME, op, store_name, batch, run_id=run_id,
                             body={"status": "rolled back", "error": type(exc).__name__}))
        raise
    ledger.append(_entry(Kind.OUTCOME, op, store_name, batch, run_id=run_id,
                         body={"status": "applied", "keys": [list(k) for k in keys],
                               "count": len(keys), **(extra if op == "restore" else {})}),
                  along=along)
    log.info("quarantine.done", op=op, store=store_name, batch=batch.batch_id, rows=len(keys))
    return keys


@dataclass(frozen=True)
class Restored:
    """A batch put back: where, which keys, and the exemption from the rule that moved it."""

    store: str
    batch: QuarantineBatch
    keys: tuple[Key, ...]
    exemption: Exemption


def restore(stores: Stores, ledger: AuditLedger, batch_id: str, reason: str, *, by: str,
            until: date | datetime | None = None, now: datetime | None = None) -> Restored:
    """Put one batch back exactly as it was moved, exempt from its rule until ``until``.

    ``batch_id``: the id or a unique prefix.  ``until``: a date (exempt through that day, UTC)
    or a time; None: :func:`~retentiond.holds.exemptions.default_until`.  PolicyError when
    the reason or who restores is missing, or ``until`` has passed (nothing is done).
    """
    moment = now or datetime.now(tz=UTC)
    ends = until if until is not None else default_until(moment)
    problems = []
    if not reason.strip():
        problems.append(("the reason is empty", "say why the batch goes back (--reason)"))
    if not by.strip():
        problems.append(("who restores the batch is unknown", "name them with --by"))
    if not in_force(ends, moment):
        problems.append((f"--until {ends.isoformat()} has already passed",
                         "give a later date: the rows are exempt from their rule until then"))
    if problems:
        raise PolicyError([Problem(None, None, "restore", what, fix) for what, fix in problems])
    name, batch = find(stores, batch_id)
    store = stores.get(name)
    keys = store.quarantined_keys(batch)
    exemption = Exemption(id=str(uuid.uuid4()), batch_id=batch.batch_id, store=name,
                          table=batch.table, rule=batch.rule, keys=restored(keys),
                          reason=reason.strip(), by=by.strip(), restored_at=moment, until=ends)
    put_back = _carry_out(ledger, name, store, batch, op="restore", run_id=exemption.id,
                          extra=_restore_body(exemption),
                          intent_extra={"keys": [list(k) for k in exemption.keys]},
                          along=exempting(exemption))
    return Restored(name, batch, put_back, exemption)


def _restore_body(exemption: Exemption) -> dict[str, Any]:
    return {"reason": exemption.reason, "by": exemption.by,
            "until": exemption.until.isoformat()}


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
    settled = {"op": intent.body.get("op"), "status": "not applied" if still else "applied",
               "recovered": True}
    if intent.body.get("op") == "restore" and not still:
        settled.update({k: intent.body[k] for k in ("reason", "by", "until")
                        if k in intent.body})
    return settled


def recovered_exemption(intent: Entry, outcome: dict[str, Any], *,
                        now: datetime | None = None) -> Callable[[Connection], None] | None:
    """For a restore found applied on recovery: its exemption, stored with the outcome.

    None for anything else, and for an intent written before restores carried their keys.
    """
    body = intent.body
    if (body.get("op") != "restore" or outcome.get("status") != "applied"
            or intent.store is None or intent.batch_id is None or "keys" not in body):
        return None
    until = stored_until(body.get("until"))
    moment = now or datetime.now(tz=UTC)
    return exempting(Exemption(
        id=intent.run_id or str(uuid.uuid4()), batch_id=intent.batch_id, store=intent.store,
        table=intent.table or "", rule=intent.rule or "",
        keys=tuple(tuple(k) for k in body["keys"]), reason=str(body.get("reason", "")),
        by=str(body.get("by", "")), restored_at=moment,
        until=until if until is not None else default_until(moment)))
