"""The station registry of a cluster node: its own sessions first, else a proxy to the station's node.

The rest of the CSMS keeps calling ``get``, ``is_connected`` and ``ids`` as on one node. ``get`` and
``is_connected`` are synchronous there (the scheduler asks about every station of a site in a loop), so
they answer from what this node knows without asking Redis: its own sessions, and a cache of other nodes'
stations that is refreshed before each scheduling cycle (:meth:`ClusterRegistry.refresh`), by the events
forwarded to a site's leader and by every command routed. A command itself always looks its station's owner
up in Redis, so a stale cache can make a command fail as "not connected" (as a station that just left would)
but never reach the wrong node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from redis.exceptions import RedisError

from optivgi_csms.cluster.ownership import LEASE_S, Owner, Ownership
from optivgi_csms.cluster.proxy import RemoteStation
from optivgi_csms.cluster.rpc import NodeLink
from optivgi_csms.logs import get_logger
from optivgi_csms.metrics import CsmsMetrics
from optivgi_csms.protocol.commands import StationCommands
from optivgi_csms.protocol.errors import StationNotConnectedError
from optivgi_csms.protocol.session import OcppSession
from optivgi_csms.server.registry import REPLACED_CODE, REPLACED_REASON, StationRegistry

log = get_logger(__name__)

#: How long what this node heard of another node's station counts as true without news (s). Longer than
#: the lease: the scheduler refreshes it every cycle, and a command checks Redis anyway.
REMOTE_FRESH_S = 3 * LEASE_S


class ClusterRegistry(StationRegistry):
    """Local sessions as :class:`StationRegistry`, plus ownership in Redis and proxies to other nodes."""

    def __init__(self, metrics: CsmsMetrics, ownership: Ownership, link: NodeLink) -> None:
        super().__init__(metrics)
        self.ownership = ownership
        self.link = link
        self.node_id = ownership.node_id
        #: The claims of this node's current connections, renewed by the node.
        self.claims: dict[str, Owner] = {}
        #: Other nodes' stations as last heard: station -> (claim, when heard, monotonic).
        self._remote: dict[str, tuple[Owner, float]] = {}
        self._proxies: dict[str, RemoteStation] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        link.on_moved = self._moved

    # --- what the rest of the CSMS asks -------------------------------------------------------------------

    def get(self, station_id: str) -> StationCommands:
        """The station's local session, or a proxy that sends each command to the station's node (and raises
        :class:`StationNotConnectedError` when no node holds it)."""
        session = self.local(station_id)
        if session is not None:
            return session
        proxy = self._proxies.get(station_id)
        if proxy is None:
            proxy = self._proxies[station_id] = RemoteStation(station_id, self._route)
        heard = self._remote.get(station_id)
        if heard is not None and heard[0].ocpp_version:
            proxy.ocpp_version = heard[0].ocpp_version
        return proxy

    async def resolve(self, station_id: str) -> StationCommands:
        """The station's commands after asking Redis who holds it: raises :class:`StationNotConnectedError` now
        (not at the first command) when nobody does, and knows its OCPP version."""
        session = self.local(station_id)
        if session is not None:
            return session
        try:
            owner = await self.ownership.owner(station_id)
        except RedisError as error:
            raise StationNotConnectedError(f"station {station_id} cannot be located: {error}") from None
        if owner is None or owner.node_id == self.node_id:
            self._remote.pop(station_id, None)
            raise StationNotConnectedError(f"station {station_id} is not connected")
        self._heard(station_id, owner)
        return self.get(station_id)

    def is_connected(self, station_id: str) -> bool:
        """Whether the station has a live connection here, or on another node as far as this node knows."""
        return self.local(station_id) is not None or self._remote_owner(station_id) is not None

    def ids(self) -> list[str]:
        """Every station connected here or, as far as this node knows, elsewhere."""
        now = time.monotonic()
        remote = [station for station, (_, seen) in self._remote.items() if now - seen < REMOTE_FRESH_S]
        return list(dict.fromkeys([*super().ids(), *remote]))

    async def connected_ids(self) -> list[str]:
        """Every station connected to any node of the cluster (a scan of the ownership keys)."""
        try:
            remote = await self.ownership.all_owned()
        except RedisError as error:
            log.warning("cannot list the cluster's stations: listing this node's", error=repr(error))
            remote = []
        return list(dict.fromkeys([*super().ids(), *remote]))

    def local(self, station_id: str) -> OcppSession | None:
        """The station's live session on this node."""
        session = self._sessions.get(station_id)
        return session if session is not None and not session.closed else None

    async def refresh(self, station_ids: Iterable[str]) -> None:
        """Ask Redis which node holds each of these stations (before a scheduling cycle of their site)."""
        ids = [station_id for station_id in station_ids if self.local(station_id) is None]
        try:
            owners = await self.ownership.owners(ids)
        except RedisError as error:
            log.warning("cannot read station ownership: planning with what is known", error=repr(error))
            return
        for station_id in ids:
            owner = owners.get(station_id)
            if owner is None or owner.node_id == self.node_id:
                self._remote.pop(station_id, None)
            else:
                self._heard(station_id, owner)

    def heard_of(self, station_id: str, node_id: str, *, connected: bool) -> None:
        """An event from ``node_id`` says the station is (or is no longer) connected there."""
        if node_id == self.node_id:
            return
        if connected:
            known = self._remote.get(station_id)
            version = known[0].ocpp_version if known is not None and known[0].node_id == node_id else ""
            self._heard(station_id, Owner(node_id, "", version))
        elif (known := self._remote.get(station_id)) is not None and known[0].node_id == node_id:
            del self._remote[station_id]

    # --- connections of this node --------------------------------------------------------------------------

    async def attach(self, session: OcppSession) -> OcppSession | None:
        """Register the session here and claim the station in Redis; the node that held it before (if another)
        is told, and closes its connection as a replaced one."""
        replaced = await super().attach(session)
        station_id = session.station_id
        claim = self.ownership.new_claim(session.dialect.version)
        self.claims[station_id] = claim
        self._remote.pop(station_id, None)
        self._proxies.pop(station_id, None)
        try:
            previous = await self.ownership.claim(station_id, claim)
        except RedisError as error:
            # The websocket works without Redis; the lease renewal claims it again once Redis is back.
            log.warning("cannot record the station's node in Redis", error=repr(error))
            return replaced
        if previous is not None and previous.node_id != self.node_id:
            await self.link.notify_moved(previous.node_id, station_id, claim.value)
        return replaced

    def detach(self, session: OcppSession) -> None:
        """Forget the session and, if it was the station's current connection, release its claim (only if the
        claim is still this connection's: a newer one, here or on another node, keeps it)."""
        current = self._sessions.get(session.station_id) is session
        super().detach(session)
        if not current:
            return
        claim = self.claims.pop(session.station_id, None)
        if claim is not None:
            self._spawn(self._release(session.station_id, claim))

    async def release_all(self) -> None:
        """Release every claim of this node (it is stopping): other nodes see its stations unowned at once."""
        claims, self.claims = dict(self.claims), {}
        await asyncio.gather(*(self._release(station_id, claim) for station_id, claim in claims.items()))

    async def renew(self) -> None:
        """Extend the leases of this node's claims; a station another node claimed meanwhile is closed here."""
        for station_id in await self.ownership.renew(dict(self.claims)):
            await self._moved(station_id, "")

    # --- internals -------------------------------------------------------------------------------------------

    async def _route(
        self, station_id: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, str]:
        session = self.local(station_id)
        if session is not None:  # it reconnected here since the proxy was handed out
            return await getattr(session, method)(*args, **kwargs), session.ocpp_version
        try:
            owner = await self.ownership.owner(station_id)
        except RedisError as error:
            raise StationNotConnectedError(f"station {station_id} cannot be located: {error}") from None
        if owner is None or owner.node_id == self.node_id:
            self._remote.pop(station_id, None)
            raise StationNotConnectedError(f"station {station_id} is not connected")
        self._heard(station_id, owner)
        return await self.link.call(owner.node_id, station_id, method, args, kwargs)

    async def _moved(self, station_id: str, claim: str) -> None:
        """The station connected on another node: close the connection here as a replaced one."""
        session = self.local(station_id)
        if session is None:
            return
        try:
            owner = await self.ownership.owner(station_id)
        except RedisError:
            return
        # A notice can be overtaken: the station may have come back here since. Only the claim in Redis counts.
        if owner is None or owner.node_id == self.node_id:
            return
        self._heard(station_id, owner)
        self.claims.pop(station_id, None)
        log.info(
            "station connected on another node: closing its connection here", station_id=station_id, node=owner.node_id
        )
        await session.close(REPLACED_REASON, code=REPLACED_CODE)

    async def _release(self, station_id: str, claim: Owner) -> None:
        try:
            await self.ownership.release(station_id, claim)
        except RedisError as error:  # the lease expires by itself
            log.warning("cannot release the station's ownership", station_id=station_id, error=repr(error))

    def _heard(self, station_id: str, owner: Owner) -> None:
        self._remote[station_id] = (owner, time.monotonic())

    def _remote_owner(self, station_id: str) -> Owner | None:
        heard = self._remote.get(station_id)
        if heard is None:
            return None
        owner, seen = heard
        if time.monotonic() - seen >= REMOTE_FRESH_S:
            return None
        return owner

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
