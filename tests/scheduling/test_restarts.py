"""Fewer restarts: pauses filled without changing any EV's energy, raising the bill or the peak."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optivgi_csms.scheduling import ALGORITHMS, EV, GoAlgorithm, LPAlgorithm, Problem, Site, Step, validate
from optivgi_csms.scheduling.algorithms.restarts import fewer_restarts
from optivgi_csms.scheduling.metrics import compute_metrics
from tests.scheduling.conftest import NOW, SLOT, make_ev
from tests.scheduling.test_properties import evs, sites


def congested_quarter_hour_site(n_evs: int, seed: int) -> tuple[list[EV], Site]:
    """15-minute slots over a day with a day/night tariff, a site at 30% of installed power, 6 A minimum."""
    rng = np.random.default_rng(seed)
    fleet = []
    for k in range(n_evs):
        three = rng.random() < 0.8
        later = float(rng.uniform(0, 14)) if rng.random() >= 0.7 else float(rng.uniform(-2, 0))
        arrival = NOW + timedelta(hours=later)
        fleet.append(
            EV(
                ev_id=f"ev{k}",
                active=arrival <= NOW,
                station_id=f"CP{k}",
                connector_id=1,
                min_power=0.0,
                max_power=float(rng.uniform(7.2, 19.2)) if three else 7.2,
                arrival_time=arrival,
                departure_time=arrival + timedelta(hours=float(rng.uniform(2, 10))),
                energy=float(rng.uniform(5, 60)),
                phases=3 if three else 1,
                phase_map=("L1", "L2", "L3") if three else (f"L{1 + k % 3}",),
            )
        )
    prices = tuple(Step(NOW + timedelta(hours=h), p) for h, p in ((0, 0.32), (9, 0.38), (14, 0.22), (22, 0.14)))
    return fleet, Site(limit_kw=0.3 * sum(ev.max_power for ev in fleet), price_per_kwh=prices, min_current_a=6.0)


@pytest.mark.parametrize("seed", range(3))
def test_lp_restarts_no_more_than_go_on_a_congested_quarter_hour_site(seed: int) -> None:
    fleet, site = congested_quarter_hour_site(60, seed)
    horizon = timedelta(hours=24)
    lp = LPAlgorithm(fleet, site, NOW, resolution=SLOT, horizon=horizon).calculate()
    go = GoAlgorithm(fleet, site, NOW, resolution=SLOT, horizon=horizon).calculate()
    assert validate(fleet, site, NOW, SLOT, lp.power_kw) == []
    ours, theirs = compute_metrics(lp.problem, lp.power_kw), compute_metrics(go.problem, go.power_kw)
    assert ours.restarts <= theirs.restarts
    assert ours.delivered_kwh >= theirs.delivered_kwh - 1e-6
    assert ours.cost is not None and theirs.cost is not None and ours.cost <= theirs.cost + 1e-6


def _checked(problem: Problem, fleet: list[EV], site: Site, before: np.ndarray) -> None:
    """What the pass may and may not change."""
    after = fewer_restarts(problem, before)
    assert validate(fleet, site, NOW, SLOT, after) == []
    assert after.sum(axis=1) == pytest.approx(before.sum(axis=1), abs=1e-6)  # every EV's energy
    assert after.sum(axis=0).max(initial=0.0) <= before.sum(axis=0).max(initial=0.0) + 1e-6  # the peak
    if problem.price is not None:
        assert after.sum(axis=0) @ problem.price <= before.sum(axis=0) @ problem.price + 1e-6  # the bill
    assert compute_metrics(problem, after).restarts <= compute_metrics(problem, before).restarts


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=evs(), site=sites(), n_slots=st.integers(2, 16), name=st.sampled_from(["go", "edf", "llf"]))
def test_pass_keeps_energy_bill_peak_and_validity(fleet: list[EV], site: Site, n_slots: int, name: str) -> None:
    """On any site and any valid schedule (here the heuristics', which pause EVs often)."""
    result = ALGORITHMS[name](fleet, site, NOW, resolution=SLOT, horizon=n_slots * SLOT).calculate()
    _checked(result.problem, fleet, site, result.power_kw)


def test_an_exchange_fills_a_pause_on_a_full_site() -> None:
    """The site is full in every slot and a pauses in slot 1 while b charges. The exchange lets a charge at
    its minimum in slot 1 and gives b the same back in slot 2: every slot stays full, nobody's energy
    changes, and a no longer restarts."""
    site = Site(limit_kw=16.0, min_current_a=6.0)
    fleet = [make_ev("a", end=3, energy=8.0, max_kw=11.0), make_ev("b", end=3, energy=8.0, max_kw=22.0)]
    problem = Problem.build(fleet, site, NOW, SLOT, 3)
    before = np.array([[11.0, 0.0, 11.0], [5.0, 16.0, 5.0]])
    after = fewer_restarts(problem, before)
    assert compute_metrics(problem, after).restarts == 0
    assert after.sum(axis=0) == pytest.approx(before.sum(axis=0))
    assert after.sum(axis=1) == pytest.approx(before.sum(axis=1))
    assert after[0, 1] == pytest.approx(problem.lo[0, 1])
    assert validate(fleet, site, NOW, SLOT, after) == []
