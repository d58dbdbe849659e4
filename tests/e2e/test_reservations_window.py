"""Reservations for a time window (``csms.reservations``), against 1.6 and 2.0.1 test stations over real
websockets, on each database: sent at once or when the window begins, to a station that connects late,
after a CSMS restart; cancelled before and after sending; expired; used by a session.

Windows begin a fraction of a second ahead so the timer is exercised without slowing the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from optivgi_csms.domain.reservation import ReservationStatus
from optivgi_csms.domain.time import format_timestamp, utc_now
from optivgi_csms.protocol.errors import StationNotConnectedError
from optivgi_csms.server.app import Csms
from optivgi_csms.services.events import Event, ReservationChanged
from optivgi_csms.services.reservation_manager import ReservationStateError
from optivgi_csms.services.reservations import (
    ReservationConflictError,
    UnknownReservationError,
    UnknownStationError,
)
from optivgi_csms.store.models import Reservation, Station, Transaction
from tests.conftest import CsmsFactory, settings_for
from tests.support.driver import Driver, connect, subprotocol
from tests.support.stations import answer_call, answer_call_error, connect_raw, eventually, next_call

HOUR = timedelta(hours=1)


def soon(seconds: float) -> datetime:
    """A moment ``seconds`` from now."""
    return utc_now() + timedelta(seconds=seconds)


async def rows(csms: Csms) -> list[Reservation]:
    async with csms.database.read() as session:
        return list(await session.scalars(select(Reservation).order_by(Reservation.id)))


async def status_of(csms: Csms, reservation_id: int) -> str:
    row = await csms.reservations.get(reservation_id)
    assert row is not None
    return row.status


async def known_station(csms: Csms, station_id: str, version: str | None = None) -> None:
    """Make the station known to the CSMS without connecting it (as an operator registering it would)."""

    async def op(session: Any) -> None:
        session.add(Station(id=station_id, registered=True, ocpp_version=version, created_at=utc_now()))

    await csms.database.write(op)


def reservation_events(csms: Csms) -> list[tuple[int, str]]:
    """Every ReservationChanged published from now on, as (reservation id, status)."""
    seen: list[tuple[int, str]] = []

    def note(event: Event) -> None:
        if isinstance(event, ReservationChanged):
            seen.append((event.reservation_id, event.status))

    csms.services.bus.subscribe(note)
    return seen


def reserve_now_of(station: Driver) -> dict[str, Any]:
    """The last ReserveNow the station received, in version-neutral keys."""
    sent = station.last("ReserveNow")
    if station.v201:
        return {
            "id": sent["id"],
            "evse": sent.get("evse_id", 0),
            "tag": sent["id_token"]["id_token"],
            "type": sent["id_token"]["type"],
            "expiry": sent["expiry_date_time"],
        }
    return {
        "id": sent["reservation_id"],
        "evse": sent["connector_id"],
        "tag": sent["id_tag"],
        "type": None,
        "expiry": sent["expiry_date"],
    }


async def received_reserve_now(station: Driver, count: int = 1, timeout: float = 10.0) -> None:
    await eventually(lambda: station.received().count("ReserveNow") >= count, timeout=timeout)


@contextlib.asynccontextmanager
async def running(database_url: str) -> AsyncIterator[Csms]:
    """A CSMS on ``database_url`` for the length of the block (for restarts within one test)."""
    csms = Csms(settings_for(database_url))
    await csms.start()
    try:
        yield csms
    finally:
        await csms.stop()


# --- a window already open ------------------------------------------------------------------------


async def test_an_open_window_is_sent_at_once_expiring_at_its_end(csms: Csms, ocpp_version: str) -> None:
    events = reservation_events(csms)
    starts, ends = utc_now() - timedelta(minutes=5), utc_now() + HOUR
    async with connect(csms, "CP-1", ocpp_version) as station:
        reservation_id = await csms.reservations.reserve(
            "CP-1", 1, "TAG-1", starts, ends, energy_kwh=20.0, parent_id_tag="GROUP-1"
        )
        # reserve() returns once the station answered
        assert station.received() == ["ReserveNow"]
        assert reserve_now_of(station) == {
            "id": reservation_id,
            "evse": 1,
            "tag": "TAG-1",
            "type": "Central" if station.v201 else None,
            "expiry": format_timestamp(ends),
        }
    (row,) = await rows(csms)
    assert (row.id, row.station_id, row.evse_id, row.id_tag, row.parent_id_tag) == (
        reservation_id,
        "CP-1",
        1,
        "TAG-1",
        "GROUP-1",
    )
    # the window and the energy stay on the row for the scheduler to plan the EV
    assert (row.status, row.starts_at, row.expires_at, row.energy_kwh) == ("Accepted", starts, ends, 20.0)
    assert events == [(reservation_id, "Scheduled"), (reservation_id, "Requested"), (reservation_id, "Accepted")]


async def test_the_row_keeps_the_stations_refusal(csms: Csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        station.answer("ReserveNow", "Occupied")
        reservation_id = await csms.reservations.reserve("CP-1", 2, "TAG-1", utc_now(), utc_now() + HOUR)
        assert await status_of(csms, reservation_id) == "Occupied"
        # a refused reservation holds nothing: cancelling it is an error, and sends nothing
        with pytest.raises(ReservationStateError, match="Occupied"):
            await csms.reservations.cancel(reservation_id)
        assert station.received() == ["ReserveNow"]


# --- a window that begins later -------------------------------------------------------------------


async def test_a_later_window_is_scheduled_then_sent_when_it_begins(csms: Csms, ocpp_version: str) -> None:
    events = reservation_events(csms)
    async with connect(csms, "CP-1", ocpp_version) as station:
        starts = soon(0.4)
        ends = starts + HOUR
        reservation_id = await csms.reservations.reserve(
            "CP-1", 1, "TAG-1", starts, ends, energy_kwh=12.5, id_token_type="ISO14443"
        )
        (row,) = await rows(csms)
        assert (row.status, row.starts_at, row.expires_at, row.energy_kwh) == ("Scheduled", starts, ends, 12.5)
        assert station.received() == []

        await received_reserve_now(station)
        assert utc_now() >= starts
        sent = reserve_now_of(station)
        assert (sent["id"], sent["expiry"]) == (reservation_id, format_timestamp(ends))
        if station.v201:
            assert sent["type"] == "ISO14443"  # the token type asked for, kept until the window began
        await eventually(lambda: (reservation_id, "Accepted") in events)
    assert await status_of(csms, reservation_id) == "Accepted"
    assert events == [(reservation_id, "Scheduled"), (reservation_id, "Requested"), (reservation_id, "Accepted")]


async def test_windows_are_sent_in_order_each_at_its_start(csms: Csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        late = await csms.reservations.reserve("CP-1", 2, "TAG-2", soon(1.6), soon(3600))
        early = await csms.reservations.reserve("CP-1", 1, "TAG-1", soon(0.8), soon(3600))
        await received_reserve_now(station)
        assert reserve_now_of(station)["id"] == early
        assert await status_of(csms, late) == "Scheduled"
        await received_reserve_now(station, 2)
        assert reserve_now_of(station)["id"] == late


async def test_a_station_offline_when_the_window_begins_gets_it_when_it_connects(csms: Csms, ocpp_version: str) -> None:
    await known_station(csms, "CP-1")
    open_now = await csms.reservations.reserve("CP-1", 1, "TAG-1", utc_now(), utc_now() + HOUR)
    later = await csms.reservations.reserve("CP-1", 2, "TAG-2", soon(0.2), soon(3600))
    await asyncio.sleep(0.3)  # both windows are open; the station is still away
    assert [row.status for row in await rows(csms)] == ["Scheduled", "Scheduled"]

    async with connect(csms, "CP-1", ocpp_version) as station:
        await received_reserve_now(station, 2)
        assert sorted(payload_id(station, index) for index in range(2)) == [open_now, later]
        await wait_status(csms, open_now, "Accepted")
        await wait_status(csms, later, "Accepted")
        assert station.received() == ["ReserveNow", "ReserveNow"]


def payload_id(station: Driver, index: int) -> int:
    """The reservation id of the ``index``-th ReserveNow the station received."""
    payloads = [payload for action, payload in station.station.received if action == "ReserveNow"]
    return payloads[index]["id" if station.v201 else "reservation_id"]


async def wait_status(csms: Csms, reservation_id: int, status: str, timeout: float = 10.0) -> None:
    """Wait until the reservation's row says ``status`` (generous: only a failing test waits it out, and a
    loaded CI machine has been seen to need more than 2 s for a sweep on PostgreSQL)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (current := await status_of(csms, reservation_id)) != status:
        assert asyncio.get_running_loop().time() < deadline, f"reservation {reservation_id} is {current}"
        await asyncio.sleep(0.01)


