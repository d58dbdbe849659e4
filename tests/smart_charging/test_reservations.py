"""Reservations in the horizon are planned as EVs still to come: the site keeps their energy for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.smart_charging.helpers import limit_site, profiles, stamp, station, until, wait_cycle

MINUTE = timedelta(minutes=1)


async def test_a_reservation_is_planned_as_a_future_ev_until_cancelled(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=11.0)  # one hour ahead: 11 kWh for everyone
    async with station(csms, "CS-A") as a, station(csms, "CS-B", "2.0.1") as b:
        session = await a.start(timestamp=stamp())  # wants the site's default 20 kWh: more than it can get
        # ... and stays the hour (a session of unknown departure is planned as leaving soon).
        await csms.services.transactions.set_needs(session.id, departure_at=datetime.now(UTC) + timedelta(hours=2))
        await until(lambda: profiles(a), what="a profile")
        starts = datetime.now(UTC) + timedelta(minutes=10)
        reservation_id = await csms.reservations.reserve(
            "CS-B", 1, "TAG-R", starts, starts + timedelta(minutes=30), energy_kwh=4.0
        )
        row = await wait_cycle(csms, lambda r: "reservation" in r.trigger and len(r.evs) == 2)
        plan = csms.smart_charging.plan("default")
        assert plan is not None
        future = plan.ev(f"res-{reservation_id}")
        assert future is not None and not future.active and future.station_id == "CS-B"
        assert future.arrival >= starts and 3.5 < future.planned_kwh <= 4.0 + 1e-6
        early = [p for moment, p in zip(plan.slot_starts, future.power_kw, strict=True) if moment + MINUTE <= starts]
        assert early and all(power == 0.0 for power in early)
        # the hour's 11 kWh are shared: what the reserved EV will get is kept from the EV charging now
        assert abs(plan.of_transaction(session.id).planned_kwh + future.planned_kwh - 11.0) < 1e-6
        assert {ev["energy_source"] for ev in row.evs if not ev["active"]} == {"reservation"}
        assert profiles(b) == []  # nothing to send until its EV arrives

        await csms.reservations.cancel(reservation_id)
        await wait_cycle(csms, lambda r: "reservation" in r.trigger and len(r.evs) == 1)
        assert csms.smart_charging.plan("default").ev(f"res-{reservation_id}") is None
