"""OCPP 2.0.1 adapter: 2.0.1 messages become domain values for the services; commands become 2.0.1 calls.

The same shape as :mod:`optivgi_csms.protocol.v16`, and like it a translator only: acceptance,
authorization, idempotency and storage belong to the services.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.routing import on
from ocpp.v201 import ChargePoint as LibraryChargePoint
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from optivgi_csms.domain.authorization import Authorization
from optivgi_csms.domain.charging_needs import ChargingLimitReport, ChargingNeeds
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
from optivgi_csms.domain.device_model import ReportedVariable, VariableRef, VariableResult
from optivgi_csms.domain.meter import (
    DEFAULT_CONTEXT,
    DEFAULT_LOCATION,
    DEFAULT_MEASURAND,
    DEFAULT_UNIT,
    SampledValue,
)
from optivgi_csms.domain.station import BootInfo, BootStatus, ConnectorStatus, EvseRef
from optivgi_csms.domain.time import format_timestamp, parse_timestamp
from optivgi_csms.domain.transaction import TransactionEvent
from optivgi_csms.protocol import rpc
from optivgi_csms.protocol.casing import to_camel
from optivgi_csms.protocol.commands import (
    CommandAnswer,
    CompositeScheduleAnswer,
    ReportBase,
    ResetKind,
    StationCommands,
    TriggerableMessage,
    new_request_id,
)
from optivgi_csms.protocol.errors import CommandNotSupportedError, InvalidCommandError
from optivgi_csms.protocol.session import OcppSession

PURPOSE_TO_V201 = {
    ProfilePurpose.STATION_MAX: "ChargingStationMaxProfile",
    ProfilePurpose.TX_DEFAULT: "TxDefaultProfile",
    ProfilePurpose.TX: "TxProfile",
    ProfilePurpose.EXTERNAL_CONSTRAINTS: "ChargingStationExternalConstraints",
}
PURPOSE_FROM_V201 = {value: key for key, value in PURPOSE_TO_V201.items()}
TRIGGERS_V201 = frozenset(
    {
        TriggerableMessage.BOOT_NOTIFICATION,
        TriggerableMessage.HEARTBEAT,
        TriggerableMessage.METER_VALUES,
        TriggerableMessage.STATUS_NOTIFICATION,
        TriggerableMessage.FIRMWARE_STATUS_NOTIFICATION,
        TriggerableMessage.LOG_STATUS_NOTIFICATION,
        TriggerableMessage.TRANSACTION_EVENT,
    }
)
# A remote start without a token type asks for a token the CSMS issued.
DEFAULT_TOKEN_TYPE = "Central"
NO_AUTHORIZATION = "NoAuthorization"


def _time(field: str, value: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError:
        raise rpc.field_error(field, f"{value!r} is not an RFC 3339 date-time") from None


def id_token_info(authorization: Authorization) -> dict[str, Any]:
    """The 2.0.1 ``idTokenInfo`` of a verdict (snake_case keys)."""
    group = (
        {"id_token": authorization.parent_id_tag, "type": DEFAULT_TOKEN_TYPE} if authorization.parent_id_tag else None
    )
    return {
        "status": authorization.status.value,
        "cache_expiry_date_time": format_timestamp(authorization.expiry_date) if authorization.expiry_date else None,
        "group_id_token": group,
    }


def token_of(token: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The (id, type) of a 2.0.1 ``idToken``; a NoAuthorization token names nobody."""
    if not token or token.get("type") == NO_AUTHORIZATION:
        return None, token.get("type") if token else None
    return token["id_token"], token.get("type")


