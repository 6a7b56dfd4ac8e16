"""One rule runs on one replica at a time.

On a PostgreSQL state database the lease is a session-level advisory lock held on its own
connection for the whole run: if the replica dies, its connection drops, PostgreSQL releases
the lock, and another replica takes the rule over.  On SQLite (one daemon per host) a lock
within the process is enough.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from retentiond.errors import AuditError
from retentiond.ledger.state import StateDB

_NAMESPACE = 0x72746E64  # "rtnd": keeps our advisory keys apart from the application's


def lease_key(rule: str) -> int:
    """A stable 31-bit advisory-lock key for ``rule``."""
    return int.from_bytes(hashlib.sha256(rule.encode()).digest()[:4], "big") & 0x7FFFFFFF


class Leases(ABC):
    """Who may run which rule right now."""

    @abstractmethod
    def hold(self, rule: str) -> AbstractContextManager[bool]:
        """Try to take the rule's lease; yields whether it was taken (released at exit)."""


class LocalLeases(Leases):
    """Leases within one process."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, rule: str) -> Iterator[bool]:
        """Take the rule's in-process lock without waiting."""
        with self._guard:
            lock = self._locks.setdefault(rule, threading.Lock())
        taken = lock.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                lock.release()


class PostgresLeases(Leases):
    """Leases as PostgreSQL advisory locks, shared by every replica on one state database."""

    def __init__(self, state: StateDB) -> None:
        self._state = state

    @contextmanager
    def hold(self, rule: str) -> Iterator[bool]:
        """Try ``pg_try_advisory_lock`` on a connection kept open for the whole run."""
        try:
            connection = self._state.engine.connect()
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot reach the state database for a lease: "
                             f"{type(exc).__name__}") from None
        taken = False
        try:
            taken = bool(connection.execute(
                text("SELECT pg_try_advisory_lock(:space, :key)"),
                {"space": _NAMESPACE, "key": lease_key(rule)}).scalar())
            connection.commit()
            yield taken
        finally:
            try:
                if taken:
                    connection.execute(text("SELECT pg_advisory_unlock(:space, :key)"),
                                       {"space": _NAMESPACE, "key": lease_key(rule)})
                    connection.commit()
            finally:
                connection.close()


class FileLeases(Leases):
    """Leases as locks on files beside a SQLite state database.

    Shared by every process on the host (a daemon and a manual ``run --once``), and released
    by the kernel when the holder dies.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._local = LocalLeases()

    @contextmanager
    def hold(self, rule: str) -> Iterator[bool]:
        """Take the rule's file lock without waiting (and the in-process lock with it)."""
        self._directory.mkdir(parents=True, exist_ok=True)
        with self._local.hold(rule) as local:
            if not local:
                yield False
                return
            path = self._directory / f"{lease_key(rule):08x}.lock"
            with path.open("a+b") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)


def leases_for(state: StateDB) -> Leases:
    """Advisory locks on PostgreSQL; file locks beside a SQLite file; else in-process only."""
    if state.dialect == "postgresql":
        return PostgresLeases(state)
    database = state.engine.url.database
    if database and database != ":memory:":
        return FileLeases(Path(database).with_name(Path(database).name + ".leases"))
    return LocalLeases()
