"""Every message a 2.0.1 station sends, end to end: a station built from ``ocpp.v201.ChargePoint`` talks to
the CSMS over a real websocket (subprotocol ``ocpp2.0.1``); each test checks the OCPP answer and the rows
the CSMS stored. TransactionEvents get the most attention: they are numbered (seqNo), may arrive twice,
late, out of order or offline, and must still make exactly one correct transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import websockets
from ocpp.exceptions import SecurityError
from ocpp.v201 import ChargePoint, call
from sqlalchemy import select

from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.models import (
    Base,
    ChargingLimitRecord,
    ChargingNeedsRecord,
    Connector,
    DataTransferRecord,
    DeviceEvent,
    DeviceVariable,
    IdTag,
    MeterValue,
    ReportedChargingProfile,
    Reservation,
    SecurityEvent,
    Station,
    StatusNotification,
    Transaction,
    TransactionEventRecord,
)
from tests.support.stations import station_url, wait_registered


class Station201(ChargePoint):
    """A 2.0.1 station that only sends: the CSMS's answers come back as ``call_result`` dataclasses."""


@contextlib.asynccontextmanager
async def connect201(csms: Any, station_id: str) -> AsyncIterator[Station201]:
    """A running :class:`Station201` connected to ``csms``."""
    async with websockets.connect(station_url(csms, station_id), subprotocols=["ocpp2.0.1"]) as connection:
        station = Station201(station_id, connection, response_timeout=5)
        task = asyncio.create_task(station.start())
        await wait_registered(csms, station_id)
        try:
            yield station
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task


async def send(station: Station201, payload: Any) -> Any:
    """Send a call and return its answer; a CALLERROR raises (``suppress=False``)."""
    return await station.call(payload, suppress=False)


async def all_rows(csms: Any, model: Any, *where: Any) -> list[Any]:
    async with csms.database.read() as session:
        return list((await session.scalars(select(model).where(*where).order_by(model.id))).all())


async def snapshot(csms: Any) -> dict[str, list[str]]:
    """Every row of every table (the raw-message journal aside), comparable before and after."""
    tables: dict[str, list[str]] = {}
    async with csms.database.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name != "ocpp_journal":
                tables[table.name] = sorted(repr(tuple(row)) for row in (await session.execute(select(table))).all())
    return tables


async def add_rows(csms: Any, *rows: Any) -> None:
    async def op(session: Any) -> None:
        session.add_all(rows)

    await csms.database.write(op)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def energy(timestamp: str, value: float, unit: str = "Wh", multiplier: int | None = None, **fields: Any) -> dict:
    """A ``meterValue`` entry with one reading of the energy register."""
    unit_of_measure: dict[str, Any] = {"unit": unit}
    if multiplier is not None:
        unit_of_measure["multiplier"] = multiplier
    return {"timestamp": timestamp, "sampled_value": [{"value": value, "unit_of_measure": unit_of_measure, **fields}]}


def tx_event(
    event_type: str,
    seq_no: int,
    timestamp: str,
    *,
    transaction_id: str = "TX-1",
    trigger: str | None = None,
    info: dict[str, Any] | None = None,
    **fields: Any,
) -> call.TransactionEvent:
    """A TransactionEvent for ``transaction_id`` (``info`` adds to ``transactionInfo``)."""
    default_trigger = {"Started": "CablePluggedIn", "Updated": "MeterValuePeriodic", "Ended": "EVCommunicationLost"}
    return call.TransactionEvent(
        event_type=event_type,
        timestamp=timestamp,
        trigger_reason=trigger or default_trigger[event_type],
        seq_no=seq_no,
        transaction_info={"transaction_id": transaction_id, **(info or {})},
        **fields,
    )


EVSE_1 = {"id": 1, "connector_id": 1}
TAG_1 = {"id_token": "TAG-1", "type": "ISO14443"}
SIGNED = {
    "signed_meter_data": "QUJDREVGRw==",
    "signing_method": "ECDSA-secp256r1-SHA256",
    "encoding_method": "OCMF",
    "public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",
}


def full_session(transaction_id: str = "TX-1") -> list[call.TransactionEvent]:
    """Started, Updated and Ended of a session on EVSE 1 that takes 5 kWh from 1 kWh to 6 kWh."""
    return [
        tx_event(
            "Started",
            0,
            "2026-03-02T08:00:00Z",
            transaction_id=transaction_id,
            trigger="Authorized",
            info={"charging_state": "EVConnected", "remote_start_id": 42},
            evse=EVSE_1,
            id_token=TAG_1,
            meter_value=[
                energy("2026-03-02T08:00:00Z", 1000, context="Transaction.Begin", signed_meter_value=SIGNED),
            ],
        ),
        tx_event(
            "Updated",
            1,
            "2026-03-02T08:30:00Z",
            transaction_id=transaction_id,
            trigger="ChargingStateChanged",
            info={"charging_state": "Charging"},
            number_of_phases_used=3,
            cable_max_current=32,
            meter_value=[
                {
                    "timestamp": "2026-03-02T08:30:00Z",
                    # 3.5 kWh written as 35 hWh: the unit's multiplier applies.
                    "sampled_value": [
                        {"value": 35, "unit_of_measure": {"unit": "Wh", "multiplier": 2}},
                        *(
                            {
                                "value": amps,
                                "measurand": "Current.Import",
                                "phase": phase,
                                "unit_of_measure": {"unit": "A"},
                            }
                            for phase, amps in (("L1", 16.1), ("L2", 15.9), ("L3", 16.0))
                        ),
                        {"value": 11.1, "measurand": "Power.Active.Import", "unit_of_measure": {"unit": "kW"}},
                    ],
                }
            ],
        ),
        tx_event(
            "Ended",
            2,
            "2026-03-02T09:00:00Z",
            transaction_id=transaction_id,
            trigger="EVCommunicationLost",
            info={"charging_state": "Idle", "stopped_reason": "EVDisconnected"},
            meter_value=[energy("2026-03-02T09:00:00Z", 6.0, "kWh", context="Transaction.End")],
        ),
    ]


# --- TransactionEvent ------------------------------------------------------------------------------


