"""Transactions: start and stop, idempotent against stations that repeat themselves."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.authorization import Authorization, AuthorizationStatus
from optivgi_csms.domain.meter import energy_register_wh
from optivgi_csms.domain.reservation import ReservationStatus
from optivgi_csms.domain.station import EvseRef
from optivgi_csms.domain.time import utc_now
from optivgi_csms.domain.transaction import (
    StartedTransaction,
    TransactionEvent,
    TransactionEventResult,
    TransactionStart,
    TransactionStop,
)
from optivgi_csms.logs import get_logger
from optivgi_csms.services.authorization import AuthorizationService
from optivgi_csms.services.events import (
    EventBus,
    SessionNeedsChanged,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from optivgi_csms.services.meter_values import find_transaction, insert_samples, meter_readings
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import MeterValue, Reservation, Transaction, TransactionEventRecord

log = get_logger(__name__)

#: How far a station's clock may run ahead of the CSMS's before a time it reports cannot be right: a
#: session cannot have ended after the CSMS heard that it ended. Minutes of drift are a station's normal error.
CLOCK_AHEAD_TOLERANCE = timedelta(minutes=5)


def plausible_end(station_time: datetime, started_at: datetime, received_at: datetime) -> datetime:
    """When a session ended: the station's time, unless its clock is provably wrong.

    A time after the CSMS received the end (a clock set to 2100), or before the session's start (a clock
    reset to 1970 mid-session), is not when it ended; it ended by the time its end was received, which
    is then the best figure there is (never before the start, so a duration is never negative). A clock
    wrong all session long (start and end both in 1970) is consistent, and kept: its duration is right.
    """
    if started_at <= station_time <= received_at + CLOCK_AHEAD_TOLERANCE:
        return station_time
    return max(received_at, started_at)


def plausible_start(station_time: datetime, received_at: datetime) -> datetime:
    """When a session started: the station's time, or when the CSMS heard of it if that is later."""
    return station_time if station_time <= received_at + CLOCK_AHEAD_TOLERANCE else received_at


class UnknownTransactionError(LookupError):
    """No transaction with this id on this station."""


class TransactionClosedError(ValueError):
    """The session has ended: there is nothing left to plan for it."""


