"""What one cycle reads from the store about a site: its stations, open sessions (with what their meters
and EVs said) and reservations. A handful of queries per site and cycle, never one per EV."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.meter import DEFAULT_MEASURAND
from optivgi_csms.domain.reservation import ACTIVE_STATUSES
from optivgi_csms.domain.site import DEFAULT_SITE_ID, SiteConfig
from optivgi_csms.smart_charging.capabilities import Capabilities
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import (
    ChargingNeedsRecord,
    Connector,
    MeterValue,
    Reservation,
    Station,
    Transaction,
    TransactionEventRecord,
)

#: Needs sent a little before the session is recorded (2.0.1 events may cross) still belong to it.
NEEDS_LEAD = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class StationInfo:
    """A station of the site as smart charging sees it."""

    id: str
    capabilities: Capabilities
    note: str | None
    #: Connected and set up (booted, capabilities read) on its current connection.
    connected: bool
    evse_count: int

    @property
    def capabilities_read(self) -> bool:
        """Whether its capabilities were ever asked for (a read that failed counts: defaults apply)."""
        return self.capabilities.read_at is not None

    @property
    def controllable(self) -> bool:
        """Whether profiles can be sent to it now."""
        return self.connected and self.capabilities_read and self.capabilities.controllable


#: ISO 15118 requestedEnergyTransfer: the phases of an AC transfer.
AC_PHASES = {"AC_single_phase": 1, "AC_two_phase": 2, "AC_three_phase": 3}


@dataclass(frozen=True, slots=True)
class Needs:
    """The latest ISO 15118 charging needs of a session (NotifyEVChargingNeeds)."""

    received_at: datetime
    departure_time: datetime | None
    energy_amount_wh: float | None
    ev_min_current_a: float | None
    ev_max_current_a: float | None
    ev_max_power_w: float | None
    max_schedule_tuples: int | None
    dc: bool
    #: The session's energy register when the needs arrived (the amount is what was wanted then).
    register_wh: float | None = None
    #: The AC phases the EV said it charges on (requestedEnergyTransfer), if it said.
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """An open session and everything known about what it needs and can take."""

    transaction_id: int
    station_id: str
    evse_id: int
    connector_id: int
    started_at: datetime
    meter_start_wh: float | None
    #: The highest energy register reading so far (Wh), if any.
    register_wh: float | None
    departure_at: datetime | None
    energy_target_kwh: float | None
    uncontrolled_reason: str | None
    phases_used: int | None = None
    cable_max_current_a: float | None = None
    needs: Needs | None = None

    @property
    def delivered_kwh(self) -> float:
        """Energy delivered so far, from the meter (0 before any reading)."""
        if self.register_wh is None or self.meter_start_wh is None:
            return 0.0
        return max(self.register_wh - self.meter_start_wh, 0.0) / 1000.0


@dataclass(frozen=True, slots=True)
class ReservationInfo:
    """A reservation holding (or about to hold) an EVSE for an EV that has not arrived yet."""

    id: int
    station_id: str
    evse_id: int
    starts_at: datetime | None
    expires_at: datetime
    energy_kwh: float | None


@dataclass(frozen=True)
class SiteSnapshot:
    """Everything one cycle knows about a site, read at ``read_at``."""

    config: SiteConfig
    read_at: datetime
    stations: dict[str, StationInfo] = field(default_factory=dict)
    sessions: list[SessionInfo] = field(default_factory=list)
    reservations: list[ReservationInfo] = field(default_factory=list)

    @property
    def evse_count(self) -> int:
        """EVSEs of every station of the site (each station counts at least one)."""
        return sum(station.evse_count for station in self.stations.values())


def _in_site(query: Select, site_id: str) -> Select:
    if site_id == DEFAULT_SITE_ID:
        return query.where(or_(Station.site_id == site_id, Station.site_id.is_(None)))
    return query.where(Station.site_id == site_id)


def _register_wh() -> object:
    """The energy register of a meter value row in Wh (kWh rows scaled)."""
    return case(
        (func.lower(MeterValue.unit) == "kwh", MeterValue.value_numeric * 1000.0), else_=MeterValue.value_numeric
    )


def _register_rows(transaction_ids: Iterable[int]) -> Select:
    """The highest energy register reading (Wh) of each session: rows of (transaction id, Wh)."""
    return (
        select(MeterValue.transaction_id, func.max(_register_wh()))
        .where(
            MeterValue.transaction_id.in_(list(transaction_ids)),
            MeterValue.measurand == DEFAULT_MEASURAND,
            MeterValue.phase.is_(None),
            or_(MeterValue.unit.is_(None), func.lower(MeterValue.unit).in_(("wh", "kwh"))),
        )
        .group_by(MeterValue.transaction_id)
    )


async def load_snapshot(
    database: Database,
    config: SiteConfig,
    now: datetime,
    horizon: timedelta,
    is_connected: Callable[[str], bool],
) -> SiteSnapshot:
    """Read a site's stations, open sessions and reservations in the horizon."""
    async with database.read() as session:
        stations = await _stations(session, config.id, is_connected)
        ids = list(stations)
        sessions = await _sessions(session, ids) if ids else []
        reservations = await _reservations(session, ids, now, horizon) if ids else []
    return SiteSnapshot(config=config, read_at=now, stations=stations, sessions=sessions, reservations=reservations)


