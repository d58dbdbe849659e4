"""One client's live events: a bounded queue filled by the bus, drained by the client's stream.

Publishing never waits for a client: the bus only appends to the queue. When a client reads slower than
events arrive, the queue keeps the newest ``capacity`` events and counts the oldest it dropped; the
stream tells the client how many with a ``dropped`` message before the events that follow the gap.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from optivgi_csms.api.live.payloads import EVENT_TYPES, event_payload
from optivgi_csms.services.events import Event, EventBus

DEFAULT_CAPACITY = 1000


class Subscription:
    """Events of the selected ``types`` (None: all) published on ``bus`` while it is open."""

    def __init__(self, bus: EventBus, types: frozenset[str] | None = None, capacity: int = DEFAULT_CAPACITY) -> None:
        self.types = types
        self.capacity = capacity
        self._bus = bus
        self._queue: deque[tuple[float, Event]] = deque(maxlen=capacity)
        self._wake = asyncio.Event()
        self._dropped = 0
        self._open = False
        self._closing_reason: str | None = None

    @property
    def pending(self) -> int:
        """How many events wait to be sent."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        """Whether the subscription was closed (by its stream, or by a stopping server)."""
        return self._closing_reason is not None

    @property
    def closing_reason(self) -> str | None:
        """Why the stream must end (None while it may go on)."""
        return self._closing_reason

    def open(self) -> None:
        """Start receiving events."""
        if not self._open and not self.closed:
            self._bus.subscribe(self._on_event)
            self._open = True

    def close(self, reason: str = "closed") -> None:
        """Stop receiving events and wake the stream so it ends; closing twice changes nothing."""
        if self._open:
            self._bus.unsubscribe(self._on_event)
            self._open = False
        if self._closing_reason is None:
            self._closing_reason = reason
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        # Called by the bus inside whatever handler published: note the event and return at once.
        name = EVENT_TYPES.get(type(event))
        if name is None or (self.types is not None and name not in self.types):
            return
        if len(self._queue) == self.capacity:
            self._dropped += 1  # the deque drops its oldest on append
        self._queue.append((time.time(), event))
        self._wake.set()

    async def next_batch(self, wait_s: float) -> list[dict[str, Any]]:
        """The events waiting (a ``dropped`` notice first when some were lost), after waiting up to
        ``wait_s`` seconds for one; empty when none came (time for a heartbeat) or when closed."""
        if not self._queue and not self.closed:
            self._wake.clear()
            try:
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()
            except TimeoutError:
                return []
        if self.closed:
            return []
        batch: list[dict[str, Any]] = []
        if self._dropped:
            batch.append({"type": "dropped", "count": self._dropped})
            self._dropped = 0
        while self._queue:
            received_at, event = self._queue.popleft()
            batch.append(event_payload(event, received_at))
        return batch
