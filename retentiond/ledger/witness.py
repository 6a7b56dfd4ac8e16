"""Witnesses: storage outside the database that keeps every checkpoint and cannot be made to forget.

A checkpoint record proves nothing about what follows it, and ``checkpoint_file`` is
overwritten each time: whoever can rewrite the database and that file can cut the newest
records, or roll both back to last week, unseen.  A witness is kept where the daemon (and
whoever takes over its host) can add a checkpoint but not take one back: a directory on
another machine, an append-only directory (``chattr +a``), later an object-store bucket under
Object Lock (issue 17).  :func:`publish_to` hands each checkpoint the daemon writes to every
witness; :class:`WitnessCheck` rides along ``audit verify`` and insists that the ledger still
holds every record a witness saw, with the chain head it saw.  A note that does not open,
an empty one, and an older note copied under a newer one's name are findings, not skipped:
each could hide a cut.

What of C2SP tlog-witness / tlog-checkpoint (https://c2sp.org/tlog-witness) we follow:

- A witness keeps the signed note itself, byte for byte (C2SP signed-note); a note counts only
  once it opens with the log's key under the log's origin, signature lines of other keys
  ignored.
- Two checkpoints of one size with different heads prove that the log signed two histories
  (tlog-checkpoint forbids it): both are kept (a note's name carries its head's first bytes)
  and verification reports the one the ledger contradicts.

What we do not:

- A tlog-witness witness is a service with a key of its own that checks each new checkpoint
  against the last before it cosigns, and keeps only the latest.  Ours is storage the log
  cannot rewrite: it checks nothing on arrival and signs nothing; the checking happens when
  the ledger is verified, by whoever holds the verify key.  So there is no ``add-checkpoint``
  HTTP API, no cosignatures, no old size or ``409 Conflict``.
- No consistency proofs: the ledger is a hash chain, not a Merkle tree, and verification
  recomputes the chain over the whole ledger anyway.  That is why a witness keeps every
  checkpoint, not the latest only: each one is checked where it stands.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retentiond.errors import WitnessError
from retentiond.ledger.chain import GENESIS, Kind, Record
from retentiond.ledger.checkpoints import NoteError, open_note

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from retentiond.settings import AuditSettings

SUFFIX = ".checkpoint"


@dataclass(frozen=True)
class Note:
    """A checkpoint note as a witness keeps it: its name there, and its text."""

    name: str
    text: str


def note_name(size: int, head: str) -> str:
    """The name a checkpoint is kept under: its size (zero-padded, so names sort) and head."""
    return f"{size:020d}-{head[:8]}{SUFFIX}"


class Witness(ABC):
    """Storage outside the database that keeps every checkpoint it is given, and forgets none."""

    where: str
    """How messages name it: a directory, a bucket."""

    @abstractmethod
    def publish(self, note: str, size: int, head: str) -> None:
        """Keep ``note``, the checkpoint of ``size`` records up to ``head``, for good.

        The same note again is kept once; another note under the same name is refused.
        WitnessError when the note is not kept.
        """

    @abstractmethod
    def notes(self) -> Iterable[Note]:
        """Every checkpoint note the witness keeps; WitnessError when it cannot be read.

        Names come too: a note kept under another checkpoint's name is a finding.
        """


class DirectoryWitness(Witness):
    """A directory: one file per checkpoint, made with O_EXCL and never opened for writing again.

    The directory is not created here: a missing mount must fail, not fill the local disk.
    """

    def __init__(self, path: Path) -> None:
        """Checkpoints go to ``path``, which must exist."""
        self.path = path
        self.where = str(path)

    def publish(self, note: str, size: int, head: str) -> None:
        """Create the note's file, write it and make it and its name durable (fsync both)."""
        if not self.path.is_dir():
            raise WitnessError(self.where, "is not a directory (not mounted?)")
        target = self.path / note_name(size, head)
        data = note.encode()
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        except FileExistsError:
            self._same(target, data)
            return
        except OSError as exc:
            raise WitnessError(self.where, f"cannot create {target.name}: {exc.strerror}",
                               ) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            directory = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise WitnessError(self.where, f"cannot write {target.name}: {exc.strerror}",
                               ) from None

    def _same(self, target: Path, data: bytes) -> None:
        try:
            kept = target.read_bytes()
        except OSError as exc:
            raise WitnessError(self.where, f"cannot read {target.name}: {exc.strerror}",
                               ) from None
        if kept != data:
            raise WitnessError(self.where, f"{target.name} holds another note; a published "
                               "checkpoint is never rewritten (was the ledger rolled back, or "
                               "does another log publish here?)")

    def notes(self) -> Iterator[Note]:
        """Every ``*.checkpoint`` file, in name order (so by size), read one at a time."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.path)
                           if entry.name.endswith(SUFFIX) and entry.is_file())
        except OSError as exc:
            raise WitnessError(self.where, f"cannot be read: {exc.strerror}") from None
        for name in names:
            try:
                text = (self.path / name).read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise WitnessError(self.where, f"cannot read {name}: {exc.strerror}") from None
            yield Note(name, text)


def witnesses_for(settings: AuditSettings) -> list[Witness]:
    """The witnesses the settings name (``witness_dir``), possibly none."""
    return [DirectoryWitness(settings.witness_dir)] if settings.witness_dir is not None else []


def publish_to(witnesses: Iterable[Witness], note: str, size: int, head: str) -> None:
    """Give a checkpoint to every witness; the first failure is raised once all were tried."""
    failed: list[WitnessError] = []
    for witness in witnesses:
        try:
            witness.publish(note, size, head)
        except WitnessError as exc:
            failed.append(exc)
    if failed:
        raise failed[0]


class WitnessCheck:
    """Check the ledger against every checkpoint one witness saw (an audit.Auditor).

    It keeps the witnessed heads by size: memory grows with the witness, not the ledger.
    """

    def __init__(self, witness: Witness, origin: str, public: Ed25519PublicKey | None) -> None:
        """Read and open the witness's notes now (WitnessError when it cannot be read)."""
        self.where = witness.where
        self.warnings: list[str] = []
        self._heads: dict[int, list[tuple[str, str]]] = {}
        """size -> (head, note name) for every note that opened."""
        self._findings: list[str] = []
        """Notes that do not count: empty, not opening, kept under another checkpoint's name."""
        self._last_signed: int | None = None
        if public is None:
            self.warnings.append(f"the witness in {self.where} was not checked: no verify_key")
            return
        for note in witness.notes():
            held = f"the witness in {self.where} holds {note.name}"
            if not note.text:  # no warning only: emptying the newest notes would hide a cut
                self._findings.append(f"{held}, which is empty: a publish cut short by a "
                                      "crash, or a note erased")
                continue
            try:
                seen = open_note(note.text, origin, public)
            except NoteError as exc:
                self._findings.append(f"{held}, which does not open with the verify key: {exc}")
                continue
            if note.name != note_name(seen.size, seen.head):  # an older note copied over it
                self._findings.append(f"{held}, which is the checkpoint of {seen.size} records "
                                      "(a note copied under another name)")
                continue
            self._heads.setdefault(seen.size, []).append((seen.head, note.name))

    def see(self, record: Record, chain_before: str) -> str | None:
        """Whether the chain head after ``record`` is the one the witness saw at its size."""
        del chain_before
        if record.entry.kind is Kind.CHECKPOINT:
            self._last_signed = record.seq - 1
        for head, name in self._heads.get(record.seq, ()):
            if head != record.chain_hash:
                return (f"the record differs from what the witness in {self.where} saw "
                        f"({name}): the ledger was rewritten or rolled back")
        return None

    def finish(self, records: int, head: str) -> tuple[int | None, str] | None:
        """A ledger shorter than the witness saw; notes that do not open; a witness behind."""
        del head
        witnessed = max(self._heads, default=0)
        if records < witnessed:
            return (None, f"the ledger holds {records} records but the witness in {self.where} "
                          f"saw {witnessed}: it was truncated or rolled back")
        for empty, name in self._heads.get(0, ()):
            if empty != GENESIS:
                return (None, f"the empty ledger differs from what the witness in {self.where} "
                              f"saw ({name})")
        if self._findings:
            return None, self._findings[0]
        if self._last_signed is not None and self._last_signed > witnessed:
            seen = f"the newest it saw signs {witnessed}" if self._heads else "it saw none"
            self.warnings.append(
                f"the ledger's newest checkpoint signs {self._last_signed} records and the "
                f"witness in {self.where} did not see it ({seen}): publishing failed, or the "
                "witness is new")
        return None
