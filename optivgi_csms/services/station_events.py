"""Events a station reports about itself: security events and device-model events (NotifyEvent)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.time import utc_now
from optivgi_csms.logs import get_logger
from optivgi_csms.store.database import Database
from optivgi_csms.store.insert_once import insert_once
from optivgi_csms.store.models import DeviceEvent, SecurityEvent

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SecurityEventFilter:
    """Which security events to list: all given conditions hold (``since``/``until`` bound the station's time)."""

    station_id: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The filter as SQL conditions."""
        conditions: list[ColumnElement[bool]] = []
        if self.station_id is not None:
            conditions.append(SecurityEvent.station_id == self.station_id)
        if self.type is not None:
            conditions.append(SecurityEvent.type == self.type)
        if self.since is not None:
            conditions.append(SecurityEvent.timestamp >= self.since)
        if self.until is not None:
            conditions.append(SecurityEvent.timestamp < self.until)
        return conditions


class StationEventService:
    """Stores security and device events."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def security_event(self, station_id: str, kind: str, timestamp: datetime, tech_info: str | None) -> None:
        """Store a SecurityEventNotification (and log it: operators watch these)."""
        log.warning("security event", station_id=station_id, type=kind, tech_info=tech_info)

        async def op(session: AsyncSession) -> None:
            # Once per (station, type, time, info): a repeated notification is not a second event.
            row = {
                "station_id": station_id,
                "type": kind,
                "timestamp": timestamp,
                "tech_info": tech_info,
                "received_at": utc_now(),
            }
            await insert_once(session, SecurityEvent, [row])

        await self._database.write(op)

    async def security_events(
        self, where: SecurityEventFilter, *, limit: int, offset: int = 0
    ) -> tuple[list[SecurityEvent], int]:
        """Matching security events, newest first (by the station's time, then arrival), and how many match."""
        conditions = where.conditions()
        async with self._database.read() as session:
            total = await session.scalar(select(func.count()).select_from(SecurityEvent).where(*conditions))
            rows = await session.scalars(
                select(SecurityEvent)
                .where(*conditions)
                .order_by(SecurityEvent.timestamp.desc(), SecurityEvent.id.desc())
                .offset(offset)
                .limit(limit)
            )
            return list(rows), int(total or 0)

    async def device_events(self, station_id: str, events: Iterable[dict[str, Any]]) -> None:
        """Store NotifyEvent entries; each dict has the domain fields plus ``raw``, the event as sent."""
        rows = list(events)

        async def op(session: AsyncSession) -> None:
            # Once per (station, event id, time): a repeated NotifyEvent part stores nothing new.
            now = utc_now()
            await insert_once(
                session, DeviceEvent, [{"station_id": station_id, "received_at": now, **row} for row in rows]
            )

        if rows:
            await self._database.write(op)
