"""Bad input from a 2.0.1 station, over a real websocket: every malformed or invalid frame gets the CALLERROR
OCPP-J 2.0.1 (part 4.3) specifies, with the message id when it can be read ("-1" when not), the connection
stays up, nothing is stored from the bad frame and nothing already stored changes.

2.0.1 names some codes differently from 1.6 (see ``rpc.V201``): FormatViolation (1.6 FormationViolation),
OccurrenceConstraintViolation (1.6 keeps the typo "Occurence"), and two new ones, RpcFrameworkError for a
frame that is not an OCPP message and MessageTypeNotSupported for a message type other than 2, 3 or 4.
"""

from __future__ import annotations

import asyncio
import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from optivgi_csms.store.models import Base, DataTransferRecord, MeterValue, Transaction, TransactionEventRecord
from tests.support.stations import RawStation, connect_raw

# OCPP-J 2.0.1 part 4.3, the twelve valid error codes.
CODES_201 = {
    "FormatViolation",
    "GenericError",
    "InternalError",
    "MessageTypeNotSupported",
    "NotImplemented",
    "NotSupported",
    "OccurrenceConstraintViolation",
    "PropertyConstraintViolation",
    "ProtocolError",
    "RpcFrameworkError",
    "SecurityError",
    "TypeConstraintViolation",
}

BOOT = {"chargingStation": {"vendorName": "VendorX", "model": "Wallbox 22"}, "reason": "PowerUp"}
STATUS = {"timestamp": "2026-03-02T08:00:00Z", "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}
TOKEN = {"idToken": "TAG-1", "type": "ISO14443"}


def sample(timestamp: str, value: float, **fields: Any) -> dict[str, Any]:
    """One 2.0.1 ``meterValue`` entry with a single sampled value."""
    return {"timestamp": timestamp, "sampledValue": [{"value": value, **fields}]}


def event_payload(event_type: str, seq_no: int, timestamp: str, transaction_id: str = "TX-1", **fields: Any) -> dict:
    """A TransactionEvent payload, as the station writes it (camelCase)."""
    trigger = {"Started": "CablePluggedIn", "Updated": "MeterValuePeriodic", "Ended": "EVCommunicationLost"}
    return {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger[event_type],
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id},
        **fields,
    }


STARTED = event_payload(
    "Started",
    0,
    "2026-03-02T08:00:00Z",
    evse={"id": 1, "connectorId": 1},
    idToken=TOKEN,
    meterValue=[sample("2026-03-02T08:00:00Z", 1000)],
)
# A valid next event: each bad variant below differs from it in one place, so had the CSMS let the
# variant through, it would have stored a new event.
UPDATED = event_payload("Updated", 5, "2026-03-02T08:30:00Z", meterValue=[sample("2026-03-02T08:30:00Z", 2500)])


def updated(**changes: Any) -> dict[str, Any]:
    """UPDATED with top-level fields replaced (a value of ``...`` removes the field)."""
    payload = json.loads(json.dumps(UPDATED))
    for key, value in changes.items():
        if value is ...:
            payload.pop(key)
        else:
            payload[key] = value
    return payload


# --- helpers -------------------------------------------------------------------------------------


async def heartbeat_works(station: RawStation, message_id: str = "hb") -> None:
    """The connection is open and served: a Heartbeat gets its CALLRESULT."""
    reply = await station.call("Heartbeat", {}, message_id)
    assert reply[:2] == [3, message_id] and "currentTime" in reply[2], reply


async def ok(station: RawStation, action: str, payload: dict[str, Any], message_id: str = "ok") -> dict[str, Any]:
    """Send a valid CALL and return its CALLRESULT payload."""
    reply = await station.call(action, payload, message_id)
    assert reply[:2] == [3, message_id], reply
    return reply[2]


def assert_callerror(reply: list[Any], code: str, message_id: str) -> None:
    assert len(reply) == 5 and reply[0] == 4, reply
    assert (reply[1], reply[2]) == (message_id, code), reply
    assert code in CODES_201
    assert isinstance(reply[3], str) and isinstance(reply[4], dict)


async def snapshot(csms: Any) -> dict[str, list[str]]:
    """Every row of every table (the raw-message journal aside), comparable before and after."""
    tables: dict[str, list[str]] = {}
    async with csms.database.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name != "ocpp_journal":
                tables[table.name] = sorted(repr(tuple(row)) for row in (await session.execute(select(table))).all())
    return tables


