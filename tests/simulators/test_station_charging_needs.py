"""ISO 15118 EVs on the simulated station: on OCPP 2.0.1 they tell the CSMS their departure (in wall time),
the energy they still want (in scenario units) and their currents through NotifyEVChargingNeeds, once their
session has started; on 1.6 they cannot. Against our CSMS over real websockets, and against a scripted CSMS
for the answers ours never gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import ChargingNeedsRecord
from simulators.clock import SimClock
from simulators.ev import EVModel, EVSpec
from simulators.station import SimulatedStation
from tests.simulators.test_station_offline import ID, scripted_csms
from tests.simulators.test_station_support import (
    both_versions,
    ev,
    eventually,
    eventually_async,
    running,
    station_config,
    transactions,
)

TIME_SCALE = 60.0
#: The EV leaves two scenario hours after it plugs in: two wall minutes at 60x.
STAY = timedelta(hours=2)


async def stored_needs(csms: Csms, station_id: str = "SIM-1") -> list[ChargingNeedsRecord]:
    """The needs the CSMS stored for the station, oldest first."""
    async with csms.database.read() as session:
        query = select(ChargingNeedsRecord).where(ChargingNeedsRecord.station_id == station_id)
        return list(await session.scalars(query.order_by(ChargingNeedsRecord.id)))


def iso_ev(station: SimulatedStation, **overrides: Any) -> EVModel:
    """An ISO 15118 EV (11 kW, three phases, 36 kWh to go) leaving :data:`STAY` after now, scenario time."""
    spec: dict[str, Any] = {"battery_kwh": 60.0, "soc_initial": 0.2, "soc_target": 0.8, "max_kw": 11.0}
    spec |= {"iso15118": True, "departure": station.clock.sim_now() + STAY, **overrides}
    return EVModel(EVSpec("EV-1", **spec))


@pytest.mark.parametrize(("limit_kw", "answer"), [(50.0, "Accepted"), (None, "Rejected")])
async def test_an_iso15118_ev_on_a_201_station_tells_the_csms_its_needs(
    make_csms, limit_kw: float | None, answer: str
) -> None:
    # A site with a limit is planned, so the CSMS promises a schedule; without one it honestly says none comes.
    csms = await make_csms(site_limit_kw=limit_kw) if limit_kw is not None else await make_csms()
    async with running(station_config(csms, "SIM-1", "2.0.1"), time_scale=TIME_SCALE) as station:
        plugged_at = datetime.now(UTC)
        await station.plug_in(1, iso_ev(station), "TAG-1")
        [needs] = await eventually_async(lambda: stored_needs(csms))
        [transaction] = await transactions(csms, "SIM-1")
        await eventually(lambda: station.recorder.messages[f"answered:NotifyEVChargingNeeds:{answer}"] == 1)
        await station.unplug(1)
        await eventually(lambda: station.snapshot().queued == 0)
    # It belongs to the session: the Started event went first, so the CSMS knew the session it came in.
    assert needs.transaction_id == transaction.id
    assert (needs.evse_id, needs.requested_energy_transfer, needs.status) == (1, "AC_three_phase", answer)
    # The departure on the wall clock: two scenario hours are two wall minutes.
    expected = plugged_at + STAY / TIME_SCALE
    assert needs.departure_time is not None
    assert abs((needs.departure_time.replace(tzinfo=UTC) - expected).total_seconds()) < 1.0
    # The energy it still wants in scenario units (36 kWh, less the little it drew before the message went).
    assert needs.energy_amount_wh is not None and 35_800 <= needs.energy_amount_wh <= 36_000
    # 11 kW over three phases at 230 V is 15.9 A a phase, sent as 16; it pauses below 6 A.
    assert (needs.ev_min_current_a, needs.ev_max_current_a, needs.ev_max_voltage_v) == (6, 16, 230)
    assert station.recorder.messages["sent:NotifyEVChargingNeeds"] == 1
    assert station.recorder.protocol_errors == []


async def test_a_one_phase_ev_asks_for_single_phase_and_without_a_departure_says_none(csms) -> None:
    async with running(station_config(csms, "SIM-1", "2.0.1"), time_scale=TIME_SCALE) as station:
        await station.plug_in(1, iso_ev(station, phases=1, max_kw=7.4, min_current_a=8.0, departure=None), "TAG-1")
        [needs] = await eventually_async(lambda: stored_needs(csms))
    assert needs.requested_energy_transfer == "AC_single_phase"
    assert needs.departure_time is None
    assert (needs.ev_min_current_a, needs.ev_max_current_a) == (8, 32)  # 7.4 kW on one phase: 32 A


@both_versions
async def test_an_ev_that_does_not_speak_iso15118_sends_nothing_nor_on_16_one_that_does(csms, version: str) -> None:
    async with running(station_config(csms, "SIM-1", version), time_scale=TIME_SCALE) as station:
        # On 1.6 the ISO 15118 EV has nobody to tell (OCPP 1.6 has no such message); on 2.0.1 this one is silent.
        model = iso_ev(station) if version == "1.6" else ev()
        await station.plug_in(1, model, "TAG-1")
        await eventually(lambda: station.snapshot().evses[0].transaction_id is not None)
        await station.unplug(1)
        await eventually(lambda: station.snapshot().queued == 0)
        await eventually_async(lambda: transactions(csms, "SIM-1"))
    assert await stored_needs(csms) == []
    assert not [key for key in station.recorder.messages if "NotifyEVChargingNeeds" in key]


async def test_a_callerror_is_a_protocol_error_tried_once_and_holds_nothing_up() -> None:
    def script(action: str, payload: dict[str, Any], connection: int) -> Any:
        if action == "NotifyEVChargingNeeds":
            return [4, ID, "NotSupported", "no ISO 15118 here", {}]
        return None

    async with scripted_csms(script, version="2.0.1") as csms:
        config = station_config(csms.port, "SIM-1", "2.0.1")
        async with running(config, time_scale=TIME_SCALE) as station:
            station.core.variables.set("message_retry_interval", 5.0)  # a retry would hold the Ended event up
            await station.plug_in(1, iso_ev(station), "TAG-1")
            await eventually(lambda: "NotifyEVChargingNeeds" in csms.actions())
            await station.unplug(1)
            await eventually(lambda: station.snapshot().queued == 0, timeout=2.0)
        actions = csms.actions()
        assert actions.count("NotifyEVChargingNeeds") == 1
        assert actions.index("TransactionEvent") < actions.index("NotifyEVChargingNeeds")  # the Started event
        events = [p["eventType"] for _, a, p in csms.received if a == "TransactionEvent"]
        assert events[0] == "Started" and events[-1] == "Ended"
        needs = next(p for _, a, p in csms.received if a == "NotifyEVChargingNeeds")
        assert needs["evseId"] == 1 and needs["chargingNeeds"]["acChargingParameters"]["energyAmount"] > 0
        [error] = station.recorder.protocol_errors
        assert error["description"] == "NotifyEVChargingNeeds: CALLERROR NotSupported: no ISO 15118 here"
        assert not [key for key in station.recorder.messages if key.startswith("answered:")]


async def test_a_schema_breaking_answer_is_a_protocol_error() -> None:
    def script(action: str, payload: dict[str, Any], connection: int) -> Any:
        return [3, ID, {"status": "Maybe"}] if action == "NotifyEVChargingNeeds" else None

    async with scripted_csms(script, version="2.0.1") as csms:
        async with running(station_config(csms.port, "SIM-1", "2.0.1"), time_scale=TIME_SCALE) as station:
            await station.plug_in(1, iso_ev(station), "TAG-1")
            await eventually(lambda: len(station.recorder.protocol_errors) == 1)
        [error] = station.recorder.protocol_errors
        assert error["description"].startswith("NotifyEVChargingNeeds: invalid answer to NotifyEVChargingNeeds")


def test_the_departure_is_stated_on_the_wall_clock() -> None:
    ticks = iter([100.0, 100.0, 110.0])  # the clock starts at 100 s, is read at 100 s, then 10 s later
    clock = SimClock(datetime(2026, 3, 2, 8, tzinfo=UTC), 300.0, monotonic=lambda: next(ticks))
    before = datetime.now(UTC)
    # 30 scenario minutes ahead are 6 wall seconds at 300x.
    wall = clock.wall_time(datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    assert timedelta(seconds=5.9) < wall - before < timedelta(seconds=6.5)
    # 10 wall seconds later the scenario is at 08:50: 08:30 has passed, 20 scenario minutes (4 wall s) ago.
    wall = clock.wall_time(datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    assert timedelta(seconds=-4.1) < wall - datetime.now(UTC) < timedelta(seconds=-3.9)
