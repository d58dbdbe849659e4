"""OCPP-J framing and schema validation: every malformed or invalid message maps to the OCPP error code
its version specifies, with the message id whenever the frame lets us read it.

1.6 codes come from OCPP-J 1.6 part 4.2.3 (with the errata's spellings kept: ``FormationViolation``,
``OccurenceConstraintViolation``); 2.0.1 renames the framing codes (``FormatViolation``,
``RpcFrameworkError``, ``MessageTypeNotSupported``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from jsonschema import Draft4Validator
from jsonschema.exceptions import best_match
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, MessageType
from ocpp.v16.enums import Action

from optivgi_csms.protocol.rpc import (
    UNREADABLE_ID,
    V16,
    V201,
    Dialect,
    FrameError,
    has_schema,
    parse_frame,
    schema_error,
    validate,
)

# OCPP-J 1.6 part 4.2.3, table 7, as spelled on the wire (errata 5.1 and 5.2: the typos stay).
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
METER = {
    "connectorId": 1,
    "transactionId": 7,
    "meterValue": [
        {
            "timestamp": "2026-03-02T08:01:00Z",
            "sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
        }
    ],
}


def frame_error(raw: str | bytes, dialect: Dialect = V16) -> FrameError:
    with pytest.raises(FrameError) as caught:
        parse_frame(raw, dialect)
    return caught.value


def validation_error(
    action: str, payload: Any, message_type: int = MessageType.Call, dialect: Dialect = V16
) -> OCPPError:
    # Only an OCPP error will do: anything else would reach the station as the CSMS's InternalError.
    with pytest.raises(OCPPError) as caught:
        validate(message_type, action, payload, dialect)
    return caught.value


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``base`` with fields replaced (a value of ``...`` removes the field)."""
    copy = json.loads(json.dumps(base))
    for key, value in changes.items():
        if value is ...:
            copy.pop(key)
        else:
            copy[key] = value
    return copy


# --- parse_frame: well-formed frames ------------------------------------------------------------


def test_a_call_parses_into_id_action_and_payload() -> None:
    call = parse_frame('[2, "19223201", "BootNotification", {"chargePointVendor": "V"}]', V16)
    assert isinstance(call, Call)
    assert (call.unique_id, call.action, call.payload) == ("19223201", "BootNotification", {"chargePointVendor": "V"})


def test_results_and_errors_parse() -> None:
    result = parse_frame('[3, "a", {"status": "Accepted"}]', V16)
    assert isinstance(result, CallResult) and (result.unique_id, result.payload) == ("a", {"status": "Accepted"})
    error = parse_frame('[4, "b", "NotSupported", "no", {"x": 1}]', V16)
    assert isinstance(error, CallError)
    assert (error.unique_id, error.error_code, error.error_description, error.error_details) == (
        "b",
        "NotSupported",
        "no",
        {"x": 1},
    )


def test_a_null_payload_is_an_empty_payload() -> None:
    # OCPP-J 1.6 part 4.2.1/4.2.2: "null or an empty object {}" are both an empty payload.
    call = parse_frame('[2, "a", "Heartbeat", null]', V16)
    assert call.payload == {}
    validate(MessageType.Call, "Heartbeat", call.payload, V16)
    assert parse_frame('[3, "a", null]', V16).payload == {}


def test_a_36_character_id_is_accepted() -> None:
    assert parse_frame(json.dumps([2, "x" * 36, "Heartbeat", {}]), V16).unique_id == "x" * 36


# --- parse_frame: 1.6 framing errors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message_id"),
    [
        pytest.param('[2, "abc-1", "Heartbeat", {', "abc-1", id="truncated, id readable"),
        pytest.param('[2,"abc-1","Heartbeat",{"x": NaN}]', "abc-1", id="NaN is not JSON"),
        pytest.param('[2, "abc-1", "Heartbeat", {"x": Infinity}]', "abc-1", id="Infinity is not JSON"),
        pytest.param("[2, 'abc-1', 'Heartbeat', {}]", UNREADABLE_ID, id="single quotes"),
        pytest.param("{{{", UNREADABLE_ID, id="garbage"),
        pytest.param("", UNREADABLE_ID, id="empty text"),
        pytest.param("[" * 100_000 + "]" * 100_000, UNREADABLE_ID, id="nesting too deep"),
    ],
)
def test_text_that_is_not_json_is_a_formation_violation(raw: str, message_id: str) -> None:
    problem = frame_error(raw)
    assert problem.error.code == "FormationViolation"
    assert (problem.unique_id, problem.reply) == (message_id, True)


