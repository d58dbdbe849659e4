"""The EV model against hand-worked cases: acceptance, taper, pausing, draw factor, phases, energy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.ev import EVModel, EVSpec

V = 230.0


def ev(**overrides: object) -> EVModel:
    spec = {"ev_id": "EV-1", "battery_kwh": 60.0, "soc_initial": 0.5, "soc_target": 0.9, "max_kw": 11.0}
    spec.update(overrides)
    return EVModel(EVSpec(**spec))  # type: ignore[arg-type]


def test_acceptance_of_a_three_phase_charger() -> None:
    # 11 kW over 3 phases at 230 V: 11000 / (230 × 3) = 15.942 A per phase.
    assert ev().acceptance_a(V) == pytest.approx(15.942, abs=1e-3)


def test_acceptance_of_a_single_phase_charger() -> None:
    # 7.4 kW on one phase: 7400 / 230 = 32.17 A.
    assert ev(max_kw=7.4, phases=1).acceptance_a(V) == pytest.approx(32.174, abs=1e-3)


def test_draw_is_the_smaller_of_offer_and_acceptance() -> None:
    car = ev()
    # Offer 10 A < 15.94 A acceptance: takes the offer.
    assert car.draw_a(10.0, V) == 10.0
    # Offer 32 A > acceptance: takes its 15.94 A.
    assert car.draw_a(32.0, V) == pytest.approx(15.942, abs=1e-3)


def test_offer_below_the_minimum_current_pauses() -> None:
    car = ev()
    # IEC 61851: below 6 A the EV pauses; exactly 6 A charges.
    assert car.draw_a(5.9, V) == 0.0
    assert car.draw_a(0.0, V) == 0.0
    assert car.draw_a(6.0, V) == 6.0
    # A car with a higher minimum (some need 8 A) pauses at 7 A.
    assert ev(min_current_a=8.0).draw_a(7.0, V) == 0.0


def test_draw_factor_takes_a_fraction_of_what_it_could() -> None:
    car = ev(draw_factor=0.5)
    # Offer 10 A, could take 10 A, takes half: 5 A (below 6 A is fine: the offer was not).
    assert car.draw_a(10.0, V) == 5.0
    # Offer 32 A, could take 15.942 A, takes 7.971 A.
    assert car.draw_a(32.0, V) == pytest.approx(7.971, abs=1e-3)


def test_taper_near_full() -> None:
    # Taper from 80 % (fraction 1) to 100 % (fraction 0.1). At 90 %: halfway, 1 − 0.9 × 0.5 = 0.55;
    # 11 kW × 0.55 = 6.05 kW → 6050 / 690 = 8.768 A per phase.
    car = ev(soc_initial=0.9, soc_target=1.0)
    assert car.taper_fraction() == pytest.approx(0.55)
    assert car.acceptance_a(V) == pytest.approx(8.768, abs=1e-3)
    assert car.draw_a(16.0, V) == pytest.approx(8.768, abs=1e-3)
    # At or below 80 % there is no taper.
    assert ev(soc_initial=0.8).taper_fraction() == 1.0
    # At 100 % (target 100 %) it is full and takes nothing; the floor applies just below.
    assert ev(soc_initial=0.999, soc_target=1.0).taper_fraction() == pytest.approx(0.1 + 0.9 * 0.005)


def test_taper_soc_of_one_means_no_taper() -> None:
    assert ev(soc_initial=0.95, soc_target=1.0, taper_soc=1.0).taper_fraction() == 1.0


def test_full_ev_draws_nothing() -> None:
    car = ev(soc_initial=0.9, soc_target=0.9)
    assert car.full
    assert car.acceptance_a(V) == 0.0
    assert car.draw_a(32.0, V) == 0.0
    assert car.advance(16.0, V, 3600) == 0.0
    assert car.delivered_kwh == 0.0


def test_power_over_the_phases_it_uses() -> None:
    # 16 A on 3 phases: 16 × 230 × 3 = 11.04 kW; a 1-phase EV at 16 A: 3.68 kW.
    assert ev().power_kw(16.0, V) == pytest.approx(11.04)
    assert ev(phases=1).power_kw(16.0, V) == pytest.approx(3.68)
    # A 1-phase EV on a 3-phase station still uses one phase; a 3-phase EV on a 1-phase supply, one.
    assert ev(phases=1).power_kw(16.0, V, supply_phases=3) == pytest.approx(3.68)
    assert ev().power_kw(16.0, V, supply_phases=1) == pytest.approx(3.68)
    assert ev().phases_used(1) == 1 and ev(phases=1).phases_used(3) == 1 and ev().phases_used() == 3


def test_three_phase_charger_on_a_single_phase_supply_keeps_its_per_phase_limit() -> None:
    # Its 11 kW charger is three 3.67 kW modules: on one phase it still takes 15.94 A, i.e. 3.67 kW.
    car = ev()
    current = car.draw_a(32.0, V, supply_phases=1)
    assert current == pytest.approx(15.942, abs=1e-3)
    assert car.power_kw(current, V, supply_phases=1) == pytest.approx(11.0 / 3)


def test_advance_integrates_energy_and_soc() -> None:
    car = ev()
    # 16 A × 3 × 230 V = 11.04 kW for 30 min = 5.52 kWh; SoC 0.5 + 5.52 / 60 = 0.592.
    added = car.advance(16.0, V, 1800)
    assert added == pytest.approx(5.52)
    assert car.delivered_kwh == pytest.approx(5.52)
    assert car.soc == pytest.approx(0.592)
    assert car.remaining_kwh == pytest.approx((0.9 - 0.592) * 60)


def test_advance_never_passes_the_target() -> None:
    # 0.6 kWh left (60 kWh × (0.8 − 0.79)); an hour at 11.04 kW would be 11.04 kWh.
    car = ev(soc_initial=0.79, soc_target=0.8)
    assert car.advance(16.0, V, 3600) == pytest.approx(0.6)
    assert car.soc == 0.8 and car.full
    assert car.advance(16.0, V, 3600) == 0.0
    assert car.delivered_kwh == pytest.approx(0.6)


def test_requested_energy() -> None:
    # 50 kWh from 20 % to 80 %: 30 kWh; nothing when already past the target.
    assert EVSpec("E", 50.0, 0.2, 0.8, 11.0).requested_kwh == pytest.approx(30.0)
    assert EVSpec("E", 50.0, 0.9, 0.8, 11.0).requested_kwh == 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("battery_kwh", 0.0),
        ("soc_initial", 1.2),
        ("soc_target", -0.1),
        ("max_kw", 0.0),
        ("phases", 4),
        ("min_current_a", -1.0),
        ("draw_factor", 0.0),
        ("draw_factor", 1.5),
        ("taper_soc", 1.5),
        ("taper_floor", 0.0),
    ],
)
def test_bad_spec_names_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        ev(**{field: value})


def test_bad_arguments() -> None:
    car = ev()
    with pytest.raises(ValueError, match="voltage"):
        car.acceptance_a(0.0)
    with pytest.raises(ValueError, match="offered"):
        car.draw_a(-1.0, V)
    with pytest.raises(ValueError, match="current"):
        car.advance(-1.0, V, 1)
    with pytest.raises(ValueError, match="time step"):
        car.advance(1.0, V, -1)
    with pytest.raises(ValueError, match="supply phases"):
        car.phases_used(0)


@settings(max_examples=150, deadline=None)
@given(
    soc=st.floats(0.0, 1.0),
    target=st.floats(0.0, 1.0),
    max_kw=st.floats(1.0, 50.0),
    phases=st.sampled_from([1, 3]),
    draw_factor=st.floats(0.1, 1.0),
    offers=st.lists(st.floats(0.0, 80.0), min_size=1, max_size=20),
    step_s=st.floats(1.0, 900.0),
)
def test_never_above_offer_or_acceptance_and_never_past_target(
    soc: float, target: float, max_kw: float, phases: int, draw_factor: float, offers: list[float], step_s: float
) -> None:
    car = ev(soc_initial=soc, soc_target=target, max_kw=max_kw, phases=phases, draw_factor=draw_factor)
    start = car.soc
    for offer in offers:
        drawn = car.draw_a(offer, V)
        assert 0.0 <= drawn <= offer
        assert drawn <= car.acceptance_a(V) + 1e-9
        car.advance(drawn, V, step_s)
        assert car.soc <= max(start, target) + 1e-12
    # Every kWh metered went into the battery.
    assert car.delivered_kwh == pytest.approx((car.soc - start) * 60.0, abs=1e-9)