async def test_a_full_session_is_one_transaction_with_its_events_and_meter_values(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        answers = [await send(station, event) for event in full_session()]

    # A TransactionEvent carrying an idToken is answered with the token's verdict; the others without.
    assert answers[0].id_token_info == {"status": "Accepted"}
    assert [answer.id_token_info for answer in answers[1:]] == [None, None]

    (transaction,) = await all_rows(csms, Transaction)
    assert (transaction.station_id, transaction.ocpp_transaction_id) == ("CP-1", "TX-1")
    assert (transaction.evse_id, transaction.connector_id) == (1, 1)
    assert (transaction.started_at, transaction.stopped_at) == (at("2026-03-02T08:00:00Z"), at("2026-03-02T09:00:00Z"))
    assert transaction.start_confirmed
    assert (transaction.meter_start_wh, transaction.meter_stop_wh, transaction.energy_wh) == (1000, 6000, 5000)
    assert (transaction.charging_state, transaction.stop_reason, transaction.last_seq_no) == (
        "Idle",
        "EVDisconnected",
        2,
    )
    assert (transaction.id_tag, transaction.id_token_type, transaction.authorization_status) == (
        "TAG-1",
        "ISO14443",
        "Accepted",
    )
    assert (transaction.remote_start_id, transaction.stop_id_tag) == (42, None)

    events = await all_rows(csms, TransactionEventRecord)
    assert [(e.transaction_id, e.seq_no, e.event_type, e.trigger_reason, e.charging_state) for e in events] == [
        (transaction.id, 0, "Started", "Authorized", "EVConnected"),
        (transaction.id, 1, "Updated", "ChargingStateChanged", "Charging"),
        (transaction.id, 2, "Ended", "EVCommunicationLost", "Idle"),
    ]
    assert (events[0].id_tag, events[0].remote_start_id, events[0].offline) == ("TAG-1", 42, False)
    assert (events[1].number_of_phases_used, events[1].cable_max_current_a) == (3, 32)
    assert events[2].stopped_reason == "EVDisconnected"

    samples = await all_rows(csms, MeterValue)
    assert {m.transaction_id for m in samples} == {transaction.id}
    assert {(m.evse_id, m.connector_id) for m in samples} == {(1, 1)}
    readings = {(m.measurand, m.phase, m.context): (m.value_numeric, m.unit) for m in samples}
    assert readings == {
        ("Energy.Active.Import.Register", None, "Transaction.Begin"): (1000, "Wh"),
        ("Energy.Active.Import.Register", None, "Sample.Periodic"): (3500, "Wh"),
        ("Current.Import", "L1", "Sample.Periodic"): (16.1, "A"),
        ("Current.Import", "L2", "Sample.Periodic"): (15.9, "A"),
        ("Current.Import", "L3", "Sample.Periodic"): (16.0, "A"),
        ("Power.Active.Import", None, "Sample.Periodic"): (11.1, "kW"),
        ("Energy.Active.Import.Register", None, "Transaction.End"): (6.0, "kWh"),
    }
    (signed,) = [m for m in samples if m.signed_data is not None]
    assert signed.context == "Transaction.Begin"
    assert signed.signed_data["signedMeterData"] == SIGNED["signed_meter_data"]  # stored with the keys as sent
    assert signed.signed_data["publicKey"] == SIGNED["public_key"]


async def test_unit_multipliers_give_exact_readings(csms) -> None:
    # A multiplier scales by a power of ten: 1.1 kWh sent as 1.1 with multiplier 3 is 1100 Wh, not
    # 1100.0000000000002 (binary floating point), and 3 with multiplier -1 is 0.3.
    async with connect201(csms, "CP-1") as station:
        await send(
            station,
            tx_event(
                "Started",
                0,
                "2026-03-02T08:00:00Z",
                evse=EVSE_1,
                meter_value=[
                    {
                        "timestamp": "2026-03-02T08:00:00Z",
                        "sampled_value": [
                            {"value": 1.1, "unit_of_measure": {"unit": "Wh", "multiplier": 3}},
                            {
                                "value": 3,
                                "measurand": "Current.Offered",
                                "unit_of_measure": {"unit": "A", "multiplier": -1},
                            },
                        ],
                    }
                ],
            ),
        )
    values = {m.measurand: (Decimal(m.value), m.value_numeric) for m in await all_rows(csms, MeterValue)}
    assert values == {"Energy.Active.Import.Register": (1100, 1100), "Current.Offered": (Decimal("0.3"), 0.3)}
    (transaction,) = await all_rows(csms, Transaction)
    assert transaction.meter_start_wh == 1100


async def test_the_same_seq_no_twice_is_stored_once(csms) -> None:
    started, updated, ended = full_session()
    async with connect201(csms, "CP-1") as station:
        await send(station, started)
        first = await send(station, updated)
        before = await snapshot(csms)

        again = await send(station, updated)
        assert again == first
        # Same (transactionId, seqNo) with other content: still the event already stored.
        changed = tx_event("Updated", 1, "2026-03-02T08:45:00Z", info={"charging_state": "SuspendedEV"})
        await send(station, changed)
        assert await snapshot(csms) == before

        first_end = await send(station, ended)
        before = await snapshot(csms)
        # The Ended event repeated, as a simulator does when it shuts down: the energy is not counted twice.
        assert await send(station, ended) == first_end
        assert await snapshot(csms) == before

    (transaction,) = await all_rows(csms, Transaction)
    assert (transaction.energy_wh, transaction.charging_state) == (5000, "Idle")
    assert [e.seq_no for e in await all_rows(csms, TransactionEventRecord)] == [0, 1, 2]
    assert len(await all_rows(csms, MeterValue)) == 7


async def test_a_second_ended_event_does_not_move_the_end(csms) -> None:
    # A simulator shutting down ends its sessions again, under the next seqNo and a later time.
    started, updated, ended = full_session()
    async with connect201(csms, "CP-1") as station:
        for event in (started, updated, ended):
            await send(station, event)
        await send(
            station,
            tx_event("Ended", 3, "2026-03-02T09:05:00Z", trigger="AbnormalCondition", info={"stopped_reason": "Other"}),
        )
    (transaction,) = await all_rows(csms, Transaction)
    assert (transaction.stopped_at, transaction.stop_reason) == (at("2026-03-02T09:00:00Z"), "EVDisconnected")
    assert (transaction.energy_wh, transaction.last_seq_no) == (5000, 3)
    assert [e.seq_no for e in await all_rows(csms, TransactionEventRecord)] == [0, 1, 2, 3]  # kept, not folded in


async def test_events_out_of_order_and_offline_make_one_correct_transaction(csms) -> None:
    # Buffered while offline, weeks ago, delivered last first: Ended, then the Updates, then Started.
    started = tx_event(
        "Started",
        0,
        "2026-01-10T18:00:00Z",
        offline=True,
        evse={"id": 2, "connector_id": 1},
        id_token=TAG_1,
        info={"charging_state": "EVConnected"},
        meter_value=[energy("2026-01-10T18:00:00Z", 20_000)],
    )
    charging = tx_event(
        "Updated",
        1,
        "2026-01-10T18:05:00Z",
        offline=True,
        info={"charging_state": "Charging"},
        meter_value=[energy("2026-01-10T18:05:00Z", 20.4, "kWh")],
    )
    suspended = tx_event(
        "Updated",
        2,
        "2026-01-10T19:00:00Z",
        offline=True,
        info={"charging_state": "SuspendedEV"},
        meter_value=[energy("2026-01-10T19:00:00Z", 27_500)],
    )
    # The Ended event reports no charging state: the newest one that does (seqNo 2) stays.
    ended = tx_event(
        "Ended",
        3,
        "2026-01-10T20:00:00Z",
        offline=True,
        info={"stopped_reason": "Local"},
        id_token={"id_token": "TAG-1", "type": "ISO14443"},
        meter_value=[energy("2026-01-10T20:00:00Z", 28_000)],
    )
    async with connect201(csms, "CP-1") as station:
        await send(station, ended)
        (early,) = await all_rows(csms, Transaction)
        assert not early.start_confirmed and early.stopped_at == at("2026-01-10T20:00:00Z")

        await send(station, suspended)
        await send(station, charging)
        await send(station, started)

    (transaction,) = await all_rows(csms, Transaction)
    assert (transaction.started_at, transaction.stopped_at) == (at("2026-01-10T18:00:00Z"), at("2026-01-10T20:00:00Z"))
    assert transaction.start_confirmed
    assert (transaction.evse_id, transaction.connector_id) == (2, 1)
    assert (transaction.meter_start_wh, transaction.meter_stop_wh, transaction.energy_wh) == (20_000, 28_000, 8000)
    assert (transaction.charging_state, transaction.stop_reason, transaction.last_seq_no) == ("SuspendedEV", "Local", 3)
    # The Ended event's token stopped the session, as a 1.6 StopTransaction's idTag does.
    assert (transaction.id_tag, transaction.stop_id_tag) == ("TAG-1", "TAG-1")
    events = await all_rows(csms, TransactionEventRecord)
    assert [e.seq_no for e in events] == [3, 2, 1, 0]  # arrival order, all kept
    assert all(e.offline for e in events)
    samples = await all_rows(csms, MeterValue)
    assert len(samples) == 4 and {m.transaction_id for m in samples} == {transaction.id}


async def test_an_event_without_evse_arriving_first_takes_the_evse_of_a_later_one(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        await send(
            station,
            tx_event(
                "Updated",
                1,
                "2026-03-02T08:10:00Z",
                info={"charging_state": "Charging"},
                meter_value=[energy("2026-03-02T08:10:00Z", 1500)],
            ),
        )
        await send(
            station,
            tx_event(
                "Started",
                0,
                "2026-03-02T08:00:00Z",
                evse={"id": 3, "connector_id": 2},
                meter_value=[energy("2026-03-02T08:00:00Z", 1000)],
            ),
        )
        # The EVSE is known now: charging needs on EVSE 3 find this session.
        await send(
            station,
            call.NotifyEVChargingNeeds(evse_id=3, charging_needs={"requested_energy_transfer": "AC_three_phase"}),
        )

    (transaction,) = await all_rows(csms, Transaction)
    assert (transaction.evse_id, transaction.connector_id, transaction.started_at) == (3, 2, at("2026-03-02T08:00:00Z"))
    assert (transaction.meter_start_wh, transaction.charging_state) == (1000, "Charging")
    samples = await all_rows(csms, MeterValue)
    # Every sample of the session is on its EVSE, also those that came before the EVSE was named.
    assert sorted((m.evse_id, m.connector_id, m.value_numeric) for m in samples) == [(3, 2, 1000), (3, 2, 1500)]
    (needs,) = await all_rows(csms, ChargingNeedsRecord)
    assert needs.transaction_id == transaction.id


async def test_a_reading_the_evse_already_holds_is_kept_once_when_the_evse_becomes_known(csms) -> None:
    reading = energy("2026-03-02T08:10:00Z", 1500)
    async with connect201(csms, "CP-1") as station:
        await send(station, tx_event("Updated", 1, "2026-03-02T08:10:00Z", meter_value=[reading]))
        # The same reading reported for EVSE 1 outside the session (the meter's periodic sample).
        await send(station, call.MeterValues(evse_id=1, meter_value=[reading]))
        answer = await send(station, tx_event("Started", 0, "2026-03-02T08:00:00Z", evse=EVSE_1))
        assert answer is not None  # answered, not an InternalError from the uniqueness index

    (transaction,) = await all_rows(csms, Transaction)
    assert (transaction.evse_id, transaction.start_confirmed) == (1, True)
    (sample,) = await all_rows(csms, MeterValue)
    assert (sample.evse_id, sample.connector_id, sample.value_numeric) == (1, 1, 1500)


async def test_sessions_sharing_a_place_and_a_moment_are_all_stored(csms) -> None:
    # A power cut ends both EVSEs' sessions at once; the queued Ended events (no evse) come first, so
    # both sessions are first seen at the same place (EVSE unknown) and time. A station reusing a
    # start time on one EVSE under a new transaction id is a second way to get there.
    async with connect201(csms, "CP-1") as station:
        for transaction_id, seq_no in (("T-A", 4), ("T-B", 6)):
            answer = await send(
                station, tx_event("Ended", seq_no, "2026-01-10T20:00:00Z", transaction_id=transaction_id, offline=True)
            )
            assert answer is not None  # answered, not an InternalError the station would resend forever
        for transaction_id in ("T-C", "T-D"):
            await send(
                station, tx_event("Started", 0, "2026-03-02T08:00:00Z", transaction_id=transaction_id, evse=EVSE_1)
            )
        # T-A's Started arrives last and names its EVSE: it moves there, with its true start.
        await send(station, tx_event("Started", 0, "2026-01-10T18:00:00Z", transaction_id="T-A", evse={"id": 2}))

    rows = {t.ocpp_transaction_id: t for t in await all_rows(csms, Transaction)}
    assert sorted(rows) == ["T-A", "T-B", "T-C", "T-D"]
    assert (rows["T-A"].evse_id, rows["T-A"].started_at, rows["T-A"].stopped_at) == (
        2,
        at("2026-01-10T18:00:00Z"),
        at("2026-01-10T20:00:00Z"),
    )
    assert rows["T-B"].stopped_at == at("2026-01-10T20:00:00Z")
    # Same place, same moment, each with its true time: 2.0.1 sessions are told apart by their ids.
    assert rows["T-B"].started_at == at("2026-01-10T20:00:00Z")
    assert rows["T-C"].started_at == rows["T-D"].started_at == at("2026-03-02T08:00:00Z")
    assert len(await all_rows(csms, TransactionEventRecord)) == 5


async def test_a_session_stopped_with_another_token_keeps_both(make_csms) -> None:
    csms = await make_csms(unknown_id_tags="reject")
    now = utc_now()
    await add_rows(
        csms,
        IdTag(id_tag="DRIVER", status="Accepted", created_at=now),
        IdTag(id_tag="OPERATOR", status="Accepted", token_type="Central", created_at=now),
    )
    async with connect201(csms, "CP-1") as station:
        await send(
            station,
            tx_event(
                "Started", 0, "2026-03-02T08:00:00Z", evse=EVSE_1, id_token={"id_token": "DRIVER", "type": "ISO14443"}
            ),
        )
        stop = await send(
            station,
            tx_event(
                "Ended",
                1,
                "2026-03-02T09:00:00Z",
                trigger="StopAuthorized",
                info={"stopped_reason": "Local"},
                id_token={"id_token": "OPERATOR", "type": "Central"},
            ),
        )
    assert stop.id_token_info["status"] == "Accepted"
    (transaction,) = await all_rows(csms, Transaction)
    assert (transaction.id_tag, transaction.id_token_type, transaction.stop_id_tag) == (
        "DRIVER",
        "ISO14443",
        "OPERATOR",
    )
    assert (transaction.stop_reason, transaction.stopped_at) == ("Local", at("2026-03-02T09:00:00Z"))


async def test_a_reservation_named_in_an_event_is_used_by_the_session(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        reservation_id = await csms.services.reservations.create("CP-1", 1, "TAG-1", utc_now() + timedelta(hours=1))
        await send(
            station,
            tx_event("Started", 0, "2026-03-02T08:00:00Z", evse=EVSE_1, id_token=TAG_1, reservation_id=reservation_id),
        )
    (transaction,) = await all_rows(csms, Transaction)
    (reservation,) = await all_rows(csms, Reservation)
    assert (reservation.status, reservation.transaction_id) == ("Used", transaction.id)
    assert transaction.reservation_id == reservation_id


async def test_a_reservation_of_another_station_is_not_touched(csms) -> None:
    async with connect201(csms, "CP-1") as one, connect201(csms, "CP-2"):
        other = await csms.services.reservations.create("CP-2", 1, "TAG-1", utc_now() + timedelta(hours=1))
        await send(one, tx_event("Started", 0, "2026-03-02T08:00:00Z", evse=EVSE_1, reservation_id=other))
    (reservation,) = await all_rows(csms, Reservation)
    assert (reservation.status, reservation.transaction_id) == ("Requested", None)


async def test_remote_start_id_is_stored_on_the_transaction(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        # The remote start id may come only in a later event (the session began before the request).
        await send(station, tx_event("Started", 0, "2026-03-02T08:00:00Z", evse=EVSE_1))
        await send(
            station,
            tx_event("Updated", 1, "2026-03-02T08:01:00Z", trigger="RemoteStart", info={"remote_start_id": 777}),
        )
    (transaction,) = await all_rows(csms, Transaction)
    assert transaction.remote_start_id == 777


async def test_id_token_info_follows_the_verdict_on_the_token(make_csms) -> None:
    csms = await make_csms(unknown_id_tags="reject")
    now = utc_now()
    expiry = now + timedelta(days=30)
    await add_rows(
        csms,
        IdTag(id_tag="GOOD", status="Accepted", parent_id_tag="FLEET", expiry_date=expiry, created_at=now),
        IdTag(id_tag="BLOCKED", status="Blocked", created_at=now),
        IdTag(id_tag="OLD", status="Accepted", expiry_date=now - timedelta(days=1), created_at=now),
    )

    def token(name: str) -> dict[str, str]:
        return {"id_token": name, "type": "ISO14443"}

    async with connect201(csms, "CP-1") as station:
        good = (await send(station, call.Authorize(id_token=token("GOOD")))).id_token_info
        assert good["status"] == "Accepted"
        assert good["group_id_token"] == {"id_token": "FLEET", "type": "Central"}
        assert at(good["cache_expiry_date_time"]) == expiry.replace(microsecond=expiry.microsecond // 1000 * 1000)
        for name, status in (("BLOCKED", "Blocked"), ("OLD", "Expired"), ("STRANGER", "Invalid")):
            answer = await send(station, call.Authorize(id_token=token(name)))
            assert answer.id_token_info["status"] == status, name

        # A session started offline with a blocked token is still recorded, with the verdict.
        started = await send(
            station, tx_event("Started", 0, "2026-03-02T08:00:00Z", evse=EVSE_1, id_token=token("BLOCKED"))
        )
        assert started.id_token_info["status"] == "Blocked"
        stranger = await send(
            station,
            tx_event(
                "Started", 0, "2026-03-02T08:00:00Z", transaction_id="TX-2", evse={"id": 2}, id_token=token("STRANGER")
            ),
        )
        assert stranger.id_token_info["status"] == "Invalid"

    transactions = await all_rows(csms, Transaction)
    assert [(t.ocpp_transaction_id, t.id_tag, t.authorization_status) for t in transactions] == [
        ("TX-1", "BLOCKED", "Blocked"),
        ("TX-2", "STRANGER", "Invalid"),
    ]


async def test_a_no_authorization_token_names_nobody_and_is_accepted(make_csms) -> None:
    csms = await make_csms(unknown_id_tags="reject")
    free = {"id_token": "", "type": "NoAuthorization"}
    async with connect201(csms, "CP-1") as station:
        assert (await send(station, call.Authorize(id_token=free))).id_token_info == {"status": "Accepted"}
        started = await send(station, tx_event("Started", 0, "2026-03-02T08:00:00Z", evse=EVSE_1, id_token=free))
        # TransactionEventResponse: idTokenInfo "is required when the request contained an idToken".
        assert started.id_token_info == {"status": "Accepted"}
    (transaction,) = await all_rows(csms, Transaction)
    assert transaction.id_tag is None  # a free-charging session belongs to no tag
    (event,) = await all_rows(csms, TransactionEventRecord)
    assert (event.id_tag, event.id_token_type) == (None, "NoAuthorization")


async def test_two_stations_with_the_same_transaction_name_stay_separate(csms) -> None:
    async def session(station_id: str, wh: int) -> None:
        async with connect201(csms, station_id) as station:
            await send(
                station,
                tx_event(
                    "Started",
                    0,
                    "2026-03-02T08:00:00Z",
                    transaction_id="T-1",
                    evse=EVSE_1,
                    meter_value=[energy("2026-03-02T08:00:00Z", 0)],
                ),
            )
            await send(
                station,
                tx_event(
                    "Updated",
                    1,
                    "2026-03-02T08:30:00Z",
                    transaction_id="T-1",
                    meter_value=[energy("2026-03-02T08:30:00Z", wh // 2)],
                ),
            )
            await send(
                station,
                tx_event(
                    "Ended",
                    2,
                    "2026-03-02T09:00:00Z",
                    transaction_id="T-1",
                    meter_value=[energy("2026-03-02T09:00:00Z", wh)],
                ),
            )

    await asyncio.gather(session("CP-A", 4000), session("CP-B", 9000))

    transactions = await all_rows(csms, Transaction)
    assert sorted((t.station_id, t.ocpp_transaction_id, t.energy_wh) for t in transactions) == [
        ("CP-A", "T-1", 4000),
        ("CP-B", "T-1", 9000),
    ]
    by_id = {t.id: t.station_id for t in transactions}
    events = await all_rows(csms, TransactionEventRecord)
    assert sorted((by_id[e.transaction_id], e.station_id, e.seq_no) for e in events) == [
        (station, station, seq) for station in ("CP-A", "CP-B") for seq in range(3)
    ]
    for sample in await all_rows(csms, MeterValue):
        assert by_id[sample.transaction_id] == sample.station_id


# --- NotifyEVChargingNeeds -------------------------------------------------------------------------


async def test_ev_charging_needs_are_stored_and_answered_per_the_spec(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        await send(station, tx_event("Started", 0, "2026-03-02T08:00:00Z", evse=EVSE_1))
        ac = await send(
            station,
            call.NotifyEVChargingNeeds(
                evse_id=1,
                max_schedule_tuples=12,
                charging_needs={
                    "requested_energy_transfer": "AC_three_phase",
                    "departure_time": "2026-03-02T17:30:00+01:00",
                    "ac_charging_parameters": {
                        "energy_amount": 22000,
                        "ev_min_current": 6,
                        "ev_max_current": 32,
                        "ev_max_voltage": 400,
                    },
                },
            ),
        )
        dc = await send(
            station,
            call.NotifyEVChargingNeeds(
                evse_id=2,
                charging_needs={
                    "requested_energy_transfer": "DC",
                    "dc_charging_parameters": {
                        "ev_max_current": 200,
                        "ev_max_voltage": 800,
                        "energy_amount": 40000,
                        "ev_max_power": 150000,
                        "state_of_charge": 35,
                        "ev_energy_capacity": 77000,
                        "full_soc": 100,
                        "bulk_soc": 80,
                    },
                },
            ),
        )
        # With smart charging on for the site, the CSMS promises a schedule.
        csms.services.charging_needs.schedules_available = True
        accepted = await send(
            station,
            call.NotifyEVChargingNeeds(evse_id=1, charging_needs={"requested_energy_transfer": "AC_single_phase"}),
        )

    # Smart charging is off: no schedule will come, and the answer says so (K15: Rejected).
    assert ac.status == "Rejected" and ac.status_info["reason_code"] == "NoSchedule"
    assert dc.status == "Rejected"
    assert accepted.status == "Accepted" and accepted.status_info is None

    (transaction,) = await all_rows(csms, Transaction)
    first, second, third = await all_rows(csms, ChargingNeedsRecord)
    assert (first.station_id, first.evse_id, first.transaction_id, first.status) == (
        "CP-1",
        1,
        transaction.id,
        "Rejected",
    )
    assert first.requested_energy_transfer == "AC_three_phase"
    assert first.departure_time == at("2026-03-02T16:30:00Z")
    assert (first.energy_amount_wh, first.ev_min_current_a, first.ev_max_current_a, first.ev_max_voltage_v) == (
        22000,
        6,
        32,
        400,
    )
    assert first.max_schedule_tuples == 12
    assert (second.evse_id, second.transaction_id, second.requested_energy_transfer) == (2, None, "DC")
    assert (second.ev_max_current_a, second.ev_max_voltage_v, second.energy_amount_wh, second.ev_max_power_w) == (
        200,
        800,
        40000,
        150000,
    )
    assert (second.state_of_charge, second.ev_energy_capacity_wh, second.ev_min_current_a) == (35, 77000, None)
    assert (third.status, third.transaction_id, third.energy_amount_wh) == ("Accepted", transaction.id, None)


async def test_charging_needs_after_the_session_ended_link_to_no_session(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        await send(station, tx_event("Started", 0, "2026-03-02T08:00:00Z", evse=EVSE_1))
        await send(station, tx_event("Ended", 1, "2026-03-02T08:10:00Z"))
        await send(station, call.NotifyEVChargingNeeds(evse_id=1, charging_needs={"requested_energy_transfer": "DC"}))
    (needs,) = await all_rows(csms, ChargingNeedsRecord)
    assert needs.transaction_id is None


# --- NotifyReport ----------------------------------------------------------------------------------


def report_item(
    component: str,
    variable: str,
    *attributes: dict[str, Any],
    evse: dict[str, int] | None = None,
    component_instance: str | None = None,
    variable_instance: str | None = None,
    **characteristics: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "component": {"name": component},
        "variable": {"name": variable},
        "variable_attribute": list(attributes),
        "variable_characteristics": {"supports_monitoring": False, **characteristics},
    }
    if evse is not None:
        item["component"]["evse"] = evse
    if component_instance is not None:
        item["component"]["instance"] = component_instance
    if variable_instance is not None:
        item["variable"]["instance"] = variable_instance
    return item


REPORT_PART_1 = [
    report_item(
        "SmartChargingCtrlr",
        "Enabled",
        {"type": "Actual", "value": "true", "mutability": "ReadWrite", "persistent": True, "constant": False},
        data_type="boolean",
    ),
    report_item(
        "SmartChargingCtrlr",
        "RateUnit",
        {"value": "A,W", "mutability": "ReadOnly", "constant": True},
        data_type="MemberList",
        values_list="A,W",
    ),
    report_item(
        "SmartChargingCtrlr",
        "PeriodsPerSchedule",
        {"value": "24", "mutability": "ReadOnly"},
        data_type="integer",
        min_limit=1,
        max_limit=1024,
    ),
    report_item(
        "SmartChargingCtrlr",
        "LimitChangeSignificance",
        {"value": "5.0", "mutability": "ReadWrite"},
        data_type="decimal",
        unit="Percent",
    ),
    report_item(
        "SmartChargingCtrlr", "ProfileStackLevel", {"value": "8", "mutability": "ReadOnly"}, data_type="integer"
    ),
]
REPORT_PART_2 = [
    report_item("AuthCtrlr", "Enabled", {"value": "true", "mutability": "ReadWrite"}, data_type="boolean"),
    report_item(
        "AuthCtrlr", "LocalAuthorizeOffline", {"value": "false", "mutability": "ReadWrite"}, data_type="boolean"
    ),
    report_item(
        "EVSE",
        "Power",
        {"type": "Actual", "value": "0", "mutability": "ReadOnly"},
        {"type": "MaxSet", "value": "22000", "mutability": "ReadWrite"},
        evse={"id": 1},
        data_type="decimal",
        unit="W",
        max_limit=22000,
    ),
    report_item(
        "Connector",
        "ConnectorType",
        {"value": "cType2", "mutability": "ReadOnly"},
        evse={"id": 1, "connector_id": 1},
        data_type="string",
    ),
    report_item(
        "OCPPCommCtrlr",
        "MessageTimeout",
        {"value": "30", "mutability": "ReadWrite"},
        variable_instance="Default",
        data_type="integer",
    ),
    report_item("TokenReader", "Enabled", {"value": "true"}, component_instance="Front", data_type="boolean"),
]


def notify_report(request_id: int, seq_no: int, report_data: list[dict[str, Any]], *, tbc: bool) -> call.NotifyReport:
    return call.NotifyReport(
        request_id=request_id, generated_at="2026-03-02T08:00:00Z", seq_no=seq_no, report_data=report_data, tbc=tbc
    )


def attribute_key(row: DeviceVariable) -> tuple[Any, ...]:
    return (
        row.component,
        row.component_instance,
        row.evse_id,
        row.connector_id,
        row.variable,
        row.variable_instance,
        row.attribute_type,
    )


async def test_a_device_model_report_in_parts_is_stored(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        assert await send(station, notify_report(1, 0, REPORT_PART_1, tbc=True)) is not None
        await send(station, notify_report(1, 1, REPORT_PART_2, tbc=False))

    rows = {attribute_key(row): row for row in await all_rows(csms, DeviceVariable)}
    assert set(rows) == {
        ("SmartChargingCtrlr", None, None, None, "Enabled", None, "Actual"),
        ("SmartChargingCtrlr", None, None, None, "RateUnit", None, "Actual"),
        ("SmartChargingCtrlr", None, None, None, "PeriodsPerSchedule", None, "Actual"),
        ("SmartChargingCtrlr", None, None, None, "LimitChangeSignificance", None, "Actual"),
        ("SmartChargingCtrlr", None, None, None, "ProfileStackLevel", None, "Actual"),
        ("AuthCtrlr", None, None, None, "Enabled", None, "Actual"),
        ("AuthCtrlr", None, None, None, "LocalAuthorizeOffline", None, "Actual"),
        ("EVSE", None, 1, None, "Power", None, "Actual"),
        ("EVSE", None, 1, None, "Power", None, "MaxSet"),
        ("Connector", None, 1, 1, "ConnectorType", None, "Actual"),
        ("OCPPCommCtrlr", None, None, None, "MessageTimeout", "Default", "Actual"),
        ("TokenReader", "Front", None, None, "Enabled", None, "Actual"),
    }
    assert {row.station_id for row in rows.values()} == {"CP-1"}

    def described(key: tuple[Any, ...]) -> dict[str, Any]:
        """The stored description of one attribute, without the fields that are not set."""
        row = rows[key]
        fields = ("value", "mutability", "persistent", "constant", "data_type", "unit", "min_limit", "max_limit")
        described = {name: getattr(row, name) for name in (*fields, "values_list")}
        return {name: value for name, value in described.items() if value is not None}

    smart = ("SmartChargingCtrlr", None, None, None)
    assert described((*smart, "Enabled", None, "Actual")) == {
        "value": "true",
        "mutability": "ReadWrite",
        "persistent": True,
        "constant": False,
        "data_type": "boolean",
    }
    assert described((*smart, "RateUnit", None, "Actual")) == {
        "value": "A,W",
        "mutability": "ReadOnly",
        "constant": True,
        "data_type": "MemberList",
        "values_list": "A,W",
    }
    assert described((*smart, "PeriodsPerSchedule", None, "Actual")) == {
        "value": "24",
        "mutability": "ReadOnly",
        "data_type": "integer",
        "min_limit": 1,
        "max_limit": 1024,
    }
    assert described((*smart, "LimitChangeSignificance", None, "Actual")) == {
        "value": "5.0",
        "mutability": "ReadWrite",
        "data_type": "decimal",
        "unit": "Percent",
    }
    evse_power = ("EVSE", None, 1, None, "Power", None)
    assert described((*evse_power, "Actual")) == {
        "value": "0",
        "mutability": "ReadOnly",
        "data_type": "decimal",
        "unit": "W",
        "max_limit": 22000,
    }
    assert described((*evse_power, "MaxSet"))["value"] == "22000"
    assert described(("Connector", None, 1, 1, "ConnectorType", None, "Actual"))["value"] == "cType2"
    # Read back through the service, by component, as the scheduler does.
    auth = await csms.services.device_model.variables("CP-1", "AuthCtrlr")
    assert [(row.variable, row.value) for row in auth] == [("Enabled", "true"), ("LocalAuthorizeOffline", "false")]


async def test_a_later_report_updates_the_device_model_without_duplicates(csms) -> None:
    async with connect201(csms, "CP-1") as station, connect201(csms, "CP-2") as other:
        await send(station, notify_report(1, 0, REPORT_PART_1 + REPORT_PART_2, tbc=False))
        await send(other, notify_report(5, 0, REPORT_PART_1[:1], tbc=False))
        count = len(await all_rows(csms, DeviceVariable))

        changed = [
            report_item(
                "SmartChargingCtrlr", "Enabled", {"value": "false", "mutability": "ReadWrite"}, data_type="boolean"
            ),
            report_item(
                "EVSE", "Power", {"type": "MaxSet", "value": "11000"}, evse={"id": 1}, data_type="decimal", unit="W"
            ),
        ]
        await send(station, notify_report(2, 0, changed, tbc=False))

    rows = await all_rows(csms, DeviceVariable)
    assert len(rows) == count
    values = {(row.station_id, row.component, row.variable, row.attribute_type): row.value for row in rows}
    assert values[("CP-1", "SmartChargingCtrlr", "Enabled", "Actual")] == "false"
    assert values[("CP-1", "EVSE", "Power", "MaxSet")] == "11000"
    assert values[("CP-1", "EVSE", "Power", "Actual")] == "0"  # not in the later report: unchanged
    assert values[("CP-2", "SmartChargingCtrlr", "Enabled", "Actual")] == "true"  # another station's


# --- charging limits and reported profiles ---------------------------------------------------------

SCHEDULE_201 = {
    "id": 5,
    "charging_rate_unit": "A",
    "start_schedule": "2026-03-02T08:00:00Z",
    "duration": 3600,
    "charging_schedule_period": [
        {"start_period": 0, "limit": 16.0, "number_phases": 3},
        {"start_period": 1800, "limit": 10.5},
    ],
}
SCHEDULE_NEUTRAL = {
    "id": 5,
    "unit": "A",
    "start": "2026-03-02T08:00:00.000Z",
    "duration_s": 3600,
    "min_rate": None,
    "periods": [
        {"start_s": 0, "limit": 16.0, "number_phases": 3, "phase_to_use": None},
        {"start_s": 1800, "limit": 10.5, "number_phases": None, "phase_to_use": None},
    ],
}


async def test_a_charging_limit_is_stored_until_cleared(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        await send(
            station,
            call.NotifyChargingLimit(
                charging_limit={"charging_limit_source": "EMS", "is_grid_critical": True},
                evse_id=1,
                charging_schedule=[SCHEDULE_201],
            ),
        )
        await send(station, call.NotifyChargingLimit(charging_limit={"charging_limit_source": "SO"}))
        (ems, grid) = await all_rows(csms, ChargingLimitRecord)
        assert (ems.station_id, ems.evse_id, ems.source, ems.is_grid_critical) == ("CP-1", 1, "EMS", True)
        assert ems.schedules == [SCHEDULE_NEUTRAL]
        assert (grid.evse_id, grid.source, grid.is_grid_critical, grid.schedules) == (None, "SO", None, [])
        assert ems.cleared_at is None and grid.cleared_at is None

        assert await send(station, call.ClearedChargingLimit(charging_limit_source="EMS", evse_id=1)) is not None

    ems, grid = await all_rows(csms, ChargingLimitRecord)
    assert ems.cleared_at is not None and abs(ems.cleared_at - utc_now()) < timedelta(minutes=1)
    assert grid.cleared_at is None  # another source's limit stays


async def test_reported_charging_profiles_are_stored_in_neutral_form(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        await send(
            station,
            call.ReportChargingProfiles(
                request_id=7,
                charging_limit_source="CSO",
                evse_id=1,
                tbc=False,
                charging_profile=[
                    {
                        "id": 10,
                        "stack_level": 0,
                        "charging_profile_purpose": "TxDefaultProfile",
                        "charging_profile_kind": "Absolute",
                        "valid_from": "2026-03-01T00:00:00Z",
                        "charging_schedule": [SCHEDULE_201],
                    },
                    {
                        "id": 11,
                        "stack_level": 2,
                        "charging_profile_purpose": "ChargingStationMaxProfile",
                        "charging_profile_kind": "Recurring",
                        "recurrency_kind": "Daily",
                        "charging_schedule": [
                            {
                                "id": 6,
                                "charging_rate_unit": "W",
                                "charging_schedule_period": [{"start_period": 0, "limit": 22000.0}],
                            }
                        ],
                    },
                ],
            ),
        )
    rows = await all_rows(csms, ReportedChargingProfile)
    assert [(r.station_id, r.request_id, r.evse_id, r.source) for r in rows] == [("CP-1", 7, 1, "CSO")] * 2
    assert rows[0].profile == {
        "id": 10,
        "stack_level": 0,
        "purpose": "TxDefault",
        "kind": "Absolute",
        "recurrency": None,
        "valid_from": "2026-03-01T00:00:00.000Z",
        "valid_to": None,
        "transaction_id": None,
        "schedule": SCHEDULE_NEUTRAL,
    }
    assert (rows[1].profile["purpose"], rows[1].profile["kind"], rows[1].profile["recurrency"]) == (
        "StationMax",
        "Recurring",
        "Daily",
    )
    assert rows[1].profile["schedule"]["unit"] == "W"
    assert rows[1].profile["schedule"]["periods"][0]["limit"] == 22000


async def test_a_reported_tx_profile_keeps_the_station_transaction_and_every_schedule(csms) -> None:
    second = {**SCHEDULE_201, "id": 9, "charging_schedule_period": [{"start_period": 0, "limit": 8.0}]}
    async with connect201(csms, "CP-1") as station:
        await send(
            station,
            call.ReportChargingProfiles(
                request_id=8,
                charging_limit_source="CSO",
                evse_id=1,
                charging_profile=[
                    {
                        "id": 12,
                        "stack_level": 1,
                        "charging_profile_purpose": "TxProfile",
                        "charging_profile_kind": "Relative",
                        "transaction_id": "TX-9",
                        "charging_schedule": [SCHEDULE_201, second],
                    }
                ],
            ),
        )
    (row,) = await all_rows(csms, ReportedChargingProfile)
    assert row.profile["purpose"] == "Tx"
    assert "TX-9" in json.dumps(row.profile)
    assert '"id": 9' in json.dumps(row.profile)


# --- what a station reports about itself -----------------------------------------------------------


async def test_security_events_and_device_events_are_stored(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        await send(
            station,
            call.SecurityEventNotification(
                type="InvalidCsmsCertificate", timestamp="2026-03-02T08:00:00+02:00", tech_info="chain too short"
            ),
        )
        await send(station, call.SecurityEventNotification(type="StartupOfTheDevice", timestamp="2026-03-02T08:01:00Z"))
        await send(
            station,
            call.NotifyEvent(
                generated_at="2026-03-02T08:02:00Z",
                seq_no=0,
                tbc=False,
                event_data=[
                    {
                        "event_id": 1,
                        "timestamp": "2026-03-02T08:02:00Z",
                        "trigger": "Delta",
                        "actual_value": "Faulted",
                        "event_notification_type": "HardWiredNotification",
                        "component": {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
                        "variable": {"name": "AvailabilityState"},
                        "tech_code": "E42",
                    },
                    {
                        "event_id": 2,
                        "timestamp": "2026-03-02T08:02:30Z",
                        "trigger": "Alerting",
                        "actual_value": "81.5",
                        "event_notification_type": "CustomMonitor",
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "Temperature"},
                        "cleared": False,
                    },
                ],
            ),
        )
    first, second = await all_rows(csms, SecurityEvent)
    assert (first.station_id, first.type, first.timestamp, first.tech_info) == (
        "CP-1",
        "InvalidCsmsCertificate",
        at("2026-03-02T06:00:00Z"),
        "chain too short",
    )
    assert (second.type, second.tech_info) == ("StartupOfTheDevice", None)
    fault, heat = await all_rows(csms, DeviceEvent)
    assert (fault.event_id, fault.component, fault.variable, fault.actual_value, fault.trigger) == (
        1,
        "Connector",
        "AvailabilityState",
        "Faulted",
        "Delta",
    )
    assert (fault.timestamp, fault.event_notification_type) == (at("2026-03-02T08:02:00Z"), "HardWiredNotification")
    assert "E42" in json.dumps(fault.raw)
    assert (heat.component, heat.variable, heat.actual_value, heat.trigger) == (
        "EVSE",
        "Temperature",
        "81.5",
        "Alerting",
    )


async def test_firmware_and_log_status_are_stored_on_the_station(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        await send(station, call.FirmwareStatusNotification(status="Downloading", request_id=3))
        await send(station, call.FirmwareStatusNotification(status="Installed", request_id=3))
        await send(station, call.LogStatusNotification(status="Uploaded", request_id=4))
    (row,) = await all_rows(csms, Station)
    assert (row.firmware_status, row.log_status) == ("Installed", "Uploaded")


async def test_reservation_status_updates_apply_only_to_the_station_own_reservations(csms) -> None:
    async with connect201(csms, "CP-1") as station, connect201(csms, "CP-2"):
        expires = utc_now() + timedelta(hours=1)
        own = await csms.services.reservations.create("CP-1", 1, "TAG-1", expires)
        other = await csms.services.reservations.create("CP-2", 1, "TAG-1", expires)
        await send(station, call.ReservationStatusUpdate(reservation_id=own, reservation_update_status="Expired"))
        await send(station, call.ReservationStatusUpdate(reservation_id=other, reservation_update_status="Removed"))
        # An id the CSMS never issued is answered too (the station must not retry it), and ignored.
        await send(station, call.ReservationStatusUpdate(reservation_id=9999, reservation_update_status="Removed"))
    statuses = {r.id: (r.station_id, r.status) for r in await all_rows(csms, Reservation)}
    assert statuses == {own: ("CP-1", "Expired"), other: ("CP-2", "Requested")}


async def test_data_transfer_follows_the_vendor_policy_and_keeps_json_data_as_text(make_csms) -> None:
    csms = await make_csms(data_transfer_vendors=("com.acme",))
    document = {"sessionKey": "abc", "limits": [16, 32], "nested": {"maxPowerW": 11000, "on": True}}
    async with connect201(csms, "CP-1") as station:
        known = await send(station, call.DataTransfer(vendor_id="com.acme", message_id="setup", data=document))
        text = await send(station, call.DataTransfer(vendor_id="com.acme", data="plain text"))
        number = await send(station, call.DataTransfer(vendor_id="com.acme", data=42))
        unknown = await send(station, call.DataTransfer(vendor_id="org.other"))
    assert [a.status for a in (known, text, number, unknown)] == ["Accepted", "Accepted", "Accepted", "UnknownVendorId"]
    rows = await all_rows(csms, DataTransferRecord)
    assert [(r.station_id, r.direction, r.vendor_id, r.message_id, r.status) for r in rows] == [
        ("CP-1", "in", "com.acme", "setup", "Accepted"),
        ("CP-1", "in", "com.acme", None, "Accepted"),
        ("CP-1", "in", "com.acme", None, "Accepted"),
        ("CP-1", "in", "org.other", None, "UnknownVendorId"),
    ]
    # The vendor's JSON exactly as sent (keys are the vendor's: never renamed), as text.
    assert json.loads(rows[0].data) == document
    assert [r.data for r in rows[1:]] == ["plain text", "42", None]


async def test_status_notifications_name_evse_and_connector(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        for evse_id, connector_id, status, minute in (
            (1, 1, "Available", 0),
            (2, 1, "Occupied", 1),
            (1, 1, "Faulted", 2),
        ):
            await send(
                station,
                call.StatusNotification(
                    timestamp=f"2026-03-02T08:0{minute}:00Z",
                    connector_status=status,
                    evse_id=evse_id,
                    connector_id=connector_id,
                ),
            )
        # A late report older than the one held changes the history only.
        await send(
            station,
            call.StatusNotification(
                timestamp="2026-03-02T07:59:00Z", connector_status="Unavailable", evse_id=2, connector_id=1
            ),
        )
    current = {(c.evse_id, c.connector_id): (c.status, c.status_at) for c in await all_rows(csms, Connector)}
    assert current == {
        (1, 1): ("Faulted", at("2026-03-02T08:02:00Z")),
        (2, 1): ("Occupied", at("2026-03-02T08:01:00Z")),
    }
    history = await all_rows(csms, StatusNotification)
    assert [(h.evse_id, h.connector_id, h.status) for h in history] == [
        (1, 1, "Available"),
        (2, 1, "Occupied"),
        (1, 1, "Faulted"),
        (2, 1, "Unavailable"),
    ]


async def test_meter_values_outside_a_transaction_are_stored_unlinked(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        await send(station, tx_event("Started", 0, "2026-03-02T08:00:00Z", evse={"id": 2, "connector_id": 1}))
        await send(
            station,
            call.MeterValues(
                evse_id=0,
                meter_value=[
                    {
                        "timestamp": "2026-03-02T08:05:00Z",
                        "sampled_value": [
                            {
                                "value": 123456.0,
                                "unit_of_measure": {"unit": "kWh", "multiplier": -3},
                                "location": "Inlet",
                            },
                            {"value": 230.1, "measurand": "Voltage", "phase": "L1-N", "unit_of_measure": {"unit": "V"}},
                        ],
                    }
                ],
            ),
        )
        await send(station, call.MeterValues(evse_id=2, meter_value=[energy("2026-03-02T08:06:00Z", 5)]))
    samples = await all_rows(csms, MeterValue)
    assert [(m.evse_id, m.connector_id, m.measurand, m.location, m.value_numeric, m.unit) for m in samples] == [
        (0, 0, "Energy.Active.Import.Register", "Inlet", 123.456, "kWh"),
        (0, 0, "Voltage", "Outlet", 230.1, "V"),
        (2, 1, "Energy.Active.Import.Register", "Outlet", 5, "Wh"),
    ]
    # 2.0.1 MeterValues belong to no session, even on an EVSE with one open.
    assert {(m.transaction_id, m.ocpp_transaction_ref) for m in samples} == {(None, None)}


async def test_boot_notification_reason_and_details_are_stored(csms) -> None:
    async with connect201(csms, "CP-1") as station:
        answer = await send(
            station,
            call.BootNotification(
                charging_station={
                    "vendor_name": "VendorX",
                    "model": "Wallbox 22",
                    "serial_number": "SN-1",
                    "firmware_version": "2.0.1-rc3",
                    "modem": {"iccid": "8931080000000000000", "imsi": "204080000000000"},
                },
                reason="FirmwareUpdate",
            ),
        )
        heartbeat = await send(station, call.Heartbeat())
    assert answer.status == "Accepted" and answer.interval == 300
    assert abs(at(answer.current_time) - datetime.now(UTC)) < timedelta(minutes=1)
    assert abs(at(heartbeat.current_time) - datetime.now(UTC)) < timedelta(minutes=1)
    (row,) = await all_rows(csms, Station)
    assert (row.ocpp_version, row.boot_reason, row.boot_status) == ("2.0.1", "FirmwareUpdate", "Accepted")
    assert (row.vendor, row.model, row.serial_number, row.firmware_version) == (
        "VendorX",
        "Wallbox 22",
        "SN-1",
        "2.0.1-rc3",
    )
    assert (row.iccid, row.imsi) == ("8931080000000000000", "204080000000000")
    assert row.last_boot_at is not None and row.last_heartbeat_at is not None


BOOT_201 = call.BootNotification(charging_station={"vendor_name": "V", "model": "M"}, reason="PowerUp")


async def test_under_the_registered_policy_an_unknown_station_is_rejected_then_refused(make_csms) -> None:
    csms = await make_csms(boot_policy="registered")
    async with connect201(csms, "CP-STRANGER") as station:
        assert (await send(station, BOOT_201)).status == "Rejected"
        before = await snapshot(csms)
        # OCPP 2.0.1 (FR.04): after a boot that was not accepted, anything but a boot gets SecurityError.
        for payload in (
            call.Heartbeat(),
            call.StatusNotification(
                timestamp="2026-03-02T08:00:00Z", connector_status="Available", evse_id=1, connector_id=1
            ),
            tx_event("Started", 0, "2026-03-02T08:00:00Z", evse=EVSE_1),
            call.NotifyReport(request_id=1, generated_at="2026-03-02T08:00:00Z", seq_no=0, report_data=REPORT_PART_1),
        ):
            with pytest.raises(SecurityError):
                await send(station, payload)
        assert await snapshot(csms) == before
        assert (await send(station, BOOT_201)).status == "Rejected"  # booting again is still allowed
    (row,) = await all_rows(csms, Station)
    assert (row.registered, row.boot_status, row.boot_reason) == (False, "Rejected", "PowerUp")


async def test_under_the_registered_policy_a_registered_station_is_accepted(make_csms) -> None:
    csms = await make_csms(boot_policy="registered")
    await add_rows(csms, Station(id="CP-KNOWN", registered=True, created_at=utc_now()))
    async with connect201(csms, "CP-KNOWN") as station:
        assert (await send(station, BOOT_201)).status == "Accepted"
        assert (await send(station, call.Heartbeat())).current_time
