"""ISO 15118 EVs of a simulated site tell our CSMS what they need, and its plan uses it.

A site of three 2.0.1 stations and one 1.6 station, one EV each: one that the scenario says speaks ISO 15118,
one it says nothing of, one it says does not, and an ISO 15118 EV on the 1.6 station (which has no message
to pass its needs on). ``--iso15118`` decides who speaks; the CSMS's plan shows where each session's
departure and energy came from: ``ev`` for the EVs that told them, the site's defaults for the others.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import select

from optivgi_csms.server.app import Csms
from optivgi_csms.smart_charging.plan import SitePlan
from optivgi_csms.store.models import ChargingNeedsRecord
from simulators.site import SiteRun
from tests.e2e_sim.harness import SLOT_WALL_S, ev, run_site, scenario, smart_csms, station

pytestmark = pytest.mark.slow

LIMIT_KW = 30.0
#: Every EV stays this long (wall seconds): long enough for a few cycles before its departure draws near.
STAY_WALL_S = 6.0
ENERGY_KWH = 40.0  # more than any of them gets in the run


def site() -> object:
    return scenario(
        "needs",
        LIMIT_KW,
        [station("SAYS", "2.0.1"), station("SILENT", "2.0.1"), station("NOT", "2.0.1"), station("OLD", "1.6")],
        [
            ev("says", "SAYS", 0, STAY_WALL_S, energy_kwh=ENERGY_KWH, iso15118=True),
            ev("silent", "SILENT", 0, STAY_WALL_S, energy_kwh=ENERGY_KWH),
            ev("not", "NOT", 0, STAY_WALL_S, energy_kwh=ENERGY_KWH, iso15118=False),
            ev("old", "OLD", 0, STAY_WALL_S, energy_kwh=ENERGY_KWH, iso15118=True),
        ],
    )


async def stored_needs(csms: Csms) -> dict[str, ChargingNeedsRecord]:
    """The needs the CSMS stored, by station."""
    async with csms.database.read() as session:
        return {row.station_id: row for row in await session.scalars(select(ChargingNeedsRecord))}


@pytest.mark.parametrize(
    ("mode", "speaking"),
    [("scenario", {"SAYS"}), ("all", {"SAYS", "SILENT", "NOT"}), ("none", set())],
)
async def test_the_plan_uses_what_the_iso15118_evs_said(make_csms, mode: str, speaking: set[str]) -> None:
    csms = await smart_csms(make_csms, LIMIT_KW)
    scene = site()
    plans: list[SitePlan] = []
    departures: dict[str, datetime] = {}

    async def watch(run: SiteRun) -> None:
        await run.clock_started.wait()
        # Where the scenario's departure falls on the wall clock (the clock is fixed once it runs).
        departures.update({sim.station_id: run.clock.wall_time(sim.departure) for sim in scene.evs})
        while True:
            plan = csms.smart_charging.plan("default")
            if plan is not None and len({entry.station_id for entry in plan.evs if entry.active}) == 4:
                plans.append(plan)
            await asyncio.sleep(0.1)

    run, info = await run_site(csms, scene, during=watch, iso15118=mode)
    assert info.stopped == "scenario over"
    assert run.recorder.protocol_errors == []

    # The EVs that speak told the CSMS once each, after their session started; nobody else did.
    needs = await stored_needs(csms)
    assert set(needs) == speaking
    for station_id, row in needs.items():
        assert row.transaction_id is not None and row.status == "Accepted", station_id
        assert (row.requested_energy_transfer, row.ev_max_current_a) == ("AC_three_phase", 16), station_id
        assert 0.9 * ENERGY_KWH * 1000 < (row.energy_amount_wh or 0) <= ENERGY_KWH * 1000, station_id
    messages = run.recorder.messages
    assert messages["sent:NotifyEVChargingNeeds"] == len(speaking)
    assert messages["answered:NotifyEVChargingNeeds:Accepted"] == len(speaking)

    # The plan took their departure and energy from them; the others were planned with the site's defaults.
    assert plans, "no plan with all four sessions"
    last = {entry.station_id: entry for entry in plans[-1].evs}
    for station_id, entry in last.items():
        expected = "ev" if station_id in speaking else "site"
        # Near its departure a session still plugged in is planned to stay a little longer ("ev+overstay").
        assert entry.departure_source.split("+")[0] == expected, (station_id, entry.departure_source)
        assert entry.energy_source == expected, (station_id, entry.energy_source)
    told = [
        entry for plan in plans for entry in plan.evs if entry.station_id in speaking and entry.departure_source == "ev"
    ]
    assert len(told) >= len(speaking)
    for entry in told:
        # Planned to the end of the slot its departure (stated in wall time) falls in.
        late = (entry.departure - departures[entry.station_id]).total_seconds()
        assert 0 <= late < SLOT_WALL_S + 0.01, (entry.station_id, late)
        assert entry.requested_kwh <= ENERGY_KWH
