"""Smart charging on the simulated station, driven by our CSMS over real websockets in both versions:
profiles lower what the EV draws (and the meter shows it) within the configured delay, profiles the station
cannot take are refused, and GetCompositeSchedule answers what the station applies."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import select

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
)
from optivgi_csms.domain.device_model import VariableRef
from optivgi_csms.domain.time import utc_now
from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import ChargingProfileRecord, ReportedChargingProfile, Transaction
from simulators.smart_charging import ProfileRules
from simulators.station import SimulatedStation
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


def profile(
    profile_id: int,
    purpose: ProfilePurpose,
    *limits: tuple[int, float],
    stack_level: int = 0,
    unit: RateUnit = RateUnit.AMPERE,
    kind: ProfileKind = ProfileKind.RELATIVE,
    transaction_id: int | None = None,
    start: datetime | None = None,
    number_phases: int | None = None,
) -> ChargingProfile:
    """A profile with periods ``(start_s, limit)``."""
    return ChargingProfile(
        id=profile_id,
        stack_level=stack_level,
        purpose=purpose,
        kind=kind,
        schedule=ChargingSchedule(
            unit=unit,
            periods=tuple(SchedulePeriod(start_s, limit, number_phases) for start_s, limit in limits),
            start=start,
        ),
        transaction_id=transaction_id,
    )


def current_a(station: SimulatedStation) -> float:
    return station.core.evses[0].current_a


async def started(csms: Csms, station: SimulatedStation, station_id: str = "SIM-1") -> Transaction:
    """Plug in an EV and return the CSMS's transaction once the CSMS has it."""
    await station.plug_in(1, ev(), "TAG-1")
    await eventually(lambda: station.snapshot().evses[0].transaction_id is not None)
    [transaction] = await eventually_async(lambda: transactions(csms, station_id))
    return transaction


async def answers(csms: Csms, station_id: str) -> list[tuple[int, str | None]]:
    async with csms.database.read() as session:
        rows = await session.scalars(
            select(ChargingProfileRecord)
            .where(ChargingProfileRecord.station_id == station_id)
            .order_by(ChargingProfileRecord.id)
        )
        return [(row.profile_id, row.status) for row in rows]


@both_versions
async def test_a_tx_profile_lowers_the_draw_within_the_delay(csms, version: str) -> None:
    # A delay long enough that a loaded machine cannot sleep through it before the check "still on the way".
    config = station_config(csms, "SIM-1", version, profile_apply_delay_s=1.0, meter_interval_s=0.1)
    async with running(config) as station:
        transaction = await started(csms, station)
        await eventually(lambda: current_a(station) > 15.9)  # 11 kW over three phases: 15.94 A
        commands = csms.registry.get("SIM-1")
        tx = profile(1, ProfilePurpose.TX, (0, 10.0), transaction_id=transaction.id)
        sent_at = asyncio.get_running_loop().time()
        assert (await commands.set_charging_profile(1, tx)).accepted
        await asyncio.sleep(0.2)
        assert current_a(station) > 15.9  # still on the way
        await eventually(lambda: current_a(station) == 10.0, timeout=2.0)
        assert 1.0 <= asyncio.get_running_loop().time() - sent_at < 1.0 + 0.5  # the delay plus a tick or so
        assert station.snapshot().evses[0].power_kw == pytest.approx(6.9)  # 10 A x 230 V x 3
        await asyncio.sleep(0.3)
        await station.unplug(1)
        await eventually(lambda: station.snapshot().queued == 0)
        # The Tx profile ended with its session.
        assert station.core.store.installed() == []
    # The meter told the CSMS the truth: 15.94 A before, 10 A after.
    currents = [s.value_numeric for s in await meter_values(csms, "SIM-1", "Current.Import") if s.phase == "L1"]
    assert currents[0] == pytest.approx(15.94) and currents[-1] == pytest.approx(10.0)
    offered = [s.value_numeric for s in await meter_values(csms, "SIM-1", "Current.Offered")]
    assert offered[0] == 32.0 and offered[-1] == 10.0
    assert await answers(csms, "SIM-1") == [(1, "Accepted")]
    [event] = station.recorder.profiles
    assert (event.evse_id, event.accepted, event.profile["purpose"]) == (1, True, "Tx")
    if version == "2.0.1":
        triggers = [e.trigger_reason for e in await transaction_events(csms, "SIM-1")]
        assert "ChargingRateChanged" in triggers


