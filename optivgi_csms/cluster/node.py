"""One ``serve`` process as a node of a cluster: its Redis, registry, command channel, leadership and events.

:class:`~optivgi_csms.server.app.Csms` builds a :class:`ClusterNode` when ``redis_url`` is set, uses its
registry, starts it after the database and before the OCPP server, and stops it first (leadership and
ownership released, so the other nodes take over at once rather than when leases run out).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

from redis.asyncio import Redis
from redis.exceptions import RedisError

from optivgi_csms.cluster.channels import Channels
from optivgi_csms.cluster.forwarding import EventForwarder
from optivgi_csms.cluster.identity import NodeIdentity, NodeIdInUseError
from optivgi_csms.cluster.keys import Keys
from optivgi_csms.cluster.leadership import SiteLeadership
from optivgi_csms.cluster.ownership import RENEW_S, Ownership
from optivgi_csms.cluster.plans import SharedPlans
from optivgi_csms.cluster.registry import ClusterRegistry
from optivgi_csms.cluster.rpc import REPLY_MARGIN_S, NodeLink
from optivgi_csms.config import Settings
from optivgi_csms.logs import get_logger
from optivgi_csms.metrics import CsmsMetrics
from optivgi_csms.services import Services
from optivgi_csms.smart_charging import SmartCharging
from optivgi_csms.smart_charging.plan import SitePlan

log = get_logger(__name__)

#: Connecting to Redis gives up after this long (s), at start-up and on each reconnection.
REDIS_TIMEOUT_S = 5.0


class ClusterStartError(RuntimeError):
    """The node cannot join its cluster; the message says why, in one line."""


def default_node_id() -> str:
    """``hostname-pid``: unique among the processes of a host, and says where to look."""
    return f"{socket.gethostname()}-{os.getpid()}"


def shown_url(url: str) -> str:
    """A Redis URL without its credentials, for messages and the log."""
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rsplit('@', 1)[-1]}{slash}{path}"


class ClusterNode:
    """Everything a process needs to be one node among several."""

    def __init__(self, settings: Settings, metrics: CsmsMetrics) -> None:
        self.settings = settings
        self.node_id = settings.node_id or default_node_id()
        self.keys = Keys(settings.redis_prefix)
        self.redis: Redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
        )
        # Pub/sub waits for messages as long as it likes: no read timeout on its connection.
        self.channels = Channels(Redis.from_url(settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S))
        self.identity = NodeIdentity(self.redis, self.keys, self.node_id)
        self.ownership = Ownership(self.redis, self.keys, self.node_id)
        self.link = NodeLink(
            self.channels,
            self.keys,
            self.node_id,
            local=lambda station_id: self.registry.local(station_id),
            reply_timeout_s=settings.call_timeout + REPLY_MARGIN_S,
        )
        self.registry = ClusterRegistry(metrics, self.ownership, self.link)
        self.leadership: SiteLeadership | None = None
        self.forwarder: EventForwarder | None = None
        self._smart: SmartCharging | None = None
        self.plans: SharedPlans | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._services: Services | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._joined = False

    async def start(self, services: Services, smart_charging: SmartCharging) -> None:
        """Join the cluster: check Redis, listen for commands, forward events, and take the sites nobody leads.
        Raises :class:`ClusterStartError` when Redis or PostgreSQL cannot be used."""
        url = self.settings.effective_database_url
        if not url.startswith("postgresql"):
            raise ClusterStartError(
                "redis_url (several processes) needs a PostgreSQL database_url: the processes share its "
                "data and their scheduling leadership is a PostgreSQL advisory lock"
            )
        try:
            await self.redis.ping()
            await self.identity.take()
        except (RedisError, OSError) as error:
            raise ClusterStartError(f"cannot reach Redis at {shown_url(self.settings.redis_url)}: {error}") from None
        except NodeIdInUseError as error:
            raise ClusterStartError(str(error)) from None
        self._joined = True
        self._services, self._smart = services, smart_charging
        smart_charging.before_cycle = self._before_cycle
        smart_charging.plan_changed = self._plan_changed
        await self.link.start()
        self.plans = SharedPlans(self.redis, self.channels, self.keys, smart_charging)
        await self.plans.start(await self._site_ids())
        self.forwarder = EventForwarder(
            bus=services.bus,
            redis=self.redis,
            channels=self.channels,
            keys=self.keys,
            node_id=self.node_id,
            smart_charging=smart_charging,
            registry=self.registry,
            site_of=services.sites.site_of,
            leads=self._leads,
        )
        await self.forwarder.start()
        self.leadership = SiteLeadership(
            url, self.settings.redis_prefix, self._site_ids, on_lead=self._lead, on_resign=self._resign
        )
        try:
            await self.leadership.start()
        except Exception as error:  # refused, unreachable, timed out, bad credentials: one line either way
            await self.close()
            raise ClusterStartError(f"cannot hold scheduling leadership in PostgreSQL: {error}") from None
        self._renewer = asyncio.create_task(self._renew(), name="cluster-ownership")
        log.info("joined the cluster", node=self.node_id, redis=shown_url(self.settings.redis_url))

    async def resign(self) -> None:
        """Give up leadership and ownership now (first thing on stop): the other nodes take over at once."""
        if self.leadership is not None:
            await self.leadership.stop()
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        with contextlib.suppress(RedisError, OSError):
            await self.registry.release_all()

    async def close(self) -> None:
        """Leave the cluster: stop forwarding and answering, close the Redis connections."""
        await self.resign()
        if self.forwarder is not None:
            await self.forwarder.stop()
        await self.link.close()
        await self.channels.close()
        if self._joined:  # last: a successor under the same id may start once this process has let go of all
            self._joined = False
            with contextlib.suppress(RedisError, OSError):
                await self.identity.release()
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()

    # --- leadership ---------------------------------------------------------------------------------------------

    def _leads(self, site_id: str) -> bool:
        return self.leadership is not None and site_id in self.leadership.led

    async def _site_ids(self) -> list[str]:
        assert self._services is not None
        return [config.id for config in await self._services.sites.all()]

    async def _lead(self, site_id: str) -> None:
        assert self._services is not None and self._smart is not None and self.forwarder is not None
        await self.forwarder.listen(site_id)  # first: events from now on are not missed
        stations = await self._services.sites.stations_of(site_id)
        await self.registry.refresh(stations)
        await self._smart.lead(site_id, [station for station in stations if self.registry.is_connected(station)])

    async def _resign(self, site_id: str) -> None:
        assert self._smart is not None and self.forwarder is not None
        await self.forwarder.mute(site_id)
        await self._smart.resign(site_id)

    def _plan_changed(self, site_id: str, plan: SitePlan | None) -> None:
        if self.plans is not None:
            task = asyncio.create_task(self.plans.publish(site_id, plan))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _before_cycle(self, site_id: str) -> None:
        assert self._services is not None
        await self.registry.refresh(await self._services.sites.stations_of(site_id))

    # --- ownership ----------------------------------------------------------------------------------------------

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                if not await self.identity.renew():
                    log.error("another process took this node's id: give each process its own node_id")
                await self.registry.renew()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away: the websockets stay; claims are set again once it is back
                log.warning("station leases not renewed", error=repr(error), stations=len(self.registry.claims))
