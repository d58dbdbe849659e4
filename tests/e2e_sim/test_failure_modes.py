"""When smart charging cannot steer: a station that refuses every Tx profile, and a CSMS that stops."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime

import pytest
from sqlalchemy import select

from optivgi_csms.scheduling.ev import amps_from_kw, kw_from_amps
from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import Station, Transaction
from simulators.site import SiteRun
from simulators.smart_charging import ProfileRules
from simulators.station import StationConfig
from tests.e2e_sim.harness import (
    POWER_EPSILON_KW,
    REACTION_WALL_S,
    SLOT_S,
    SLOT_WALL_S,
    VOLTAGE_V,
    SitePower,
    at,
    describe,
    ev,
    run_site,
    scenario,
    smart_csms,
    station,
    until,
)

pytestmark = pytest.mark.slow


def holds_one_profile(config: StationConfig) -> StationConfig:
    """R16 keeps one profile at most (MaxChargingProfilesInstalled = 1, read-only): it takes the CSMS's
    fail-safe TxDefault profile and so must refuse every Tx profile, in any unit, at any stack level."""
    if config.station_id != "R16":
        return config
    return dataclasses.replace(config, rules=ProfileRules(max_profiles=1), limits_writable=False)


async def test_a_refused_profile_is_retried_then_its_ev_is_uncontrolled_and_the_site_holds(make_csms) -> None:
    limit = 30.0
    csms = await smart_csms(make_csms, limit)
    site = scenario(
        "refused",
        limit,
        [station("R16", "1.6"), station("O201", "2.0.1"), station("O16", "1.6")],
        [
            ev("refused", "R16", 0.5, 10),
            ev("other-1", "O201", 0.5, 10, max_kw=22.0),
            ev("other-2", "O16", 0.5, 10, max_kw=22.0),
        ],
    )
    run, info = await run_site(csms, site, configure=holds_one_profile)
    assert info.stopped == "scenario over" and not run.recorder.protocol_errors, run.recorder.protocol_errors

    tx_sent = [e for e in run.recorder.profiles if e.station_id == "R16" and e.profile.get("purpose") == "Tx"]
    # Refused, retried once in the other shape (stack level 0 here), refused again, then never sent again.
    assert [e.accepted for e in tx_sent] == [False, False], [(e.profile["stack_level"], e.reason) for e in tx_sent]
    assert all("MaxChargingProfilesInstalled" in (e.reason or "") for e in tx_sent)
    assert tx_sent[0].profile != tx_sent[1].profile
    async with csms.database.read() as session:
        refused = await session.scalar(select(Transaction).where(Transaction.station_id == "R16"))
        note = await session.scalar(select(Station.smart_charging_note).where(Station.id == "R16"))
    assert refused is not None and "refused" in (refused.uncontrolled_reason or ""), refused
    assert note is not None and note.startswith(f"transaction {refused.id}:"), note

    # The site holds: the uncontrolled EV charges under its station's fail-safe share, and the others are
    # planned around the most it could draw.
    power = SitePower(run.recorder.samples)
    long_ones = [e for e in power.over(limit) if e.wall_s > REACTION_WALL_S]
    assert not long_ones, describe(long_ones) + "\n" + power.timeline()
    assert power.mean_kw(at(4), at(10), ["refused"]) > 5.0, power.timeline()  # it charges, unsteered
    assert power.peak_kw(at(4), at(10)) <= limit + POWER_EPSILON_KW, power.timeline()


#: The CSMS stops this many wall seconds after every station holds a Tx profile.
STOP_AFTER_WALL_S = SLOT_WALL_S
#: A short horizon, so the Tx profiles in force when the CSMS stops run out within the test.
SHORT_HORIZON_S = 2 * SLOT_S


async def test_a_csms_stop_leaves_every_station_under_its_fail_safe_profile(make_csms) -> None:
    """Three 11 kW EVs share 22 kW. The CSMS stops: each station's Tx profile runs to its end, then the
    fail-safe TxDefault profile (a third of the site each) holds it, and every EV keeps charging."""
    limit = 22.0
    csms = await smart_csms(make_csms, limit)
    await csms.services.sites.update("default", horizon_s=SHORT_HORIZON_S)
    site = scenario(
        "csms-stop",
        limit,
        [station("P16", "1.6"), station("P201", "2.0.1"), station("Q16", "1.6")],
        [ev("p1", "P16", 0.5, 14), ev("p2", "P201", 0.5, 14), ev("q1", "Q16", 0.5, 14)],
    )
    stopped_at: list[datetime] = []

    async def stop_the_csms(run: SiteRun) -> None:
        await run.clock_started.wait()
        await until(lambda: tx_holders(run) == {"P16", "P201", "Q16"}, timeout_s=10.0)
        await asyncio.sleep(STOP_AFTER_WALL_S)
        stopped_at.append(run.clock.sim_now())
        await stop(csms)

    run, info = await run_site(csms, site, during=stop_the_csms)
    assert info.stopped == "scenario over" and stopped_at
    power = SitePower(run.recorder.samples)
    # Every moment, the site is within its limit (beyond a reaction to the last plan before the stop).
    long_ones = [e for e in power.over(limit) if e.wall_s > REACTION_WALL_S]
    assert not long_ones, describe(long_ones) + "\n" + power.timeline()

    # Once the last Tx profile has run out (a horizon after the stop at the latest) and the station has
    # applied its fail-safe limit, each EVSE offers its fair share: a third of the limit, rounded down to
    # 0.1 A per phase, and every EV keeps charging at it.
    share_kw = kw_from_amps(int(amps_from_kw(limit / 3, VOLTAGE_V, 3) * 10) / 10, VOLTAGE_V, 3)
    lapsed = stopped_at[0] + (at(SHORT_HORIZON_S / SLOT_S * SLOT_WALL_S + REACTION_WALL_S) - at(0))
    assert lapsed < at(13), "the test is too short to see the fail-safe profiles"
    for ev_id in ("p1", "p2", "q1"):
        samples = power.ev_samples(ev_id, lapsed, at(14))
        assert samples, ev_id
        assert all((s.offered_kw or 0.0) <= share_kw + POWER_EPSILON_KW for s in samples), (ev_id, power.timeline())
        assert min(s.power_kw for s in samples) >= 0.95 * share_kw, (ev_id, power.timeline())
    assert power.peak_kw(lapsed, at(14)) <= limit + POWER_EPSILON_KW


def tx_holders(run: SiteRun) -> set[str]:
    """The stations that have accepted a Tx profile."""
    return {e.station_id for e in run.recorder.profiles if e.accepted and e.profile.get("purpose") == "Tx"}


async def stop(csms: Csms) -> None:
    """Stop the CSMS as an operator would (its stations are disconnected, nothing is cleared on them)."""
    await csms.stop()