async def test_a_reservation_the_station_did_not_answer_is_sent_again_when_it_is_back(
    make_csms: CsmsFactory, ocpp_version: str
) -> None:
    csms = await make_csms(call_timeout=0.3)
    async with connect_raw(csms, "CP-1", subprotocol=subprotocol(ocpp_version)) as raw:
        await wait_registered_raw(csms)
        reserving = asyncio.create_task(csms.reservations.reserve("CP-1", 1, "TAG-1", utc_now(), utc_now() + HOUR))
        frame = await next_call(raw)  # and never answered
        reservation_id = await reserving
        # whether the station holds it is unknown: it waits to be sent again, not failed
        assert await status_of(csms, reservation_id) == "Scheduled"
    async with connect(csms, "CP-1", ocpp_version) as station:
        await received_reserve_now(station)
        assert reserve_now_of(station)["id"] == reservation_id == frame[3]["id" if station.v201 else "reservationId"]
        await wait_status(csms, reservation_id, "Accepted")


async def test_cancelling_a_reservation_the_station_never_answered_still_asks_it(
    make_csms: CsmsFactory, ocpp_version: str
) -> None:
    csms = await make_csms(call_timeout=0.3)
    async with connect_raw(csms, "CP-1", subprotocol=subprotocol(ocpp_version)) as raw:
        await wait_registered_raw(csms)
        reserving = asyncio.create_task(csms.reservations.reserve("CP-1", 1, "TAG-1", utc_now(), utc_now() + HOUR))
        await next_call(raw)  # never answered: it may have reached the station all the same
        reservation_id = await reserving
        cancelling = asyncio.create_task(csms.reservations.cancel(reservation_id))
        cancel = await next_call(raw)
        assert (cancel[2], cancel[3]) == ("CancelReservation", {"reservationId": reservation_id})
        await answer_call(raw, cancel, {"status": "Rejected"})  # it had not
        assert await cancelling == "Cancelled"
        assert await raw.no_reply(0.2)
    assert await status_of(csms, reservation_id) == "Cancelled"


