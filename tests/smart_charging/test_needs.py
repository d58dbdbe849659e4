"""What a session needs: the EV's own ISO 15118 needs first, then what was set for the session, then the
site's defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ocpp.v201 import call as call201

from optivgi_csms.domain.time import format_timestamp
from optivgi_csms.smart_charging.evs import OPEN_DEPARTURE_SLOTS
from tests.smart_charging.helpers import limit_site, profiles, stamp, station, until, wait_cycle


def needs_call(
    energy_wh: float, departure: datetime, max_current_a: float, transfer: str = "AC_three_phase"
) -> call201.NotifyEVChargingNeeds:
    return call201.NotifyEVChargingNeeds(
        evse_id=1,
        max_schedule_tuples=3,
        charging_needs={
            "requested_energy_transfer": transfer,
            "departure_time": format_timestamp(departure),
            "ac_charging_parameters": {
                "energy_amount": energy_wh,
                "ev_min_current": 6,
                "ev_max_current": max_current_a,
                "ev_max_voltage": 400,
            },
        },
    )


async def test_ev_charging_needs_are_accepted_and_planned(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=22.0)
    async with station(csms, "CS-15118", "2.0.1") as charger:
        session = await charger.start(timestamp=stamp())
        await until(lambda: profiles(charger), what="a first profile")
        # The session's needs set through the API rank below the EV's own.
        await csms.services.transactions.set_needs(session.id, energy_kwh=30.0)
        departure = datetime.now(UTC) + timedelta(minutes=50)
        answer = await charger.call(needs_call(5000, departure, 16))
        assert answer.status == "Accepted"
        await until(lambda: profiles(charger)[-1].periods[0][1] == 16.0, what="a profile within the EV's 16 A")
        tx = profiles(charger)[-1]
        assert len(tx.periods) <= 3  # maxScheduleTuples
        row = await wait_cycle(csms, lambda r: "ev needs" in r.trigger)
        (ev,) = row.evs
        assert (ev["energy_source"], ev["departure_source"]) == ("ev", "ev")
        assert ev["energy_kwh"] == 5.0 and ev["max_kw"] == round(16 * 230 * 3 / 1000, 3)
        assert abs(ev["planned_kwh"] - 5.0) < 1e-6

        # The same needs again: the EV awaits a schedule, so one is sent even though nothing changed.
        sent = len(profiles(charger))
        assert (await charger.call(needs_call(5000, departure, 16))).status == "Accepted"
        await until(lambda: len(profiles(charger)) == sent + 1, what="the profile sent again")


async def test_an_ev_that_says_it_charges_on_one_phase_is_planned_on_one_before_it_draws(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=22.0)
    async with station(csms, "CS-15118", "2.0.1") as charger:
        await charger.start(timestamp=stamp())  # no meter value yet: the CSMS cannot see its phases
        departure = datetime.now(UTC) + timedelta(minutes=50)
        assert (await charger.call(needs_call(5000, departure, 32, "AC_single_phase"))).status == "Accepted"
        row = await wait_cycle(csms, lambda r: "ev needs" in r.trigger)
        (ev,) = row.evs
        # 32 A on one phase is 7.36 kW (planned as three phases it would be 22 kW it cannot take).
        assert (ev["phases"], ev["max_kw"]) == (1, round(32 * 230 / 1000, 3))
        await until(lambda: profiles(charger)[-1].periods[0][2] == 1, what="a one-phase profile")


async def test_needs_are_answered_rejected_while_no_site_is_controlled(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    async with station(csms, "CS-15118", "2.0.1") as charger:
        await charger.start(timestamp=stamp())
        answer = await charger.call(needs_call(5000, datetime.now(UTC) + timedelta(hours=1), 16))
        assert answer.status == "Rejected"


async def test_session_needs_set_through_the_api_are_planned(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=22.0, default_energy_kwh=20.0)
    async with station(csms, "CS-1") as charger:
        session = await charger.start(timestamp=stamp())
        row = await wait_cycle(csms, lambda r: "start" in r.trigger)
        assert (row.evs[0]["energy_source"], row.evs[0]["energy_kwh"]) == ("site", 20.0)
        departure = datetime.now(UTC) + timedelta(minutes=30)
        await csms.services.transactions.set_needs(session.id, departure_at=departure, energy_kwh=3.0)
        row = await wait_cycle(csms, lambda r: "session needs" in r.trigger)
        (ev,) = row.evs
        assert (ev["energy_source"], ev["departure_source"], ev["energy_kwh"]) == ("session", "session", 3.0)
        assert abs(ev["planned_kwh"] - 3.0) < 1e-6
        plan = csms.smart_charging.plan("default")
        assert plan is not None
        planned = plan.of_transaction(session.id)
        assert planned is not None and planned.departure >= departure  # planned to the end of its slot
        assert abs(sum(planned.power_kw) / 60 - 3.0) < 1e-6


async def test_an_ev_that_does_not_say_when_it_leaves_is_not_deferred_behind_one_that_does(smart_csms_factory) -> None:
    """A 1.6 EV says nothing: planned for the site's whole default dwell it would wait behind every EV with
    an earlier known departure, and leave with nothing if it left before the default said. It is planned as
    leaving soon instead, while the EV that said when it leaves still gets what it asked for by then."""
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=11.0, default_energy_kwh=20.0)
    async with station(csms, "CS-15118", "2.0.1") as known, station(csms, "CS-16") as unknown:
        await known.start(timestamp=stamp())
        departure = datetime.now(UTC) + timedelta(minutes=50)
        assert (await known.call(needs_call(5000, departure, 16))).status == "Accepted"
        await wait_cycle(csms, lambda r: "ev needs" in r.trigger)
        session = await unknown.start(timestamp=stamp())
        row = await wait_cycle(csms, lambda r: "start" in r.trigger and len(r.evs) == 2)
        by_station = {ev["station_id"]: ev for ev in row.evs}
        assert by_station["CS-16"]["departure_source"] == "site+soon"
        assert abs(by_station["CS-15118"]["planned_kwh"] - 5.0) < 1e-6  # the EV that said still gets its due
        await until(lambda: profiles(unknown), what="a profile for the EV that said nothing")
        tx = profiles(unknown)[-1]
        now = datetime.now(UTC)
        assert tx.kw_at(now) >= 6 * 230 * 3 / 1000 - 1e-6  # charging now, at least at the minimum current
        # Its profile ends where its short plan ends: a station we stop talking to falls back to its
        # fail-safe profile rather than pausing the EV for the rest of the horizon.
        assert tx.duration is not None and tx.duration <= (OPEN_DEPARTURE_SLOTS + 1) * 60
        plan = csms.smart_charging.plan("default")
        assert plan is not None
        planned = plan.of_transaction(session.id)
        assert planned is not None and planned.departure_source == "site+soon"
