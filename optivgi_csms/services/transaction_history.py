"""Reading sessions back: lists with filters, one session with its energy so far, its meter samples, and
the departure and energy target the scheduler works to (with where each came from).

The target follows the scheduler's own order of trust (:mod:`optivgi_csms.smart_charging.evs`): the EV's
ISO 15118 needs (``ev``), then what was set for the session through the API (``session``), then the
site's defaults (``site``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.meter import DEFAULT_MEASURAND
from optivgi_csms.domain.site import SiteConfig
from optivgi_csms.domain.time import utc_now
from optivgi_csms.smart_charging.snapshot import NEEDS_LEAD
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import ChargingNeedsRecord, MeterValue, Transaction

POWER_MEASURAND = "Power.Active.Import"
#: What a session's detail shows of its meter: the energy register and the power drawn.
CHART_MEASURANDS = (DEFAULT_MEASURAND, POWER_MEASURAND)


class TransactionState(StrEnum):
    """Whether a session is still going."""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    """Which sessions to list: all given conditions hold (``since``/``until`` bound the start time)."""

    station_id: str | None = None
    id_tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    state: TransactionState | None = None


@dataclass(frozen=True, slots=True)
class TransactionSummary:
    """A session as stored, with the energy its meter shows delivered so far (None before any reading)."""

    row: Transaction
    energy_wh: float | None


@dataclass(frozen=True, slots=True)
class NeedsInForce:
    """When the session is expected to leave and how much energy it wants, and where each came from."""

    departure_at: datetime
    departure_source: str
    energy_kwh: float
    energy_source: str
    #: The target less what was delivered since it was given (what the scheduler still plans), kWh.
    energy_remaining_kwh: float
    #: The EV's own needs, when it told them (ISO 15118), received at this time.
    ev_needs_at: datetime | None = None


def _register_wh() -> ColumnElement[float]:
    """A meter row's energy register in Wh (kWh rows scaled)."""
    return case(
        (func.lower(MeterValue.unit) == "kwh", MeterValue.value_numeric * 1000.0), else_=MeterValue.value_numeric
    )


def _registers(transaction_ids: Sequence[int], before: datetime | None = None) -> Select:
    """Rows of (transaction id, highest energy register reading in Wh)."""
    query = (
        select(MeterValue.transaction_id, func.max(_register_wh()))
        .where(
            MeterValue.transaction_id.in_(list(transaction_ids)),
            MeterValue.measurand == DEFAULT_MEASURAND,
            MeterValue.phase.is_(None),
            or_(MeterValue.unit.is_(None), func.lower(MeterValue.unit).in_(("wh", "kwh"))),
        )
        .group_by(MeterValue.transaction_id)
    )
    if before is not None:
        query = query.where(MeterValue.timestamp <= before)
    return query


def _energy_wh(row: Transaction, register_wh: float | None) -> float | None:
    end = row.meter_stop_wh if row.meter_stop_wh is not None else register_wh
    if end is None or row.meter_start_wh is None:
        return None
    return max(end - row.meter_start_wh, 0.0)


async def _summaries(session: AsyncSession, rows: list[Transaction]) -> list[TransactionSummary]:
    # Only sessions without a final reading need their highest register: one grouped query for the page.
    pending = [row.id for row in rows if row.meter_stop_wh is None]
    registers = dict((await session.execute(_registers(pending))).all()) if pending else {}
    return [TransactionSummary(row, _energy_wh(row, registers.get(row.id))) for row in rows]


