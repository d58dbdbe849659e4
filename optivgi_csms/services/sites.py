"""Sites: their limits, prices and defaults, and which stations belong to which."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.site import DEFAULT_SITE_ID, LimitStep, SiteConfig, steps_from_json
from optivgi_csms.domain.time import format_timestamp, utc_now
from optivgi_csms.services.events import EventBus, SiteChanged
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import SchedulingCycle, Site, Station

# Fields an operator may change (everything but the id).
EDITABLE = frozenset(field.name for field in dataclasses.fields(SiteConfig)) - {"id"}


class UnknownSiteError(LookupError):
    """No site with this id."""


class SiteExistsError(ValueError):
    """Creating a site whose id is taken."""


def config_of(row: Site) -> SiteConfig:
    """The domain value of a site row."""
    return SiteConfig(
        id=row.id,
        name=row.name,
        limit_kw=row.limit_kw,
        limit_schedule=steps_from_json(row.limit_schedule, "limit_kw"),
        phase_limits_a={phase: float(value) for phase, value in (row.phase_limits_a or {}).items()},
        prices=steps_from_json(row.prices, "price"),
        voltage_v=row.voltage_v,
        min_current_a=row.min_current_a,
        default_dwell_s=row.default_dwell_s,
        default_energy_kwh=row.default_energy_kwh,
        algorithm=row.algorithm,
        resolution_s=row.resolution_s,
        horizon_s=row.horizon_s,
    )


def _store(row: Site, config: SiteConfig) -> None:
    row.name = config.name
    row.limit_kw = config.limit_kw
    row.limit_schedule = [_step(step, "limit_kw") for step in config.limit_schedule]
    row.phase_limits_a = dict(config.phase_limits_a)
    row.prices = [_step(step, "price") for step in config.prices]
    row.voltage_v = config.voltage_v
    row.min_current_a = config.min_current_a
    row.default_dwell_s = config.default_dwell_s
    row.default_energy_kwh = config.default_energy_kwh
    row.algorithm = config.algorithm
    row.resolution_s = config.resolution_s
    row.horizon_s = config.horizon_s
    row.updated_at = utc_now()


def _step(step: LimitStep, key: str) -> dict[str, Any]:
    return {"start": format_timestamp(step.start), key: step.value}


class SiteService:
    """Reads and changes sites; every change is published so the next scheduling cycle uses it."""

    def __init__(self, database: Database, bus: EventBus) -> None:
        self._database = database
        self._bus = bus

    async def get(self, site_id: str) -> SiteConfig:
        """A site's configuration; raises :class:`UnknownSiteError`."""
        async with self._database.read() as session:
            row = await session.get(Site, site_id)
        if row is None:
            raise UnknownSiteError(f"no site {site_id!r}")
        return config_of(row)

    async def all(self) -> list[SiteConfig]:
        """Every site."""
        async with self._database.read() as session:
            rows = await session.scalars(select(Site).order_by(Site.id))
            return [config_of(row) for row in rows]

    async def save(self, config: SiteConfig) -> SiteConfig:
        """Create or replace a site."""

        async def op(session: AsyncSession) -> None:
            row = await session.get(Site, config.id)
            if row is None:
                now = utc_now()
                row = Site(id=config.id, created_at=now, updated_at=now)
                session.add(row)
            _store(row, config)

        await self._database.write(op)
        self._bus.publish(SiteChanged(config.id))
        return config

    async def update(self, site_id: str, **changes: Any) -> SiteConfig:
        """Change some of a site's fields (validated as a whole); raises ``ValueError`` for a bad value."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValueError(f"unknown site field {sorted(unknown)[0]!r}")
        current = await self.get(site_id)
        return await self.save(dataclasses.replace(current, **changes))

    async def create(self, config: SiteConfig) -> SiteConfig:
        """Add a new site; raises :class:`SiteExistsError` when its id is taken."""

        async def op(session: AsyncSession) -> bool:
            if await session.get(Site, config.id) is not None:
                return False
            now = utc_now()
            row = Site(id=config.id, created_at=now, updated_at=now)
            _store(row, config)
            session.add(row)
            return True

        if not await self._database.write(op):
            raise SiteExistsError(f"site {config.id!r} exists already")
        self._bus.publish(SiteChanged(config.id))
        return config

    async def cycles(self, site_id: str, *, limit: int, offset: int = 0) -> tuple[list[SchedulingCycle], int]:
        """The site's recorded scheduling cycles, newest first, and how many there are; raises
        :class:`UnknownSiteError`."""
        await self.get(site_id)
        where = SchedulingCycle.site_id == site_id
        async with self._database.read() as session:
            total = await session.scalar(select(func.count()).select_from(SchedulingCycle).where(where))
            rows = await session.scalars(
                select(SchedulingCycle)
                .where(where)
                .order_by(SchedulingCycle.started_at.desc(), SchedulingCycle.id.desc())
                .offset(offset)
                .limit(limit)
            )
            return list(rows), int(total or 0)

    async def site_of(self, station_id: str) -> str:
        """The site a station belongs to (the default site unless assigned)."""
        async with self._database.read() as session:
            site_id = await session.scalar(select(Station.site_id).where(Station.id == station_id))
        return site_id or DEFAULT_SITE_ID

    async def stations_of(self, site_id: str) -> list[str]:
        """The ids of the stations that belong to a site."""
        async with self._database.read() as session:
            query = select(Station.id)
            if site_id == DEFAULT_SITE_ID:
                query = query.where((Station.site_id == site_id) | Station.site_id.is_(None))
            else:
                query = query.where(Station.site_id == site_id)
            return list(await session.scalars(query.order_by(Station.id)))

    async def assign(self, station_id: str, site_id: str) -> None:
        """Move a station to a site (both sites plan again)."""
        await self.get(site_id)
        previous = await self.site_of(station_id)

        async def op(session: AsyncSession) -> bool:
            station = await session.get(Station, station_id)
            if station is None:
                return False
            station.site_id = None if site_id == DEFAULT_SITE_ID else site_id
            return True

        if not await self._database.write(op):
            raise LookupError(f"no station {station_id!r}")
        for changed in {previous, site_id}:
            self._bus.publish(SiteChanged(changed))
