"""Charging profiles sent to stations, with each station's answer."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.charging_profile import ChargingProfile, ProfilePurpose
from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import ChargingProfileRecord, ReportedChargingProfile


class ChargingProfileService:
    """Records a profile before it is sent (so a crash cannot hide it) and the answer after."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def sent(self, station_id: str, evse_id: int, profile: ChargingProfile) -> int:
        """Record that ``profile`` is being sent; returns the record id for :meth:`answered`."""

        async def op(session: AsyncSession) -> int:
            record = ChargingProfileRecord(
                station_id=station_id,
                evse_id=evse_id,
                profile_id=profile.id,
                stack_level=profile.stack_level,
                purpose=profile.purpose.value,
                kind=profile.kind.value,
                transaction_id=profile.transaction_id,
                valid_from=profile.valid_from,
                valid_to=profile.valid_to,
                profile=profile.to_dict(),
                sent_at=utc_now(),
            )
            session.add(record)
            await session.flush()
            return record.id

        return await self._database.write(op)

    async def answered(self, record_id: int, status: str) -> None:
        """Store the station's answer (or ``Timeout`` / a CALLERROR code)."""

        async def op(session: AsyncSession) -> None:
            record = await session.get(ChargingProfileRecord, record_id)
            if record is not None:
                record.status = status[:40]
                record.answered_at = utc_now()

        await self._database.write(op)

    async def cleared(
        self,
        station_id: str,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: ProfilePurpose | None = None,
        stack_level: int | None = None,
    ) -> None:
        """Mark the accepted profiles a ClearChargingProfile matched as cleared."""

        async def op(session: AsyncSession) -> None:
            statement = update(ChargingProfileRecord).where(
                ChargingProfileRecord.station_id == station_id,
                ChargingProfileRecord.status == "Accepted",
                ChargingProfileRecord.cleared_at.is_(None),
            )
            if profile_id is not None:
                statement = statement.where(ChargingProfileRecord.profile_id == profile_id)
            if evse_id is not None:
                statement = statement.where(ChargingProfileRecord.evse_id == evse_id)
            if purpose is not None:
                statement = statement.where(ChargingProfileRecord.purpose == purpose.value)
            if stack_level is not None:
                statement = statement.where(ChargingProfileRecord.stack_level == stack_level)
            await session.execute(statement.values(cleared_at=utc_now()))

        await self._database.write(op)

    async def reported(
        self, station_id: str, request_id: int, source: str, evse_id: int, profiles: list[ChargingProfile]
    ) -> None:
        """Store the profiles a station reports it has installed (ReportChargingProfiles)."""

        async def op(session: AsyncSession) -> None:
            now = utc_now()
            session.add_all(
                ReportedChargingProfile(
                    station_id=station_id,
                    request_id=request_id,
                    evse_id=evse_id,
                    source=source,
                    # Keep what the neutral value cannot hold too (the station's transaction id,
                    # alternative schedules): a report should say everything the station said.
                    profile={**profile.to_dict(), **profile.extra},
                    received_at=now,
                )
                for profile in profiles
            )

        await self._database.write(op)
