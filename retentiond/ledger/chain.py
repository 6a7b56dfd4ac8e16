"""The audit ledger: append-only, hash-chained records of everything retentiond does.

Each record carries ``record_hash``, the SHA-256 of its canonical JSON (every field but the two
hashes), and ``chain_hash = SHA-256(previous chain_hash || record_hash)``; the first record
chains from 64 zeros.  Sequence numbers are gapless.  Changing, removing, reordering or
truncating records breaks the chain (or the numbering) where :func:`AuditLedger.verify` sees it.

No personal data enters a record: keys are kept as keys, never column values; filters are
named by rule id and version, not by their values; errors by type and store, not driver text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import Connection, RowMapping, and_, exists, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from retentiond.clock import SYSTEM_CLOCK, Clock
from retentiond.errors import AuditError
from retentiond.ledger.state import StateDB, audit_log

GENESIS = "0" * 64

Vouch = Callable[[str], str]
"""Signs a record hash (hex in, hex signature out): the writer vouching for its record."""


class Kind(StrEnum):
    """What a ledger record says happened."""

    RUN_START = "run.start"
    RUN_END = "run.end"
    INTENT = "batch.intent"
    OUTCOME = "batch.outcome"
    OVERRIDE = "brake.override"
    STOPPED = "brake.stopped"
    ERROR = "rule.error"
    CHECKPOINT = "checkpoint"
    CERTIFICATE = "certificate"
    HOLD_PLACED = "hold.placed"
    HOLD_RELEASED = "hold.released"
    COMPACTED = "table.compacted"
    ERASURE_RECORDED = "erasure.recorded"


def canonical(value: object) -> str:
    """The one JSON text of ``value`` that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_form)


def jsonable(value: object) -> object:
    """``value`` as the audit log writes it in JSON (a date in ISO 8601, a decimal as text).

    Bytes are written in hex, a UUID as its text; anything else is returned unchanged (JSON's
    own types, and what has no JSON form).  Keys shown elsewhere (``plan --json``,
    ``explain``) take the same form, so they can be compared with the keys in the ledger.
    """
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, UUID):  # PostgreSQL's uuid keys: their canonical text
        return str(value)
    return value


def _json_form(value: object) -> object:
    """``json.dumps``'s fallback for :func:`canonical`: TypeError where there is no JSON form."""
    converted = jsonable(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} cannot go into the audit log")
    return converted


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_BEFORE_BODY = ("action", "at", "batch_id")
"""The record fields whose names sort before ``body``."""


class Body(Mapping[str, Any]):
    """A record body encoded once, when it is made.

    A batch's body lists up to a batch of keys; the marker, the record hash and the stored
    row all need its canonical JSON, and encoding it once for all three (not three times)
    is a measurable part of a batch's cost.  Read-only, so the text cannot go stale.
    """

    __slots__ = ("_data", "text")

    def __init__(self, data: Mapping[str, Any], known: Mapping[str, str] | None = None) -> None:
        """``known`` maps a member to its canonical text where that is already at hand.

        A batch's keys were encoded for the intent's digest; their text goes in as it is.
        """
        self._data = dict(data)
        if not known:
            self.text = canonical(self._data)
        else:  # what json.dumps(sort_keys=True) would write, member by member
            self.text = "{" + ",".join(
                f"{canonical(name)}:{known[name] if name in known else canonical(value)}"
                for name, value in sorted(self._data.items())) + "}"

    @classmethod
    def stored(cls, data: Mapping[str, Any], text: str) -> Body:
        """A body as read from the ledger: ``text`` is the stored text, byte for byte.

        The record hash is checked against these bytes, not against a re-encoding of what
        they parse to, so two texts that parse alike (a duplicate key, other spacing) never
        pass for one another.
        """
        body = cls.__new__(cls)
        body._data, body.text = dict(data), text  # noqa: SLF001 - our own class
        return body

    def is_canonical(self) -> bool:
        """Whether the text is the canonical JSON of the data (always, for a body we made)."""
        return canonical(self._data) == self.text

    def __getitem__(self, key: str) -> Any:  # noqa: ANN401 - JSON values
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def encoded(body: Mapping[str, Any]) -> str:
    """The canonical JSON of a record body (computed once for a :class:`Body`)."""
    return body.text if isinstance(body, Body) else canonical(dict(body))


