"""Bad input from a 1.6 station, over a real websocket: every malformed or invalid frame gets the CALLERROR
OCPP 1.6 specifies, with the message id when it can be read ("-1" when not), the connection stays up,
nothing is stored from the bad frame and nothing already stored changes. Stations that repeat
themselves (retransmissions, repeated stops, duplicate meter values) are answered consistently and
stored once.
"""

from __future__ import annotations

import asyncio
import json
import string
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from optivgi_csms.store.models import Base, DataTransferRecord, MeterValue, StatusNotification, Transaction
from tests.support.stations import RawStation, connect_raw

# OCPP-J 1.6 part 4.2.3, as spelled on the wire (errata 5.1/5.2 keep "Occurence" and "FormationViolation").
CODES_16 = {
    "NotImplemented",
    "NotSupported",
    "InternalError",
    "ProtocolError",
    "SecurityError",
    "FormationViolation",
    "PropertyConstraintViolation",
    "OccurenceConstraintViolation",
    "TypeConstraintViolation",
    "GenericError",
}

BOOT = {"chargePointVendor": "VendorX", "chargePointModel": "Wallbox 22"}
START = {"connectorId": 1, "idTag": "TAG-1", "meterStart": 1000, "timestamp": "2026-03-02T08:00:00Z"}
STOP = {"meterStop": 6000, "timestamp": "2026-03-02T09:00:00Z"}
STATUS = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}


def sample(timestamp: str, value: str, **fields: str) -> dict[str, Any]:
    """One 1.6 ``meterValue`` entry with a single sampled value."""
    return {"timestamp": timestamp, "sampledValue": [{"value": value, **fields}]}


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
    assert code in CODES_16
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


async def charging(station: RawStation) -> int:
    """Boot, report Charging and start a transaction: the state bad input must not disturb."""
    await ok(station, "BootNotification", BOOT)
    await ok(station, "StatusNotification", STATUS)
    started = await ok(station, "StartTransaction", START)
    await ok(
        station,
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": started["transactionId"],
            "meterValue": [sample("2026-03-02T08:01:00Z", "1500")],
        },
    )
    return started["transactionId"]


# --- every kind of bad frame ---------------------------------------------------------------------

