"""Capacity moves to the EVs that can use it: freed by a session that stops, or left unused by an EV that
draws less than it is offered."""

from __future__ import annotations

import pytest

from tests.e2e_sim.harness import (
    REACTION_WALL_S,
    SLOT_WALL_S,
    SitePower,
    at,
    describe,
    ev,
    run_site,
    scenario,
    smart_csms,
    station,
)

pytestmark = pytest.mark.slow

#: An EV drawing at least this share of its maximum is taking what it can, not held back by the plan.
FULL_SHARE = 0.9
#: The CSMS learns what each EV takes from its meter (a cycle to see it draw, one more to plan with it):
#: measurements of a settled site start this long after the last change, wall seconds.
LEARNING_WALL_S = REACTION_WALL_S + SLOT_WALL_S


async def test_capacity_freed_by_a_stop_is_handed_out(make_csms) -> None:
    """Three 11 kW EVs share 24 kW; when one leaves, each of the two others gets its full 11 kW."""
    limit = 24.0
    csms = await smart_csms(make_csms, limit)
    site = scenario(
        "freed",
        limit,
        [station("F16", "1.6"), station("F201", "2.0.1"), station("G16", "1.6")],
        [ev("stays-1", "F16", 0, 14), ev("stays-2", "F201", 0, 14), ev("leaves", "G16", 0, 6)],
    )
    run, info = await run_site(csms, site)
    assert info.stopped == "scenario over" and not run.recorder.protocol_errors, run.recorder.protocol_errors
    power = SitePower(run.recorder.samples)
    long_ones = [e for e in power.over(limit) if e.wall_s > REACTION_WALL_S]
    assert not long_ones, describe(long_ones) + "\n" + power.timeline()

    stayers = ["stays-1", "stays-2"]
    # Before the stop the three share the limit: the two that stay get less than their 22 kW together.
    assert power.mean_kw(at(LEARNING_WALL_S), at(6), stayers) < FULL_SHARE * 22.0, power.timeline()
    # Once the CSMS has reacted to the stop, each stayer draws its full 11 kW: the leaver's share is theirs.
    settled = at(6 + LEARNING_WALL_S)
    for ev_id in stayers:
        assert power.mean_kw(settled, at(14), [ev_id]) >= FULL_SHARE * 11.0, (ev_id, power.timeline())


async def test_an_ev_drawing_less_than_offered_leaves_its_surplus_to_the_others(make_csms) -> None:
    """A 1-phase EV that takes a quarter of its offer: its offer comes down toward its draw and the two
    22 kW EVs beside it get what it leaves."""
    limit = 22.0
    csms = await smart_csms(make_csms, limit)
    site = scenario(
        "surplus",
        limit,
        [station("D16", "1.6"), station("D201", "2.0.1"), station("E201", "2.0.1")],
        [
            ev("sipper", "D16", 0, 14, max_kw=7.4, phases=1, draw_factor=0.25),
            ev("big-1", "D201", 0, 14, max_kw=22.0),
            ev("big-2", "E201", 0, 14, max_kw=22.0),
        ],
    )
    run, info = await run_site(csms, site)
    assert info.stopped == "scenario over" and not run.recorder.protocol_errors, run.recorder.protocol_errors
    power = SitePower(run.recorder.samples)
    long_ones = [e for e in power.over(limit) if e.wall_s > REACTION_WALL_S]
    assert not long_ones, describe(long_ones) + "\n" + power.timeline()

    # Three cycles to learn: its phases (1), then its draw (a quarter of the offer), then the plan with both.
    late = (at(2 * LEARNING_WALL_S), at(14))
    sipper_offer = power.mean_offer_kw("sipper", *late)
    # Its offer came down from its 7.36 kW maximum toward what it draws (never below 6 A, 1.38 kW).
    assert sipper_offer <= 3.0, power.timeline()
    # Left alone, the sipper's plan would strand most of its 7.36 kW; the big EVs take what it leaves.
    others = power.mean_kw(*late, ["big-1", "big-2"])
    assert others >= 0.9 * (limit - sipper_offer), power.timeline()
