"""A station's events reach its site's leader, wherever the station is connected.

Every node hands the events smart charging consumes (:data:`FORWARDED`) to this forwarder instead of to its
own :class:`SmartCharging`. An event of a site this node leads goes to smart charging here; any other is
published on that site's channel, where only the site's leader listens: a node never receives, let alone
decodes, the events of sites it does not lead (a cluster of 100,000 stations sends each event to one node).
While nobody leads a site (a leader just died) its events are dropped; the next leader plans from the
database, which holds everything they said.

Events keep their order per node: one task publishes them in the order they happened, a batch per round
trip. A station's site is read from the database once and kept for :data:`SITE_CACHE_S` (a station moved to
another site is followed within that long; the site it left plans again at once, as on one node).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from optivgi_csms.cluster import codec
from optivgi_csms.cluster.channels import Channels
from optivgi_csms.cluster.keys import Keys
from optivgi_csms.cluster.registry import ClusterRegistry
from optivgi_csms.logs import get_logger
from optivgi_csms.services.events import (
    ChargingNeedsReceived,
    ConnectorStatusChanged,
    Event,
    EventBus,
    MeterReading,
    ReservationChanged,
    SessionNeedsChanged,
    SiteChanged,
    StationBooted,
    StationConnected,
    StationDisconnected,
    TransactionEnded,
    TransactionStarted,
)
from optivgi_csms.smart_charging import SmartCharging

log = get_logger(__name__)

#: The events :meth:`SmartCharging.handle` acts on; the others (and the live stream's copy of these) stay local.
FORWARDED = (
    TransactionStarted,
    TransactionEnded,
    MeterReading,
    ConnectorStatusChanged,
    ReservationChanged,
    ChargingNeedsReceived,
    SessionNeedsChanged,
    SiteChanged,
    StationBooted,
    StationConnected,
    StationDisconnected,
)
#: How long a station's site is remembered (s).
SITE_CACHE_S = 10.0
#: Most events published in one pipeline.
BATCH = 500

SiteOf = Callable[[str], Awaitable[str]]
Leads = Callable[[str], bool]


class EventForwarder:
    """Routes this node's events to the leaders of their sites, and hands the leader's the events it receives."""

    def __init__(
        self,
        *,
        bus: EventBus,
        redis: Redis,
        channels: Channels,
        keys: Keys,
        node_id: str,
        smart_charging: SmartCharging,
        registry: ClusterRegistry,
        site_of: SiteOf,
        leads: Leads,
    ) -> None:
        self._bus = bus
        self._redis = redis
        self._channels = channels
        self._keys = keys
        self.node_id = node_id
        self._smart = smart_charging
        self._registry = registry
        self._site_of_station = site_of
        self._leads = leads
        self._sites: dict[str, tuple[str, float]] = {}
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        #: Events forwarded to other nodes and received from them (for the log and tests).
        self.sent = 0
        self.received = 0

    async def start(self) -> None:
        """Take this node's events from its bus."""
        self._bus.subscribe(self._on_event)
        self._task = asyncio.create_task(self._run(), name="cluster-events")

    async def stop(self) -> None:
        """Stop forwarding (events not yet sent are dropped: the leader replans from the database)."""
        with contextlib.suppress(ValueError):
            self._bus.unsubscribe(self._on_event)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def listen(self, site_id: str) -> None:
        """Receive the site's events from every node (this node leads it now)."""
        await self._channels.subscribe(self._keys.site_channel(site_id), lambda data: self._received(site_id, data))

    async def mute(self, site_id: str) -> None:
        """Stop receiving the site's events."""
        await self._channels.unsubscribe(self._keys.site_channel(site_id))

    # --- this node's events ---------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, FORWARDED):
            self._queue.put_nowait(event)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._route(batch)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("events not forwarded to their sites' leaders", count=len(batch), error=repr(error))

    async def _route(self, batch: list[Event]) -> None:
        outgoing: list[tuple[str, str]] = []
        for event in batch:
            site_id = await self._site(event)
            if site_id is None:
                continue
            if self._leads(site_id):
                self._smart.handle(event)
            else:
                message = {"from": self.node_id, "event": codec.encode(event)}
                outgoing.append((self._keys.site_channel(site_id), json.dumps(message)))
        if not outgoing:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, data in outgoing:
                    pipe.publish(channel, data)
                await pipe.execute()
            self.sent += len(outgoing)
        except RedisError as error:
            log.warning("events not forwarded to their sites' leaders", count=len(outgoing), error=repr(error))

    async def _site(self, event: Event) -> str | None:
        if isinstance(event, SiteChanged):
            self._sites.clear()  # a station may have moved between sites
            return event.site_id
        station_id = getattr(event, "station_id", None)
        if station_id is None:
            return None
        cached = self._sites.get(station_id)
        if cached is not None and time.monotonic() - cached[1] < SITE_CACHE_S:
            return cached[0]
        try:
            site_id = await self._site_of_station(station_id)
        except Exception as error:
            log.warning("cannot find the station's site: event dropped", station_id=station_id, error=repr(error))
            return None
        self._sites[station_id] = (site_id, time.monotonic())
        return site_id

    # --- other nodes' events, on the leader --------------------------------------------------------------------

    def _received(self, site_id: str, data: Any) -> None:
        try:
            message = json.loads(data)
            event = codec.decode(message["event"])
            node_id = str(message["from"])
        except (ValueError, KeyError, TypeError) as error:
            log.warning("unreadable forwarded event dropped", site_id=site_id, error=str(error))
            return
        if not isinstance(event, FORWARDED) or not self._leads(site_id):
            return
        self.received += 1
        station_id = getattr(event, "station_id", None)
        if station_id is not None:
            # The leader learns where the station is from its events: set-up and profiles reach it at once.
            if isinstance(event, StationConnected | StationBooted):
                self._registry.heard_of(station_id, node_id, connected=True)
            elif isinstance(event, StationDisconnected):
                self._registry.heard_of(station_id, node_id, connected=False)
        self._smart.handle(event)