def sampled_values(meter_values: Sequence[dict[str, Any]], field: str) -> list[SampledValue]:
    """Flatten 2.0.1 ``meterValue`` entries into samples; a unit's multiplier is applied to the value."""
    samples = []
    for index, entry in enumerate(meter_values):
        timestamp = _time(f"{field}/{index}/timestamp", entry["timestamp"])
        for value in entry["sampled_value"]:
            measurand = value.get("measurand", DEFAULT_MEASURAND)
            unit_of_measure = value.get("unit_of_measure") or {}
            samples.append(
                SampledValue(
                    timestamp=timestamp,
                    value=_scaled(value["value"], unit_of_measure.get("multiplier", 0), f"{field}/{index}"),
                    measurand=measurand,
                    phase=value.get("phase"),
                    unit=unit_of_measure.get("unit", DEFAULT_UNIT.get(measurand)),
                    context=value.get("context", DEFAULT_CONTEXT),
                    location=value.get("location", DEFAULT_LOCATION),
                    signed_data=as_sent(value.get("signed_meter_value")),
                )
            )
    return samples


# Exponents never trap here: scaling by any 32-bit power of ten is one step.
_SCALING = decimal.Context(prec=34, Emax=2**40, Emin=-(2**40))


def _scaled(number: float, multiplier: int, field: str) -> str:
    """A sampled value times 10^multiplier, as text.

    Scaled in decimal: in binary ``3 * 10**-1`` is 0.30000000000000004, and ``10 ** multiplier``
    with a 32-bit multiplier would hold the event loop for hours. A result no float can hold is refused.
    """
    if not multiplier:
        return repr(float(number)) if isinstance(number, float) else str(number)
    scaled = _SCALING.scaleb(decimal.Decimal(repr(number)), multiplier)
    if not scaled:
        return "0"
    if abs(scaled.adjusted()) > 300:
        cause = f"{field}/sampledValue: {number} x 10^{multiplier} is out of range"
        raise PropertyConstraintViolationError(details={"cause": cause})
    return format(_SCALING.normalize(scaled), "f")


def as_sent(data: Any) -> Any:
    """Payload parts stored whole (signed values, raw needs and events) keep the station's camelCase keys."""
    return to_camel(data) if data is not None else None


def _evse(data: dict[str, Any] | None) -> EvseRef | None:
    if not data:
        return None
    return EvseRef(data["id"], data.get("connector_id", 1 if data["id"] > 0 else 0))


def schedule_to_v201(schedule: ChargingSchedule, default_id: int) -> dict[str, Any]:
    """A neutral schedule as a 2.0.1 ``chargingSchedule`` (snake_case keys)."""
    return {
        "id": schedule.id if schedule.id is not None else default_id,
        "charging_rate_unit": schedule.unit.value,
        "duration": schedule.duration_s,
        "start_schedule": format_timestamp(schedule.start) if schedule.start else None,
        "min_charging_rate": schedule.min_rate,
        "charging_schedule_period": [
            {
                "start_period": period.start_s,
                "limit": period.limit,
                "number_phases": period.number_phases,
                "phase_to_use": period.phase_to_use,
            }
            for period in schedule.periods
        ],
    }


def schedule_from_v201(data: dict[str, Any]) -> ChargingSchedule:
    """A 2.0.1 ``chargingSchedule`` (or composite ``schedule``) as a neutral schedule."""
    return ChargingSchedule(
        id=data.get("id"),
        unit=RateUnit(data["charging_rate_unit"]),
        periods=tuple(
            SchedulePeriod(
                int(period["start_period"]),
                float(period["limit"]),
                period.get("number_phases"),
                period.get("phase_to_use"),
            )
            for period in data["charging_schedule_period"]
        ),
        start=parse_timestamp(data["start_schedule"]) if data.get("start_schedule") else None,
        duration_s=data.get("duration"),
        min_rate=data.get("min_charging_rate"),
    )


def profile_to_v201(profile: ChargingProfile, transaction_id: int | str | None) -> dict[str, Any]:
    """A neutral profile as a 2.0.1 ``chargingProfile`` (snake_case keys)."""
    return {
        "id": profile.id,
        "stack_level": profile.stack_level,
        "charging_profile_purpose": PURPOSE_TO_V201[profile.purpose],
        "charging_profile_kind": profile.kind.value,
        "recurrency_kind": profile.recurrency.value if profile.recurrency else None,
        "valid_from": format_timestamp(profile.valid_from) if profile.valid_from else None,
        "valid_to": format_timestamp(profile.valid_to) if profile.valid_to else None,
        "transaction_id": str(transaction_id) if transaction_id is not None else None,
        "charging_schedule": [schedule_to_v201(profile.schedule, profile.id)],
    }


