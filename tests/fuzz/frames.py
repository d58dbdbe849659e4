"""Hostile OCPP-J frames for the fuzzing tests, and the answer OCPP-J requires for each.

Frames are drawn with hypothesis strategies: valid CALLs of every station-to-CSMS action of a version
(from hand-written payloads that pass the ``ocpp`` library's schemas), the same CALLs mutated (fields
dropped, added or given values of the wrong type, huge, unicode, deeply nested, at 32-bit limits),
the frame text truncated or with one character changed, envelopes that are not OCPP, CALLs of actions
only the CSMS may send, unknown actions, and CALLRESULTs/CALLERRORs answering calls never made.
Message ids come partly from a small pool, so ids repeat and are reused.

:func:`expected_answer` is the oracle. It is written from OCPP-J (1.6 part 4, 2.0.1 part 4) and the
project's decisions as README.md's bad-input table states them, not from ``optivgi_csms.protocol.rpc``:
the frame's shape decides the RPC-level codes, and the library's JSON schema (checked here with plain
jsonschema) decides which schema-level codes a refused payload may get.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st
from jsonschema import Draft4Validator, FormatChecker
from ocpp.messages import get_validator
from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201

from tests.e2e import test_v16_bad_input as v16_examples
from tests.e2e import test_v201_bad_input as v201_examples

RESULT = "CALLRESULT"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Version:
    """What the oracle needs to know of one OCPP version."""

    name: str  # the ``ocpp`` library's version name
    subprotocol: str
    known: frozenset[str]  # every action the version defines
    handled: frozenset[str]  # the station-to-CSMS actions this CSMS serves
    seeds: dict[str, dict[str, Any]]  # a valid payload of each handled action
    csms_side: tuple[str, ...]  # actions only a CSMS sends (a station sending one is NotSupported)
    codes: frozenset[str]  # the error codes OCPP-J of this version defines
    format_violation: str
    malformed: str
    unknown_type: str
    occurrence: str


V16_SEEDS = {
    **v16_examples.EXAMPLES,
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": "2026-03-02T08:00:00Z"},
}
V16 = Version(
    name="1.6",
    subprotocol="ocpp1.6",
    known=frozenset(action.value for action in Action16),
    handled=frozenset(V16_SEEDS),
    seeds=V16_SEEDS,
    csms_side=(
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "SetChargingProfile",
        "Reset",
        "GetConfiguration",
        "ChangeConfiguration",
        "TriggerMessage",
        "ReserveNow",
        "UpdateFirmware",
        "SignCertificate",  # station-to-CSMS in the security extension, but not served: NotSupported too
    ),
    codes=frozenset(v16_examples.CODES_16),
    format_violation="FormationViolation",
    malformed="ProtocolError",
    unknown_type="ProtocolError",
    occurrence="OccurenceConstraintViolation",
)
V201 = Version(
    name="2.0.1",
    subprotocol="ocpp2.0.1",
    known=frozenset(action.value for action in Action201),
    handled=frozenset(v201_examples.EXAMPLES),
    seeds=v201_examples.EXAMPLES,
    csms_side=(
        "RequestStartTransaction",
        "RequestStopTransaction",
        "SetChargingProfile",
        "Reset",
        "GetVariables",
        "SetVariables",
        "TriggerMessage",
        "ReserveNow",
        "Get15118EVCertificate",  # station-to-CSMS actions the CSMS does not serve
        "SignCertificate",
        "NotifyDisplayMessages",
    ),
    codes=frozenset(v201_examples.CODES_201),
    format_violation="FormatViolation",
    malformed="RpcFrameworkError",
    unknown_type="MessageTypeNotSupported",
    occurrence="OccurrenceConstraintViolation",
)
VERSIONS = {"1.6": V16, "2.0.1": V201}

# Valid payloads of CSMS-side actions (what a confused or hostile station might echo back).
CSMS_SIDE_PAYLOADS: dict[str, dict[str, Any]] = {
    "RemoteStartTransaction": {"idTag": "TAG-1", "connectorId": 1},
    "RequestStartTransaction": {"idToken": {"idToken": "TAG-1", "type": "ISO14443"}, "remoteStartId": 1},
    "SetChargingProfile": {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]},
        },
    },
    "Reset": {"type": "Hard"},
}


# --- the oracle --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """The answer a frame must get: its message id ("" when any will do) and the answers allowed."""

    message_id: str
    allowed: frozenset[str]
    action: str | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _readable_time(text: Any) -> bool:
    # OCPP's RFC 3339 date-time; the project also takes one without seconds or zone (as UTC),
    # as README.md says, so only text no reading of it makes a moment in UTC is unreadable.
    if not isinstance(text, str):
        return True
    value = text.strip()
    if len(value) < 16 or value[4:5] != "-" or value[10:11] not in ("T", "t", " "):
        return False
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
        (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return False
    return value[:4].isdigit()


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date-time")(_readable_time)

# jsonschema keyword -> the error code README.md's bad-input table gives it ("format": unreadable time).
_KEYWORD_CODES = {
    "type": "TypeConstraintViolation",
    "maxLength": "TypeConstraintViolation",
    "minLength": "TypeConstraintViolation",
    "format": "TypeConstraintViolation",
    "required": "ProtocolError",
    "enum": "PropertyConstraintViolation",
    "minimum": "PropertyConstraintViolation",
    "maximum": "PropertyConstraintViolation",
    "exclusiveMinimum": "PropertyConstraintViolation",
    "exclusiveMaximum": "PropertyConstraintViolation",
    "multipleOf": "PropertyConstraintViolation",
    "pattern": "PropertyConstraintViolation",
}


def _walk(value: Any, depth: int = 0) -> tuple[bool, bool, int]:
    """(any integer beyond 32 bits, any text no database stores, nesting depth) of a JSON value."""
    if isinstance(value, bool):
        return False, False, depth
    if isinstance(value, int):
        return not INT32_MIN <= value <= INT32_MAX, False, depth
    if isinstance(value, str):
        bad_text = "\x00" in value or any(0xD800 <= ord(char) <= 0xDFFF for char in value)
        return False, bad_text, depth
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    big = bad = False
    deepest = depth
    for item in items:
        item_big, item_bad, item_depth = _walk(item, depth + 1)
        big, bad, deepest = big or item_big, bad or item_bad, max(deepest, item_depth)
    return big, bad, deepest


def payload_codes(version: Version, action: str, payload: Any) -> frozenset[str]:
    """The answers a CALL of a served action with ``payload`` may get."""
    schema = get_validator(2, action, version.name).schema
    validator = Draft4Validator(schema, format_checker=_FORMATS)
    try:
        big, bad_text, depth = _walk(payload)
    except RecursionError:
        return frozenset({version.format_violation, "TypeConstraintViolation"})
    codes = set()
    try:
        for error in validator.iter_errors(payload):
            if error.validator in ("minItems", "maxItems", "uniqueItems"):
                codes.add(version.occurrence)
            else:
                codes.add(_KEYWORD_CODES.get(error.validator, version.format_violation))
    except RecursionError:
        codes.add(version.format_violation)
    if depth > 400:
        # So deep that describing a schema error may exhaust the stack: refused as ill-formed or on any of
        # its schema errors; a field taking any JSON (DataTransfer data) may even store it.
        extra = {"PropertyConstraintViolation"} if bad_text else set()
        return frozenset(codes | extra | {version.format_violation, "TypeConstraintViolation", RESULT})
    if codes:
        # Which failure is named first is the CSMS's choice; an integer beyond 32 bits or text no
        # database stores may be named instead of the schema's failure.
        return frozenset(
            codes
            | ({"TypeConstraintViolation"} if big else set())
            | ({"PropertyConstraintViolation"} if bad_text else set())
        )
    if bad_text:
        return frozenset({"PropertyConstraintViolation"})
    if not isinstance(payload, dict) or not _within_minimums(version, action, payload):
        return frozenset({"PropertyConstraintViolation"})
    allowed = {RESULT}
    if big:  # refused in an integer field, served in a number field
        allowed.add("TypeConstraintViolation")
    # What handlers refuse after the schema: a unit multiplier taking a 2.0.1 reading out of any range,
    # a charging schedule that is not one.
    if version.name == "2.0.1" and action in ("MeterValues", "TransactionEvent"):
        allowed.add("PropertyConstraintViolation")
    if action in ("NotifyChargingLimit", "ReportChargingProfiles"):
        allowed.add("TypeConstraintViolation")
    return frozenset(allowed)


def _within_minimums(version: Version, action: str, payload: dict[str, Any]) -> bool:
    """Whether the ids the specification's field tables bound (but its schemas do not) are within bounds."""
    minimums = {
        ("1.6", "StatusNotification", "connectorId"): 0,
        ("1.6", "MeterValues", "connectorId"): 0,
        ("1.6", "StartTransaction", "connectorId"): 1,
        ("2.0.1", "MeterValues", "evseId"): 0,
        ("2.0.1", "NotifyEVChargingNeeds", "evseId"): 1,
    }
    for (name, message, field), minimum in minimums.items():
        value = payload.get(field)
        if name == version.name and message == action and isinstance(value, int) and value < minimum:
            return False
    return True


