"""The limit in force and the composite schedule against hand-worked cases, and two properties.

Every case runs on a 2-EVSE station at 230 V from Monday 2025-03-03 08:00 UTC (``T0``); the
hardware maximum of a composite is 32 A per phase unless said otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    RecurrencyKind,
)
from simulators.smart_charging import ProfileStore, from_per_phase_a
from tests.simulators.profile_builders import (
    DEFAULT,
    EXTERNAL,
    MAX,
    T0,
    TX,
    A,
    V,
    W,
    at,
    install,
    periods,
    profile,
    store,
)

DAILY = {"kind": ProfileKind.RECURRING, "recurrency": RecurrencyKind.DAILY}
WEEKLY = {"kind": ProfileKind.RECURRING, "recurrency": RecurrencyKind.WEEKLY}
RELATIVE = {"kind": ProfileKind.RELATIVE}


def limit(
    target: ProfileStore,
    when: datetime,
    *,
    evse_id: int = 1,
    tx_start: datetime | None = None,
    phases: int = 3,
    max_a: float | None = None,
) -> float | None:
    return target.limit_a(evse_id, when, transaction_start=tx_start, phases=phases, voltage_v=V, max_current_a=max_a)


def composite(
    target: ProfileStore,
    start: datetime,
    duration_s: int,
    unit: RateUnit = A,
    *,
    evse_id: int = 1,
    tx_start: datetime | None = None,
    phases: int = 3,
) -> ChargingSchedule:
    return target.composite(evse_id, start, duration_s, unit, transaction_start=tx_start, phases=phases, voltage_v=V)


# -- nothing installed ------------------------------------------------------------------------


def test_without_profiles_only_the_hardware_limits() -> None:
    target = store()
    assert limit(target, T0) is None
    assert limit(target, T0, max_a=32.0) == 32.0
    schedule = composite(target, T0, 3600)
    assert (schedule.unit, schedule.start, schedule.duration_s) == (A, T0, 3600)
    assert periods(schedule) == [(0, 32.0)]
    assert schedule.periods[0].number_phases == 3
    # In W: 32 A × 230 V × 3 = 22080 W.
    assert periods(composite(target, T0, 3600, W)) == [(0, 22080.0)]


# -- stacking ---------------------------------------------------------------------------------


def test_highest_stack_level_wins_even_when_it_allows_more() -> None:
    # Stacking is precedence, not a minimum: level 1's 20 A beats level 0's 10 A.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 10.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 20.0), level=1))
    assert limit(target, T0) == 20.0


def test_validity_window() -> None:
    # Level 1 (10 A) is valid 09:00–10:00 over level 0 (16 A): 16 / 10 / 16.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=1, valid_from=at(1), valid_to=at(2)))
    assert limit(target, at(0.5)) == 16.0
    assert limit(target, at(1)) == 10.0
    assert limit(target, at(2) - timedelta(seconds=1)) == 10.0
    assert limit(target, at(2)) == 16.0  # validTo is exclusive
    assert periods(composite(target, T0, 3 * 3600)) == [(0, 16.0), (3600, 10.0), (7200, 16.0)]


def test_duration_elapsed_lets_the_lower_level_through() -> None:
    # Level 1: 6 A for 1800 s from 08:00, then level 0's 16 A.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 6.0), level=1, duration_s=1800))
    assert periods(composite(target, T0, 3600)) == [(0, 6.0), (1800, 16.0)]


def test_schedule_not_started_yet() -> None:
    # Level 1 starts at 09:00 (8 A): before that level 0's 16 A applies.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 8.0), level=1, start=at(1)))
    assert limit(target, at(0.5)) == 16.0
    assert limit(target, at(1)) == 8.0
    assert periods(composite(target, T0, 2 * 3600)) == [(0, 16.0), (3600, 8.0)]


def test_levels_lapse_one_after_another() -> None:
    # Level 2 for 600 s (6 A), level 1 for 1200 s (10 A), level 0 for ever (16 A).
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=1, duration_s=1200))
    install(target, 1, profile(3, DEFAULT, (0, 6.0), level=2, duration_s=600))
    assert periods(composite(target, T0, 3600)) == [(0, 6.0), (600, 10.0), (1200, 16.0)]


def test_absolute_without_start_counts_from_installation() -> None:
    # Installed 08:10: 10 A for 600 s, then 20 A; before 08:10 it has not started (level 0: 16 A).
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), (600, 20.0), level=1, start=None), now=at(minutes=10))
    assert limit(target, at(minutes=5)) == 16.0
    assert limit(target, at(minutes=15)) == 10.0
    assert limit(target, at(minutes=20)) == 20.0


# -- purposes ---------------------------------------------------------------------------------


def test_station_maximum_caps_everything() -> None:
    # Station max 12 A; TxDefault 16 A for an hour then 10 A: min → 12, then 10.
    target = store()
    install(target, 0, profile(1, MAX, (0, 12.0)))
    install(target, 1, profile(2, DEFAULT, (0, 16.0), (3600, 10.0)))
    assert periods(composite(target, T0, 2 * 3600)) == [(0, 12.0), (3600, 10.0)]
    assert target.station_limit_a(T0, phases=3, voltage_v=V) == 12.0


def test_station_maximum_in_watts() -> None:
    # 6900 W over 3 × 230 V = 10 A per phase, below TxDefault's 16 A.
    target = store()
    install(target, 0, profile(1, MAX, (0, 6900.0), unit=W))
    install(target, 1, profile(2, DEFAULT, (0, 16.0)))
    assert limit(target, T0) == pytest.approx(10.0)
    assert periods(composite(target, T0, 3600)) == [(0, 10.0)]
    assert periods(composite(target, T0, 3600, W)) == [(0, 6900.0)]


def test_tx_overrides_tx_default_only_while_the_transaction_runs() -> None:
    # Tx (level 0, 20 A) beats TxDefault even at a higher level (5, 6 A); after the end, 6 A again.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 6.0), level=5))
    install(target, 1, profile(2, TX, (0, 20.0), level=0), tx="T1", active="T1")
    assert limit(target, T0, tx_start=T0) == 20.0
    target.transaction_ended(1)
    assert limit(target, T0) == 6.0


def test_a_lapsed_tx_profile_lets_tx_default_through() -> None:
    # Tx 8 A for 900 s, then TxDefault's 16 A.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0)))
    install(target, 1, profile(2, TX, (0, 8.0), duration_s=900), active="T1")
    assert periods(composite(target, T0, 3600, tx_start=T0)) == [(0, 8.0), (900, 16.0)]


def test_tx_default_on_evse_zero_vs_evse_one() -> None:
    # EVSE 0's TxDefault (16 A) applies to every EVSE; EVSE 1's own at the same level (10 A) wins there.
    target = store()
    install(target, 0, profile(1, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=0))
    assert limit(target, T0, evse_id=1) == 10.0
    assert limit(target, T0, evse_id=2) == 16.0
    # A higher station-wide level outranks the EVSE's lower one: stack levels decide first.
    install(target, 0, profile(3, DEFAULT, (0, 20.0), level=2))
    assert limit(target, T0, evse_id=1) == 20.0
    assert limit(target, T0, evse_id=2) == 20.0


def test_evse_tx_default_lapses_to_the_station_wide_one() -> None:
    # EVSE 1's TxDefault: 6 A for 1800 s at level 1; then EVSE 0's 16 A. EVSE 2 only sees 16 A.
    target = store()
    install(target, 0, profile(1, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 6.0), level=1, duration_s=1800))
    assert periods(composite(target, T0, 3600, evse_id=1)) == [(0, 6.0), (1800, 16.0)]
    assert periods(composite(target, T0, 3600, evse_id=2)) == [(0, 16.0)]


def test_external_constraints_lower_the_limit() -> None:
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0)))
    reason = target.install(
        1, profile(2, EXTERNAL, (0, 12.0)), now=T0, transaction_id=None, active_transaction_id=None, local=True
    )
    assert reason is None
    assert limit(target, T0) == 12.0


def test_evse_zero_composite_is_station_wide() -> None:
    # Station max 40 A until 09:00; after it, the two EVSEs' hardware: 2 × 32 A = 64 A.
    target = store(evse_count=2)
    install(target, 0, profile(1, MAX, (0, 40.0), duration_s=3600))
    install(target, 1, profile(2, DEFAULT, (0, 6.0)))  # not station-wide: no effect on EVSE 0
    assert periods(composite(target, T0, 2 * 3600, evse_id=0)) == [(0, 40.0), (3600, 64.0)]


# -- kinds ------------------------------------------------------------------------------------


def test_recurring_daily_across_midnight() -> None:
    # Daily from 22:00: 10 A for 8 h (22:00–06:00), then 32 A. From 20:00 for 12 h:
    # 20:00 is 22 h into the cycle (32 A), 22:00 starts it (10 A, +7200 s), 06:00 is +36000 s (32 A).
    target = store()
    item = profile(1, DEFAULT, (0, 10.0), (8 * 3600, 32.0), start=at(-10), **DAILY)  # 2025-03-02 22:00
    install(target, 1, item)
    evening = at(12)  # 2025-03-03 20:00
    assert periods(composite(target, evening, 12 * 3600)) == [(0, 32.0), (7200, 10.0), (36000, 32.0)]
    assert limit(target, datetime(2025, 3, 4, 1, 30, tzinfo=UTC)) == 10.0
    assert limit(target, datetime(2025, 3, 10, 23, 0, tzinfo=UTC)) == 10.0  # a week later, still daily


def test_recurring_daily_with_a_duration() -> None:
    # Daily from 22:00 for 8 h at 10 A (level 1), else level 0's 16 A.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=1, start=at(-10), duration_s=8 * 3600, **DAILY))
    assert limit(target, datetime(2025, 3, 3, 23, 0, tzinfo=UTC)) == 10.0
    assert limit(target, datetime(2025, 3, 4, 7, 0, tzinfo=UTC)) == 16.0
    assert periods(composite(target, at(12), 12 * 3600)) == [(0, 16.0), (7200, 10.0), (36000, 16.0)]


def test_recurring_weekly() -> None:
    # Weekly from Monday 00:00: 10 A for the whole Monday (level 1), else 32 A.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 32.0), level=0))
    monday = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=1, start=monday, duration_s=86400, **WEEKLY))
    assert limit(target, datetime(2025, 3, 10, 12, 0, tzinfo=UTC)) == 10.0  # next Monday
    assert limit(target, datetime(2025, 3, 11, 12, 0, tzinfo=UTC)) == 32.0  # Tuesday
    assert limit(target, datetime(2025, 3, 9, 23, 59, 59, tzinfo=UTC)) == 32.0  # Sunday night
    assert limit(target, datetime(2025, 3, 24, 0, 0, tzinfo=UTC)) == 10.0
    # startSchedule only sets the phase of the cycle: the Monday before it repeats too.
    assert limit(target, datetime(2025, 2, 24, 12, 0, tzinfo=UTC)) == 10.0


def test_relative_counts_from_the_transaction_start() -> None:
    # 32 A for the first hour of the transaction, then 8 A. Started 09:15: 10:00 is +45 min (32 A),
    # 10:15 is +60 min (8 A). A composite from 10:00 changes at +900 s.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 32.0), (3600, 8.0), **RELATIVE))
    started = at(1, 15)
    assert limit(target, at(2), tx_start=started) == 32.0
    assert limit(target, at(2, 15), tx_start=started) == 8.0
    assert periods(composite(target, at(2), 3600, tx_start=started)) == [(0, 32.0), (900, 8.0)]


def test_relative_tx_profile() -> None:
    # Tx relative: 6 A for 30 min, then 16 A; transaction started at 08:00.
    target = store()
    install(target, 1, profile(1, TX, (0, 6.0), (1800, 16.0), **RELATIVE), active="T1")
    assert periods(composite(target, T0, 3600, tx_start=T0)) == [(0, 6.0), (1800, 16.0)]


def test_relative_without_a_transaction_counts_from_the_question() -> None:
    # No transaction: what an EV plugging in now would get. limit_a always sees the first period;
    # a composite from 10:00 shows the schedule from 10:00.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 32.0), (3600, 8.0), **RELATIVE))
    assert limit(target, at(5)) == 32.0
    assert periods(composite(target, at(2), 7200)) == [(0, 32.0), (3600, 8.0)]


# -- units and phases -------------------------------------------------------------------------


def test_watt_limit_on_three_phases() -> None:
    # 11040 W / (230 V × 3) = 16 A per phase.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 11040.0), unit=W))
    assert limit(target, T0) == pytest.approx(16.0)
    assert periods(composite(target, T0, 3600)) == [(0, 16.0)]
    assert periods(composite(target, T0, 3600, W)) == [(0, 11040.0)]


def test_watt_limit_divided_over_the_phases_actually_used() -> None:
    # 7360 W: 3 phases → 7360 / 690 = 10.67 A (composite 10.7); one phase → 7360 / 230 = 32 A.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 7360.0), unit=W))
    assert limit(target, T0) == pytest.approx(10.667, abs=1e-3)
    assert periods(composite(target, T0, 3600)) == [(0, 10.7)]
    assert limit(target, T0, phases=1) == pytest.approx(32.0)
    one_phase = composite(target, T0, 3600, W, phases=1)
    assert periods(one_phase) == [(0, 7360.0)] and one_phase.periods[0].number_phases == 1


def test_amp_limit_in_watts_depends_on_the_phases() -> None:
    # 16 A: 16 × 230 × 3 = 11040 W on three phases, 16 × 230 = 3680 W on one.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0)))
    assert periods(composite(target, T0, 3600, W)) == [(0, 11040.0)]
    assert periods(composite(target, T0, 3600, W, phases=1)) == [(0, 3680.0)]
    assert limit(target, T0, phases=1) == 16.0  # A is per phase whatever the phases


def test_number_phases_below_the_phases_in_use() -> None:
    # 16 A on numberPhases 1, but the EV uses 3 phases (no phase switching): the allowed total
    # 16 A × 1 is spread over 3 phases → 5.33 A each (5.3), i.e. 3680 W, the power the CSMS meant.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0, 1)))
    assert limit(target, T0) == pytest.approx(16 / 3)
    assert periods(composite(target, T0, 3600)) == [(0, 5.3)]
    assert periods(composite(target, T0, 3600, W)) == [(0, 3680.0)]
    # A 1-phase EV may take the 16 A on its phase.
    assert limit(target, T0, phases=1) == 16.0


def test_number_phases_above_the_phases_in_use() -> None:
    # 16 A on 3 phases for a 1-phase EV: still 16 A on its one phase.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0, 3)))
    assert limit(target, T0, phases=1) == 16.0


def test_limits_carry_one_decimal() -> None:
    # 11000 W / 690 = 15.942 A → 15.9 in A; in W the 11000 W comes back exactly.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 11000.0), unit=W))
    assert limit(target, T0) == pytest.approx(15.942, abs=1e-3)
    assert periods(composite(target, T0, 3600)) == [(0, 15.9)]
    assert periods(composite(target, T0, 3600, W)) == [(0, 11000.0)]


def test_equal_neighbours_merge() -> None:
    # 16 A, 16 A, then 10 A: two periods. A 16 A TxDefault under an 11040 W station max: one.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0), (600, 16.0), (1200, 10.0)))
    assert periods(composite(target, T0, 3600)) == [(0, 16.0), (1200, 10.0)]
    target = store()
    install(target, 0, profile(1, MAX, (0, 11040.0), (1800, 11040.0), unit=W))
    install(target, 1, profile(2, DEFAULT, (0, 16.0)))
    assert periods(composite(target, T0, 3600)) == [(0, 16.0)]


# -- the composite window ---------------------------------------------------------------------


def test_start_is_cut_to_whole_seconds_and_changes_land_on_the_next_second() -> None:
    # validFrom at 08:00:10.5 → the period starts at +11 s.
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=1, valid_from=at(seconds=10.5)))
    schedule = composite(target, T0 + timedelta(milliseconds=400), 60)
    assert schedule.start == T0
    assert periods(schedule) == [(0, 16.0), (11, 10.0)]


def test_changes_outside_the_window_are_left_out() -> None:
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0), (7200, 8.0)))
    assert periods(composite(target, T0, 3600)) == [(0, 16.0)]
    # A window that starts mid-schedule begins with the period in force.
    assert periods(composite(target, at(1), 3 * 3600)) == [(0, 16.0), (3600, 8.0)]


def test_zero_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="duration"):
        composite(store(), T0, 0)


# -- properties -------------------------------------------------------------------------------

HORIZON_S = 6 * 3600


@st.composite
def random_profile(draw: st.DrawFn, profile_id: int) -> tuple[int, ChargingProfile]:
    """A random profile and the EVSE it goes on (any kind, unit, validity, phases)."""
    purpose = draw(st.sampled_from([MAX, DEFAULT, TX]))
    evse_id = 0 if purpose is MAX else 1 if purpose is TX else draw(st.sampled_from([0, 1]))
    unit = draw(st.sampled_from([A, W]))
    kind = draw(st.sampled_from(list(ProfileKind) if purpose is not MAX else [ProfileKind.ABSOLUTE]))
    starts = sorted(draw(st.sets(st.integers(1, 4 * 3600), max_size=3)))
    top = 40.0 if unit is A else 25000.0
    items = [
        (start, draw(st.floats(0, top).map(lambda x: round(x, 1))), draw(st.sampled_from([None, 1, 3])))
        for start in [0, *starts]
    ]
    valid_from = draw(st.none() | st.integers(-3600, HORIZON_S).map(lambda s: T0 + timedelta(seconds=s)))
    valid_to = draw(st.none() | st.integers(1, HORIZON_S).map(lambda s: (valid_from or T0) + timedelta(seconds=s)))
    item = profile(
        profile_id,
        purpose,
        *items,  # type: ignore[arg-type]
        level=draw(st.integers(0, 3)),
        unit=unit,
        kind=kind,
        start=T0 + timedelta(seconds=draw(st.integers(-2 * 3600, 3 * 3600))),
        duration_s=draw(st.none() | st.integers(60, 8 * 3600)),
        recurrency=RecurrencyKind.DAILY if kind is ProfileKind.RECURRING else None,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    return evse_id, item


@st.composite
def random_store(draw: st.DrawFn) -> ProfileStore:
    target = store(evse_count=1)
    for profile_id in range(1, draw(st.integers(0, 6)) + 1):
        evse_id, item = draw(random_profile(profile_id))
        # Some replace earlier ones (same purpose + level); none is rejected by the default rules.
        install(target, evse_id, item, active="T1")
    return target


def value_at(schedule: ChargingSchedule, offset: int) -> float:
    return [period.limit for period in schedule.periods if period.start_s <= offset][-1]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    target=random_store(),
    unit=st.sampled_from([A, W]),
    phases=st.sampled_from([1, 3]),
    tx_offset=st.integers(-3 * 3600, 0),
    probes=st.lists(st.integers(0, HORIZON_S - 1), max_size=30),
)
def test_composite_agrees_with_the_limit_at_every_instant(
    target: ProfileStore, unit: RateUnit, phases: int, tx_offset: int, probes: list[int]
) -> None:
    tx_start = T0 + timedelta(seconds=tx_offset)
    schedule = target.composite(1, T0, HORIZON_S, unit, transaction_start=tx_start, phases=phases, voltage_v=V)
    starts = [period.start_s for period in schedule.periods]
    # Each period start, the second before it, and random instants.
    for offset in {*probes, *starts, *(start - 1 for start in starts if start)}:
        when = T0 + timedelta(seconds=offset)
        current = target.limit_a(1, when, transaction_start=tx_start, phases=phases, voltage_v=V, max_current_a=32.0)
        assert current is not None
        expected = round(from_per_phase_a(current, unit, phases=phases, voltage_v=V), 1)
        assert value_at(schedule, offset) == expected, f"at +{offset} s"
    # Neighbours always differ: equal ones were merged.
    assert all(a.limit != b.limit for a, b in zip(schedule.periods, schedule.periods[1:], strict=False))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=random_store(), station_max=st.floats(0, 40).map(lambda x: round(x, 1)), phases=st.sampled_from([1, 3]))
def test_never_above_the_station_maximum(target: ProfileStore, station_max: float, phases: int) -> None:
    # A station maximum in A at a stack level above every random one, valid throughout.
    item = profile(99, ProfilePurpose.STATION_MAX, (0, station_max), level=8, start=T0 - timedelta(days=1))
    install(target, 0, item)
    schedule = target.composite(1, T0, HORIZON_S, A, transaction_start=T0, phases=phases, voltage_v=V)
    assert all(period.limit <= min(station_max, 32.0) for period in schedule.periods)
