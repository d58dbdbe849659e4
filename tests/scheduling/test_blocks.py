"""Time blocks, the block model and its certificate: what the default algorithm's speed rests on."""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optivgi_csms.scheduling import EV, GoAlgorithm, LPAlgorithm, Problem, Site, Step, validate
from optivgi_csms.scheduling.algorithms.bounds import dual_bound, window_bound
from optivgi_csms.scheduling.algorithms.cells import Cells
from optivgi_csms.scheduling.algorithms.highs_model import StagedModel, max_energy
from optivgi_csms.scheduling.algorithms.lp import energy_upper_bound
from optivgi_csms.scheduling.blocks import exact_partition, exact_starts, partition
from optivgi_csms.scheduling.metrics import compute_metrics
from tests.scheduling.conftest import NOW, SLOT, make_ev
from tests.scheduling.test_properties import evs, sites

MINUTE = timedelta(minutes=1)


def random_site(rng: np.random.Generator, n_evs: int, n_slots: int, *, phases: bool = False, prices: bool = False):
    """EVs arriving and leaving at odd moments (partial slots), 1- and 3-phase, on a congested site."""
    fleet = []
    for k in range(n_evs):
        three = rng.random() < 0.7
        start = float(rng.uniform(-3, n_slots * 0.6))
        fleet.append(
            make_ev(
                f"e{k}",
                start=start,
                end=start + float(rng.uniform(2, n_slots)),
                energy=float(rng.uniform(1, 30)),
                max_kw=float(rng.uniform(7, 22)) if three else 7.4,
                phases=3 if three else 1,
                phase_map=("L1", "L2", "L3") if three else (("L1", "L2", "L3")[k % 3],),
            )
        )
    limit = 0.3 * sum(ev.max_kw for ev in fleet)
    steps = (Step(NOW + (n_slots // 2) * SLOT, 0.7 * limit),)
    site = Site(
        limit_kw=limit,
        limit_kw_schedule=steps,
        phase_limit_a={"L1": limit * 1000 / 230 / 4} if phases else {},
        price_per_kwh=(Step(NOW, 0.3), Step(NOW + (n_slots // 3) * SLOT, 0.1)) if prices else None,
        min_current_a=0.0,
    )
    return fleet, site


def build(fleet: list[EV], site: Site, n_slots: int) -> Problem:
    return Problem.build(fleet, site, NOW, SLOT, n_slots)


def test_partitions_cut_at_every_change_of_limit_and_price_and_stay_short() -> None:
    rng = np.random.default_rng(1)
    fleet, site = random_site(rng, 12, 40, prices=True)
    problem = build(fleet, site, 40)
    changes = {0, 20, 13}  # the limit step and the price step
    for longest in (1, 3, 7, 40):
        blocks = partition(problem, longest)
        assert blocks.first[0] == 0 and blocks.first[-1] == 40
        assert (blocks.length >= 1).all() and (blocks.length <= longest).all()
        assert changes <= set(blocks.first[:-1].tolist())
        # Limit and price are the same in every slot of a block.
        for b in range(blocks.n_blocks):
            inside = slice(blocks.first[b], blocks.first[b + 1])
            assert np.ptp(problem.site_kw[inside]) == 0 and np.ptp(problem.price[inside]) == 0
    exact = exact_partition(problem, 5)
    assert exact.is_exact and set(exact_starts(problem).tolist()) <= set(exact.first.tolist())
    for b in range(exact.n_blocks):  # every slot of an exact block is the same
        inside = problem.frac[:, exact.first[b] : exact.first[b + 1]]
        assert (inside == inside[:, :1]).all()


@pytest.mark.parametrize("seed", range(6))
def test_exact_blocks_lose_nothing_against_the_per_slot_lp(seed: int) -> None:
    """One power per EV per exact block reaches the per-slot LP's energy (averaging over identical slots)."""
    rng = np.random.default_rng(seed)
    fleet, site = random_site(rng, 10, 30, phases=seed % 2 == 1)
    problem = build(fleet, site, 30)
    exact = exact_partition(problem, 30)
    segments, cells = Cells.flat_in_blocks(exact)
    deadline = time.perf_counter() + 60
    assert max_energy(segments, cells, deadline) == pytest.approx(energy_upper_bound(problem), rel=1e-7, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_coarse_blocks_bound_and_restrict_the_per_slot_lp(seed: int) -> None:
    """Summed over coarse blocks the LP is a relaxation (an upper bound); flat over them, a restriction whose
    every point is a valid per-slot schedule."""
    rng = np.random.default_rng(10 + seed)
    fleet, site = random_site(rng, 14, 36, phases=seed % 2 == 0)
    problem = build(fleet, site, 36)
    best = energy_upper_bound(problem)
    deadline = time.perf_counter() + 60
    for longest in (2, 5, 12):
        coarse = partition(problem, longest)
        relaxed = max_energy(coarse, Cells.per_block(coarse), deadline)
        assert relaxed >= best - 1e-6
        segments, cells = Cells.flat_in_blocks(coarse)
        model = StagedModel(segments, cells, deadline, fairness=False)
        x, _ = model.solve(-model.hours)
        assert float(x @ model.hours) <= best + 1e-6
        power = cells.to_slots(segments, x)
        assert validate(fleet, site, NOW, SLOT, power) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prices=st.lists(st.floats(0, 2), min_size=12, max_size=12),
    phase=st.lists(st.floats(0, 2), min_size=12, max_size=12),
    seed=st.integers(0, 10_000),
)
def test_any_prices_give_a_true_upper_bound(prices: list[float], phase: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    fleet, site = random_site(rng, 6, 12, phases=True)
    problem = build(fleet, site, 12)
    best = energy_upper_bound(problem)
    assert window_bound(problem) >= best - 1e-6
    phase_price = np.zeros((len(problem.phase_limit_a), 12))
    phase_price[:] = np.asarray(phase) / 100
    assert dual_bound(problem, np.asarray(prices) * problem.dt_h, phase_price) >= best - 1e-6


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=evs(), site=sites(), n_slots=st.integers(2, 16), longest=st.sampled_from([2, 3, 5]))
def test_block_path_always_valid_and_its_bound_holds(fleet: list[EV], site: Site, n_slots: int, longest: int) -> None:
    """The block path (forced on these small sites), whatever the input: valid, and never above its bound."""
    algorithm = LPAlgorithm(fleet, site, NOW, resolution=SLOT, horizon=n_slots * SLOT, max_block_slots=longest)
    result = algorithm.calculate()
    assert validate(fleet, site, NOW, SLOT, result.power_kw) == []
    delivered = float(result.delivered_kwh.sum())
    bound = result.energy_bound_kwh
    assert bound is not None and delivered <= bound + 1e-6
    assert delivered <= energy_upper_bound(result.problem) + 1e-6
    if result.status == "optimal":
        assert delivered >= (1 - 1e-3) * bound - 1e-6
    assert result.path in ("blocks", "per-slot", "exact", "fallback")


def test_certificate_bounds_the_exact_milp() -> None:
    from optivgi_csms.scheduling import PulpNumericalAlgorithm

    rng = np.random.default_rng(5)
    for _ in range(4):
        fleet = [
            make_ev(f"e{k}", start=rng.uniform(-1, 3), end=rng.uniform(4, 8), energy=rng.uniform(2, 20))
            for k in range(3)
        ]
        site = Site(limit_kw=float(rng.uniform(6, 20)), min_current_a=6.0)
        lp = LPAlgorithm(fleet, site, NOW, resolution=SLOT, horizon=8 * SLOT, max_block_slots=2).calculate()
        exact = PulpNumericalAlgorithm(fleet, site, NOW, resolution=SLOT, horizon=8 * SLOT).calculate()
        assert exact.delivered_kwh.sum() <= (lp.energy_bound_kwh or 0) + 1e-6


def congested_minute_site(n_evs: int, seed: int = 2) -> tuple[list[EV], Site]:
    """Opti-VGI's setting in small: 1-minute slots over 8 hours, a site at 30% of installed power."""
    rng = np.random.default_rng(seed)
    fleet = []
    for k in range(n_evs):
        three = rng.random() < 0.8
        arrival = NOW + timedelta(hours=float(rng.uniform(-2, 0)) if rng.random() < 0.7 else float(rng.uniform(0, 5)))
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
    return fleet, Site(limit_kw=0.3 * sum(ev.max_power for ev in fleet), min_current_a=6.0)


@pytest.mark.parametrize("flow", [None, False])
def test_lp_restarts_evs_no_more_than_go_on_a_congested_site(flow: bool | None) -> None:
    """By default the flow path takes this site; without it, the block path. Either restarts EVs less."""
    fleet, site = congested_minute_site(40)
    horizon = timedelta(hours=8)
    go = GoAlgorithm(fleet, site, NOW, resolution=MINUTE, horizon=horizon).calculate()
    lp = LPAlgorithm(fleet, site, NOW, resolution=MINUTE, horizon=horizon, flow_path=flow).calculate()
    for result in (lp, go):
        assert validate(fleet, site, NOW, MINUTE, result.power_kw) == []
    lp_metrics, go_metrics = compute_metrics(lp.problem, lp.power_kw), compute_metrics(go.problem, go.power_kw)
    assert lp_metrics.restarts <= go_metrics.restarts
    assert lp_metrics.delivered_kwh >= go_metrics.delivered_kwh * (1 - 1e-4)
    assert lp.status == "optimal" and lp.path == ("flow" if flow is None else "blocks")


def test_flat_shape_keeps_energy_and_lowers_the_peak() -> None:
    fleet = [make_ev(f"e{k}", end=12, energy=8.0) for k in range(4)]
    site = Site(limit_kw=60.0, min_current_a=0.0)
    kwargs = {"resolution": SLOT, "horizon": 12 * SLOT, "max_block_slots": 2}
    early = LPAlgorithm(fleet, site, NOW, **kwargs).calculate()
    flat = LPAlgorithm(fleet, site, NOW, shape="flat", **kwargs).calculate()
    assert flat.delivered_kwh.sum() == pytest.approx(early.delivered_kwh.sum(), rel=1e-6)
    assert flat.power_kw.sum(axis=0).max() < early.power_kw.sum(axis=0).max() - 1.0
    # Early: everything in the first slots, at full power.
    assert early.power_kw[:, 0] == pytest.approx([11.0] * 4)


def test_minimum_current_solved_exactly_when_the_lp_repair_falls_short() -> None:
    """On a small site where 6 A minimums and phase limits bind, the LP's switch-on repair loses energy; the
    exact (MIP) minimum-current path reaches the relaxation's bound there."""
    from pathlib import Path

    from optivgi_csms.scheduling.scenario import parse_scenario

    text = (Path(__file__).parents[2] / "scenarios" / "mixed-phase-30.json").read_text()
    scenario = parse_scenario(text)
    fleet = list(scenario.evs)
    algorithm = LPAlgorithm(
        fleet, scenario.site, scenario.now, resolution=scenario.resolution, horizon=scenario.horizon
    )
    result = algorithm.calculate()
    assert validate(fleet, scenario.site, scenario.now, scenario.resolution, result.power_kw) == []
    best = energy_upper_bound(result.problem)
    assert result.delivered_kwh.sum() >= (1 - 1e-3) * best
    assert result.status == "optimal"