def expected_answer(frame: str | bytes, version: Version) -> Expected | None:
    """The answer OCPP-J requires for ``frame``, or None when it must get none (a CALLRESULT or
    CALLERROR, which OCPP never answers, whatever it answers)."""
    if isinstance(frame, bytes):
        return Expected("-1", frozenset({version.format_violation}))
    try:
        data = json.loads(frame, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        # Not JSON: the id is echoed when it can be sniffed from the text, "-1" when not.
        return Expected("", frozenset({version.format_violation}))
    if not isinstance(data, list) or not data:
        return Expected("-1", frozenset({version.malformed}))
    message_type = data[0]
    readable_id = data[1] if len(data) > 1 and isinstance(data[1], str) else None
    if isinstance(message_type, bool) or message_type not in (2, 3, 4):
        return Expected(readable_id or "-1", frozenset({version.unknown_type}))
    if message_type != 2:
        return None
    if readable_id is None or not 1 <= len(readable_id) <= 36:
        return Expected(readable_id or "-1", frozenset({version.malformed}))
    if len(data) != 4 or not isinstance(data[2], str):
        return Expected(readable_id, frozenset({version.malformed}))
    action = data[2]
    if action not in version.known:
        return Expected(readable_id, frozenset({"NotImplemented"}), action)
    if action not in version.handled:
        return Expected(readable_id, frozenset({"NotSupported"}), action)
    payload = {} if data[3] is None else data[3]
    return Expected(readable_id, payload_codes(version, action, payload), action)


# --- strategies --------------------------------------------------------------------------------

# A few ids reused over and over (duplicates), and ids OCPP forbids (empty, too long, not text).
ID_POOL = ("dup", "dup-2", "1", "x" * 36)
message_ids = st.one_of(
    st.sampled_from(ID_POOL),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=36),
    st.text(max_size=40),
    st.sampled_from(["", "y" * 37, "é" * 36, "\u202e1", "\ud83d\ude00"]),
    st.integers(),
    st.none(),
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=8,
)