async def test_a_reservation_the_station_cannot_take_fails(csms: Csms, ocpp_version: str) -> None:
    async with connect_raw(csms, "CP-1", subprotocol=subprotocol(ocpp_version)) as raw:
        await wait_registered_raw(csms)
        reserving = asyncio.create_task(csms.reservations.reserve("CP-1", 1, "TAG-1", utc_now(), utc_now() + HOUR))
        await answer_call_error(raw, await next_call(raw), "NotImplemented")
        reservation_id = await reserving
        assert await status_of(csms, reservation_id) == "Failed"
        assert await raw.no_reply(0.2)  # not retried


# --- cancelling -----------------------------------------------------------------------------------


async def test_cancelling_before_the_window_begins_sends_nothing(csms: Csms, ocpp_version: str) -> None:
    events = reservation_events(csms)
    async with connect(csms, "CP-1", ocpp_version) as station:
        # Far enough ahead that a slow database on a loaded machine cannot reach the start before the cancel.
        starts = soon(1.0)
        reservation_id = await csms.reservations.reserve("CP-1", 1, "TAG-1", starts, soon(3600))
        assert await csms.reservations.cancel(reservation_id) == "Cancelled"
        assert utc_now() < starts, "the cancel came after the window began: the test proves nothing"
        await asyncio.sleep((starts - utc_now()).total_seconds() + 0.2)  # past the start: the timer must not send it
        assert station.received() == []
        # cancelling again changes nothing
        assert await csms.reservations.cancel(reservation_id) == "Cancelled"
    assert await status_of(csms, reservation_id) == "Cancelled"
    assert events == [(reservation_id, "Scheduled"), (reservation_id, "Cancelled")]


