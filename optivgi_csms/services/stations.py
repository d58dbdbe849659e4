"""Station life: connection, credentials, boot, heartbeats and connector status; registration by an operator.

The registration functions take a :class:`Database` so the CLI (its own database, no running services)
and the API (through :class:`StationService`) share one implementation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.site import DEFAULT_SITE_ID
from optivgi_csms.domain.station import BootDecision, BootInfo, BootStatus, ConnectorStatus
from optivgi_csms.domain.time import utc_now
from optivgi_csms.logs import get_logger
from optivgi_csms.security.passwords import check_policy, hash_password, verify_password
from optivgi_csms.services.events import (
    ConnectorStatusChanged,
    EventBus,
    StationBooted,
    StationConnected,
    StationDisconnected,
)
from optivgi_csms.store.database import Database
from optivgi_csms.store.insert_once import insert_once
from optivgi_csms.store.models import ChargingProfileRecord, Connector, Station, StatusNotification

log = get_logger(__name__)

#: Seconds a Heartbeat's answer waits for its record to be committed before it is sent without it.
HEARTBEAT_WRITE_WAIT_S = 2.0


def _quiet(task: asyncio.Future[Any]) -> None:
    """Consume a background write's outcome (its failure was logged when the answer went without it)."""
    if not task.cancelled():
        task.exception()


async def ensure_station(session: AsyncSession, station_id: str, now: datetime) -> Station:
    """The station's row, created (unregistered) when it has none."""
    station = await session.get(Station, station_id)
    if station is None:
        station = Station(id=station_id, registered=False, created_at=now)
        session.add(station)
        await session.flush()
    return station


def _status_fields(report: ConnectorStatus) -> dict[str, Any]:
    """The columns a status report sets, on the current state and in the history alike."""
    return {
        "evse_id": report.where.evse_id,
        "connector_id": report.where.connector_id,
        "status": report.status,
        "error_code": report.error_code,
        "info": report.info,
        "vendor_id": report.vendor_id,
        "vendor_error_code": report.vendor_error_code,
    }


@dataclass(frozen=True)
class StationView:
    """A snapshot of a station's row and the current state of its EVSEs/connectors (detached from any session)."""

    station: Station
    connectors: list[Connector]

    @property
    def site_id(self) -> str:
        """The site the station belongs to (the default site unless assigned)."""
        return self.station.site_id or DEFAULT_SITE_ID


async def register_station(database: Database, station_id: str, *, password_hash: str | None = None) -> bool:
    """Register ``station_id`` (creating its row when it never connected), setting its password hash when one
    is given and keeping the stored one otherwise. Returns whether the row was created. The caller checks the
    id (:func:`~optivgi_csms.domain.station.is_valid_station_id`) and the password policy."""

    async def op(session: AsyncSession) -> bool:
        station = await session.get(Station, station_id)
        created = station is None
        if station is None:
            station = Station(id=station_id, created_at=utc_now())
            session.add(station)
        station.registered = True
        if password_hash is not None:
            station.password_hash = password_hash
        return created

    return await database.write(op)


async def unregister_station(database: Database, station_id: str) -> bool:
    """Unregister a station and forget its password; its sessions, meter values and history stay.
    Returns False when no registered station has this id."""

    async def op(session: AsyncSession) -> bool:
        station = await session.get(Station, station_id)
        if station is None or not station.registered:
            return False
        station.registered = False
        station.password_hash = None
        return True

    return await database.write(op)


async def set_password_hash(database: Database, station_id: str, password_hash: str | None) -> bool:
    """Set (or, with None, clear) a known station's Basic-auth password hash; False when the station is unknown."""

    async def op(session: AsyncSession) -> bool:
        station = await session.get(Station, station_id)
        if station is None:
            return False
        station.password_hash = password_hash
        return True

    return await database.write(op)