LONG_ID = "m" * 40
BAD_FRAMES = [
    # not JSON at all
    pytest.param('[2,"bad-json","Heartbeat",{', "FormationViolation", "bad-json", id="truncated JSON"),
    pytest.param("hello", "FormationViolation", "-1", id="plain text"),
    pytest.param(b'[2,"bin","Heartbeat",{}]', "FormationViolation", "-1", id="binary frame"),
    pytest.param('[2,"nan","MeterValues",{"connectorId":NaN}]', "FormationViolation", "nan", id="NaN"),
    # JSON but not an OCPP message
    pytest.param('{"messageId":"x"}', "ProtocolError", "-1", id="object"),
    pytest.param("[]", "ProtocolError", "-1", id="empty array"),
    pytest.param("42", "ProtocolError", "-1", id="number"),
    pytest.param('[2,"short","Heartbeat"]', "ProtocolError", "short", id="CALL with 3 elements"),
    pytest.param('[2,"long","Heartbeat",{},{}]', "ProtocolError", "long", id="CALL with 5 elements"),
    pytest.param('[2,"act",7,{}]', "ProtocolError", "act", id="numeric action"),
    pytest.param('[2,17,"Heartbeat",{}]', "ProtocolError", "-1", id="numeric message id"),
    pytest.param('[2,"","Heartbeat",{}]', "ProtocolError", "-1", id="empty message id"),
    pytest.param(json.dumps([2, LONG_ID, "Heartbeat", {}]), "ProtocolError", LONG_ID, id="message id too long"),
    pytest.param('[7,"type-7",{}]', "ProtocolError", "type-7", id="message type 7"),
    pytest.param('["2","str-type","Heartbeat",{}]', "ProtocolError", "str-type", id="message type as string"),
    # actions
    pytest.param('[2,"u1","FooBar",{}]', "NotImplemented", "u1", id="unknown action"),
    pytest.param('[2,"u2","heartbeat",{}]', "NotImplemented", "u2", id="action in the wrong case"),
    pytest.param('[2,"u3","Reset",{"type":"Hard"}]', "NotSupported", "u3", id="CSMS-to-station action"),
    pytest.param('[2,"u4","GetConfiguration",{}]', "NotSupported", "u4", id="another CSMS-to-station action"),
    # payloads that break the schema
    pytest.param(
        json.dumps([2, "s1", "BootNotification", {"chargePointVendor": "Evil"}]),
        "ProtocolError",
        "s1",
        id="missing required field",
    ),
    pytest.param(
        json.dumps([2, "s2", "StartTransaction", {**START, "connectorId": "1"}]),
        "TypeConstraintViolation",
        "s2",
        id="string for integer",
    ),
    pytest.param(
        json.dumps([2, "s3", "StartTransaction", {**START, "idTag": "T" * 21}]),
        "TypeConstraintViolation",
        "s3",
        id="idTag too long",
    ),
    pytest.param(
        json.dumps([2, "s4", "StartTransaction", {**START, "connectorId": 2, "timestamp": "not a time"}]),
        "TypeConstraintViolation",
        "s4",
        id="start with a bad timestamp",
    ),
    pytest.param(
        json.dumps(
            [2, "s5", "StartTransaction", {**START, "connectorId": 2, "timestamp": "9999-12-31T23:59:59-05:00"}]
        ),
        "TypeConstraintViolation",
        "s5",
        id="start at a time beyond UTC",
    ),
    pytest.param(
        json.dumps([2, "s6", "StatusNotification", {**STATUS, "connectorId": 2, "status": "Sleeping"}]),
        "PropertyConstraintViolation",
        "s6",
        id="status enum",
    ),
    pytest.param(
        json.dumps([2, "s15", "StatusNotification", {**STATUS, "connectorId": -3}]),
        "PropertyConstraintViolation",
        "s15",
        id="negative connector",
    ),
    pytest.param(
        json.dumps([2, "s16", "StartTransaction", {**START, "connectorId": 0, "timestamp": "2026-03-02T08:30:00Z"}]),
        "PropertyConstraintViolation",
        "s16",
        id="transaction on connector 0",
    ),
    pytest.param(
        json.dumps([2, "s7", "StatusNotification", {**STATUS, "connectorId": 2**31}]),
        "TypeConstraintViolation",
        "s7",
        id="connectorId beyond 32 bits",
    ),
    pytest.param(
        json.dumps([2, "s8", "MeterValues", {"connectorId": 1, "meterValue": [sample("yesterday", "1")]}]),
        "TypeConstraintViolation",
        "s8",
        id="meter values with a bad timestamp",
    ),
    pytest.param(
        json.dumps(
            [
                2,
                "s9",
                "MeterValues",
                {"connectorId": 1, "meterValue": [sample("2026-03-02T08:05:00Z", "1600"), sample("later", "1700")]},
            ]
        ),
        "TypeConstraintViolation",
        "s9",
        id="meter values good then bad",
    ),
    pytest.param(
        json.dumps([2, "s10", "MeterValues", {"connectorId": 1, "meterValue": []}]),
        "OccurenceConstraintViolation",
        "s10",
        id="no meter value",
    ),
    pytest.param(
        json.dumps([2, "s11", "Heartbeat", {"extra": True}]), "FormationViolation", "s11", id="extra property"
    ),
    pytest.param(
        json.dumps([2, "s12", "BootNotification", {**BOOT, "chargePointModel": "M\u0000"}]),
        "PropertyConstraintViolation",
        "s12",
        id="NUL in text",
    ),
    pytest.param(
        '[2,"s13","DataTransfer",{"vendorId":"V","data":"\\ud800"}]',
        "PropertyConstraintViolation",
        "s13",
        id="lone surrogate",
    ),
    pytest.param(json.dumps([2, "s14", "Heartbeat", []]), "TypeConstraintViolation", "s14", id="array payload"),
]


