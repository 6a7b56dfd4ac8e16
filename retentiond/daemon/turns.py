"""Rules take turns: one at a time per store, the first in the declared order first.

APScheduler runs each job on a thread of its own.  Left alone, rules due on the same tick
would run at once, in whatever order their threads happen to start: rules on one SQLite store
failed with ``SQLITE_BUSY``, and a quarantine could run before the pseudonymization due with
it, so the quarantined records kept what was to be pseudonymized.

So a rule's job does not run its own rule.  When the scheduler hands a job to the
:class:`QueueingExecutor` (in the scheduler's thread, before any thread runs it), its rule is
queued in its lane (a store, or the stores ``after:`` ties together: see
:func:`~retentiond.policy.order.lanes`).  The job's thread then waits for the lane, waits
until the scheduler has handed over every job of the tick, and runs the lane's queued rule
that comes first in :func:`~retentiond.policy.order.ordered`.  Each job runs at most one rule;
a rule queued twice before its turn runs once.  The quarantine purge, which writes in every
store, takes every lane (:meth:`Turns.every_lane`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor

from retentiond.policy.order import lanes, ordered

if TYPE_CHECKING:
    from datetime import datetime

    from apscheduler.job import Job

    from retentiond.policy.model import Rule


class Turns:
    """The rules queued in each lane, and the lock a lane's rules take turns with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lane_of: dict[str, str] = {}
        self._position: dict[str, int] = {}
        self._queued: dict[str, set[str]] = {}
        self._lanes: dict[str, threading.Lock] = {}

    def arrange(self, rules: Sequence[Rule]) -> None:
        """Take the lanes and the order from a (new) policy set."""
        with self._lock:
            self._lane_of = lanes(rules)
            self._position = {rule.id: index for index, rule in enumerate(ordered(rules))}

    def queue(self, rule_id: str) -> None:
        """Note that ``rule_id`` is due: its job was just handed to the executor."""
        with self._lock:
            lane = self._lane_of.get(rule_id)
            if lane is not None:
                self._queued.setdefault(lane, set()).add(rule_id)

    @contextmanager
    def turn(self, rule_id: str, *, handed_over: Callable[[], object]) -> Iterator[str | None]:
        """The lane of ``rule_id`` to oneself; yields the rule to run now (None: nothing).

        ``handed_over`` returns once the scheduler has handed over every job of its tick.
        """
        with self._lock:
            lane = self._lane_of.get(rule_id)
            held = None if lane is None else self._lanes.setdefault(lane, threading.Lock())
        if lane is None or held is None:  # removed by a reload since its job was queued
            yield None
            return
        with held:
            handed_over()
            with self._lock:
                queued = self._queued.setdefault(lane, set())
                queued.intersection_update(self._position)  # a reload removed the others
                chosen = min(queued, key=self._position.__getitem__, default=None)
                if chosen is not None:
                    queued.discard(chosen)
            yield chosen

    @contextmanager
    def every_lane(self) -> Iterator[None]:
        """Every lane to oneself (for work on every store: the quarantine purge).

        Lanes are taken in the order of their names; a rule's job holds one lane at a time,
        so this never waits for a job that waits for it.
        """
        with self._lock:
            held = [self._lanes.setdefault(lane, threading.Lock())
                    for lane in sorted(set(self._lane_of.values()))]
        with ExitStack() as stack:
            for lock in held:
                stack.enter_context(lock)
            yield


class QueueingExecutor(ThreadPoolExecutor):  # type: ignore[misc]  # APScheduler: no types
    """APScheduler's thread pool, telling ``queue`` of each rule's job as it is handed over.

    The scheduler hands over every job due on a wake-up in one pass, in its own thread: so
    every rule of a tick is queued before any of their threads picks the first in order.
    """

    def __init__(self, max_workers: int, queue: Callable[[str], None]) -> None:
        super().__init__(max_workers)
        self._queue = queue

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> Any:  # noqa: ANN401
        self._queue(job.args[0])
        return super()._do_submit_job(job, run_times)
