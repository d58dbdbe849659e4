"""The fail-safe profile: every station holds its fair share of the site if the CSMS disappears."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from optivgi_csms.domain.site import LimitStep
from tests.smart_charging.helpers import limit_site, profiles, stamp, station, until, wait_cycle


async def test_booted_stations_get_their_fair_share_as_tx_default(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=22.0)
    async with station(csms, "CS-ONE") as one:
        # Alone at the site, it may have the whole of it.
        await until(lambda: profiles(one, "TxDefault"), what="a fail-safe profile")
        assert profiles(one, "TxDefault")[-1].periods == ((0, 31.8, 3),)
        async with (
            station(csms, "CS-TWO", "2.0.1") as two,
            station(csms, "CS-DUO", config={"NumberOfConnectors": "2"}) as duo,
        ):
            # Four EVSEs share 22 kW: 5.5 kW = 7.9 A each, on every connector of every station.
            for charger in (one, two, duo):
                await until(lambda c=charger: profiles(c, "TxDefault")[-1].periods[0][1] == 7.9, what="7.9 A")
                shapes = {
                    (p.evse_id, p.stack_level, p.unit, p.start is not None) for p in profiles(charger, "TxDefault")
                }
                assert shapes == {(0, 0, "A", True)}
            assert "SetChargingProfile" in one.received()
            assert profiles(one, "Tx") == []  # no session: nothing else


async def test_the_fail_safe_profile_follows_a_lower_limit_ahead(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    later = datetime.now(UTC) + timedelta(hours=2)
    await limit_site(csms, limit_kw=22.0, limit_schedule=(LimitStep(later, 11.0),))
    async with station(csms, "CS-1") as charger:
        await charger.start(timestamp=stamp())
        await until(lambda: profiles(charger, "TxDefault"), what="a fail-safe profile")
        # the tightest limit ahead: 11 kW, though 22 kW hold now (and the session gets them)
        assert profiles(charger, "TxDefault")[-1].periods[0][1] == 15.9
        await until(lambda: profiles(charger), what="a Tx profile")
        assert profiles(charger)[-1].periods[0][1] == 31.8


@pytest.mark.slow
async def test_a_station_reconnecting_without_a_boot_gets_its_profiles_again(smart_csms_factory) -> None:
    csms = await smart_csms_factory()
    await limit_site(csms, limit_kw=11.0)
    async with station(csms, "CS-1") as charger:
        session = await charger.start(timestamp=stamp())
        await until(lambda: profiles(charger), what="a profile")
    # Gone: its session may draw anything its last profile allows, so the site holds its maximum.
    row = await wait_cycle(csms, lambda r: "disconnect" in r.trigger)
    assert row.summary["uncontrolled"][0]["transaction_id"] == session.id
    async with station(csms, "CS-1", boot=False) as again:
        # No BootNotification: after a grace period it is set up from its stored capabilities.
        await until(lambda: profiles(again) and profiles(again, "TxDefault"), timeout=5, what="profiles again")
        assert "GetConfiguration" not in again.received()
        assert profiles(again)[-1].periods[0][1] == 15.9