@dataclass(frozen=True)
class Entry:
    """A record to append: what happened, to what, and the details in ``body``."""

    kind: Kind
    run_id: str | None = None
    rule: str | None = None
    rule_version: str | None = None
    store: str | None = None
    table: str | None = None
    action: str | None = None
    batch_id: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """A record as stored: the entry, its place in the ledger and its hashes."""

    seq: int
    at: str
    entry: Entry
    record_hash: str
    chain_hash: str
    signature: str | None = None
    """The writer's Ed25519 signature over ``record_hash`` (hex), when it held the key."""

    def fields(self) -> dict[str, object]:
        """Everything the record hash covers."""
        e = self.entry
        return {"seq": self.seq, "at": self.at, "kind": e.kind.value, "run_id": e.run_id,
                "rule": e.rule, "rule_version": e.rule_version, "store": e.store,
                "table": e.table, "action": e.action, "batch_id": e.batch_id,
                "body": dict(e.body)}

    def expected_hash(self) -> str:
        """The record hash recomputed from the stored fields."""
        return _sha256(self.hashed_text(encoded(self.entry.body)))

    def hashed_text(self, body: str) -> str:
        """``canonical(self.fields())``, with the body's canonical JSON given as ``body``.

        The body is spliced in where sorted keys put it (after ``batch_id``), so a body
        encoded once need not be encoded again; the text is the same byte for byte.
        """
        fields = self.fields()
        del fields["body"]
        before = canonical({name: fields.pop(name) for name in _BEFORE_BODY})
        after = canonical(fields)
        return f'{before[:-1]},"body":{body},{after[1:]}'


@dataclass(frozen=True)
class Verification:
    """The result of recomputing the chain: ``ok``, or the first broken record and why."""

    records: int
    head: str
    broken_seq: int | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    """What is not a break of integrity but wants a look: gaps between checkpoints (the daemon
    was not running), records not signed yet."""

    @property
    def ok(self) -> bool:
        """Whether every check passed (a finding need not name one record)."""
        return self.reason is None