@pytest.mark.parametrize(("frame", "code", "message_id"), BAD_FRAMES)
async def test_bad_frame_gets_the_right_callerror_and_changes_nothing(
    csms, frame: str | bytes, code: str, message_id: str
) -> None:
    async with connect_raw(csms, "CP-1") as station:
        await charging(station)
        before = await snapshot(csms)

        assert_callerror(await station.exchange(frame), code, message_id)

        assert await snapshot(csms) == before
        await heartbeat_works(station)


async def test_deeply_nested_json_is_refused_without_an_internal_error(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        # Around the parser's nesting limit, where describing a schema error could overflow the stack.
        for depth in range(800, 1100, 20):
            nested = "[" * depth + "]" * depth
            frame = f'[2,"deep-{depth}","DataTransfer",{{"vendorId":"V","data":{nested}}}]'
            reply = await station.exchange(frame)
            assert reply[:2] == [4, f"deep-{depth}"], reply
            assert reply[2] in {"TypeConstraintViolation", "FormationViolation"}, reply
        await heartbeat_works(station)
    assert await all_rows(csms, DataTransferRecord) == []


async def test_a_null_payload_is_an_empty_payload(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        reply = await station.exchange('[2,"n1","Heartbeat",null]')
        assert reply[:2] == [3, "n1"] and "currentTime" in reply[2]


async def test_after_a_rejected_boot_only_boot_notification_is_answered(make_csms) -> None:
    csms = await make_csms(boot_policy="registered")
    async with connect_raw(csms, "CP-UNKNOWN") as station:
        assert (await ok(station, "BootNotification", BOOT, "b1"))["status"] == "Rejected"
        before = await snapshot(csms)

        assert_callerror(await station.call("Heartbeat", {}, "h1"), "SecurityError", "h1")
        assert_callerror(await station.call("StatusNotification", STATUS, "s1"), "SecurityError", "s1")
        assert_callerror(await station.call("StartTransaction", START, "t1"), "SecurityError", "t1")
        assert await snapshot(csms) == before
        assert await all_rows(csms, Transaction) == []

        # Booting again is still allowed (and still rejected), and the connection stayed up for it.
        assert (await ok(station, "BootNotification", BOOT, "b2"))["status"] == "Rejected"


async def test_a_failing_handler_answers_internal_error_and_keeps_the_connection(csms, monkeypatch) -> None:
    async def broken(station_id: str) -> Any:
        raise RuntimeError("database on fire")

    async with connect_raw(csms, "CP-1") as station:
        with monkeypatch.context() as patch:
            patch.setattr(csms.services.stations, "heartbeat", broken)
            reply = await station.call("Heartbeat", {}, "h1")
        assert_callerror(reply, "InternalError", "h1")
        assert "fire" not in json.dumps(reply)  # internals stay internal
        await heartbeat_works(station)


async def test_answers_to_calls_never_made_get_no_reply(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        for frame in (
            '[3,"never-asked",{"status":"Accepted"}]',
            '[4,"never-asked","GenericError","boom",{}]',
            '[3,"never-asked"]',
            '[4,17,"GenericError","",{}]',
            "[3]",
            "[4]",
        ):
            await station.send(frame)
        # Frames are answered in order: had any of them been answered, that answer would come first.
        reply = await station.call("Heartbeat", {}, "after")
        assert reply[:2] == [3, "after"], reply
        assert await station.no_reply(0.2)


async def test_a_frame_above_the_size_limit_closes_only_that_connection(make_csms) -> None:
    csms = await make_csms(max_frame_size=4096)
    async with connect_raw(csms, "CP-BIG") as big, connect_raw(csms, "CP-OTHER") as other:
        await heartbeat_works(big)
        huge = json.dumps([2, "huge", "DataTransfer", {"vendorId": "V", "data": "x" * 5000}])
        await big.send(huge)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(big.connection.recv(), 5)
        assert big.connection.close_code == 1009  # message too big

        await heartbeat_works(other)
    async with connect_raw(csms, "CP-BIG") as again:
        await heartbeat_works(again)
    assert await all_rows(csms, DataTransferRecord) == []


async def test_garbage_from_one_station_does_not_disturb_another(csms) -> None:
    async def garbage(station: RawStation) -> None:
        for index in range(40):
            frame = ["{", "[]", '[2,"g","FooBar",{}]', b"\x00\xff", '[2,"g","MeterValues",{}]'][index % 5]
            await station.send(frame)
        for _ in range(40):
            reply = json.loads(await asyncio.wait_for(station.connection.recv(), 5))
            assert reply[0] == 4 and reply[2] in CODES_16, reply
        await heartbeat_works(station, "garbage-done")

    async def session(station: RawStation) -> int:
        transaction_id = await charging(station)
        stop = {**STOP, "transactionId": transaction_id}
        await ok(station, "StopTransaction", stop)
        return transaction_id

    async with connect_raw(csms, "CP-BAD") as bad, connect_raw(csms, "CP-GOOD") as good:
        _, transaction_id = await asyncio.gather(garbage(bad), session(good))

    transactions = await all_rows(csms, Transaction)
    assert [(t.id, t.station_id, t.energy_wh) for t in transactions] == [(transaction_id, "CP-GOOD", 5000)]
    assert [m.value for m in await all_rows(csms, MeterValue)] == ["1500"]


# --- stations that repeat themselves -------------------------------------------------------------


async def test_a_retransmitted_start_gets_the_same_transaction_id(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        first = await ok(station, "StartTransaction", START, "start-1")
        again = await ok(station, "StartTransaction", START, "start-2")
        assert again["transactionId"] == first["transactionId"]
    assert [t.id for t in await all_rows(csms, Transaction)] == [first["transactionId"]]


async def test_a_repeated_stop_changes_nothing(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        transaction_id = await charging(station)
        stop = {
            **STOP,
            "transactionId": transaction_id,
            "reason": "EVDisconnected",
            "transactionData": [sample("2026-03-02T09:00:00Z", "6000", context="Transaction.End")],
        }
        await ok(station, "StopTransaction", stop, "stop-1")
        before = await snapshot(csms)

        await ok(station, "StopTransaction", stop, "stop-2")
        # A late stop with other numbers does not rewrite the session either.
        await ok(station, "StopTransaction", {**STOP, "transactionId": transaction_id, "meterStop": 9999}, "stop-3")
        assert await snapshot(csms) == before

    (transaction,) = await all_rows(csms, Transaction)
    assert (transaction.meter_stop_wh, transaction.energy_wh, transaction.stop_reason) == (6000, 5000, "EVDisconnected")
    assert [m.value for m in await all_rows(csms, MeterValue)] == ["1500", "6000"]


async def test_a_stop_that_breaks_the_schema_leaves_the_transaction_open(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        transaction_id = await charging(station)
        bad = {**STOP, "transactionId": transaction_id, "transactionData": [sample("when?", "6000")]}
        assert_callerror(await station.call("StopTransaction", bad, "bad-stop"), "TypeConstraintViolation", "bad-stop")
        (transaction,) = await all_rows(csms, Transaction)
        assert transaction.stopped_at is None
        assert [m.value for m in await all_rows(csms, MeterValue)] == ["1500"]

        # The station's corrected stop is then stored in full.
        await ok(station, "StopTransaction", {**STOP, "transactionId": transaction_id})
    (transaction,) = await all_rows(csms, Transaction)
    assert transaction.energy_wh == 5000


async def test_a_stop_for_an_unknown_transaction_keeps_its_meter_data(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        stop = {**STOP, "transactionId": 4242, "transactionData": [sample("2026-03-02T09:00:00Z", "6000")]}
        answer = await ok(station, "StopTransaction", stop)
        assert answer == {}  # accepted: the station must not retry it forever
    assert await all_rows(csms, Transaction) == []
    (kept,) = await all_rows(csms, MeterValue)
    assert (kept.transaction_id, kept.ocpp_transaction_ref, kept.value, kept.value_numeric) == (
        None,
        "4242",
        "6000",
        6000,
    )


async def test_meter_values_for_an_unknown_transaction_are_kept_unlinked(csms) -> None:
    async with connect_raw(csms, "CP-1") as one, connect_raw(csms, "CP-2") as two:
        other_station_transaction = (await ok(two, "StartTransaction", START))["transactionId"]
        for minute, reference in enumerate((777, other_station_transaction)):
            await ok(
                one,
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": reference,
                    "meterValue": [sample(f"2026-03-02T08:0{minute}:00Z", str(reference))],
                },
            )
    kept = await all_rows(csms, MeterValue)
    assert [(m.station_id, m.transaction_id, m.ocpp_transaction_ref) for m in kept] == [
        ("CP-1", None, "777"),
        # Another station's transaction id is not ours to link to.
        ("CP-1", None, str(other_station_transaction)),
    ]


async def test_the_same_meter_values_twice_are_stored_once(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        transaction_id = await charging(station)
        frame = {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [
                {
                    "timestamp": "2026-03-02T08:02:00Z",
                    "sampledValue": [
                        {"value": "1600"},
                        {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
                        {"value": "10.7", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                    ],
                }
            ],
        }
        await ok(station, "MeterValues", frame, "mv-1")
        await ok(station, "MeterValues", frame, "mv-2")
    assert sorted(m.value for m in await all_rows(csms, MeterValue)) == ["10.7", "1500", "1600", "7.4"]


async def test_a_status_with_a_bad_enum_adds_no_status_row(csms) -> None:
    async with connect_raw(csms, "CP-1") as station:
        await ok(station, "StatusNotification", STATUS)
        reply = await station.call("StatusNotification", {**STATUS, "errorCode": "Broken"}, "bad-status")
        assert_callerror(reply, "PropertyConstraintViolation", "bad-status")
    assert [s.error_code for s in await all_rows(csms, StatusNotification)] == ["NoError"]


# --- fuzzing one connection -----------------------------------------------------------------------

HANDLED = [
    "Authorize",
    "BootNotification",
    "DataTransfer",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
]
EXAMPLES: dict[str, dict[str, Any]] = {
    "Authorize": {"idTag": "TAG-1"},
    "BootNotification": BOOT,
    "DataTransfer": {"vendorId": "V", "messageId": "m", "data": "d"},
    "DiagnosticsStatusNotification": {"status": "Uploaded"},
    "FirmwareStatusNotification": {"status": "Installed"},
    "Heartbeat": {},
    "MeterValues": {"connectorId": 1, "transactionId": 1, "meterValue": [sample("2026-03-02T08:01:00Z", "1")]},
    "StartTransaction": START,
    "StatusNotification": STATUS,
    "StopTransaction": {**STOP, "transactionId": 1, "transactionData": [sample("2026-03-02T09:00:00Z", "2")]},
}

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
        "Charging",
        "Sleeping",
        "",
        "2026-03-02T10:00:00Z",
        "2026-03-02T10:00:00",
        "not a time",
        "9999-12-31T23:59:59-05:00",
        2**31 - 1,
        2**31,
        -(2**31),
        0,
        "T" * 21,
        "\u0000",
        "\ud800",
    ]
)


@st.composite
def real_call(draw: st.DrawFn) -> str:
    """A CALL for an action the CSMS handles: its example payload, often with one field changed,
    dropped or added (in the payload or in a nested meter value)."""
    action = draw(st.sampled_from(HANDLED))
    payload = json.loads(json.dumps(EXAMPLES[action]))
    if draw(st.integers(0, 3)):
        target = payload
        for key in ("meterValue", "transactionData"):
            if key in payload and draw(st.booleans()):
                target = payload[key][0] if draw(st.booleans()) else payload[key][0]["sampledValue"][0]
        field = draw(st.sampled_from([*target, "extra"]))
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
        st.tuples(st.sampled_from([2, 3, 4, 5, 0, "2", 2.0, None]), message_ids, json_values, json_values).map(
            lambda parts: json.dumps(list(parts))
        ),
        st.tuples(message_ids, st.sampled_from([*HANDLED, "Reset", "FooBar", ""]), json_values).map(
            lambda parts: json.dumps([2, *parts])
        ),
        *[real_call()] * 6,
    ]
).flatmap(lambda strategy: strategy)


def _reject(name: str) -> Any:
    raise ValueError(name)


def expected_reply_id(frame: str | bytes) -> str | None:
    """The id an answer to ``frame`` must carry; None when OCPP forbids an answer (a CALLRESULT or
    CALLERROR), "" when any id will do (text that is not JSON: the id is sniffed when possible)."""
    if isinstance(frame, bytes):
        return "-1"
    try:
        value = json.loads(frame, parse_constant=_reject)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(value, list) or not value:
        return "-1"
    if not isinstance(value[0], bool) and value[0] in (3, 4):
        return None
    return value[1] if len(value) > 1 and isinstance(value[1], str) and value[1] else "-1"


@pytest.mark.slow
async def test_junk_frames_on_one_connection_are_each_answered_once(csms) -> None:
    # Fast enough for both backends: about 1.3 s on SQLite and 1.1 s on PostgreSQL for 150 examples.
    loop = asyncio.get_running_loop()
    async with connect_raw(csms, "CP-FUZZ") as station:
        await heartbeat_works(station)
        state = {"snapshot": await snapshot(csms), "sentinel": 0}

        async def exchange(frame: str | bytes) -> list[list[Any]]:
            # A frame, then a sentinel CALL nobody stores (unknown action); frames are answered in
            # order, so whatever arrives before the sentinel's answer is the answer to the frame.
            state["sentinel"] += 1
            sentinel = f"~sentinel~{state['sentinel']}"
            await station.send(frame)
            await station.send(json.dumps([2, sentinel, "Sentinel", {}]))
            replies = []
            while True:
                reply = json.loads(await asyncio.wait_for(station.connection.recv(), 5))
                if reply[:3] == [4, sentinel, "NotImplemented"]:
                    return replies
                replies.append(reply)

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(frame=junk_frames)
        def junk_is_answered(frame: str | bytes) -> None:
            replies = asyncio.run_coroutine_threadsafe(exchange(frame), loop).result(30)
            after = asyncio.run_coroutine_threadsafe(snapshot(csms), loop).result(30)
            expected_id = expected_reply_id(frame)
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
                assert len(reply) == 5 and reply[2] in CODES_16, reply
                assert reply[2] != "InternalError", reply  # a station's mistake is never reported as ours
                assert after == state["snapshot"], f"{frame!r} was refused but changed the database"
            else:
                assert len(reply) == 3 and isinstance(reply[2], dict), reply
            state["snapshot"] = after

        answers: dict[str, int] = {}
        await asyncio.to_thread(junk_is_answered)
        await heartbeat_works(station, "final")
    # The generator reached both sides: calls that were served and frames that were refused.
    assert answers.get("CALLRESULT") and answers.get("ProtocolError") and answers.get("TypeConstraintViolation"), (
        answers
    )
