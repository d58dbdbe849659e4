"""OCPP-J 2.0.1 framing and schema validation: the twelve error codes of 2.0.1 part 4.3, with the message id
whenever the frame lets us read it.

2.0.1 differs from 1.6 in names only where part 4.3 says so: FormatViolation (1.6 FormationViolation),
OccurrenceConstraintViolation (1.6 keeps the typo "Occurence"), RpcFrameworkError for a frame that is not
an OCPP-J message and MessageTypeNotSupported for a message type other than 2, 3 or 4.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft4Validator
from jsonschema.exceptions import best_match
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, MessageType
from ocpp.v201.enums import Action

from optivgi_csms.protocol.rpc import (
    UNREADABLE_ID,
    V16,
    V201,
    FrameError,
    has_schema,
    parse_frame,
    schema_error,
    validate,
)

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
EVENT = {
    "eventType": "Started",
    "timestamp": "2026-03-02T08:00:00Z",
    "triggerReason": "CablePluggedIn",
    "seqNo": 0,
    "transactionInfo": {"transactionId": "TX-1", "chargingState": "EVConnected"},
    "evse": {"id": 1, "connectorId": 1},
    "idToken": {"idToken": "TAG-1", "type": "ISO14443"},
    "meterValue": [
        {
            "timestamp": "2026-03-02T08:00:00Z",
            "sampledValue": [{"value": 1.5, "unitOfMeasure": {"unit": "kWh", "multiplier": 0}}],
        }
    ],
}


def frame_error(raw: str | bytes) -> FrameError:
    with pytest.raises(FrameError) as caught:
        parse_frame(raw, V201)
    return caught.value


def validation_error(action: str, payload: Any, message_type: int = MessageType.Call) -> OCPPError:
    # Only an OCPP error will do: anything else would reach the station as the CSMS's InternalError.
    with pytest.raises(OCPPError) as caught:
        validate(message_type, action, payload, V201)
    return caught.value


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``base`` with the field at ``path`` ("a/b/0/c") replaced (``...`` removes it)."""
    copy = json.loads(json.dumps(base))
    *parents, last = path.split("/")
    target: Any = copy
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return copy


# --- framing --------------------------------------------------------------------------------------


def test_a_2_0_1_call_parses() -> None:
    call = parse_frame(json.dumps([2, "c-1", "TransactionEvent", EVENT]), V201)
    assert isinstance(call, Call)
    assert (call.unique_id, call.action, call.payload) == ("c-1", "TransactionEvent", EVENT)


@pytest.mark.parametrize(
    ("raw", "message_id"),
    [
        pytest.param('[2, "abc-1", "Heartbeat", {', "abc-1", id="truncated, id readable"),
        pytest.param('[2,"abc-1","Heartbeat",{"x": NaN}]', "abc-1", id="NaN is not JSON"),
        pytest.param("[2, 'abc-1', 'Heartbeat', {}]", UNREADABLE_ID, id="single quotes"),
        pytest.param("", UNREADABLE_ID, id="empty text"),
        pytest.param("[" * 100_000 + "]" * 100_000, UNREADABLE_ID, id="nesting too deep"),
        pytest.param(b'[2, "abc", "Heartbeat", {}]', UNREADABLE_ID, id="binary frame"),
    ],
)
def test_what_is_not_json_text_is_a_format_violation(raw: str | bytes, message_id: str) -> None:
    # 2.0.1 part 4.3: FormatViolation, "Payload for Action is syntactically incorrect".
    problem = frame_error(raw)
    assert (problem.error.code, problem.unique_id, problem.reply) == ("FormatViolation", message_id, True)


@pytest.mark.parametrize(
    ("frame", "message_id"),
    [
        pytest.param({}, UNREADABLE_ID, id="object"),
        pytest.param([], UNREADABLE_ID, id="empty array"),
        pytest.param("text", UNREADABLE_ID, id="string"),
        pytest.param([2, 17, "Heartbeat", {}], UNREADABLE_ID, id="numeric id"),
        pytest.param([2, "", "Heartbeat", {}], UNREADABLE_ID, id="empty id"),
        pytest.param([2], UNREADABLE_ID, id="no id"),
        pytest.param([2, "id-7", "Heartbeat"], "id-7", id="no payload"),
        pytest.param([2, "id-7", "Heartbeat", {}, {}], "id-7", id="five elements"),
        pytest.param([2, "id-7", 5, {}], "id-7", id="numeric action"),
        pytest.param([2, "x" * 37, "Heartbeat", {}], "x" * 37, id="id too long, echoed"),
    ],
)
def test_json_that_is_not_a_valid_call_is_an_rpc_framework_error(frame: Any, message_id: str) -> None:
    # 2.0.1 part 4.3: RpcFrameworkError, "not a valid RPC Request, for example: MessageId could not be read".
    problem = frame_error(json.dumps(frame))
    assert (problem.error.code, problem.unique_id, problem.reply) == ("RpcFrameworkError", message_id, True)