class TransactionService:
    """Opens and closes charging sessions."""

    def __init__(self, database: Database, authorization: AuthorizationService, bus: EventBus) -> None:
        self._database = database
        self._authorization = authorization
        self._bus = bus

    async def start(self, start: TransactionStart) -> StartedTransaction:
        """Open a session and allocate its id; a retransmitted start gets the id it got the first time."""

        stored_start: list[datetime] = []  # the time the session is stored with, for the event below

        async def op(session: AsyncSession) -> StartedTransaction:
            stored_start.clear()
            authorization = (
                await self._authorization.authorize_in(session, start.id_tag)
                if start.id_tag is not None
                else Authorization(AuthorizationStatus.ACCEPTED)
            )
            now = utc_now()
            started_at = plausible_start(start.timestamp, now)
            stored_start.append(started_at)
            if started_at == start.timestamp:
                same_start = Transaction.started_at == start.timestamp
            else:
                # A clock running ahead (2100) cannot date the session; it starts when the CSMS heard of it.
                # A retransmission then has another receipt time, but names the same tag and meter reading
                # as the session still open on the EVSE.
                log.warning(
                    "start time out of range: the station's clock is wrong",
                    station_id=start.station_id,
                    station_time=start.timestamp.isoformat(),
                    stored=started_at.isoformat(),
                )
                same_start = (
                    Transaction.stopped_at.is_(None)
                    & (Transaction.id_tag == start.id_tag)
                    & (Transaction.meter_start_wh == start.meter_start_wh)
                )
            existing = await session.scalar(
                select(Transaction)
                .where(
                    Transaction.station_id == start.station_id,
                    Transaction.evse_id == start.where.evse_id,
                    Transaction.ocpp_transaction_id.is_(None),
                    same_start,
                )
                .order_by(Transaction.id.desc())
                .limit(1)
            )
            if existing is not None:
                return StartedTransaction(existing.id, authorization, duplicate=True)
            transaction = Transaction(
                station_id=start.station_id,
                evse_id=start.where.evse_id,
                connector_id=start.where.connector_id,
                id_tag=start.id_tag,
                authorization_status=authorization.status.value,
                reservation_id=start.reservation_id,
                meter_start_wh=start.meter_start_wh,
                started_at=started_at,
                created_at=now,
                updated_at=now,
            )
            session.add(transaction)
            await session.flush()
            if start.reservation_id is not None:
                await _use_reservation(session, start.station_id, start.reservation_id, transaction.id)
            return StartedTransaction(transaction.id, authorization)

        started = await self._database.write(op)
        if not started.duplicate:
            self._bus.publish(
                TransactionStarted(
                    start.station_id, started.transaction_id, start.where.evse_id, start.id_tag, stored_start[-1]
                )
            )
        return started

    async def stop(self, stop: TransactionStop) -> Authorization | None:
        """Close a session. Stopping it again changes nothing (stations repeat stops); stopping an
        unknown transaction keeps its meter data under the station's reference."""

        async def op(session: AsyncSession) -> tuple[Authorization | None, Transaction | None]:
            authorization = (
                await self._authorization.authorize_in(session, stop.id_tag) if stop.id_tag is not None else None
            )
            transaction = await find_transaction(session, stop.station_id, stop.transaction_id)
            if transaction is None:
                log.warning(
                    "stop of an unknown transaction", station_id=stop.station_id, transaction=stop.transaction_id
                )
                await insert_samples(
                    session,
                    stop.station_id,
                    EvseRef(0, 0),
                    stop.samples,
                    transaction_id=None,
                    ocpp_transaction_ref=str(stop.transaction_id),
                )
                return authorization, None
            where = EvseRef(transaction.evse_id, transaction.connector_id)
            await insert_samples(session, stop.station_id, where, stop.samples, transaction_id=transaction.id)
            if transaction.stopped_at is not None:
                log.info("repeated stop ignored", station_id=stop.station_id, transaction=transaction.id)
                return authorization, None
            transaction.meter_stop_wh = stop.meter_stop_wh
            now = utc_now()
            transaction.stopped_at = plausible_end(stop.timestamp, transaction.started_at, now)
            if transaction.stopped_at != stop.timestamp:
                log.warning(
                    "stop time out of range: the station's clock is wrong",
                    station_id=stop.station_id,
                    transaction=transaction.id,
                    station_time=stop.timestamp.isoformat(),
                    stored=transaction.stopped_at.isoformat(),
                )
            transaction.stop_reason = stop.reason
            transaction.stop_id_tag = stop.id_tag
            transaction.updated_at = now
            return authorization, transaction

        authorization, ended = await self._database.write(op)
        if ended is not None:
            self._bus.publish(ended_event(ended))
        return authorization

    async def record_event(self, event: TransactionEvent) -> TransactionEventResult:
        """Store a 2.0.1 TransactionEvent and fold it into its session.

        The same (transaction, seqNo) delivered again changes nothing. Events arriving out of order
        still make one correct session: the Started event fixes the start, the (earliest) Ended event the end,
        the newest seqNo that reports one the charging state, and the energy register's smallest and largest readings
        the meter start and stop (the register only rises).
        """

        async def op(session: AsyncSession) -> tuple[TransactionEventResult, bool, TransactionEnded | None, int]:
            authorization = None
            if event.id_tag is not None:
                authorization = await self._authorization.authorize_in(session, event.id_tag)
            elif event.id_token_type is not None:
                # A token that names nobody (2.0.1 NoAuthorization): nothing to check, and the answer
                # still owes the station idTokenInfo, "required when the request contained an idToken".
                authorization = Authorization(AuthorizationStatus.ACCEPTED)
            transaction = await session.scalar(
                select(Transaction).where(
                    Transaction.station_id == event.station_id,
                    Transaction.ocpp_transaction_id == event.ocpp_transaction_id,
                )
            )
            now = utc_now()
            created = transaction is None
            if transaction is None:
                # The EVSE is named in the session's first event; one that arrives late may be the first here.
                where = event.where or EvseRef(0, 0)
                transaction = Transaction(
                    station_id=event.station_id,
                    evse_id=where.evse_id,
                    connector_id=where.connector_id,
                    ocpp_transaction_id=event.ocpp_transaction_id,
                    started_at=plausible_start(event.timestamp, now),
                    start_confirmed=False,
                    created_at=now,
                    updated_at=now,
                )
                session.add(transaction)
                await session.flush()
            else:
                seen = await session.scalar(
                    select(TransactionEventRecord.id).where(
                        TransactionEventRecord.transaction_id == transaction.id,
                        TransactionEventRecord.seq_no == event.seq_no,
                    )
                )
                if seen is not None:
                    return TransactionEventResult(transaction.id, authorization, duplicate=True), False, None, 0
            newest_state = event.charging_state is not None and await _is_newest_state(session, transaction, event)
            session.add(_event_record(transaction.id, event, now))
            unplaced = transaction.evse_id == 0
            was_open = transaction.stopped_at is None
            _fold_event(transaction, event, authorization, now, newest_state=newest_state)
            if unplaced and transaction.evse_id != 0:
                await _place_samples(session, transaction)
            await insert_samples(
                session,
                event.station_id,
                EvseRef(transaction.evse_id, transaction.connector_id),
                event.samples,
                transaction_id=transaction.id,
            )
            await _fold_energy(session, transaction, event)
            if event.reservation_id is not None:
                await _use_reservation(session, event.station_id, event.reservation_id, transaction.id)
            ended = ended_event(transaction) if was_open and transaction.stopped_at is not None else None
            return TransactionEventResult(transaction.id, authorization), created, ended, transaction.evse_id

        result, created, ended, evse_id = await self._database.write(op)
        if created:
            self._bus.publish(
                TransactionStarted(event.station_id, result.transaction_id, evse_id, event.id_tag, event.timestamp)
            )
        elif not result.duplicate and ended is None and event.event_type == "Updated":
            self._bus.publish(
                TransactionUpdated(
                    event.station_id, result.transaction_id, evse_id, event.charging_state, event.trigger_reason
                )
            )
        if not result.duplicate:
            for reading in meter_readings(event.station_id, evse_id, result.transaction_id, event.samples):
                self._bus.publish(reading)
        if ended is not None:
            self._bus.publish(ended)
        return result

    async def set_needs(
        self, transaction_id: int, *, departure_at: datetime | None = None, energy_kwh: float | None = None
    ) -> None:
        """Record what a session needs, as its driver or the operator says (the scheduler prefers an EV's
        own ISO 15118 needs, then these, then the site's defaults). Raises :class:`UnknownTransactionError`,
        and :class:`TransactionClosedError` for a session that has ended."""
        if departure_at is not None and departure_at.tzinfo is None:
            raise ValueError("the departure time must carry a time zone")
        if energy_kwh is not None and not 0 <= energy_kwh <= 10_000:
            raise ValueError("the energy must be between 0 and 10000 kWh")

        async def op(session: AsyncSession) -> str | None:
            transaction = await session.get(Transaction, transaction_id)
            if transaction is None:
                return None
            if transaction.stopped_at is not None:
                # Checked in the write itself: a stop arriving meanwhile cannot be overwritten with needs.
                raise TransactionClosedError(f"transaction {transaction_id} has ended")
            if departure_at is not None:
                transaction.departure_at = departure_at
            if energy_kwh is not None:
                transaction.energy_target_kwh = energy_kwh
            transaction.updated_at = utc_now()
            return transaction.station_id

        station_id = await self._database.write(op)
        if station_id is None:
            raise UnknownTransactionError(f"no transaction {transaction_id}")
        self._bus.publish(SessionNeedsChanged(station_id, transaction_id))

    async def ocpp_id(self, station_id: str, transaction_id: int) -> int | str:
        """The id the station knows a transaction by (1.6: the integer id; 2.0.1: its string id)."""
        async with self._database.read() as session:
            transaction = await find_transaction(session, station_id, transaction_id)
        if transaction is None:
            raise UnknownTransactionError(f"station {station_id} has no transaction {transaction_id}")
        return transaction.ocpp_transaction_id or transaction.id


