"""OCPP-J framing and validation, pure and version-aware: a raw frame in, a message or an OCPP error out.

The ``ocpp`` library drops frames it cannot parse without answering, maps some schema failures to
codes that do not exist in OCPP 1.6 (``FormatViolation``), and answers unknown actions with the
code the specification reserves for known-but-unsupported ones. This module gives every bad frame
the specification's answer, with the message id whenever it can be read, and uses the library's
JSON schemas and message classes to do it. On top of the schemas it enforces what they leave out:
32-bit integers, readable date-times, and text a database can store.
"""

from __future__ import annotations

import copy
import decimal
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastjsonschema
from jsonschema import Draft4Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from ocpp.exceptions import (
    FormationViolationError,
    FormatViolationError,
    OccurenceConstraintViolationError,
    OccurrenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType, get_validator
from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201

from optivgi_csms.domain.time import parse_timestamp
from optivgi_csms.protocol.errors import MessageTypeNotSupportedError, RpcFrameworkError

# The id used in a CALLERROR when the offending frame's own id cannot be read (OCPP 2.0.1 part 4).
UNREADABLE_ID = "-1"
MAX_ID_LENGTH = 36
_CAUSE_LIMIT = 200
_ID_SNIFFER = re.compile(r'^\s*\[\s*2\s*,\s*"([^"\\]{1,36})"')
# An OCPP integer is 32-bit: 1.6 JSON schemas say only "integer", but the OCPP-S WSDL they come from
# types these fields xs:int, and 2.0.1 part 2 says "32 bit (31 bit resolution, 1 sign bit)". Larger
# values also cannot be stored (PostgreSQL INTEGER columns), so they are refused before a handler sees them.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Dialect:
    """What differs between OCPP versions at the RPC level: names, error codes, schema quirks."""

    version: str  # the ``ocpp`` library's name for the version
    subprotocol: str
    actions: frozenset[str]
    format_violation: type[OCPPError]
    malformed_frame: type[OCPPError]
    unknown_message_type: type[OCPPError]
    # Too few or too many items in an array: 1.6 keeps the typo "Occurence" (errata 5.1), 2.0.1 spells it right.
    occurrence_violation: type[OCPPError]
    # Messages whose schemas constrain decimals (multipleOf 0.1): validated with Decimal, not float.
    decimal_messages: frozenset[tuple[int, str]] = frozenset()
    # Lower bounds the specification's field tables give but its JSON schemas leave out:
    # (message type, action, top-level field, minimum), added to the schema as "minimum".
    minimums: frozenset[tuple[int, str, str, int]] = frozenset()


# OCPP-J 1.6 part 4.2.3 (table 7) names no code for a broken RPC frame, so:
# - text that is not JSON, or a binary frame: FormationViolation ("syntactically incorrect");
# - JSON that is not [2, id, action, payload], or a CALL whose id cannot be read: ProtocolError, the code
#   1.6 implementations use for what 2.0.1 later named RpcFrameworkError;
# - a message type other than 2, 3 or 4: part 4.1.3 says its payload SHALL be ignored. It is, and the
#   sender hears ProtocolError, as 2.0.1 answers such frames with MessageTypeNotSupported.
V16 = Dialect(
    version="1.6",
    subprotocol="ocpp1.6",
    actions=frozenset(action.value for action in Action16),
    format_violation=FormationViolationError,  # 1.6 spells it FormationViolation (errata 5.2)
    malformed_frame=ProtocolError,
    unknown_message_type=ProtocolError,
    occurrence_violation=OccurenceConstraintViolationError,
    decimal_messages=frozenset(
        {
            (MessageType.Call, "SetChargingProfile"),
            (MessageType.Call, "RemoteStartTransaction"),
            (MessageType.CallResult, "GetCompositeSchedule"),
        }
    ),
    # 1.6 part 6 field tables: "connectorId >= 0" (0 is the whole station), and "> 0" for a transaction.
    minimums=frozenset(
        {
            (MessageType.Call, "StatusNotification", "connectorId", 0),
            (MessageType.Call, "MeterValues", "connectorId", 0),
            (MessageType.Call, "StartTransaction", "connectorId", 1),
        }
    ),
)

# OCPP-J 2.0.1 part 4.3 lists twelve codes. It renames FormationViolation to FormatViolation, spells
# OccurrenceConstraintViolation correctly (the 1.6 errata promised both fixes for the next version; the
# ``ocpp`` library keeps the 1.6 typo for 2.0.1, which ocpp-go and other 2.0.1 stacks do not), and adds:
# - RpcFrameworkError: JSON that is not [2, id, action, payload], or a CALL whose id cannot be read;
# - MessageTypeNotSupported: a message type other than 2, 3 or 4 (2.1's 5 and 6 included).
V201 = Dialect(
    version="2.0.1",
    subprotocol="ocpp2.0.1",
    actions=frozenset(action.value for action in Action201),
    format_violation=FormatViolationError,
    malformed_frame=RpcFrameworkError,
    unknown_message_type=MessageTypeNotSupportedError,
    occurrence_violation=OccurrenceConstraintViolationError,
    # 2.0.1 part 2 field tables: MeterValues "evseId ... '0' (zero) is used to designate the main power
    # meter" (so >= 0), and NotifyEVChargingNeeds "EvseId may not be 0" (an EV is plugged into an EVSE).
    minimums=frozenset(
        {
            (MessageType.Call, "MeterValues", "evseId", 0),
            (MessageType.Call, "NotifyEVChargingNeeds", "evseId", 1),
        }
    ),
)


class FrameError(Exception):
    """A frame that is not a usable OCPP message.

    ``reply`` says whether a CALLERROR goes back: only for what was (or may have been) a CALL,
    because OCPP never answers a CALLRESULT or CALLERROR.
    """

    def __init__(self, error: OCPPError, unique_id: str, *, reply: bool = True) -> None:
        super().__init__(error.description)
        self.error = error
        self.unique_id = unique_id
        self.reply = reply


def _cause(text: str) -> dict[str, str]:
    return {"cause": text if len(text) <= _CAUSE_LIMIT else text[: _CAUSE_LIMIT - 1] + "…"}


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN, Infinity and -Infinity; JSON (RFC 8259) does not.
    raise ValueError(f"{name} is not JSON")


def parse_frame(raw: str | bytes, dialect: Dialect) -> Call | CallResult | CallError:
    """Turn a raw websocket message into a Call, CallResult or CallError, or raise :class:`FrameError`."""
    if isinstance(raw, bytes):
        raise FrameError(
            dialect.format_violation(details=_cause("OCPP-J messages must be sent as text frames, not binary")),
            UNREADABLE_ID,
        )
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        sniffed = _ID_SNIFFER.match(raw)
        problem = "message is nested too deeply" if isinstance(error, RecursionError) else "message is not valid JSON"
        raise FrameError(
            dialect.format_violation(details=_cause(problem)), sniffed.group(1) if sniffed else UNREADABLE_ID
        ) from None
    if not isinstance(data, list) or not data:
        raise FrameError(
            dialect.malformed_frame(details=_cause("an OCPP-J message must be a non-empty JSON array")), UNREADABLE_ID
        )

    message_type = data[0]
    # A string id is echoed even when it breaks the 1-36 character rule: the station can still match
    # the CALLERROR to its request (1.6 part 4.2.3 names "unique identifier too long" as a CALLERROR case).
    readable_id = data[1] if len(data) > 1 and isinstance(data[1], str) else None
    unique_id = readable_id if readable_id is not None and 0 < len(readable_id) <= MAX_ID_LENGTH else None
    if isinstance(message_type, bool) or message_type not in (
        MessageType.Call,
        MessageType.CallResult,
        MessageType.CallError,
    ):
        raise FrameError(
            dialect.unknown_message_type(details=_cause(f"message type {message_type!r} is not 2, 3 or 4")),
            readable_id or UNREADABLE_ID,
        )
    is_call = message_type == MessageType.Call
    if unique_id is None:
        raise FrameError(
            dialect.malformed_frame(
                details=_cause(f"the message id must be a string of 1 to {MAX_ID_LENGTH} characters")
            ),
            readable_id or UNREADABLE_ID,
            reply=is_call,
        )
    if is_call:
        if len(data) != 4 or not isinstance(data[2], str):
            raise FrameError(
                dialect.malformed_frame(details=_cause("a CALL is [2, messageId, action, payload]")), unique_id
            )
        return Call(unique_id, data[2], _payload(data[3]))
    if message_type == MessageType.CallResult:
        if len(data) != 3:
            raise FrameError(dialect.malformed_frame(), unique_id, reply=False)
        return CallResult(unique_id, _payload(data[2]))
    if len(data) != 5 or not isinstance(data[2], str):
        raise FrameError(dialect.malformed_frame(), unique_id, reply=False)
    return CallError(unique_id, data[2], data[3], data[4])


def _payload(value: Any) -> Any:
    # OCPP-J 1.6 part 4.2.1/4.2.2: "If there is no payload JSON allows for two different notations:
    # null or an empty object {}". Both mean an empty payload.
    return {} if value is None else value


def _is_ocpp_integer(checker: Any, instance: Any) -> bool:
    return Draft4Validator.TYPE_CHECKER.is_type(instance, "integer") and INT32_MIN <= instance <= INT32_MAX


# The schemas' own validator with two OCPP rules it does not know: integers are 32-bit, and a
# "date-time" must be a time (the library validates without a format checker, so any string passed).
_OcppValidator = validators.extend(
    Draft4Validator, type_checker=Draft4Validator.TYPE_CHECKER.redefine("integer", _is_ocpp_integer)
)
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=(ValueError, OverflowError))
def _is_date_time(instance: Any) -> bool:
    # The same parser the adapters use, so a timestamp that passes here is one they can read
    # (OverflowError: a time that cannot be expressed in UTC, e.g. 9999-12-31T23:59:59-05:00).
    if isinstance(instance, str):
        parse_timestamp(instance)
    return True


