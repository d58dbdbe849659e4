"""``POST /api/v1/stations/{id}/commands/<name>``: commands to a connected station, whatever its OCPP version.

Each route calls the version-neutral :class:`~optivgi_csms.protocol.commands.StationCommands` and returns the
station's answer. 404: the CSMS does not know the station; 409: it is not connected; 504: it did not answer in
time; 502: it answered with a CALLERROR; 400: its OCPP version lacks the command (naming the one to use).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, status
from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from optivgi_csms.api.deps import CsmsDep
from optivgi_csms.api.errors import ApiError, NotFoundError
from optivgi_csms.api.routes.stations import StationId
from optivgi_csms.domain.charging_profile import RateUnit
from optivgi_csms.domain.device_model import VariableRef, VariableResult
from optivgi_csms.protocol.commands import CommandAnswer, ResetKind, StationCommands, TriggerableMessage
from optivgi_csms.protocol.errors import CommandNotSupportedError
from optivgi_csms.services.transactions import UnknownTransactionError

router = APIRouter(prefix="/stations/{station_id}/commands", tags=["commands"])

# Upper bounds keep numbers inside what OCPP integers and the database hold: bad input is a 422, not a
# station's CALLERROR or a database overflow.
INT32 = 2**31 - 1
INT64 = 2**63 - 1
# 1.6 idTag is CiString20, 2.0.1 idToken CiString36.
ID_TAG_V16_MAX = 20

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "the station's OCPP version lacks the command or an argument"},
    404: {"description": "no station (or transaction) with this id"},
    409: {"description": "the station is not connected"},
    502: {"description": "the station answered with a CALLERROR or an invalid answer"},
    504: {"description": "the station did not answer in time (`call_timeout`)"},
}


async def station_commands(csms: CsmsDep, station_id: StationId) -> StationCommands:
    """The command interface of a station: 404 when the CSMS has never heard of it, 409 when not connected."""
    if not csms.registry.is_connected(station_id) and not await csms.services.stations.exists(station_id):
        raise NotFoundError(f"no station {station_id!r}")
    # StationNotConnectedError (409) when it is not connected; on a cluster node, resolve asks which node holds
    # it, so the reply's OCPP version is known before the command is sent there.
    return await csms.registry.resolve(station_id)


Station = Annotated[StationCommands, Depends(station_commands)]


def _instead(request: Request, commands: StationCommands, action: str, alternative: str) -> ApiError:
    """400 for a command the station's version lacks, naming the endpoint to use instead."""
    path = request.url.path.rsplit("/", 1)[0] + "/" + alternative
    return ApiError(
        status.HTTP_400_BAD_REQUEST,
        f"OCPP {commands.ocpp_version} has no {action}: use POST {path}",
        status="NotSupported",
    )


# --- answers ---------------------------------------------------------------------------------------


class CommandReply(BaseModel):
    """A station's answer: its status word and the other fields of its answer (snake_case)."""

    station_id: str
    ocpp_version: str
    status: str = Field(description="the station's status word, e.g. Accepted, Rejected, Unlocked, Scheduled")
    details: dict[str, Any] = Field(description="the rest of the answer, e.g. status_info (2.0.1), remote_start_id")

    @classmethod
    def of(cls, commands: StationCommands, answer: CommandAnswer) -> CommandReply:
        """From a station's answer."""
        return cls(
            station_id=commands.station_id,
            ocpp_version=commands.ocpp_version,
            status=answer.status,
            details=answer.details,
        )


class ConfigurationKeyOut(BaseModel):
    """One 1.6 configuration key."""

    key: str
    value: str | None
    readonly: bool


class ConfigurationReply(BaseModel):
    """The answer to GetConfiguration (1.6)."""

    station_id: str
    ocpp_version: str
    keys: list[ConfigurationKeyOut]
    unknown_keys: list[str] = Field(description="keys asked for that the station does not have")


class AttributeType(StrEnum):
    """Which attribute of a 2.0.1 variable."""

    ACTUAL = "Actual"
    TARGET = "Target"
    MIN_SET = "MinSet"
    MAX_SET = "MaxSet"