async def list_stations(
    database: Database,
    *,
    registered: bool | None = None,
    site_id: str | None = None,
    ids: Collection[str] | None = None,
    exclude_ids: Collection[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[StationView]:
    """Stations by id with their connectors, filtered by registration, site and id (the API passes the ids
    connected now to filter on connection, which only the registry knows)."""
    query = select(Station).order_by(Station.id).offset(offset)
    if registered is not None:
        query = query.where(Station.registered.is_(registered))
    if site_id == DEFAULT_SITE_ID:
        query = query.where((Station.site_id == site_id) | Station.site_id.is_(None))
    elif site_id is not None:
        query = query.where(Station.site_id == site_id)
    if ids is not None:
        query = query.where(Station.id.in_(list(ids)))
    if exclude_ids:
        query = query.where(Station.id.not_in(list(exclude_ids)))
    if limit is not None:
        query = query.limit(limit)
    async with database.read() as session:
        stations = list(await session.scalars(query))
        by_station: dict[str, list[Connector]] = {station.id: [] for station in stations}
        if stations:
            connectors = await session.scalars(
                select(Connector)
                .where(Connector.station_id.in_(list(by_station)))
                .order_by(Connector.station_id, Connector.evse_id, Connector.connector_id)
            )
            for connector in connectors:
                by_station[connector.station_id].append(connector)
    return [StationView(station, by_station[station.id]) for station in stations]


class UnknownStationError(LookupError):
    """No station with this id in the database (it never connected and was never registered)."""


class StationService:
    """What the CSMS records about a station's connection and the state it reports."""

    def __init__(self, database: Database, bus: EventBus, *, boot_policy: str, heartbeat_interval_s: int) -> None:
        self._database = database
        self._bus = bus
        self._boot_policy = boot_policy
        self._heartbeat_interval_s = heartbeat_interval_s

    async def authenticate(self, station_id: str, password: str) -> bool:
        """Whether ``password`` is the station's (security profile 1). Unknown stations fail."""
        async with self._database.read() as session:
            stored = await session.scalar(select(Station.password_hash).where(Station.id == station_id))
        if not stored:
            return False
        # scrypt is deliberately slow: keep it off the event loop.
        return await asyncio.to_thread(verify_password, password, stored)

    async def connected(self, station_id: str, ocpp_version: str) -> bool:
        """Record a new websocket connection (creating the station row on first contact).

        Returns whether the boot policy admits the station: always under ``any``; under
        ``registered`` only if an operator registered it.
        """

        async def op(session: AsyncSession) -> bool:
            now = utc_now()
            station = await ensure_station(session, station_id, now)
            station.ocpp_version = ocpp_version
            station.last_connected_at = now
            return self._admits(station)

        admitted = await self._database.write(op)
        self._bus.publish(StationConnected(station_id, admitted))
        return admitted

    def _admits(self, station: Station) -> bool:
        return self._boot_policy == "any" or station.registered

    async def disconnected(self, station_id: str) -> None:
        """Record the end of a connection."""

        async def op(session: AsyncSession) -> None:
            station = await session.get(Station, station_id)
            if station is not None:
                station.last_disconnected_at = utc_now()

        await self._database.write(op)
        self._bus.publish(StationDisconnected(station_id))

    async def boot(self, station_id: str, info: BootInfo) -> BootDecision:
        """Record what the station says about itself and decide whether it is accepted."""

        async def op(session: AsyncSession) -> BootDecision:
            now = utc_now()
            station = await ensure_station(session, station_id, now)
            status = BootStatus.ACCEPTED if self._admits(station) else BootStatus.REJECTED
            station.vendor = info.vendor
            station.model = info.model
            station.serial_number = info.serial_number
            station.charge_box_serial_number = info.charge_box_serial_number
            station.firmware_version = info.firmware_version
            station.iccid = info.iccid
            station.imsi = info.imsi
            station.meter_type = info.meter_type
            station.meter_serial_number = info.meter_serial_number
            station.boot_reason = info.reason
            station.boot_status = status.value
            station.last_boot_at = now
            return BootDecision(status=status, current_time=now, interval_s=self._heartbeat_interval_s)

        decision = await self._database.write(op)
        self._bus.publish(StationBooted(station_id, decision.status is BootStatus.ACCEPTED))
        return decision

    async def heartbeat(self, station_id: str) -> datetime:
        """Record a heartbeat; returns the CSMS time to send back.

        The answer needs no database: when the record is not committed within
        :data:`HEARTBEAT_WRITE_WAIT_S` (the database is down or locked) the station still gets the time, and
        the record follows when it can (or is given up, logged). A station whose heartbeats failed would
        count the CSMS as gone and reconnect, which helps nobody during an outage."""

        async def op(session: AsyncSession) -> datetime:
            now = utc_now()
            # One UPDATE, no object loaded: a tenth of a busy station's messages are heartbeats.
            await session.execute(update(Station).where(Station.id == station_id).values(last_heartbeat_at=now))
            return now

        write = asyncio.ensure_future(self._database.write(op))
        try:
            return await asyncio.wait_for(asyncio.shield(write), HEARTBEAT_WRITE_WAIT_S)
        except Exception as error:
            log.warning("heartbeat answered without its record", station_id=station_id, error=repr(error)[:200])
            write.add_done_callback(_quiet)
            return utc_now()

    async def status(self, station_id: str, report: ConnectorStatus) -> None:
        """Store a status report in the history and, unless it is older than what we hold, as current."""

        async def op(session: AsyncSession) -> bool:
            now = utc_now()
            where = report.where
            # Once per (station, EVSE, connector, status, error, station time): a report the station repeats
            # (no answer reached it) or the writer replays is history already.
            row = {
                "station_id": station_id,
                **_status_fields(report),
                "timestamp": report.timestamp,
                "received_at": now,
            }
            await insert_once(session, StatusNotification, [row])
            connector = await session.scalar(
                select(Connector).where(
                    Connector.station_id == station_id,
                    Connector.evse_id == where.evse_id,
                    Connector.connector_id == where.connector_id,
                )
            )
            if connector is None:
                connector = Connector(station_id=station_id)
                session.add(connector)
            elif report.timestamp and connector.status_at and report.timestamp < connector.status_at:
                return False  # a late, older report: history only
            for name, value in _status_fields(report).items():
                setattr(connector, name, value)
            connector.status_at = report.timestamp
            connector.updated_at = now
            return True

        if await self._database.write(op):
            where = report.where
            self._bus.publish(ConnectorStatusChanged(station_id, where.evse_id, where.connector_id, report.status))

    async def firmware_status(
        self,
        station_id: str,
        *,
        firmware: str | None = None,
        diagnostics: str | None = None,
        log_upload: str | None = None,
    ) -> None:
        """Record the last firmware-update, diagnostics- or log-upload status a station reported."""

        async def op(session: AsyncSession) -> None:
            station = await session.get(Station, station_id)
            if station is None:
                return
            if firmware is not None:
                station.firmware_status = firmware
            if diagnostics is not None:
                station.diagnostics_status = diagnostics
            if log_upload is not None:
                station.log_status = log_upload

        await self._database.write(op)

    # --- operator's view and registration (the API; the CLI calls the module functions) ----------

    async def exists(self, station_id: str) -> bool:
        """Whether the database knows the station (it connected once or was registered)."""
        async with self._database.read() as session:
            return await session.scalar(select(Station.id).where(Station.id == station_id)) is not None

    async def views(
        self,
        *,
        registered: bool | None = None,
        site_id: str | None = None,
        ids: Collection[str] | None = None,
        exclude_ids: Collection[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[StationView]:
        """Stations with their connectors (see :func:`list_stations`)."""
        return await list_stations(
            self._database,
            registered=registered,
            site_id=site_id,
            ids=ids,
            exclude_ids=exclude_ids,
            limit=limit,
            offset=offset,
        )

    async def get(self, station_id: str) -> StationView:
        """One station with its connectors; raises :class:`UnknownStationError`."""
        found = await list_stations(self._database, ids=[station_id])
        if not found:
            raise UnknownStationError(f"no station {station_id!r}")
        return found[0]

    async def recent_profiles(self, station_id: str, limit: int) -> list[ChargingProfileRecord]:
        """The last ``limit`` charging profiles sent to the station, newest first, with its answers."""
        async with self._database.read() as session:
            query = (
                select(ChargingProfileRecord)
                .where(ChargingProfileRecord.station_id == station_id)
                .order_by(ChargingProfileRecord.sent_at.desc(), ChargingProfileRecord.id.desc())
                .limit(limit)
            )
            return list(await session.scalars(query))

    async def register(self, station_id: str, *, password: str | None = None) -> bool:
        """Register a station, with a new password when one is given (raises
        :class:`~optivgi_csms.security.passwords.PasswordPolicyError` for one OCPP refuses). Returns whether the
        station's row was created."""
        password_hash = await self._hash(password) if password is not None else None
        return await register_station(self._database, station_id, password_hash=password_hash)

    async def unregister(self, station_id: str) -> bool:
        """Unregister a station (see :func:`unregister_station`); False when none is registered with this id."""
        return await unregister_station(self._database, station_id)

    async def set_password(self, station_id: str, password: str | None) -> bool:
        """Set a known station's password (None clears it); False when the station is unknown."""
        password_hash = await self._hash(password) if password is not None else None
        return await set_password_hash(self._database, station_id, password_hash)

    @staticmethod
    async def _hash(password: str) -> str:
        check_policy(password)
        # scrypt is deliberately slow: keep it off the event loop.
        return await asyncio.to_thread(hash_password, password)
