"""One site's scheduling loop: a :class:`SchedulingWorker` that coalesces the site's events into cycles and
ticks on its own, with the triggers counted for the record and a way to wait for the next cycle."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable

from optivgi_csms.scheduling.worker import SchedulingWorker
from optivgi_csms.smart_charging.plan import SitePlan

#: How long stopping waits for the cycle under way (a solver cannot be interrupted).
STOP_WAIT_S = 10.0
#: A cycle of the loop: called with the loop and what triggered it (event kinds and counts).
SiteCycle = Callable[["SiteLoop", dict[str, int]], Awaitable[None]]


class SiteLoop:
    """Cycles of one site: after events (a burst is one cycle) and every ``interval_s``."""

    def __init__(self, site_id: str, cycle: SiteCycle, *, interval_s: float, debounce_s: float) -> None:
        self.site_id = site_id
        self._cycle = cycle
        self.worker = SchedulingWorker(self._run, interval_s=interval_s, debounce_s=debounce_s)
        self.triggers: Counter[str] = Counter()
        #: The latest plan (None before the first cycle, or while the site has nothing to plan).
        self.plan: SitePlan | None = None
        self.started = 0
        self.completed = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Run the loop (the first cycle starts at once)."""
        self._task = asyncio.create_task(self.worker.run(), name=f"scheduling:{self.site_id}")

    async def stop(self) -> None:
        """Let the cycle under way finish (up to :data:`STOP_WAIT_S`), then end the loop."""
        if self._expiry is not None:
            self._expiry.cancel()
        self.worker.stop()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_WAIT_S)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()

    def notify(self, kind: str) -> None:
        """An event of ``kind`` concerns the site: plan again soon (coalesced with other events)."""
        self.triggers[kind] += 1
        self.worker.notify(self.site_id)

    def notify_at(self, delay_s: float, kind: str) -> None:
        """Plan again in ``delay_s`` seconds (one such timer per site: the earliest asked for wins)."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(delay_s, 0.0)
        if self._expiry is not None and not self._expiry.cancelled() and self._expiry.when() <= when:
            return
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = loop.call_at(when, self._due, kind)

    def _due(self, kind: str) -> None:
        self._expiry = None
        self.notify(kind)

    @property
    def replan_at(self) -> float | None:
        """When (event-loop time) a cycle is due for profiles about to end, if one is."""
        if self._expiry is None or self._expiry.cancelled():
            return None
        return self._expiry.when()

    def next_cycle(self) -> asyncio.Future[None]:
        """A future done when a cycle that starts after this call has finished."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self.started + 1, waiter))
        return waiter

    async def _run(self, groups: frozenset[str] | None) -> None:
        trigger = dict(self.triggers)
        self.triggers.clear()
        if groups is None:
            trigger["tick"] = trigger.get("tick", 0) + 1
        self.started += 1
        number = self.started
        try:
            await self._cycle(self, trigger)
        finally:
            self.completed = number
            still = []
            for wanted, waiter in self._waiters:
                if wanted <= number:
                    if not waiter.done():
                        waiter.set_result(None)
                else:
                    still.append((wanted, waiter))
            self._waiters = still
