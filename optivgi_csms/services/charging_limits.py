"""Charging limits set on a station by others (NotifyChargingLimit / ClearedChargingLimit, 2.0.1)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.charging_needs import ChargingLimitReport
from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import ChargingLimitRecord


class ChargingLimitService:
    """Stores external limits until the station says they are cleared."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def notified(self, report: ChargingLimitReport) -> None:
        """Store a limit the station reports."""

        async def op(session: AsyncSession) -> None:
            session.add(
                ChargingLimitRecord(
                    station_id=report.station_id,
                    evse_id=report.evse_id,
                    source=report.source,
                    is_grid_critical=report.is_grid_critical,
                    schedules=[schedule.to_dict() for schedule in report.schedules],
                    received_at=utc_now(),
                )
            )

        await self._database.write(op)

    async def cleared(self, station_id: str, source: str, evse_id: int | None) -> None:
        """Mark the station's limits from ``source`` (on ``evse_id``, or all of them) as cleared."""

        async def op(session: AsyncSession) -> None:
            statement = update(ChargingLimitRecord).where(
                ChargingLimitRecord.station_id == station_id,
                ChargingLimitRecord.source == source,
                ChargingLimitRecord.cleared_at.is_(None),
            )
            if evse_id is not None:
                statement = statement.where(ChargingLimitRecord.evse_id == evse_id)
            await session.execute(statement.values(cleared_at=utc_now()))

        await self._database.write(op)