# Deep nesting is written into the frame's text after serialising (json.dumps itself would recurse too
# deep): the payload holds a marker string that :func:`_call` replaces.
_DEEP = "\x01deep:"
_DEEP_JSON = json.dumps(_DEEP)[1:-1]  # as json.dumps writes it: "\u0001deep:"


def _nested(depth: int, kind: int) -> str:
    return f"{_DEEP}{depth}:{kind}"


def _deep_text(depth: int, kind: int) -> str:
    return ("[" * depth + '"x"' + "]" * depth) if kind else ('{"a":' * depth + '"x"' + "}" * depth)


# Values a field may get: the hostile ones cost hypothesis a few choices however big they are.
hostile_values = st.one_of(
    json_values,
    st.sampled_from(
        [
            "",
            " ",
            "2026-03-02T10:00:00Z",
            "2026-03-02T10:00:00",  # no zone
            "1970-01-01T00:00:00Z",
            "2100-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-05:00",
            "not a time",
            "Charging",
            "Accepted",
            INT32_MAX,
            INT32_MAX + 1,
            INT32_MIN,
            INT32_MIN - 1,
            2**63,
            -1,
            0,
            1e308,
            -1e308,
            5e-324,
            0.1,
            "\x00",
            "\ud800",
            "\u202egnp.exe",
            "Z\u0301\u0302\u0303",
            "\U0001f50c" * 30,
            "日本語のテキスト",
            {},
            [],
            [[]],
            {"customData": {"vendorId": "V"}},
        ]
    ),
    st.integers(min_value=21, max_value=200_000).map(lambda size: "T" * size),  # huge strings
    st.tuples(st.integers(min_value=2, max_value=3000), st.integers(0, 1)).map(lambda spec: _nested(*spec)),
)


def nested_objects(value: Any, depth: int = 0) -> list[dict[str, Any]]:
    """Every JSON object in ``value`` down to a depth of 20, outermost first."""
    if depth > 20:
        return []
    if isinstance(value, dict):
        return [value, *(found for item in value.values() for found in nested_objects(item, depth + 1))]
    if isinstance(value, list):
        return [found for item in value for found in nested_objects(item, depth + 1)]
    return []


