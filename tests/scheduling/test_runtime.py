"""Profiles, the cycle runner and the workers."""

from __future__ import annotations

import asyncio
import queue
import threading
from datetime import datetime

import pytest

from optivgi_csms.scheduling import EV, ChargingProfile, ChargingRateUnit, GoAlgorithm, LPAlgorithm, Site
from optivgi_csms.scheduling.runner import CycleOptions, scm_runner, slot_start
from optivgi_csms.scheduling.translation import Translation
from optivgi_csms.scheduling.worker import SchedulingWorker, scm_worker
from tests.scheduling.conftest import NOW, SLOT, make_ev


def test_profile_rounds_down_stops_at_departure_and_skips_reservations() -> None:
    fleet = [make_ev("a", end=2.5, energy=3.0, max_kw=11.0), make_ev("r", start=1, end=3, active=False)]
    algorithm = LPAlgorithm(fleet, Site(limit_kw=50.0), NOW, resolution=SLOT, horizon=4 * SLOT)
    algorithm.calculate()
    profiles = algorithm.get_charging_profiles(ChargingRateUnit.A)
    assert [ev.ev_id for ev in profiles] == ["a"]
    profile = profiles[fleet[0]]
    assert isinstance(profile, ChargingProfile)
    for period in profile.periods:
        assert period.limit == round(period.limit, 1)
        assert period.limit == 0 or period.limit >= 6.0
        assert period.number_phases == 3
    assert profile.limit_at(NOW + 2.6 * SLOT) == 0.0
    # 11 kW on three phases is 15.94 A: rounded down, never up. Half a slot present at 5.5 kW average is
    # the full 15.9 A while present, then 0 from the declared departure on.
    fleet[0].power = [11.0, 11.0, 5.5, 0.0]
    profile = fleet[0].charging_profile(NOW, SLOT, ChargingRateUnit.A)
    assert [(p.start_s, p.limit) for p in profile.periods] == [(0, 15.9), (2250, 0.0)]
    assert algorithm.get_charging_profiles(include_planned=True).keys() == set(fleet)


def test_profile_in_watts_and_truncated() -> None:
    ev = make_ev("a", energy=20.0, max_kw=7.4)
    ev.power = [7.4, 0.0, 7.4, 0.0]
    profile = ev.charging_profile(NOW, SLOT, ChargingRateUnit.W, max_periods=2)
    assert [(p.start_s, p.limit) for p in profile.periods] == [(0, 7400.0), (900, 0.0)]
    assert profile.duration_s == 1800


class FakeTranslation(Translation):
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def get_evs(self, group: str) -> tuple[list[EV], float | None]:
        if group == "broken":
            raise RuntimeError("database down")
        return [make_ev("a", start=-2, end=30, energy=5.0)], 230.0

    def get_peak_power_demand(self, group: str, now: datetime, voltage: float | None = None) -> Site:
        return Site(limit_kw=22.0)

    def send_power_to_evs(self, powers: dict, unit: ChargingRateUnit | None = None) -> None:
        self.sent.append(powers)


def test_scm_runner_runs_every_group_and_survives_a_broken_one() -> None:
    translation = FakeTranslation()
    results = scm_runner(translation, GoAlgorithm, ["broken", "site-1"], now=NOW, options=CycleOptions())
    assert isinstance(results["broken"], RuntimeError)
    assert results["site-1"].delivered_kwh[0] == pytest.approx(5.0)
    assert len(translation.sent) == 1


def test_slot_start_aligns_to_the_grid() -> None:
    assert slot_start(NOW.replace(minute=7, second=3), SLOT) == NOW


async def test_worker_coalesces_bursts_into_one_cycle() -> None:
    calls: list[frozenset[str] | None] = []

    async def cycle(groups: frozenset[str] | None) -> None:
        calls.append(groups)
        await asyncio.sleep(0.05)

    worker = SchedulingWorker(cycle, interval_s=3600, debounce_s=0.05)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.02)  # the start-up cycle
    for k in range(1000):
        worker.notify(f"g{k % 3}")
    await asyncio.sleep(0.3)
    for _ in range(100):  # a burst during a cycle: exactly one more
        worker.notify("g0")
    await asyncio.sleep(0.3)
    worker.stop()
    await asyncio.wait_for(task, 2)
    assert worker.events == 1100
    assert calls[0] is None
    assert calls[1] == frozenset({"g0", "g1", "g2"})
    assert len(calls) == 3


async def test_worker_keeps_running_after_a_failed_cycle() -> None:
    async def cycle(groups: frozenset[str] | None) -> None:
        raise RuntimeError("boom")

    worker = SchedulingWorker(cycle, interval_s=0.02, debounce_s=0.0)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.15)
    worker.stop()
    await asyncio.wait_for(task, 2)
    assert worker.failures >= 2


async def test_worker_for_an_async_translation() -> None:
    sent: list[dict] = []

    class AsyncFake:
        async def get_evs(self, group: str):
            return [make_ev("a", start=-2, end=30, energy=5.0)], None

        async def get_peak_power_demand(self, group: str, now: datetime, voltage: float | None = None):
            return Site(limit_kw=22.0)

        async def send_power_to_evs(self, powers: dict, unit: ChargingRateUnit | None = None) -> None:
            sent.append(powers)

    worker = SchedulingWorker.for_translation(AsyncFake(), LPAlgorithm, ["site"], interval_s=3600, debounce_s=0)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.5)
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert len(sent) == 1 and len(next(iter(sent[0].values())).periods) >= 1


def test_thread_worker_drains_the_queue() -> None:
    translation = FakeTranslation()
    events: queue.Queue[object] = queue.Queue()
    for _ in range(50):
        events.put("transaction started")
    events.put(None)
    thread = threading.Thread(target=scm_worker, args=(events, lambda: translation, GoAlgorithm, ["site"]))
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert len(translation.sent) <= 1
    events.join()
