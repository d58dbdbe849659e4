"""OCPP 2.0.1: the station's messages and its answers to every CSMS command of the core, smart
charging, reservation, device-model and remote-control functional blocks.

A session is one chain of TransactionEvents (Started, Updated..., Ended) numbered by seqNo; meter
values, charging-state changes and limit changes travel in it. The connector status is reported
with StatusNotification only when the 2.0.1 connector status (Available, Occupied, Reserved,
Unavailable, Faulted) changes; the finer 1.6 distinctions become the session's chargingState.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from optivgi_csms.domain.charging_profile import ProfilePurpose, RateUnit
from optivgi_csms.domain.time import format_timestamp, parse_timestamp
from simulators.ev import ChargingNeeds
from simulators.smart_charging import InstalledProfile
from simulators.station.evse import Evse, Status, Transaction
from simulators.station.link import ClientLink, MessageCounter, ViolationSink
from simulators.station.metering import MeterReading, meter_value_v201
from simulators.station.outbox import Envelope
from simulators.station.profile_codec import (
    PURPOSES_201,
    ProfileFormatError,
    profile_from_v201,
    profile_to_v201,
    schedule_to_ocpp,
)
from simulators.station.protocol import BootAnswer, MeterContext, Protocol, StartTrigger, StopReason
from simulators.station.variables import Reading

CONNECTOR_STATUS = {
    Status.AVAILABLE: "Available",
    Status.PREPARING: "Occupied",
    Status.CHARGING: "Occupied",
    Status.SUSPENDED_EV: "Occupied",
    Status.SUSPENDED_EVSE: "Occupied",
    Status.FINISHING: "Occupied",
    Status.RESERVED: "Reserved",
    Status.UNAVAILABLE: "Unavailable",
    Status.FAULTED: "Faulted",
}
CHARGING_STATE = {
    Status.CHARGING: "Charging",
    Status.SUSPENDED_EV: "SuspendedEV",
    Status.SUSPENDED_EVSE: "SuspendedEVSE",
}
# stoppedReason and triggerReason of the Ended event for each way a session ends.
STOPPED = {
    StopReason.EV_DISCONNECTED: ("EVDisconnected", "EVCommunicationLost"),
    StopReason.REMOTE: ("Remote", "RemoteStop"),
    StopReason.LOCAL: ("Local", "StopAuthorized"),
    StopReason.DEAUTHORIZED: ("DeAuthorized", "Deauthorized"),
    StopReason.SOFT_RESET: ("ImmediateReset", "ResetCommand"),
    StopReason.HARD_RESET: ("ImmediateReset", "ResetCommand"),
    StopReason.UNLOCK_COMMAND: ("Other", "UnlockCommand"),
    StopReason.OTHER: ("Other", "AbnormalCondition"),
}
# requestedEnergyTransfer of an AC EV by the phases it charges on.
ENERGY_TRANSFER = {1: "AC_single_phase", 2: "AC_two_phase", 3: "AC_three_phase"}
REPORT_CHUNK = 20  # NotifyReport entries per message
CHARGING_LIMIT_SOURCE = "CSO"  # every profile the station holds came from the CSMS


def charging_state(evse: Evse, status: Status) -> str:
    """The 2.0.1 chargingState of an EVSE in ``status``."""
    if status in CHARGING_STATE:
        return CHARGING_STATE[status]
    return "EVConnected" if evse.ev is not None else "Idle"


class Protocol201(Protocol):
    """How a 2.0.1 station writes its messages."""

    version = "2.0.1"

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        variables = core.variables
        variables.add_reading(Reading("ChargingStation", "AvailabilityState", None, self._station_availability))
        for evse in core.evses:
            variables.add_reading(Reading("EVSE", "AvailabilityState", evse.evse_id, self._availability(evse)))
            variables.add_reading(
                Reading("EVSE", "Power", evse.evse_id, lambda e=evse: f"{e.power_kw * 1000:.1f}", "decimal", "W")
            )
            variables.add_reading(
                Reading("EVSE", "SupplyPhases", evse.evse_id, lambda e=evse: str(e.phases), "integer")
            )

    def _station_availability(self) -> str:
        return "Available" if any(evse.operative for evse in self.core.evses) else "Unavailable"

    @staticmethod
    def _availability(evse: Evse) -> Any:
        return lambda: CONNECTOR_STATUS[evse.status()]

    def client(
        self, connection: Any, *, call_timeout_s: float, count: MessageCounter, violation: ViolationSink
    ) -> ClientLink:
        return Client201(self, connection, call_timeout_s=call_timeout_s, count=count, violation=violation)

    # --- messages that wait for their answer -------------------------------------------------

    def boot_request(self, reason: str) -> Any:
        config = self.core.config
        station = {
            "model": config.model,
            "vendor_name": config.vendor,
            "serial_number": config.serial_number,
            "firmware_version": config.firmware_version,
        }
        return call.BootNotification(charging_station=station, reason=reason)

    def boot_answer(self, result: Any) -> BootAnswer:
        info = result.status_info or {}
        return BootAnswer(status=str(result.status), interval_s=int(result.interval), reason=info.get("reason_code"))

    def heartbeat_request(self) -> Any:
        return call.Heartbeat()

    def authorize_request(self, id_tag: str, id_token_type: str) -> Any:
        return call.Authorize(id_token={"id_token": id_tag, "type": id_token_type})

    def authorization_status(self, result: Any) -> str:
        return str(result.id_token_info["status"])

    # --- queued messages ---------------------------------------------------------------------

    def status_changed(self, evse: Evse, old: Status | None, new: Status) -> list[Envelope]:
        if old is not None and CONNECTOR_STATUS[old] == CONNECTOR_STATUS[new]:
            return []
        payload = call.StatusNotification(
            timestamp=format_timestamp(self.core.now()),
            connector_status=CONNECTOR_STATUS[new],
            evse_id=evse.evse_id,
            connector_id=1,
        )
        return [Envelope("StatusNotification", lambda: payload, persistent=False)]

    def _event(
        self,
        event_type: str,
        trigger: str,
        evse: Evse,
        transaction: Transaction,
        info: dict[str, Any],
        *,
        meter_value: dict[str, Any] | None = None,
        droppable: bool = False,
        **fields: Any,
    ) -> Envelope:
        """A TransactionEvent, numbered now: queued events keep their order and their seqNo."""
        payload = call.TransactionEvent(
            event_type=event_type,
            timestamp=format_timestamp(self.core.now()) if meter_value is None else meter_value["timestamp"],
            trigger_reason=trigger,
            seq_no=transaction.next_seq_no(),
            transaction_info={"transaction_id": transaction.local_id, **info},
            meter_value=[meter_value] if meter_value is not None else None,
            # Generated while the CSMS could not be told: it may arrive late and out of its time.
            offline=True if not self.core.online else None,
            evse={"id": evse.evse_id, "connector_id": 1} if event_type == "Started" else None,
            **fields,
        )
        return Envelope("TransactionEvent", lambda: payload, answered=self._answered(transaction), droppable=droppable)

    def _answered(self, transaction: Transaction) -> Any:
        def answered(result: Any) -> None:
            info = result.id_token_info
            if not info:
                return
            status = str(info["status"])
            if status == "Accepted":
                self.core.remember(transaction.id_tag, status)
            else:
                self.core.deauthorized(transaction, status)

        return answered

    def _meter(self, reading: MeterReading, measurands: Sequence[str], context: MeterContext) -> dict[str, Any] | None:
        value = meter_value_v201(reading, measurands, context.value)
        return value if value["sampled_value"] else None

    def transaction_started(
        self, evse: Evse, transaction: Transaction, reading: MeterReading, trigger: StartTrigger
    ) -> Envelope:
        state = charging_state(evse, evse.status())
        transaction.charging_state = state
        info = {"charging_state": state, "remote_start_id": transaction.remote_start_id}
        token = {"id_token": transaction.id_tag, "type": transaction.id_token_type} if transaction.id_tag else None
        return self._event(
            "Started",
            trigger.value,
            evse,
            transaction,
            info,
            meter_value=self._meter(reading, self.core.variables["sampled_data"], MeterContext.BEGIN),
            id_token=token,
            reservation_id=transaction.reservation_id,
            number_of_phases_used=reading.phases,
        )

    def meter_values(
        self, evse: Evse, transaction: Transaction | None, reading: MeterReading, context: MeterContext
    ) -> Envelope | None:
        value = self._meter(reading, self.core.variables["sampled_data"], context)
        if value is None:
            return None
        if transaction is None:
            # Outside a session 2.0.1 meter values are a MeterValues message, worth sending only now.
            payload = call.MeterValues(evse_id=evse.evse_id, meter_value=[value])
            return Envelope("MeterValues", lambda: payload, persistent=False)
        trigger = "MeterValuePeriodic" if context is MeterContext.PERIODIC else "Trigger"
        return self._event(
            "Updated",
            trigger,
            evse,
            transaction,
            {"charging_state": transaction.charging_state},
            meter_value=value,
            droppable=context is MeterContext.PERIODIC,
        )

    def charging_state_changed(self, evse: Evse, transaction: Transaction, status: Status) -> Envelope | None:
        state = charging_state(evse, status)
        if state == transaction.charging_state:
            return None
        transaction.charging_state = state
        return self._event("Updated", "ChargingStateChanged", evse, transaction, {"charging_state": state})

    def charging_rate_changed(self, evse: Evse, transaction: Transaction, reading: MeterReading) -> Envelope | None:
        return self._event(
            "Updated", "ChargingRateChanged", evse, transaction, {"charging_state": transaction.charging_state}
        )

    def transaction_ended(
        self, evse: Evse, transaction: Transaction, reading: MeterReading, reason: StopReason, id_tag: str | None
    ) -> Envelope:
        stopped_reason, trigger = STOPPED[reason]
        state = "Idle" if reason is StopReason.EV_DISCONNECTED or evse.ev is None else "EVConnected"
        token = {"id_token": id_tag, "type": transaction.id_token_type} if id_tag else None
        return self._event(
            "Ended",
            trigger,
            evse,
            transaction,
            {"charging_state": state, "stopped_reason": stopped_reason},
            meter_value=self._meter(reading, self.core.variables["stop_sampled_data"], MeterContext.END),
            id_token=token,
        )

    def ev_charging_needs(self, evse: Evse, transaction: Transaction) -> Envelope | None:
        ev = evse.ev
        if ev is None:
            return None

        def build() -> Any:
            # Built when it goes: the energy still wanted and the departure in wall time are those of that
            # moment. A session that ended first (queued off line) has nothing left to ask for.
            if evse.transaction is not transaction or evse.ev is not ev:
                return None
            needs = ev.charging_needs(evse.voltage_v, supply_phases=evse.phases)
            return call.NotifyEVChargingNeeds(evse_id=evse.evse_id, charging_needs=self._needs(needs))

        return Envelope("NotifyEVChargingNeeds", build, answered=self._needs_answered, retry=False)

    def _needs(self, needs: ChargingNeeds) -> dict[str, Any]:
        """The chargingNeeds of an AC EV (the simulated EVs charge through their on-board charger)."""
        body: dict[str, Any] = {
            "requested_energy_transfer": ENERGY_TRANSFER[needs.phases],
            "ac_charging_parameters": {
                "energy_amount": needs.energy_wh,
                "ev_min_current": needs.min_current_a,
                "ev_max_current": needs.max_current_a,
                "ev_max_voltage": needs.max_voltage_v,
            },
        }
        if needs.departure is not None:
            # The scenario's departure as the moment it comes on the wall clock, which OCPP runs on.
            body["departure_time"] = format_timestamp(self.core.clock.wall_time(needs.departure))
        return body

    def _needs_answered(self, result: Any) -> None:
        self.core.recorder.answer(self.core.station_id, "NotifyEVChargingNeeds", str(result.status))

    def reservation_ended(self, reservation_id: int, expired: bool) -> Envelope | None:
        payload = call.ReservationStatusUpdate(
            reservation_id=reservation_id, reservation_update_status="Expired" if expired else "Removed"
        )
        return Envelope("ReservationStatusUpdate", lambda: payload)

    # --- reports sent after a command's answer -----------------------------------------------

    async def send_report(self, request_id: int, base: str) -> None:
        """NotifyReport messages for a GetBaseReport, in chunks (tbc on all but the last)."""
        entries = self.core.variables.report201(base)
        chunks = [entries[i : i + REPORT_CHUNK] for i in range(0, len(entries), REPORT_CHUNK)] or [[]]
        generated_at = format_timestamp(self.core.now())
        for seq_no, chunk in enumerate(chunks):
            last = seq_no == len(chunks) - 1
            await self.core.uplink.call(
                call.NotifyReport(
                    request_id=request_id,
                    generated_at=generated_at,
                    seq_no=seq_no,
                    report_data=chunk or None,
                    tbc=None if last else True,
                )
            )

    async def send_profiles(self, request_id: int, profiles: list[InstalledProfile]) -> None:
        """ReportChargingProfiles for a GetChargingProfiles: one message per EVSE (tbc on all but the last)."""
        by_evse: dict[int, list[InstalledProfile]] = {}
        for item in profiles:
            by_evse.setdefault(item.evse_id, []).append(item)
        groups = sorted(by_evse.items())
        for index, (evse_id, items) in enumerate(groups):
            await self.core.uplink.call(
                call.ReportChargingProfiles(
                    request_id=request_id,
                    charging_limit_source=CHARGING_LIMIT_SOURCE,
                    evse_id=evse_id,
                    charging_profile=[
                        profile_to_v201(item.profile, self.core.smart.ocpp_transaction_id(item.transaction_id))
                        for item in items
                    ],
                    tbc=True if index < len(groups) - 1 else None,
                )
            )


class Client201(ClientLink, ChargePoint201):
    """The station's end of one 2.0.1 connection: answers every CSMS command."""

    def __init__(
        self,
        protocol: Protocol201,
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

    @on(Action.request_start_transaction)
    def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, **fields: Any) -> Any:
        profile = None
        evse_id = fields.get("evse_id")
        if fields.get("charging_profile") is not None:
            try:
                profile, _ = profile_from_v201(fields["charging_profile"])
            except ProfileFormatError as error:
                self.core.smart.refused(evse_id or 0, fields["charging_profile"], str(error))
                return _refused(call_result.RequestStartTransaction, "InvalidProfile", str(error))
        if evse_id == 0:
            return _refused(call_result.RequestStartTransaction, "UnknownEvse", "evseId must be above 0")
        accepted, transaction = self.core.remote_start(
            evse_id, id_token["id_token"], id_token["type"], remote_start_id, profile
        )
        if not accepted:
            return _refused(call_result.RequestStartTransaction, "Unavailable", "no EVSE can start this session")
        return call_result.RequestStartTransaction(
            status="Accepted", transaction_id=transaction.local_id if transaction is not None else None
        )

    @on(Action.request_stop_transaction)
    def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        stopped = self.core.remote_stop(transaction_id)
        return call_result.RequestStopTransaction(status="Accepted" if stopped else "Rejected")

    @on(Action.unlock_connector)
    def on_unlock_connector(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        if connector_id != 1:
            return call_result.UnlockConnector(status="UnknownConnector")
        # 2.0.1: the cable of an authorized session stays locked; the CSMS must stop the session first.
        outcome = self.core.unlock(evse_id, stop_session=False)
        status = {"Unknown": "UnknownConnector", "Busy": "OngoingAuthorizedTransaction"}.get(outcome, "Unlocked")
        return call_result.UnlockConnector(status=status)

    # --- the station ---------------------------------------------------------------------------

    @on(Action.reset)
    def on_reset(self, type: str, **fields: Any) -> Any:
        if fields.get("evse_id") is not None:
            return _refused(call_result.Reset, "NotSupported", "this station resets as a whole only")
        status = self.core.reset(hard=type == "Immediate", when_idle=type == "OnIdle")
        return call_result.Reset(status=status)

    @on(Action.change_availability)
    def on_change_availability(self, operational_status: str, **fields: Any) -> Any:
        evse = fields.get("evse") or {}
        if evse.get("connector_id") not in (None, 1):
            return _refused(call_result.ChangeAvailability, "UnknownConnector", "each EVSE has connector 1 only")
        status = self.core.change_availability(evse.get("id", 0), operational_status == "Operative")
        return call_result.ChangeAvailability(status=status)

    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for entry in get_variable_data:
            component, variable = entry["component"], entry["variable"]
            attribute = entry.get("attribute_type", "Actual")
            result: dict[str, Any] = {"component": component, "variable": variable, "attribute_type": attribute}
            if attribute != "Actual":
                result["attribute_status"] = "NotSupportedAttributeType"
            else:
                status, value = self.core.variables.get201(
                    component["name"],
                    variable["name"],
                    variable.get("instance"),
                    (component.get("evse") or {}).get("id"),
                )
                result["attribute_status"] = status
                result["attribute_value"] = value
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for entry in set_variable_data:
            component, variable = entry["component"], entry["variable"]
            attribute = entry.get("attribute_type", "Actual")
            result: dict[str, Any] = {"component": component, "variable": variable, "attribute_type": attribute}
            if attribute != "Actual":
                result["attribute_status"] = "NotSupportedAttributeType"
            else:
                status, why = self.core.variables.set201(
                    component["name"],
                    variable["name"],
                    variable.get("instance"),
                    (component.get("evse") or {}).get("id"),
                    entry["attribute_value"],
                )
                result["attribute_status"] = status
                if why is not None:
                    code = "ReadOnly" if why == "read-only" else "InvalidValue"
                    result["attribute_status_info"] = {"reason_code": code, "additional_info": why[:512]}
            results.append(result)
        return call_result.SetVariables(set_variable_result=results)

    @on(Action.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any) -> Any:
        self.core.spawn(self.protocol.send_report(request_id, report_base))
        return call_result.GetBaseReport(status="Accepted")

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> Any:
        self.core.clear_cache()
        return call_result.ClearCache(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, **fields: Any) -> Any:
        evse_id = (fields.get("evse") or {}).get("id")
        if evse_id and self.core.evse(evse_id) is None:
            return _refused(call_result.TriggerMessage, "UnknownEvse", f"no EVSE {evse_id}")
        connection = self.core.uplink
        if requested_message == "BootNotification":
            if connection.accepted_since_boot:  # F06.FR.17: an accepted station does not boot again
                return _refused(call_result.TriggerMessage, "AlreadyAccepted", "the station is already accepted")
            self.core.spawn(connection.boot_now("Triggered"))
        elif requested_message == "Heartbeat":
            self.core.spawn(connection.heartbeat_now())
        elif requested_message == "MeterValues":
            self.core.trigger_meter_values(evse_id)
        elif requested_message == "StatusNotification":
            self.core.trigger_status(evse_id)
        elif requested_message == "TransactionEvent":
            targets = [
                e for e in self.core.evses if e.transaction is not None and (not evse_id or e.evse_id == evse_id)
            ]
            if not targets:
                return _refused(call_result.TriggerMessage, "NoTransaction", "no session to report")
            for evse in targets:
                reading = evse.reading(self.core.now())
                self.core.queue(self.protocol.meter_values(evse, evse.transaction, reading, MeterContext.TRIGGER))
        elif requested_message == "FirmwareStatusNotification":
            self._notify("FirmwareStatusNotification", call.FirmwareStatusNotification(status="Idle"))
        elif requested_message == "LogStatusNotification":
            self._notify("LogStatusNotification", call.LogStatusNotification(status="Idle"))
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
    def on_reserve_now(self, id: int, expiry_date_time: str, id_token: dict[str, Any], **fields: Any) -> Any:
        expires_at = _time(expiry_date_time)
        if expires_at is None:
            self.core.violation(f"ReserveNow: expiryDateTime {expiry_date_time!r} is not a date-time")
            return _refused(call_result.ReserveNow, "InvalidValue", "expiryDateTime is not a date-time")
        group = (fields.get("group_id_token") or {}).get("id_token")
        status = self.core.reservations.reserve(id, fields.get("evse_id") or 0, id_token["id_token"], expires_at, group)
        return call_result.ReserveNow(status=status)

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        cancelled = self.core.reservations.cancel(reservation_id)
        return call_result.CancelReservation(status="Accepted" if cancelled else "Rejected")

    # --- smart charging ------------------------------------------------------------------------

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        try:
            profile, transaction_id = profile_from_v201(charging_profile)
        except ProfileFormatError as error:
            self.core.smart.refused(evse_id, charging_profile, str(error))
            return _refused(call_result.SetChargingProfile, "InvalidProfile", str(error))
        reason = self.core.smart.set_profile(evse_id, profile, transaction_id)
        if reason is not None:
            missing_transaction = profile.purpose is ProfilePurpose.TX and "transaction" in reason
            code = "TxNotFound" if missing_transaction else "InvalidProfile"
            return _refused(call_result.SetChargingProfile, code, reason)
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **fields: Any) -> Any:
        criteria = fields.get("charging_profile_criteria") or {}
        purpose = criteria.get("charging_profile_purpose")
        removed = self.core.smart.clear(
            profile_id=fields.get("charging_profile_id"),
            evse_id=criteria.get("evse_id"),
            purpose=PURPOSES_201[purpose] if purpose else None,
            stack_level=criteria.get("stack_level"),
        )
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on(Action.get_charging_profiles)
    def on_get_charging_profiles(self, request_id: int, charging_profile: dict[str, Any], **fields: Any) -> Any:
        sources = charging_profile.get("charging_limit_source")
        purpose = charging_profile.get("charging_profile_purpose")
        matches = []
        if not sources or CHARGING_LIMIT_SOURCE in sources:
            matches = self.core.smart.matching(
                evse_id=fields.get("evse_id"),
                purpose=PURPOSES_201[purpose] if purpose else None,
                stack_level=charging_profile.get("stack_level"),
                profile_ids=charging_profile.get("charging_profile_id") or (),
            )
        if not matches:
            return call_result.GetChargingProfiles(status="NoProfiles")
        self.core.spawn(self.protocol.send_profiles(request_id, matches))
        return call_result.GetChargingProfiles(status="Accepted")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, duration: int, evse_id: int, **fields: Any) -> Any:
        unit = fields.get("charging_rate_unit")
        schedule = self.core.smart.composite(evse_id, duration, RateUnit(unit) if unit else None)
        if isinstance(schedule, str):
            return _refused(call_result.GetCompositeSchedule, "InvalidValue", schedule)
        body = schedule_to_ocpp(schedule)
        return call_result.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": schedule.duration_s or duration,
                "schedule_start": format_timestamp(schedule.start or self.core.now()),
                "charging_rate_unit": body["charging_rate_unit"],
                "charging_schedule_period": body["charging_schedule_period"],
            },
        )


def _refused(result: Any, code: str, why: str) -> Any:
    """A Rejected answer with its statusInfo (reasonCode at most 20 characters)."""
    return result(status="Rejected", status_info={"reason_code": code[:20], "additional_info": why[:512]})


def _time(text: str) -> datetime | None:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None