@st.composite
def mutated_payload(draw: st.DrawFn, seed: dict[str, Any]) -> dict[str, Any]:
    """``seed`` with one to three of its objects (at any depth) given a field dropped, replaced or added."""
    payload = json.loads(json.dumps(seed))
    for _ in range(draw(st.integers(1, 3))):
        targets = nested_objects(payload)
        if not targets:
            break
        target = draw(st.sampled_from(targets))
        field = draw(st.sampled_from([*target, "extra", "customData", "ÿ", ""]))
        if field in target and draw(st.booleans()):
            del target[field]
        else:
            # A copy: the sampled values are shared, and a later mutation may add a field to this one.
            target[field] = copy.deepcopy(draw(hostile_values))
    return payload


def _call(message_id: Any, action: Any, payload: Any) -> str:
    frame = json.dumps([2, message_id, action, payload])
    while _DEEP_JSON in frame:
        start = frame.index(_DEEP_JSON)
        end = frame.index('"', start + len(_DEEP_JSON))
        depth, kind = frame[start + len(_DEEP_JSON) : end].split(":")
        frame = frame[: start - 1] + _deep_text(int(depth), int(kind)) + frame[end + 1 :]
    return frame


def frames(version: Version) -> st.SearchStrategy[str | bytes]:
    """One frame a station might send, valid or hostile, for ``version``."""
    actions = sorted(version.handled)
    good_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=36) | st.sampled_from(
        ID_POOL
    )
    valid = st.tuples(good_ids, st.sampled_from(actions)).map(
        lambda parts: _call(parts[0], parts[1], version.seeds[parts[1]])
    )
    mutated = st.sampled_from(actions).flatmap(
        lambda action: st.tuples(message_ids, mutated_payload(version.seeds[action])).map(
            lambda parts: _call(parts[0], action, parts[1])
        )
    )
    # A valid frame cut short, or with one character replaced, inserted or removed.
    truncated = st.tuples(valid, st.floats(0, 1, exclude_max=True)).map(
        lambda parts: parts[0][: int(len(parts[0]) * parts[1])]
    )
    garbled = st.tuples(valid, st.floats(0, 1, exclude_max=True), st.sampled_from([0, 1, 2]), st.characters()).map(
        lambda parts: _garble(*parts)
    )
    csms_side = st.tuples(good_ids, st.sampled_from(version.csms_side), json_values).map(
        lambda parts: _call(parts[0], parts[1], CSMS_SIDE_PAYLOADS.get(parts[1], parts[2]))
    )
    unknown_actions = st.text(max_size=30) | st.sampled_from(["heartbeat", "FooBar", "", " Heartbeat"])
    unknown = st.tuples(good_ids, unknown_actions).map(lambda parts: _call(parts[0], parts[1], {}))
    answers = st.one_of(
        st.tuples(message_ids, json_values).map(lambda parts: json.dumps([3, *parts])),
        st.tuples(message_ids, st.sampled_from(["GenericError", "NotSupported", "", "Bogus"]), json_values).map(
            lambda parts: json.dumps([4, parts[0], parts[1], "description", parts[2]])
        ),
        st.lists(json_values, max_size=6).map(lambda items: json.dumps([3, *items])),
        st.lists(json_values, max_size=6).map(lambda items: json.dumps([4, *items])),
    )
    envelopes = st.one_of(
        st.text(max_size=80),
        st.binary(max_size=40),
        json_values.map(json.dumps),
        st.lists(json_values, max_size=6).map(lambda items: json.dumps([2, *items])),
        st.tuples(st.sampled_from([0, 1, 5, 6, -2, 2.5, "2", True, None, 2**40]), message_ids, json_values).map(
            lambda parts: json.dumps(list(parts))
        ),
        st.sampled_from(['[2,"n","Heartbeat",NaN]', '[2,"i","Heartbeat",Infinity]', "[", "", "null"]),
    )
    return st.one_of(valid, mutated, mutated, mutated, truncated, garbled, csms_side, unknown, answers, envelopes)


def _garble(frame: str, where: float, how: int, char: str) -> str:
    at = int(len(frame) * where)
    if how == 0:
        return frame[:at] + char + frame[at + 1 :]
    if how == 1:
        return frame[:at] + char + frame[at:]
    return frame[:at] + frame[at + 1 :]


def is_finite_json(value: Any) -> bool:
    """Whether every number in ``value`` is finite (what a CALLRESULT must hold)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(is_finite_json(item) for item in value.values())
    if isinstance(value, list):
        return all(is_finite_json(item) for item in value)
    return True