async def all_rows(csms: Any, model: Any) -> list[Any]:
    async with csms.database.read() as session:
        return list((await session.scalars(select(model).order_by(model.id))).all())


async def charging(station: RawStation) -> None:
    """Boot, report Occupied and start a transaction: the state bad input must not disturb."""
    await ok(station, "BootNotification", BOOT)
    await ok(station, "StatusNotification", STATUS)
    await ok(station, "TransactionEvent", STARTED)


def frame(message_id: str, action: str, payload: Any) -> str:
    return json.dumps([2, message_id, action, payload])


# --- every kind of bad frame ---------------------------------------------------------------------

LONG_ID = "m" * 37
BAD_FRAMES = [
    # not JSON at all: "syntactically incorrect"
    pytest.param('[2,"bad-json","Heartbeat",{', "FormatViolation", "bad-json", id="truncated JSON"),
    pytest.param("hello", "FormatViolation", "-1", id="plain text"),
    pytest.param(b'[2,"bin","Heartbeat",{}]', "FormatViolation", "-1", id="binary frame"),
    pytest.param('[2,"nan","MeterValues",{"evseId":NaN}]', "FormatViolation", "nan", id="NaN"),
    # JSON but not an OCPP-J message: "not a valid RPC request"
    pytest.param('{"messageId":"x"}', "RpcFrameworkError", "-1", id="object"),
    pytest.param("[]", "RpcFrameworkError", "-1", id="empty array"),
    pytest.param("42", "RpcFrameworkError", "-1", id="number"),
    pytest.param('[2,"short","Heartbeat"]', "RpcFrameworkError", "short", id="CALL with 3 elements"),
    pytest.param('[2,"long","Heartbeat",{},{}]', "RpcFrameworkError", "long", id="CALL with 5 elements"),
    pytest.param('[2,"act",7,{}]', "RpcFrameworkError", "act", id="numeric action"),
    pytest.param('[2,17,"Heartbeat",{}]', "RpcFrameworkError", "-1", id="numeric message id"),
    pytest.param('[2,"","Heartbeat",{}]', "RpcFrameworkError", "-1", id="empty message id"),
    pytest.param(frame(LONG_ID, "Heartbeat", {}), "RpcFrameworkError", LONG_ID, id="message id too long"),
    # message types 2.0.1 does not have (5 and 6 are OCPP 2.1's CALLRESULTERROR and SEND)
    pytest.param('[7,"type-7",{}]', "MessageTypeNotSupported", "type-7", id="message type 7"),
    pytest.param('[5,"type-5","GenericError","",{}]', "MessageTypeNotSupported", "type-5", id="2.1 CALLRESULTERROR"),
    pytest.param('[6,"type-6","NotifyPeriodicEventStream",{}]', "MessageTypeNotSupported", "type-6", id="2.1 SEND"),
    pytest.param('["2","str-type","Heartbeat",{}]', "MessageTypeNotSupported", "str-type", id="message type as string"),
    # actions, after OCPP-J 2.0.1 part 4.3: NotImplemented is "Requested Action is not known by receiver"
    # (not a 2.0.1 action at all); NotSupported "is recognized but not supported by the receiver" (a 2.0.1
    # action the CSMS does not take: one it sends itself, or a station message it does not handle).
    pytest.param(frame("u1", "FooBar", {}), "NotImplemented", "u1", id="unknown action"),
    pytest.param(frame("u2", "heartbeat", {}), "NotImplemented", "u2", id="action in the wrong case"),
    pytest.param(frame("u3", "StartTransaction", {}), "NotImplemented", "u3", id="1.6 action on 2.0.1"),
    pytest.param(frame("u4", "Reset", {"type": "Immediate"}), "NotSupported", "u4", id="CSMS-to-station action"),
    pytest.param(frame("u5", "SignCertificate", {"csr": "x"}), "NotSupported", "u5", id="unhandled station action"),
    pytest.param(
        frame("u6", "NotifyCustomerInformation", {}), "NotSupported", "u6", id="unhandled action, invalid payload"
    ),
    # a mandatory field missing: the payload does not conform to its PDU
    pytest.param(frame("p1", "BootNotification", {"reason": "PowerUp"}), "ProtocolError", "p1", id="no station"),
    pytest.param(frame("p2", "TransactionEvent", updated(seqNo=...)), "ProtocolError", "p2", id="no seqNo"),
    pytest.param(
        frame("p3", "TransactionEvent", updated(transactionInfo={"chargingState": "Charging"})),
        "ProtocolError",
        "p3",
        id="no transactionId",
    ),
    pytest.param(
        frame("p4", "Heartbeat", {"customData": {"note": "no vendor"}}),
        "ProtocolError",
        "p4",
        id="customData no vendor",
    ),
    # wrong JSON types, strings too long, integers beyond 32 bits
    pytest.param(frame("t1", "TransactionEvent", updated(seqNo="5")), "TypeConstraintViolation", "t1", id="seqNo text"),
    pytest.param(frame("t2", "TransactionEvent", updated(seqNo=5.5)), "TypeConstraintViolation", "t2", id="seqNo 5.5"),
    pytest.param(
        frame("t3", "TransactionEvent", updated(seqNo=2**31)), "TypeConstraintViolation", "t3", id="seqNo of 33 bits"
    ),
    pytest.param(
        frame("t4", "TransactionEvent", updated(seqNo=None)), "TypeConstraintViolation", "t4", id="seqNo null"
    ),
    pytest.param(
        frame("t5", "TransactionEvent", updated(transactionInfo={"transactionId": "T" * 37})),
        "TypeConstraintViolation",
        "t5",
        id="transactionId too long",
    ),
    pytest.param(
        frame("t6", "TransactionEvent", updated(transactionInfo={"transactionId": 1})),
        "TypeConstraintViolation",
        "t6",
        id="transactionId a number",
    ),
    pytest.param(
        frame("t7", "Authorize", {"idToken": {"idToken": "T" * 37, "type": "ISO14443"}}),
        "TypeConstraintViolation",
        "t7",
        id="idToken too long",
    ),
    pytest.param(
        frame("t8", "StatusNotification", {**STATUS, "evseId": "2"}), "TypeConstraintViolation", "t8", id="evseId text"
    ),
    pytest.param(frame("t9", "Heartbeat", []), "TypeConstraintViolation", "t9", id="array payload"),
    # timestamps that are not RFC 3339 date-times
    pytest.param(
        frame("d1", "TransactionEvent", updated(timestamp="not a time")), "TypeConstraintViolation", "d1", id="text"
    ),
    pytest.param(
        frame("d2", "TransactionEvent", updated(timestamp="2026-03-02")), "TypeConstraintViolation", "d2", id="a date"
    ),
    pytest.param(
        frame("d3", "TransactionEvent", updated(timestamp="9999-12-31T23:59:59-05:00")),
        "TypeConstraintViolation",
        "d3",
        id="a time beyond UTC",
    ),
    pytest.param(
        frame("d4", "TransactionEvent", updated(meterValue=[sample("yesterday", 2600)])),
        "TypeConstraintViolation",
        "d4",
        id="meter value time",
    ),
    pytest.param(
        frame("d5", "StatusNotification", {**STATUS, "evseId": 2, "timestamp": "08:00"}),
        "TypeConstraintViolation",
        "d5",
        id="status time",
    ),
    pytest.param(
        frame(
            "d6",
            "NotifyEVChargingNeeds",
            {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC", "departureTime": "tonight"}},
        ),
        "TypeConstraintViolation",
        "d6",
        id="departure time",
    ),
    pytest.param(
        frame("d7", "NotifyReport", {"requestId": 1, "generatedAt": "now", "seqNo": 0}),
        "TypeConstraintViolation",
        "d7",
        id="report time",
    ),
    pytest.param(
        frame("d8", "SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": "2026-13-01T00:00:00Z"}),
        "TypeConstraintViolation",
        "d8",
        id="month 13",
    ),
    # schedules the schema lets through but OCPP does not: the handler names the problem
    pytest.param(
        frame(
            "c1",
            "NotifyChargingLimit",
            {
                "chargingLimit": {"chargingLimitSource": "EMS"},
                "chargingSchedule": [
                    {"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 900, "limit": 16}]}
                ],
            },
        ),
        "TypeConstraintViolation",
        "c1",
        id="limit schedule starting late",
    ),
    pytest.param(
        frame(
            "c2",
            "ReportChargingProfiles",
            {
                "requestId": 1,
                "chargingLimitSource": "CSO",
                "evseId": 1,
                "chargingProfile": [
                    {
                        "id": 0,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Relative",
                        "chargingSchedule": [
                            {
                                "id": 1,
                                "chargingRateUnit": "A",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6}],
                            }
                        ],
                    }
                ],
            },
        ),
        "TypeConstraintViolation",
        "c2",
        id="profile id 0",
    ),
    # values outside an enumeration or range
    pytest.param(
        frame("v1", "StatusNotification", {**STATUS, "evseId": 2, "connectorStatus": "Charging"}),
        "PropertyConstraintViolation",
        "v1",
        id="1.6 status word",
    ),
    pytest.param(
        frame("v2", "TransactionEvent", updated(eventType="Stopped")), "PropertyConstraintViolation", "v2", id="event"
    ),
    pytest.param(
        frame("v3", "TransactionEvent", updated(triggerReason="Whim")),
        "PropertyConstraintViolation",
        "v3",
        id="trigger",
    ),
    pytest.param(
        frame("v4", "BootNotification", {**BOOT, "reason": "Boot"}), "PropertyConstraintViolation", "v4", id="reason"
    ),
    pytest.param(
        frame("v5", "TransactionEvent", updated(idToken={"idToken": "TAG-2", "type": "RFID"})),
        "PropertyConstraintViolation",
        "v5",
        id="token type",
    ),
    pytest.param(
        frame(
            "v6",
            "NotifyEVChargingNeeds",
            {
                "evseId": 1,
                "chargingNeeds": {
                    "requestedEnergyTransfer": "DC",
                    "dcChargingParameters": {"evMaxCurrent": 200, "evMaxVoltage": 800, "stateOfCharge": 101},
                },
            },
        ),
        "PropertyConstraintViolation",
        "v6",
        id="state of charge 101",
    ),
    pytest.param(
        frame("v8", "NotifyEVChargingNeeds", {"evseId": 0, "chargingNeeds": {"requestedEnergyTransfer": "DC"}}),
        "PropertyConstraintViolation",
        "v8",
        id="charging needs on EVSE 0",
    ),
    pytest.param(
        frame("v9", "MeterValues", {"evseId": -1, "meterValue": [sample("2026-03-02T08:31:00Z", 3)]}),
        "PropertyConstraintViolation",
        "v9",
        id="meter values on EVSE -1",
    ),
    pytest.param(
        frame(
            "v7",
            "TransactionEvent",
            updated(
                meterValue=[sample("2026-03-02T08:31:00Z", 5, unitOfMeasure={"unit": "kWh", "multiplier": 2**31 - 1})]
            ),
        ),
        "PropertyConstraintViolation",
        "v7",
        id="multiplier beyond any number",
    ),
    # text a database cannot store
    pytest.param(
        frame(
            "n1", "BootNotification", {"chargingStation": {"vendorName": "V", "model": "M\u0000"}, "reason": "PowerUp"}
        ),
        "PropertyConstraintViolation",
        "n1",
        id="NUL in text",
    ),
    pytest.param(
        frame("n2", "TransactionEvent", updated(idToken={"idToken": "TAG\u0000", "type": "ISO14443"})),
        "PropertyConstraintViolation",
        "n2",
        id="NUL in a token",
    ),
    pytest.param(
        '[2,"n3","DataTransfer",{"vendorId":"V","data":{"k":"\\ud800"}}]',
        "PropertyConstraintViolation",
        "n3",
        id="lone surrogate in JSON data",
    ),
    # lists with too few items
    pytest.param(
        frame("o1", "MeterValues", {"evseId": 1, "meterValue": []}), "OccurrenceConstraintViolation", "o1", id="none"
    ),
    pytest.param(
        frame(
            "o2", "TransactionEvent", updated(meterValue=[{"timestamp": "2026-03-02T08:31:00Z", "sampledValue": []}])
        ),
        "OccurrenceConstraintViolation",
        "o2",
        id="no sampled value",
    ),
    pytest.param(
        frame("o3", "NotifyEvent", {"generatedAt": "2026-03-02T08:00:00Z", "seqNo": 0, "eventData": []}),
        "OccurrenceConstraintViolation",
        "o3",
        id="no event",
    ),
    # properties the message does not define (only customData is open)
    pytest.param(frame("f1", "Heartbeat", {"extra": True}), "FormatViolation", "f1", id="extra property"),
    pytest.param(
        frame("f2", "TransactionEvent", updated(transactionInfo={"transactionId": "TX-1", "meterStart": 0})),
        "FormatViolation",
        "f2",
        id="extra nested property",
    ),
    pytest.param(
        frame("f3", "TransactionEvent", updated(connectorId=1)), "FormatViolation", "f3", id="1.6 field in 2.0.1"
    ),
]


