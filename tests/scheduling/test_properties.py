"""Property-based: random sites, every algorithm, every constraint of scenarios/FORMAT.md."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optivgi_csms.scheduling import ALGORITHMS, EV, Site, Step, validate
from optivgi_csms.scheduling.metrics import compute_metrics
from tests.scheduling.conftest import NOW, SLOT, make_ev

PHASES = ("L1", "L2", "L3")


@st.composite
def evs(draw: st.DrawFn, max_evs: int = 8) -> list[EV]:
    out = []
    for k in range(draw(st.integers(0, max_evs))):
        phases = draw(st.sampled_from([1, 3]))
        start = draw(st.one_of(st.floats(-6, 14), st.sampled_from([-20.0, 0.0, 30.0])))
        length = draw(st.one_of(st.floats(0, 14), st.just(0.0)))
        out.append(
            make_ev(
                f"ev{k}",
                start=start,
                end=start + length,
                energy=draw(st.one_of(st.just(0.0), st.floats(0, 80), st.just(-3.0))),
                max_kw=draw(st.one_of(st.just(0.0), st.floats(0, 22), st.just(-1.0))),
                min_kw=draw(st.one_of(st.just(0.0), st.floats(0, 8))),
                phases=phases,
                phase_map=(draw(st.sampled_from(PHASES)),) if phases == 1 else PHASES,
                active=draw(st.booleans()),
            )
        )
    return out


@st.composite
def sites(draw: st.DrawFn) -> Site:
    limit = draw(st.one_of(st.just(0.0), st.floats(0, 120), st.just(-5.0)))
    steps = tuple(
        Step(NOW + draw(st.integers(0, 12)) * SLOT, draw(st.floats(0, 80))) for _ in range(draw(st.integers(0, 2)))
    )
    phase_limits = draw(st.one_of(st.just({}), st.dictionaries(st.sampled_from(PHASES), st.floats(0, 120), max_size=3)))
    prices = None
    if draw(st.booleans()):
        prices = tuple(
            Step(NOW + draw(st.integers(-2, 12)) * SLOT, draw(st.floats(0, 1))) for _ in range(draw(st.integers(1, 3)))
        )
    return Site(
        limit_kw=limit,
        limit_kw_schedule=steps,
        phase_limit_a=phase_limits,
        price_per_kwh=prices,
        min_current_a=draw(st.sampled_from([0.0, 6.0, 6.0, 16.0])),
    )


def _check(name: str, fleet: list[EV], site: Site, n_slots: int) -> None:
    algorithm = ALGORITHMS[name](fleet, site, NOW, resolution=SLOT, horizon=n_slots * SLOT)
    result = algorithm.calculate()
    assert result.power_kw.shape == (len(fleet), n_slots)
    assert validate(fleet, site, NOW, SLOT, result.power_kw) == []
    # Reservations are planned, never charged in the slot being applied now if they are not there.
    for i, ev in enumerate(fleet):
        if not ev.active and ev.arrival_time <= NOW:
            assert result.power_kw[i, 0] == 0.0
        assert len(ev.power) == n_slots
    # Whatever is not delivered is explained.
    metrics = compute_metrics(result.problem, result.power_kw)
    short = {s.ev_id for s in result.shortfalls}
    for i, ev in enumerate(fleet):
        wanted = max(ev.energy_kwh, 0.0)
        if result.delivered_kwh[i] < wanted - 1e-6:
            assert ev.ev_id in short
    assert metrics.delivered_kwh <= metrics.requested_kwh + 1e-6


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=evs(), site=sites(), n_slots=st.integers(1, 16))
def test_lp_always_valid(fleet: list[EV], site: Site, n_slots: int) -> None:
    _check("lp", fleet, site, n_slots)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fleet=evs(), site=sites(), n_slots=st.integers(1, 16), name=st.sampled_from(["go", "uncontrolled", "edf", "llf"])
)
def test_heuristics_always_valid(fleet: list[EV], site: Site, n_slots: int, name: str) -> None:
    _check(name, fleet, site, n_slots)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=evs(max_evs=3), site=sites(), n_slots=st.integers(1, 4))
def test_pulp_always_valid(fleet: list[EV], site: Site, n_slots: int) -> None:
    _check("pulp", fleet, site, n_slots)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=evs(), site=sites(), n_slots=st.integers(1, 12))
def test_lp_delivers_at_least_what_the_heuristics_do(fleet: list[EV], site: Site, n_slots: int) -> None:
    """The LP never delivers less than GoAlgorithm (its starting point) beyond the min-current repair."""
    horizon = n_slots * SLOT
    lp = ALGORITHMS["lp"](fleet, site, NOW, resolution=SLOT, horizon=horizon).calculate()
    go = ALGORITHMS["go"](fleet, site, NOW, resolution=SLOT, horizon=horizon).calculate()
    bound = lp.energy_bound_kwh or 0.0
    assert lp.delivered_kwh.sum() <= bound + 1e-6
    assert go.delivered_kwh.sum() <= bound + 1e-6
    # Without the minimum-current rule the LP is exact, so it can only do better.
    if site.min_current_a == 0 and all(ev.min_power <= 0 for ev in fleet):
        assert lp.delivered_kwh.sum() >= go.delivered_kwh.sum() * (1 - 2e-4) - 1e-6


def test_long_horizon_one_minute_resolution_is_valid() -> None:
    rng = np.random.default_rng(3)
    fleet = [
        make_ev(f"e{k}", start=float(rng.uniform(-30, 200)), end=float(rng.uniform(200, 480)), energy=30, max_kw=11)
        for k in range(20)
    ]
    site = Site(limit_kw=60.0)
    minute = timedelta(minutes=1)
    for name in ("lp", "go"):
        result = ALGORITHMS[name](fleet, site, NOW, resolution=minute, horizon=timedelta(hours=8)).calculate()
        assert validate(fleet, site, NOW, minute, result.power_kw) == []