class VariableResultOut(BaseModel):
    """The station's answer for one variable (2.0.1)."""

    component: str
    variable: str
    component_instance: str | None
    variable_instance: str | None
    evse_id: int | None
    connector_id: int | None
    attribute: str
    status: str = Field(description="Accepted, Rejected, UnknownComponent, UnknownVariable, NotSupportedAttributeType")
    value: str | None = Field(description="the value read (GetVariables)")
    reason: str | None = Field(description="the station's reason code, when it gave one")

    @classmethod
    def of(cls, result: VariableResult) -> VariableResultOut:
        """From a variable's result."""
        ref = result.ref
        return cls(
            component=ref.component,
            variable=ref.variable,
            component_instance=ref.component_instance,
            variable_instance=ref.variable_instance,
            evse_id=ref.evse_id,
            connector_id=ref.connector_id,
            attribute=ref.attribute,
            status=result.status,
            value=result.value,
            reason=result.reason,
        )


class VariablesReply(BaseModel):
    """The answer to GetVariables or SetVariables (2.0.1); accepted values are kept in the device model."""

    station_id: str
    ocpp_version: str
    results: list[VariableResultOut]


class CompositeScheduleOut(BaseModel):
    """The schedule a station will apply on an EVSE."""

    evse_id: int
    start: datetime | None
    schedule: dict[str, Any] | None = Field(description="unit, periods (start_s, limit, number_phases), duration_s")


class CompositeScheduleReply(BaseModel):
    """The answer to GetCompositeSchedule."""

    station_id: str
    ocpp_version: str
    status: str
    composite: CompositeScheduleOut | None = Field(description="null when the station has no schedule to report")


# --- requests --------------------------------------------------------------------------------------

EvseId = Annotated[int, Field(ge=0, le=INT32, description="the EVSE (OCPP 1.6: the connector id); 0 is the station")]
ChargingEvseId = Annotated[int, Field(ge=1, le=INT32, description="the EVSE (OCPP 1.6: the connector id)")]
# Identifiers carry no control characters; no text carries NUL (PostgreSQL cannot store it, and accepted
# variable values are stored in the device model).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"
Name50 = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=PRINTABLE)]


class RemoteStartIn(BaseModel):
    """Start a session for an id tag (1.6 RemoteStartTransaction, 2.0.1 RequestStartTransaction)."""

    id_tag: str = Field(
        min_length=1, max_length=36, pattern=PRINTABLE, description="the id tag (1.6: at most 20 characters)"
    )
    evse_id: ChargingEvseId | None = Field(default=None, description="the EVSE; omitted: the station chooses")


class RemoteStopIn(BaseModel):
    """Stop a session (1.6 RemoteStopTransaction, 2.0.1 RequestStopTransaction)."""

    transaction_id: int = Field(ge=1, le=INT64, description="the CSMS's transaction id (as listed by the API)")


class ResetIn(BaseModel):
    """Restart the station."""

    kind: ResetKind = Field(
        default=ResetKind.SOFT, description="Soft (2.0.1 OnIdle: after sessions end) or Hard (2.0.1 Immediate)"
    )


class ChangeAvailabilityIn(BaseModel):
    """Make an EVSE (0: the whole station) operative or inoperative."""

    evse_id: EvseId
    operative: bool


class UnlockIn(BaseModel):
    """Release the cable on a connector."""

    evse_id: ChargingEvseId
    connector_id: int = Field(default=1, ge=1, le=INT32, description="1.6 stations have connector 1 only")


class TriggerMessageIn(BaseModel):
    """Ask the station to send a message now."""

    message: TriggerableMessage = Field(
        description="DiagnosticsStatusNotification is 1.6 only; LogStatusNotification and TransactionEvent 2.0.1 only"
    )
    evse_id: EvseId | None = Field(default=None, description="the EVSE the message is about; omitted: the station")


class GetConfigurationIn(BaseModel):
    """Read 1.6 configuration keys."""

    keys: list[Name50] = Field(default_factory=list, max_length=100, description="omitted or empty: every key")


class ChangeConfigurationIn(BaseModel):
    """Set one 1.6 configuration key."""

    key: Name50
    value: str = Field(max_length=500, pattern=NO_NUL)


