"""Commands, answers, command errors, events and plans as JSON, for the trip between nodes through Redis.

Only the types named here cross: the domain dataclasses and enums that :class:`StationCommands` methods
take and return, the events smart charging consumes, a site's plan, datetimes and durations, and the
:class:`CommandError` family.
Never pickle: a message on a Redis channel is input from the network, and decoding it must not be able to
build anything but these values. An unknown type name, a field a dataclass does not declare or a value of
another type is a :class:`CodecError`.

The wire form: JSON scalars as themselves, lists as arrays, and everything else as an object tagged by
``"$"``: ``tuple``, ``map`` (pairs, so keys may be dataclasses, as :meth:`StationCommands.set_variables`'s
are), ``datetime`` (ISO 8601), ``timedelta``, ``enum``, ``obj`` (a dataclass by its allow-listed name) and ``error``.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    CompositeSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    RecurrencyKind,
    SchedulePeriod,
)
from optivgi_csms.domain.device_model import VariableRef, VariableResult
from optivgi_csms.protocol.commands import (
    CommandAnswer,
    CompositeScheduleAnswer,
    ConfigurationAnswer,
    ConfigurationKey,
    ReportBase,
    ReservationAnswer,
    ResetKind,
    TriggerableMessage,
)
from optivgi_csms.protocol.errors import (
    CallErrorResponse,
    CommandError,
    CommandNotSupportedError,
    CommandTimeoutError,
    InvalidAnswerError,
    InvalidCommandError,
    StationNotConnectedError,
)
from optivgi_csms.services import events
from optivgi_csms.smart_charging.evs import UncontrolledLoad
from optivgi_csms.smart_charging.plan import EvPlan, SitePlan


class CodecError(ValueError):
    """A value that may not cross between nodes, or a message that does not decode to one."""


def _by_name(*types: type) -> dict[str, type]:
    return {kind.__name__: kind for kind in types}


#: Enums of the commands' arguments and answers.
ENUMS: dict[str, type[Enum]] = _by_name(
    ResetKind, TriggerableMessage, ReportBase, ProfilePurpose, ProfileKind, RecurrencyKind, RateUnit
)
#: Dataclasses of the commands' arguments and answers, and the events forwarded to a site's leader.
DATACLASSES: dict[str, type] = _by_name(
    CommandAnswer,
    ConfigurationKey,
    ConfigurationAnswer,
    CompositeScheduleAnswer,
    ReservationAnswer,
    CompositeSchedule,
    ChargingSchedule,
    SchedulePeriod,
    ChargingProfile,
    VariableRef,
    VariableResult,
    events.StationConnected,
    events.StationBooted,
    events.StationDisconnected,
    events.TransactionStarted,
    events.TransactionUpdated,
    events.TransactionEnded,
    events.MeterReading,
    events.ConnectorStatusChanged,
    events.ReservationChanged,
    events.ChargingNeedsReceived,
    events.SiteChanged,
    events.SessionNeedsChanged,
    SitePlan,
    EvPlan,
    UncontrolledLoad,
)
#: Failures of a command, re-raised on the node that asked with the same class and message.
ERRORS: dict[str, type[CommandError]] = _by_name(
    CommandError,
    StationNotConnectedError,
    CommandTimeoutError,
    CommandNotSupportedError,
    InvalidCommandError,
    CallErrorResponse,
    InvalidAnswerError,
)
_JSON_SCALARS = (str, int, float, bool, type(None))


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data; raises :class:`CodecError` for a type outside the allow-list."""
    if isinstance(value, _JSON_SCALARS) and not isinstance(value, Enum):
        return value
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, tuple):
        return {"$": "tuple", "v": [encode(item) for item in value]}
    if isinstance(value, dict):
        return {"$": "map", "v": [[encode(key), encode(item)] for key, item in value.items()]}
    if isinstance(value, datetime):
        return {"$": "datetime", "v": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$": "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Enum):
        name = type(value).__name__
        if ENUMS.get(name) is not type(value):
            raise CodecError(f"enum {name} may not cross between nodes")
        return {"$": "enum", "t": name, "v": value.value}
    if isinstance(value, CommandError):
        return _encode_error(value)
    name = type(value).__name__
    if DATACLASSES.get(name) is type(value):
        fields = {field.name: encode(getattr(value, field.name)) for field in dataclasses.fields(value) if field.init}
        return {"$": "obj", "t": name, "v": fields}
    raise CodecError(f"{name} may not cross between nodes")