def test_json_nested_beyond_the_parser_is_a_formation_violation_that_says_so() -> None:
    problem = frame_error(
        '[2, "deep", "DataTransfer", {"vendorId": "V", "data": ' + "[" * 100_000 + "]" * 100_000 + "}]"
    )
    assert (problem.error.code, problem.unique_id) == ("FormationViolation", "deep")
    assert "nested too deeply" in problem.error.details["cause"]


def test_a_binary_frame_is_a_formation_violation() -> None:
    problem = frame_error(b'[2, "abc", "Heartbeat", {}]')
    assert (problem.error.code, problem.unique_id, problem.reply) == ("FormationViolation", UNREADABLE_ID, True)


@pytest.mark.parametrize("raw", ["{}", '"text"', "42", "null", "true", "[]", '{"0": 2}'])
def test_json_that_is_not_a_non_empty_array_is_a_protocol_error(raw: str) -> None:
    problem = frame_error(raw)
    assert (problem.error.code, problem.unique_id, problem.reply) == ("ProtocolError", UNREADABLE_ID, True)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param([2, "id-7", "Heartbeat"], id="no payload"),
        pytest.param([2, "id-7"], id="no action"),
        pytest.param([2, "id-7", "Heartbeat", {}, {}], id="five elements"),
        pytest.param([2, "id-7", 5, {}], id="numeric action"),
        pytest.param([2, "id-7", None, {}], id="null action"),
    ],
)
def test_a_call_of_the_wrong_shape_is_a_protocol_error_with_its_id(frame: list[Any]) -> None:
    problem = frame_error(json.dumps(frame))
    assert (problem.error.code, problem.unique_id, problem.reply) == ("ProtocolError", "id-7", True)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param([2, 17, "Heartbeat", {}], id="numeric id"),
        pytest.param([2, None, "Heartbeat", {}], id="null id"),
        pytest.param([2, ["a"], "Heartbeat", {}], id="array id"),
        pytest.param([2, "", "Heartbeat", {}], id="empty id"),
        pytest.param([2], id="no id"),
    ],
)
def test_a_call_with_an_unreadable_id_is_a_protocol_error_with_id_minus_one(frame: list[Any]) -> None:
    problem = frame_error(json.dumps(frame))
    assert (problem.error.code, problem.unique_id, problem.reply) == ("ProtocolError", UNREADABLE_ID, True)


def test_a_too_long_id_is_refused_but_echoed_so_the_station_can_match_it() -> None:
    long_id = "x" * 37
    problem = frame_error(json.dumps([2, long_id, "Heartbeat", {}]))
    assert (problem.error.code, problem.unique_id, problem.reply) == ("ProtocolError", long_id, True)
    assert "36" in problem.error.details["cause"]


@pytest.mark.parametrize(
    ("frame", "message_id"),
    [
        pytest.param([5, "id-9", "Heartbeat", {}], "id-9", id="5"),
        pytest.param([0, "id-9"], "id-9", id="0"),
        pytest.param([1], UNREADABLE_ID, id="1, no id"),
        pytest.param(["2", "id-9", "Heartbeat", {}], "id-9", id="string 2"),
        pytest.param([True, "id-9", "Heartbeat", {}], "id-9", id="true"),
        pytest.param([2.5, "id-9", "Heartbeat", {}], "id-9", id="2.5"),
        pytest.param([None, 3], UNREADABLE_ID, id="null"),
        pytest.param([[2], "id-9"], "id-9", id="array"),
    ],
)
def test_an_unknown_message_type_is_a_protocol_error(frame: list[Any], message_id: str) -> None:
    problem = frame_error(json.dumps(frame))
    assert (problem.error.code, problem.unique_id, problem.reply) == ("ProtocolError", message_id, True)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param([3, "id-3"], id="result without payload"),
        pytest.param([3, "id-3", {}, {}], id="result with four elements"),
        pytest.param([3, 12, {}], id="result with a numeric id"),
        pytest.param([3], id="bare result"),
        pytest.param([4, "id-4", "GenericError"], id="error with three elements"),
        pytest.param([4, "id-4", 7, "", {}], id="error with a numeric code"),
        pytest.param([4, None, "GenericError", "", {}], id="error with a null id"),
    ],
)
def test_malformed_results_and_errors_are_never_answered(frame: list[Any]) -> None:
    # OCPP answers only CALLs: a CALLERROR to a CALLRESULT would be a reply to a reply.
    problem = frame_error(json.dumps(frame))
    assert problem.reply is False
    assert problem.error.code == "ProtocolError"


