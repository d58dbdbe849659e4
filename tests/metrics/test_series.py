"""What an operator reads in a /metrics scrape after real stations talk to the CSMS over real websockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from tests.api.conftest import Api
from tests.metrics.scrape import Scrape, scrape
from tests.smart_charging.helpers import limit_site, stamp, station
from tests.support.driver import Sample, connect
from tests.support.stations import connect_raw, eventually, wait_registered

CONNECTED = "optivgi_connected_stations"
RECEIVED = "optivgi_ocpp_messages_received_total"
ERRORS = "optivgi_ocpp_callerrors_sent_total"


async def scrape_until(api: Api, condition: Callable[[Scrape], bool], timeout: float = 5.0) -> Scrape:
    """Scrape until ``condition(scrape)`` holds (gauges follow a disconnection a moment later)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        latest = await scrape(api.client)
        if condition(latest):
            return latest
        assert asyncio.get_running_loop().time() < deadline, f"condition not met; last scrape:\n{latest.text}"
        await asyncio.sleep(0.05)


async def test_connected_stations_are_counted_by_version(api: Api) -> None:
    before = await scrape(api.client)
    assert before.value(CONNECTED, version="1.6") == 0 and before.value(CONNECTED, version="2.0.1") == 0
    async with connect(api.csms, "CP-16", "1.6"), connect(api.csms, "CP-201", "2.0.1"):
        during = await scrape(api.client)
        assert during.value(CONNECTED, version="1.6") == 1 and during.value(CONNECTED, version="2.0.1") == 1
    after = await scrape_until(
        api, lambda s: s.value(CONNECTED, version="1.6") == 0 and s.value(CONNECTED, version="2.0.1") == 0
    )
    assert after.value(CONNECTED, version="1.6") == 0


async def test_a_station_that_reconnects_is_counted_once(api: Api) -> None:
    async with connect_raw(api.csms, "CP-1"):
        await wait_registered(api.csms, "CP-1")
        async with connect_raw(api.csms, "CP-1"):
            # The new connection replaces the old one (closed by the CSMS): still one station.
            await eventually(lambda: len(api.csms.registry) == 1)
            assert (await scrape(api.client)).value(CONNECTED, version="1.6") == 1
    await scrape_until(api, lambda s: s.value(CONNECTED, version="1.6") == 0)


async def test_messages_and_callerrors_are_counted_by_action_and_handling_is_timed(api: Api) -> None:
    async with connect(api.csms, "CP-1", "1.6") as driver:
        await driver.boot()
        await driver.heartbeat()
        await driver.heartbeat()
    async with connect_raw(api.csms, "RAW-1") as raw:
        await wait_registered(api.csms, "RAW-1")
        assert (await raw.exchange("this is not JSON"))[2] == "FormationViolation"
        assert (await raw.call("MakeCoffee", {}))[2] == "NotImplemented"
        assert (await raw.call("Heartbeat", {"extra": 1}))[2] == "FormationViolation"
    async with connect_raw(api.csms, "RAW-2", subprotocol="ocpp2.0.1") as raw:
        await wait_registered(api.csms, "RAW-2")
        assert (await raw.call("Heartbeat", {}))[0] == 3

    metrics = await scrape(api.client)
    assert metrics.value(RECEIVED, version="1.6", action="BootNotification") == 1
    assert metrics.value(RECEIVED, version="1.6", action="Heartbeat") == 3  # the malformed one too
    assert metrics.value(RECEIVED, version="1.6", action="invalid_frame") == 1
    assert metrics.value(RECEIVED, version="1.6", action="unknown") == 1
    assert metrics.value(RECEIVED, version="2.0.1", action="Heartbeat") == 1
    assert metrics.value(ERRORS, version="1.6", action="invalid_frame", error_code="FormationViolation") == 1
    assert metrics.value(ERRORS, version="1.6", action="unknown", error_code="NotImplemented") == 1
    assert metrics.value(ERRORS, version="1.6", action="Heartbeat", error_code="FormationViolation") == 1
    assert metrics.value(ERRORS, version="2.0.1", action="Heartbeat") is None  # answered, no error

    latency = "optivgi_ocpp_handler_seconds"
    assert metrics.types[latency] == "histogram"
    assert metrics.value(f"{latency}_count", version="1.6", action="Heartbeat") == 3
    assert metrics.value(f"{latency}_bucket", version="1.6", action="Heartbeat", le="+Inf") == 3
    boot_s = metrics.value(f"{latency}_sum", version="1.6", action="BootNotification")
    assert boot_s is not None and 0 < boot_s < 5  # a commit happened in there


async def test_made_up_actions_do_not_create_series(api: Api) -> None:
    async with connect_raw(api.csms, "RAW-1") as raw:
        await wait_registered(api.csms, "RAW-1")
        for n in range(40):
            reply = await raw.exchange(json.dumps([2, f"m{n}", f"Invented{n}", {}]))
            assert reply[2] == "NotImplemented"
    metrics = await scrape(api.client)
    assert metrics.value(RECEIVED, version="1.6", action="unknown") == 40
    assert "Invented" not in metrics.text
    assert metrics.label_values(RECEIVED, "action") <= {"unknown", "invalid_frame", "answer", "BootNotification"}


async def test_a_cycle_shows_its_time_trigger_and_the_site_power_and_limit(api: Api) -> None:
    csms = api.csms
    await limit_site(csms, limit_kw=22.0)
    async with station(csms, "CS-1", "1.6") as charger:
        session = await charger.start(timestamp=stamp())
        await charger.meter(session, stamp(1), [Sample(7.0, "Power.Active.Import", "kW")])
        await csms.smart_charging.replan("default")
        metrics = await scrape(api.client)
        assert metrics.value("optivgi_site_limit_kw", site="default") == 22.0
        assert metrics.value("optivgi_site_power_kw", site="default") == 7.0
        cycles = "optivgi_scheduling_cycles_total"
        assert (metrics.value(cycles, site="default", trigger="site") or 0) >= 1  # the limit was set
        assert (metrics.value(cycles, site="default", trigger="operator") or 0) >= 1  # the replan
        count = metrics.value("optivgi_scheduling_cycle_seconds_count", site="default")
        total = metrics.value("optivgi_scheduling_cycle_seconds_sum", site="default")
        assert count is not None and count >= 2 and total is not None and 0 < total < 30 * count

        await limit_site(csms, limit_kw=11.0)
        assert (await scrape(api.client)).value("optivgi_site_limit_kw", site="default") == 11.0
        # A site with no limit left (and no prices) is not planned: its gauges go rather than go stale.
        await csms.services.sites.update("default", limit_kw=None)
        await scrape_until(api, lambda s: s.value("optivgi_site_limit_kw", site="default") is None)
