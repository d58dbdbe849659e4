"""Refused profiles: retried once in the other shape, then the session is uncontrolled and the site holds."""

from __future__ import annotations

from datetime import UTC, datetime

from optivgi_csms.smart_charging import Capabilities
from optivgi_csms.store.models import Station, Transaction
from tests.smart_charging.helpers import Rules, limit_site, profiles, stamp, station, until, wait_cycle


async def stored(csms, station_id: str, transaction_id: int | None = None) -> tuple[Station, Transaction | None]:
    async with csms.database.read() as session:
        row = await session.get(Station, station_id)
        transaction = await session.get(Transaction, transaction_id) if transaction_id is not None else None
        return row, transaction


async def test_a_station_refusing_its_reported_stack_level_is_retried_at_level_0(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=11.0)
    # It reports level 8 (the test station's default) but takes only level 0, as some real chargers do.
    async with station(csms, "CS-L0", rules=Rules(max_stack_level=0)) as charger:
        await charger.start(timestamp=stamp())
        await until(lambda: len(profiles(charger)) == 2, what="a retry")
        first, retry = profiles(charger)
        assert (first.stack_level, retry.stack_level) == (1, 0)
        assert first.unit == retry.unit == "A"
        row = await wait_cycle(csms, lambda r: "start" in r.trigger)
        assert row.evs[0]["profile"]["answers"] == ["Rejected", "Accepted"]
        # what the retry taught is kept: the next profile goes at level 0 straight away
        station_row, _ = await stored(csms, "CS-L0")
        learned = Capabilities.from_dict(station_row.capabilities)
        assert learned.max_stack_level == 0 and "stack level 0" in (learned.learned_note or "")
        await csms.services.sites.update("default", limit_kw=7.0)
        await until(lambda: len(profiles(charger)) == 3, what="the profile under the new limit")
        assert profiles(charger)[-1].stack_level == 0


async def test_a_station_refusing_amperes_is_retried_in_watts(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=11.0)
    # It says nothing of its units (the test station reports no RateUnit) and takes only W, at level 0.
    async with station(csms, "CS-W", "2.0.1", config={"ProfileStackLevel": "0"}, rules=Rules(units=("W",))) as charger:
        await charger.start(timestamp=stamp())
        await until(lambda: len(profiles(charger)) == 2, what="a retry")
        first, retry = profiles(charger)
        assert (first.unit, retry.unit) == ("A", "W")
        assert retry.periods[0][1] == 11000.0
        assert first.stack_level == retry.stack_level == 0


async def test_refused_twice_the_session_is_uncontrolled_and_holds_its_maximum(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=30.0)
    async with station(csms, "CS-NO", rules=Rules(units=())) as refuser, station(csms, "CS-OK", "2.0.1") as other:
        refused = await refuser.start(timestamp=stamp())
        await until(lambda: len(profiles(refuser)) == 2, what="a retry")
        assert [(p.unit, p.stack_level) for p in profiles(refuser)] == [("A", 1), ("A", 0)]

        async def marked() -> bool:
            station_row, transaction = await stored(csms, "CS-NO", refused.id)
            return bool(station_row.smart_charging_note and transaction and transaction.uncontrolled_reason)

        await until(marked, what="the session marked uncontrolled")
        station_row, transaction = await stored(csms, "CS-NO", refused.id)
        assert "refused" in transaction.uncontrolled_reason
        assert station_row.smart_charging_note.startswith(f"transaction {refused.id}: charging profile refused")

        await other.start(timestamp=stamp())
        await until(lambda: profiles(other), what="a profile for the other EV")
        # the uncontrolled EV may draw its 22 kW: the other gets only what is left of 30 kW
        assert profiles(other)[-1].kw_at(datetime.now(UTC)) <= 30.0 - 22.08 + 1e-6
        row = await wait_cycle(csms, lambda r: r.summary["uncontrolled"] and r.evs)
        assert row.summary["uncontrolled"][0]["transaction_id"] == refused.id
        assert [ev["station_id"] for ev in row.evs] == ["CS-OK"]
        assert len(profiles(refuser)) == 2  # no more attempts for that session