def test_every_framing_error_uses_a_1_6_code() -> None:
    frames: list[str | bytes] = [b"x", "{", "{}", "[]", "[9]", '[2, "a"]', "[2, 1, 2, 3]", '[3, "a"]']
    for raw in frames:
        assert frame_error(raw).error.code in CODES_16, raw


# --- validate / schema_error: 1.6 payload errors -------------------------------------------------


def test_valid_payloads_pass() -> None:
    validate(MessageType.Call, "BootNotification", BOOT, V16)
    validate(MessageType.Call, "StartTransaction", START, V16)
    validate(MessageType.Call, "MeterValues", METER, V16)
    validate(MessageType.Call, "Heartbeat", {}, V16)
    validate(MessageType.CallResult, "Heartbeat", {"currentTime": "2026-03-02T08:00:00.000Z"}, V16)


@pytest.mark.parametrize(
    ("action", "payload", "code", "field"),
    [
        # missing required field: the payload is incomplete
        pytest.param(
            "BootNotification", {"chargePointVendor": "V"}, "ProtocolError", "chargePointModel", id="missing model"
        ),
        pytest.param(
            "StartTransaction", with_(START, timestamp=...), "ProtocolError", "timestamp", id="missing timestamp"
        ),
        pytest.param(
            "MeterValues",
            {"connectorId": 1, "meterValue": [{"sampledValue": [{"value": "1"}]}]},
            "ProtocolError",
            "timestamp",
            id="missing nested timestamp",
        ),
        # wrong JSON type
        pytest.param(
            "StartTransaction",
            with_(START, connectorId="1"),
            "TypeConstraintViolation",
            "connectorId",
            id="string connectorId",
        ),
        pytest.param(
            "StartTransaction",
            with_(START, connectorId=1.5),
            "TypeConstraintViolation",
            "connectorId",
            id="decimal connectorId",
        ),
        pytest.param(
            "StartTransaction",
            with_(START, connectorId=True),
            "TypeConstraintViolation",
            "connectorId",
            id="boolean connectorId",
        ),
        pytest.param(
            "StartTransaction",
            with_(START, meterStart=None),
            "TypeConstraintViolation",
            "meterStart",
            id="null meterStart",
        ),
        pytest.param(
            "StartTransaction", with_(START, idTag=12), "TypeConstraintViolation", "idTag", id="numeric idTag"
        ),
        pytest.param(
            "MeterValues", with_(METER, meterValue={}), "TypeConstraintViolation", "meterValue", id="object for array"
        ),
        pytest.param("Heartbeat", [], "TypeConstraintViolation", "payload", id="array payload"),
        pytest.param("Heartbeat", "beat", "TypeConstraintViolation", "payload", id="string payload"),
        # CiString too long
        pytest.param(
            "StartTransaction", with_(START, idTag="T" * 21), "TypeConstraintViolation", "idTag", id="idTag too long"
        ),
        pytest.param(
            "BootNotification",
            with_(BOOT, chargePointVendor="V" * 21),
            "TypeConstraintViolation",
            "chargePointVendor",
            id="vendor too long",
        ),
        # a timestamp the schema lets through but that is no date-time
        pytest.param(
            "StartTransaction",
            with_(START, timestamp="yesterday"),
            "TypeConstraintViolation",
            "timestamp",
            id="timestamp words",
        ),
        pytest.param(
            "StartTransaction",
            with_(START, timestamp="2026-02-30T08:00:00Z"),
            "TypeConstraintViolation",
            "timestamp",
            id="timestamp 30 February",
        ),
        pytest.param(
            "StartTransaction", with_(START, timestamp=""), "TypeConstraintViolation", "timestamp", id="timestamp empty"
        ),
        # a time UTC cannot express (a naive conversion overflows)
        pytest.param(
            "StartTransaction",
            with_(START, timestamp="9999-12-31T23:59:59-05:00"),
            "TypeConstraintViolation",
            "timestamp",
            id="timestamp beyond UTC",
        ),
        pytest.param(
            "MeterValues",
            {"connectorId": 1, "meterValue": [{"timestamp": "soon", "sampledValue": [{"value": "1"}]}]},
            "TypeConstraintViolation",
            "meterValue/0/timestamp",
            id="nested timestamp",
        ),
        # integers are 32-bit (xs:int in the 1.6 WSDL)
        pytest.param(
            "StartTransaction",
            with_(START, connectorId=2**31),
            "TypeConstraintViolation",
            "connectorId",
            id="connectorId 2^31",
        ),
        pytest.param(
            "StartTransaction",
            with_(START, meterStart=-(2**31) - 1),
            "TypeConstraintViolation",
            "meterStart",
            id="meterStart below -2^31",
        ),
        pytest.param(
            "StopTransaction",
            {"transactionId": 2**40, "meterStop": 1, "timestamp": "2026-03-02T09:00:00Z"},
            "TypeConstraintViolation",
            "transactionId",
            id="transactionId 2^40",
        ),
        # enum and range
        pytest.param(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
            "PropertyConstraintViolation",
            "status",
            id="status enum",
        ),
        pytest.param(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "noerror", "status": "Available"},
            "PropertyConstraintViolation",
            "errorCode",
            id="errorCode case",
        ),
        pytest.param(
            "MeterValues",
            {
                "connectorId": 1,
                "meterValue": [{"timestamp": "2026-03-02T08:01:00Z", "sampledValue": [{"value": "1", "unit": "MWh"}]}],
            },
            "PropertyConstraintViolation",
            "meterValue/0/sampledValue/0/unit",
            id="unit enum",
        ),
        # bounds from the 1.6 field tables: connectorId >= 0, and > 0 for a transaction
        pytest.param(
            "StatusNotification",
            {"connectorId": -1, "errorCode": "NoError", "status": "Available"},
            "PropertyConstraintViolation",
            "connectorId",
            id="negative connector",
        ),
        pytest.param(
            "StartTransaction",
            with_(START, connectorId=0),
            "PropertyConstraintViolation",
            "connectorId",
            id="start on 0",
        ),
        pytest.param(
            "MeterValues", with_(METER, connectorId=-2), "PropertyConstraintViolation", "connectorId", id="meter on -2"
        ),
        # text no database can store
        pytest.param("Authorize", {"idTag": "TAG\u0000"}, "PropertyConstraintViolation", "idTag", id="NUL in idTag"),
        pytest.param(
            "DataTransfer",
            {"vendorId": "V", "data": "\ud800"},
            "PropertyConstraintViolation",
            "data",
            id="lone surrogate",
        ),
        # extra property: not the PDU's structure
        pytest.param("Heartbeat", {"beat": 1}, "FormationViolation", "beat", id="extra property"),
        pytest.param(
            "StartTransaction",
            with_(START, transactionId=3),
            "FormationViolation",
            "transactionId",
            id="transactionId in a start",
        ),
        # cardinality
        pytest.param(
            "MeterValues", with_(METER, meterValue=[]), "OccurenceConstraintViolation", "meterValue", id="no meterValue"
        ),
        pytest.param(
            "MeterValues",
            {"connectorId": 1, "meterValue": [{"timestamp": "2026-03-02T08:01:00Z", "sampledValue": []}]},
            "OccurenceConstraintViolation",
            "meterValue/0/sampledValue",
            id="no sampledValue",
        ),
    ],
)
def test_schema_failures_map_to_the_1_6_error_codes(action: str, payload: Any, code: str, field: str) -> None:
    error = validation_error(action, payload)
    assert error.code == code
    assert error.code in CODES_16
    # The station is told which field is wrong.
    assert field in error.details["cause"]