@pytest.mark.parametrize(
    ("frame", "message_id"),
    [
        pytest.param([5, "id-9", "GenericError", "", {}], "id-9", id="5, 2.1 CALLRESULTERROR"),
        pytest.param([6, "id-9", "NotifyPeriodicEventStream", {}], "id-9", id="6, 2.1 SEND"),
        pytest.param([0, "id-9"], "id-9", id="0"),
        pytest.param([1], UNREADABLE_ID, id="1, no id"),
        pytest.param(["2", "id-9", "Heartbeat", {}], "id-9", id="string 2"),
        pytest.param([True, "id-9", "Heartbeat", {}], "id-9", id="true"),
        pytest.param([None, 3], UNREADABLE_ID, id="null"),
    ],
)
def test_an_unknown_message_type_is_message_type_not_supported(frame: list[Any], message_id: str) -> None:
    problem = frame_error(json.dumps(frame))
    assert (problem.error.code, problem.unique_id, problem.reply) == ("MessageTypeNotSupported", message_id, True)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param([3, "id-3"], id="result without payload"),
        pytest.param([3, 12, {}], id="result with a numeric id"),
        pytest.param([4, "id-4", "GenericError"], id="error with three elements"),
        pytest.param([4, None, "GenericError", "", {}], id="error with a null id"),
    ],
)
def test_malformed_results_and_errors_are_never_answered(frame: list[Any]) -> None:
    problem = frame_error(json.dumps(frame))
    assert problem.reply is False
    assert problem.error.code == "RpcFrameworkError"


def test_every_framing_error_uses_a_2_0_1_code() -> None:
    frames: list[str | bytes] = [b"x", "{", "{}", "[]", "[9]", '[2, "a"]', "[2, 1, 2, 3]", '[3, "a"]', '[5, "a"]']
    for raw in frames:
        assert frame_error(raw).error.code in CODES_201, raw


# --- validation -------------------------------------------------------------------------------------


def test_valid_2_0_1_payloads_pass() -> None:
    validate(MessageType.Call, "BootNotification", BOOT, V201)
    validate(MessageType.Call, "TransactionEvent", EVENT, V201)
    validate(MessageType.Call, "Heartbeat", {}, V201)
    validate(MessageType.CallResult, "TransactionEvent", {"idTokenInfo": {"status": "Accepted"}}, V201)


def test_custom_data_is_open_but_needs_a_vendor() -> None:
    custom = {"vendorId": "com.acme", "anything": [1, {"x": None}]}
    validate(MessageType.Call, "Heartbeat", {"customData": custom}, V201)
    validate(MessageType.Call, "TransactionEvent", changed(EVENT, "transactionInfo/customData", custom), V201)
    validate(
        MessageType.Call, "TransactionEvent", changed(EVENT, "meterValue/0/sampledValue/0/customData", custom), V201
    )
    error = validation_error("Heartbeat", {"customData": {"anything": 1}})
    assert error.code == "ProtocolError" and "vendorId" in error.details["cause"]