def profile_from_v201(data: dict[str, Any]) -> ChargingProfile:
    """A 2.0.1 ``chargingProfile`` a station reports, as a neutral profile.

    The station's transaction id and any alternative schedules (ISO 15118 offers up to three) are
    kept in ``extra``: the neutral value holds one schedule and the CSMS's own transaction ids.
    """
    schedules = data["charging_schedule"]
    return ChargingProfile(
        id=data["id"],
        stack_level=data["stack_level"],
        purpose=PURPOSE_FROM_V201[data["charging_profile_purpose"]],
        kind=ProfileKind(data["charging_profile_kind"]),
        recurrency=RecurrencyKind(data["recurrency_kind"]) if data.get("recurrency_kind") else None,
        valid_from=parse_timestamp(data["valid_from"]) if data.get("valid_from") else None,
        valid_to=parse_timestamp(data["valid_to"]) if data.get("valid_to") else None,
        schedule=schedule_from_v201(schedules[0]),
        extra={
            key: value
            for key, value in (
                ("ocpp_transaction_id", data.get("transaction_id")),
                ("other_schedules", [schedule_from_v201(item).to_dict() for item in schedules[1:]] or None),
            )
            if value is not None
        },
    )


def _component(ref: VariableRef) -> dict[str, Any]:
    evse = None
    if ref.evse_id is not None:
        evse = {"id": ref.evse_id, "connector_id": ref.connector_id}
    return {"name": ref.component, "instance": ref.component_instance, "evse": evse}


def _ref(component: dict[str, Any], variable: dict[str, Any], attribute: str | None) -> VariableRef:
    evse = component.get("evse") or {}
    return VariableRef(
        component=component["name"],
        variable=variable["name"],
        component_instance=component.get("instance"),
        variable_instance=variable.get("instance"),
        evse_id=evse.get("id"),
        connector_id=evse.get("connector_id"),
        attribute=attribute or "Actual",
    )


def reported_variables(report_data: Sequence[dict[str, Any]]) -> list[ReportedVariable]:
    """The attributes of NotifyReport ``reportData`` entries."""
    variables = []
    for entry in report_data:
        characteristics = entry.get("variable_characteristics") or {}
        for attribute in entry["variable_attribute"]:
            variables.append(
                ReportedVariable(
                    ref=_ref(entry["component"], entry["variable"], attribute.get("type")),
                    value=attribute.get("value"),
                    mutability=attribute.get("mutability"),
                    persistent=attribute.get("persistent"),
                    constant=attribute.get("constant"),
                    data_type=characteristics.get("data_type"),
                    unit=characteristics.get("unit"),
                    min_limit=characteristics.get("min_limit"),
                    max_limit=characteristics.get("max_limit"),
                    values_list=characteristics.get("values_list"),
                )
            )
    return variables


def _variable_result(entry: dict[str, Any]) -> VariableResult:
    info = entry.get("attribute_status_info") or {}
    return VariableResult(
        ref=_ref(entry["component"], entry["variable"], entry.get("attribute_type")),
        status=str(entry["attribute_status"]),
        value=entry.get("attribute_value"),
        reason=info.get("reason_code"),
    )


def _answer(result: Any) -> CommandAnswer:
    details = {
        key: value for key, value in vars(result).items() if key not in ("status", "custom_data") and value is not None
    }
    return CommandAnswer(status=str(result.status), details=details)


