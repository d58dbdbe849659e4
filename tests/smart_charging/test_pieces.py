"""The pure pieces of the translation: capabilities, shapes, profiles, change detection, deviations, limits,
fair shares and the rehearsal clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from optivgi_csms.domain import site as site_domain
from optivgi_csms.domain.charging_profile import RateUnit
from optivgi_csms.domain.device_model import VariableRef, VariableResult
from optivgi_csms.domain.site import LimitStep, SiteConfig
from optivgi_csms.protocol.commands import ConfigurationKey
from optivgi_csms.scheduling import ALGORITHMS, EV, ChargingRateUnit, Site
from optivgi_csms.smart_charging.book import HeldProfile
from optivgi_csms.smart_charging.capabilities import Capabilities, from_configuration, from_variables
from optivgi_csms.smart_charging.changes import Candidate, change_reason, raises_to_hold, select_sends
from optivgi_csms.smart_charging.deviation import Deviations
from optivgi_csms.smart_charging.evs import UncontrolledLoad
from optivgi_csms.smart_charging.fallback import fair_share_a, fallback_profile
from optivgi_csms.smart_charging.limits import planning_site
from optivgi_csms.smart_charging.profiles import Shape, shapes_for, tx_profile
from optivgi_csms.smart_charging.snapshot import SiteSnapshot, StationInfo
from optivgi_csms.smart_charging.spread import SPREAD_SLOTS, spread
from optivgi_csms.smart_charging.timebase import TimeScale

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_site_algorithms_are_the_scheduling_cores() -> None:
    assert tuple(ALGORITHMS) == site_domain.ALGORITHMS


def test_capabilities_from_16_keys_and_201_variables() -> None:
    keys = [
        ConfigurationKey("ChargeProfileMaxStackLevel", "3", True),
        ConfigurationKey("ChargingScheduleAllowedChargingRateUnit", "Current,Power", True),
        ConfigurationKey("ChargingScheduleMaxPeriods", "2", True),
        ConfigurationKey("NumberOfConnectors", "2", True),
        ConfigurationKey("SupportedFeatureProfiles", "Core,SmartCharging", True),
    ]
    caps = from_configuration(keys, NOW)
    assert (caps.rate_units, caps.max_stack_level, caps.max_periods, caps.evse_count) == (("A", "W"), 3, 2, 2)
    assert caps.controllable and caps.source == "GetConfiguration"
    assert not from_configuration([ConfigurationKey("SupportedFeatureProfiles", "Core", True)], NOW).controllable

    smart = "SmartChargingCtrlr"
    results = [
        VariableResult(VariableRef(smart, "Enabled"), "Accepted", "false"),
        VariableResult(VariableRef(smart, "RateUnit"), "Accepted", "W"),
        VariableResult(VariableRef(smart, "LimitChangeSignificance"), "Accepted", "10"),
        VariableResult(VariableRef(smart, "PeriodsPerSchedule"), "UnknownVariable"),
    ]
    caps = from_variables(results, NOW)
    assert (caps.enabled, caps.rate_units, caps.limit_change_significance_pct, caps.max_periods) == (
        False,
        ("W",),
        10.0,
        None,
    )
    assert Capabilities.from_dict(caps.to_dict()) == caps


def test_shapes_prefer_amperes_and_retry_lower_or_in_the_other_unit() -> None:
    assert shapes_for(Capabilities(max_stack_level=8)) == (Shape(RateUnit.AMPERE, 1, 24), Shape(RateUnit.AMPERE, 0, 24))
    assert shapes_for(Capabilities()) == (Shape(RateUnit.AMPERE, 0, 24), Shape(RateUnit.WATT, 0, 24))
    only_w = Capabilities(rate_units=("W",), max_periods=5)
    assert shapes_for(only_w, ev_periods=3) == (Shape(RateUnit.WATT, 0, 3), Shape(RateUnit.AMPERE, 0, 3))
    assert shapes_for(Capabilities(), dc=True)[0].unit is RateUnit.WATT


def ev_with(powers: list[float], phases: int = 3) -> EV:
    ev = EV("tx-1", True, "CS", 1, 0.0, 22.08, NOW, NOW + 24 * MINUTE, 10.0, ChargingRateUnit.W, 230.0, phases)
    ev.power = powers
    return ev


def test_a_tx_profile_is_rounded_down_with_phases_and_cut_to_the_periods_allowed() -> None:
    ev = ev_with([11.0, 11.0, 7.0, 0.0])
    profile = tx_profile(ev, 7, NOW, MINUTE, Shape(RateUnit.AMPERE, 1, 24))
    assert [(p.start_s, p.limit, p.number_phases) for p in profile.schedule.periods] == [
        (0, 15.9, 3),
        (120, 10.1, 3),
        (180, 0.0, 3),
    ]
    assert (profile.transaction_id, profile.stack_level, profile.schedule.duration_s) == (7, 1, 240)
    cut = tx_profile(ev, 7, NOW, MINUTE, Shape(RateUnit.WATT, 0, 2))
    assert [p.limit for p in cut.schedule.periods] == [11000.0, 7000.0] and cut.schedule.duration_s == 180
    single = tx_profile(ev_with([7.36, 0.0], phases=1), 7, NOW, MINUTE, Shape(RateUnit.AMPERE, 0, 24))
    assert single.schedule.periods[0].limit == 32.0 and single.schedule.periods[0].number_phases == 1


def candidate(old_powers: list[float] | None, new_powers: list[float], key: str = "a") -> Candidate:
    shape = Shape(RateUnit.AMPERE, 1, 24)
    old = tx_profile(ev_with(old_powers), 1, NOW, MINUTE, shape) if old_powers is not None else None
    return Candidate(key, tx_profile(ev_with(new_powers), 1, NOW, MINUTE, shape), old, 230.0, 3, ("L1", "L2", "L3"))


def test_only_meaningful_changes_are_sent() -> None:
    assert change_reason(candidate(None, [11.0]), NOW, MINUTE) == "new"
    assert change_reason(candidate([11.0] * 4, [11.2] * 4), NOW, MINUTE) is None  # 16.2 A vs 15.9 A
    assert change_reason(candidate([11.0] * 4, [9.0] * 4), NOW, MINUTE).startswith("limit 15.9 -> 13")
    assert change_reason(candidate([11.0] * 4, [11.0, 0.0, 11.0, 11.0]), NOW, MINUTE) == "pause"
    forced = candidate([11.0] * 4, [11.0] * 4)
    forced.forced = True
    assert change_reason(forced, NOW, MINUTE) == "requested"
    # the station's profile ends within two slots while the plan goes on
    assert change_reason(candidate([11.0] * 2, [11.0] * 4), NOW + 30 * timedelta(seconds=1), MINUTE) == "expiring"


def test_a_raise_waits_for_lowered_limits_only_when_it_needs_the_room_they_free() -> None:
    site = Site.from_slot_limits([16.0] * 4, NOW, MINUTE)
    starts = [NOW + k * MINUTE for k in range(4)]

    def held(candidates: list[Candidate], sends: list[Candidate]) -> list[str]:
        return sorted(c.key for c in candidates if id(c) in raises_to_hold(candidates, sends, site, starts, MINUTE))

    # B goes 11 -> 5 kW so that A may go 5 -> 11: A needs the room B frees, so A waits; B never does.
    a, b = candidate([5.0] * 4, [11.0] * 4, "a"), candidate([11.0] * 4, [5.0] * 4, "b")
    assert held([a, b], [a, b]) == ["a"]
    # With 7 kW spare (A 5 -> 11, B unchanged at 4), A goes at once.
    a, b = candidate([5.0] * 4, [11.0] * 4, "a"), candidate([4.0] * 4, [4.0] * 4, "b")
    assert held([a, b], [a]) == []
    # A new session runs on nothing of ours: its first profile is a raise from zero (here the site is full).
    a, b = candidate(None, [11.0] * 4, "a"), candidate([16.0] * 4, [5.0] * 4, "b")
    assert held([a, b], [a, b]) == ["a"]
    # B's lowering 16 -> 11 was sent last cycle and is not in force yet: B may still draw 16, A must wait.
    a, b = candidate([0.0] * 4, [5.0] * 4, "a"), candidate([11.0] * 4, [11.0] * 4, "b")
    b.earlier = candidate([16.0] * 4, [16.0] * 4).new
    assert held([a, b], [a]) == ["a"]
    b.earlier = None  # ... now it is: A goes
    assert held([a, b], [a]) == []
    # Room for one of two raises: the smaller goes, the larger waits.
    a, c = candidate([0.0] * 4, [7.0] * 4, "a"), candidate([0.0] * 4, [4.0] * 4, "c")
    b = candidate([11.0] * 4, [11.0] * 4, "b")
    assert held([a, b, c], [a, c]) == ["a"]


def test_a_small_change_is_kept_only_while_the_site_has_room_for_the_old_limits() -> None:
    site = Site.from_slot_limits([22.0] * 4, NOW, MINUTE)
    starts = [NOW + k * MINUTE for k in range(4)]
    # B's new plan is a little lower than what it holds; A takes the rest of the site.
    a, b = candidate(None, [11.5] * 4, "a"), candidate([10.8] * 4, [10.5] * 4, "b")
    assert [c.key for c in select_sends([a, b], site, starts, MINUTE, NOW)] == ["a", "b"]
    assert b.reason == "kept limits would exceed the site's room"
    # with room to spare, B keeps what it holds
    a, b = candidate(None, [10.0] * 4, "a"), candidate([10.8] * 4, [10.5] * 4, "b")
    assert [c.key for c in select_sends([a, b], site, starts, MINUTE, NOW)] == ["a"]
    assert b.reason == "unchanged"


def test_deviations_cap_near_the_draw_and_lift_when_the_ev_takes_it_all() -> None:
    deviations = Deviations()
    assert not deviations.observe(1, 10.5, 11.0, 4.14, NOW)  # noise
    assert deviations.observe(1, 3.0, 11.0, 4.14, NOW)
    assert deviations.cap_kw(1) == 4.14  # never below the minimum
    assert not deviations.observe(1, 3.0, 4.14, 4.14, NOW)  # the cap fits the draw
    assert deviations.observe(1, 4.1, 4.14, 4.14, NOW)  # takes all the cap allows: lifted
    assert deviations.cap_kw(1) is None
    assert deviations.observe(2, 6.0, 11.0, 4.14, NOW) and deviations.cap_kw(2) == pytest.approx(6.6)
    assert deviations.suspended(3, 4.14, NOW) and not deviations.suspended(3, 4.14, NOW)
    assert deviations.resumed(3) and not deviations.resumed(3)


def test_what_an_ev_showed_it_takes_outlives_pauses_and_an_ev_drawing_nothing_is_idle() -> None:
    deviations = Deviations()
    assert deviations.observe(1, 11.0, 22.0, 4.14, NOW)  # an 11 kW car on a 22 kW point
    assert deviations.cap_kw(1) == pytest.approx(12.1)
    assert not deviations.observe(1, 11.0, 0.0, 4.14, NOW)  # paused by the plan: nothing learnt
    assert not deviations.resumed(1) and deviations.cap_kw(1) == pytest.approx(12.1)  # Charging after the pause
    assert not deviations.observe(1, 11.0, 12.1, 4.14, NOW)  # drew what it can of the cap: kept
    # Offered its minimum or more, it takes nothing: it suspended itself (full), its pilot is not counted.
    assert deviations.observe(2, 0.0, 11.0, 4.14, NOW)
    idle = deviations.get(2)
    assert idle is not None and idle.idle and idle.kw == 4.14
    assert not deviations.observe(2, 0.02, 4.14, 4.14, NOW)  # still nothing
    assert deviations.observe(2, 3.0, 4.14, 4.14, NOW)  # it draws again: counted again, at its draw
    again = deviations.get(2)
    assert again is not None and not again.idle and again.kw == 4.14
    assert not deviations.observe(3, 0.0, 2.0, 4.14, NOW)  # offered less than it needs to charge: no verdict
    assert deviations.suspended(4, 4.14, NOW) and deviations.resumed(4) and deviations.get(4) is None


def test_a_reading_is_judged_against_the_lowest_limit_the_ev_had_time_to_follow() -> None:
    ev = EV("e", True, "CS", 1, 0.0, 22.08, NOW, NOW + 4 * MINUTE, 30.0)
    ev.power = [0.0, 11.0, 11.0, 0.0]  # paused in the first slot, 11 kW in the next two
    profile = tx_profile(ev, 7, NOW, MINUTE, Shape(RateUnit.WATT, 0, 10))
    held = HeldProfile(profile, "CS", 1, 7, "accepted", NOW, 230.0, 4.14, NOW, settle=timedelta(seconds=10))
    assert held.offered_kw(NOW + MINUTE + timedelta(seconds=2)) == pytest.approx(11.0)
    # Two seconds into the 11 kW slot the EV may still be paused: such a reading says nothing.
    assert held.offered_kw_settled(NOW + MINUTE + timedelta(seconds=2)) == 0.0
    assert held.offered_kw_settled(NOW + MINUTE + timedelta(seconds=11)) == pytest.approx(11.0)
    # Into the pause: the lower limit counts at once.
    assert held.offered_kw_settled(NOW + 3 * MINUTE + timedelta(seconds=1)) == 0.0
    assert replace(held, state="pending").offered_kw_settled(NOW + 2 * MINUTE) is None
    # A new profile accepted just before the reading: the one the station held until then counts too.
    ev.power = [22.0] * 4
    newer = tx_profile(ev, 7, NOW, MINUTE, Shape(RateUnit.WATT, 0, 10))
    accepted_at = NOW + 2 * MINUTE
    changed = replace(held, profile=newer, since=accepted_at, previous=profile)
    assert changed.offered_kw_settled(accepted_at + timedelta(seconds=3)) == pytest.approx(11.0)
    assert changed.offered_kw_settled(accepted_at + timedelta(seconds=11)) == pytest.approx(22.0)
    assert replace(changed, previous=None).offered_kw_settled(accepted_at + timedelta(seconds=3)) is None


def test_the_planning_site_leaves_room_for_uncontrolled_load() -> None:
    config = SiteConfig(
        id="s", limit_kw=30.0, limit_schedule=(LimitStep(NOW + 2 * MINUTE, 20.0),), phase_limits_a={"L1": 40.0}
    )
    loads = [UncontrolledLoad("CS", 1, 11.04, 3, NOW + 3 * MINUTE, "refused", transaction_id=5)]
    site = planning_site(config, loads, NOW, MINUTE, 5 * MINUTE, 999.0)
    starts = [NOW + k * MINUTE for k in range(5)]
    assert list(site.limits_kw(starts)) == pytest.approx([18.96, 18.96, 8.96, 20.0, 20.0])
    assert site.phase_limit_a["L1"] == pytest.approx(40.0 - 16.0)
    free = planning_site(SiteConfig(id="s", prices=(LimitStep(NOW, 0.3),)), [], NOW, MINUTE, 2 * MINUTE, 999.0)
    assert list(free.limits_kw(starts[:2])) == [999.0, 999.0]


def test_the_fair_share_takes_the_tightest_limit_ahead_over_every_evse() -> None:
    config = SiteConfig(id="s", limit_kw=22.0, limit_schedule=(LimitStep(NOW + MINUTE, 13.8),))
    stations = {f"CS{n}": StationInfo(f"CS{n}", Capabilities(), None, True, n) for n in (1, 2)}
    snapshot = SiteSnapshot(config, NOW, stations)
    share = fair_share_a(snapshot, NOW)
    assert share == pytest.approx(13.8 * 1000 / 3 / 230 / 3)  # 3 EVSEs
    assert fallback_profile(share, Shape(RateUnit.AMPERE, 0, 1), 230.0, NOW).schedule.periods[0].limit == 6.6
    assert fallback_profile(share, Shape(RateUnit.WATT, 0, 1), 230.0, NOW).schedule.periods[0].limit == 4600.0
    assert fair_share_a(SiteSnapshot(SiteConfig(id="s", prices=(LimitStep(NOW, 1.0),)), NOW, stations), NOW) is None


def test_the_rehearsal_clock_shortens_durations_and_energies() -> None:
    scale = TimeScale(60.0)
    assert scale.duration(900) == timedelta(seconds=15)
    assert scale.energy(30.0) == 0.5 and scale.site_energy(0.5) == 30.0
    with pytest.raises(ValueError):
        TimeScale(0.0)


def test_the_next_slots_are_spread_over_the_evs_the_plan_charges_in_them() -> None:
    quarter = timedelta(minutes=15)
    evs = [EV(f"e{n}", True, f"CS{n}", 1, 0.0, 22.08, NOW, NOW + 8 * quarter, 60.0) for n in range(4)]
    evs.append(EV("one-phase", True, "CS9", 1, 0.0, 7.36, NOW, NOW + 8 * quarter, 60.0, phases=1))
    site = Site(limit_kw=30.0, phase_limit_a={"L1": 60.0, "L2": 60.0, "L3": 60.0})
    algorithm = ALGORITHMS["lp"](evs, site, NOW, resolution=quarter, horizon=8 * quarter)
    result = algorithm.calculate()
    problem, planned = result.problem, result.power_kw
    minimum = np.array([4.14] * 4 + [1.38])
    spread_kw = spread(problem, planned, minimum)
    window = slice(0, SPREAD_SLOTS)
    # Per slot, the site's total and every phase's current are the plan's ...
    assert spread_kw.sum(axis=0) == pytest.approx(planned.sum(axis=0))
    assert spread_kw.T @ problem.phase_coef == pytest.approx(planned.T @ problem.phase_coef)
    # ... later slots are left as planned, and where the plan's total is steady each EV's power is too.
    assert np.array_equal(spread_kw[:, SPREAD_SLOTS:], planned[:, SPREAD_SLOTS:])
    three_phase = slice(0, 4)
    assert np.ptp(planned[three_phase, window].sum(axis=0)) < 1e-6
    assert (np.ptp(spread_kw[three_phase, window], axis=1) < 1e-6).all()
    # An EV the plan charges in those slots charges in each of them (no pause and resume), within its limits.
    for i in range(len(evs)):
        row = spread_kw[i, window]
        if planned[i, window].sum() > 0:
            assert (row >= minimum[i] - 1e-6).all() and (row <= problem.max_kw[i] + 1e-6).all()
        else:
            assert (row == 0).all()
    # More EVs charge at once than in the plan's vertex, none of them above what the plan gave the busiest.
    assert (spread_kw[:, 0] > 0).sum() >= (planned[:, 0] > 0).sum()
    assert spread_kw[:, 0].max() <= planned[:, 0].max() + 1e-6