@pytest.mark.parametrize(("raw", "code", "message_id"), BAD_FRAMES)
async def test_bad_frame_gets_the_right_callerror_and_changes_nothing(
    csms, raw: str | bytes, code: str, message_id: str
) -> None:
    async with connect_raw(csms, "CP-1", subprotocol="ocpp2.0.1") as station:
        await charging(station)
        before = await snapshot(csms)

        assert_callerror(await station.exchange(raw), code, message_id)

        assert await snapshot(csms) == before
        await heartbeat_works(station)


async def test_custom_data_is_allowed_at_every_level(csms) -> None:
    # 2.0.1 schemas are closed (additionalProperties false) except customData, where a vendor may add anything.
    custom = {"vendorId": "com.acme", "anything": {"nested": [1, 2]}}
    async with connect_raw(csms, "CP-1", subprotocol="ocpp2.0.1") as station:
        assert "currentTime" in await ok(station, "Heartbeat", {"customData": custom})
        started = {
            **STARTED,
            "customData": custom,
            "transactionInfo": {"transactionId": "TX-1", "customData": custom},
            "evse": {"id": 1, "connectorId": 1, "customData": custom},
            "meterValue": [{**sample("2026-03-02T08:00:00Z", 1000), "customData": custom}],
        }
        await ok(station, "TransactionEvent", started)
    (transaction,) = await all_rows(csms, Transaction)
    assert (transaction.ocpp_transaction_id, transaction.evse_id, transaction.meter_start_wh) == ("TX-1", 1, 1000)