def test_connector_zero_is_the_whole_station_except_for_a_transaction() -> None:
    validate(
        MessageType.Call, "StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"}, V16
    )
    validate(MessageType.Call, "MeterValues", with_(METER, connectorId=0), V16)
    validate(MessageType.Call, "StartTransaction", with_(START, connectorId=1), V16)


def test_32_bit_integer_bounds_are_inclusive() -> None:
    validate(MessageType.Call, "StartTransaction", with_(START, meterStart=2**31 - 1, connectorId=2**31 - 1), V16)
    validate(MessageType.Call, "StartTransaction", with_(START, meterStart=-(2**31)), V16)
    error = validation_error("StartTransaction", with_(START, meterStart=2**31))
    assert "32-bit" in error.details["cause"]


def test_the_32_bit_rule_applies_to_integers_only_not_to_decimals() -> None:
    answer = {
        "status": "Accepted",
        "chargingSchedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 5_000_000_000}],
        },
    }
    validate(MessageType.CallResult, "GetCompositeSchedule", answer, V16)


def test_unicode_text_is_fine() -> None:
    validate(MessageType.Call, "DataTransfer", {"vendorId": "Vendør", "data": "⚡ 🔌 \u00e9"}, V16)


def test_decimals_are_checked_as_decimals() -> None:
    # 21.4 is a multiple of 0.1 in decimal, not in binary floating point.
    profile = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}],
            },
        },
    }
    validate(MessageType.Call, "SetChargingProfile", profile, V16)
    profile["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = 4.11
    assert validation_error("SetChargingProfile", profile).code == "PropertyConstraintViolation"


def test_an_action_without_a_schema_is_a_formation_violation() -> None:
    assert not has_schema(V16, "FooBar")
    assert has_schema(V16, "Heartbeat")
    assert validation_error("FooBar", {}).code == "FormationViolation"


def test_every_station_to_csms_action_has_a_schema() -> None:
    # The receive loop validates every handled CALL; an action without a schema could not be answered.
    for action in (
        Action.authorize,
        Action.boot_notification,
        Action.data_transfer,
        Action.diagnostics_status_notification,
        Action.firmware_status_notification,
        Action.heartbeat,
        Action.meter_values,
        Action.start_transaction,
        Action.status_notification,
        Action.stop_transaction,
    ):
        assert has_schema(V16, action.value), action


@pytest.mark.parametrize(
    ("schema", "instance", "code"),
    [
        ({"type": "integer"}, "x", "TypeConstraintViolation"),
        ({"type": "string", "maxLength": 2}, "xyz", "TypeConstraintViolation"),
        ({"type": "string", "minLength": 2}, "x", "TypeConstraintViolation"),
        ({"required": ["a"]}, {}, "ProtocolError"),
        ({"enum": ["a"]}, "b", "PropertyConstraintViolation"),
        ({"minimum": 0}, -1, "PropertyConstraintViolation"),
        ({"maximum": 0}, 1, "PropertyConstraintViolation"),
        ({"multipleOf": 5}, 7, "PropertyConstraintViolation"),
        ({"pattern": "^a+$"}, "b", "PropertyConstraintViolation"),
        ({"minItems": 1}, [], "OccurenceConstraintViolation"),
        ({"maxItems": 1}, [1, 2], "OccurenceConstraintViolation"),
        ({"uniqueItems": True}, [1, 1], "OccurenceConstraintViolation"),
        ({"additionalProperties": False}, {"a": 1}, "FormationViolation"),
        ({"not": {}}, 1, "FormationViolation"),
    ],
)
def test_schema_error_maps_each_kind_of_failure(schema: dict[str, Any], instance: Any, code: str) -> None:
    error = best_match(Draft4Validator(schema).iter_errors(instance))
    assert error is not None
    assert schema_error(error, V16).code == code


def test_payloads_nested_almost_as_deep_as_the_parser_allows_get_an_ocpp_error() -> None:
    # Deep enough that describing the schema error would overflow the stack: still an OCPP answer,
    # never a RecursionError (which the session would report as the CSMS's own InternalError).
    limit = sys.getrecursionlimit()
    for depth in range(limit - 300, limit + 50, 10):
        nested: list[Any] = []
        for _ in range(depth):
            nested = [nested]
        for payload in ({"vendorId": "V", "data": nested}, {"vendorId": "V", "x": nested}):
            error = validation_error("DataTransfer", payload)
            assert error.code in {"TypeConstraintViolation", "FormationViolation"}


def test_long_causes_are_cut_short() -> None:
    error = validation_error("DataTransfer", {"vendorId": "V", "data": ["x" * 10_000]})
    assert error.code == "TypeConstraintViolation"
    assert len(error.details["cause"]) <= 200


# --- 2.0.1 framing codes -------------------------------------------------------------------------


def test_v201_names_the_framing_errors_its_own_way() -> None:
    invalid_json = frame_error('[2, "a1", "Heartbeat", {', V201)
    assert (invalid_json.error.code, invalid_json.unique_id) == ("FormatViolation", "a1")
    assert frame_error(b"[]", V201).error.code == "FormatViolation"

    not_an_array = frame_error("{}", V201)
    assert (not_an_array.error.code, not_an_array.unique_id) == ("RpcFrameworkError", UNREADABLE_ID)
    unreadable_id = frame_error("[2, 5, 7, {}]", V201)
    assert (unreadable_id.error.code, unreadable_id.unique_id) == ("RpcFrameworkError", UNREADABLE_ID)
    wrong_shape = frame_error('[2, "a2", "Heartbeat"]', V201)
    assert (wrong_shape.error.code, wrong_shape.unique_id) == ("RpcFrameworkError", "a2")

    unknown_type = frame_error('[6, "a3", "Heartbeat", {}]', V201)
    assert (unknown_type.error.code, unknown_type.unique_id) == ("MessageTypeNotSupported", "a3")


def test_v201_schema_failures() -> None:
    assert validation_error("Heartbeat", {"beat": 1}, dialect=V201).code == "FormatViolation"
    assert validation_error("Authorize", {}, dialect=V201).code == "ProtocolError"
    validate(MessageType.Call, "Heartbeat", {}, V201)