@both_versions
async def test_zero_amps_suspends_the_evse_and_a_full_ev_suspends_itself(csms, version: str) -> None:
    config = station_config(csms, "SIM-1", version, profile_apply_delay_s=0.0)
    async with running(config, time_scale=600) as station:
        commands = csms.registry.get("SIM-1")
        default = profile(1, ProfilePurpose.TX_DEFAULT, (0, 0.0))
        assert (await commands.set_charging_profile(0, default)).accepted
        await station.plug_in(1, ev(soc_initial=0.78, soc_target=0.8), "TAG-1")
        await eventually(lambda: station.snapshot().evses[0].status == "SuspendedEVSE")
        # 5 A is below the pilot minimum: still nothing. 16 A: it charges, to full (1.2 kWh at 600x).
        assert (await commands.clear_charging_profile(profile_id=1)).accepted
        await eventually(lambda: station.snapshot().evses[0].status == "Charging")
        await eventually(lambda: station.snapshot().evses[0].status == "SuspendedEV", timeout=3.0)
        assert station.snapshot().evses[0].soc == pytest.approx(0.8)
        await station.unplug(1)
        await eventually(lambda: station.snapshot().queued == 0)
    if version == "1.6":
        assert collapse(await statuses(csms, "SIM-1")) == [
            "Available",
            "Preparing",
            "SuspendedEVSE",
            "Charging",
            "SuspendedEV",
            "Finishing",
            "Available",
        ]
    else:
        states = [e.charging_state for e in await transaction_events(csms, "SIM-1") if e.charging_state]
        assert collapse(states) == ["SuspendedEVSE", "Charging", "SuspendedEV", "Idle"]


@both_versions
async def test_profiles_the_station_cannot_take_are_rejected(csms, version: str) -> None:
    rules = ProfileRules(allowed_units=frozenset({RateUnit.AMPERE}), max_stack_level=3, max_periods=4)
    async with running(station_config(csms, "SIM-1", version, rules=rules)) as station:
        commands = csms.registry.get("SIM-1")
        refused = [
            # a unit the station does not allow
            (1, profile(1, ProfilePurpose.TX_DEFAULT, (0, 7000.0), unit=RateUnit.WATT)),
            # a stack level above ChargeProfileMaxStackLevel
            (1, profile(2, ProfilePurpose.TX_DEFAULT, (0, 16.0), stack_level=4)),
            # more periods than ChargingScheduleMaxPeriods
            (1, profile(3, ProfilePurpose.TX_DEFAULT, *[(i * 60, 16.0) for i in range(5)])),
            # a Tx profile with no session running
            (1, profile(4, ProfilePurpose.TX, (0, 16.0))),
            # an EVSE the station does not have
            (3, profile(5, ProfilePurpose.TX_DEFAULT, (0, 16.0))),
        ]
        for evse_id, item in refused:
            assert (await commands.set_charging_profile(evse_id, item)).status == "Rejected", item.id
        assert (await commands.set_charging_profile(1, profile(6, ProfilePurpose.TX_DEFAULT, (0, 16.0)))).accepted
        if version == "2.0.1":
            # Smart charging switched off in the device model: every profile is refused.
            [result] = await commands.set_variables({VariableRef("SmartChargingCtrlr", "Enabled"): "false"})
            assert result.status == "Accepted"
            answer = await commands.set_charging_profile(1, profile(7, ProfilePurpose.TX_DEFAULT, (0, 16.0)))
            assert answer.status == "Rejected"
            assert "disabled" in answer.details["status_info"]["additional_info"]
        # Clearing what is not there is Unknown.
        assert (await commands.clear_charging_profile(profile_id=99)).status == "Unknown"
    assert [item.profile.id for item in station.core.store.installed()] == [6]
    reasons = [event.reason for event in station.recorder.profiles if not event.accepted]
    assert len(reasons) == len(refused) + (version == "2.0.1")
    assert all(reasons)
    assert [status for _, status in await answers(csms, "SIM-1")].count("Rejected") == len(reasons)


