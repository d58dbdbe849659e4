"""OCPP 1.6J: the station's messages and its answers to every CSMS command of the Core, Smart
Charging, Reservation and Remote Trigger profiles.

Handlers decide and answer at once; anything that must talk to the CSMS afterwards (a triggered
message, the StopTransaction of a remote stop) is queued or spawned and goes out after the answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from optivgi_csms.domain.charging_profile import RateUnit
from optivgi_csms.domain.time import format_timestamp, parse_timestamp
from simulators.station.evse import Evse, Status, Transaction
from simulators.station.link import ClientLink, MessageCounter, ViolationSink
from simulators.station.metering import MeterReading, meter_value_v16
from simulators.station.outbox import Envelope
from simulators.station.profile_codec import PURPOSES_16, ProfileFormatError, profile_from_v16, schedule_to_ocpp
from simulators.station.protocol import BootAnswer, MeterContext, Protocol, StartTrigger, StopReason

# 1.6 has no token types; the remote-start path still carries one for 2.0.1's sake.
TOKEN_TYPE_16 = "ISO14443"


class Protocol16(Protocol):
    """How a 1.6 station writes its messages."""

    version = "1.6"

    def client(
        self, connection: Any, *, call_timeout_s: float, count: MessageCounter, violation: ViolationSink
    ) -> ClientLink:
        return Client16(self, connection, call_timeout_s=call_timeout_s, count=count, violation=violation)

    # --- messages that wait for their answer -------------------------------------------------

    def boot_request(self, reason: str) -> Any:
        config = self.core.config
        return call.BootNotification(
            charge_point_model=config.model,
            charge_point_vendor=config.vendor,
            charge_point_serial_number=config.serial_number,
            firmware_version=config.firmware_version,
        )

    def boot_answer(self, result: Any) -> BootAnswer:
        return BootAnswer(status=str(result.status), interval_s=int(result.interval))

    def heartbeat_request(self) -> Any:
        return call.Heartbeat()

    def authorize_request(self, id_tag: str, id_token_type: str) -> Any:
        return call.Authorize(id_tag=id_tag)

    def authorization_status(self, result: Any) -> str:
        return str(result.id_tag_info["status"])

    # --- queued messages ---------------------------------------------------------------------

    def status_changed(self, evse: Evse, old: Status | None, new: Status) -> list[Envelope]:
        return [self._status(evse.evse_id, new, evse.fault)]

    def station_status(self, status: Status) -> list[Envelope]:
        return [self._status(0, status, None)]

    def _status(self, connector_id: int, status: Status, fault: str | None) -> Envelope:
        payload = call.StatusNotification(
            connector_id=connector_id,
            error_code=fault or "NoError",
            status=status.value,
            timestamp=format_timestamp(self.core.now()),
        )
        return Envelope("StatusNotification", lambda: payload, persistent=False)

    def transaction_started(
        self, evse: Evse, transaction: Transaction, reading: MeterReading, trigger: StartTrigger
    ) -> Envelope:
        payload = call.StartTransaction(
            connector_id=evse.evse_id,
            id_tag=transaction.id_tag or "",
            meter_start=round(transaction.meter_start_wh),
            timestamp=format_timestamp(transaction.started_at),
            reservation_id=transaction.reservation_id,
        )

        def answered(result: Any) -> None:
            # From now on the CSMS's id names this session; queued messages pick it up when sent.
            transaction.ocpp_id = str(result.transaction_id)
            status = str(result.id_tag_info["status"])
            if status == "Accepted":
                self.core.remember(transaction.id_tag, status)
            else:
                self.core.deauthorized(transaction, status)

        return Envelope("StartTransaction", lambda: payload, answered=answered)

    def meter_values(
        self, evse: Evse, transaction: Transaction | None, reading: MeterReading, context: MeterContext
    ) -> Envelope | None:
        measurands = self.core.variables["sampled_data"]
        if not measurands:
            return None
        value = meter_value_v16(reading, measurands, context.value)

        def build() -> Any:
            if transaction is None:
                return call.MeterValues(connector_id=evse.evse_id, meter_value=[value])
            if transaction.ocpp_id is None:
                return None  # its StartTransaction was never answered: no id to send it under
            return call.MeterValues(
                connector_id=evse.evse_id, meter_value=[value], transaction_id=int(transaction.ocpp_id)
            )

        return Envelope("MeterValues", build, droppable=context is MeterContext.PERIODIC)

    def transaction_ended(
        self, evse: Evse, transaction: Transaction, reading: MeterReading, reason: StopReason, id_tag: str | None
    ) -> Envelope:
        measurands = self.core.variables["stop_sampled_data"]
        data = [meter_value_v16(reading, measurands, MeterContext.END.value)] if measurands else None

        def build() -> Any:
            if transaction.ocpp_id is None:
                return None
            return call.StopTransaction(
                meter_stop=round(reading.energy_wh),
                timestamp=format_timestamp(reading.timestamp),
                transaction_id=int(transaction.ocpp_id),
                reason=reason.value,
                id_tag=id_tag,
                transaction_data=data,
            )

        def answered(result: Any) -> None:
            if id_tag is not None and result.id_tag_info:
                self.core.remember(id_tag, str(result.id_tag_info["status"]))

        return Envelope("StopTransaction", build, answered=answered)


class Client16(ClientLink, ChargePoint16):
    """The station's end of one 1.6 connection: answers every CSMS command."""

    def __init__(
        self,
        protocol: Protocol16,
        connection: Any,
        *,
        call_timeout_s: float,
        count: MessageCounter,
        violation: ViolationSink,
    ) -> None:
        super().__init__(
            protocol.core.station_id, connection, call_timeout_s=call_timeout_s, count=count, violation=violation
        )
        self.protocol = protocol
        self.core = protocol.core

    # --- sessions ------------------------------------------------------------------------------

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None, **fields: Any) -> Any:
        profile = None
        if fields.get("charging_profile") is not None:
            try:
                profile, _ = profile_from_v16(fields["charging_profile"])
            except ProfileFormatError as error:
                self.core.smart.refused(connector_id or 0, fields["charging_profile"], str(error))
                return call_result.RemoteStartTransaction(status="Rejected")
        if connector_id == 0:  # 1.6: connectorId SHALL be > 0
            return call_result.RemoteStartTransaction(status="Rejected")
        accepted, _ = self.core.remote_start(connector_id, id_tag, TOKEN_TYPE_16, None, profile)
        return call_result.RemoteStartTransaction(status="Accepted" if accepted else "Rejected")

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        stopped = self.core.remote_stop(str(transaction_id))
        return call_result.RemoteStopTransaction(status="Accepted" if stopped else "Rejected")

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **_: Any) -> Any:
        # 1.6: unlocking a connector with a session stops the session first (reason UnlockCommand).
        outcome = self.core.unlock(connector_id, stop_session=True)
        return call_result.UnlockConnector(status="Unlocked" if outcome == "Unlocked" else "NotSupported")

    # --- the station ---------------------------------------------------------------------------

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> Any:
        # 1.6 Soft: stop the sessions gracefully, then restart; Hard: the same, abruptly.
        self.core.reset(hard=type == "Hard", when_idle=False)
        return call_result.Reset(status="Accepted")

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> Any:
        status = self.core.change_availability(connector_id, type == "Operative")
        return call_result.ChangeAvailability(status=status)

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        known, unknown = self.core.variables.configuration16(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        return call_result.ChangeConfiguration(status=self.core.variables.change16(key, value))

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> Any:
        self.core.clear_cache()
        return call_result.ClearCache(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None, **_: Any) -> Any:
        if connector_id is not None and self.core.evse(connector_id) is None and connector_id != 0:
            return call_result.TriggerMessage(status="Rejected")
        connection = self.core.uplink
        if requested_message == "BootNotification":
            self.core.spawn(connection.boot_now("Triggered"))
        elif requested_message == "Heartbeat":
            self.core.spawn(connection.heartbeat_now())
        elif requested_message == "MeterValues":
            self.core.trigger_meter_values(connector_id)
        elif requested_message == "StatusNotification":
            self.core.trigger_status(connector_id)
        elif requested_message == "FirmwareStatusNotification":
            self._notify("FirmwareStatusNotification", call.FirmwareStatusNotification(status="Idle"))
        elif requested_message == "DiagnosticsStatusNotification":
            self._notify("DiagnosticsStatusNotification", call.DiagnosticsStatusNotification(status="Idle"))
        else:
            return call_result.TriggerMessage(status="NotImplemented")
        return call_result.TriggerMessage(status="Accepted")

    def _notify(self, action: str, payload: Any) -> None:
        self.core.queue(Envelope(action, lambda: payload, persistent=False))

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return call_result.DataTransfer(status="UnknownVendorId")

    # --- reservations --------------------------------------------------------------------------

    @on(Action.reserve_now)
    def on_reserve_now(
        self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int, **fields: Any
    ) -> Any:
        expires_at = _time(expiry_date)
        if expires_at is None:
            self.core.violation(f"ReserveNow: expiryDate {expiry_date!r} is not a date-time")
            return call_result.ReserveNow(status="Rejected")
        status = self.core.reservations.reserve(
            reservation_id, connector_id, id_tag, expires_at, fields.get("parent_id_tag")
        )
        return call_result.ReserveNow(status=status)

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        cancelled = self.core.reservations.cancel(reservation_id)
        return call_result.CancelReservation(status="Accepted" if cancelled else "Rejected")

    # --- smart charging ------------------------------------------------------------------------

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any) -> Any:
        try:
            profile, transaction_id = profile_from_v16(cs_charging_profiles)
        except ProfileFormatError as error:
            self.core.smart.refused(connector_id, cs_charging_profiles, str(error))
            return call_result.SetChargingProfile(status="Rejected")
        reason = self.core.smart.set_profile(connector_id, profile, transaction_id)
        return call_result.SetChargingProfile(status="Accepted" if reason is None else "Rejected")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **fields: Any) -> Any:
        purpose = fields.get("charging_profile_purpose")
        removed = self.core.smart.clear(
            profile_id=fields.get("id"),
            evse_id=fields.get("connector_id"),
            purpose=PURPOSES_16[purpose] if purpose else None,
            stack_level=fields.get("stack_level"),
        )
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id: int, duration: int, **fields: Any) -> Any:
        unit = fields.get("charging_rate_unit")
        schedule = self.core.smart.composite(connector_id, duration, RateUnit(unit) if unit else None)
        if isinstance(schedule, str):
            return call_result.GetCompositeSchedule(status="Rejected")
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=format_timestamp(schedule.start) if schedule.start else None,
            charging_schedule=schedule_to_ocpp(schedule),
        )


def _time(text: str) -> datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None