class VariableIn(BaseModel):
    """One attribute of a 2.0.1 device-model variable."""

    component: Name50 = Field(examples=["OCPPCommCtrlr"])
    variable: Name50 = Field(examples=["HeartbeatInterval"])
    component_instance: Name50 | None = None
    variable_instance: Name50 | None = None
    evse_id: int | None = Field(default=None, ge=0, le=INT32, description="the component's EVSE, if it has one")
    connector_id: int | None = Field(default=None, ge=0, le=INT32, description="its connector (needs evse_id)")
    attribute: AttributeType = AttributeType.ACTUAL

    @model_validator(mode="after")
    def _connector_needs_evse(self) -> VariableIn:
        if self.connector_id is not None and self.evse_id is None:
            raise ValueError("connector_id needs evse_id")
        return self

    def ref(self) -> VariableRef:
        """The neutral reference."""
        return VariableRef(
            component=self.component,
            variable=self.variable,
            component_instance=self.component_instance,
            variable_instance=self.variable_instance,
            evse_id=self.evse_id,
            connector_id=self.connector_id,
            attribute=self.attribute.value,
        )


class GetVariablesIn(BaseModel):
    """Read 2.0.1 device-model variables."""

    variables: list[VariableIn] = Field(min_length=1, max_length=100)


class VariableSetIn(VariableIn):
    """A variable attribute and the value to give it."""

    value: str = Field(max_length=1000, pattern=NO_NUL)


class SetVariablesIn(BaseModel):
    """Set 2.0.1 device-model variables."""

    variables: list[VariableSetIn] = Field(min_length=1, max_length=100)

    @field_validator("variables")
    @classmethod
    def _each_once(cls, variables: list[VariableSetIn]) -> list[VariableSetIn]:
        refs = [variable.ref() for variable in variables]
        if len(set(refs)) != len(refs):
            raise ValueError("each variable attribute may be set once per request")
        return variables


class CompositeScheduleIn(BaseModel):
    """Ask for the schedule a station will apply."""

    evse_id: EvseId
    duration_s: int = Field(ge=1, le=31 * 86400, description="how far ahead, seconds")
    unit: RateUnit | None = Field(default=None, description="A or W; omitted: the station's choice")


# --- routes ----------------------------------------------------------------------------------------


@router.post("/remote-start", response_model=CommandReply, responses=_ERRORS)
async def remote_start(station: Station, body: RemoteStartIn) -> CommandReply:
    """Ask the station to start a session for ``id_tag`` (on ``evse_id``, or where it chooses)."""
    if station.ocpp_version == "1.6" and len(body.id_tag) > ID_TAG_V16_MAX:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"id_tag: at most {ID_TAG_V16_MAX} characters for an OCPP 1.6 station",
        )
    return CommandReply.of(station, await station.remote_start(body.id_tag, evse_id=body.evse_id))


@router.post("/remote-stop", response_model=CommandReply, responses=_ERRORS)
async def remote_stop(csms: CsmsDep, station: Station, body: RemoteStopIn) -> CommandReply:
    """Ask the station to stop one of its sessions, named by the CSMS's transaction id."""
    try:
        await csms.services.transactions.ocpp_id(station.station_id, body.transaction_id)
    except UnknownTransactionError as error:
        raise NotFoundError(str(error)) from None
    return CommandReply.of(station, await station.remote_stop(body.transaction_id))


@router.post("/reset", response_model=CommandReply, responses=_ERRORS)
async def reset(station: Station, body: Annotated[ResetIn | None, Body()] = None) -> CommandReply:
    """Restart the station (Soft by default)."""
    kind = body.kind if body is not None else ResetKind.SOFT
    return CommandReply.of(station, await station.reset(kind))


@router.post("/change-availability", response_model=CommandReply, responses=_ERRORS)
async def change_availability(station: Station, body: ChangeAvailabilityIn) -> CommandReply:
    """Make an EVSE (0: the whole station) operative or inoperative; ``Scheduled`` while a session runs."""
    return CommandReply.of(station, await station.change_availability(body.evse_id, body.operative))


@router.post("/unlock", response_model=CommandReply, responses=_ERRORS)
async def unlock(station: Station, body: UnlockIn) -> CommandReply:
    """Release the cable on a connector."""
    return CommandReply.of(station, await station.unlock_connector(body.evse_id, body.connector_id))


