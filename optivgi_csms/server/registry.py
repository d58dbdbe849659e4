"""The connected stations of this process: the one piece of mutable state the server shares."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from optivgi_csms.logs import get_logger
from optivgi_csms.metrics import CsmsMetrics
from optivgi_csms.protocol.commands import StationCommands
from optivgi_csms.protocol.errors import StationNotConnectedError
from optivgi_csms.protocol.session import OcppSession

log = get_logger(__name__)

#: How a connection replaced by a newer one of the same station is closed: a normal closure (the station
#: did nothing wrong; it reconnected) whose reason says why.
REPLACED_CODE = 1000
REPLACED_REASON = "replaced by a new connection of the same station"


class StationRegistry:
    """Maps station ids to their live sessions; ``get(id)`` is how the CSMS talks to a station."""

    def __init__(self, metrics: CsmsMetrics | None = None) -> None:
        self._sessions: dict[str, OcppSession] = {}
        # The connected-stations gauge counts exactly the sessions held here: +1 on attach, -1 when one
        # leaves the map (detached, or replaced by a newer connection of the same station).
        self._metrics = metrics if metrics is not None else CsmsMetrics()
        self._closing: set[asyncio.Task[Any]] = set()

    def get(self, station_id: str) -> StationCommands:
        """The command interface of a connected station; raises :class:`StationNotConnectedError`."""
        session = self._sessions.get(station_id)
        if session is None or session.closed:
            raise StationNotConnectedError(f"station {station_id} is not connected")
        assert isinstance(session, StationCommands)
        return session

    async def resolve(self, station_id: str) -> StationCommands:
        """As :meth:`get`, for callers that may wait: a cluster node asks which node holds the station
        (:mod:`optivgi_csms.cluster.registry`); here it is the same as :meth:`get`."""
        return self.get(station_id)

    async def refresh(self, station_ids: Iterable[str]) -> None:
        """Learn where these stations are connected before asking :meth:`is_connected` about them (a cluster
        node asks Redis); one process knows already."""

    async def connected_ids(self) -> list[str]:
        """As :meth:`ids`, for callers that may wait (a cluster node lists every node's stations)."""
        return self.ids()

    def is_connected(self, station_id: str) -> bool:
        """Whether the station has a live connection here."""
        session = self._sessions.get(station_id)
        return session is not None and not session.closed

    def ids(self) -> list[str]:
        """The ids of every connected station."""
        return [station_id for station_id, session in self._sessions.items() if not session.closed]

    def __len__(self) -> int:
        return len(self._sessions)

    async def attach(self, session: OcppSession) -> OcppSession | None:
        """Make ``session`` the station's connection; an older live connection of the same id is closed
        (the newest connection wins) and returned."""
        old = self._sessions.get(session.station_id)
        self._sessions[session.station_id] = session
        self._metrics.station_connected(session.dialect.version)
        if old is not None and old is not session:
            self._metrics.station_disconnected(old.dialect.version)
        if old is not None and old is not session and not old.closed:
            # The caller logs it and records a security event with both connections' addresses.
            # Closing waits for the old peer's close frame, for the whole close timeout when its link
            # died silently (the usual reason to reconnect): close in the background so the new
            # connection is served at once.
            task = asyncio.create_task(old.close(REPLACED_REASON, code=REPLACED_CODE))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            return old
        return None

    def detach(self, session: OcppSession) -> None:
        """Forget ``session`` unless a newer connection of the station has replaced it already."""
        if self._sessions.get(session.station_id) is session:
            del self._sessions[session.station_id]
            self._metrics.station_disconnected(session.dialect.version)

    def sessions(self) -> list[OcppSession]:
        """Every live session (for shutdown)."""
        return [session for session in self._sessions.values() if not session.closed]

    async def close_all(self, reason: str) -> None:
        """Close every connection (server shutdown)."""
        for session in list(self._sessions.values()):
            await session.close(reason)