async def test_a_negative_multiplier_far_below_any_reading_is_refused(csms) -> None:
    async with connect_raw(csms, "CP-1", subprotocol="ocpp2.0.1") as station:
        tiny = {
            "evseId": 1,
            "meterValue": [sample("2026-03-02T08:00:00Z", 2.5, unitOfMeasure={"multiplier": -(2**31)})],
        }
        # Answered at once: the scaling never builds the power of ten itself.
        reply = await asyncio.wait_for(station.call("MeterValues", tiny, "tiny"), 2)
        assert_callerror(reply, "PropertyConstraintViolation", "tiny")
        zero = {"evseId": 1, "meterValue": [sample("2026-03-02T08:00:00Z", 0, unitOfMeasure={"multiplier": 2**31 - 1})]}
        await ok(station, "MeterValues", zero)
    (kept,) = await all_rows(csms, MeterValue)
    assert (kept.value, kept.value_numeric) == ("0", 0)


async def test_deeply_nested_json_is_stored_or_refused_never_an_internal_error(csms) -> None:
    # 2.0.1 DataTransfer data may be any JSON value, however deep: stored while the parser can read
    # it, a FormatViolation beyond, and never an InternalError from a recursion on the way.
    stored = []
    async with connect_raw(csms, "CP-1", subprotocol="ocpp2.0.1") as station:
        for depth in range(900, 1060, 6):
            nested = "[" * depth + "]" * depth
            raw = f'[2,"deep-{depth}","DataTransfer",{{"vendorId":"V","data":{nested}}}]'
            reply = await station.exchange(raw)
            assert reply[1] == f"deep-{depth}", reply
            if reply[0] == 3:
                stored.append(nested)
            else:
                assert reply[2] in {"TypeConstraintViolation", "FormatViolation"}, reply
        await heartbeat_works(station)
    assert stored, "no depth was stored"
    assert [row.data for row in await all_rows(csms, DataTransferRecord)] == stored


