"""The inputs that broke Opti-VGI, and the failures that must not break us."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from optivgi_csms.scheduling import ALGORITHMS, EV, LPAlgorithm, Site, validate
from optivgi_csms.scheduling.algorithms import lp as lp_module
from tests.scheduling.conftest import NOW, SLOT, make_ev

ALL = list(ALGORITHMS)


def solve(name: str, fleet: list, site: Site, n_slots: int = 8):
    result = ALGORITHMS[name](fleet, site, NOW, resolution=SLOT, horizon=n_slots * SLOT).calculate()
    assert validate(fleet, site, NOW, SLOT, result.power_kw) == []
    return result


@pytest.mark.parametrize("name", ALL)
def test_one_empty_window_does_not_stop_the_others(name: str) -> None:
    # Opti-VGI's LP scheduled nothing at all when one EV had an empty window.
    fleet = [
        make_ev("departed", start=-8, end=-1),
        make_ev("far-future", start=100, end=120, active=False),
        make_ev("ok", energy=5.0),
    ]
    result = solve(name, fleet, Site(limit_kw=22.0, min_current_a=6.0))
    assert result.delivered_kwh[2] == pytest.approx(5.0)
    reasons = {s.ev_id: s.reason for s in result.shortfalls}
    assert "horizon" in reasons["departed"] and "horizon" in reasons["far-future"]


@pytest.mark.parametrize("name", ALL)
def test_zero_energy_and_zero_limit(name: str) -> None:
    assert solve(name, [make_ev("a", energy=0.0)], Site(limit_kw=22.0)).power_kw.sum() == 0.0
    result = solve(name, [make_ev("a", energy=5.0)], Site(limit_kw=0.0))
    assert result.power_kw.sum() == 0.0
    assert result.shortfalls[0].ev_id == "a"


@pytest.mark.parametrize("name", ALL)
def test_never_over_delivers(name: str) -> None:
    result = solve(name, [make_ev("a", energy=1.0, max_kw=22.0)], Site(limit_kw=100.0, min_current_a=0.0))
    assert result.delivered_kwh[0] == pytest.approx(1.0, abs=1e-6) or result.delivered_kwh[0] < 1.0


@pytest.mark.parametrize("name", ALL)
def test_minimums_that_cannot_all_fit_charge_fewer_evs(name: str) -> None:
    # Opti-VGI's heuristic broke the site limit here: ten EVs with 4.14 kW minimums on a 10 kW site.
    fleet = [make_ev(f"e{k}", energy=20.0) for k in range(10)]
    result = solve(name, fleet, Site(limit_kw=10.0, min_current_a=6.0))
    assert result.power_kw.sum(axis=0).max() <= 10.0 + 1e-6
    assert ((result.power_kw > 0).sum(axis=0) <= 2).all()


@pytest.mark.parametrize("name", ALL)
def test_minimum_above_maximum_is_reported(name: str) -> None:
    fleet = [make_ev("weak", max_kw=1.0, energy=5.0)]  # 6 A × 3 phases = 4.14 kW > 1 kW
    result = solve(name, fleet, Site(limit_kw=22.0, min_current_a=6.0))
    assert result.power_kw.sum() == 0.0
    assert "minimum" in result.shortfalls[0].reason


@pytest.mark.parametrize("name", ALL)
def test_nonsense_numbers_do_not_raise(name: str) -> None:
    fleet = [
        make_ev("nan", energy=float("nan")),
        make_ev("neg", energy=-5.0, max_kw=-3.0),
        make_ev("inf", energy=float("inf"), max_kw=11.0),
    ]
    fleet.append(EV("volt", True, "CP", 1, 0.0, 11.0, NOW, NOW + 4 * SLOT, 5.0, voltage=0.0))
    solve(name, fleet, Site(limit_kw=float("nan"), phase_limit_a={"L1": -4.0}))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        make_ev("a").__class__("x", True, "CP", 1, 0, 11, datetime(2026, 1, 1), NOW, 5.0)
    with pytest.raises(ValueError, match="timezone"):
        LPAlgorithm([], [10.0], datetime(2026, 1, 1))


def test_opti_vgi_style_list_of_limits() -> None:
    fleet = [make_ev("a", energy=5.0)]
    algorithm = LPAlgorithm(fleet, [11.0, 11.0, 0.0, 11.0], NOW, resolution=SLOT)
    result = algorithm.calculate()
    assert result.power_kw.shape == (1, 4)
    assert result.power_kw[0, 2] == 0.0
    assert fleet[0].energy_charged(SLOT) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="slots"):
        LPAlgorithm(fleet, [11.0] * 4, NOW, resolution=SLOT, horizon=timedelta(hours=2))


def test_solver_failure_falls_back_to_go(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(lp_module, "lp_schedule", broken)
    fleet = [make_ev("a", energy=5.0)]
    result = LPAlgorithm(fleet, Site(limit_kw=22.0), NOW, resolution=SLOT, horizon=4 * SLOT).calculate()
    assert result.status == "fallback"
    assert "GoAlgorithm" in result.notes[0]
    assert result.delivered_kwh[0] == pytest.approx(5.0)


def test_solver_time_limit_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = [make_ev(f"e{k}", energy=30.0) for k in range(20)]
    result = LPAlgorithm(
        fleet, Site(limit_kw=40.0), NOW, resolution=SLOT, horizon=8 * SLOT, time_limit_s=0.0
    ).calculate()
    assert result.status == "fallback"
    assert validate(fleet, Site(limit_kw=40.0), NOW, SLOT, result.power_kw) == []


def test_a_user_algorithm_that_breaks_limits_is_made_valid() -> None:
    from optivgi_csms.scheduling import Algorithm, Solution

    class Greedy(Algorithm):
        name = "greedy"

        def solve(self, problem):  # everything at full power, always
            return Solution(np.full((problem.n_evs, problem.n_slots), 50.0))

    fleet = [make_ev("a", energy=5.0), make_ev("b", energy=5.0)]
    site = Site(limit_kw=12.0)
    result = Greedy(fleet, site, NOW, resolution=SLOT, horizon=4 * SLOT).calculate()
    assert validate(fleet, site, NOW, SLOT, result.power_kw) == []
    assert any("lowered" in note for note in result.notes)


def test_results_are_in_the_ev_unit() -> None:
    from optivgi_csms.scheduling import ChargingRateUnit

    ev = EV("a", True, "CP", 1, 0.0, 16.0, NOW, NOW + 4 * SLOT, 10.0, unit=ChargingRateUnit.A, phases=3)
    # 16 A × 230 V × 3 = 11.04 kW; 10 Ah per phase = 6.9 kWh.
    assert ev.max_kw == pytest.approx(11.04)
    LPAlgorithm([ev], Site(limit_kw=50.0, min_current_a=6.0), NOW, resolution=SLOT, horizon=4 * SLOT).calculate()
    assert max(ev.power) == pytest.approx(16.0)
    assert ev.energy_charged(SLOT) == pytest.approx(10.0)
    assert datetime.now(UTC) > NOW - timedelta(days=10000)
