"""A mixed OCPP 1.6 / 2.0.1 site on a tight limit, measured by the simulator's meters."""

from __future__ import annotations

import dataclasses

import pytest

from optivgi_csms.domain.charging_profile import RateUnit
from simulators.smart_charging import ProfileRules
from simulators.station import StationConfig
from tests.e2e_sim.harness import (
    REACTION_WALL_S,
    SitePower,
    describe,
    ev,
    run_site,
    scenario,
    smart_csms,
    station,
)

pytestmark = pytest.mark.slow

LIMIT_KW = 22.0


def mixed_capabilities(config: StationConfig) -> StationConfig:
    """Two stations that allow less than the CSMS would like, and say so read-only as real ones do: one takes
    only W, one only stack level 0."""
    if config.station_id == "S201-A":
        watts_only = ProfileRules(allowed_units=frozenset({RateUnit.WATT}))
        return dataclasses.replace(config, rules=watts_only, limits_writable=False)
    if config.station_id == "S16-A":
        return dataclasses.replace(config, rules=ProfileRules(max_stack_level=0), limits_writable=False)
    return config


async def test_the_site_is_held_under_its_limit(make_csms) -> None:
    """Six EVs that could draw 73 kW together on a 22 kW site, arriving and leaving: the site is over its limit
    only while a change is on its way to the EVs (:data:`REACTION_WALL_S`), on both versions, with stations
    that allow only W or only stack level 0."""
    csms = await smart_csms(make_csms, LIMIT_KW)
    site = scenario(
        "held",
        LIMIT_KW,
        [
            station("S16-A", "1.6"),
            station("S16-B", "1.6", evses=2),
            station("S201-A", "2.0.1"),
            station("S201-B", "2.0.1", evses=2),
        ],
        [
            ev("a1", "S16-A", 0, 9),  # plugged in before the CSMS knows its station: the boot case
            ev("a2", "S201-A", 0, 9),
            ev("a3", "S16-B", 1, 5, max_kw=22.0),
            ev("a4", "S201-B", 1.5, 9, max_kw=7.4, phases=1),
            ev("a5", "S201-B", 2.5, 9, connector=2),
            ev("a6", "S16-B", 3, 7, connector=2),
        ],
    )
    run, info = await run_site(csms, site, configure=mixed_capabilities)
    assert info.stopped == "scenario over" and len(info.connected) == 4
    assert not run.recorder.protocol_errors, run.recorder.protocol_errors
    power = SitePower(run.recorder.samples)
    long_ones = [e for e in power.over(LIMIT_KW) if e.wall_s > REACTION_WALL_S]
    assert not long_ones, describe(long_ones) + "\n" + power.timeline()

    accepted = [event for event in run.recorder.profiles if event.accepted]
    assert {event.station_id for event in accepted} == {"S16-A", "S16-B", "S201-A", "S201-B"}
    # Each station got profiles in the shape it takes, at once (no rejection taught it).
    assert {e.profile["schedule"]["unit"] for e in accepted if e.station_id == "S201-A"} == {"W"}
    assert {e.profile["stack_level"] for e in accepted if e.station_id == "S16-A"} == {0}
    # A profile that crosses its EV's departure is refused by any station (the session is over); any
    # other refusal would mean a shape the station said it does not take.
    refused = [
        e for e in run.recorder.profiles if not e.accepted and "no transaction is active" not in (e.reason or "")
    ]
    assert not refused, [(e.station_id, e.reason) for e in refused]
