"""Reservations: the CSMS allocates the id, the station answers, the row follows the answer.

Reservations for a time window (made through
:class:`~optivgi_csms.services.reservation_manager.ReservationManager`) are stored ``Scheduled`` first
and move on by compare-and-set (:meth:`ReservationService.transition`), so the timer that sends them,
an operator cancelling them and the expiry sweep never overwrite each other's decisions.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.reservation import ACTIVE_STATUSES, ReservationStatus
from optivgi_csms.domain.time import utc_now
from optivgi_csms.services.events import EventBus, ReservationChanged
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import Reservation, Station

_ACTIVE = sorted(str(status) for status in ACTIVE_STATUSES)


class UnknownReservationError(LookupError):
    """No reservation with this id."""


class UnknownStationError(LookupError):
    """No station with this id: it has never connected and no operator registered it."""


class ReservationConflictError(ValueError):
    """The EVSE is already reserved for part of the window."""


async def _insert(session: AsyncSession, status: ReservationStatus, **fields: object) -> int:
    """Add a reservation row in ``status``; returns its id (allocated by the database)."""
    now = utc_now()
    reservation = Reservation(**fields, status=status.value, created_at=now, updated_at=now)
    session.add(reservation)
    await session.flush()
    return reservation.id


class ReservationService:
    """Creates reservation rows and keeps their status current."""

    def __init__(self, database: Database, bus: EventBus) -> None:
        self._database = database
        self._bus = bus

    async def create(
        self, station_id: str, evse_id: int, id_tag: str, expires_at: datetime, parent_id_tag: str | None = None
    ) -> int:
        """A new reservation in state ``Requested``; returns its id (the ``reservationId`` to send)."""

        async def op(session: AsyncSession) -> int:
            return await _insert(
                session,
                ReservationStatus.REQUESTED,
                station_id=station_id,
                evse_id=evse_id,
                id_tag=id_tag,
                parent_id_tag=parent_id_tag,
                expires_at=expires_at,
            )

        return await self._database.write(op)

    async def set_status(self, reservation_id: int, status: ReservationStatus | str) -> None:
        """Move a reservation to ``status``."""

        async def op(session: AsyncSession) -> str | None:
            reservation = await session.get(Reservation, reservation_id)
            if reservation is None:
                return None
            reservation.status = str(status)[:16]
            reservation.updated_at = utc_now()
            return reservation.station_id

        station_id = await self._database.write(op)
        if station_id is not None:
            self._bus.publish(ReservationChanged(station_id, reservation_id, str(status)))

    async def station_update(self, station_id: str, reservation_id: int, status: str) -> bool:
        """Move one of ``station_id``'s reservations to ``status`` (a 2.0.1 ReservationStatusUpdate, or a
        cancellation the station accepted).

        Returns False when the station has no such reservation: another station's row is never touched.
        """

        async def op(session: AsyncSession) -> bool:
            reservation = await session.get(Reservation, reservation_id)
            if reservation is None or reservation.station_id != station_id:
                return False
            reservation.status = status[:16]
            reservation.updated_at = utc_now()
            return True

        updated = await self._database.write(op)
        if updated:
            self._bus.publish(ReservationChanged(station_id, reservation_id, status))
        return updated

    async def get(self, reservation_id: int) -> Reservation | None:
        """The reservation's row as it is now (detached: read its fields, do not change them)."""
        async with self._database.read() as session:
            return await session.get(Reservation, reservation_id)

    async def list(
        self,
        *,
        station_id: str | None = None,
        status: ReservationStatus | None = None,
        active: bool | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Reservation], int]:
        """Reservations, newest first, and how many match in all. ``active``: still holding (or about to
        hold) a place — an active status, unused, and not past its end — or (False) over."""
        now = utc_now()
        holding = and_(
            Reservation.status.in_(_ACTIVE), Reservation.transaction_id.is_(None), Reservation.expires_at > now
        )
        conditions = []
        if station_id is not None:
            conditions.append(Reservation.station_id == station_id)
        if status is not None:
            conditions.append(Reservation.status == status.value)
        if active is not None:
            conditions.append(holding if active else ~holding)
        async with self._database.read() as session:
            total = await session.scalar(select(func.count()).select_from(Reservation).where(*conditions))
            rows = await session.scalars(
                select(Reservation).where(*conditions).order_by(Reservation.id.desc()).offset(offset).limit(limit)
            )
            return list(rows), int(total or 0)

    async def station_version(self, station_id: str) -> str | None:
        """The OCPP version the station last connected with (None: never connected yet); raises
        :class:`UnknownStationError` when the CSMS does not know the station."""
        async with self._database.read() as session:
            station = await session.get(Station, station_id)
        if station is None:
            raise UnknownStationError(f"no station {station_id!r}")
        return station.ocpp_version

    async def create_window(
        self,
        station_id: str,
        evse_id: int,
        id_tag: str,
        starts_at: datetime,
        expires_at: datetime,
        *,
        energy_kwh: float | None = None,
        parent_id_tag: str | None = None,
    ) -> int:
        """A reservation of ``evse_id`` for ``[starts_at, expires_at)``, stored ``Scheduled`` (nothing is
        sent yet); returns its id. Raises :class:`ReservationConflictError` when an active reservation of
        the same EVSE overlaps the window (a station holds one reservation per EVSE: the second ReserveNow
        would be answered Occupied, and the scheduler would plan two EVs for one place meanwhile)."""

        async def op(session: AsyncSession) -> int | None:
            if evse_id > 0 and await _overlapping(session, station_id, evse_id, starts_at, expires_at):
                return None
            return await _insert(
                session,
                ReservationStatus.SCHEDULED,
                station_id=station_id,
                evse_id=evse_id,
                id_tag=id_tag,
                parent_id_tag=parent_id_tag,
                starts_at=starts_at,
                expires_at=expires_at,
                energy_kwh=energy_kwh,
            )

        # The check and the insert run in one write: two overlapping requests cannot both pass.
        reservation_id = await self._database.write(op)
        if reservation_id is None:
            raise ReservationConflictError(f"EVSE {evse_id} of {station_id} is already reserved in that window")
        self._bus.publish(ReservationChanged(station_id, reservation_id, ReservationStatus.SCHEDULED.value))
        return reservation_id

    async def transition(
        self, reservation_id: int, expected: Collection[ReservationStatus], status: ReservationStatus
    ) -> bool:
        """Move the reservation to ``status`` only if it is in one of the ``expected`` statuses (and unused);
        returns whether it moved. Published when it did."""
        allowed = {str(value) for value in expected}

        async def op(session: AsyncSession) -> str | None:
            reservation = await session.get(Reservation, reservation_id)
            if reservation is None or reservation.status not in allowed or reservation.transaction_id is not None:
                return None
            reservation.status = status.value
            reservation.updated_at = utc_now()
            return reservation.station_id

        station_id = await self._database.write(op)
        if station_id is None:
            return False
        self._bus.publish(ReservationChanged(station_id, reservation_id, status.value))
        return True

    async def due(self, now: datetime) -> list[Reservation]:
        """Window reservations to send now: ``Scheduled`` ones whose window is open, earliest first."""
        async with self._database.read() as session:
            rows = await session.scalars(
                select(Reservation)
                .where(
                    Reservation.status == ReservationStatus.SCHEDULED.value,
                    Reservation.starts_at.is_not(None),
                    Reservation.starts_at <= now,
                    Reservation.expires_at > now,
                    Reservation.transaction_id.is_(None),
                )
                .order_by(Reservation.starts_at, Reservation.id)
            )
            return list(rows)

    async def requeue_unanswered(self, now: datetime) -> list[int]:
        """Move window reservations left ``Requested`` (a CSMS stopped while their ReserveNow was on the
        wire) back to ``Scheduled``; returns their ids. Whether the station holds them is unknown, and
        sending again with the same id replaces, so they are simply sent again. Call only at start-up: at
        any other time a ``Requested`` row is on the wire."""

        async def op(session: AsyncSession) -> list[int]:
            rows = await session.scalars(
                select(Reservation).where(
                    Reservation.status == ReservationStatus.REQUESTED.value,
                    Reservation.starts_at.is_not(None),
                    Reservation.expires_at > now,
                    Reservation.transaction_id.is_(None),
                )
            )
            requeued = []
            for reservation in rows:
                reservation.status = ReservationStatus.SCHEDULED.value
                reservation.updated_at = utc_now()
                requeued.append(reservation.id)
            return requeued

        return await self._database.write(op)

    async def next_change(self, now: datetime) -> datetime | None:
        """The next moment after ``now`` a window reservation begins or an active reservation ends."""
        async with self._database.read() as session:
            start = await session.scalar(
                select(func.min(Reservation.starts_at)).where(
                    Reservation.status == ReservationStatus.SCHEDULED.value, Reservation.starts_at > now
                )
            )
            end = await session.scalar(
                select(func.min(Reservation.expires_at)).where(
                    Reservation.status.in_(_ACTIVE), Reservation.expires_at > now
                )
            )
        moments = [moment for moment in (start, end) if moment is not None]
        return min(moments) if moments else None

    async def expire(self, now: datetime, *, skip: Collection[int] = ()) -> list[int]:
        """Mark active reservations whose window ended unused ``Expired`` (except those in ``skip``: on the
        wire right now, their answer decides); returns their ids. Each is published."""
        skipped = set(skip)
        ended = select(Reservation).where(
            Reservation.status.in_(_ACTIVE),
            Reservation.expires_at <= now,
            Reservation.transaction_id.is_(None),
        )
        # The timer sweeps at every round (each station connection wakes it): read first, so a round with
        # nothing to expire costs no write.
        async with self._database.read() as session:
            if not set(await session.scalars(ended.with_only_columns(Reservation.id))) - skipped:
                return []

        async def op(session: AsyncSession) -> list[tuple[str, int]]:
            rows = await session.scalars(ended)
            expired = []
            for reservation in rows:
                if reservation.id in skipped:
                    continue
                reservation.status = ReservationStatus.EXPIRED.value
                reservation.updated_at = utc_now()
                expired.append((reservation.station_id, reservation.id))
            return expired

        expired = await self._database.write(op)
        for station_id, reservation_id in expired:
            self._bus.publish(ReservationChanged(station_id, reservation_id, ReservationStatus.EXPIRED.value))
        return [reservation_id for _, reservation_id in expired]


async def _overlapping(
    session: AsyncSession, station_id: str, evse_id: int, starts_at: datetime, expires_at: datetime
) -> bool:
    """Whether an active reservation of the EVSE overlaps ``[starts_at, expires_at)`` (one made without a
    window holds the EVSE from when it was made)."""
    found = await session.scalar(
        select(Reservation.id)
        .where(
            Reservation.station_id == station_id,
            Reservation.evse_id == evse_id,
            Reservation.status.in_(_ACTIVE),
            Reservation.transaction_id.is_(None),
            Reservation.expires_at > starts_at,
            or_(
                Reservation.starts_at < expires_at,
                and_(Reservation.starts_at.is_(None), Reservation.created_at < expires_at),
            ),
        )
        .limit(1)
    )
    return found is not None