def ended_event(transaction: Transaction) -> TransactionEnded:
    """The event of a session that just ended (its energy: the register at the end less at the start)."""
    energy_wh = (
        transaction.meter_stop_wh - transaction.meter_start_wh
        if transaction.meter_stop_wh is not None and transaction.meter_start_wh is not None
        else None
    )
    return TransactionEnded(
        transaction.station_id,
        transaction.id,
        transaction.evse_id,
        reason=transaction.stop_reason,
        energy_wh=energy_wh,
        timestamp=transaction.stopped_at,
    )


async def _use_reservation(session: AsyncSession, station_id: str, reservation_id: int, transaction_id: int) -> None:
    """Mark the station's reservation as used by the session that named it."""
    reservation = await session.get(Reservation, reservation_id)
    if reservation is not None and reservation.station_id == station_id:
        reservation.status = ReservationStatus.USED.value
        reservation.transaction_id = transaction_id
        reservation.updated_at = utc_now()


async def _place_samples(session: AsyncSession, transaction: Transaction) -> None:
    """Move the session's samples stored before its EVSE was known (on EVSE 0) to its EVSE.

    Events may arrive before the one that names the EVSE; their samples belong there as much as
    the later ones. A sample the EVSE already holds (the same reading sent twice) is kept once.
    """
    unplaced = list(
        await session.scalars(
            select(MeterValue).where(
                MeterValue.transaction_id == transaction.id, MeterValue.evse_id == 0, MeterValue.connector_id == 0
            )
        )
    )
    if not unplaced:
        return
    held = await session.scalars(
        select(MeterValue).where(
            MeterValue.station_id == transaction.station_id,
            MeterValue.evse_id == transaction.evse_id,
            MeterValue.connector_id == transaction.connector_id,
            MeterValue.timestamp.in_({sample.timestamp for sample in unplaced}),
        )
    )
    taken = {_sample_key(sample) for sample in held}
    for sample in unplaced:
        if _sample_key(sample) in taken:
            await session.delete(sample)
        else:
            sample.evse_id = transaction.evse_id
            sample.connector_id = transaction.connector_id


