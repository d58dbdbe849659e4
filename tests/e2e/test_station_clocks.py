"""Stations' own clocks and offline replay, over a real websocket against a real database.

A station's clock may be wrong (never set: 1970; a bad sync: 2100; local time sent without a zone),
and a station that was offline replays what it queued when it reconnects: the same start, stop and
meter values again, in another order. Each is answered as OCPP says and stored without corrupting
the session: a replayed reading is counted once, a session's end is never in the future nor before
its start, and energy figures stay the meter's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from optivgi_csms.domain.time import format_timestamp, utc_now
from optivgi_csms.services.transaction_history import TransactionHistory
from optivgi_csms.store.models import MeterValue, Transaction, TransactionEventRecord
from tests.support.stations import RawStation, connect_raw

TAG = "TAG-1"


async def ok(station: RawStation, action: str, payload: dict[str, Any], message_id: str = "ok") -> dict[str, Any]:
    """Send a valid CALL and return its CALLRESULT payload."""
    reply = await station.call(action, payload, message_id)
    assert reply[:2] == [3, message_id], reply
    return reply[2]


async def transactions(csms: Any) -> list[Transaction]:
    async with csms.database.read() as session:
        return list((await session.scalars(select(Transaction).order_by(Transaction.id))).all())


async def meter_rows(csms: Any) -> list[MeterValue]:
    async with csms.database.read() as session:
        return list((await session.scalars(select(MeterValue).order_by(MeterValue.timestamp, MeterValue.id))).all())


async def energy_so_far(csms: Any, transaction_id: int) -> float | None:
    """The session's energy as the API reports it (the meter's highest reading less its first)."""
    summary = await TransactionHistory(csms.database).get(transaction_id)
    assert summary is not None
    return summary.energy_wh


def at(moment: datetime) -> str:
    return format_timestamp(moment)


def reading(moment: datetime | str, wh: int) -> dict[str, Any]:
    """One 1.6 meterValue entry: the energy register."""
    return {"timestamp": moment if isinstance(moment, str) else at(moment), "sampledValue": [{"value": str(wh)}]}


def start16(moment: datetime | str, meter_wh: int = 1000) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "idTag": TAG,
        "meterStart": meter_wh,
        "timestamp": moment if isinstance(moment, str) else at(moment),
    }


def stop16(transaction_id: int, moment: datetime | str, meter_wh: int, **fields: Any) -> dict[str, Any]:
    return {
        "transactionId": transaction_id,
        "meterStop": meter_wh,
        "timestamp": moment if isinstance(moment, str) else at(moment),
        **fields,
    }


def assert_received_now(stored: datetime | None, before: datetime, after: datetime) -> None:
    """``stored`` is the time the CSMS received the message (it had nothing better)."""
    assert stored is not None
    assert before - timedelta(seconds=1) <= stored.replace(tzinfo=stored.tzinfo or UTC) <= after, (
        stored,
        before,
        after,
    )


# --- OCPP 1.6 ------------------------------------------------------------------------------------


async def test_times_without_a_zone_are_utc_and_a_retransmission_with_one_is_the_same_start(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        first = await ok(station, "StartTransaction", start16("2026-03-02T08:00:00"), "s1")
        again = await ok(station, "StartTransaction", start16("2026-03-02T08:00:00.000Z"), "s2")
        assert again["transactionId"] == first["transactionId"]
        await ok(station, "StopTransaction", stop16(first["transactionId"], "2026-03-02T09:00:00", 6000))
    (transaction,) = await transactions(csms)
    assert (transaction.started_at.replace(tzinfo=UTC), transaction.stopped_at.replace(tzinfo=UTC)) == (
        datetime(2026, 3, 2, 8, tzinfo=UTC),
        datetime(2026, 3, 2, 9, tzinfo=UTC),
    )
    assert transaction.energy_wh == 5000


async def test_a_stop_dated_far_in_the_future_ends_the_session_when_it_arrives(csms) -> None:
    started = utc_now() - timedelta(hours=1)
    async with connect_raw(csms, "CP-1") as station:
        transaction_id = (await ok(station, "StartTransaction", start16(started)))["transactionId"]
        before = utc_now()
        answer = await ok(station, "StopTransaction", stop16(transaction_id, "2100-01-01T00:00:00Z", 8000))
        after = utc_now()
    assert answer == {}
    (transaction,) = await transactions(csms)
    assert_received_now(transaction.stopped_at, before, after)
    assert transaction.energy_wh == 7000
    assert await energy_so_far(csms, transaction_id) == 7000


async def test_a_stop_dated_before_its_start_ends_the_session_when_it_arrives(csms) -> None:
    started = utc_now() - timedelta(hours=1)
    async with connect_raw(csms, "CP-1") as station:
        transaction_id = (await ok(station, "StartTransaction", start16(started)))["transactionId"]
        before = utc_now()
        await ok(station, "StopTransaction", stop16(transaction_id, "1970-01-01T00:00:00Z", 8000))
        after = utc_now()
    (transaction,) = await transactions(csms)
    assert_received_now(transaction.stopped_at, before, after)
    assert transaction.stopped_at.replace(tzinfo=UTC) >= transaction.started_at.replace(tzinfo=UTC)
    assert transaction.energy_wh == 7000


async def test_a_start_dated_far_in_the_future_starts_when_it_arrives_and_is_recognised_when_repeated(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        before = utc_now()
        first = await ok(station, "StartTransaction", start16("2100-01-01T00:00:00Z"), "s1")
        after = utc_now()
        # The retransmission (same tag, same meter start, same wrong time) is the same session.
        again = await ok(station, "StartTransaction", start16("2100-01-01T00:00:00Z"), "s2")
        assert again["transactionId"] == first["transactionId"]
        # The stop carries the same wrong clock, an hour on: the session ends when the stop arrives.
        stop = stop16(first["transactionId"], "2100-01-01T01:00:00Z", 3000)
        await ok(station, "StopTransaction", stop, "e1")
        after_stop = utc_now()
    (transaction,) = await transactions(csms)
    assert_received_now(transaction.started_at, before, after)
    assert_received_now(transaction.stopped_at, before, after_stop)
    assert transaction.stopped_at >= transaction.started_at
    assert transaction.energy_wh == 2000


async def test_a_session_wholly_on_a_clock_stuck_in_1970_keeps_its_own_consistent_times(csms) -> None:
    # Nothing better is known of when it happened; its duration and energy are still right.
    async with connect_raw(csms, "CP-1") as station:
        transaction_id = (await ok(station, "StartTransaction", start16("1970-01-01T00:00:00Z")))["transactionId"]
        await ok(station, "StopTransaction", stop16(transaction_id, "1970-01-01T01:30:00Z", 4000))
    (transaction,) = await transactions(csms)
    assert transaction.stopped_at - transaction.started_at == timedelta(minutes=90)
    assert transaction.energy_wh == 3000


async def test_a_session_replayed_after_reconnecting_is_stored_once_and_counted_once(csms) -> None:
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    readings = [reading(start + timedelta(minutes=minutes), wh) for minutes, wh in ((10, 2000), (20, 3000), (30, 4000))]
    async with connect_raw(csms, "CP-1") as station:
        transaction_id = (await ok(station, "StartTransaction", start16(start)))["transactionId"]
        for index, entry in enumerate(readings[:2]):
            meter = {"connectorId": 1, "transactionId": transaction_id, "meterValue": [entry]}
            await ok(station, "MeterValues", meter, f"m{index}")
    assert await energy_so_far(csms, transaction_id) == 2000

    # Offline, then back: the station replays its queue, newest reading first, and everything again.
    async with connect_raw(csms, "CP-1") as station:
        again = (await ok(station, "StartTransaction", start16(start), "s-again"))["transactionId"]
        assert again == transaction_id
        for index, entry in enumerate([readings[2], readings[0], readings[1], readings[2]]):
            meter = {"connectorId": 1, "transactionId": transaction_id, "meterValue": [entry]}
            await ok(station, "MeterValues", meter, f"r{index}")
        assert await energy_so_far(csms, transaction_id) == 3000
        stop = stop16(transaction_id, start + timedelta(hours=1), 5000, transactionData=readings)
        await ok(station, "StopTransaction", stop, "stop")
    async with connect_raw(csms, "CP-1") as station:
        # The stop replayed too, with a later time and reading: the session ended once.
        await ok(station, "StopTransaction", stop16(transaction_id, start + timedelta(hours=2), 9000), "stop-again")

    (transaction,) = await transactions(csms)
    assert (transaction.meter_stop_wh, transaction.energy_wh) == (5000, 4000)
    assert transaction.stopped_at.replace(tzinfo=UTC) == start + timedelta(hours=1)
    assert [int(row.value_numeric) for row in await meter_rows(csms)] == [2000, 3000, 4000]
    assert await energy_so_far(csms, transaction_id) == 4000


async def test_a_stop_for_an_unknown_transaction_is_accepted_and_its_tag_verdict_given(csms) -> None:
    # 1.6 StopTransaction.conf: idTagInfo answers the stop's idTag; a CSMS that refused the stop would
    # make the station retry it forever, so it is accepted, and logged (its readings are kept unlinked:
    # tests/e2e/test_v16_bad_input.py).
    async with connect_raw(csms, "CP-1") as station:
        answer = await ok(station, "StopTransaction", stop16(4242, "2026-03-02T09:00:00Z", 6000, idTag=TAG))
    assert answer == {"idTagInfo": {"status": "Accepted"}}
    assert await transactions(csms) == []


# --- OCPP 2.0.1 ----------------------------------------------------------------------------------


def event(event_type: str, seq_no: int, moment: datetime | str, wh: int | None = None, **fields: Any) -> dict[str, Any]:
    trigger = {"Started": "CablePluggedIn", "Updated": "MeterValuePeriodic", "Ended": "EVCommunicationLost"}
    timestamp = moment if isinstance(moment, str) else at(moment)
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger[event_type],
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": "TX-1"},
        "evse": {"id": 1, "connectorId": 1},
        **fields,
    }
    if wh is not None:
        payload["meterValue"] = [{"timestamp": timestamp, "sampledValue": [{"value": wh}]}]
    return payload


async def test_an_ended_event_dated_far_in_the_future_ends_the_session_when_it_arrives(csms) -> None:
    started = utc_now() - timedelta(hours=1)
    async with connect_raw(csms, "CP-2", subprotocol="ocpp2.0.1") as station:
        await ok(station, "TransactionEvent", event("Started", 0, started, 1000), "t0")
        before = utc_now()
        await ok(station, "TransactionEvent", event("Ended", 1, "2100-01-01T00:00:00Z", 8000), "t1")
        after = utc_now()
    (transaction,) = await transactions(csms)
    assert_received_now(transaction.stopped_at, before, after)
    assert transaction.energy_wh == 7000
    async with csms.database.read() as session:
        # The station's own time is kept with its event.
        stamps = list(await session.scalars(select(TransactionEventRecord.timestamp).order_by("seq_no")))
    assert stamps[1].replace(tzinfo=UTC) == datetime(2100, 1, 1, tzinfo=UTC)


async def test_an_ended_event_dated_before_the_start_ends_the_session_when_it_arrives(csms) -> None:
    started = utc_now() - timedelta(hours=1)
    async with connect_raw(csms, "CP-2", subprotocol="ocpp2.0.1") as station:
        await ok(station, "TransactionEvent", event("Started", 0, started, 1000), "t0")
        before = utc_now()
        await ok(station, "TransactionEvent", event("Ended", 1, "1970-01-01T00:00:00Z", 8000), "t1")
        after = utc_now()
    (transaction,) = await transactions(csms)
    assert_received_now(transaction.stopped_at, before, after)
    assert transaction.energy_wh == 7000


async def test_events_without_a_zone_are_utc(csms) -> None:
    async with connect_raw(csms, "CP-2", subprotocol="ocpp2.0.1") as station:
        await ok(station, "TransactionEvent", event("Started", 0, "2026-03-02T08:00:00", 1000), "t0")
        await ok(station, "TransactionEvent", event("Ended", 1, "2026-03-02T09:15:00", 3000), "t1")
    (transaction,) = await transactions(csms)
    assert transaction.started_at.replace(tzinfo=UTC) == datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert transaction.stopped_at - transaction.started_at == timedelta(minutes=75)


async def test_events_replayed_after_reconnecting_are_stored_once_and_counted_once(csms) -> None:
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    queued = [
        event("Started", 0, start, 1000),
        event("Updated", 1, start + timedelta(minutes=10), 2000),
        event("Updated", 2, start + timedelta(minutes=20), 3500),
    ]
    async with connect_raw(csms, "CP-2", subprotocol="ocpp2.0.1") as station:
        for index, payload in enumerate(queued[:2]):
            await ok(station, "TransactionEvent", payload, f"t{index}")
    # Back online: the queue again, newest first, then everything once more and the end.
    async with connect_raw(csms, "CP-2", subprotocol="ocpp2.0.1") as station:
        for index, payload in enumerate([queued[2], queued[1], queued[0], *queued]):
            await ok(station, "TransactionEvent", {**payload, "offline": True}, f"r{index}")
        (transaction,) = await transactions(csms)
        assert await energy_so_far(csms, transaction.id) == 2500
        await ok(station, "TransactionEvent", event("Ended", 3, start + timedelta(hours=1), 4000), "end")
        await ok(station, "TransactionEvent", event("Ended", 3, start + timedelta(hours=1), 4000), "end-again")

    (transaction,) = await transactions(csms)
    assert (transaction.meter_start_wh, transaction.meter_stop_wh, transaction.energy_wh) == (1000, 4000, 3000)
    assert transaction.stopped_at.replace(tzinfo=UTC) == start + timedelta(hours=1)
    assert [int(row.value_numeric) for row in await meter_rows(csms)] == [1000, 2000, 3500, 4000]
    async with csms.database.read() as session:
        assert list(await session.scalars(select(TransactionEventRecord.seq_no).order_by("seq_no"))) == [0, 1, 2, 3]
