"""A clock the test moves: the daemon's and the runner's decisions about time, without sleeping.

:class:`FakeClock` stands still until the test moves it.  A wait (a lease retry, a throttle's
pause) blocks the thread that asked, in real time, until the test has moved the clock far
enough or the stop event is set; the test sees it through :meth:`FakeClock.until_waiting`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from retentiond.clock import Clock

BOUND = 20.0
"""Longest real wait for a thread to start waiting on the clock (seconds); a bound, not a pause."""


class FakeClock(Clock):
    """Now is what the test set; ``waits`` lists every wait asked for, in seconds, in order."""

    def __init__(self, start: datetime | None = None) -> None:
        moment = start or datetime.now(tz=UTC).replace(second=0, microsecond=0)
        if moment.utcoffset() != timedelta(0):
            raise ValueError(f"{moment} is not in UTC")
        self._now = moment.astimezone(UTC)
        self._changed = threading.Condition()
        self._waiting = 0
        self.waits: list[float] = []

    def now(self) -> datetime:
        """The time the test set."""
        with self._changed:
            return self._now

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward by ``by``; the waits it covers end.  The new time."""
        if by < timedelta(0):
            raise ValueError("a clock does not go back")
        with self._changed:
            self._now += by
            self._changed.notify_all()
            return self._now

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Block until the clock is moved ``seconds`` on, or ``stop`` is set."""
        with self._changed:
            until = self._now + timedelta(seconds=seconds)
            self.waits.append(seconds)
            self._waiting += 1
            self._changed.notify_all()
            try:
                while self._now < until and not stop.is_set():
                    self._changed.wait(0.01)  # a set Event cannot notify this condition
            finally:
                self._waiting -= 1
                self._changed.notify_all()
            return stop.is_set()

    def until_waiting(self, count: int = 1, timeout: float = BOUND) -> None:
        """Return once ``count`` waits have been asked for in all (AssertionError after timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.waits) < count or self._waiting == 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no thread waited on the clock {count} time(s) within "
                                         f"{timeout} s (waits so far: {self.waits})")
                self._changed.wait(left)