def _conditions(where: TransactionFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.station_id is not None:
        conditions.append(Transaction.station_id == where.station_id)
    if where.id_tag is not None:
        conditions.append(Transaction.id_tag == where.id_tag)
    if where.since is not None:
        conditions.append(Transaction.started_at >= where.since)
    if where.until is not None:
        conditions.append(Transaction.started_at < where.until)
    if where.state is TransactionState.OPEN:
        conditions.append(Transaction.stopped_at.is_(None))
    elif where.state is TransactionState.CLOSED:
        conditions.append(Transaction.stopped_at.is_not(None))
    return conditions


async def _list(
    session: AsyncSession, where: TransactionFilter, *, limit: int, offset: int
) -> tuple[list[TransactionSummary], int]:
    """Matching sessions, newest start first, and how many match in all."""
    conditions = _conditions(where)
    total = await session.scalar(select(func.count()).select_from(Transaction).where(*conditions))
    rows = list(
        await session.scalars(
            select(Transaction)
            .where(*conditions)
            .order_by(Transaction.started_at.desc(), Transaction.id.desc())
            .offset(offset)
            .limit(limit)
        )
    )
    return await _summaries(session, rows), int(total or 0)


async def _get(session: AsyncSession, transaction_id: int) -> TransactionSummary | None:
    """One session, or None."""
    row = await session.get(Transaction, transaction_id)
    if row is None:
        return None
    (summary,) = await _summaries(session, [row])
    return summary


async def _samples(
    session: AsyncSession,
    transaction_id: int,
    *,
    measurands: Sequence[str] | None,
    limit: int,
    offset: int = 0,
    newest: bool = False,
) -> tuple[list[MeterValue], int]:
    """A session's samples (of ``measurands``; all when None) in time order, and how many there are.

    ``newest``: the last ``limit`` samples (still returned oldest first), for a chart of a running session.
    """
    conditions = [MeterValue.transaction_id == transaction_id]
    if measurands is not None:
        conditions.append(MeterValue.measurand.in_(list(measurands)))
    total = await session.scalar(select(func.count()).select_from(MeterValue).where(*conditions))
    order = (MeterValue.timestamp.desc(), MeterValue.id.desc()) if newest else (MeterValue.timestamp, MeterValue.id)
    rows = list(
        await session.scalars(select(MeterValue).where(*conditions).order_by(*order).offset(offset).limit(limit))
    )
    if newest:
        rows.reverse()
    return rows, int(total or 0)


async def _latest_ev_needs(session: AsyncSession, row: Transaction) -> ChargingNeedsRecord | None:
    """The EV's newest ISO 15118 needs for the session: recorded against it, or on its EVSE from a little
    before it began (2.0.1 messages may cross) while it lasted. Found as the scheduler finds them."""
    end = row.stopped_at or utc_now()
    return await session.scalar(
        select(ChargingNeedsRecord)
        .where(
            or_(
                ChargingNeedsRecord.transaction_id == row.id,
                ChargingNeedsRecord.transaction_id.is_(None)
                & (ChargingNeedsRecord.station_id == row.station_id)
                & (ChargingNeedsRecord.evse_id == row.evse_id)
                & (ChargingNeedsRecord.received_at >= row.started_at - NEEDS_LEAD)
                & (ChargingNeedsRecord.received_at <= end),
            )
        )
        .order_by(ChargingNeedsRecord.received_at.desc(), ChargingNeedsRecord.id.desc())
        .limit(1)
    )


async def _needs_in_force(
    session: AsyncSession, summary: TransactionSummary, site: SiteConfig, default_dwell: timedelta
) -> NeedsInForce:
    """The departure and energy target the scheduler plans ``summary``'s session with."""
    row = summary.row
    needs = await _latest_ev_needs(session, row)
    delivered_kwh = (summary.energy_wh or 0.0) / 1000.0

    if needs is not None and needs.departure_time is not None:
        departure, departure_source = needs.departure_time, "ev"
    elif row.departure_at is not None:
        departure, departure_source = row.departure_at, "session"
    else:
        departure, departure_source = row.started_at + default_dwell, "site"

    if needs is not None and needs.energy_amount_wh is not None:
        energy, energy_source = needs.energy_amount_wh / 1000.0, "ev"
        # The EV asked for this much when it spoke: what was delivered since then counts against it.
        at_needs = (await session.execute(_registers([row.id], before=needs.received_at))).first()
        start = at_needs[1] if at_needs is not None and at_needs[1] is not None else row.meter_start_wh
        end = row.meter_stop_wh
        if end is None:
            now = (await session.execute(_registers([row.id]))).first()
            end = now[1] if now is not None else None
        since = max((end or 0.0) - (start or end or 0.0), 0.0) / 1000.0
        remaining = max(energy - since, 0.0)
    elif row.energy_target_kwh is not None:
        energy, energy_source = row.energy_target_kwh, "session"
        remaining = max(energy - delivered_kwh, 0.0)
    else:
        energy, energy_source = site.default_energy_kwh, "site"
        remaining = max(energy - delivered_kwh, 0.0)
    return NeedsInForce(
        departure_at=departure,
        departure_source=departure_source,
        energy_kwh=energy,
        energy_source=energy_source,
        energy_remaining_kwh=remaining,
        ev_needs_at=needs.received_at if needs is not None else None,
    )


class TransactionHistory:
    """Reads sessions, their meter samples and the needs they are planned with (never writes)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def list(self, where: TransactionFilter, *, limit: int, offset: int) -> tuple[list[TransactionSummary], int]:
        """Matching sessions, newest start first, and how many match in all."""
        async with self._database.read() as session:
            return await _list(session, where, limit=limit, offset=offset)

    async def get(self, transaction_id: int) -> TransactionSummary | None:
        """One session, or None."""
        async with self._database.read() as session:
            return await _get(session, transaction_id)

    async def samples(
        self,
        transaction_id: int,
        *,
        measurands: Sequence[str] | None,
        limit: int,
        offset: int = 0,
        newest: bool = False,
    ) -> tuple[list[MeterValue], int]:
        """A session's meter samples in time order (the last ``limit`` when ``newest``), and their count."""
        async with self._database.read() as session:
            return await _samples(
                session, transaction_id, measurands=measurands, limit=limit, offset=offset, newest=newest
            )

    async def needs_in_force(
        self, summary: TransactionSummary, site: SiteConfig, default_dwell: timedelta
    ) -> NeedsInForce:
        """The departure and energy target the scheduler plans the session with; ``default_dwell`` is the
        site's default stay as wall time (the site's ``default_dwell_s`` under the server's time scale)."""
        async with self._database.read() as session:
            return await _needs_in_force(session, summary, site, default_dwell)
