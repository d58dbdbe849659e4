"""``GET /metrics``: Prometheus text behind the API's bearer token, one set of series per CSMS."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api, api_for
from tests.conftest import CsmsFactory
from tests.metrics.scrape import Scrape, scrape
from tests.support.driver import connect

SERIES = {
    "optivgi_connected_stations": "gauge",
    "optivgi_ocpp_messages_received": "counter",
    "optivgi_ocpp_callerrors_sent": "counter",
    "optivgi_ocpp_handler_seconds": "histogram",
    "optivgi_scheduling_cycle_seconds": "histogram",
    "optivgi_scheduling_cycles": "counter",
    "optivgi_site_power_kw": "gauge",
    "optivgi_site_limit_kw": "gauge",
}


async def test_metrics_need_the_same_token_as_the_api(api: Api) -> None:
    response = await api.anonymous.get("/metrics")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in response.json()["detail"]
    wrong = await api.anonymous.get("/metrics", headers={"Authorization": "Bearer ovc_not-a-real-token"})
    assert wrong.status_code == 401
    # What Prometheus sends with `authorization: credentials_file`: the token as a Bearer credential.
    scraped = await api.anonymous.get("/metrics", headers={"Authorization": f"Bearer {api.token}"})
    assert scraped.status_code == 200


async def test_metrics_are_prometheus_text_outside_the_versioned_api(api: Api) -> None:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    metrics = Scrape.parse(response.text)
    for name, kind in SERIES.items():
        assert metrics.types.get(name) == kind, name
    assert (await api.client.get("/api/v1/metrics")).status_code == 404
    schema = (await api.anonymous.get("/openapi.json")).json()
    assert "get" in schema["paths"]["/metrics"]


async def test_each_csms_has_its_own_series(make_csms: CsmsFactory) -> None:
    first = await make_csms(api=True)
    second = await make_csms(api=True)  # the same database, so the same token works on both
    async with connect(first, "CP-1", "1.6") as driver:
        await driver.boot()
        scrapes: list[Scrape] = []
        async for api in api_for(first):
            scrapes.append(await scrape(api.client))
            assert second.api is not None
            other_url = f"http://127.0.0.1:{second.api.port}"
            async with httpx.AsyncClient(base_url=other_url, headers=api.client.headers, timeout=10) as client:
                scrapes.append(await scrape(client))
    one, other = scrapes
    assert one.value("optivgi_connected_stations", version="1.6") == 1
    assert one.value("optivgi_ocpp_messages_received_total", version="1.6", action="BootNotification") == 1
    assert other.value("optivgi_connected_stations", version="1.6") == 0
    assert other.value("optivgi_ocpp_messages_received_total", version="1.6", action="BootNotification") is None


async def test_a_scrape_while_stations_talk_answers_at_once(api: Api) -> None:
    async with connect(api.csms, "CP-1", "2.0.1") as driver:
        await driver.boot()
        async with httpx.AsyncClient(base_url=api.base_url, headers=api.client.headers, timeout=2) as client:
            for _ in range(5):
                await driver.heartbeat()
                assert (await client.get("/metrics")).status_code == 200
    metrics = await scrape(api.client)
    assert metrics.value("optivgi_ocpp_messages_received_total", version="2.0.1", action="Heartbeat") == 5