async def test_a_failing_handler_answers_internal_error_and_keeps_the_connection(csms, monkeypatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database on fire")

    async with connect_raw(csms, "CP-1", subprotocol="ocpp2.0.1") as station:
        with monkeypatch.context() as patch:
            patch.setattr(csms.services.transactions, "record_event", broken)
            reply = await station.call("TransactionEvent", STARTED, "t1")
        assert_callerror(reply, "InternalError", "t1")
        assert "fire" not in json.dumps(reply)  # internals stay internal
        await ok(station, "TransactionEvent", STARTED)
    assert len(await all_rows(csms, Transaction)) == 1


async def test_answers_to_calls_never_made_get_no_reply(csms) -> None:
    async with connect_raw(csms, "CP-1", subprotocol="ocpp2.0.1") as station:
        for raw in (
            '[3,"never-asked",{"status":"Accepted"}]',
            '[4,"never-asked","GenericError","boom",{}]',
            '[3,"never-asked"]',
            '[4,17,"GenericError","",{}]',
            "[3]",
            "[4]",
        ):
            await station.send(raw)
        # Frames are answered in order: had any of them been answered, that answer would come first.
        reply = await station.call("Heartbeat", {}, "after")
        assert reply[:2] == [3, "after"], reply
        assert await station.no_reply(0.2)


async def test_an_event_that_breaks_the_schema_leaves_the_transaction_as_it_was(csms) -> None:
    async with connect_raw(csms, "CP-1", subprotocol="ocpp2.0.1") as station:
        await charging(station)
        ended = event_payload(
            "Ended",
            1,
            "2026-03-02T09:00:00Z",
            meterValue=[sample("2026-03-02T09:00:00Z", 6000), sample("at nine", 6000)],
        )
        ended["transactionInfo"]["stoppedReason"] = "EVDisconnected"
        bad = json.loads(json.dumps(ended))
        assert_callerror(await station.call("TransactionEvent", bad, "bad"), "TypeConstraintViolation", "bad")
        (transaction,) = await all_rows(csms, Transaction)
        assert transaction.stopped_at is None
        assert [m.value for m in await all_rows(csms, MeterValue)] == ["1000"]

        # The station's corrected event is then stored in full, under the same seqNo.
        ended["meterValue"] = ended["meterValue"][:1]
        await ok(station, "TransactionEvent", ended)
    (transaction,) = await all_rows(csms, Transaction)
    assert (transaction.energy_wh, transaction.stop_reason) == (5000, "EVDisconnected")
    assert [e.seq_no for e in await all_rows(csms, TransactionEventRecord)] == [0, 1]


async def test_garbage_from_one_station_does_not_disturb_another(csms) -> None:
    async def garbage(station: RawStation) -> None:
        junk = ["{", "[]", frame("g", "FooBar", {}), b"\x00\xff", frame("g", "MeterValues", {}), '[9,"g"]']
        for index in range(42):
            await station.send(junk[index % len(junk)])
        for _ in range(42):
            reply = json.loads(await asyncio.wait_for(station.connection.recv(), 5))
            assert reply[0] == 4 and reply[2] in CODES_201, reply
        await heartbeat_works(station, "garbage-done")

    async def session(station: RawStation) -> None:
        await charging(station)
        await ok(
            station,
            "TransactionEvent",
            event_payload("Ended", 1, "2026-03-02T09:00:00Z", meterValue=[sample("2026-03-02T09:00:00Z", 6000)]),
        )

    async with (
        connect_raw(csms, "CP-BAD", subprotocol="ocpp2.0.1") as bad,
        connect_raw(csms, "CP-GOOD", subprotocol="ocpp2.0.1") as good,
    ):
        await asyncio.gather(garbage(bad), session(good))

    transactions = await all_rows(csms, Transaction)
    assert [(t.station_id, t.ocpp_transaction_id, t.energy_wh) for t in transactions] == [("CP-GOOD", "TX-1", 5000)]
    assert {m.station_id for m in await all_rows(csms, MeterValue)} == {"CP-GOOD"}


# --- fuzzing one connection -----------------------------------------------------------------------

SCHEDULE = {
    "id": 1,
    "chargingRateUnit": "A",
    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}, {"startPeriod": 900, "limit": 8.0}],
}
EXAMPLES: dict[str, dict[str, Any]] = {
    "Authorize": {"idToken": TOKEN},
    "BootNotification": BOOT,
    "ClearedChargingLimit": {"chargingLimitSource": "EMS", "evseId": 1},
    "DataTransfer": {"vendorId": "V", "messageId": "m", "data": {"k": [1, "two"]}},
    "FirmwareStatusNotification": {"status": "Installed", "requestId": 1},
    "Heartbeat": {},
    "LogStatusNotification": {"status": "Uploaded", "requestId": 2},
    "MeterValues": {"evseId": 1, "meterValue": [sample("2026-03-02T08:01:00Z", 1.5, unitOfMeasure={"unit": "kWh"})]},
    "NotifyChargingLimit": {
        "chargingLimit": {"chargingLimitSource": "EMS", "isGridCritical": False},
        "evseId": 1,
        "chargingSchedule": [SCHEDULE],
    },
    "NotifyEVChargingNeeds": {
        "evseId": 1,
        "maxScheduleTuples": 8,
        "chargingNeeds": {
            "requestedEnergyTransfer": "AC_three_phase",
            "departureTime": "2026-03-02T17:00:00Z",
            "acChargingParameters": {"energyAmount": 20000, "evMinCurrent": 6, "evMaxCurrent": 32, "evMaxVoltage": 400},
        },
    },
    "NotifyEvent": {
        "generatedAt": "2026-03-02T08:00:00Z",
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": "2026-03-02T08:00:00Z",
                "trigger": "Delta",
                "actualValue": "Faulted",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                "variable": {"name": "AvailabilityState"},
            }
        ],
    },
    "NotifyReport": {
        "requestId": 1,
        "generatedAt": "2026-03-02T08:00:00Z",
        "seqNo": 0,
        "reportData": [
            {
                "component": {"name": "SmartChargingCtrlr"},
                "variable": {"name": "RateUnit"},
                "variableAttribute": [{"value": "A", "mutability": "ReadOnly"}],
                "variableCharacteristics": {"dataType": "MemberList", "valuesList": "A,W", "supportsMonitoring": False},
            }
        ],
    },
    "ReportChargingProfiles": {
        "requestId": 3,
        "chargingLimitSource": "CSO",
        "evseId": 1,
        "chargingProfile": [
            {
                "id": 5,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [{**SCHEDULE, "startSchedule": "2026-03-02T08:00:00Z"}],
            }
        ],
    },
    "ReservationStatusUpdate": {"reservationId": 1, "reservationUpdateStatus": "Expired"},
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": "2026-03-02T08:00:00Z", "techInfo": "t"},
    "StatusNotification": STATUS,
    "TransactionEvent": event_payload(
        "Updated",
        1,
        "2026-03-02T08:05:00Z",
        offline=True,
        evse={"id": 1, "connectorId": 1},
        idToken=TOKEN,
        transactionInfo={"transactionId": "TX-F", "chargingState": "Charging", "remoteStartId": 4},
        meterValue=[
            {
                "timestamp": "2026-03-02T08:05:00Z",
                "sampledValue": [
                    {"value": 12.5, "unitOfMeasure": {"unit": "kWh", "multiplier": 0}},
                    {"value": 16, "measurand": "Current.Import", "phase": "L1", "unitOfMeasure": {"unit": "A"}},
                ],
            }
        ],
    ),
}
HANDLED = sorted(EXAMPLES)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=8,
)
message_ids = st.text(max_size=40) | json_values
# Values likely to sit right at a rule's edge: enum words, times, 32-bit limits, text no database stores.
field_values = json_values | st.sampled_from(
    [
        "Occupied",
        "Charging",
        "Started",
        "",
        "2026-03-02T10:00:00Z",
        "2026-03-02T10:00:00",
        "not a time",
        "9999-12-31T23:59:59-05:00",
        2**31 - 1,
        2**31,
        -(2**31),
        -1,
        0,
        900,
        "T" * 37,
        "\u0000",
        "\ud800",
        {"vendorId": "V"},
        [],
    ]
)