@functools.lru_cache(maxsize=512)
def _validator(dialect: Dialect, message_type: int, action: str) -> Validator | None:
    parse_float = decimal.Decimal if (message_type, action) in dialect.decimal_messages else float
    try:
        schema = get_validator(message_type, action, dialect.version, parse_float=parse_float).schema
    except (OSError, ValueError):
        return None
    bounds = [
        (field, minimum) for kind, name, field, minimum in dialect.minimums if (kind, name) == (message_type, action)
    ]
    if bounds:
        schema = copy.deepcopy(schema)  # the library caches and shares its schemas
        for field, minimum in bounds:
            schema["properties"][field]["minimum"] = minimum
    return _OcppValidator(schema, format_checker=_FORMATS)


def _is_readable_time(instance: Any) -> bool:
    try:
        return _is_date_time(instance)
    except (ValueError, OverflowError):
        return False


def _with_int32_bounds(schema: Any) -> Any:
    """``schema`` with every integer held to 32 bits by minimum and maximum (what ``_OcppValidator``'s
    type checker does), keeping any tighter bound the schema has."""
    if isinstance(schema, dict):
        if schema.get("type") == "integer":
            schema["minimum"] = max(schema.get("minimum", INT32_MIN), INT32_MIN)
            schema["maximum"] = min(schema.get("maximum", INT32_MAX), INT32_MAX)
        for value in schema.values():
            _with_int32_bounds(value)
    elif isinstance(schema, list):
        for value in schema:
            _with_int32_bounds(value)
    return schema