@both_versions
async def test_capabilities_the_csms_may_change_take_effect(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version, limits_writable=True)) as station:
        commands = csms.registry.get("SIM-1")

        async def change(key16: str, ref: VariableRef, value16: str, value201: str) -> str:
            if version == "1.6":
                return (await commands.change_configuration(key16, value16)).status
            [result] = await commands.set_variables({ref: value201})
            return result.status

        stack = VariableRef("SmartChargingCtrlr", "ProfileStackLevel")
        units = VariableRef("SmartChargingCtrlr", "RateUnit")
        assert await change("ChargeProfileMaxStackLevel", stack, "2", "2") == "Accepted"
        assert await change("ChargingScheduleAllowedChargingRateUnit", units, "Current", "A") == "Accepted"
        assert await change("ChargingScheduleAllowedChargingRateUnit", units, "", "") == "Rejected"
        high = profile(1, ProfilePurpose.TX_DEFAULT, (0, 16.0), stack_level=3)
        watts = profile(2, ProfilePurpose.TX_DEFAULT, (0, 7000.0), unit=RateUnit.WATT)
        assert (await commands.set_charging_profile(1, high)).status == "Rejected"
        assert (await commands.set_charging_profile(1, watts)).status == "Rejected"
        assert (
            await commands.set_charging_profile(1, profile(3, ProfilePurpose.TX_DEFAULT, (0, 16.0), stack_level=2))
        ).accepted
        if version == "1.6":
            [key] = (await commands.get_configuration(["ChargingScheduleAllowedChargingRateUnit"])).keys
            assert (key.value, key.readonly) == ("Current", False)
        assert station.core.store.rules.max_stack_level == 2


@both_versions
async def test_the_composite_schedule_is_what_the_station_applies(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version, profile_apply_delay_s=0.0)) as station:
        commands = csms.registry.get("SIM-1")
        now = utc_now().replace(microsecond=0)
        station_max = profile(1, ProfilePurpose.STATION_MAX, (0, 20.0), kind=ProfileKind.ABSOLUTE, start=now)
        default = profile(
            2, ProfilePurpose.TX_DEFAULT, (0, 16.0), (3600, 8.0), (7200, 25.0), kind=ProfileKind.ABSOLUTE, start=now
        )
        assert (await commands.set_charging_profile(0, station_max)).accepted
        assert (await commands.set_charging_profile(1, default)).accepted

        answer = await commands.get_composite_schedule(1, 10_800, RateUnit.AMPERE)
        assert answer.status == "Accepted"
        schedule = answer.composite.schedule
        assert schedule.unit is RateUnit.AMPERE
        assert [(p.start_s, p.limit) for p in schedule.periods][:1] == [(0, 16.0)]
        starts = {p.start_s: p.limit for p in schedule.periods}
        # 16 A, 8 A after an hour, then the station maximum caps the 25 A period at 20 A.
        assert list(starts.values()) == [16.0, 8.0, 20.0]
        assert list(starts)[1] == pytest.approx(3600, abs=2) and list(starts)[2] == pytest.approx(7200, abs=2)
        assert abs((answer.composite.start - now).total_seconds()) < 3

        # In W on three phases at 230 V.
        watts = await commands.get_composite_schedule(1, 600, RateUnit.WATT)
        assert [p.limit for p in watts.composite.schedule.periods] == [11040.0]

        # And it is what the EV gets.
        await station.plug_in(1, ev(max_kw=22), "TAG-1")
        await eventually(lambda: current_a(station) == 16.0)
        assert (await commands.get_composite_schedule(7, 600)).status == "Rejected"


async def test_a_unit_the_station_does_not_support_gets_no_composite(csms) -> None:
    rules = ProfileRules(allowed_units=frozenset({RateUnit.AMPERE}))
    async with running(station_config(csms, "SIM-1", "2.0.1", rules=rules)):
        commands = csms.registry.get("SIM-1")
        assert (await commands.get_composite_schedule(1, 600, RateUnit.WATT)).status == "Rejected"
        assert (await commands.get_composite_schedule(1, 600)).status == "Accepted"


@both_versions
async def test_a_remote_start_with_a_tx_profile_charges_under_it(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version)) as station:
        commands = csms.registry.get("SIM-1")
        tx = profile(5, ProfilePurpose.TX, (0, 8.0))
        assert (await commands.remote_start("TAG-R", evse_id=1, charging_profile=tx)).accepted
        await station.plug_in(1, ev(), "IGNORED")
        await eventually(lambda: station.snapshot().evses[0].status == "Charging")
        # No apply delay at the start: the station knew the limit before it closed the contactor.
        assert current_a(station) == 8.0
        [installed] = station.core.store.installed(1)
        assert installed.profile.purpose is ProfilePurpose.TX


