"""The flow path: its cut certificate, its energy against the LP, its fairness, validity for any input."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optivgi_csms.scheduling import EV, LPAlgorithm, Problem, Site, validate
from optivgi_csms.scheduling.algorithms.augment import augment
from optivgi_csms.scheduling.algorithms.bounds import dual_bound
from optivgi_csms.scheduling.algorithms.cut_flow import applies, cut_schedule, fair_targets, fill_in_order
from optivgi_csms.scheduling.algorithms.lp import energy_upper_bound
from optivgi_csms.scheduling.algorithms.network import SegmentNetwork
from optivgi_csms.scheduling.metrics import compute_metrics
from tests.scheduling.conftest import NOW, SLOT, make_ev
from tests.scheduling.test_blocks import MINUTE, congested_minute_site, random_site
from tests.scheduling.test_properties import evs, sites


def minute_problem(fleet: list[EV], site: Site) -> Problem:
    return Problem.build(fleet, site, NOW, MINUTE, 480)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_evs=st.integers(1, 12), n_slots=st.integers(2, 24))
def test_every_cut_is_a_true_upper_bound(seed: int, n_evs: int, n_slots: int) -> None:
    """Prefix cuts, any cut, and the residual cut of any schedule bound the per-slot LP from above; the
    prefix cut's bound is the weak-duality bound with price 1 on the prefix."""
    rng = np.random.default_rng(seed)
    fleet, site = random_site(rng, n_evs, n_slots)
    problem = Problem.build(fleet, site, NOW, SLOT, n_slots)
    best = energy_upper_bound(problem)
    net = SegmentNetwork.build(problem)
    assert (net.prefix_cuts() >= best - 1e-6).all()
    tau, bound = net.best_prefix()
    price = np.zeros(problem.n_slots)
    price[: net.segments.first[tau]] = problem.dt_h
    assert bound == pytest.approx(dual_bound(problem, price), abs=1e-6)
    assert net.cut_bound(rng.random(net.n_segments) < 0.5) >= best - 1e-6
    power, _ = cut_schedule(net)
    assert net.cut_bound(net.residual_cut(net.to_segments(power))) >= best - 1e-6


@pytest.mark.parametrize("seed", range(8))
def test_flow_energy_equals_the_lp_within_the_gap_on_random_sites(seed: int) -> None:
    """On congested sites without phase limits or prices, the flow path is taken and delivers within 0.1% of
    the per-slot LP's optimum (an upper bound even for the LP, which has no minimum-current rule)."""
    rng = np.random.default_rng(100 + seed)
    fleet, site = random_site(rng, 30, 40)
    kwargs = {"resolution": SLOT, "horizon": 40 * SLOT}
    flow = LPAlgorithm(fleet, site, NOW, flow_path=True, **kwargs).calculate()
    lp = LPAlgorithm(fleet, site, NOW, flow_path=False, **kwargs).calculate()
    assert validate(fleet, site, NOW, SLOT, flow.power_kw) == []
    best = energy_upper_bound(flow.problem)
    assert flow.energy_bound_kwh is not None and flow.energy_bound_kwh >= best - 1e-6
    assert flow.path == "flow" and flow.status == "optimal"
    delivered = float(flow.delivered_kwh.sum())
    assert delivered >= (1 - 1e-3) * best - 1e-6
    assert delivered >= float(lp.delivered_kwh.sum()) * (1 - 1e-3) - 1e-6


def test_flow_path_on_opti_vgi_setting_is_exact_and_smooth() -> None:
    """1-minute slots over 8 hours at 30% of installed power, 6 A minimum: the flow path meets its cut's
    bound (the per-slot optimum) and restarts EVs far less than GoAlgorithm."""
    from optivgi_csms.scheduling import GoAlgorithm

    fleet, site = congested_minute_site(60, seed=4)
    horizon = timedelta(hours=8)
    flow = LPAlgorithm(fleet, site, NOW, resolution=MINUTE, horizon=horizon).calculate()
    go = GoAlgorithm(fleet, site, NOW, resolution=MINUTE, horizon=horizon).calculate()
    assert flow.path == "flow"
    assert validate(fleet, site, NOW, MINUTE, flow.power_kw) == []
    assert flow.delivered_kwh.sum() >= (1 - 1e-3) * energy_upper_bound(flow.problem)
    assert flow.delivered_kwh.sum() >= go.delivered_kwh.sum() - 1e-6
    ours, theirs = compute_metrics(flow.problem, flow.power_kw), compute_metrics(go.problem, go.power_kw)
    assert ours.restarts <= theirs.restarts


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=evs(), site=sites(), n_slots=st.integers(1, 16))
def test_flow_path_always_valid(fleet: list[EV], site: Site, n_slots: int) -> None:
    """Forced on any input (it is skipped where it does not apply): valid, never above its bound, and only
    called optimal within the gap."""
    result = LPAlgorithm(fleet, site, NOW, resolution=SLOT, horizon=n_slots * SLOT, flow_path=True).calculate()
    assert validate(fleet, site, NOW, SLOT, result.power_kw) == []
    delivered = float(result.delivered_kwh.sum())
    assert result.energy_bound_kwh is not None and delivered <= result.energy_bound_kwh + 1e-6
    if result.path == "flow":
        assert applies(result.problem)
        assert result.status == "optimal"
        assert delivered >= (1 - 1e-3) * result.energy_bound_kwh - 1e-6


