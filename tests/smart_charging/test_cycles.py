"""Every cycle is recorded (why it ran, what it saw, what it decided, how stations answered); the plan is
readable per EV and slot; the site chooses the algorithm; rehearsals plan on a compressed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.smart_charging.helpers import limit_site, profiles, stamp, station, until, wait_cycle
from tests.support.driver import Sample


async def test_a_cycle_record_says_why_and_what(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=11.0, algorithm="edf")
    async with station(csms, "CS-1", "2.0.1") as charger:
        session = await charger.start(timestamp=stamp())
        # The cycle that sent the session its profile: the start's, or the boot's when the start came in before
        # that cycle read the site (a slow machine); a later one keeps the profile and may be recorded first.
        row = await wait_cycle(
            csms, lambda r: ("start" in r.trigger or "boot" in r.trigger) and r.evs and r.summary["profiles_sent"]
        )
    assert row.algorithm == "edf" and row.status in ("optimal", "feasible", "heuristic")
    assert row.solve_s is not None and row.cycle_s is not None and 0 <= row.solve_s <= row.cycle_s
    assert row.error is None
    summary = row.summary
    assert (summary["evs"], summary["sessions"], summary["reservations"], summary["stations"]) == (1, 1, 0, 1)
    assert (summary["limit_kw"], summary["limit_now_kw"], summary["resolution_s"]) == (11.0, 11.0, 60.0)
    assert summary["energy_requested_kwh"] == 20.0 and summary["profiles_sent"] == 1
    (ev,) = row.evs
    assert ev["ev_id"] == f"tx-{session.id}" and ev["transaction_id"] == session.id
    assert ev["power_now_kw"] == 11.0
    profile = ev["profile"]
    assert (profile["status"], profile["answers"], profile["unit"], profile["first_limit"]) == (
        "Accepted",
        ["Accepted"],
        "A",
        15.9,
    )
    assert profile["reason"] == "new"


async def test_the_plan_is_readable_per_ev_and_slot(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=11.0, default_energy_kwh=5.0)
    async with station(csms, "CS-1") as charger:
        session = await charger.start(timestamp=stamp())
        # Staying the hour (a session of unknown departure would be planned as leaving within a few slots).
        await csms.services.transactions.set_needs(session.id, departure_at=datetime.now(UTC) + timedelta(hours=2))
        plan = await csms.smart_charging.replan("default")
    assert plan is not None and plan.site_id == "default" and plan.algorithm == "lp"
    assert len(plan.slot_starts) == 60 and plan.limit_kw[0] == 11.0
    ev = plan.of_transaction(session.id)
    assert ev is not None and ev.active and ev.requested_kwh == 5.0
    assert abs(ev.planned_kwh - 5.0) < 1e-6
    assert plan.power_at(ev.ev_id, datetime.now(UTC)) == ev.power_kw[0] == 11.0
    assert all(total <= 11.0 + 1e-9 for total in plan.total_kw)


async def test_an_unknown_algorithm_is_refused(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    with pytest.raises(ValueError, match="algorithm 'fastest' is not one of lp, pulp"):
        await csms.services.sites.update("default", algorithm="fastest")


async def test_a_rehearsal_plans_on_the_compressed_clock(smart_csms_factory) -> None:
    # 15-minute slots over an hour of scenario time pass in 15 s slots over 60 s at 60x.
    csms = await smart_csms_factory(time_scale=60.0)
    await limit_site(csms, limit_kw=22.0, resolution_s=900, horizon_s=3600, default_energy_kwh=20.0)
    async with station(csms, "CS-1") as charger:
        session = await charger.start(timestamp=stamp(), meter_start_wh=0)
        await until(lambda: profiles(charger), what="a profile")
        tx = profiles(charger)[-1]
        assert tx.duration == 60 and all(start % 15 == 0 for start, _, _ in tx.periods)
        assert tx.periods[0][1] == 31.8  # powers stay physical
        # 5 kWh on the register (scenario energy): 15 kWh still wanted, in the site's units
        await charger.meter(session, stamp(), [Sample(5000, "Energy.Active.Import.Register", "Wh")])
        plan = await csms.smart_charging.replan("default")
    assert plan is not None and plan.resolution.total_seconds() == 15
    ev = plan.of_transaction(session.id)
    assert ev is not None and abs(ev.requested_kwh - 15.0) < 1e-9
    # 22 kW for 15 s of wall time is 5.5 kWh of scenario energy
    assert abs(ev.planned_kwh - 15.0) < 1e-6 and abs(ev.power_kw[0] * 0.25 - 5.5) < 1e-6
    assert csms.smart_charging.interval_s == 1.0  # the 60 s tick, compressed (never below 1 s)
