"""The scheduler fails or runs out of time: the cycle sends equal shares within every limit, and says so.

The live cases run a real CSMS with the simulator's stations. The time budget is broken the real way: the
default algorithm ``lp`` on a real site with a budget of a microsecond, which no solve meets. An algorithm
that raises cannot be reached with real data (the scheduling core catches its solvers' failures itself), so
that case plugs a broken algorithm into the registry a ported Opti-VGI algorithm would use: exactly the
code the fallback protects against.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from optivgi_csms.scheduling import ALGORITHMS, EV, Algorithm, ScheduleResult, Site
from optivgi_csms.scheduling.ev import kw_from_amps
from optivgi_csms.server.app import Csms
from optivgi_csms.smart_charging.records import CycleRow
from optivgi_csms.smart_charging.safe_schedule import EqualShareAlgorithm
from simulators.site import SiteOptions, SiteRun
from tests.e2e_sim.harness import POWER_EPSILON_KW, TIME_SCALE, SitePower, at, ev, scenario, smart_csms, station, until
from tests.faults.acks import AckLog

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
STATIONS = [("F16A", "1.6"), ("F16B", "1.6"), ("F201A", "2.0.1"), ("F201B", "2.0.1")]


# --- the safe schedule itself ----------------------------------------------------------------------------------


def _ev(ev_id: str, phases: int = 3, max_kw: float = 32.0, phase_map: tuple[str, ...] = ("L1", "L2", "L3")) -> EV:
    return EV(
        ev_id=ev_id,
        active=True,
        station_id=ev_id,
        connector_id=1,
        min_power=0.0,
        max_power=max_kw,
        arrival_time=NOW - timedelta(hours=1),
        departure_time=NOW + timedelta(hours=4),
        energy=60.0,
        voltage=230.0,
        phases=phases,
        phase_map=phase_map,
    )


def test_equal_shares_within_the_site_limit() -> None:
    evs = [_ev(f"E{i}") for i in range(4)]
    result = EqualShareAlgorithm(
        evs, Site(22.0), NOW, resolution=timedelta(minutes=15), horizon=timedelta(hours=1)
    ).calculate()
    first = result.power_kw[:, 0]
    assert np.allclose(first, 5.5) and result.status == "fallback"


def test_fewer_evs_charge_when_an_equal_share_is_below_the_minimum_current() -> None:
    evs = [_ev(f"E{i}") for i in range(4)]
    site = Site(10.0, min_current_a=6.0)
    result = EqualShareAlgorithm(
        evs, site, NOW, resolution=timedelta(minutes=15), horizon=timedelta(hours=1)
    ).calculate()
    first = result.power_kw[:, 0]
    minimum = kw_from_amps(6.0, 230.0, 3)
    # 2.5 kW each would be 3.6 A: two EVs charge at 5 kW (7.2 A), the others wait.
    assert sorted(np.round(first, 6)) == [0.0, 0.0, 5.0, 5.0] and first[first > 0].min() >= minimum
    assert first.sum() <= 10.0 + 1e-9


def test_phase_limits_are_shared_too() -> None:
    evs = [_ev("E3"), _ev("E1", phases=1, phase_map=("L1",)), _ev("E1b", phases=1, phase_map=("L1",))]
    # No minimum current here: the share itself is what is checked (the minimum's rule has its own test).
    site = Site(100.0, phase_limit_a={"L1": 30.0, "L2": 63.0, "L3": 63.0}, min_current_a=0.0)
    result = EqualShareAlgorithm(
        evs, site, NOW, resolution=timedelta(minutes=15), horizon=timedelta(hours=1)
    ).calculate()
    problem, first = result.problem, result.power_kw[:, 0]
    assert (problem.phase_coef.T @ first <= problem.phase_limit_a + 1e-6).all()
    assert np.allclose(first, first[0])  # the same power for each, at L1's limit: 30 A over three EVs' draws


# --- live: a real CSMS, real stations --------------------------------------------------------------------------


async def run_with(csms: Csms, limit_kw: float, seconds: float) -> tuple[SiteRun, AckLog]:
    """Four stations (two of each version), one EV each, for ``seconds`` wall seconds."""
    acks = AckLog()
    site = scenario(
        "fallback",
        limit_kw,
        [station(s, v) for s, v in STATIONS],
        [ev(f"ev-{s}", s, 0, seconds, max_kw=11.0) for s, _ in STATIONS],
    )
    options = SiteOptions(url=f"ws://127.0.0.1:{csms.ocpp.port}/ocpp", time_scale=TIME_SCALE, meter_interval_s=0.25)
    run = SiteRun(site, options, station_factory=acks.factory())
    info = await asyncio.wait_for(run.run(), seconds + 30)
    assert info.stopped == "scenario over", info
    return run, acks


def check_fallback_cycle(cycles: list[CycleRow], limit_kw: float, words: str) -> CycleRow:
    """The newest fallback cycle with EVs: recorded as such, equal powers within the limit, profiles accepted."""
    fallen = [c for c in cycles if c.status == "fallback" and c.evs]
    assert fallen, [(c.status, c.error, c.summary.get("scheduler_fallback")) for c in cycles]
    cycle = fallen[0]
    assert words in (cycle.summary["scheduler_fallback"] or ""), cycle.summary
    assert any("equal shares" in note for note in cycle.summary["notes"])
    powers = [line["power_now_kw"] for line in cycle.evs]
    assert len(powers) == len(STATIONS) and max(powers) - min(powers) < 0.01, powers
    assert sum(powers) <= limit_kw + 1e-6
    answered = [line.get("profile") for line in cycle.evs]
    assert all(p is None or p.get("status") in ("Accepted", "kept") for p in answered), answered
    return cycle


@pytest.mark.slow
async def test_an_algorithm_past_its_time_budget_falls_back_on_equal_shares(make_csms: Any) -> None:
    limit = 22.0
    csms = await smart_csms(make_csms, limit, solver_timeout=1e-6)  # no real solve finishes in a microsecond
    run, _ = await run_with(csms, limit, 8.0)
    cycles = await csms.smart_charging.cycles("default", limit=50)
    check_fallback_cycle(cycles, limit, "took longer than")
    # The stations followed it: the site stayed within its limit once the first profiles were applied.
    power = SitePower(run.recorder.samples)
    assert power.peak_kw(at(3), at(8)) <= limit + POWER_EPSILON_KW, power.timeline()
    assert power.mean_kw(at(3), at(7)) > limit * 0.8, power.timeline()  # and used it


@pytest.mark.slow
async def test_an_algorithm_that_raises_falls_back_and_the_next_good_cycle_takes_over(
    make_csms: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken(Algorithm):
        name = "edf"

        def calculate(self) -> ScheduleResult:
            raise RuntimeError("a bug in a ported algorithm")

    monkeypatch.setitem(ALGORITHMS, "edf", Broken)
    limit = 22.0
    csms = await smart_csms(make_csms, limit)
    await csms.services.sites.update("default", algorithm="edf")

    async def heal() -> None:
        await until(lambda: bool(csms.smart_charging.plan("default")), timeout_s=10)
        await asyncio.sleep(3.0)
        monkeypatch.undo()  # the algorithm is fixed: the next cycle plans with it again
        csms.smart_charging.loops["default"].notify("operator")

    healer = asyncio.create_task(heal())
    run, _ = await run_with(csms, limit, 9.0)
    await healer
    cycles = await csms.smart_charging.cycles("default", limit=100)
    check_fallback_cycle(cycles, limit, "RuntimeError: a bug in a ported algorithm")
    assert cycles[0].status != "fallback" and cycles[0].summary.get("scheduler_fallback") is None, cycles[0]
    power = SitePower(run.recorder.samples)
    assert power.peak_kw(at(3), at(9)) <= limit + POWER_EPSILON_KW, power.timeline()