def test_flow_path_is_skipped_where_it_does_not_apply() -> None:
    fleet = [make_ev(f"e{k}", phases=1, phase_map=("L1",), max_kw=7.4, end=60, energy=20) for k in range(40)]
    limited = Site(limit_kw=100.0, phase_limit_a={"L1": 32.0})
    problem = Problem.build(fleet, limited, NOW, SLOT, 60)
    assert not applies(problem)
    result = LPAlgorithm(fleet, limited, NOW, resolution=SLOT, horizon=60 * SLOT).calculate()
    assert result.path != "flow"
    assert validate(fleet, limited, NOW, SLOT, result.power_kw) == []
    # A phase limit that can never bind leaves the network the whole first stage.
    assert applies(Problem.build(fleet, Site(limit_kw=100.0, phase_limit_a={"L1": 5000.0}), NOW, SLOT, 60))


def test_fair_targets_share_the_congested_capacity_max_min() -> None:
    """Two identical EVs split evenly; a small request is never behind a big one in served share."""
    site = Site(limit_kw=10.0, min_current_a=0.0)
    same = [make_ev("a", end=8, energy=20.0), make_ev("b", end=8, energy=20.0)]
    result = LPAlgorithm(same, site, NOW, resolution=SLOT, horizon=8 * SLOT, flow_path=True).calculate()
    assert result.path == "flow"
    assert result.delivered_kwh == pytest.approx([10.0, 10.0], rel=1e-6)
    uneven = [make_ev("small", end=8, energy=4.0), make_ev("big", end=8, energy=40.0)]
    result = LPAlgorithm(uneven, site, NOW, resolution=SLOT, horizon=8 * SLOT, flow_path=True).calculate()
    small, big = result.delivered_kwh
    assert small + big == pytest.approx(20.0, rel=1e-6)
    assert small / 4.0 >= big / 40.0 - 1e-6


def test_fair_targets_raise_the_least_served_first() -> None:
    """Everyone below the common share level is held only by what it can take before the cut."""
    rng = np.random.default_rng(8)
    fleet, site = random_site(rng, 20, 30)
    net = SegmentNetwork.build(Problem.build(fleet, site, NOW, SLOT, 30))
    tau, _ = net.best_prefix()
    after = net.cap_from[tau]
    target = fair_targets(net, tau, after)
    request = net.problem.energy_kwh
    most = np.minimum(np.maximum(request - after, 0.0), net.cap_from[0] - after)
    assert target.sum() == pytest.approx(min(net.site[:tau].sum(), most.sum()), rel=1e-9)
    share = (np.minimum(after, request) + target) / np.maximum(request, 1e-9)
    level = share[(target > 1e-9) & (target < most - 1e-9)]
    if len(level):
        # Below the level only those that cannot take more; above it only those with no congested share.
        assert np.ptp(level) < 1e-6
        below = share < level.min() - 1e-6
        assert (target[below] >= most[below] - 1e-9).all()


def test_fill_in_order_keeps_minimums_and_uses_a_small_remainder() -> None:
    give, left = fill_in_order(np.array([4.0, 3.0, 5.0]), np.array([1.0, 1.0, 1.0]), 8.0)
    assert give.tolist() == [4.0, 3.0, 1.0] and left == 0.0
    # 1.5 left after the first, the second needs 2: it takes 2, the first gives up 0.5 and keeps over 1.
    give, left = fill_in_order(np.array([5.0, 4.0]), np.array([1.0, 2.0]), 6.5)
    assert give == pytest.approx([4.5, 2.0]) and left == pytest.approx(0.0)
    # Nobody can use what is left: it stays.
    give, left = fill_in_order(np.array([5.0, 4.0]), np.array([4.9, 4.0]), 6.0)
    assert give.tolist() == [5.0, 0.0] and left == pytest.approx(1.0)


def test_augmenting_paths_reach_the_cut_without_minimums() -> None:
    """From an empty schedule, augmenting paths alone reach the maximum flow, and the residual cut of the
    result is tight (a minimum cut: its bound equals what is delivered)."""
    rng = np.random.default_rng(21)
    fleet, site = random_site(rng, 12, 20)
    problem = Problem.build(fleet, site, NOW, SLOT, 20)
    net = SegmentNetwork.build(problem)
    x = np.zeros((net.n_segments, problem.n_evs))
    augment(net, x, rounds=10_000, seconds=30.0)
    assert (x <= net.cap + 1e-9).all() and (x.sum(axis=1) <= net.site + 1e-9).all()
    assert (x.sum(axis=0) <= problem.energy_kwh + 1e-9).all()
    best = energy_upper_bound(problem)
    assert x.sum() == pytest.approx(best, rel=1e-7, abs=1e-6)
    assert net.cut_bound(net.residual_cut(x)) == pytest.approx(best, rel=1e-7, abs=1e-6)