@functools.lru_cache(maxsize=512)
def _fast_check(dialect: Dialect, message_type: int, action: str) -> Callable[[Any], Any] | None:
    """The schema compiled to Python (fastjsonschema): it says whether a payload is valid in a tenth of the
    time ``_OcppValidator`` takes, which then only runs to name the problem of an invalid one. None where the
    schema compares decimals (``decimal_messages``) or does not compile: the validator alone decides there.
    Schema defaults are not filled in: the payload must reach the handler as the station sent it."""
    validator = _validator(dialect, message_type, action)
    if validator is None or (message_type, action) in dialect.decimal_messages:
        return None
    schema = _with_int32_bounds(copy.deepcopy(validator.schema))
    # The 2.0.1 schemas say draft-06, but they are validated as draft 4, as the library does (where 0.0
    # is no integer): the compiled check must judge by the same draft.
    schema["$schema"] = "http://json-schema.org/draft-04/schema#"
    try:
        return fastjsonschema.compile(schema, formats={"date-time": _is_readable_time}, use_default=False)
    except fastjsonschema.JsonSchemaDefinitionException:
        return None


def _passes_fast_check(message_type: int, action: str, payload: Any, dialect: Dialect) -> bool:
    check = _fast_check(dialect, message_type, action)
    if check is None:
        return False
    try:
        check(payload)
    except (fastjsonschema.JsonSchemaValueException, RecursionError):
        return False
    return True


