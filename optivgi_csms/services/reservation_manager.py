"""Reservations for a time window: stored at once, sent to the station when the window begins.

An operator reserves an EVSE for an id tag from ``starts_at`` to ``ends_at``. The row is stored
``Scheduled`` straight away, with the window and the energy the EV will want, so smart charging plans it
as a future EV from then on. ReserveNow (expiring at ``ends_at``) goes out when the window begins: at
once for a window already open, otherwise from one timer task that sleeps until the next reservation
is due. A station that is not connected then, or does not answer, gets it when it connects (again); a
CSMS restarted meanwhile finds the scheduled rows in the database. Cancelling sends CancelReservation
only when the station holds the reservation. An expiry sweep, run by the same timer, closes active
reservations whose window ended unused (stations expire their own; this keeps the rows, and the
scheduler's plan, honest).

Every status change is a compare-and-set on the row (see :meth:`ReservationService.transition`): the
timer, an operator's cancel, the sweep and a session that uses the reservation may all act on one row
at once, and the first to act wins.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import TYPE_CHECKING

from optivgi_csms.domain.reservation import ReservationStatus
from optivgi_csms.domain.time import utc_now
from optivgi_csms.logs import get_logger
from optivgi_csms.protocol.errors import CommandError, CommandTimeoutError, StationNotConnectedError
from optivgi_csms.services.events import Event, StationBooted, StationConnected
from optivgi_csms.services.reservations import UnknownReservationError
from optivgi_csms.store.models import Reservation

if TYPE_CHECKING:
    from optivgi_csms.protocol.commands import StationCommands
    from optivgi_csms.server.registry import StationRegistry
    from optivgi_csms.services import Services

log = get_logger(__name__)

#: The timer looks at the database at least this often, even when nothing is due (a safety net for a
#: wall clock that jumps, or a row another process changed).
MAX_SLEEP_S = 60.0
#: After the timer itself failed (e.g. the database was briefly unreachable), try again this much later.
RETRY_AFTER_ERROR_S = 5.0

# OCPP's id token lengths: 1.6 idTag is CiString20, 2.0.1 idToken CiString36 (also the column's width).
_ID_TAG_LENGTH = {"1.6": 20}
_DEFAULT_ID_TAG_LENGTH = 36

# Statuses in which the station may hold the reservation: cancelling asks the station.
_HELD = frozenset({ReservationStatus.REQUESTED, ReservationStatus.ACCEPTED})


class ReservationStateError(ValueError):
    """The reservation is in a status that does not allow the operation (e.g. cancelling a used one)."""


class ReservationManager:
    """Makes, sends, cancels and expires reservations for time windows; one per running CSMS."""

    def __init__(self, services: Services, registry: StationRegistry) -> None:
        self._reservations = services.reservations
        self._bus = services.bus
        self._registry = registry
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        # ReserveNow on the wire, by reservation id: nothing else acts on those rows until the answer.
        self._sending: dict[int, asyncio.Task[None]] = {}
        # Reservations a connected station did not answer, by id, with their station: sent again when that
        # station connects again (a silent link usually ends in a reconnect), not at every timer round.
        self._unanswered: dict[int, str] = {}
        # 2.0.1 idToken types asked for; the reservations table has no column for them, so a CSMS
        # restarted before the window begins sends the default type (Central).
        self._token_types: dict[int, str] = {}

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to station connections and start the timer (which first sends what is due)."""
        if self._timer is not None:
            return
        self._bus.subscribe(self._on_event)
        self._timer = asyncio.create_task(self._run(), name="reservation-timer")

    async def stop(self) -> None:
        """Stop the timer and any ReserveNow still waiting for its answer.

        A reservation whose answer never came stays ``Requested``; the next start sends it again with the
        same id, which the station treats as a replacement of the one it may hold.
        """
        if self._timer is None:
            return
        self._bus.unsubscribe(self._on_event)
        tasks = [self._timer, *self._sending.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._timer = None

    # --- operations -------------------------------------------------------------------------------

    async def reserve(
        self,
        station_id: str,
        evse_id: int,
        id_tag: str,
        starts_at: datetime,
        ends_at: datetime,
        *,
        energy_kwh: float | None = None,
        parent_id_tag: str | None = None,
        id_token_type: str | None = None,
    ) -> int:
        """Reserve ``evse_id`` of ``station_id`` (0: any EVSE) for ``id_tag`` from ``starts_at`` until
        ``ends_at``; returns the reservation's id (its ``reservationId``).

        A window already open is sent now and this returns after the station answered (the row's status
        is the answer: read it with :meth:`get`). A later window, or a station not connected, is stored
        ``Scheduled`` and sent when the window begins and the station is there. ``energy_kwh`` is what the
        scheduler plans for the EV (None: the site's default).

        Raises ``ValueError`` for an impossible window or id tag,
        :class:`~optivgi_csms.services.reservations.UnknownStationError`, and
        :class:`~optivgi_csms.services.reservations.ReservationConflictError` when the EVSE is already
        reserved for part of the window.
        """
        now = utc_now()
        _check_window(evse_id, starts_at, ends_at, now, energy_kwh)
        version = await self._reservations.station_version(station_id)
        _check_id_tags(version, id_tag, parent_id_tag)
        reservation_id = await self._reservations.create_window(
            station_id, evse_id, id_tag, starts_at, ends_at, energy_kwh=energy_kwh, parent_id_tag=parent_id_tag
        )
        if id_token_type is not None:
            self._token_types[reservation_id] = id_token_type
        if starts_at <= utc_now() and self._registry.is_connected(station_id):
            row = await self._reservations.get(reservation_id)
            if row is not None:
                # Shielded: a caller that gives up must not leave the row half-sent.
                await asyncio.shield(self._send_in_background(row))
        else:
            self._wake.set()
        return reservation_id

    async def cancel(self, reservation_id: int) -> ReservationStatus:
        """Cancel a reservation; returns its status afterwards (``Cancelled``).

        Not sent yet: just marked ``Cancelled``. Held by the station: CancelReservation, and ``Cancelled``
        once the station accepts, or says it holds no such reservation (it expired or was used there).
        Cancelling a cancelled reservation changes nothing. Raises
        :class:`~optivgi_csms.services.reservations.UnknownReservationError`, :class:`ReservationStateError`
        when it is over (used, expired, refused by the station, failed), and a
        :class:`~optivgi_csms.protocol.errors.CommandError` when the station holding it cannot be asked (the
        row is left as it is).
        """
        # Each round acts on the row as it is; a round only repeats when something else moved the row
        # between reading and acting (a send that began, a session that used it), so a few suffice.
        for _ in range(3):
            sending = self._sending.get(reservation_id)
            if sending is not None:
                # The answer decides what there is to cancel.
                with contextlib.suppress(Exception):
                    await asyncio.shield(sending)
            row = await self._reservations.get(reservation_id)
            if row is None:
                raise UnknownReservationError(f"no reservation {reservation_id}")
            status = row.status
            if status == ReservationStatus.CANCELLED:
                self._forget(reservation_id)
                return ReservationStatus.CANCELLED
            if status == ReservationStatus.SCHEDULED:
                if reservation_id in self._unanswered:
                    await self._withdraw_unanswered(row.station_id, reservation_id)
                if await self._reservations.transition(
                    reservation_id, {ReservationStatus.SCHEDULED}, ReservationStatus.CANCELLED
                ):
                    self._forget(reservation_id)
                    return ReservationStatus.CANCELLED
                continue
            if status in _HELD and row.transaction_id is None:
                answer = await self._registry.get(row.station_id).cancel_reservation(reservation_id)
                # Accepted: the command marked the row. Rejected: the station holds no such reservation
                # (it expired there, or was used a moment ago: a session naming it still marks it Used).
                if answer.accepted or await self._reservations.transition(
                    reservation_id, _HELD, ReservationStatus.CANCELLED
                ):
                    self._forget(reservation_id)
                    return ReservationStatus.CANCELLED
                continue
            raise ReservationStateError(f"reservation {reservation_id} is {status}: there is nothing to cancel")
        raise ReservationStateError(f"reservation {reservation_id} kept changing while being cancelled")

    async def _withdraw_unanswered(self, station_id: str, reservation_id: int) -> None:
        """Best effort: a ReserveNow the station never answered may still have reached it, so ask it to
        cancel (whatever it says, the row is then cancelled; a station away now keeps it until its end,
        when it expires it itself)."""
        with contextlib.suppress(CommandError):
            await self._registry.get(station_id).cancel_reservation(reservation_id)

    async def get(self, reservation_id: int) -> Reservation | None:
        """The reservation's row as it is now (detached: read its fields)."""
        return await self._reservations.get(reservation_id)

    async def sweep(self) -> list[int]:
        """Mark active reservations whose window ended unused ``Expired`` now; returns their ids.

        The timer runs this when a window ends; callers need it only to force a sweep.
        """
        expired = await self._reservations.expire(utc_now(), skip=tuple(self._sending))
        for reservation_id in expired:
            self._forget(reservation_id)
        return expired

    # --- the timer --------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        # A station that (re)connects or boots may have reservations waiting for it. Only wake the timer:
        # bus subscribers must return at once. StationConnected is published just before the registry
        # holds the connection, but the timer runs only after this handler's caller yields, by which time
        # the connection is registered; StationBooted comes later still and catches any miss.
        if (isinstance(event, StationConnected) and event.admitted) or (
            isinstance(event, StationBooted) and event.accepted
        ):
            for reservation_id, station_id in tuple(self._unanswered.items()):
                if station_id == event.station_id:
                    del self._unanswered[reservation_id]
            self._wake.set()

    async def _run(self) -> None:
        requeued = False
        while True:
            self._wake.clear()
            try:
                if not requeued:
                    # Reservations a previous run left on the wire are sent again, like scheduled ones.
                    await self._reservations.requeue_unanswered(utc_now())
                    requeued = True
                await self._round()
                next_change = await self._reservations.next_change(utc_now())
                delay = MAX_SLEEP_S
                if next_change is not None:
                    delay = min(MAX_SLEEP_S, max(0.0, (next_change - utc_now()).total_seconds()))
            except Exception:
                log.exception("reservation timer round failed", retry_in_s=RETRY_AFTER_ERROR_S)
                delay = RETRY_AFTER_ERROR_S
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _round(self) -> None:
        """Expire what ended, then send what is due to the stations that are connected."""
        await self.sweep()
        for row in await self._reservations.due(utc_now()):
            if (
                row.id not in self._sending
                and row.id not in self._unanswered
                and self._registry.is_connected(row.station_id)
            ):
                self._send_in_background(row)

    def _send_in_background(self, row: Reservation) -> asyncio.Task[None]:
        """The task sending ``row``'s ReserveNow (the one already running, if any)."""
        task = self._sending.get(row.id)
        if task is None:
            task = asyncio.create_task(self._send(row), name=f"reserve-{row.id}")
            self._sending[row.id] = task
            task.add_done_callback(lambda done: self._sent(row.id, done))
        return task

    def _sent(self, reservation_id: int, task: asyncio.Task[None]) -> None:
        del self._sending[reservation_id]
        if not task.cancelled() and (error := task.exception()) is not None:
            # Not a station's failure (those are recorded on the row): the row stays Requested until a restart.
            log.error("sending a reservation failed", reservation=reservation_id, exc_info=error)
        # The sweep skipped this row while it was on the wire, and a failed send may be retried.
        self._wake.set()

    async def _send(self, row: Reservation) -> None:
        """Send ``row``'s ReserveNow, expiring at the window's end, and record the answer."""
        try:
            commands = self._registry.get(row.station_id)
        except StationNotConnectedError:
            return  # stays Scheduled: sent when the station connects
        if not await self._reservations.transition(row.id, {ReservationStatus.SCHEDULED}, ReservationStatus.REQUESTED):
            return  # cancelled, expired or used since it was read
        try:
            # The row, and its id, exist already (reserve_now would make a new one): send it as stored and
            # record the answer here, where a timeout means "send again later", not "failed".
            answer = await commands.send_stored_reservation(
                row.id,
                row.evse_id,
                row.id_tag,
                row.expires_at,
                parent_id_tag=row.parent_id_tag,
                id_token_type=self._token_types.get(row.id),
            )
        except (StationNotConnectedError, CommandTimeoutError) as error:
            # Gone, or silent: whether it holds the reservation is unknown. Back to Scheduled, to be sent
            # again (same id: a replacement) when the station is back, while the window lasts.
            log.info("reservation not delivered; will retry", reservation=row.id, error=error.__class__.__name__)
            if not self._replaced(row.station_id, commands):
                self._unanswered[row.id] = row.station_id
            # else the station reconnected while this waited: the next round sends it on the new connection
            await self._reservations.transition(row.id, {ReservationStatus.REQUESTED}, ReservationStatus.SCHEDULED)
            return
        except CommandError as error:
            log.warning("reservation refused by the station's protocol", reservation=row.id, error=str(error))
            await self._reservations.transition(row.id, {ReservationStatus.REQUESTED}, ReservationStatus.FAILED)
            self._forget(row.id)
            return
        try:
            status = ReservationStatus(answer.status)
        except ValueError:  # the adapters check answers against the schema; a word outside it is a failure
            status = ReservationStatus.FAILED
        await self._reservations.transition(row.id, {ReservationStatus.REQUESTED}, status)
        self._forget(row.id)

    def _replaced(self, station_id: str, commands: StationCommands) -> bool:
        """Whether the station has a live connection other than ``commands``'s."""
        try:
            return self._registry.get(station_id) is not commands
        except StationNotConnectedError:
            return False

    def _forget(self, reservation_id: int) -> None:
        """Drop what is kept in memory for a reservation that will not be sent again."""
        self._token_types.pop(reservation_id, None)
        self._unanswered.pop(reservation_id, None)


def _check_window(
    evse_id: int, starts_at: datetime, ends_at: datetime, now: datetime, energy_kwh: float | None
) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("the reservation's start and end must carry a time zone")
    if ends_at <= starts_at:
        raise ValueError("the reservation must end after it starts")
    if ends_at <= now:
        raise ValueError("the reservation's window has ended already")
    if evse_id < 0:
        raise ValueError("the EVSE id must be 0 (any EVSE) or more")
    if energy_kwh is not None and not 0 <= energy_kwh <= 10_000:
        raise ValueError("the energy must be between 0 and 10000 kWh")


def _check_id_tags(version: str | None, id_tag: str, parent_id_tag: str | None) -> None:
    # Checked now, not when the window begins: a tag the station's protocol cannot carry would only fail then.
    limit = _ID_TAG_LENGTH.get(version or "", _DEFAULT_ID_TAG_LENGTH)
    for name, tag in (("id tag", id_tag), ("parent id tag", parent_id_tag)):
        if tag is not None and not 0 < len(tag) <= limit:
            raise ValueError(f"the {name} must have 1 to {limit} characters for this station")