@router.post("/trigger-message", response_model=CommandReply, responses=_ERRORS)
async def trigger_message(station: Station, body: TriggerMessageIn) -> CommandReply:
    """Ask the station to send a message now (e.g. StatusNotification, MeterValues, Heartbeat)."""
    return CommandReply.of(station, await station.trigger_message(body.message, body.evse_id))


@router.post("/clear-cache", response_model=CommandReply, responses=_ERRORS)
async def clear_cache(station: Station) -> CommandReply:
    """Empty the station's authorization cache."""
    return CommandReply.of(station, await station.clear_cache())


@router.post("/get-configuration", response_model=ConfigurationReply, responses=_ERRORS)
async def get_configuration(
    request: Request, station: Station, body: Annotated[GetConfigurationIn | None, Body()] = None
) -> ConfigurationReply:
    """Read 1.6 configuration keys (every key when none is named). 2.0.1 stations: use get-variables."""
    try:
        answer = await station.get_configuration(body.keys if body is not None else ())
    except CommandNotSupportedError:
        raise _instead(request, station, "GetConfiguration", "get-variables") from None
    return ConfigurationReply(
        station_id=station.station_id,
        ocpp_version=station.ocpp_version,
        keys=[ConfigurationKeyOut(key=key.key, value=key.value, readonly=key.readonly) for key in answer.keys],
        unknown_keys=list(answer.unknown_keys),
    )


@router.post("/change-configuration", response_model=CommandReply, responses=_ERRORS)
async def change_configuration(request: Request, station: Station, body: ChangeConfigurationIn) -> CommandReply:
    """Set one 1.6 configuration key (``RebootRequired``, ``NotSupported`` or ``Rejected`` are answers too).
    2.0.1 stations: use set-variables."""
    try:
        answer = await station.change_configuration(body.key, body.value)
    except CommandNotSupportedError:
        raise _instead(request, station, "ChangeConfiguration", "set-variables") from None
    return CommandReply.of(station, answer)


@router.post("/get-variables", response_model=VariablesReply, responses=_ERRORS)
async def get_variables(request: Request, station: Station, body: GetVariablesIn) -> VariablesReply:
    """Read 2.0.1 device-model variables (the values read are stored). 1.6 stations: use get-configuration."""
    try:
        results = await station.get_variables([variable.ref() for variable in body.variables])
    except CommandNotSupportedError:
        raise _instead(request, station, "GetVariables", "get-configuration") from None
    return VariablesReply(
        station_id=station.station_id,
        ocpp_version=station.ocpp_version,
        results=[VariableResultOut.of(result) for result in results],
    )


@router.post("/set-variables", response_model=VariablesReply, responses=_ERRORS)
async def set_variables(request: Request, station: Station, body: SetVariablesIn) -> VariablesReply:
    """Set 2.0.1 device-model variables (the values accepted are stored). 1.6 stations: use change-configuration."""
    try:
        results = await station.set_variables({variable.ref(): variable.value for variable in body.variables})
    except CommandNotSupportedError:
        raise _instead(request, station, "SetVariables", "change-configuration") from None
    return VariablesReply(
        station_id=station.station_id,
        ocpp_version=station.ocpp_version,
        results=[VariableResultOut.of(result) for result in results],
    )


@router.post("/get-composite-schedule", response_model=CompositeScheduleReply, responses=_ERRORS)
async def get_composite_schedule(station: Station, body: CompositeScheduleIn) -> CompositeScheduleReply:
    """The schedule the station will apply on an EVSE for the next ``duration_s`` seconds, all its profiles
    combined."""
    answer = await station.get_composite_schedule(body.evse_id, body.duration_s, body.unit)
    composite = None
    if answer.composite is not None:
        schedule = answer.composite.schedule
        composite = CompositeScheduleOut(
            evse_id=answer.composite.evse_id,
            start=answer.composite.start,
            schedule=schedule.to_dict() if schedule is not None else None,
        )
    return CompositeScheduleReply(
        station_id=station.station_id, ocpp_version=station.ocpp_version, status=answer.status, composite=composite
    )
