"""Time as retentiond reads it: one clock, handed in, never read off the wall directly.

What is due, whether a run window is open, how long a retry waits and the time the ledger
stamps on a record all come from a :class:`Clock`.  The process runs on :data:`SYSTEM_CLOCK`;
a test hands in a clock it moves itself, so a schedule can be tested without sleeping.
(APScheduler keeps its own real time: it only fires jobs; what they decide reads this clock.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading


class Clock(ABC):
    """Now, and waits that a stop request ends early."""

    @abstractmethod
    def now(self) -> datetime:
        """Now, timezone-aware in UTC."""

    @abstractmethod
    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait ``seconds``, or until ``stop`` is set; whether ``stop`` is set."""


class SystemClock(Clock):
    """The wall clock, and waits in real seconds."""

    def now(self) -> datetime:
        """The wall clock's time, in UTC."""
        return datetime.now(tz=UTC)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """``stop.wait(seconds)``: ends at once when ``stop`` is set."""
        return stop.wait(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
"""The clock of the process: what the daemon, the runner and the ledger use unless told."""
