"""OCPP 1.6J adapter: 1.6 messages become domain values for the services; commands become 1.6 calls.

Nothing here decides anything: acceptance, authorization, idempotency and storage belong to the
services; this module only translates between 1.6 payloads and the version-neutral values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibraryChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from optivgi_csms.domain.authorization import Authorization
from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    CompositeSchedule,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
)
from optivgi_csms.domain.meter import (
    DEFAULT_CONTEXT,
    DEFAULT_FORMAT,
    DEFAULT_LOCATION,
    DEFAULT_MEASURAND,
    DEFAULT_UNIT,
    SampledValue,
)
from optivgi_csms.domain.station import BootInfo, BootStatus, ConnectorStatus, EvseRef
from optivgi_csms.domain.time import format_timestamp, parse_timestamp
from optivgi_csms.domain.transaction import TransactionStart, TransactionStop
from optivgi_csms.protocol import rpc
from optivgi_csms.protocol.commands import (
    CommandAnswer,
    CompositeScheduleAnswer,
    ConfigurationAnswer,
    ConfigurationKey,
    ResetKind,
    StationCommands,
    TriggerableMessage,
)
from optivgi_csms.protocol.errors import CommandNotSupportedError, InvalidCommandError
from optivgi_csms.protocol.session import OcppSession

PURPOSE_TO_V16 = {
    ProfilePurpose.STATION_MAX: "ChargePointMaxProfile",
    ProfilePurpose.TX_DEFAULT: "TxDefaultProfile",
    ProfilePurpose.TX: "TxProfile",
}
TRIGGERS_V16 = frozenset(
    {
        TriggerableMessage.BOOT_NOTIFICATION,
        TriggerableMessage.HEARTBEAT,
        TriggerableMessage.METER_VALUES,
        TriggerableMessage.STATUS_NOTIFICATION,
        TriggerableMessage.FIRMWARE_STATUS_NOTIFICATION,
        TriggerableMessage.DIAGNOSTICS_STATUS_NOTIFICATION,
    }
)


def _time(field: str, value: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError:
        raise rpc.field_error(field, f"{value!r} is not an ISO 8601 date-time") from None


def id_tag_info(authorization: Authorization) -> dict[str, Any]:
    """The 1.6 ``idTagInfo`` of a verdict (snake_case; the session converts the keys)."""
    return {
        "status": authorization.status.value,
        "expiry_date": format_timestamp(authorization.expiry_date) if authorization.expiry_date else None,
        "parent_id_tag": authorization.parent_id_tag,
    }


def sampled_values(meter_values: Sequence[dict[str, Any]], field: str) -> list[SampledValue]:
    """Flatten 1.6 ``meterValue`` entries into samples, with the specification's defaults made explicit."""
    samples = []
    for index, entry in enumerate(meter_values):
        timestamp = _time(f"{field}/{index}/timestamp", entry["timestamp"])
        for value in entry["sampled_value"]:
            measurand = value.get("measurand", DEFAULT_MEASURAND)
            samples.append(
                SampledValue(
                    timestamp=timestamp,
                    value=value["value"],
                    measurand=measurand,
                    phase=value.get("phase"),
                    unit=value.get("unit", DEFAULT_UNIT.get(measurand)),
                    context=value.get("context", DEFAULT_CONTEXT),
                    location=value.get("location", DEFAULT_LOCATION),
                    format=value.get("format", DEFAULT_FORMAT),
                )
            )
    return samples


def profile_to_v16(profile: ChargingProfile, transaction_id: int | str | None) -> dict[str, Any]:
    """A neutral profile as a 1.6 ``csChargingProfiles`` object (snake_case keys)."""
    if profile.purpose not in PURPOSE_TO_V16:
        raise InvalidCommandError(f"OCPP 1.6 has no {profile.purpose.value} profiles")
    if transaction_id is not None and not isinstance(transaction_id, int):
        raise InvalidCommandError("an OCPP 1.6 transaction id is an integer")
    schedule = profile.schedule
    return {
        "charging_profile_id": profile.id,
        "stack_level": profile.stack_level,
        "charging_profile_purpose": PURPOSE_TO_V16[profile.purpose],
        "charging_profile_kind": profile.kind.value,
        "recurrency_kind": profile.recurrency.value if profile.recurrency else None,
        "valid_from": format_timestamp(profile.valid_from) if profile.valid_from else None,
        "valid_to": format_timestamp(profile.valid_to) if profile.valid_to else None,
        "transaction_id": transaction_id,
        "charging_schedule": {
            "charging_rate_unit": schedule.unit.value,
            "duration": schedule.duration_s,
            "start_schedule": format_timestamp(schedule.start) if schedule.start else None,
            "min_charging_rate": schedule.min_rate,
            "charging_schedule_period": [
                {"start_period": period.start_s, "limit": period.limit, "number_phases": period.number_phases}
                for period in schedule.periods
            ],
        },
    }