def has_schema(dialect: Dialect, action: str) -> bool:
    """Whether the version defines a request schema for ``action``."""
    return _validator(dialect, MessageType.Call, action) is not None


def validate(message_type: int, action: str, payload: Any, dialect: Dialect) -> None:
    """Check a payload against its schema; raise the OCPP error that names the first problem."""
    validator = _validator(dialect, message_type, action)
    if validator is None:
        raise dialect.format_violation(details=_cause(f"no schema for {action} in OCPP {dialect.version}"))
    if _passes_fast_check(message_type, action, payload, dialect):
        error = None
    else:
        error = _first_error(validator, message_type, action, payload, dialect)
    if error is not None:
        raise schema_error(error, dialect)
    bad_text = _unstorable_text(payload, ())
    if bad_text is not None:
        raise PropertyConstraintViolationError(details=_cause(f"{bad_text}: text with U+0000 or a lone surrogate"))


def _first_error(
    validator: Validator, message_type: int, action: str, payload: Any, dialect: Dialect
) -> ValidationError | None:
    try:
        if (message_type, action) in dialect.decimal_messages:
            # Floats like 21.4 fail "multipleOf 0.1" in binary; compare decimals, as the library does.
            payload = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
        return best_match(validator.iter_errors(payload))
    except RecursionError:
        # JSON nested almost as deep as the parser allows: describing the error would recurse too far.
        raise dialect.format_violation(details=_cause("payload is nested too deeply")) from None


def _unstorable_text(value: Any, path: tuple[str, ...]) -> str | None:
    """The path of the first string no database can store as text, or None.

    JSON may escape U+0000 and lone UTF-16 surrogates (\\u0000, \\ud800), but no OCPP field means
    them: PostgreSQL refuses NUL in text, and a lone surrogate has no UTF-8 form on either backend.
    Refused here, the station gets one clear answer instead of an InternalError from the database.
    """
    if isinstance(value, str):
        if "\x00" in value or (not value.isascii() and not _is_utf8(value)):
            return "/".join(path) or "payload"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _unstorable_text(item, (*path, str(key)))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable_text(item, (*path, str(index)))
            if found is not None:
                return found
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def schema_error(error: ValidationError, dialect: Dialect) -> OCPPError:
    """The OCPP error code for a JSON-schema failure, with the failing field in the details.

    After the descriptions in OCPP-J 1.6 table 7: a missing field leaves the payload "incomplete"
    (ProtocolError); a wrong JSON type, a string longer than its CiStringNType or a date-time that is
    not one breaks a "data type constraint" (TypeConstraintViolation); a value outside an enum or range
    is an "invalid value" (PropertyConstraintViolation); too few or too many array items break an
    "occurrence constraint" (spelled per version); anything else, such as a property the message does
    not define, is "syntactically incorrect or not conform the PDU structure" (FormationViolation).

    2.0.1 (part 4.3) rewords two of these: ProtocolError becomes "not conform the PDU structure" and
    FormatViolation "syntactically incorrect". Both still fit the same failures, so 2.0.1 answers them
    as 1.6 does, which is also what the ``ocpp`` library's own 2.0.1 stations answer: a missing
    mandatory field breaks the PDU's structure (ProtocolError), and a property the schema forbids
    (``additionalProperties: false``; only ``customData`` is open) is a syntax error against the
    message's schema (FormatViolation).
    """
    location = "/".join(str(part) for part in error.absolute_path) or "payload"
    details = _cause(f"{location}: {error.message}")
    kind = error.validator
    if (
        kind == "type"
        and error.validator_value == "integer"
        and Draft4Validator.TYPE_CHECKER.is_type(error.instance, "integer")
    ):
        details = _cause(f"{location}: {error.instance} is outside the 32-bit range of an OCPP integer")
    if kind in ("type", "maxLength", "minLength", "format"):
        return TypeConstraintViolationError(details=details)
    if kind == "required":
        return ProtocolError(details=details)
    if kind in ("enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "pattern", "const"):
        return PropertyConstraintViolationError(details=details)
    if kind in ("minItems", "maxItems", "uniqueItems"):
        return dialect.occurrence_violation(details=details)
    return dialect.format_violation(details=details)


def field_error(field: str, problem: str) -> OCPPError:
    """A TypeConstraintViolation for a field the schema lets through but we cannot read (e.g. a bad date)."""
    return TypeConstraintViolationError(details=_cause(f"{field}: {problem}"))