async def test_cancelling_a_sent_reservation_asks_the_station(csms: Csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        reservation_id = await csms.reservations.reserve("CP-1", 1, "TAG-1", utc_now(), utc_now() + HOUR)
        assert await status_of(csms, reservation_id) == "Accepted"
        assert await csms.reservations.cancel(reservation_id) == "Cancelled"
        assert station.received() == ["ReserveNow", "CancelReservation"]
        assert station.last("CancelReservation") == {"reservation_id": reservation_id}

        # A station that no longer holds it (it expired there) says Rejected: there is nothing left to
        # cancel, and the row says so.
        other = await csms.reservations.reserve("CP-1", 2, "TAG-2", utc_now(), utc_now() + HOUR)
        station.answer("CancelReservation", "Rejected")
        assert await csms.reservations.cancel(other) == "Cancelled"
        assert station.received()[-1] == "CancelReservation"
    assert [row.status for row in await rows(csms)] == ["Cancelled", "Cancelled"]


async def test_cancelling_a_held_reservation_needs_the_station(csms: Csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version):
        reservation_id = await csms.reservations.reserve("CP-1", 1, "TAG-1", utc_now(), utc_now() + HOUR)
    await eventually(lambda: not csms.registry.is_connected("CP-1"))
    with pytest.raises(StationNotConnectedError):
        await csms.reservations.cancel(reservation_id)
    # the station still holds it: the row must keep saying so
    assert await status_of(csms, reservation_id) == "Accepted"
    with pytest.raises(UnknownReservationError):
        await csms.reservations.cancel(reservation_id + 100)


async def test_cancelling_while_the_reservation_is_on_the_wire_waits_for_the_answer(
    csms: Csms, ocpp_version: str
) -> None:
    id_key = "id" if ocpp_version == "2.0.1" else "reservationId"
    async with connect_raw(csms, "CP-1", subprotocol=subprotocol(ocpp_version)) as raw:
        await wait_registered_raw(csms)
        await csms.reservations.reserve("CP-1", 1, "TAG-1", soon(1.0), soon(3600))
        reserve = await next_call(raw)  # the timer sent it when the window began
        cancelling = asyncio.create_task(csms.reservations.cancel(reserve[3][id_key]))
        assert await raw.no_reply(0.1)  # nothing else is sent before the station answers
        await answer_call(raw, reserve, {"status": "Accepted"})
        cancel = await next_call(raw)
        assert (cancel[2], cancel[3]) == ("CancelReservation", {"reservationId": reserve[3][id_key]})
        await answer_call(raw, cancel, {"status": "Accepted"})
        assert await cancelling == "Cancelled"
    assert [row.status for row in await rows(csms)] == ["Cancelled"]


async def wait_registered_raw(csms: Csms) -> None:
    await eventually(lambda: csms.registry.is_connected("CP-1"))


# --- expiry and use -------------------------------------------------------------------------------


async def test_reservations_whose_window_ends_unused_expire(csms: Csms, ocpp_version: str) -> None:
    events = reservation_events(csms)
    await known_station(csms, "CP-AWAY")
    async with connect(csms, "CP-1", ocpp_version):
        held = await csms.reservations.reserve("CP-1", 1, "TAG-1", utc_now(), soon(0.3))
        assert await status_of(csms, held) == "Accepted"
        # never sent: its station stayed away for the whole window
        never_sent = await csms.reservations.reserve("CP-AWAY", 1, "TAG-2", soon(0.1), soon(0.3))
        await wait_status(csms, held, "Expired")
        await wait_status(csms, never_sent, "Expired")
    assert (held, "Expired") in events and (never_sent, "Expired") in events
    with pytest.raises(ReservationStateError, match="Expired"):
        await csms.reservations.cancel(held)


async def test_a_session_that_names_the_reservation_uses_it(csms: Csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        reservation_id = await csms.reservations.reserve("CP-1", 1, "TAG-R", utc_now(), soon(0.3))
        session = await station.start("TAG-R", reservation_id=reservation_id)
        await asyncio.sleep(0.4)  # past the window's end: a used reservation does not expire
        assert await csms.reservations.sweep() == []
    async with csms.database.read() as db:
        row = await db.get(Reservation, reservation_id)
        transaction = await db.get(Transaction, session.id)
    assert row is not None and transaction is not None
    assert (row.status, row.transaction_id, transaction.reservation_id) == ("Used", session.id, reservation_id)
    with pytest.raises(ReservationStateError, match="Used"):
        await csms.reservations.cancel(reservation_id)


# --- a restart ------------------------------------------------------------------------------------


async def test_a_restarted_csms_still_sends_a_scheduled_reservation(database_url: str, ocpp_version: str) -> None:
    async with running(database_url) as csms:
        await known_station(csms, "CP-1")
        starts = soon(0.3)
        reservation_id = await csms.reservations.reserve("CP-1", 1, "TAG-1", starts, starts + HOUR)
    async with running(database_url) as csms, connect(csms, "CP-1", ocpp_version) as station:
        assert station.received() == []
        await received_reserve_now(station)
        assert utc_now() >= starts
        assert (reserve_now_of(station)["id"], reserve_now_of(station)["expiry"]) == (
            reservation_id,
            format_timestamp(starts + HOUR),
        )
        await wait_status(csms, reservation_id, "Accepted")


async def test_a_restarted_csms_sends_again_what_was_left_unanswered(database_url: str, ocpp_version: str) -> None:
    async with running(database_url) as csms:
        await known_station(csms, "CP-1")
        reservation_id = await csms.reservations.reserve("CP-1", 1, "TAG-1", utc_now(), utc_now() + HOUR)
        # as if the CSMS stopped while the ReserveNow was on the wire
        assert await csms.services.reservations.transition(
            reservation_id, {ReservationStatus.SCHEDULED}, ReservationStatus.REQUESTED
        )
    async with running(database_url) as csms, connect(csms, "CP-1", ocpp_version) as station:
        await received_reserve_now(station)
        assert reserve_now_of(station)["id"] == reservation_id
        await wait_status(csms, reservation_id, "Accepted")


# --- what reserve() refuses -----------------------------------------------------------------------


async def test_impossible_reservations_are_refused(csms: Csms) -> None:
    await known_station(csms, "CP-16", version="1.6")
    manager = csms.reservations
    now = utc_now()
    with pytest.raises(ValueError, match="time zone"):
        await manager.reserve("CP-16", 1, "TAG", datetime(2030, 1, 1), datetime(2030, 1, 2, tzinfo=UTC))
    with pytest.raises(ValueError, match="end after"):
        await manager.reserve("CP-16", 1, "TAG", now + HOUR, now + HOUR)
    with pytest.raises(ValueError, match="ended"):
        await manager.reserve("CP-16", 1, "TAG", now - 2 * HOUR, now - HOUR)
    with pytest.raises(ValueError, match="EVSE"):
        await manager.reserve("CP-16", -1, "TAG", now, now + HOUR)
    with pytest.raises(ValueError, match="energy"):
        await manager.reserve("CP-16", 1, "TAG", now, now + HOUR, energy_kwh=-1)
    with pytest.raises(ValueError, match="1 to 20"):  # 1.6 idTag is CiString20
        await manager.reserve("CP-16", 1, "T" * 21, now, now + HOUR)
    with pytest.raises(UnknownStationError):
        await manager.reserve("CP-NEVER", 1, "TAG", now, now + HOUR)

    first = await manager.reserve("CP-16", 1, "TAG-1", now + HOUR, now + 3 * HOUR)
    with pytest.raises(ReservationConflictError):
        await manager.reserve("CP-16", 1, "TAG-2", now + 2 * HOUR, now + 4 * HOUR)
    # back to back, another EVSE, or after a cancellation: fine
    await manager.reserve("CP-16", 1, "TAG-2", now + 3 * HOUR, now + 4 * HOUR)
    await manager.reserve("CP-16", 2, "TAG-3", now + HOUR, now + 3 * HOUR)
    await manager.cancel(first)
    await manager.reserve("CP-16", 1, "TAG-4", now + 2 * HOUR, now + 2.5 * HOUR)
    assert [row.status for row in await rows(csms)] == ["Cancelled", "Scheduled", "Scheduled", "Scheduled"]