@pytest.mark.parametrize(
    ("action", "payload", "code", "field"),
    [
        # a mandatory field missing: "not conform the PDU structure"
        pytest.param("BootNotification", changed(BOOT, "chargingStation", ...), "ProtocolError", "chargingStation"),
        pytest.param("TransactionEvent", changed(EVENT, "seqNo", ...), "ProtocolError", "seqNo"),
        pytest.param(
            "TransactionEvent", changed(EVENT, "transactionInfo/transactionId", ...), "ProtocolError", "transactionId"
        ),
        # a property the message does not define
        pytest.param("Heartbeat", {"beat": 1}, "FormatViolation", "beat"),
        pytest.param("TransactionEvent", changed(EVENT, "evse/number", 1), "FormatViolation", "number"),
        # wrong JSON type, string too long, integer beyond 32 bits, not a date-time
        pytest.param("TransactionEvent", changed(EVENT, "seqNo", "0"), "TypeConstraintViolation", "seqNo"),
        pytest.param("TransactionEvent", changed(EVENT, "seqNo", 0.5), "TypeConstraintViolation", "seqNo"),
        pytest.param("TransactionEvent", changed(EVENT, "seqNo", 2**31), "TypeConstraintViolation", "seqNo"),
        pytest.param(
            "TransactionEvent",
            changed(EVENT, "transactionInfo/transactionId", "T" * 37),
            "TypeConstraintViolation",
            "transactionInfo/transactionId",
        ),
        pytest.param("TransactionEvent", changed(EVENT, "timestamp", "soon"), "TypeConstraintViolation", "timestamp"),
        pytest.param(
            "TransactionEvent",
            changed(EVENT, "meterValue/0/timestamp", "2026-03-02T25:00:00Z"),
            "TypeConstraintViolation",
            "meterValue/0/timestamp",
        ),
        pytest.param(
            "TransactionEvent",
            changed(EVENT, "meterValue/0/sampledValue/0/value", "1.5"),
            "TypeConstraintViolation",
            "value",
        ),
        # values outside an enumeration or range
        pytest.param(
            "TransactionEvent", changed(EVENT, "eventType", "Stopped"), "PropertyConstraintViolation", "eventType"
        ),
        pytest.param(
            "TransactionEvent",
            changed(EVENT, "transactionInfo/chargingState", "Sleeping"),
            "PropertyConstraintViolation",
            "chargingState",
        ),
        pytest.param("BootNotification", changed(BOOT, "reason", "Boot"), "PropertyConstraintViolation", "reason"),
        pytest.param(
            "NotifyEVChargingNeeds",
            {
                "evseId": 1,
                "chargingNeeds": {
                    "requestedEnergyTransfer": "DC",
                    "dcChargingParameters": {"evMaxCurrent": 100, "evMaxVoltage": 400, "stateOfCharge": -1},
                },
            },
            "PropertyConstraintViolation",
            "stateOfCharge",
        ),
        pytest.param(
            "BootNotification",
            changed(BOOT, "chargingStation/model", "M\u0000"),
            "PropertyConstraintViolation",
            "chargingStation/model",
        ),
        # too few items
        pytest.param("MeterValues", {"evseId": 1, "meterValue": []}, "OccurrenceConstraintViolation", "meterValue"),
        pytest.param(
            "TransactionEvent",
            changed(EVENT, "meterValue/0/sampledValue", []),
            "OccurrenceConstraintViolation",
            "meterValue/0/sampledValue",
        ),
    ],
)
def test_schema_failures_map_to_the_2_0_1_error_codes(action: str, payload: Any, code: str, field: str) -> None:
    error = validation_error(action, payload)
    assert error.code == code
    assert error.code in CODES_201
    # The station is told which field is wrong.
    assert field in error.details["cause"]


@pytest.mark.parametrize(
    ("schema", "instance", "code_16", "code_201"),
    [
        ({"type": "integer"}, "x", "TypeConstraintViolation", "TypeConstraintViolation"),
        ({"required": ["a"]}, {}, "ProtocolError", "ProtocolError"),
        ({"enum": ["a"]}, "b", "PropertyConstraintViolation", "PropertyConstraintViolation"),
        ({"minItems": 1}, [], "OccurenceConstraintViolation", "OccurrenceConstraintViolation"),
        ({"maxItems": 1}, [1, 2], "OccurenceConstraintViolation", "OccurrenceConstraintViolation"),
        ({"additionalProperties": False}, {"a": 1}, "FormationViolation", "FormatViolation"),
        ({"not": {}}, 1, "FormationViolation", "FormatViolation"),
    ],
)
def test_each_version_spells_the_codes_its_own_way(
    schema: dict[str, Any], instance: Any, code_16: str, code_201: str
) -> None:
    error = best_match(Draft4Validator(schema).iter_errors(instance))
    assert error is not None
    assert (schema_error(error, V16).code, schema_error(error, V201).code) == (code_16, code_201)


def test_evse_ids_are_bounded_as_the_field_tables_say() -> None:
    # MeterValues: EVSE 0 is the main power meter; NotifyEVChargingNeeds: an EV is on a real EVSE.
    meter = {"evseId": 0, "meterValue": EVENT["meterValue"]}
    validate(MessageType.Call, "MeterValues", meter, V201)
    assert validation_error("MeterValues", changed(meter, "evseId", -1)).code == "PropertyConstraintViolation"
    needs = {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC"}}
    validate(MessageType.Call, "NotifyEVChargingNeeds", needs, V201)
    error = validation_error("NotifyEVChargingNeeds", changed(needs, "evseId", 0))
    assert error.code == "PropertyConstraintViolation" and "evseId" in error.details["cause"]


def test_an_action_2_0_1_does_not_define_has_no_schema() -> None:
    assert not has_schema(V201, "StartTransaction")  # 1.6 only
    assert validation_error("StartTransaction", {}).code == "FormatViolation"


def test_every_station_to_csms_action_has_a_schema() -> None:
    # The receive loop validates every handled CALL; an action without a schema could not be answered.
    for action in (
        Action.authorize,
        Action.boot_notification,
        Action.cleared_charging_limit,
        Action.data_transfer,
        Action.firmware_status_notification,
        Action.heartbeat,
        Action.log_status_notification,
        Action.meter_values,
        Action.notify_charging_limit,
        Action.notify_ev_charging_needs,
        Action.notify_event,
        Action.notify_report,
        Action.report_charging_profiles,
        Action.reservation_status_update,
        Action.security_event_notification,
        Action.status_notification,
        Action.transaction_event,
    ):
        assert has_schema(V201, action.value), action
