"""Every CSMS command, sent through the CSMS's version-neutral interface (``csms.registry.get(id)``) to the
simulated station over real websockets, is answered as OCPP says, and does what it says."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.device_model import VariableRef
from optivgi_csms.domain.time import utc_now
from optivgi_csms.protocol.commands import ReportBase, ResetKind, TriggerableMessage
from optivgi_csms.server.app import Csms
from optivgi_csms.services.device_model import ref_of
from optivgi_csms.store.models import DeviceVariable, IdTag, Reservation, Station
from simulators.station import SimulatedStation
from tests.simulators.test_station_support import (
    both_versions,
    ev,
    eventually,
    eventually_async,
    running,
    station_config,
    transactions,
)


def status_of(station: SimulatedStation, evse_id: int = 1) -> str:
    return station.snapshot().evses[evse_id - 1].status


async def reservation(csms: Csms, reservation_id: int) -> Reservation:
    async with csms.database.read() as session:
        return await session.get(Reservation, reservation_id)


# --- sessions ---------------------------------------------------------------------------------------


@both_versions
async def test_remote_start_with_the_ev_waiting_and_remote_stop(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version, evse_count=2)) as station:
        commands = csms.registry.get("SIM-1")
        # No EV anywhere yet: the remote start waits on EVSE 2 for a cable.
        assert (await commands.remote_start("TAG-R", evse_id=2)).accepted
        assert status_of(station, 2) == "Preparing"
        # A second remote start on an EVSE already waiting is refused; an unknown EVSE too.
        assert not (await commands.remote_start("TAG-X", evse_id=2)).accepted
        assert not (await commands.remote_start("TAG-X", evse_id=7)).accepted
        await station.plug_in(2, ev(), "IGNORED")  # the cable completes the remote start
        await eventually(lambda: status_of(station, 2) == "Charging")
        await eventually(lambda: station.snapshot().evses[1].transaction_id is not None)
        assert station.recorder.messages["sent:Authorize"] == 0  # AuthorizeRemoteTxRequests is false

        [transaction] = await eventually_async(lambda: transactions(csms, "SIM-1"))
        assert (transaction.evse_id, transaction.id_tag) == (2, "TAG-R")
        assert (await commands.remote_stop(transaction.id)).accepted
        await eventually(lambda: status_of(station, 2) == "Finishing")
        await eventually(lambda: station.snapshot().queued == 0)
    [transaction] = await transactions(csms, "SIM-1")
    assert transaction.stop_reason == "Remote" and transaction.stopped_at is not None
    if version == "2.0.1":
        assert transaction.remote_start_id is not None


@both_versions
async def test_remote_start_of_a_plugged_ev_starts_at_once(make_csms, version: str) -> None:
    csms = await make_csms(unknown_id_tags="reject")
    await add_tag(csms, "TAG-R")
    async with running(station_config(csms, "SIM-1", version)) as station:
        # An EV whose driver's badge was refused waits in Preparing ...
        await station.plug_in(1, ev(), "NOBODY")
        assert status_of(station) == "Preparing"
        # ... until the CSMS starts its session remotely.
        answer = await csms.registry.get("SIM-1").remote_start("TAG-R")
        assert answer.accepted
        if version == "2.0.1":
            # The session began with the request: its id comes with the answer.
            assert answer.details["transaction_id"] == station.snapshot().evses[0].transaction_id
        await eventually(lambda: status_of(station) == "Charging")
        await eventually(lambda: station.snapshot().queued == 0)
    [transaction] = await transactions(csms, "SIM-1")
    assert transaction.id_tag == "TAG-R"


async def add_tag(csms: Csms, id_tag: str, status: str = "Accepted") -> None:
    async def op(session: AsyncSession) -> None:
        session.add(IdTag(id_tag=id_tag, status=status, created_at=utc_now()))

    await csms.database.write(op)


@both_versions
async def test_a_remote_start_times_out_without_a_cable(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version)) as station:
        station.core.variables.set("connection_timeout", 0.2)
        assert (await csms.registry.get("SIM-1").remote_start("TAG-R")).accepted
        assert status_of(station) == "Preparing"
        await eventually(lambda: status_of(station) == "Available", timeout=1.0)


@both_versions
async def test_remote_start_authorizes_first_when_configured(make_csms, version: str) -> None:
    csms = await make_csms(unknown_id_tags="reject")
    async with running(station_config(csms, "SIM-1", version)) as station:
        commands = csms.registry.get("SIM-1")
        if version == "1.6":
            assert (await commands.change_configuration("AuthorizeRemoteTxRequests", "true")).accepted
        else:
            [result] = await commands.set_variables({VariableRef("AuthCtrlr", "AuthorizeRemoteStart"): "true"})
            assert result.status == "Accepted"
        assert (await commands.remote_start("NOBODY")).accepted  # accepted, then refused by Authorize
        await eventually(lambda: station.recorder.messages["sent:Authorize"] == 1)
        await eventually(lambda: status_of(station) == "Available")


# --- the station ------------------------------------------------------------------------------------


@both_versions
async def test_reset_stops_the_session_and_reboots(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version)) as station:
        await station.plug_in(1, ev(), "TAG-1")
        await eventually(lambda: station.snapshot().evses[0].transaction_id is not None)
        commands = csms.registry.get("SIM-1")
        answer = await commands.reset(ResetKind.HARD)
        assert answer.status == "Accepted"
        await eventually(lambda: station.recorder.messages["sent:BootNotification"] == 2)
        await eventually(lambda: station.snapshot().accepted)
        assert station.connection.connects == 2
        await eventually(lambda: station.snapshot().queued == 0)
        # The EV is still plugged in; its session is over.
        assert status_of(station) == "Finishing"
    [transaction] = await transactions(csms, "SIM-1")
    assert transaction.stop_reason == ("HardReset" if version == "1.6" else "ImmediateReset")
    async with csms.database.read() as session:
        row = await session.get(Station, "SIM-1")
    assert row.boot_reason == (None if version == "1.6" else "RemoteReset")


async def test_a_201_soft_reset_waits_for_the_session(csms) -> None:
    async with running(station_config(csms, "SIM-1", "2.0.1")) as station:
        await station.plug_in(1, ev(), "TAG-1")
        await eventually(lambda: station.snapshot().evses[0].transaction_id is not None)
        assert (await csms.registry.get("SIM-1").reset(ResetKind.SOFT)).status == "Scheduled"
        await asyncio.sleep(0.2)
        assert station.recorder.messages["sent:BootNotification"] == 1
        await station.unplug(1)
        await eventually(lambda: station.recorder.messages["sent:BootNotification"] == 2)
    [transaction] = await transactions(csms, "SIM-1")
    assert transaction.stop_reason == "EVDisconnected"


@both_versions
async def test_change_availability(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version, evse_count=2)) as station:
        commands = csms.registry.get("SIM-1")
        assert (await commands.change_availability(2, operative=False)).status == "Accepted"
        assert status_of(station, 2) == "Unavailable"
        assert not (await commands.remote_start("TAG-1", evse_id=2)).accepted
        assert (await commands.change_availability(2, operative=True)).status == "Accepted"
        assert status_of(station, 2) == "Available"

        # With a session running the change waits for its end.
        await station.plug_in(1, ev(), "TAG-1")
        assert (await commands.change_availability(0, operative=False)).status == "Scheduled"
        assert status_of(station, 2) == "Unavailable"
        await eventually(lambda: status_of(station, 1) == "Charging")
        await station.unplug(1)
        assert status_of(station, 1) == "Unavailable"
        assert (await commands.change_availability(5, operative=False)).status == "Rejected"


@both_versions
async def test_unlock_connector(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version)) as station:
        commands = csms.registry.get("SIM-1")
        assert (await commands.unlock_connector(1)).status == "Unlocked"
        await station.plug_in(1, ev(), "TAG-1")
        await eventually(lambda: station.snapshot().evses[0].transaction_id is not None)
        if version == "1.6":
            # 1.6 stops the session, then unlocks.
            assert (await commands.unlock_connector(1)).status == "Unlocked"
            await eventually(lambda: status_of(station) == "Finishing")
            await eventually(lambda: station.snapshot().queued == 0)
            [transaction] = await transactions(csms, "SIM-1")
            assert transaction.stop_reason == "UnlockCommand"
            assert (await commands.unlock_connector(3)).status == "NotSupported"
        else:
            # 2.0.1 keeps an authorized session's cable locked.
            assert (await commands.unlock_connector(1)).status == "OngoingAuthorizedTransaction"
            assert (await commands.unlock_connector(3)).status == "UnknownConnector"


@both_versions
async def test_trigger_message(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version)) as station:
        commands = csms.registry.get("SIM-1")
        sent = station.recorder.messages
        before = dict(sent)
        for message in (
            TriggerableMessage.HEARTBEAT,
            TriggerableMessage.STATUS_NOTIFICATION,
            TriggerableMessage.METER_VALUES,
            TriggerableMessage.FIRMWARE_STATUS_NOTIFICATION,
        ):
            assert (await commands.trigger_message(message)).status == "Accepted", message
        await eventually(lambda: sent["sent:Heartbeat"] == before.get("sent:Heartbeat", 0) + 1)
        await eventually(lambda: sent["sent:MeterValues"] == 1)
        await eventually(lambda: sent["sent:FirmwareStatusNotification"] == 1)
        assert sent["sent:StatusNotification"] > before.get("sent:StatusNotification", 0)
        assert (await commands.trigger_message(TriggerableMessage.STATUS_NOTIFICATION, evse_id=4)).status == "Rejected"
        if version == "1.6":
            assert (await commands.trigger_message(TriggerableMessage.BOOT_NOTIFICATION)).status == "Accepted"
            await eventually(lambda: sent["sent:BootNotification"] == 2)
            diagnostics = TriggerableMessage.DIAGNOSTICS_STATUS_NOTIFICATION
            assert (await commands.trigger_message(diagnostics)).status == "Accepted"
            await eventually(lambda: sent["sent:DiagnosticsStatusNotification"] == 1)
        else:
            # An accepted 2.0.1 station does not boot again (F06.FR.17).
            assert (await commands.trigger_message(TriggerableMessage.BOOT_NOTIFICATION)).status == "Rejected"
            assert (await commands.trigger_message(TriggerableMessage.LOG_STATUS_NOTIFICATION)).accepted
            assert (await commands.trigger_message(TriggerableMessage.TRANSACTION_EVENT)).status == "Rejected"
            await station.plug_in(1, ev(), "TAG-1")
            events = sent["sent:TransactionEvent"]
            assert (await commands.trigger_message(TriggerableMessage.TRANSACTION_EVENT, evse_id=1)).accepted
            await eventually(lambda: sent["sent:TransactionEvent"] >= events + 1)
        assert station.recorder.protocol_errors == []


@both_versions
async def test_clear_cache_empties_the_authorization_cache(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version)) as station:
        await station.plug_in(1, ev(), "TAG-1")
        assert station.core.auth_cache == {"TAG-1": "Accepted"}
        assert (await csms.registry.get("SIM-1").clear_cache()).accepted
        assert station.core.auth_cache == {}


# --- reservations -----------------------------------------------------------------------------------


@both_versions
async def test_reserve_now_holds_the_evse_for_its_tag(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version, evse_count=2)) as station:
        commands = csms.registry.get("SIM-1")
        answer = await commands.reserve_now(1, "TAG-R", utc_now() + timedelta(minutes=5))
        assert answer.accepted
        assert status_of(station, 1) == "Reserved"
        # Someone else cannot start there; the holder can, and uses the reservation.
        await station.plug_in(1, ev("EV-X"), "TAG-X")
        assert station.snapshot().evses[0].transaction_id is None
        await station.unplug(1)
        assert status_of(station, 1) == "Reserved"
        await station.plug_in(1, ev(), "TAG-R")
        await eventually(lambda: station.snapshot().evses[0].transaction_id is not None)
        # An EVSE in use cannot be reserved; an unknown one neither.
        assert (await commands.reserve_now(1, "TAG-Y", utc_now() + timedelta(minutes=5))).status == "Occupied"
        assert (await commands.reserve_now(9, "TAG-Y", utc_now() + timedelta(minutes=5))).status == "Rejected"
        await eventually(lambda: station.snapshot().queued == 0)
    [transaction] = await transactions(csms, "SIM-1")
    assert transaction.reservation_id == answer.reservation_id
    assert (await reservation(csms, answer.reservation_id)).status == "Used"


@both_versions
async def test_a_reservation_expires_or_is_cancelled(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version, evse_count=2)) as station:
        commands = csms.registry.get("SIM-1")
        short = await commands.reserve_now(1, "TAG-R", utc_now() + timedelta(seconds=0.3))
        held = await commands.reserve_now(2, "TAG-S", utc_now() + timedelta(minutes=5))
        assert short.accepted and held.accepted
        await eventually(lambda: status_of(station, 1) == "Available", timeout=1.0)
        if version == "2.0.1":  # 2.0.1 tells the CSMS (ReservationStatusUpdate)
            assert (await eventually_async(lambda: _status(csms, short.reservation_id, "Expired"))).status == "Expired"
        assert (await commands.cancel_reservation(held.reservation_id)).accepted
        assert status_of(station, 2) == "Available"
        assert not (await commands.cancel_reservation(held.reservation_id)).accepted


async def _status(csms: Csms, reservation_id: int, status: str) -> Reservation | None:
    row = await reservation(csms, reservation_id)
    return row if row.status == status else None


# --- settings ---------------------------------------------------------------------------------------


async def test_get_and_change_configuration_16(csms) -> None:
    # Capabilities read-only, as on real stations (the simulator's default lets a CSMS change them).
    async with running(station_config(csms, "SIM-1", "1.6", evse_count=2, limits_writable=False)) as station:
        commands = csms.registry.get("SIM-1")
        everything = await commands.get_configuration()
        keys = {key.key: (key.value, key.readonly) for key in everything.keys}
        for required in (
            "HeartbeatInterval",
            "MeterValueSampleInterval",
            "MeterValuesSampledData",
            "ChargeProfileMaxStackLevel",
            "ChargingScheduleAllowedChargingRateUnit",
            "ChargingScheduleMaxPeriods",
            "MaxChargingProfilesInstalled",
            "NumberOfConnectors",
            "AuthorizeRemoteTxRequests",
            "SupportedFeatureProfiles",
        ):
            assert required in keys, required
        assert keys["NumberOfConnectors"] == ("2", True)
        assert keys["ChargingScheduleAllowedChargingRateUnit"] == ("Current,Power", True)
        assert keys["ChargeProfileMaxStackLevel"] == ("8", True)

        some = await commands.get_configuration(["heartbeatinterval", "NoSuchKey"])
        assert [key.key for key in some.keys] == ["HeartbeatInterval"] and some.unknown_keys == ("NoSuchKey",)
        assert (await commands.change_configuration("ChargeProfileMaxStackLevel", "20")).status == "Rejected"
        assert (await commands.change_configuration("NoSuchKey", "1")).status == "NotSupported"
        assert (await commands.change_configuration("LocalPreAuthorize", "maybe")).status == "Rejected"
        assert (await commands.change_configuration("LocalPreAuthorize", "true")).status == "Accepted"
        assert station.core.variables["local_pre_authorize"] is True


async def test_get_set_variables_and_base_report_201(csms) -> None:
    async with running(station_config(csms, "SIM-1", "2.0.1", evse_count=2, limits_writable=False)) as station:
        commands = csms.registry.get("SIM-1")
        refs = [
            VariableRef("SmartChargingCtrlr", "ProfileStackLevel"),
            VariableRef("SmartChargingCtrlr", "RateUnit"),
            VariableRef("SmartChargingCtrlr", "Entries", variable_instance="ChargingProfiles"),
            VariableRef("EVSE", "AvailabilityState", evse_id=2),
            VariableRef("EVSE", "AvailabilityState", evse_id=5),
            VariableRef("OCPPCommCtrlr", "NoSuchVariable"),
            VariableRef("NoSuchCtrlr", "Enabled"),
            VariableRef("OCPPCommCtrlr", "HeartbeatInterval", attribute="MaxSet"),
        ]
        results = [(result.status, result.value) for result in await commands.get_variables(refs)]
        assert results == [
            ("Accepted", "8"),
            ("Accepted", "A,W"),
            ("Accepted", "16"),
            ("Accepted", "Available"),
            ("UnknownComponent", None),
            ("UnknownVariable", None),
            ("UnknownComponent", None),
            ("NotSupportedAttributeType", None),
        ]
        results = await commands.set_variables(
            {
                VariableRef("SmartChargingCtrlr", "ProfileStackLevel"): "20",
                VariableRef("SmartChargingCtrlr", "LimitChangeSignificance"): "25",
                VariableRef("OCPPCommCtrlr", "HeartbeatInterval"): "ten",
            }
        )
        assert [(result.status, result.reason) for result in results] == [
            ("Rejected", "ReadOnly"),
            ("Accepted", None),
            ("Rejected", "InvalidValue"),
        ]
        assert station.core.variables["limit_change_significance"] == 25

        answer = await commands.get_base_report(ReportBase.FULL_INVENTORY)
        assert answer.accepted
        stored = await eventually_async(lambda: _device_model(csms, "SIM-1", minimum=30))
        assert stored[VariableRef("SampledDataCtrlr", "TxUpdatedInterval")] == "0"
        assert stored[VariableRef("SmartChargingCtrlr", "Enabled")] == "true"
        assert stored[VariableRef("EVSE", "AvailabilityState", evse_id=2)] == "Available"
    assert station.recorder.messages["sent:NotifyReport"] >= 2  # chunked, tbc on all but the last
    assert station.recorder.protocol_errors == []


async def _device_model(csms: Csms, station_id: str, minimum: int) -> dict[VariableRef, str | None] | None:
    async with csms.database.read() as session:
        rows = list(await session.scalars(select(DeviceVariable).where(DeviceVariable.station_id == station_id)))
    return {ref_of(row): row.value for row in rows} if len(rows) >= minimum else None


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_data_transfer_is_answered_unknown_vendor(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version)):
        session = csms.registry.get("SIM-1")
        call = session._call.DataTransfer(vendor_id="acme")  # type: ignore[attr-defined]
        result = await session.request(call)  # type: ignore[attr-defined]
        assert result.status == "UnknownVendorId"
