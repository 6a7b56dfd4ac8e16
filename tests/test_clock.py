"""The system clock: aware UTC now, and waits a stop request ends at once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from retentiond.clock import SYSTEM_CLOCK, SystemClock


def test_now_is_the_wall_clock_in_utc():
    """``now()`` is timezone-aware, in UTC, and the wall clock's time."""
    before = datetime.now(tz=UTC)
    now = SYSTEM_CLOCK.now()
    after = datetime.now(tz=UTC)
    assert (UTC, True) == (now.tzinfo, before <= now <= after)


def test_a_wait_lasts_its_seconds_when_nothing_stops_it():
    """``wait`` returns False after about ``seconds`` when the stop event stays clear."""
    started = time.monotonic()
    stopped = SystemClock().wait(threading.Event(), 0.05)
    assert (False, True) == (stopped, time.monotonic() - started >= 0.05)


def test_a_wait_ends_at_once_when_stop_is_set():
    """A wait of an hour ends as soon as the stop event is set, and says so."""
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    stopped = SYSTEM_CLOCK.wait(stop, timedelta(hours=1).total_seconds())
    assert (True, True) == (stopped, time.monotonic() - started < 5)