async def _stations(session: AsyncSession, site_id: str, is_connected: Callable[[str], bool]) -> dict[str, StationInfo]:
    rows = (
        await session.execute(
            _in_site(select(Station.id, Station.capabilities, Station.smart_charging_note), site_id).order_by(
                Station.id
            )
        )
    ).all()
    ids = [row.id for row in rows]
    counts: dict[str, int] = {}
    if ids:
        counted = await session.execute(
            select(Connector.station_id, func.count(func.distinct(Connector.evse_id)))
            .where(Connector.station_id.in_(ids), Connector.evse_id > 0)
            .group_by(Connector.station_id)
        )
        counts = {station_id: count for station_id, count in counted.all()}
    stations = {}
    for row in rows:
        capabilities = Capabilities.from_dict(row.capabilities)
        evse_count = max(capabilities.evse_count or 0, counts.get(row.id, 0), 1)
        stations[row.id] = StationInfo(row.id, capabilities, row.smart_charging_note, is_connected(row.id), evse_count)
    return stations


async def _sessions(session: AsyncSession, station_ids: list[str]) -> list[SessionInfo]:
    transactions = list(
        await session.scalars(
            select(Transaction)
            .where(Transaction.station_id.in_(station_ids), Transaction.stopped_at.is_(None), Transaction.evse_id > 0)
            .order_by(Transaction.id)
        )
    )
    if not transactions:
        return []
    ids = [transaction.id for transaction in transactions]
    registers = dict((await session.execute(_register_rows(ids))).all())
    phases: dict[int, int] = {}
    cables: dict[int, float] = {}
    events = await session.execute(
        select(
            TransactionEventRecord.transaction_id,
            TransactionEventRecord.number_of_phases_used,
            TransactionEventRecord.cable_max_current_a,
        )
        .where(
            TransactionEventRecord.transaction_id.in_(ids),
            or_(
                TransactionEventRecord.number_of_phases_used.is_not(None),
                TransactionEventRecord.cable_max_current_a.is_not(None),
            ),
        )
        .order_by(TransactionEventRecord.seq_no)
    )
    for transaction_id, phases_used, cable in events.all():  # the newest report of each wins
        if phases_used:
            phases[transaction_id] = phases_used
        if cable:
            cables[transaction_id] = float(cable)
    needs = await _needs(session, transactions)
    return [
        SessionInfo(
            transaction_id=t.id,
            station_id=t.station_id,
            evse_id=t.evse_id,
            connector_id=t.connector_id,
            started_at=t.started_at,
            meter_start_wh=t.meter_start_wh,
            register_wh=registers.get(t.id),
            departure_at=t.departure_at,
            energy_target_kwh=t.energy_target_kwh,
            uncontrolled_reason=t.uncontrolled_reason,
            phases_used=phases.get(t.id),
            cable_max_current_a=cables.get(t.id),
            needs=needs.get(t.id),
        )
        for t in transactions
    ]


async def _needs(session: AsyncSession, transactions: list[Transaction]) -> dict[int, Needs]:
    """The newest needs of each session: recorded against it, or on its EVSE just before it was known."""
    by_place = {(t.station_id, t.evse_id): t for t in transactions}
    earliest = min(t.started_at for t in transactions) - NEEDS_LEAD
    rows = await session.scalars(
        select(ChargingNeedsRecord)
        .where(
            or_(
                ChargingNeedsRecord.transaction_id.in_([t.id for t in transactions]),
                (ChargingNeedsRecord.transaction_id.is_(None))
                & ChargingNeedsRecord.station_id.in_({t.station_id for t in transactions})
                & (ChargingNeedsRecord.received_at >= earliest),
            )
        )
        .order_by(ChargingNeedsRecord.received_at)
    )
    latest: dict[int, ChargingNeedsRecord] = {}
    for record in rows:
        owner = by_place.get((record.station_id, record.evse_id))
        if record.transaction_id is not None:
            latest[record.transaction_id] = record
        elif owner is not None and record.received_at >= owner.started_at - NEEDS_LEAD:
            latest[owner.id] = record
    found = {}
    for transaction_id, record in latest.items():
        at_needs = (
            await session.execute(_register_rows([transaction_id]).where(MeterValue.timestamp <= record.received_at))
        ).first()
        raw = record.raw or {}
        found[transaction_id] = Needs(
            received_at=record.received_at,
            departure_time=record.departure_time,
            energy_amount_wh=record.energy_amount_wh,
            ev_min_current_a=record.ev_min_current_a,
            ev_max_current_a=record.ev_max_current_a,
            ev_max_power_w=record.ev_max_power_w,
            max_schedule_tuples=record.max_schedule_tuples,
            dc="dcChargingParameters" in raw or record.requested_energy_transfer.upper().startswith("DC"),
            register_wh=at_needs[1] if at_needs is not None else None,
            phases=AC_PHASES.get(record.requested_energy_transfer),
        )
    return found


async def _reservations(
    session: AsyncSession, station_ids: list[str], now: datetime, horizon: timedelta
) -> list[ReservationInfo]:
    rows = await session.scalars(
        select(Reservation)
        .where(
            Reservation.station_id.in_(station_ids),
            Reservation.status.in_([status.value for status in ACTIVE_STATUSES]),
            Reservation.transaction_id.is_(None),
            Reservation.expires_at > now,
            or_(Reservation.starts_at.is_(None), Reservation.starts_at < now + horizon),
        )
        .order_by(Reservation.id)
    )
    return [ReservationInfo(r.id, r.station_id, r.evse_id, r.starts_at, r.expires_at, r.energy_kwh) for r in rows]
