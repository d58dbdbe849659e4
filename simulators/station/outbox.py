"""The offline queue: transaction messages and meter values, delivered in order, each once.

A message stays at the head until the CSMS has answered it. If the connection drops while the
answer is outstanding, the same message is sent again after reconnecting: the CSMS may then see
it twice, and OCPP's idempotency rules (a 1.6 start with the same timestamp, a 2.0.1 event with the
same seqNo, a sample with the same timestamp) make that harmless. Losing it would not be.

A message's payload is built when it is sent, not when it is queued: a 1.6 MeterValues or
StopTransaction queued while the StartTransaction waits for its answer must carry the
transaction id that answer brings.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Envelope:
    """One queued message."""

    action: str
    # Builds the ``ocpp`` call payload at send time; None drops the message (e.g. a 1.6 transaction
    # whose StartTransaction was never answered has no id to send it with).
    build: Callable[[], Any | None]
    # Called with the CSMS's answer (the ``call_result`` dataclass) once it arrives.
    answered: Callable[[Any], None] | None = None
    # Periodic meter values may give way when the queue is full; starts, stops and state changes never.
    droppable: bool = False
    # False for messages only worth sending now (StatusNotification: the station reports its current
    # status after reconnecting instead): never queued off line, dropped when the connection drops.
    persistent: bool = True
    # False: one try only. A CSMS that refused it (CALLERROR, a bad answer, none) would refuse it again, and
    # retries would hold up the transaction messages queued behind it.
    retry: bool = True
    attempts: int = 0
    queued_at: float = field(default_factory=time.monotonic)


class Outbox:
    """A bounded FIFO of :class:`Envelope` with an awaitable head."""

    def __init__(self, limit: int, on_drop: Callable[[Envelope], None] | None = None) -> None:
        self.limit = limit
        self._items: deque[Envelope] = deque()
        self._changed = asyncio.Event()
        self._on_drop = on_drop
        self.delivered = 0
        self.dropped = 0
        self.queued: Counter[str] = Counter()  # messages ever queued, by action

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[Envelope]:
        """The queued messages, oldest first."""
        return list(self._items)

    def put(self, envelope: Envelope) -> None:
        """Queue a message; when full, the oldest droppable message (possibly this one) gives way."""
        if len(self._items) >= self.limit:
            victim = next((item for item in self._items if item.droppable), None)
            if victim is None and envelope.droppable:
                victim = envelope
            if victim is not None:
                self.drop(victim)
                if victim is envelope:
                    return
            # Nothing droppable: a start or stop is never lost, the bound gives way instead.
        self._items.append(envelope)
        self.queued[envelope.action] += 1
        self._changed.set()

    def drop(self, envelope: Envelope) -> None:
        """Remove a message that will not be delivered."""
        self._remove(envelope)
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop(envelope)

    def done(self, envelope: Envelope) -> None:
        """Remove a message the CSMS has answered."""
        if self._remove(envelope):
            self.delivered += 1

    async def head(self) -> Envelope:
        """The oldest message, waiting for one if the queue is empty."""
        while not self._items:
            self._changed.clear()
            await self._changed.wait()
        return self._items[0]

    async def wait_empty(self, timeout_s: float) -> bool:
        """Wait until everything is delivered or dropped; False if ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        while self._items:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
            except TimeoutError:
                return not self._items
        return True

    def _remove(self, envelope: Envelope) -> bool:
        try:
            self._items.remove(envelope)
        except ValueError:
            return False
        self._changed.set()
        return True