def _encode_error(error: CommandError) -> dict[str, Any]:
    name = type(error).__name__
    if ERRORS.get(name) is not type(error):
        # A subclass we do not know by name (none today): its nearest allow-listed ancestor keeps the API's answer.
        name = next(kind.__name__ for kind in type(error).__mro__ if ERRORS.get(kind.__name__) is kind)
    wire: dict[str, Any] = {"$": "error", "t": name, "message": str(error)}
    if isinstance(error, CallErrorResponse):
        wire |= {"code": error.code, "description": error.description, "details": encode(error.details)}
    return wire


def decode(data: Any) -> Any:
    """The value :func:`encode` made ``data`` from; raises :class:`CodecError` for anything else."""
    if isinstance(data, _JSON_SCALARS):
        return data
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        raise CodecError(f"unexpected {type(data).__name__} in a message")
    try:
        return _decode_tagged(data)
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"bad {data.get('$')!r} value: {error}") from None


def _decode_tagged(data: dict[str, Any]) -> Any:
    tag = data.get("$")
    if tag == "tuple":
        return tuple(decode(item) for item in _list(data["v"]))
    if tag == "map":
        return {_hashable(decode(key)): decode(item) for key, item in _list(data["v"])}
    if tag == "datetime":
        return datetime.fromisoformat(_text(data["v"]))
    if tag == "timedelta":
        days, seconds, microseconds = (int(part) for part in _list(data["v"]))
        return timedelta(days=days, seconds=seconds, microseconds=microseconds)
    if tag == "enum":
        return _known(ENUMS, data["t"], "enum")(data["v"])
    if tag == "obj":
        kind = _known(DATACLASSES, data["t"], "type")
        fields = data["v"]
        if not isinstance(fields, dict):
            raise CodecError(f"{kind.__name__}: fields must be an object")
        declared = {field.name for field in dataclasses.fields(kind) if field.init}
        unknown = set(fields) - declared
        if unknown:
            raise CodecError(f"{kind.__name__} has no field {sorted(unknown)[0]!r}")
        return kind(**{name: decode(value) for name, value in fields.items()})
    if tag == "error":
        return decode_error(data)
    raise CodecError(f"unknown tag {tag!r}")


def decode_error(data: dict[str, Any]) -> CommandError:
    """The :class:`CommandError` of an encoded one, with its message (and a CALLERROR's code)."""
    kind = _known(ERRORS, data["t"], "error")
    message = _text(data["message"])
    if kind is CallErrorResponse:
        error = CallErrorResponse(_text(data["code"]), _text(data["description"]), decode(data.get("details")))
        error.args = (message,)
        return error
    return kind(message)


def _known(table: dict[str, Any], name: Any, what: str) -> Any:
    kind = table.get(name) if isinstance(name, str) else None
    if kind is None:
        raise CodecError(f"{what} {name!r} may not cross between nodes")
    return kind


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise CodecError("expected an array")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise CodecError("expected a string")
    return value


def _hashable(key: Any) -> Any:
    if isinstance(key, list | dict):
        raise CodecError("a map key must be a scalar, a tuple or a dataclass")
    return key


def dumps(value: Any) -> str:
    """``value`` as one JSON text."""
    return json.dumps(encode(value), separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """The value of a JSON text made by :func:`dumps`."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise CodecError(f"not JSON: {error}") from None
    return decode(data)
