"""Who may open a connection: a cap on concurrent connections and a back-off for addresses that fail to authenticate.

Both are checked during the websocket handshake, before any password hash is computed, so neither a
flood of connections nor a password-guessing client costs the CSMS more than a refused HTTP request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: How many addresses the failure tracker remembers; the least recently failing are forgotten first,
#: so a client cycling through many addresses cannot grow the CSMS's memory without bound.
MAX_TRACKED_ADDRESSES = 100_000


def source_key(address: str) -> str:
    """The unit an address is limited by: an IPv4 address, or an IPv6 /64 (one subscriber's prefix,
    which hands its host out as many addresses as it likes)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class ConnectionSlots:
    """At most ``limit`` connections at once; a slot is held from admission until the TCP connection is gone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: set[Any] = set()
        self._watchers: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._held)

    @property
    def full(self) -> bool:
        """Whether every slot is taken."""
        return len(self._held) >= self.limit

    def hold(self, connection: Any) -> None:
        """Count ``connection`` (a websockets connection) until it closes, however its handshake ends.

        Waiting on the connection's own end, rather than releasing in the handler, frees the slot also
        for handshakes refused or lost after admission, where no handler runs.
        """
        if connection in self._held:
            return
        self._held.add(connection)
        watcher = asyncio.create_task(self._release_when_closed(connection))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _release_when_closed(self, connection: Any) -> None:
        try:
            await connection.wait_closed()
        finally:
            self._held.discard(connection)


@dataclass
class _Source:
    failures: deque[float] = field(default_factory=deque)
    strikes: int = 0  # how many times this source has been blocked: each block lasts twice the last
    blocked_until: float = 0.0
    last_failure: float = 0.0


class FailureLimiter:
    """After ``limit`` failed authentications from one source within ``window_s``, refuse it for ``block_s``.

    Each further block of the same source lasts twice as long as the one before, up to ``max_block_s``; a
    source with no failure for ``max_block_s`` starts afresh. Successful handshakes are neither counted nor
    limited. ``limit`` 0 switches the limiter off.
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        block_s: float,
        max_block_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.block_s = block_s
        self.max_block_s = max(max_block_s, block_s)
        self._clock = clock
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    def blocked_for(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        source = self._sources.get(source_key(address))
        if source is None:
            return 0.0
        return max(0.0, source.blocked_until - self._clock())

    def failed(self, address: str) -> float:
        """Count a failed authentication from ``address``; returns the block it starts (s), else 0."""
        if self.limit <= 0:
            return 0.0
        now = self._clock()
        key = source_key(address)
        source = self._sources.pop(key, None)
        if source is None or (now - source.last_failure > self.max_block_s and source.blocked_until < now):
            source = _Source()  # quiet for long enough: its earlier blocks are forgiven
        self._sources[key] = source  # most recently failing last, so the oldest are forgotten first
        while len(self._sources) > MAX_TRACKED_ADDRESSES:
            self._sources.popitem(last=False)
        source.last_failure = now
        source.failures.append(now)
        while source.failures and source.failures[0] <= now - self.window_s:
            source.failures.popleft()
        if len(source.failures) < self.limit:
            return 0.0
        period = min(self.block_s * 2**source.strikes, self.max_block_s)
        source.strikes += 1
        source.blocked_until = now + period
        source.failures.clear()
        return period
