"""What smart charging writes to the store: capabilities, why a station or session is not controlled, and
one row per cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.smart_charging.capabilities import Capabilities
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import SchedulingCycle, Station, Transaction

NOTE_LENGTH = 255


async def save_capabilities(database: Database, station_id: str, capabilities: Capabilities) -> None:
    """Store a station's capabilities; a station whose smart charging is off gets a note saying so, and
    one that can be controlled loses a note about that."""

    async def op(session: AsyncSession) -> None:
        station = await session.get(Station, station_id)
        if station is None:
            return
        station.capabilities = capabilities.to_dict()
        if not capabilities.controllable:
            station.smart_charging_note = "smart charging is off on the station"
        elif station.smart_charging_note == "smart charging is off on the station":
            station.smart_charging_note = None

    await database.write(op)


async def set_station_note(database: Database, station_id: str, note: str | None) -> None:
    """Record why smart charging does not control a station (None: it does)."""

    async def op(session: AsyncSession) -> None:
        station = await session.get(Station, station_id)
        if station is not None:
            station.smart_charging_note = note[:NOTE_LENGTH] if note else None

    await database.write(op)


async def mark_uncontrolled(database: Database, station_id: str, transaction_id: int, reason: str) -> None:
    """A session's profiles are refused: it charges unsteered from now on, and its station says why."""

    async def op(session: AsyncSession) -> None:
        transaction = await session.get(Transaction, transaction_id)
        if transaction is not None:
            transaction.uncontrolled_reason = reason[:NOTE_LENGTH]
        station = await session.get(Station, station_id)
        if station is not None:
            station.smart_charging_note = f"transaction {transaction_id}: {reason}"[:NOTE_LENGTH]

    await database.write(op)


@dataclass
class CycleRow:
    """One ``scheduling_cycles`` row."""

    site_id: str
    started_at: datetime
    trigger: dict[str, Any]
    algorithm: str
    status: str
    solve_s: float | None = None
    cycle_s: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    evs: list[Any] = field(default_factory=list)
    error: str | None = None


async def write_cycle(database: Database, row: CycleRow) -> int:
    """Store a cycle; returns its id."""

    async def op(session: AsyncSession) -> int:
        record = SchedulingCycle(
            site_id=row.site_id,
            started_at=row.started_at,
            trigger=row.trigger,
            algorithm=row.algorithm[:32],
            status=row.status[:16],
            solve_s=row.solve_s,
            cycle_s=row.cycle_s,
            summary=row.summary,
            evs=row.evs,
            error=row.error,
        )
        session.add(record)
        await session.flush()
        return record.id

    return await database.write(op)


async def recent_cycles(database: Database, site_id: str, limit: int = 20) -> list[CycleRow]:
    """The site's latest cycles, newest first."""
    async with database.read() as session:
        rows = await session.scalars(
            select(SchedulingCycle)
            .where(SchedulingCycle.site_id == site_id)
            .order_by(SchedulingCycle.started_at.desc(), SchedulingCycle.id.desc())
            .limit(limit)
        )
        return [
            CycleRow(
                site_id=r.site_id,
                started_at=r.started_at,
                trigger=r.trigger,
                algorithm=r.algorithm,
                status=r.status,
                solve_s=r.solve_s,
                cycle_s=r.cycle_s,
                summary=r.summary,
                evs=r.evs,
                error=r.error,
            )
            for r in rows
        ]
