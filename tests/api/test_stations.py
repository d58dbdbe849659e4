"""``/api/v1/stations``: what an operator sees of real stations of both versions, and registering them.

Stations connect over real websockets (tests/support); the API is called over HTTP on its real port.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from websockets.exceptions import InvalidStatus

from optivgi_csms.domain.site import SiteConfig
from optivgi_csms.services.events import Event, SiteChanged
from optivgi_csms.store.models import Station
from tests.api.conftest import Api, api_for
from tests.conftest import CsmsFactory
from tests.smart_charging.helpers import limit_site, profiles, station, until
from tests.support.driver import VERSIONS, connect

PASSWORD = "correct-horse-battery"
OTHER_PASSWORD = "another-long-password-2"


@contextlib.asynccontextmanager
async def started_api(make_csms: CsmsFactory, **settings: Any) -> AsyncIterator[Api]:
    """A CSMS started with ``settings`` and clients to its API."""
    csms = await make_csms(api=True, **settings)
    generator = api_for(csms)
    try:
        yield await anext(generator)
    finally:
        await generator.aclose()


async def station_json(api: Api, station_id: str) -> dict[str, Any]:
    """``GET /api/v1/stations/{id}``, which must succeed."""
    response = await api.client.get(f"/api/v1/stations/{station_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def listed(api: Api, **params: Any) -> list[dict[str, Any]]:
    """``GET /api/v1/stations`` with query ``params``, which must succeed."""
    response = await api.client.get("/api/v1/stations", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", VERSIONS)
async def test_list_and_detail_follow_a_station_connecting_booting_reporting_and_leaving(
    api: Api, version: str
) -> None:
    assert await listed(api) == []
    async with connect(api.csms, "CS-1", version) as driver:
        (row,) = await listed(api)
        assert (row["id"], row["ocpp_version"], row["connected"], row["registered"]) == ("CS-1", version, True, False)
        assert row["connected_since"] is not None and row["connected_since"].endswith("Z")
        assert row["vendor"] is None and row["connectors"] == []

        await driver.boot("Acme", "Fast-22", serial_number="SN-42", firmware_version="1.2.3")
        await driver.status(1, "Available")
        await driver.status(0, "Available")
        await driver.status(1, "Occupied")
        detail = await station_json(api, "CS-1")
        assert (detail["vendor"], detail["model"], detail["serial_number"], detail["firmware_version"]) == (
            "Acme",
            "Fast-22",
            "SN-42",
            "1.2.3",
        )
        assert detail["boot_status"] == "Accepted" and detail["site_id"] == "default"
        assert detail["last_seen_at"] >= detail["connected_since"]
        connectors = [(c["evse_id"], c["connector_id"], c["status"], c["error_code"]) for c in detail["connectors"]]
        error_code = "NoError" if version == "1.6" else None
        occupied = "Preparing" if version == "1.6" else "Occupied"
        assert connectors == [(0, 0, "Available", error_code), (1, 1, occupied, error_code)]
        assert all(c["status_at"] == "2026-03-02T07:59:00Z" for c in detail["connectors"])
        assert detail["capabilities"] is None and detail["charging_profiles"] == []
        assert [s["id"] for s in await listed(api, connected="true")] == ["CS-1"]
        assert await listed(api, connected="false") == []

    # Gone: the CSMS notices the closed socket and says since when it is away; what it knew stays.
    async def away() -> bool:
        return not (await station_json(api, "CS-1"))["connected"]

    await until(away, what="CS-1 shown disconnected")
    detail = await station_json(api, "CS-1")
    assert detail["connected_since"] is None and detail["last_disconnected_at"] is not None
    assert detail["last_seen_at"] == detail["last_disconnected_at"]
    assert detail["vendor"] == "Acme" and len(detail["connectors"]) == 2
    assert await listed(api, connected="true") == []
    assert [s["id"] for s in await listed(api, connected="false")] == ["CS-1"]


async def test_the_list_filters_and_pages(api: Api) -> None:
    for station_id in ("CS-A", "CS-B", "CS-C"):
        assert (await api.client.put(f"/api/v1/stations/{station_id}", json={})).status_code == 201
    async with connect(api.csms, "CS-D", "1.6"):
        assert [s["id"] for s in await listed(api)] == ["CS-A", "CS-B", "CS-C", "CS-D"]
        assert [s["id"] for s in await listed(api, registered="true")] == ["CS-A", "CS-B", "CS-C"]
        assert [s["id"] for s in await listed(api, registered="false")] == ["CS-D"]
        assert [s["id"] for s in await listed(api, limit=2, offset=1)] == ["CS-B", "CS-C"]
        assert [s["id"] for s in await listed(api, site_id="default", connected="false", limit=1)] == ["CS-A"]
        assert await listed(api, site_id="elsewhere") == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_detail_shows_capabilities_and_the_last_profile_answers(make_csms: CsmsFactory, version: str) -> None:
    async with started_api(make_csms) as api:
        api.csms.smart_charging.debounce_s = 0.05
        await limit_site(api.csms, limit_kw=22.0)
        async with station(api.csms, "CS-1", version) as charger:
            await until(lambda: profiles(charger, None), what="a profile sent")

            async def answered() -> bool:
                found = (await station_json(api, "CS-1"))["charging_profiles"]
                return bool(found) and found[0]["status"] is not None

            await until(answered, what="a profile answer recorded")
            detail = await station_json(api, "CS-1")
            assert detail["capabilities"] is not None and detail["capabilities"]
            newest = detail["charging_profiles"][0]
            assert (newest["status"], newest["purpose"], newest["evse_id"]) == ("Accepted", "TxDefault", 0)
            assert newest["profile"]["schedule"]["periods"] and newest["answered_at"] is not None
            assert detail["smart_charging_note"] is None
            limited = await api.client.get("/api/v1/stations/CS-1", params={"profiles": 0})
            assert limited.json()["charging_profiles"] == []


async def test_register_update_and_unregister_keep_the_history(api: Api) -> None:
    created = await api.client.put("/api/v1/stations/CS-NEW", json={})
    assert created.status_code == 201
    body = created.json()
    assert (body["id"], body["registered"], body["password_set"], body["connected"]) == ("CS-NEW", True, False, False)
    assert body["ocpp_version"] is None and body["site_id"] == "default"

    updated = await api.client.put("/api/v1/stations/CS-NEW", json={"password": PASSWORD})
    assert updated.status_code == 200 and updated.json()["password_set"] is True
    assert PASSWORD not in updated.text
    # Omitting the password keeps it; null clears it.
    assert (await api.client.put("/api/v1/stations/CS-NEW", json={})).json()["password_set"] is True
    assert (await api.client.put("/api/v1/stations/CS-NEW", json={"password": None})).json()["password_set"] is False

    # A station that connected unregistered is registered in place (200: the CSMS knew it).
    async with connect(api.csms, "CS-SEEN", "2.0.1") as driver:
        await driver.boot()
    response = await api.client.put("/api/v1/stations/CS-SEEN", json={"password": PASSWORD})
    assert response.status_code == 200
    assert (response.json()["registered"], response.json()["ocpp_version"]) == (True, "2.0.1")

    removed = await api.client.delete("/api/v1/stations/CS-SEEN")
    assert removed.status_code == 204
    after = await station_json(api, "CS-SEEN")
    assert (after["registered"], after["password_set"], after["vendor"]) == (False, False, "VendorX")
    again = await api.client.delete("/api/v1/stations/CS-SEEN")
    assert again.status_code == 404 and again.json()["detail"] == "no registered station 'CS-SEEN'"
    assert (await api.client.delete("/api/v1/stations/CS-NEVER")).status_code == 404


async def test_a_new_password_is_needed_at_the_next_handshake(make_csms: CsmsFactory) -> None:
    async with started_api(make_csms, security_profile=1) as api:
        assert (await api.client.put("/api/v1/stations/CS-1", json={"password": PASSWORD})).status_code == 201
        async with connect(api.csms, "CS-1", "1.6", password=PASSWORD) as driver:
            assert (await driver.boot()).status == "Accepted"

        changed = await api.client.put("/api/v1/stations/CS-1/password", json={"password": OTHER_PASSWORD})
        assert changed.status_code == 200 and changed.json() == {"id": "CS-1", "password_set": True}
        async with api.csms.database.read() as session:
            stored = await session.scalar(select(Station.password_hash).where(Station.id == "CS-1"))
        assert stored and OTHER_PASSWORD not in stored and stored.startswith("scrypt$")

        with pytest.raises(InvalidStatus) as refused:
            async with connect(api.csms, "CS-1", "2.0.1", password=PASSWORD):
                pass
        assert refused.value.response.status_code == 401
        async with connect(api.csms, "CS-1", "2.0.1", password=OTHER_PASSWORD) as driver:
            assert (await driver.boot()).status == "Accepted"

        cleared = await api.client.put("/api/v1/stations/CS-1/password", json={"password": None})
        assert cleared.json() == {"id": "CS-1", "password_set": False}
        with pytest.raises(InvalidStatus):
            async with connect(api.csms, "CS-1", "1.6", password=OTHER_PASSWORD):
                pass


async def test_password_rules_are_the_cli_s(api: Api) -> None:
    for password, words in (
        ("short", "must be 16 to 40 characters"),
        ("x" * 41, "must be 16 to 40 characters"),
        ("with spaces in the password", "printable ASCII"),
        ("päss-wörd-mit-umlauten", "printable ASCII"),
    ):
        for path in ("/api/v1/stations/CS-1", "/api/v1/stations/CS-1/password"):
            response = await api.client.put(path, json={"password": password})
            assert response.status_code == 422, (path, password)
            assert response.json()["detail"].startswith("password: ") and words in response.json()["detail"]
    # Nothing was created by the refused requests.
    assert await listed(api) == []
    missing = await api.client.put("/api/v1/stations/CS-1/password", json={"password": PASSWORD})
    assert missing.status_code == 404 and missing.json()["detail"] == "no station 'CS-1'"
    body = await api.client.put("/api/v1/stations/CS-1/password", json={})
    assert body.status_code == 422 and body.json()["detail"].startswith("password:")


async def test_assigning_a_site_plans_both_sites_again(api: Api) -> None:
    await api.csms.services.sites.save(SiteConfig(id="north", limit_kw=50.0))
    assert (await api.client.put("/api/v1/stations/CS-1", json={})).status_code == 201
    seen: list[Event] = []
    api.csms.services.bus.subscribe(seen.append)

    response = await api.client.put("/api/v1/stations/CS-1/site", json={"site_id": "north"})
    assert response.status_code == 200 and response.json() == {"id": "CS-1", "site_id": "north"}
    assert {event.site_id for event in seen if isinstance(event, SiteChanged)} == {"default", "north"}
    assert (await station_json(api, "CS-1"))["site_id"] == "north"
    assert [s["id"] for s in await listed(api, site_id="north")] == ["CS-1"]
    assert await api.csms.services.sites.stations_of("north") == ["CS-1"]

    unknown_site = await api.client.put("/api/v1/stations/CS-1/site", json={"site_id": "nowhere"})
    assert unknown_site.status_code == 404 and unknown_site.json()["detail"] == "no site 'nowhere'"
    unknown_station = await api.client.put("/api/v1/stations/CS-9/site", json={"site_id": "north"})
    assert unknown_station.status_code == 404 and unknown_station.json()["detail"] == "no station 'CS-9'"
    # Registering with a site assigns it; an unknown site is refused before anything is written.
    registered = await api.client.put("/api/v1/stations/CS-2", json={"site_id": "north"})
    assert registered.status_code == 201 and registered.json()["site_id"] == "north"
    refused = await api.client.put("/api/v1/stations/CS-3", json={"site_id": "nowhere"})
    assert refused.status_code == 404 and refused.json()["detail"] == "no site 'nowhere'"
    assert (await api.client.get("/api/v1/stations/CS-3")).status_code == 404


async def test_bad_input_is_a_4xx_naming_the_field(api: Api) -> None:
    for station_id in ("has%20space", "x" * 49, "caf%C3%A9", "semi;colon"):
        response = await api.client.get(f"/api/v1/stations/{station_id}")
        assert response.status_code == 422, station_id
        assert response.json()["detail"].startswith("station_id: "), response.text
        put = await api.client.put(f"/api/v1/stations/{station_id}", json={})
        assert put.status_code == 422 and put.json()["detail"].startswith("station_id: ")
    # Every character the OCPP rule allows is accepted.
    odd = "a*-_=:+|@.~Z9"
    assert (await api.client.put(f"/api/v1/stations/{odd}", json={})).status_code == 201
    assert (await station_json(api, odd))["id"] == odd

    cases: list[tuple[str, str, Any, str]] = [
        ("PUT", "/api/v1/stations/CS-1/site", {"site_id": ""}, "site_id: "),
        ("PUT", "/api/v1/stations/CS-1/site", {"site_id": "s" * 49}, "site_id: "),
        ("PUT", "/api/v1/stations/CS-1/site", {}, "site_id: "),
        ("PUT", "/api/v1/stations/CS-1/site", {"site_id": "nul\u0000"}, "site_id: "),
        ("PUT", "/api/v1/stations/CS-1", {"site_id": "tab\there"}, "site_id: "),
        ("GET", "/api/v1/stations?site_id=%00", None, "site_id: "),
        ("PUT", "/api/v1/stations/CS-1", {"site_id": 7}, "site_id: "),
        ("PUT", "/api/v1/stations/CS-1", [1, 2], "body: "),
        ("PUT", "/api/v1/stations/CS-1", None, "body: "),
        ("GET", "/api/v1/stations?limit=0", None, "limit: "),
        ("GET", "/api/v1/stations?limit=1001", None, "limit: "),
        ("GET", "/api/v1/stations?offset=-1", None, "offset: "),
        ("GET", "/api/v1/stations?connected=maybe", None, "connected: "),
        ("GET", f"/api/v1/stations/{odd}?profiles=101", None, "profiles: "),
    ]
    for method, path, body, prefix in cases:
        response = await api.client.request(method, path, json=body)
        assert response.status_code == 422, (method, path, body, response.text)
        assert response.json()["detail"].startswith(prefix), (path, response.json())
    assert (await api.client.get("/api/v1/stations/CS-404")).json() == {"detail": "no station 'CS-404'"}
    assert (await api.anonymous.get("/api/v1/stations")).status_code == 401
    assert (await api.anonymous.put("/api/v1/stations/CS-1", json={})).status_code == 401