def _sample_key(sample: MeterValue) -> tuple[object, ...]:
    # The columns of the meter_values uniqueness index, less the place.
    return (sample.timestamp, sample.measurand, sample.phase or "", sample.location, sample.context)


def _event_record(transaction_id: int, event: TransactionEvent, now: datetime) -> TransactionEventRecord:
    return TransactionEventRecord(
        transaction_id=transaction_id,
        station_id=event.station_id,
        seq_no=event.seq_no,
        event_type=event.event_type,
        trigger_reason=event.trigger_reason,
        timestamp=event.timestamp,
        offline=event.offline,
        charging_state=event.charging_state,
        stopped_reason=event.stopped_reason,
        id_tag=event.id_tag,
        id_token_type=event.id_token_type,
        remote_start_id=event.remote_start_id,
        number_of_phases_used=event.number_of_phases_used,
        cable_max_current_a=event.cable_max_current_a,
        reservation_id=event.reservation_id,
        received_at=now,
    )


async def _is_newest_state(session: AsyncSession, transaction: Transaction, event: TransactionEvent) -> bool:
    """Whether no stored event with a higher seqNo reported a charging state."""
    if transaction.last_seq_no is None or event.seq_no > transaction.last_seq_no:
        return True
    newer = await session.scalar(
        select(func.count()).where(
            TransactionEventRecord.transaction_id == transaction.id,
            TransactionEventRecord.seq_no > event.seq_no,
            TransactionEventRecord.charging_state.is_not(None),
        )
    )
    return not newer


