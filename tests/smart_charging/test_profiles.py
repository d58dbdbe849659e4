"""Profiles sent when sessions start: in the station's version, unit, phases, stack level and periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from optivgi_csms.domain.site import LimitStep
from optivgi_csms.smart_charging.evs import OPEN_DEPARTURE_SLOTS
from tests.smart_charging.helpers import cycles, limit_site, profiles, stamp, station, until, wait_cycle
from tests.support.driver import VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_started_session_gets_a_tx_profile_in_amperes_on_three_phases(smart_csms_factory, version) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=11.0)
    async with station(csms, "CS-1", version) as charger:
        session = await charger.start(timestamp=stamp())
        await until(lambda: profiles(charger), what="a Tx profile")
        tx = profiles(charger)[0]
        assert tx.evse_id == 1
        assert tx.transaction_id == session.ocpp_id  # the station's own id in either version
        assert (tx.unit, tx.stack_level) == ("A", 1)
        assert tx.periods[0] == (0, 15.9, 3)  # 11 kW / (230 V x 3) = 15.94 A, rounded down
        # The session did not say when it leaves: planned as leaving within a few slots, its profile ends
        # there (renewed before it ends; the fail-safe profile holds if we fall silent).
        assert tx.duration == OPEN_DEPARTURE_SLOTS * 60
        assert all(limit == round(limit, 1) for _, limit, _ in tx.periods)
        # the fail-safe TxDefault went first, on EVSE 0, at the whole site (one EVSE)
        (default,) = profiles(charger, "TxDefault")
        assert (default.evse_id, default.stack_level, default.periods) == (0, 0, ((0, 15.9, 3),))
        assert charger.received().index("SetChargingProfile") > charger.received().index(
            "GetConfiguration" if version == "1.6" else "GetVariables"
        )


async def test_a_station_that_allows_only_watts_gets_watts(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=11.0)
    async with station(csms, "CS-W", config={"ChargingScheduleAllowedChargingRateUnit": "Power"}) as charger:
        await charger.start(timestamp=stamp())
        await until(lambda: profiles(charger), what="a Tx profile")
        tx = profiles(charger)[0]
        assert tx.unit == "W"
        assert tx.periods[0] == (0, 11000.0, 3)
        assert profiles(charger, "TxDefault")[0].unit == "W"


async def test_a_201_station_reporting_watts_only_gets_watts(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=7.0)
    async with station(csms, "CS-W2", "2.0.1", config={"RateUnit": "W"}) as charger:
        await charger.start(timestamp=stamp())
        await until(lambda: profiles(charger), what="a Tx profile")
        assert (profiles(charger)[0].unit, profiles(charger)[0].periods[0][1]) == ("W", 7000.0)


async def test_stack_level_and_periods_stay_within_what_the_station_reports(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    now = datetime.now(UTC)
    drop = now.replace(second=0, microsecond=0) + timedelta(minutes=3)
    # 22 kW for a few minutes, then 11 kW, then nothing more to deliver: a plan of three periods.
    await limit_site(csms, limit_kw=22.0, limit_schedule=(LimitStep(drop, 11.0),), default_energy_kwh=3.0)
    config = {"ChargeProfileMaxStackLevel": "0", "ChargingScheduleMaxPeriods": "2"}
    async with station(csms, "CS-2P", config=config) as charger:
        await charger.start(timestamp=stamp())
        await until(lambda: profiles(charger), what="a Tx profile")
        tx = profiles(charger)[0]
        assert tx.stack_level == 0
        assert len(tx.periods) <= 2
        assert tx.periods[0][1] == 31.8
        # cut short where the third period would begin, and planned again before it ends
        assert tx.duration is not None and tx.duration < 3600
        assert [limit for _, limit, _ in tx.periods] == [31.8, 15.9]
        loop = csms.smart_charging.loops["default"]
        await until(lambda: loop.replan_at is not None, what="a re-plan due before the profile ends")


async def test_a_site_with_nothing_to_plan_sends_nothing(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    async with station(csms, "CS-FREE") as charger:
        await charger.start(timestamp=stamp())
        await csms.smart_charging.replan("default")
        assert "SetChargingProfile" not in charger.received()
        assert "GetConfiguration" not in charger.received()  # a station of such a site is left alone
    assert await cycles(csms) == []
    assert csms.smart_charging.plan("default") is None


async def test_an_unchanged_plan_sends_nothing_new(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=11.0)
    async with station(csms, "CS-1") as charger:
        await charger.start(timestamp=stamp())
        await until(lambda: profiles(charger), what="a Tx profile")
        await csms.smart_charging.replan("default")
        await csms.smart_charging.replan("default")
        assert len(profiles(charger)) == 1
        row = await wait_cycle(csms, lambda r: "operator" in r.trigger and r.evs)
        assert row.evs[0]["profile"] == {"status": "kept", "reason": "unchanged"}
