"""The simulated station against our CSMS over real websockets, in both OCPP versions: boot, heartbeats,
statuses, a whole session with its meter values in the CSMS's database, settings the CSMS changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.device_model import VariableRef
from optivgi_csms.domain.time import utc_now
from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import Connector, Station, StatusNotification
from tests.simulators.test_station_support import (
    both_versions,
    collapse,
    ev,
    eventually,
    eventually_async,
    meter_values,
    running,
    station_config,
    statuses,
    transaction_events,
    transactions,
)
from tests.support.stations import register

ENERGY = "Energy.Active.Import.Register"


async def station_row(csms: Csms, station_id: str) -> Station | None:
    async with csms.database.read() as session:
        return await session.get(Station, station_id)


async def connectors(csms: Csms, station_id: str) -> dict[int, str]:
    async with csms.database.read() as session:
        rows = await session.scalars(select(Connector).where(Connector.station_id == station_id))
        return {row.evse_id: row.status for row in rows}


async def set_setting(csms: Csms, station_id: str, version: str, key16: str, ref: VariableRef, value: str) -> str:
    """Change one setting the way the CSMS's version does it; returns the station's answer."""
    commands = csms.registry.get(station_id)
    if version == "1.6":
        return (await commands.change_configuration(key16, value)).status
    [result] = await commands.set_variables({ref: value})
    return result.status


@both_versions
async def test_boot_identity_statuses_and_heartbeats(csms, version: str) -> None:
    config = station_config(csms, "SIM-1", version, evse_count=2, serial_number="SN-42", vendor="Acme", model="X1")
    async with running(config) as station:
        row = await station_row(csms, "SIM-1")
        assert (row.vendor, row.model, row.serial_number, row.boot_status) == ("Acme", "X1", "SN-42", "Accepted")
        assert (row.ocpp_version, row.firmware_version) == (version, "1.0")
        expected = {1: "Available", 2: "Available"} | ({0: "Available"} if version == "1.6" else {})
        assert await eventually_async(lambda: _has_statuses(csms, "SIM-1", expected))
        # The boot answer's interval (the CSMS's 300 s) became the heartbeat interval ...
        assert station.core.variables["heartbeat_interval"] == 300
        assert station.recorder.messages["sent:Heartbeat"] == 0
        # ... and a shorter one set by the CSMS takes effect at once.
        heartbeat = VariableRef("OCPPCommCtrlr", "HeartbeatInterval")
        assert await set_setting(csms, "SIM-1", version, "HeartbeatInterval", heartbeat, "0.2") == "Accepted"
        await eventually(lambda: station.recorder.messages["sent:Heartbeat"] >= 3, timeout=2.0)
        assert (await station_row(csms, "SIM-1")).last_heartbeat_at is not None
    assert station.recorder.protocol_errors == []


async def _has_statuses(csms: Csms, station_id: str, expected: dict[int, str]) -> bool:
    return await connectors(csms, station_id) == expected


@both_versions
async def test_a_whole_session_is_stored_with_its_meter_values(csms, version: str) -> None:
    config = station_config(csms, "SIM-1", version, meter_interval_s=0.1)
    async with running(config) as station:
        await station.plug_in(1, ev(), "TAG-1")
        await eventually(lambda: station.snapshot().evses[0].status == "Charging")
        await eventually(lambda: station.snapshot().evses[0].transaction_id is not None)
        # Several sample intervals (0.1 s each): waited for, not slept, so a busy machine cannot cut it short.
        await eventually_async(lambda: _periodic_energy_readings(csms, 4), timeout=10.0)
        await station.unplug(1)
        await eventually(lambda: station.snapshot().queued == 0)
        energy_wh = station.core.evses[0].energy_wh
    [transaction] = await transactions(csms, "SIM-1")
    assert transaction.stopped_at is not None and transaction.stop_reason == "EVDisconnected"
    assert transaction.id_tag == "TAG-1"
    assert transaction.meter_start_wh == 0
    assert transaction.meter_stop_wh == pytest.approx(energy_wh, abs=1)
    # 11 kW for half a wall second or more at 60x: about 100 Wh, more on a slow machine; in Wh, not kWh.
    assert 70 < transaction.meter_stop_wh < 2000

    samples = await meter_values(csms, "SIM-1")
    assert all(sample.transaction_id == transaction.id for sample in samples)
    periodic = [s for s in samples if s.context == "Sample.Periodic"]
    readings = [s.value_numeric for s in periodic if s.measurand == ENERGY]
    assert len(readings) >= 4 and readings == sorted(readings)
    by_measurand = {(s.measurand, s.phase, s.unit) for s in periodic}
    assert by_measurand == {
        (ENERGY, None, "Wh"),
        ("Power.Active.Import", None, "W"),
        ("Current.Import", "L1", "A"),
        ("Current.Import", "L2", "A"),
        ("Current.Import", "L3", "A"),
        ("Current.Offered", None, "A"),
        ("SoC", None, "Percent"),
    }
    power = [s.value_numeric for s in periodic if s.measurand == "Power.Active.Import"]
    assert power and all(value == pytest.approx(11000, abs=1) for value in power)
    currents = [s.value_numeric for s in periodic if s.measurand == "Current.Import"]
    assert all(value == pytest.approx(15.94, abs=0.01) for value in currents)  # 11 kW / 3 / 230 V
    soc = [s.value_numeric for s in periodic if s.measurand == "SoC"]
    assert soc == sorted(soc) and 20 <= soc[0] < soc[-1] < 80
    # 1.6 has the start reading in StartTransaction's meterStart; its StopTransaction carries the end sample.
    contexts = {s.context for s in samples if s.measurand == ENERGY}
    assert contexts == {"Sample.Periodic", "Transaction.End"} | ({"Transaction.Begin"} if version == "2.0.1" else set())

    history = collapse(await statuses(csms, "SIM-1"))
    if version == "1.6":
        assert history == ["Available", "Preparing", "Charging", "Finishing", "Available"]
    else:
        assert history == ["Available", "Occupied", "Available"]
        events = await transaction_events(csms, "SIM-1")
        assert [e.seq_no for e in events] == list(range(len(events)))
        assert (events[0].event_type, events[0].trigger_reason, events[0].charging_state) == (
            "Started",
            "Authorized",
            "Charging",
        )
        assert (events[-1].event_type, events[-1].trigger_reason, events[-1].stopped_reason) == (
            "Ended",
            "EVCommunicationLost",
            "EVDisconnected",
        )
        assert {e.trigger_reason for e in events[1:-1]} == {"MeterValuePeriodic"}
    assert station.recorder.protocol_errors == []


@both_versions
async def test_the_sample_interval_set_by_the_csms_takes_effect(csms, version: str) -> None:
    config = station_config(csms, "SIM-1", version, meter_interval_s=0)
    interval = VariableRef("SampledDataCtrlr", "TxUpdatedInterval")
    async with running(config) as station:
        await station.plug_in(1, ev(), "TAG-1")
        await eventually(lambda: station.snapshot().evses[0].transaction_id is not None)
        await asyncio.sleep(0.2)
        assert not [s for s in await meter_values(csms, "SIM-1", ENERGY) if s.context == "Sample.Periodic"]

        assert await set_setting(csms, "SIM-1", version, "MeterValueSampleInterval", interval, "0.1") == "Accepted"
        set_at = asyncio.get_running_loop().time()

        async def periodic() -> list[Any]:
            return [s for s in await meter_values(csms, "SIM-1", ENERGY) if s.context == "Sample.Periodic"]

        # Samples every 0.1 s from now on: at least three soon, and never faster than the interval.
        await eventually_async(lambda: _at_least(periodic, 3), timeout=5.0)
        elapsed = asyncio.get_running_loop().time() - set_at
        assert len(await periodic()) <= elapsed / 0.1 + 2

        # 0 switches periodic samples off again; a value that is no number is refused.
        assert await set_setting(csms, "SIM-1", version, "MeterValueSampleInterval", interval, "0") == "Accepted"
        assert await set_setting(csms, "SIM-1", version, "MeterValueSampleInterval", interval, "soon") == "Rejected"
        await eventually(lambda: station.snapshot().queued == 0)
        before = len(await meter_values(csms, "SIM-1", ENERGY))
        await asyncio.sleep(0.2)
        assert len(await meter_values(csms, "SIM-1", ENERGY)) == before


@both_versions
async def test_sampled_measurands_set_by_the_csms_are_what_the_station_sends(csms, version: str) -> None:
    config = station_config(csms, "SIM-1", version, meter_interval_s=0.1)
    measurands = VariableRef("SampledDataCtrlr", "TxUpdatedMeasurands")
    async with running(config) as station:
        wanted = "Energy.Active.Import.Register,Voltage"
        assert await set_setting(csms, "SIM-1", version, "MeterValuesSampledData", measurands, wanted) == "Accepted"
        refused = "Energy.Active.Import.Register,Temperature"
        assert await set_setting(csms, "SIM-1", version, "MeterValuesSampledData", measurands, refused) == "Rejected"
        await station.plug_in(1, ev(phases=1, max_kw=7.4), "TAG-1")
        await asyncio.sleep(0.35)
    periodic = [s for s in await meter_values(csms, "SIM-1") if s.context == "Sample.Periodic"]
    assert periodic
    # A one-phase EV on a three-phase station: one phase in use, one voltage.
    assert {(s.measurand, s.phase) for s in periodic} == {(ENERGY, None), ("Voltage", "L1-N")}


@both_versions
async def test_an_unknown_tag_starts_no_session(make_csms, version: str) -> None:
    csms = await make_csms(unknown_id_tags="reject")
    async with running(station_config(csms, "SIM-1", version)) as station:
        await station.plug_in(1, ev(), "NOBODY")
        assert station.snapshot().evses[0].status == "Preparing"
        await asyncio.sleep(0.2)
        assert station.snapshot().evses[0].power_kw == 0
    assert await transactions(csms, "SIM-1") == []
    assert station.recorder.messages["sent:Authorize"] == 1


@both_versions
async def test_basic_auth_with_the_station_password(make_csms, version: str) -> None:
    csms = await make_csms(security_profile=1)
    await register(csms, "SIM-PW", "s3cret-password")
    async with running(station_config(csms, "SIM-PW", version, password="s3cret-password")) as station:
        assert station.snapshot().accepted
    wrong = station_config(csms, "SIM-PW", version, password="wrong-password")
    async with running(wrong, accepted=False) as refused:
        await eventually(lambda: len(refused.recorder.protocol_errors) >= 2)
        assert not refused.snapshot().connected
    assert "HTTP 401" in refused.recorder.protocol_errors[0]["description"]


@pytest.mark.slow
@both_versions
async def test_a_rejected_boot_is_retried_after_the_interval_the_csms_gave(make_csms, version: str) -> None:
    csms = await make_csms(boot_policy="registered", heartbeat_interval=3)
    async with running(station_config(csms, "SIM-NEW", version), accepted=False) as station:
        await eventually_async(lambda: _boot_status(csms, "SIM-NEW", "Rejected"))
        assert station.recorder.messages["sent:BootNotification"] == 1
        await asyncio.sleep(1.0)
        # Rejected: no other message, and no new boot before the interval.
        assert sum(station.recorder.messages.values()) == 1

        async def registered(session: AsyncSession) -> None:
            (await session.get(Station, "SIM-NEW")).registered = True

        await csms.database.write(registered)
        await eventually(lambda: station.snapshot().accepted, timeout=6.0)
        assert station.recorder.messages["sent:BootNotification"] == 2
    assert station.recorder.protocol_errors == []


async def _boot_status(csms: Csms, station_id: str, status: str) -> bool:
    row = await station_row(csms, station_id)
    return row is not None and row.boot_status == status


async def test_plug_in_refuses_an_occupied_or_unknown_evse(csms) -> None:
    async with running(station_config(csms, "SIM-1", "1.6")) as station:
        await station.plug_in(1, ev(), "TAG-1")
        with pytest.raises(ValueError, match="already has an EV"):
            await station.plug_in(1, ev("EV-2"), "TAG-2")
        with pytest.raises(ValueError, match="no EVSE 2"):
            await station.plug_in(2, ev("EV-2"), "TAG-2")


@both_versions
async def test_a_fault_stops_the_delivery_until_it_clears(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version)) as station:
        await station.plug_in(1, ev(), "TAG-1")
        await eventually(lambda: station.snapshot().evses[0].status == "Charging")
        station.set_fault(1, "GroundFailure")
        assert station.snapshot().evses[0].status == "Faulted"
        assert station.snapshot().evses[0].power_kw == 0
        reservation = await csms.registry.get("SIM-1").reserve_now(1, "TAG-R", utc_now() + timedelta(minutes=1))
        assert reservation.status == "Faulted"
        station.set_fault(1, None)
        await eventually(lambda: station.snapshot().evses[0].status == "Charging")
        await eventually(lambda: station.snapshot().queued == 0)
    history = collapse(await statuses(csms, "SIM-1"))
    if version == "1.6":
        assert history == ["Available", "Preparing", "Charging", "Faulted", "Charging"]
        async with csms.database.read() as session:
            codes = await session.scalars(
                select(StatusNotification.error_code).where(StatusNotification.status == "Faulted")
            )
            assert list(codes) == ["GroundFailure"]
    else:
        assert history == ["Available", "Occupied", "Faulted", "Occupied"]


async def _at_least(read: Any, count: int) -> bool:
    return len(await read()) >= count


async def _periodic_energy_readings(csms: Csms, count: int) -> bool:
    samples = await meter_values(csms, "SIM-1", ENERGY)
    return sum(1 for sample in samples if sample.context == "Sample.Periodic") >= count