class ChargePoint201(OcppSession, LibraryChargePoint, StationCommands):
    """A station speaking OCPP 2.0.1."""

    dialect: ClassVar[rpc.Dialect] = rpc.V201

    @property
    def ocpp_version(self) -> str:
        """Always ``2.0.1``."""
        return "2.0.1"

    # --- messages from the station --------------------------------------------------------

    @on(Action.boot_notification)
    async def on_boot_notification(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        modem = charging_station.get("modem") or {}
        info = BootInfo(
            vendor=charging_station["vendor_name"],
            model=charging_station["model"],
            serial_number=charging_station.get("serial_number"),
            firmware_version=charging_station.get("firmware_version"),
            iccid=modem.get("iccid"),
            imsi=modem.get("imsi"),
            reason=reason,
        )
        decision = await self.services.stations.boot(self.station_id, info)
        self.admitted = decision.status is BootStatus.ACCEPTED
        self.log.info("boot", status=decision.status.value, vendor=info.vendor, model=info.model, reason=reason)
        return call_result.BootNotification(
            current_time=format_timestamp(decision.current_time),
            interval=decision.interval_s,
            status=decision.status.value,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any) -> Any:
        now = await self.services.stations.heartbeat(self.station_id)
        return call_result.Heartbeat(current_time=format_timestamp(now))

    @on(Action.status_notification)
    async def on_status_notification(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **_: Any
    ) -> Any:
        await self.services.stations.status(
            self.station_id,
            ConnectorStatus(
                where=EvseRef(evse_id, connector_id),
                status=connector_status,
                timestamp=_time("timestamp", timestamp),
            ),
        )
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        token, _ = token_of(id_token)
        if token is None:  # NoAuthorization: nothing to check
            return call_result.Authorize(id_token_info={"status": "Accepted"})
        authorization = await self.services.authorization.authorize(token)
        return call_result.Authorize(id_token_info=id_token_info(authorization))

    @on(Action.transaction_event)
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        **fields: Any,
    ) -> Any:
        token, token_type = token_of(fields.get("id_token"))
        result = await self.services.transactions.record_event(
            TransactionEvent(
                station_id=self.station_id,
                ocpp_transaction_id=transaction_info["transaction_id"],
                event_type=event_type,
                seq_no=seq_no,
                timestamp=_time("timestamp", timestamp),
                trigger_reason=trigger_reason,
                offline=bool(fields.get("offline", False)),
                where=_evse(fields.get("evse")),
                id_tag=token,
                id_token_type=token_type,
                charging_state=transaction_info.get("charging_state"),
                stopped_reason=transaction_info.get("stopped_reason"),
                remote_start_id=transaction_info.get("remote_start_id"),
                number_of_phases_used=fields.get("number_of_phases_used"),
                cable_max_current_a=fields.get("cable_max_current"),
                reservation_id=fields.get("reservation_id"),
                samples=tuple(sampled_values(fields.get("meter_value") or [], "meterValue")),
            )
        )
        self.log.info(
            "transaction event",
            event_type=event_type,
            seq_no=seq_no,
            transaction=result.transaction_id,
            duplicate=result.duplicate,
        )
        info = id_token_info(result.authorization) if result.authorization else None
        return call_result.TransactionEvent(id_token_info=info)

    @on(Action.meter_values)
    async def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        # 2.0.1 sends a session's samples in its TransactionEvents: these belong to no session.
        await self.services.meter_values.record(
            self.station_id,
            EvseRef(evse_id, 1 if evse_id > 0 else 0),
            sampled_values(meter_value, "meterValue"),
            transaction_ref=None,
        )
        return call_result.MeterValues()

    @on(Action.notify_ev_charging_needs)
    async def on_notify_ev_charging_needs(self, evse_id: int, charging_needs: dict[str, Any], **fields: Any) -> Any:
        ac = charging_needs.get("ac_charging_parameters") or {}
        dc = charging_needs.get("dc_charging_parameters") or {}
        departure = charging_needs.get("departure_time")
        status = await self.services.charging_needs.record(
            ChargingNeeds(
                station_id=self.station_id,
                evse_id=evse_id,
                requested_energy_transfer=charging_needs["requested_energy_transfer"],
                departure_time=_time("chargingNeeds/departureTime", departure) if departure else None,
                energy_amount_wh=ac.get("energy_amount", dc.get("energy_amount")),
                ev_min_current_a=ac.get("ev_min_current"),
                ev_max_current_a=ac.get("ev_max_current", dc.get("ev_max_current")),
                ev_max_voltage_v=ac.get("ev_max_voltage", dc.get("ev_max_voltage")),
                ev_max_power_w=dc.get("ev_max_power"),
                state_of_charge=dc.get("state_of_charge"),
                ev_energy_capacity_wh=dc.get("ev_energy_capacity"),
                max_schedule_tuples=fields.get("max_schedule_tuples"),
                raw=as_sent(charging_needs),
            )
        )
        status_info = None
        if status != "Accepted":
            status_info = {
                "reason_code": "NoSchedule",
                "additional_info": "smart charging is not enabled for this site",
            }
        return call_result.NotifyEVChargingNeeds(status=status, status_info=status_info)

    @on(Action.notify_charging_limit)
    async def on_notify_charging_limit(self, charging_limit: dict[str, Any], **fields: Any) -> Any:
        try:
            # The schema allows schedules OCPP does not (a first period after 0 s, a negative limit).
            schedules = tuple(schedule_from_v201(item) for item in fields.get("charging_schedule") or [])
        except ValueError as error:
            raise rpc.field_error("chargingSchedule", str(error)) from None
        await self.services.charging_limits.notified(
            ChargingLimitReport(
                station_id=self.station_id,
                source=charging_limit["charging_limit_source"],
                evse_id=fields.get("evse_id"),
                is_grid_critical=charging_limit.get("is_grid_critical"),
                schedules=schedules,
            )
        )
        return call_result.NotifyChargingLimit()

    @on(Action.cleared_charging_limit)
    async def on_cleared_charging_limit(self, charging_limit_source: str, **fields: Any) -> Any:
        await self.services.charging_limits.cleared(self.station_id, charging_limit_source, fields.get("evse_id"))
        return call_result.ClearedChargingLimit()

    @on(Action.report_charging_profiles)
    async def on_report_charging_profiles(
        self,
        request_id: int,
        charging_limit_source: str,
        charging_profile: list[dict[str, Any]],
        evse_id: int,
        **_: Any,
    ) -> Any:
        try:
            profiles = [profile_from_v201(item) for item in charging_profile]
        except ValueError as error:
            raise rpc.field_error("chargingProfile", str(error)) from None
        await self.services.charging_profiles.reported(
            self.station_id, request_id, charging_limit_source, evse_id, profiles
        )
        return call_result.ReportChargingProfiles()

    @on(Action.notify_report)
    async def on_notify_report(self, request_id: int, generated_at: str, seq_no: int, **fields: Any) -> Any:
        _time("generatedAt", generated_at)
        variables = reported_variables(fields.get("report_data") or [])
        await self.services.device_model.reported(self.station_id, variables)
        self.log.info("device model report", request_id=request_id, seq_no=seq_no, variables=len(variables))
        return call_result.NotifyReport()

    @on(Action.notify_event)
    async def on_notify_event(self, event_data: list[dict[str, Any]], **_: Any) -> Any:
        await self.services.station_events.device_events(
            self.station_id,
            (
                {
                    "event_id": event["event_id"],
                    "timestamp": _time("eventData/timestamp", event["timestamp"]),
                    "trigger": event["trigger"],
                    "component": event["component"]["name"],
                    "variable": event["variable"]["name"],
                    "actual_value": event["actual_value"],
                    "event_notification_type": event["event_notification_type"],
                    "raw": as_sent(event),
                }
                for event in event_data
            ),
        )
        return call_result.NotifyEvent()

    @on(Action.security_event_notification)
    async def on_security_event_notification(self, type: str, timestamp: str, **fields: Any) -> Any:
        await self.services.station_events.security_event(
            self.station_id, type, _time("timestamp", timestamp), fields.get("tech_info")
        )
        return call_result.SecurityEventNotification()

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(self, status: str, **_: Any) -> Any:
        await self.services.stations.firmware_status(self.station_id, firmware=status)
        return call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status_notification(self, status: str, **_: Any) -> Any:
        await self.services.stations.firmware_status(self.station_id, log_upload=status)
        return call_result.LogStatusNotification()

    @on(Action.reservation_status_update)
    async def on_reservation_status_update(self, reservation_id: int, reservation_update_status: str, **_: Any) -> Any:
        await self.services.reservations.station_update(self.station_id, reservation_id, reservation_update_status)
        return call_result.ReservationStatusUpdate()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **fields: Any) -> Any:
        data = fields.get("data")
        status = await self.services.data_transfers.incoming(
            self.station_id, vendor_id, fields.get("message_id"), None if data is None else _json_text(data)
        )
        return call_result.DataTransfer(status=status)

    # --- commands to the station ----------------------------------------------------------

    async def reset(self, kind: ResetKind = ResetKind.SOFT) -> CommandAnswer:
        # Soft waits for sessions to end (OnIdle); hard restarts now (Immediate).
        kind_201 = "OnIdle" if kind is ResetKind.SOFT else "Immediate"
        return _answer(await self.request(call.Reset(type=kind_201)))

    async def change_availability(self, evse_id: int, operative: bool) -> CommandAnswer:
        status = "Operative" if operative else "Inoperative"
        evse = {"id": evse_id} if evse_id > 0 else None
        return _answer(await self.request(call.ChangeAvailability(operational_status=status, evse=evse)))

    async def unlock_connector(self, evse_id: int, connector_id: int = 1) -> CommandAnswer:
        return _answer(await self.request(call.UnlockConnector(evse_id=evse_id, connector_id=connector_id)))

    async def trigger_message(self, message: TriggerableMessage, evse_id: int | None = None) -> CommandAnswer:
        if message not in TRIGGERS_V201:
            raise CommandNotSupportedError(f"OCPP 2.0.1 cannot trigger {message}")
        evse = {"id": evse_id} if evse_id is not None else None
        return _answer(await self.request(call.TriggerMessage(requested_message=message.value, evse=evse)))

    async def clear_cache(self) -> CommandAnswer:
        return _answer(await self.request(call.ClearCache()))

    async def get_composite_schedule(
        self, evse_id: int, duration_s: int, unit: RateUnit | None = None
    ) -> CompositeScheduleAnswer:
        result = await self.request(
            call.GetCompositeSchedule(
                duration=duration_s, evse_id=evse_id, charging_rate_unit=unit.value if unit else None
            )
        )
        composite = None
        if result.schedule:
            schedule = result.schedule
            composite = CompositeSchedule(
                evse_id=schedule["evse_id"],
                start=parse_timestamp(schedule["schedule_start"]),
                schedule=schedule_from_v201(schedule),
            )
        return CompositeScheduleAnswer(status=str(result.status), composite=composite)

    async def get_base_report(self, report: ReportBase = ReportBase.FULL_INVENTORY) -> CommandAnswer:
        request_id = new_request_id()
        answer = _answer(await self.request(call.GetBaseReport(request_id=request_id, report_base=report.value)))
        return CommandAnswer(answer.status, {**answer.details, "request_id": request_id})

    async def _send_get_variables(self, refs: Sequence[VariableRef]) -> list[VariableResult]:
        if not refs:
            raise InvalidCommandError("name at least one variable to read")
        result = await self.request(
            call.GetVariables(
                get_variable_data=[
                    {
                        "component": _component(ref),
                        "variable": {"name": ref.variable, "instance": ref.variable_instance},
                        "attribute_type": ref.attribute,
                    }
                    for ref in refs
                ]
            )
        )
        return [_variable_result(entry) for entry in result.get_variable_result]

    async def _send_set_variables(self, values: Mapping[VariableRef, str]) -> list[VariableResult]:
        if not values:
            raise InvalidCommandError("name at least one variable to set")
        result = await self.request(
            call.SetVariables(
                set_variable_data=[
                    {
                        "component": _component(ref),
                        "variable": {"name": ref.variable, "instance": ref.variable_instance},
                        "attribute_type": ref.attribute,
                        "attribute_value": value,
                    }
                    for ref, value in values.items()
                ]
            )
        )
        return [_variable_result(entry) for entry in result.set_variable_result]

    async def _send_get_charging_profiles(
        self,
        request_id: int,
        evse_id: int | None,
        purpose: ProfilePurpose | None,
        stack_level: int | None,
        profile_ids: Sequence[int],
    ) -> CommandAnswer:
        criterion = {
            "charging_profile_purpose": PURPOSE_TO_V201[purpose] if purpose else None,
            "stack_level": stack_level,
            "charging_profile_id": list(profile_ids) or None,
        }
        answer = _answer(
            await self.request(
                call.GetChargingProfiles(request_id=request_id, charging_profile=criterion, evse_id=evse_id)
            )
        )
        return CommandAnswer(answer.status, {**answer.details, "request_id": request_id})

    async def _send_remote_start(
        self, id_tag: str, id_token_type: str | None, evse_id: int | None, charging_profile: ChargingProfile | None
    ) -> CommandAnswer:
        remote_start_id = new_request_id()
        profile = profile_to_v201(charging_profile, None) if charging_profile is not None else None
        answer = _answer(
            await self.request(
                call.RequestStartTransaction(
                    id_token={"id_token": id_tag, "type": id_token_type or DEFAULT_TOKEN_TYPE},
                    remote_start_id=remote_start_id,
                    evse_id=evse_id,
                    charging_profile=profile,
                )
            )
        )
        return CommandAnswer(answer.status, {**answer.details, "remote_start_id": remote_start_id})

    async def _send_remote_stop(self, ocpp_transaction_id: int | str) -> CommandAnswer:
        return _answer(await self.request(call.RequestStopTransaction(transaction_id=str(ocpp_transaction_id))))

    async def _send_set_charging_profile(
        self, evse_id: int, profile: ChargingProfile, ocpp_transaction_id: int | str | None
    ) -> CommandAnswer:
        body = profile_to_v201(profile, ocpp_transaction_id)
        return _answer(await self.request(call.SetChargingProfile(evse_id=evse_id, charging_profile=body)))

    async def _send_clear_charging_profile(
        self, profile_id: int | None, evse_id: int | None, purpose: ProfilePurpose | None, stack_level: int | None
    ) -> CommandAnswer:
        criteria = None
        if evse_id is not None or purpose is not None or stack_level is not None:
            criteria = {
                "evse_id": evse_id,
                "charging_profile_purpose": PURPOSE_TO_V201[purpose] if purpose else None,
                "stack_level": stack_level,
            }
        return _answer(
            await self.request(
                call.ClearChargingProfile(charging_profile_id=profile_id, charging_profile_criteria=criteria)
            )
        )

    async def _send_reserve_now(
        self,
        reservation_id: int,
        evse_id: int,
        id_tag: str,
        id_token_type: str | None,
        expires_at: datetime,
        parent_id_tag: str | None,
    ) -> CommandAnswer:
        group = {"id_token": parent_id_tag, "type": DEFAULT_TOKEN_TYPE} if parent_id_tag else None
        return _answer(
            await self.request(
                call.ReserveNow(
                    id=reservation_id,
                    expiry_date_time=format_timestamp(expires_at),
                    id_token={"id_token": id_tag, "type": id_token_type or DEFAULT_TOKEN_TYPE},
                    evse_id=evse_id if evse_id > 0 else None,
                    group_id_token=group,
                )
            )
        )

    async def _send_cancel_reservation(self, reservation_id: int) -> CommandAnswer:
        return _answer(await self.request(call.CancelReservation(reservation_id=reservation_id)))


def _json_text(data: Any) -> str:
    # 2.0.1 DataTransfer data may be any JSON value; it is stored as text.
    return data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