def _fold_event(
    transaction: Transaction,
    event: TransactionEvent,
    authorization: Authorization | None,
    now: datetime,
    *,
    newest_state: bool,
) -> None:
    """Update a session's summary with one event, whatever order the events arrive in."""
    started = event.event_type == "Started"
    if event.where is not None and (started or transaction.evse_id == 0):
        transaction.evse_id = event.where.evse_id
        transaction.connector_id = event.where.connector_id
    # The event record keeps the station's own time; the session's figures take plausible ones.
    moment = plausible_start(event.timestamp, now)
    if started:
        transaction.started_at = moment
        transaction.start_confirmed = True
    elif not transaction.start_confirmed and moment < transaction.started_at:
        transaction.started_at = moment
    if event.id_tag is not None:
        # The session's token is the Started event's (or, until it arrives, the first one seen); an
        # Ended event's token is the one that stopped it, as a 1.6 StopTransaction's idTag is.
        if started or transaction.id_tag is None:
            transaction.id_tag = event.id_tag
            transaction.id_token_type = event.id_token_type
            transaction.authorization_status = authorization.status.value if authorization else None
        if event.event_type == "Ended":
            transaction.stop_id_tag = event.id_tag
    if event.remote_start_id is not None:
        transaction.remote_start_id = event.remote_start_id
    if event.reservation_id is not None:
        transaction.reservation_id = event.reservation_id
    if transaction.last_seq_no is None or event.seq_no > transaction.last_seq_no:
        transaction.last_seq_no = event.seq_no
    if newest_state:
        transaction.charging_state = event.charging_state
    # A session ends once: the earliest Ended event is its end. A station that ends it again later
    # (simulators do when they shut down, under the next seqNo) does not move the end or its reason.
    if event.event_type == "Ended":
        end = plausible_end(event.timestamp, transaction.started_at, now)
        if end != event.timestamp:
            log.warning(
                "end time out of range: the station's clock is wrong",
                station_id=event.station_id,
                transaction=transaction.id,
                station_time=event.timestamp.isoformat(),
                stored=end.isoformat(),
            )
        if transaction.stopped_at is None or end < transaction.stopped_at:
            transaction.stopped_at = end
            transaction.stop_reason = event.stopped_reason or transaction.stop_reason
    if transaction.stopped_at is not None and transaction.stopped_at < transaction.started_at:
        # A Started event arriving after the end, with a later time: the session lasted no time at all.
        transaction.stopped_at = transaction.started_at
    transaction.updated_at = now


async def _fold_energy(session: AsyncSession, transaction: Transaction, event: TransactionEvent) -> None:
    readings = [wh for wh in map(energy_register_wh, event.samples) if wh is not None]
    if readings and (transaction.meter_start_wh is None or min(readings) < transaction.meter_start_wh):
        transaction.meter_start_wh = min(readings)
    if transaction.stopped_at is None:
        return
    if readings:
        transaction.meter_stop_wh = max([*readings, transaction.meter_stop_wh or 0.0])
    elif transaction.meter_stop_wh is None:
        # An Ended event without a reading: the session's highest stored reading is its end.
        highest = await session.scalar(
            select(func.max(MeterValue.value_numeric)).where(
                MeterValue.transaction_id == transaction.id,
                MeterValue.measurand == "Energy.Active.Import.Register",
                MeterValue.phase.is_(None),
                or_(MeterValue.unit == "Wh", MeterValue.unit.is_(None)),
            )
        )
        transaction.meter_stop_wh = highest
