"""What-if patches: the package changes bench/README.md proposes, applied by monkeypatching.

``python bench/bench_enforce.py --whatif "none;any,audit,tables" ...`` applies them inside the
retentiond contenders' processes only, so a run shows what each proposed change would buy
before anyone edits the package.  They are measurement aids, not the fixes themselves: each
says in its docstring what the real change in ``retentiond/`` would be.  Once the package
has the change, the patch is obsolete (and may no longer apply).

``any``     rows addressed by key with ONE bound value instead of an expanding ``IN`` of
            10,000 bound parameters: SQLite ``IN (SELECT value FROM json_each(:keys))``;
            PostgreSQL ``= ANY(:keys)`` (in the package: PostgreSQL since ae9e9da/72f5c70,
            SQLite since 6569112)
``unnest``  PostgreSQL rewrite through ``unnest(:keys, :values)`` instead of
            ``sa.values(...).data(rows)`` (in the package since 543781e for one-column keys)
``audit``   each ledger record's body serialized once instead of three times
            (``AuditLedger.append_many``), and ``key_digest`` without list copies (in the
            package since then too: ``audit.Body``, encoded once for marker and outcome)
``nolock``  claim without ``FOR UPDATE`` when the action removes rows (the DELETE locks
            them itself); in the package since 3d99104 on PostgreSQL, with the act
            re-checking each row's eligibility
``tables``  the store's own tables (batch markers, pseudonymized keys, quarantine) described
            once per store instead of a new ``sa.Table`` per call; every new Table is a new
            compiled-cache key, so each batch compiles its INSERTs afresh and the engine's LRU
            cache (500 entries) keeps every batch's statement with its bound values (the
            marker's JSON payload, the 10,000 keys): memory grows with the table size (in
            the package since b03f23b)
``done``    pseudonymize's ``record_done`` as ``INSERT ... ON CONFLICT DO NOTHING`` (a
            primary key probe per row) instead of ``AND key NOT IN (SELECT row_key FROM done
            WHERE rule = :rule)``, which hashes every key the rule ever recorded, in every
            batch (in the package since 7974c4f)
``noqindex`` quarantine tables created without the index that finds a batch's rows.  NOT a
            proposed change: it prices the index, which makes ``restore --batch`` and each
            due batch's purge a lookup instead of a scan of the whole quarantine table
            (months of moved rows).  At a53f620 (a B-tree on ``_rtd_batch`` everywhere) it
            took PostgreSQL from 0.77 to 1.04 of the hand-written loop, SQLite from 0.64 to
            0.65; since 3fbd58b PostgreSQL uses a BRIN index instead
``timers``  NOT a change: wall-clock time of each step of a run (census, claim, act, marker,
            ledger writes, store commit), summed over the batches and printed to stderr
            when the contender's process ends.  A wrapper costs ~1 us a call, so unlike
            ``--profile`` it leaves the run's speed as it is
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

PATCHES = ("any", "unnest", "audit", "nolock", "done", "tables", "noqindex", "timers")


def apply(names: Sequence[str], family: str) -> None:
    """Apply the named patches for a store of ``family`` (sqlite, postgresql, mariadb)."""
    unknown = set(names) - set(PATCHES)
    if unknown:
        raise ValueError(f"unknown what-if patch(es) {sorted(unknown)}; use {PATCHES}")
    for name in names:
        globals()[f"_patch_{name}"](family)


def _patch_any(family: str) -> None:
    """``key_in`` (stores/sql/write.py): one bound value instead of N scalars.

    SQLite: ``key IN (SELECT value FROM json_each(:keys))``.  PostgreSQL: ``key = ANY(:keys)``
    unless the package does it already (its ``key_in`` takes the family).  Composite keys and
    MariaDB keep the package's own statement.
    """
    import inspect  # noqa: PLC0415

    from retentiond.stores.sql import write  # noqa: PLC0415

    original = write.key_in
    upstream_any = "family" in inspect.signature(original).parameters

    def key_in(columns: Sequence[Any], keys: Sequence[Any], *rest: Any, **kw: Any) -> Any:
        mine = family == "sqlite" or (family == "postgresql" and not upstream_any)
        if len(columns) != 1 or not mine:
            return original(columns, keys, *rest, **kw)
        column = columns[0]
        values = [key[0] for key in keys]
        if family == "postgresql":
            return column == sa.any_(sa.bindparam(None, values, unique=True,
                                                  type_=postgresql.ARRAY(column.type)))
        rows = sa.select(sa.column("value")).select_from(
            sa.func.json_each(sa.bindparam(None, json.dumps(values), unique=True,
                                           type_=sa.String)))
        return column.in_(rows.scalar_subquery())

    write.key_in = key_in


_NO_LOCK = [False]


def _patch_nolock(family: str) -> None:
    """Claim without FOR UPDATE when the action removes rows (they are locked by DELETE).

    Wraps the package's own ``claim`` (whatever it does) and makes ``with_for_update`` a
    no-op while a claim without value columns runs.
    """
    del family
    from sqlalchemy.sql.selectable import Select  # noqa: PLC0415

    from retentiond.stores.sql import write  # noqa: PLC0415

    original = write.SqlWriter.claim
    locking = Select.with_for_update

    def with_for_update(self: Any, *args: Any, **kw: Any) -> Any:
        return self if _NO_LOCK[0] else locking(self, *args, **kw)

    Select.with_for_update = with_for_update  # type: ignore[method-assign]

    def claim(self: Any, selection: Any, *, after: Any, limit: int,
              columns: Sequence[str] = ()) -> Any:
        _NO_LOCK[0] = not columns
        try:
            return original(self, selection, after=after, limit=limit, columns=columns)
        finally:
            _NO_LOCK[0] = False

    write.SqlWriter.claim = claim


def _patch_unnest(family: str) -> None:
    """``SqlWriter._rewrite_from_values`` (PostgreSQL): join ``unnest`` of two arrays.

    ``UPDATE t SET c = v.c FROM unnest(CAST(:k AS BIGINT[]), CAST(:v AS VARCHAR[])) AS v(k, c)
    WHERE t.k = v.k``: two parameters, one cached compiled statement, no 20,000-parameter
    VALUES list compiled afresh per batch.  Composite keys and several columns work the same
    way (one array per column).
    """
    if family != "postgresql":
        return
    from retentiond.stores.sql import write  # noqa: PLC0415

    def rewrite(self: Any, table: str, columns: Sequence[str],
                rows: Sequence[Any]) -> int:
        target = self.table(table).table
        key_columns = self._key_columns(table)
        new_columns = [target.c[c] for c in columns]
        arrays = [sa.bindparam(None, [key[i] for key, _ in rows], unique=True,
                               type_=postgresql.ARRAY(c.type))
                  for i, c in enumerate(key_columns)]
        arrays += [sa.bindparam(None, [new[i] for _, new in rows], unique=True,
                                type_=postgresql.ARRAY(c.type))
                   for i, c in enumerate(new_columns)]
        names = [f"k_{i}" for i in range(len(key_columns))]
        names += [f"v_{i}" for i in range(len(new_columns))]
        source = sa.func.unnest(*arrays).table_valued(*names).render_derived(name="rtd_new")
        statement = (
            sa.update(target)
            .values({c: source.c[f"v_{i}"] for i, c in enumerate(new_columns)})
            .where(*(c == source.c[f"k_{i}"] for i, c in enumerate(key_columns)))
        )
        return int(self.connection.execute(statement).rowcount)

    write.SqlWriter._rewrite_from_values = rewrite  # noqa: SLF001


def _patch_audit(family: str) -> None:
    """Serialize each record's body once; no list copies of the keys.

    ``AuditLedger.append_many`` serializes every body three times (a check, the record
    hash, the stored row); an outcome's body lists the batch's 10,000 keys.  Here the body
    is serialized once and spliced into the hashed text, which is byte-for-byte what
    ``canonical(fields)`` gives (keys are sorted, and ``body`` sits between ``batch_id`` and
    ``kind``), so the ledger still verifies.
    """
    del family
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    from retentiond.ledger import chain as audit  # noqa: PLC0415

    def append_many(self: Any, entries: Sequence[Any]) -> list[Any]:
        if not entries:
            return []
        bodies = [audit.canonical(dict(e.body)) for e in entries]
        with self._state.appending() as conn:
            tail = conn.execute(
                sa.select(audit.audit_log.c.seq, audit.audit_log.c.chain_hash)
                .order_by(audit.audit_log.c.seq.desc()).limit(1)).first()
            seq, chain = (tail[0], tail[1]) if tail else (0, audit.GENESIS)
            records, rows = [], []
            for entry, body in zip(entries, bodies, strict=True):
                seq += 1
                at = datetime.now(tz=UTC).isoformat(timespec="microseconds")
                head = audit.canonical({"action": entry.action, "at": at,
                                        "batch_id": entry.batch_id})
                tail_text = audit.canonical({
                    "kind": entry.kind.value, "rule": entry.rule,
                    "rule_version": entry.rule_version, "run_id": entry.run_id,
                    "seq": seq, "store": entry.store, "table": entry.table})
                text = f'{head[:-1]},"body":{body},{tail_text[1:]}'
                record_hash = hashlib.sha256(text.encode()).hexdigest()
                chain = hashlib.sha256((chain + record_hash).encode()).hexdigest()
                record = audit.Record(seq, at, entry, record_hash, chain)
                records.append(record)
                rows.append(audit._row(record) | {"body": body})  # noqa: SLF001
            conn.execute(sa.insert(audit.audit_log), rows)
        return records

    def key_digest(self: Any, keys: Any) -> str:
        mac = hmac.new(self._digest_key, digestmod=hashlib.sha256)
        mac.update(audit.canonical(list(keys)).encode())
        return mac.hexdigest()

    audit.AuditLedger.append_many = append_many
    audit.AuditLedger.key_digest = key_digest


def _patch_done(family: str) -> None:
    """``SqlWriter.record_done``: ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.

    The shipped statement adds ``AND CAST(id AS VARCHAR) NOT IN (SELECT row_key FROM
    retentiond_pseudonymized WHERE rule = :rule)``: PostgreSQL (hashed subplan) and SQLite
    (ephemeral index) build it from every key the rule has recorded so far, in every batch,
    so a run costs O(rows^2).  The done table's primary key (rule, row_key) already says
    "only once"; letting the insert skip conflicts is one index probe per row.  MariaDB
    would use INSERT IGNORE.
    """
    if family not in {"postgresql", "sqlite"}:
        return
    from sqlalchemy.dialects import sqlite as sqlite_dialect  # noqa: PLC0415

    from retentiond.stores.sql import write  # noqa: PLC0415
    from retentiond.stores.sql.keeping import key_text  # noqa: PLC0415

    insert = postgresql.insert if family == "postgresql" else sqlite_dialect.insert

    def record_done(self: Any, table: str, rule: str, keys: Sequence[Any]) -> None:
        done = self._parts.bookkeeping.done_table()
        key_columns = self._key_columns(table)
        with self._parts.errors("cannot record pseudonymized rows"):
            for chunk in write.chunks(keys, len(key_columns)):
                rows = sa.select(sa.literal(rule, sa.String(80)),
                                 key_text(list(key_columns))).where(
                                     write.key_in(key_columns, chunk))
                self.connection.execute(insert(done).from_select(["rule", "row_key"], rows)
                                        .on_conflict_do_nothing())

    write.SqlWriter.record_done = record_done


def _patch_tables(family: str) -> None:
    """``Bookkeeping.marker_table`` / ``done_table`` / ``quarantine_table``: build each once.

    The real change: keep the ``sa.Table`` objects on the store (a dict by name, dropped by
    :meth:`forget` for quarantine tables whose source was re-reflected).
    """
    del family
    from retentiond.stores.sql.bookkeeping import Bookkeeping  # noqa: PLC0415

    def memo(method: Any) -> Any:
        def cached(self: Any, *args: Any) -> Any:
            key = (method.__name__, *(a for a in args if isinstance(a, str)))
            found = self.__dict__.setdefault("_bench_tables", {}).get(key)
            if found is None:
                found = self._bench_tables[key] = method(self, *args)
            return found
        return cached

    for name in ("marker_table", "done_table", "quarantine_table"):
        if hasattr(Bookkeeping, name):
            setattr(Bookkeeping, name, memo(getattr(Bookkeeping, name)))


def _patch_noqindex(family: str) -> None:
    """``Bookkeeping.prepare`` creates quarantine tables without ``keeping.quarantine_index``."""
    del family
    from retentiond.stores.sql import bookkeeping  # noqa: PLC0415

    class NoIndex:
        def create(self, bind: Any) -> None:
            """Create nothing."""

    bookkeeping.quarantine_index = lambda *_args: NoIndex()


def _patch_timers(family: str) -> None:
    """Sum the wall-clock time of each step of a run; print the sums when the process ends.

    No step is timed inside another (``record_done`` includes the pseudonyms computed
    meanwhile; the ledger's commits count as ``ledger``, not as store commits), so ``other``
    is the run less the steps: Python between them and the writer's set-up.
    """
    import atexit  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    from retentiond.ledger import chain as audit  # noqa: PLC0415
    from retentiond.run import enforce, engine  # noqa: PLC0415
    from retentiond.stores.sql import read, write  # noqa: PLC0415

    totals: dict[str, float] = {}
    calls: dict[str, int] = {}

    def add(label: str, started: float) -> None:
        totals[label] = totals.get(label, 0.0) + time.perf_counter() - started
        calls[label] = calls.get(label, 0) + 1

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(label, started)
        setattr(owner, name, wrapper)

    timed(enforce.RuleRun, "__call__", "run")
    timed(read.SqlReader, "census", "census")
    for step in ("claim", "remove", "rewrite", "quarantine", "mark"):
        timed(write.SqlWriter, step, step)
    timed(write.SqlWriter, "record_done", "record_done (+ pseudonyms meanwhile)")
    timed(engine.Engine, "prepared", "prepared (holds re-read)")
    timed(enforce, "canonical", "keys encoded")
    timed(audit.AuditLedger, "key_digest", "key digest")
    timed(audit.AuditLedger, "append_many", "ledger")  # append() calls it too
    commit = sa.engine.Connection.commit

    def store_commit(self: Any) -> None:
        if "state" in str(self.engine.url.database or ""):  # the ledger's database
            commit(self)
            return
        started = time.perf_counter()
        try:
            commit(self)
        finally:
            add("store commit", started)

    sa.engine.Connection.commit = store_commit  # type: ignore[method-assign]

    def report() -> None:
        run = totals.pop("run", 0.0)
        calls.pop("run", None)
        print(f"[timers {family}] run {run:.3f} s", file=sys.stderr)
        for label, seconds in sorted(totals.items(), key=lambda item: -item[1]):
            print(f"[timers {family}]   {label:40} {seconds:7.3f} s  {calls[label]:5} calls",
                  file=sys.stderr)
        print(f"[timers {family}]   {'other':40} {run - sum(totals.values()):7.3f} s",
              file=sys.stderr)

    atexit.register(report)