@both_versions
async def test_the_station_maximum_is_shared_by_its_evses(csms, version: str) -> None:
    config = station_config(csms, "SIM-1", version, evse_count=2, profile_apply_delay_s=0.0)
    async with running(config) as station:
        commands = csms.registry.get("SIM-1")
        station_max = profile(1, ProfilePurpose.STATION_MAX, (0, 20.0), kind=ProfileKind.ABSOLUTE)
        assert (await commands.set_charging_profile(0, station_max)).accepted
        # Without startSchedule it is in force from its installation, which a composite asked now shows.
        composite = (await commands.get_composite_schedule(0, 60)).composite.schedule
        assert [(p.start_s, p.limit) for p in composite.periods] == [(0, 20.0)]
        await station.plug_in(1, ev("EV-1"), "TAG-1")
        await eventually(lambda: station.core.evses[0].current_a > 15.9)  # alone: its 15.94 A fit under 20 A
        await station.plug_in(2, ev("EV-2"), "TAG-2")
        # Two EVs wanting 15.94 A each share 20 A: 10 A each.
        await eventually(lambda: [e.current_a for e in station.core.evses] == [10.0, 10.0])
        # A 1-phase EV wanting less leaves the rest to the other.
        await station.unplug(2)
        await station.plug_in(2, ev("EV-3", phases=1, max_kw=1.84), "TAG-3")  # 8 A on one phase
        await eventually(lambda: [round(e.current_a, 2) for e in station.core.evses] == [12.0, 8.0])


async def test_201_get_charging_profiles_reports_what_is_installed(csms) -> None:
    async with running(station_config(csms, "SIM-1", "2.0.1", evse_count=2)) as station:
        commands = csms.registry.get("SIM-1")
        await commands.set_charging_profile(
            0, profile(1, ProfilePurpose.STATION_MAX, (0, 40.0), kind=ProfileKind.ABSOLUTE)
        )
        await commands.set_charging_profile(1, profile(2, ProfilePurpose.TX_DEFAULT, (0, 16.0)))
        await commands.set_charging_profile(2, profile(3, ProfilePurpose.TX_DEFAULT, (0, 10.0), stack_level=2))
        answer = await commands.get_charging_profiles()
        assert answer.accepted
        rows = await eventually_async(lambda: _reported(csms, answer.details["request_id"], 3))
        assert sorted((row.evse_id, row.profile["id"], row.source) for row in rows) == [
            (0, 1, "CSO"),
            (1, 2, "CSO"),
            (2, 3, "CSO"),
        ]
        answer = await commands.get_charging_profiles(purpose=ProfilePurpose.TX_DEFAULT, stack_level=2)
        rows = await eventually_async(lambda: _reported(csms, answer.details["request_id"], 1))
        assert [row.profile["id"] for row in rows] == [3]
        assert (await commands.get_charging_profiles(profile_ids=[42])).status == "NoProfiles"
    assert station.recorder.protocol_errors == []


async def _reported(csms: Csms, request_id: int, count: int) -> list[ReportedChargingProfile] | None:
    async with csms.database.read() as session:
        rows = list(
            await session.scalars(
                select(ReportedChargingProfile).where(ReportedChargingProfile.request_id == request_id)
            )
        )
    return rows if len(rows) >= count else None


async def test_a_16_tx_profile_for_another_transaction_is_rejected(csms) -> None:
    async with running(station_config(csms, "SIM-1", "1.6", evse_count=2)) as station:
        first = await started(csms, station)
        commands = csms.registry.get("SIM-1")
        await station.plug_in(2, ev("EV-2"), "TAG-2")
        await eventually(lambda: station.snapshot().evses[1].transaction_id is not None)
        # The first session's profile sent to EVSE 2, which runs the second: refused.
        tx = profile(9, ProfilePurpose.TX, (0, 10.0), transaction_id=first.id)
        assert (await commands.set_charging_profile(2, tx)).status == "Rejected"
        assert (await commands.set_charging_profile(1, tx)).accepted
