"""How the OCPP Translation turns a site's sessions into the EVs the scheduler plans: the departure each is
planned for, and who is planned as leaving soon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from optivgi_csms.domain.site import SiteConfig
from optivgi_csms.scheduling.ev import kw_from_amps
from optivgi_csms.services.events import MeterReading
from optivgi_csms.smart_charging.capabilities import Capabilities
from optivgi_csms.smart_charging.deviation import Deviations
from optivgi_csms.smart_charging.evs import OPEN_DEPARTURE_SLOTS, PlannedEv, Timing, build_population
from optivgi_csms.smart_charging.meters import LiveMeters
from optivgi_csms.smart_charging.snapshot import SessionInfo, SiteSnapshot, StationInfo
from optivgi_csms.smart_charging.timebase import TimeScale

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SLOT = timedelta(minutes=15)
TIMING = Timing(NOW, NOW, SLOT, TimeScale())
LEAVES = NOW + timedelta(hours=5)
MIN_RATE_KW = kw_from_amps(6.0, 230.0, 3)


def session(tx: int, *, plugged_for: timedelta, delivered_kwh: float, departure: datetime | None) -> SessionInfo:
    return SessionInfo(
        transaction_id=tx,
        station_id=f"CS{tx}",
        evse_id=1,
        connector_id=1,
        started_at=NOW - plugged_for,
        meter_start_wh=0.0,
        register_wh=delivered_kwh * 1000.0,
        departure_at=departure,
        energy_target_kwh=80.0 if departure is not None else None,
        uncontrolled_reason=None,
    )


def plan(sessions: list[SessionInfo], drawing_kw: float, limit_kw: float = 60.0) -> dict[int, PlannedEv]:
    """The planned EVs by transaction, with the site's sessions together drawing ``drawing_kw``."""
    config = SiteConfig(id="s", limit_kw=limit_kw)
    stations = {
        s.station_id: StationInfo(s.station_id, Capabilities(read_at=NOW.isoformat()), None, True, 1) for s in sessions
    }
    meters = LiveMeters()
    for s in sessions:
        meters.update(MeterReading(s.station_id, 1, s.transaction_id, NOW, power_kw=drawing_kw / len(sessions)))
    population = build_population(SiteSnapshot(config, NOW, stations, sessions), TIMING, meters, Deviations())
    return {entry.transaction_id: entry for entry in population.evs if entry.transaction_id is not None}


def test_an_ev_that_says_nothing_is_planned_as_leaving_soon_and_asks_what_it_can_take_by_then() -> None:
    (ev,) = plan([session(1, plugged_for=timedelta(minutes=5), delivered_kwh=0.0, departure=None)], 0.0).values()
    assert ev.departure_source == "site+soon" and ev.open_ended
    assert ev.ev.departure_time == NOW + OPEN_DEPARTURE_SLOTS * SLOT
    assert ev.ev.energy == pytest.approx(min(20.0, ev.ev.max_kw * OPEN_DEPARTURE_SLOTS * 0.25))


def test_an_ev_starved_on_a_full_site_is_planned_as_leaving_soon_until_it_has_had_its_minimum() -> None:
    starved = session(1, plugged_for=timedelta(hours=3), delivered_kwh=1.0, departure=LEAVES)
    fed = session(2, plugged_for=timedelta(hours=3), delivered_kwh=MIN_RATE_KW * 3 * 0.6, departure=LEAVES)
    new = session(3, plugged_for=timedelta(minutes=30), delivered_kwh=0.0, departure=LEAVES)
    evs = plan([starved, fed, new], drawing_kw=58.0)
    assert evs[1].departure_source == "session+starved"
    assert evs[1].ev.departure_time == NOW + OPEN_DEPARTURE_SLOTS * SLOT
    assert evs[1].ev.energy == pytest.approx(evs[1].ev.max_kw * OPEN_DEPARTURE_SLOTS * 0.25)
    assert not evs[1].open_ended  # its profile still runs to its real departure's plan
    # Given more than half its minimum current's energy over its stay, or plugged in for less than the
    # lookahead window, an EV keeps the departure it said.
    assert (evs[2].departure_source, evs[2].ev.departure_time) == ("session", LEAVES)
    assert (evs[3].departure_source, evs[3].ev.departure_time) == ("session", LEAVES)


def test_an_ev_deferred_on_a_site_with_room_is_not_starved_but_waiting() -> None:
    # Nothing drawn: the plan defers it by choice (cheaper energy later), not for want of room.
    starved = session(1, plugged_for=timedelta(hours=3), delivered_kwh=0.0, departure=LEAVES)
    assert plan([starved], drawing_kw=10.0)[1].departure_source == "session"