class AuditLedger:
    """Append to, read and verify the ledger in the state database."""

    def __init__(self, state: StateDB, *, vouch: Vouch | None = None,
                 reading: bool = False, clock: Clock = SYSTEM_CLOCK) -> None:
        """``vouch`` signs each record as it is written: the writer holds the signing key.

        The installation's digest key is read at once (a writer fails before it acts), or,
        ``reading`` (verify, export, report), only if a digest is asked for: a reviewer's
        role need not see it, since with it a guessed subject could be tested.  Each record
        is stamped with the time ``clock`` tells.
        """
        self._state = state
        self._digest_key = None if reading else state.secret("audit-digest-key")
        self._vouch = vouch
        self._clock = clock
        self._kept: list[Entry] = []
        self._kept_lock = threading.Lock()

    @property
    def state(self) -> StateDB:
        """The state database the ledger lives in."""
        return self._state

    def append(self, entry: Entry, *, along: Callable[[Connection], object] | None = None
               ) -> Record:
        """Commit one record at the end of the chain; AuditError when it cannot be written.

        ``along`` changes the state database in the same transaction: the change and its
        record commit together or not at all.
        """
        return self.append_many([entry], along=along)[0]

    def append_many(self, entries: Sequence[Entry], *,
                    along: Callable[[Connection], object] | None = None) -> list[Record]:
        """Commit records together, in order, at the end of the chain (one transaction).

        Records kept while the state database was away (:meth:`keep`) go first.
        """
        if not entries:
            return []
        # Encoded before the lock is taken: a body that cannot be encoded fails here.
        bodies = [encoded(entry.body) for entry in entries]
        with self._kept_lock:
            with self._state.appending() as conn:
                if along is not None:
                    along(conn)
                self._insert(conn, self._kept, [encoded(entry.body) for entry in self._kept])
                records = self._insert(conn, entries, bodies)
            self._kept.clear()  # committed
        return records

    def keep(self, entry: Entry) -> None:
        """Keep a record the state database refused, to write first with the next that succeeds.

        Its body gains ``happened_at``, the time it happened (its own ``at`` is the time it is
        written).  Kept in this process's memory: the daemon's, which writes it on its next
        run or checkpoint; see :meth:`write_kept`.
        """
        late = {**entry.body, "happened_at": self._stamp()}
        with self._kept_lock:
            self._kept.append(replace(entry, body=late))

    @property
    def kept(self) -> tuple[Entry, ...]:
        """The records waiting for the state database, oldest first."""
        with self._kept_lock:
            return tuple(self._kept)

    def write_kept(self) -> int:
        """Write the records kept while the state database was away; how many (AuditError)."""
        with self._kept_lock:
            kept = len(self._kept)
            if kept:
                with self._state.appending() as conn:
                    self._insert(conn, self._kept, [encoded(e.body) for e in self._kept])
                self._kept.clear()  # committed
        return kept

    def take_kept(self, other: AuditLedger) -> None:
        """Take over the records ``other`` keeps (a reload's ledger takes the old one's)."""
        with other._kept_lock:
            kept, other._kept = other._kept, []
        with self._kept_lock:
            self._kept[:0] = kept

    def _insert(self, conn: Connection, entries: Sequence[Entry],
                bodies: Sequence[str]) -> list[Record]:
        """Insert ``entries`` after the chain's tail (inside :meth:`StateDB.appending`)."""
        if not entries:
            return []
        tail = conn.execute(
            select(audit_log.c.seq, audit_log.c.chain_hash)
            .order_by(audit_log.c.seq.desc()).limit(1)).first()
        seq, chain = (tail[0], tail[1]) if tail else (0, GENESIS)
        records = []
        for entry, body in zip(entries, bodies, strict=True):
            seq += 1
            at = self._stamp()
            record_hash = _sha256(Record(seq, at, entry, "", "").hashed_text(body))
            chain = _sha256(chain + record_hash)
            records.append(Record(seq, at, entry, record_hash, chain,
                                  self._signature(record_hash)))
        conn.execute(insert(audit_log),
                     [_row(r, body) for r, body in zip(records, bodies, strict=True)])
        return records

    def _stamp(self) -> str:
        return self._clock.now().astimezone(UTC).isoformat(timespec="microseconds")

    def _signature(self, record_hash: str) -> str | None:
        return None if self._vouch is None else self._vouch(record_hash)

    def key_digest(self, keys: Iterable[Sequence[object]] | str) -> str:
        """A keyed digest of primary keys: commits to them without revealing them.

        ``keys`` may also be their canonical JSON text, when the caller has it already.
        """
        if self._digest_key is None:
            self._digest_key = self._state.secret("audit-digest-key")
        mac = hmac.new(self._digest_key, digestmod=hashlib.sha256)
        if not isinstance(keys, str):
            keys = canonical(keys if isinstance(keys, list) else list(keys))
        mac.update(keys.encode())  # tuples encode as JSON arrays
        return mac.hexdigest()

    def records(self, *, after_seq: int = 0, batch: int = 5000,
                page_chars: int = 16 << 20) -> Iterator[Record]:
        """Every record after ``after_seq`` in sequence order, read in pages (bounded memory).

        A page holds at most ``batch`` records and, beyond its first record, bodies of at most
        ``page_chars`` characters in all: an outcome lists its batch's keys (~90 kB for
        10,000), so 5,000 of them would be ~450 MB.  The sizes are asked for first.
        """
        last = after_seq
        while True:
            try:
                with self._state.engine.connect() as conn:
                    sizes = conn.execute(
                        select(audit_log.c.seq, func.length(audit_log.c.body))
                        .where(audit_log.c.seq > last).order_by(audit_log.c.seq).limit(batch),
                    ).all()
                    if not sizes:
                        return
                    through = _page_end(sizes, page_chars)
                    rows = conn.execute(
                        select(audit_log).where(audit_log.c.seq > last,
                                                audit_log.c.seq <= through)
                        .order_by(audit_log.c.seq)).mappings().all()
            except SQLAlchemyError as exc:
                raise AuditError(f"cannot read the ledger: {type(exc).__name__}") from None
            for row in rows:
                yield _record(row)
            last = through

    def open_intents(self) -> list[Record]:
        """Intents that have no outcome yet: batches a crash may have left undecided."""
        outcome = aliased(audit_log)
        # Restores and purges of a quarantined batch reuse its id: pair by action too.
        has_outcome = exists().where(and_(outcome.c.batch_id == audit_log.c.batch_id,
                                          outcome.c.action.is_not_distinct_from(
                                              audit_log.c.action),
                                          outcome.c.kind == Kind.OUTCOME.value))
        query = (select(audit_log).where(audit_log.c.kind == Kind.INTENT.value, ~has_outcome)
                 .order_by(audit_log.c.seq))
        with self._state.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def latest(self, kind: Kind, rule: str) -> Record | None:
        """The newest record of ``kind`` about ``rule``, or None."""
        query = (select(audit_log).where(audit_log.c.kind == kind.value, audit_log.c.rule == rule)
                 .order_by(audit_log.c.seq.desc()).limit(1))
        try:
            with self._state.engine.connect() as conn:
                row = conn.execute(query).mappings().first()
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot read the ledger: {type(exc).__name__}") from None
        return None if row is None else _record(row)

    def pairing_problems(self) -> list[tuple[int, str]]:
        """Batches with two intents or two outcomes, and outcomes without an intent.

        Asked of the database, so verification needs no memory per batch.
        """
        kinds = (Kind.INTENT.value, Kind.OUTCOME.value)
        doubled = (select(func.max(audit_log.c.seq), audit_log.c.kind, audit_log.c.batch_id)
                   .where(audit_log.c.kind.in_(kinds))
                   .group_by(audit_log.c.batch_id, audit_log.c.action, audit_log.c.kind)
                   .having(func.count() > 1))
        intent = aliased(audit_log)
        orphans = (select(audit_log.c.seq, audit_log.c.batch_id)
                   .where(audit_log.c.kind == Kind.OUTCOME.value,
                          ~exists().where(intent.c.kind == Kind.INTENT.value,
                                          intent.c.batch_id == audit_log.c.batch_id,
                                          intent.c.action.is_not_distinct_from(
                                              audit_log.c.action))))
        try:
            with self._state.engine.connect() as conn:
                found = [(int(seq), f"a second {str(kind).split('.')[-1]} for batch {batch}")
                         for seq, kind, batch in conn.execute(doubled)]
                found += [(int(seq), f"an outcome for batch {batch} without an intent")
                          for seq, batch in conn.execute(orphans)]
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot read the ledger: {type(exc).__name__}") from None
        return sorted(found)

    def certificate(self, run_id: str) -> Record | None:
        """The certificate of a run, or None."""
        query = (select(audit_log).where(audit_log.c.kind == Kind.CERTIFICATE.value,
                                         audit_log.c.run_id == run_id).limit(1))
        with self._state.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _record(row)

    def count(self) -> int:
        """How many records the ledger holds."""
        with self._state.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())

    def append_at_tail(self, make: Callable[[int, str], Entry], *,
                       vouch: Vouch | None = None) -> Record:
        """Append the entry ``make(last_seq, chain_head)`` builds, inside the append lock.

        For checkpoints: what they sign is the tail, so nothing may slip in between.
        ``vouch`` signs the record in place of the ledger's own signer.
        """
        with self._state.appending() as conn:
            tail = conn.execute(
                select(audit_log.c.seq, audit_log.c.chain_hash)
                .order_by(audit_log.c.seq.desc()).limit(1)).first()
            seq, chain = (tail[0], tail[1]) if tail else (0, GENESIS)
            entry = make(seq, chain)
            at = self._stamp()
            record_hash = Record(seq + 1, at, entry, "", "").expected_hash()
            signature = vouch(record_hash) if vouch else self._signature(record_hash)
            record = Record(seq + 1, at, entry, record_hash, _sha256(chain + record_hash),
                            signature)
            conn.execute(insert(audit_log), [_row(record, encoded(entry.body))])
        return record

    def verify(self, auditor: Auditor | None = None) -> Verification:
        """Recompute every hash and the chain; name the first record that does not check out.

        An ``auditor`` adds checks of its own on each record (checkpoints, intents) and at the
        end; the first problem anyone finds is the answer.
        """
        chain = GENESIS
        expected_seq = 1
        count = 0
        for record in self.records():
            count += 1
            if record.seq != expected_seq:
                return Verification(count, chain, record.seq,
                                    f"sequence jumps from {expected_seq - 1} to {record.seq}: "
                                    "records are missing")
            if record.expected_hash() != record.record_hash:
                return Verification(count, chain, record.seq,
                                    "the record's contents do not match its hash")
            if not _canonical_body(record):
                # Its hash may match (it covers the stored bytes), but a reader could take
                # another value from it than the writer meant: {"count":1,"count":2000}.
                return Verification(count, chain, record.seq,
                                    "the record's body is not its canonical JSON (a duplicate "
                                    "key, or keys out of order or spaced): it was not written "
                                    "by retentiond")
            before, chain = chain, _sha256(chain + record.record_hash)
            if chain != record.chain_hash:
                return Verification(count, chain, record.seq,
                                    "the chain hash does not follow from the previous record")
            if auditor is not None:
                problem = auditor.see(record, before)
                if problem is not None:
                    return Verification(count, chain, record.seq, problem)
            expected_seq += 1
        if auditor is not None:
            found = auditor.finish(count, chain)
            if found is not None:
                return Verification(count, chain, found[0], found[1])
        return Verification(count, chain,
                            warnings=tuple(auditor.warnings) if auditor is not None else ())


