"""Running scheduling cycles on a timer and on events, without ever building a backlog.

:class:`SchedulingWorker` (asyncio) is what the live server uses: ``notify()`` on every relevant event
(a transaction starts or stops, a limit changes) only marks the worker dirty, so a burst of events (a
thousand stations starting within seconds) becomes *one* cycle after a short quiet period, and events
arriving during a cycle cause exactly one more. Its state is a flag and a set of group names: nothing
queues without bound. The solver runs in a thread pool so the event loop keeps serving stations.

:func:`scm_worker` and :func:`timer_thread_worker` keep Opti-VGI's thread-and-queue shape for
integrations written for it, with the same coalescing: a worker that wakes up drains every event waiting
and runs one cycle for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor

from optivgi_csms.scheduling.algorithm import Algorithm
from optivgi_csms.scheduling.runner import DEFAULT_OPTIONS, CycleOptions, scm_runner, scm_runner_async
from optivgi_csms.scheduling.translation import AsyncTranslation, Translation

log = logging.getLogger(__name__)

#: A cycle: called with the groups whose events triggered it, or ``None`` for every group.
Cycle = Callable[[frozenset[str] | None], Awaitable[object]]


class SchedulingWorker:
    """Runs ``cycle`` every ``interval_s`` and after events, coalescing events ``debounce_s`` apart."""

    def __init__(self, cycle: Cycle, *, interval_s: float = 60.0, debounce_s: float = 0.5) -> None:
        self._cycle = cycle
        self.interval_s = interval_s
        self.debounce_s = debounce_s
        self._wake = asyncio.Event()
        self._pending: set[str] = set()
        self._all = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Counters for monitoring and tests.
        self.events = 0
        self.cycles = 0
        self.failures = 0

    @classmethod
    def for_translation(
        cls,
        translation: AsyncTranslation,
        algorithm_cls: type[Algorithm],
        groups: Iterable[str],
        *,
        options: CycleOptions = DEFAULT_OPTIONS,
        executor: Executor | None = None,
        interval_s: float = 60.0,
        debounce_s: float = 0.5,
    ) -> SchedulingWorker:
        """A worker whose cycle is :func:`scm_runner_async` over ``groups`` (or the groups notified)."""
        all_groups = tuple(groups)

        async def cycle(notified: frozenset[str] | None) -> object:
            chosen = all_groups if notified is None else [g for g in all_groups if g in notified]
            return await scm_runner_async(translation, algorithm_cls, chosen, options=options, executor=executor)

        return cls(cycle, interval_s=interval_s, debounce_s=debounce_s)

    def notify(self, group: str | None = None) -> None:
        """Ask for a cycle soon (for ``group`` only, or every group). Call from the event loop's thread."""
        self.events += 1
        if group is None:
            self._all = True
        else:
            self._pending.add(group)
        self._wake.set()

    def notify_threadsafe(self, group: str | None = None) -> None:
        """:meth:`notify` from another thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.notify, group)

    def stop(self) -> None:
        """Finish the cycle under way (if any) and return from :meth:`run`."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Serve until :meth:`stop`: a cycle at start, then on the timer and after events."""
        self._loop = asyncio.get_running_loop()
        due = self._loop.time()
        while not self._stopping:
            timeout = max(due - self._loop.time(), 0.0)
            timer = False
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            except TimeoutError:
                timer = True
            if self._stopping:
                break
            if not timer:
                # Let the burst finish: events in the quiet period join this cycle.
                await asyncio.sleep(self.debounce_s)
            self._wake.clear()
            groups = None if (timer or self._all) else frozenset(self._pending)
            self._pending.clear()
            self._all = False
            due = self._loop.time() + self.interval_s
            await self._run_once(groups)

    async def _run_once(self, groups: frozenset[str] | None) -> None:
        self.cycles += 1
        try:
            await self._cycle(groups)
        except Exception:  # a failing cycle must not stop the worker
            self.failures += 1
            log.exception("scheduling cycle failed")


def timer_thread_worker(
    event_queue: queue.Queue[object], interval_s: float = 60.0, stop: threading.Event | None = None
) -> None:
    """Put a timer event on ``event_queue`` every ``interval_s`` (aligned to the clock) until ``stop``."""
    stop = stop or threading.Event()
    while not stop.wait(interval_s - (time.time() % interval_s)):
        event_queue.put("timer")


def scm_worker(
    event_queue: queue.Queue[object],
    translation_cls: Callable[[], Translation],
    algorithm_cls: type[Algorithm],
    groups: Iterable[str] | None = None,
    *,
    options: CycleOptions = DEFAULT_OPTIONS,
) -> None:
    """Opti-VGI's worker loop: wait for an event, drain every other event already waiting (they are served
    by the same cycle), run :func:`scm_runner`; ``None`` on the queue stops it."""
    group_list = None if groups is None else list(groups)
    with translation_cls() as translation:
        while True:
            events = [event_queue.get()]
            while True:
                try:
                    events.append(event_queue.get_nowait())
                except queue.Empty:
                    break
            try:
                if None not in events:
                    scm_runner(translation, algorithm_cls, group_list, options=options)
            except Exception:  # keep serving events after a failed cycle
                log.exception("scheduling cycle failed for events %s", events[:5])
            finally:
                for _ in events:
                    event_queue.task_done()
            if None in events:
                return
