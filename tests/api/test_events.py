"""Live events over a real HTTP stream: what real stations do arrives in order, with the fields an operator
reads; a slow client loses its oldest events (and is told how many), never slows the CSMS; a client that
leaves frees its subscription; no token, no events."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets

from optivgi_csms.domain.time import format_timestamp
from optivgi_csms.services.events import StationBooted
from tests.api.conftest import Api
from tests.api.smart_api import smart_api  # noqa: F401  (fixture)
from tests.api.sse import SseReader, open_stream
from tests.smart_charging.helpers import station as smart_station
from tests.smart_charging.helpers import until
from tests.support.driver import Sample, connect

LIFE = {
    "station.connected",
    "station.booted",
    "station.disconnected",
    "connector.status",
    "transaction.started",
    "transaction.updated",
    "transaction.ended",
    "meter.value",
}


def stamp(offset_s: float = 0.0) -> str:
    """An OCPP timestamp ``offset_s`` seconds from now."""
    return format_timestamp(datetime.now(UTC) + timedelta(seconds=offset_s))


def registry_size(api: Api) -> int:
    """How many live-event subscriptions the API holds."""
    assert api.csms.api is not None
    return len(getattr(api.csms.api._server.config.app.state, "live_events", []))  # type: ignore[union-attr]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_station_s_life_arrives_in_order_with_its_fields(api: Api, version: str) -> None:
    async with open_stream(api.client) as stream:
        async with connect(api.csms, "CS-1", version) as driver:
            await driver.boot()
            await driver.status(1, "Available", timestamp=stamp(-60))
            session = await driver.start("TAG-1", meter_start_wh=1000, timestamp=stamp(-50))
            await driver.meter(
                session,
                stamp(-40),
                [
                    Sample(7400, "Power.Active.Import", "W"),
                    Sample(2500, "Energy.Active.Import.Register", "Wh"),
                ],
            )
            await driver.stop(session, meter_stop_wh=4000, timestamp=stamp(-30), reason="EVDisconnected")
        if version == "1.6":
            kinds = ["station.connected", "station.booted", "connector.status", "transaction.started"]
            kinds += ["meter.value", "transaction.ended", "station.disconnected"]
        else:  # a TransactionEvent carries its meter values: Started and Ended have the register's reading
            kinds = ["station.connected", "station.booted", "connector.status", "transaction.started", "meter.value"]
            kinds += ["transaction.updated", "meter.value", "meter.value", "transaction.ended", "station.disconnected"]
        events = await stream.collect(LIFE, len(kinds))

    assert [event["type"] for event in events] == kinds
    assert all(event["station_id"] == "CS-1" and event["at"].endswith("Z") for event in events)
    by_type: dict[str, list[dict[str, object]]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    assert by_type["station.connected"][0]["admitted"] is True
    assert by_type["station.booted"][0]["accepted"] is True
    status = by_type["connector.status"][0]
    assert (status["evse_id"], status["connector_id"]) == (1, 1)
    assert status["status"] == "Available"
    started = by_type["transaction.started"][0]
    assert (started["transaction_id"], started["evse_id"], started["id_tag"]) == (session.id, 1, "TAG-1")
    charging = next(event for event in by_type["meter.value"] if event["power_kw"] is not None)
    assert (charging["transaction_id"], charging["evse_id"]) == (session.id, 1)
    assert charging["power_kw"] == pytest.approx(7.4)
    assert charging["energy_kwh"] == pytest.approx(2.5)
    ended = by_type["transaction.ended"][0]
    assert ended["transaction_id"] == session.id
    assert ended["energy_kwh"] == pytest.approx(3.0)  # 4000 Wh at the end less 1000 Wh at the start
    assert ended["reason"] == "EVDisconnected"
    if version == "2.0.1":
        assert by_type["transaction.updated"][0]["trigger_reason"] == "MeterValuePeriodic"


async def test_a_cycle_reports_its_site_trigger_and_the_limits_sent(smart_api: Api) -> None:  # noqa: F811
    api = smart_api
    response = await api.client.patch(
        "/api/v1/sites/default", json={"limit_kw": 11, "resolution_s": 60, "horizon_s": 3600}
    )
    assert response.status_code == 200, response.text
    async with (
        open_stream(api.client, "?types=cycle,transaction.started") as stream,
        smart_station(api.csms, "CS-1") as driver,
    ):
        session = await driver.start("TAG-1", timestamp=stamp())
        started = await stream.until("transaction.started", timeout=10)
        assert started["transaction_id"] == session.id
        while True:  # the cycle that planned the new session (others may run before it)
            cycle = await stream.until("cycle.finished", timeout=10)
            if any(limit["transaction_id"] == session.id for limit in cycle["limits"]):
                break
    assert cycle["site_id"] == "default"
    assert cycle["limit_kw"] == pytest.approx(11)
    assert cycle["status"] and cycle["algorithm"]
    assert cycle["error"] is None
    assert isinstance(cycle["trigger"], dict) and cycle["trigger"]
    (sent,) = [limit for limit in cycle["limits"] if limit["transaction_id"] == session.id]
    assert (sent["station_id"], sent["evse_id"], sent["kind"], sent["status"]) == ("CS-1", 1, "tx", "Accepted")
    assert 0 < sent["limit_kw"] <= 11.0 + 1e-6
    assert cycle["planned_kw"] == pytest.approx(sent["limit_kw"], abs=0.05)


async def test_a_filter_selects_types_and_families(api: Api) -> None:
    async with open_stream(api.client, "?types=station.disconnected,connector") as stream:
        async with connect(api.csms, "CS-1", "1.6") as driver:
            await driver.boot()
            await driver.status(1, "Available", timestamp=stamp())
        first = await stream.event()
        second = await stream.event()
    assert (first["type"], first["status"]) == ("connector.status", "Available")
    assert second["type"] == "station.disconnected"


async def test_bad_parameters_are_422_naming_the_field(api: Api) -> None:
    for query, field in (
        ("?types=meter.value,nonsense", "types"),
        ("?heartbeat=0", "heartbeat"),
        ("?heartbeat=abc", "heartbeat"),
        ("?buffer=1", "buffer"),
        ("?buffer=10000000", "buffer"),
        ("?types=" + "x" * 2000, "types"),
    ):
        response = await api.client.get(f"/api/v1/events{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.json()["detail"].startswith(f"{field}:"), response.text
    response = await api.client.get("/api/v1/events?types=nonsense")
    assert "nonsense" in response.json()["detail"] and "meter.value" in response.json()["detail"]


async def test_no_token_no_events(api: Api) -> None:
    response = await api.anonymous.get("/api/v1/events")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    response = await api.anonymous.get("/api/v1/events", headers={"Authorization": "Bearer ovc_wrong"})
    assert response.status_code == 401
    assert registry_size(api) == 0


async def test_heartbeats_keep_a_quiet_stream_alive(api: Api) -> None:
    async with open_stream(api.client, "?heartbeat=1") as stream:
        started = time.monotonic()
        message = await stream.message(timeout=3)
        assert message.comment is not None and message.comment.startswith("heartbeat")
        assert time.monotonic() - started < 4  # ~1 s; generous for a loaded machine


async def test_a_client_that_leaves_frees_its_subscription(api: Api) -> None:
    bus = api.csms.services.bus
    before = bus.subscribers
    async with open_stream(api.client) as first, open_stream(api.client, "?types=meter"):
        assert bus.subscribers == before + 2
        assert registry_size(api) == 2
        del first
    await until(lambda: bus.subscribers == before and registry_size(api) == 0, timeout=3, what="subscriptions freed")
    # A client that vanishes without closing its side (the connection is cut) is noticed as well.
    async with httpx.AsyncClient(base_url=api.base_url, headers={"Authorization": f"Bearer {api.token}"}) as client:
        request = client.build_request("GET", "/api/v1/events")
        response = await client.send(request, stream=True)
        await SseReader(response).event()
        assert bus.subscribers == before + 1
        await response.aclose()
    await until(lambda: bus.subscribers == before, timeout=3, what="subscription of a cut connection freed")


async def test_a_burst_beyond_the_buffer_drops_the_oldest_and_says_how_many(api: Api) -> None:
    bus = api.csms.services.bus
    async with open_stream(api.client, "?types=station.booted&buffer=10") as stream:
        # One burst, published without yielding (as a flood of station messages would be): the stream
        # cannot send anything in between, so only the buffer's worth survives.
        for n in range(25):
            bus.publish(StationBooted(f"CS-{n}", accepted=False))
        dropped = await stream.event()
        assert dropped == {"type": "dropped", "count": 15}
        kept = [(await stream.event())["station_id"] for _ in range(10)]
        assert kept == [f"CS-{n}" for n in range(15, 25)]
        bus.publish(StationBooted("CS-after", accepted=False))
        after = await stream.event()
        assert after["station_id"] == "CS-after"  # no further notice: nothing more was lost


async def test_a_client_that_stops_reading_never_slows_the_csms_or_grows_its_memory(api: Api) -> None:
    bus = api.csms.services.bus
    async with open_stream(api.client, "?types=station.booted&buffer=100") as stream:
        # The client reads nothing while 100 000 events (about 13 MB of JSON) are published: the socket
        # buffers fill, then the subscription's queue; publishing goes on at full speed.
        started = time.perf_counter()
        for n in range(100_000):
            bus.publish(StationBooted(f"CS-{n}", accepted=False))
            if n % 500 == 499:
                await asyncio.sleep(0)  # let the stream write what the socket takes
        publishing_s = time.perf_counter() - started
        registry = api.csms.api._server.config.app.state.live_events  # type: ignore[union-attr]
        (subscription,) = registry._subscriptions
        assert subscription.pending <= 100
        health = await api.anonymous.get("/api/v1/health")
        assert health.status_code == 200
        assert publishing_s < 10
        bus.publish(StationBooted("CS-last", accepted=False))
        # The client catches up: somewhere in what it reads, a notice counts what it lost.
        lost = 0
        received = 0
        async with asyncio.timeout(30):
            while True:
                event = await stream.event()
                if event["type"] == "dropped":
                    lost += event["count"]
                    continue
                received += 1
                if event["station_id"] == "CS-last":
                    break
    assert lost > 0
    assert received + lost == 100_001


async def test_the_websocket_takes_its_token_in_the_first_message(api: Api) -> None:
    url = f"ws://127.0.0.1:{api.csms.api.port}/api/v1/events/ws?types=station"  # type: ignore[union-attr]
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"token": api.token}))
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready" and ready["types"] == [
            "station.booted",
            "station.connected",
            "station.disconnected",
        ]
        async with connect(api.csms, "CS-1", "2.0.1") as driver:
            await driver.boot()
        kinds = [json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] for _ in range(3)]
        assert kinds == ["station.connected", "station.booted", "station.disconnected"]
    # ...or in the handshake's Authorization header (clients other than browsers).
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {api.token}"}) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
    await until(lambda: registry_size(api) == 0, timeout=3, what="websocket subscriptions freed")


async def test_the_websocket_without_a_valid_token_is_closed_4401(api: Api) -> None:
    url = f"ws://127.0.0.1:{api.csms.api.port}/api/v1/events/ws"  # type: ignore[union-attr]
    for first in (json.dumps({"token": "ovc_wrong"}), "not json", json.dumps(["token"])):
        async with websockets.connect(url) as ws:
            await ws.send(first)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert registry_size(api) == 0


async def test_streams_end_when_the_csms_stops(api: Api) -> None:
    async with open_stream(api.client) as stream:
        assert api.csms.api is not None
        started = time.monotonic()
        stopping = asyncio.create_task(api.csms.api.stop())
        closing = await stream.until("closing", timeout=3)
        await stopping
    assert closing["reason"] == "server stopping"
    assert time.monotonic() - started < 1.5  # not the 2 s graceful-shutdown bound