class Auditor(Protocol):
    """Checks of its own that :meth:`AuditLedger.verify` runs along the chain."""

    warnings: list[str]
    """Findings that are no break of integrity, gathered along the way."""

    def see(self, record: Record, chain_before: str) -> str | None:
        """What is wrong with ``record`` (``chain_before``: the head before it), or None."""

    def finish(self, records: int, head: str) -> tuple[int | None, str] | None:
        """After the last record: (the record concerned, what is wrong), or None."""


def _page_end(sizes: Sequence[Any], page_chars: int) -> int:
    """The last sequence number of a page, from (seq, body length) rows; at least one."""
    total = 0
    for index, (_, length) in enumerate(sizes):
        total += int(length or 0)
        if total > page_chars and index > 0:
            return int(sizes[index - 1][0])
    return int(sizes[-1][0])


def _row(record: Record, body: str) -> dict[str, object]:
    e = record.entry
    return {"seq": record.seq, "at": record.at, "kind": e.kind.value, "run_id": e.run_id,
            "rule": e.rule, "rule_version": e.rule_version, "store": e.store,
            "table_name": e.table, "action": e.action, "batch_id": e.batch_id,
            "body": body, "record_hash": record.record_hash,
            "chain_hash": record.chain_hash, "signature": record.signature}


def _record(row: RowMapping) -> Record:
    text = row["body"]
    try:
        body = Body.stored(json.loads(text, object_pairs_hook=_unique_keys), text)
    except (ValueError, TypeError):
        body = Body.stored({"unreadable": True}, str(text))
    try:
        kind = Kind(row["kind"])
    except ValueError:
        kind = Kind.ERROR  # the hash, made with the stored kind, then fails
    entry = Entry(kind=kind, run_id=row["run_id"], rule=row["rule"],
                  rule_version=row["rule_version"], store=row["store"],
                  table=row["table_name"], action=row["action"], batch_id=row["batch_id"],
                  body=body)
    return Record(row["seq"], row["at"], entry, row["record_hash"], row["chain_hash"],
                  row["signature"])


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members; ValueError on a key given twice (readers would disagree)."""
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("a duplicate key")
    return members


def _canonical_body(record: Record) -> bool:
    body = record.entry.body
    return not isinstance(body, Body) or body.is_canonical()