def schedule_from_v16(data: dict[str, Any]) -> ChargingSchedule:
    """A 1.6 ``chargingSchedule`` (snake_case keys) as a neutral schedule."""
    return ChargingSchedule(
        unit=RateUnit(data["charging_rate_unit"]),
        periods=tuple(
            SchedulePeriod(int(period["start_period"]), float(period["limit"]), period.get("number_phases"))
            for period in data["charging_schedule_period"]
        ),
        start=parse_timestamp(data["start_schedule"]) if data.get("start_schedule") else None,
        duration_s=data.get("duration"),
        min_rate=data.get("min_charging_rate"),
    )


def _answer(result: Any) -> CommandAnswer:
    details = {key: value for key, value in vars(result).items() if key != "status" and value is not None}
    return CommandAnswer(status=str(result.status), details=details)


class ChargePoint16(OcppSession, LibraryChargePoint, StationCommands):
    """A station speaking OCPP 1.6J."""

    dialect: ClassVar[rpc.Dialect] = rpc.V16

    @property
    def ocpp_version(self) -> str:
        """Always ``1.6``."""
        return "1.6"

    # --- messages from the station --------------------------------------------------------

    @on(Action.boot_notification)
    async def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **fields: Any) -> Any:
        info = BootInfo(
            vendor=charge_point_vendor,
            model=charge_point_model,
            serial_number=fields.get("charge_point_serial_number"),
            charge_box_serial_number=fields.get("charge_box_serial_number"),
            firmware_version=fields.get("firmware_version"),
            iccid=fields.get("iccid"),
            imsi=fields.get("imsi"),
            meter_type=fields.get("meter_type"),
            meter_serial_number=fields.get("meter_serial_number"),
        )
        decision = await self.services.stations.boot(self.station_id, info)
        self.admitted = decision.status is BootStatus.ACCEPTED
        self.log.info("boot", status=decision.status.value, vendor=info.vendor, model=info.model)
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
    async def on_status_notification(self, connector_id: int, error_code: str, status: str, **fields: Any) -> Any:
        timestamp = fields.get("timestamp")
        await self.services.stations.status(
            self.station_id,
            ConnectorStatus(
                where=EvseRef.from_v16_connector(connector_id),
                status=status,
                error_code=error_code,
                timestamp=_time("timestamp", timestamp) if timestamp is not None else None,
                info=fields.get("info"),
                vendor_id=fields.get("vendor_id"),
                vendor_error_code=fields.get("vendor_error_code"),
            ),
        )
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str, **_: Any) -> Any:
        authorization = await self.services.authorization.authorize(id_tag)
        return call_result.Authorize(id_tag_info=id_tag_info(authorization))

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **fields: Any
    ) -> Any:
        started = await self.services.transactions.start(
            TransactionStart(
                station_id=self.station_id,
                where=EvseRef.from_v16_connector(connector_id),
                id_tag=id_tag,
                meter_start_wh=float(meter_start),
                timestamp=_time("timestamp", timestamp),
                reservation_id=fields.get("reservation_id"),
            )
        )
        self.log.info("transaction started", transaction=started.transaction_id, duplicate=started.duplicate)
        return call_result.StartTransaction(
            transaction_id=started.transaction_id, id_tag_info=id_tag_info(started.authorization)
        )

    @on(Action.stop_transaction)
    async def on_stop_transaction(self, meter_stop: int, timestamp: str, transaction_id: int, **fields: Any) -> Any:
        authorization = await self.services.transactions.stop(
            TransactionStop(
                station_id=self.station_id,
                transaction_id=transaction_id,
                meter_stop_wh=float(meter_stop),
                timestamp=_time("timestamp", timestamp),
                reason=fields.get("reason"),
                id_tag=fields.get("id_tag"),
                samples=tuple(sampled_values(fields.get("transaction_data") or [], "transactionData")),
            )
        )
        self.log.info("transaction stopped", transaction=transaction_id)
        return call_result.StopTransaction(id_tag_info=id_tag_info(authorization) if authorization else None)

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id: int, meter_value: list[dict[str, Any]], **fields: Any) -> Any:
        await self.services.meter_values.record(
            self.station_id,
            EvseRef.from_v16_connector(connector_id),
            sampled_values(meter_value, "meterValue"),
            transaction_ref=fields.get("transaction_id"),
        )
        return call_result.MeterValues()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **fields: Any) -> Any:
        status = await self.services.data_transfers.incoming(
            self.station_id, vendor_id, fields.get("message_id"), fields.get("data")
        )
        return call_result.DataTransfer(status=status)

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(self, status: str, **_: Any) -> Any:
        await self.services.stations.firmware_status(self.station_id, firmware=status)
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status_notification(self, status: str, **_: Any) -> Any:
        await self.services.stations.firmware_status(self.station_id, diagnostics=status)
        return call_result.DiagnosticsStatusNotification()

    # From the OCPP 1.6 security extension (Improved security for OCPP 1.6-J): stored as 2.0.1's are.
    @on(Action.security_event_notification)
    async def on_security_event_notification(self, type: str, timestamp: str, **fields: Any) -> Any:
        await self.services.station_events.security_event(
            self.station_id, type, _time("timestamp", timestamp), fields.get("tech_info")
        )
        return call_result.SecurityEventNotification()

    # --- commands to the station ----------------------------------------------------------

    async def reset(self, kind: ResetKind = ResetKind.SOFT) -> CommandAnswer:
        return _answer(await self.request(call.Reset(type=kind.value)))

    async def change_availability(self, evse_id: int, operative: bool) -> CommandAnswer:
        kind = "Operative" if operative else "Inoperative"
        return _answer(await self.request(call.ChangeAvailability(connector_id=evse_id, type=kind)))

    async def get_configuration(self, keys: Sequence[str] = ()) -> ConfigurationAnswer:
        result = await self.request(call.GetConfiguration(key=list(keys) or None))
        return ConfigurationAnswer(
            keys=tuple(
                ConfigurationKey(entry["key"], entry.get("value"), bool(entry["readonly"]))
                for entry in result.configuration_key or []
            ),
            unknown_keys=tuple(result.unknown_key or []),
        )

    async def change_configuration(self, key: str, value: str) -> CommandAnswer:
        return _answer(await self.request(call.ChangeConfiguration(key=key, value=value)))

    async def unlock_connector(self, evse_id: int, connector_id: int = 1) -> CommandAnswer:
        if connector_id != 1:
            raise CommandNotSupportedError("an OCPP 1.6 station has one connector per connector id (use connector 1)")
        return _answer(await self.request(call.UnlockConnector(connector_id=evse_id)))

    async def trigger_message(self, message: TriggerableMessage, evse_id: int | None = None) -> CommandAnswer:
        if message not in TRIGGERS_V16:
            raise CommandNotSupportedError(f"OCPP 1.6 cannot trigger {message}")
        return _answer(await self.request(call.TriggerMessage(requested_message=message.value, connector_id=evse_id)))

    async def clear_cache(self) -> CommandAnswer:
        return _answer(await self.request(call.ClearCache()))

    async def _send_remote_start(
        self, id_tag: str, id_token_type: str | None, evse_id: int | None, charging_profile: ChargingProfile | None
    ) -> CommandAnswer:
        profile = profile_to_v16(charging_profile, None) if charging_profile is not None else None
        return _answer(
            await self.request(
                call.RemoteStartTransaction(id_tag=id_tag, connector_id=evse_id, charging_profile=profile)
            )
        )

    async def get_composite_schedule(
        self, evse_id: int, duration_s: int, unit: RateUnit | None = None
    ) -> CompositeScheduleAnswer:
        result = await self.request(
            call.GetCompositeSchedule(
                connector_id=evse_id, duration=duration_s, charging_rate_unit=unit.value if unit else None
            )
        )
        composite = None
        if result.charging_schedule:
            start = parse_timestamp(result.schedule_start) if result.schedule_start else None
            composite = CompositeSchedule(
                evse_id=result.connector_id if result.connector_id is not None else evse_id,
                start=start,
                schedule=schedule_from_v16(result.charging_schedule),
            )
        return CompositeScheduleAnswer(status=str(result.status), composite=composite)

    async def _send_remote_stop(self, ocpp_transaction_id: int | str) -> CommandAnswer:
        return _answer(await self.request(call.RemoteStopTransaction(transaction_id=int(ocpp_transaction_id))))

    async def _send_set_charging_profile(
        self, evse_id: int, profile: ChargingProfile, ocpp_transaction_id: int | str | None
    ) -> CommandAnswer:
        body = profile_to_v16(profile, ocpp_transaction_id)
        return _answer(await self.request(call.SetChargingProfile(connector_id=evse_id, cs_charging_profiles=body)))

    async def _send_clear_charging_profile(
        self, profile_id: int | None, evse_id: int | None, purpose: ProfilePurpose | None, stack_level: int | None
    ) -> CommandAnswer:
        if purpose is not None and purpose not in PURPOSE_TO_V16:
            raise CommandNotSupportedError(f"OCPP 1.6 has no {purpose.value} profiles")
        return _answer(
            await self.request(
                call.ClearChargingProfile(
                    id=profile_id,
                    connector_id=evse_id,
                    charging_profile_purpose=PURPOSE_TO_V16[purpose] if purpose else None,
                    stack_level=stack_level,
                )
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
        return _answer(
            await self.request(
                call.ReserveNow(
                    connector_id=evse_id,
                    expiry_date=format_timestamp(expires_at),
                    id_tag=id_tag,
                    reservation_id=reservation_id,
                    parent_id_tag=parent_id_tag,
                )
            )
        )

    async def _send_cancel_reservation(self, reservation_id: int) -> CommandAnswer:
        return _answer(await self.request(call.CancelReservation(reservation_id=reservation_id)))
