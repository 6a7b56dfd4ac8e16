"""One rule runs on one replica at a time.

On a PostgreSQL state database the lease is a session-level advisory lock held on its own
connection for the whole run: if the replica dies, its connection drops, PostgreSQL releases
the lock, and another replica takes the rule over.  On SQLite (one daemon per host) a lock
within the process is enough.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from retentiond.errors import AuditError, LeaseError
from retentiond.ledger.access import lease_directory
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
            except SQLAlchemyError:
                pass  # the connection is lost, and the session's lock with it
            finally:
                connection.close()


class FileLeases(Leases):
    """Leases as locks on files beside a SQLite state database.

    Shared by every process on the host (a daemon and a manual ``run --once``), and released
    by the kernel when the holder dies.  They work whoever made the files: a lock file is
    opened read-only (``flock`` needs no more), and what root creates is handed to the owner
    of the state database, so an operator's run as root leaves the service user's daemon able
    to lock both the rules it ran and rules added later.
    """

    def __init__(self, directory: Path, *, beside: Path | None = None) -> None:
        self._directory = directory
        self._beside = beside
        self._local = LocalLeases()

    @contextmanager
    def hold(self, rule: str) -> Iterator[bool]:
        """Take the rule's file lock without waiting (and the in-process lock with it).

        LeaseError when the lock file cannot be opened or made (not when it is busy).
        """
        with self._local.hold(rule) as local:
            if not local:
                yield False
                return
            descriptor = self._open(rule)
            try:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(descriptor, fcntl.LOCK_UN)
            finally:
                os.close(descriptor)

    def _open(self, rule: str) -> int:
        path = self._directory / f"{lease_key(rule):08x}.lock"
        try:
            try:
                return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                pass
            if not self._directory.is_dir():
                self._directory.mkdir(mode=0o755, exist_ok=True)  # another process may race
                self._hand_over(self._directory)
            descriptor = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                self._hand_over(path)
            except OSError:
                os.close(descriptor)
                raise
        except OSError as exc:
            raise LeaseError(rule, f"{exc.filename or path}: {exc.strerror}",
                             f"let the service user read and create files in {self._directory} "
                             "(its lock files may be removed while nothing runs)") from None
        return descriptor

    def _hand_over(self, path: Path) -> None:
        """Root gives what it created to the state database's owner (a user it cannot be)."""
        if self._beside is None or os.geteuid() != 0:
            return
        owner = self._beside.stat()
        os.chown(path, owner.st_uid, owner.st_gid)


def leases_for(state: StateDB) -> Leases:
    """Advisory locks on PostgreSQL; file locks beside a SQLite file; else in-process only."""
    if state.dialect == "postgresql":
        return PostgresLeases(state)
    database = state.engine.url.database
    if database and database != ":memory:":
        path = Path(database)
        return FileLeases(lease_directory(path), beside=path)
    return LocalLeases()