def nested_objects(value: Any) -> list[dict[str, Any]]:
    """Every JSON object in ``value``, outermost first."""
    if isinstance(value, dict):
        return [value, *(found for item in value.values() for found in nested_objects(item))]
    if isinstance(value, list):
        return [found for item in value for found in nested_objects(item)]
    return []


@st.composite
def real_call(draw: st.DrawFn) -> str:
    """A CALL for an action the CSMS handles: its example payload, often with one field of one of its
    objects (at any depth) changed, dropped or added."""
    action = draw(st.sampled_from(HANDLED))
    payload = json.loads(json.dumps(EXAMPLES[action]))
    if draw(st.integers(0, 3)):
        target = draw(st.sampled_from(nested_objects(payload)))
        field = draw(st.sampled_from([*target, "extra", "customData"]))
        if field in target and draw(st.booleans()):
            del target[field]
        else:
            target[field] = draw(field_values)
    message_id = draw(st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=36))
    return json.dumps([2, message_id, action, payload])


# Half of the frames are real actions (so that the CSMS stores things between the junk), half junk.
junk_frames = st.sampled_from(
    [
        st.text(max_size=60),
        st.binary(max_size=30),
        json_values.map(json.dumps),
        st.lists(json_values, max_size=5).map(lambda items: json.dumps([2, *items])),
        st.tuples(st.sampled_from([2, 3, 4, 5, 6, 0, "2", 2.0, None]), message_ids, json_values, json_values).map(
            lambda parts: json.dumps(list(parts))
        ),
        st.tuples(message_ids, st.sampled_from([*HANDLED, "Reset", "SignCertificate", "FooBar", ""]), json_values).map(
            lambda parts: json.dumps([2, *parts])
        ),
        *[real_call()] * 6,
    ]
).flatmap(lambda strategy: strategy)


def _reject(name: str) -> Any:
    raise ValueError(name)


def expected_reply_id(raw: str | bytes) -> str | None:
    """The id an answer to ``raw`` must carry; None when OCPP forbids an answer (a CALLRESULT or
    CALLERROR), "" when any id will do (text that is not JSON: the id is sniffed when possible)."""
    if isinstance(raw, bytes):
        return "-1"
    try:
        value = json.loads(raw, parse_constant=_reject)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(value, list) or not value:
        return "-1"
    if not isinstance(value[0], bool) and value[0] in (3, 4):
        return None
    return value[1] if len(value) > 1 and isinstance(value[1], str) and value[1] else "-1"


@pytest.mark.slow
async def test_junk_frames_on_one_connection_are_each_answered_once(csms) -> None:
    loop = asyncio.get_running_loop()
    async with connect_raw(csms, "CP-FUZZ", subprotocol="ocpp2.0.1") as station:
        await heartbeat_works(station)
        state = {"snapshot": await snapshot(csms), "sentinel": 0}

        async def exchange(raw: str | bytes) -> list[list[Any]]:
            # A frame, then a sentinel CALL nobody stores (unknown action); frames are answered in
            # order, so whatever arrives before the sentinel's answer is the answer to the frame.
            state["sentinel"] += 1
            sentinel = f"~sentinel~{state['sentinel']}"
            await station.send(raw)
            await station.send(json.dumps([2, sentinel, "Sentinel", {}]))
            replies = []
            while True:
                reply = json.loads(await asyncio.wait_for(station.connection.recv(), 5))
                if reply[:3] == [4, sentinel, "NotImplemented"]:
                    return replies
                replies.append(reply)

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(raw=junk_frames)
        def junk_is_answered(raw: str | bytes) -> None:
            replies = asyncio.run_coroutine_threadsafe(exchange(raw), loop).result(30)
            after = asyncio.run_coroutine_threadsafe(snapshot(csms), loop).result(30)
            expected_id = expected_reply_id(raw)
            answer = "none" if not replies else "CALLRESULT" if replies[0][0] == 3 else str(replies[0][2])
            event(f"answer: {answer}")
            answers[answer] = answers.get(answer, 0) + 1
            if expected_id is None:
                assert replies == []
                assert after == state["snapshot"]
                return
            assert len(replies) == 1, replies
            (reply,) = replies
            if expected_id:
                assert reply[1] == expected_id, reply
            assert reply[0] in (3, 4), reply
            if reply[0] == 4:
                assert len(reply) == 5 and reply[2] in CODES_201, reply
                assert reply[2] != "InternalError", reply  # a station's mistake is never reported as ours
                assert after == state["snapshot"], f"{raw!r} was refused but changed the database"
            else:
                assert len(reply) == 3 and isinstance(reply[2], dict), reply
            state["snapshot"] = after

        answers: dict[str, int] = {}
        await asyncio.to_thread(junk_is_answered)
        await heartbeat_works(station, "final")
    # The generator reached both sides: calls that were served and frames that were refused.
    assert answers.get("CALLRESULT") and answers.get("RpcFrameworkError") and answers.get("TypeConstraintViolation"), (
        answers
    )
