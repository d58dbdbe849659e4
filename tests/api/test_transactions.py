"""Sessions through the API: lists filtered by station, tag, start time and state; one session with its
energy and meter samples and the needs it is planned with; needs set through the API re-planning the site;
every bad request refused with the field named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from optivgi_csms.domain.time import format_timestamp
from tests.api.conftest import Api
from tests.api.smart_api import assert_unprocessable, patch_site_and_wait, smart_api
from tests.smart_charging.helpers import profiles, stamp, station, until, wait_cycle
from tests.smart_charging.test_needs import needs_call
from tests.support.driver import Sample, Session, connect

__all__ = ["smart_api"]  # the fixture, imported for pytest

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()]


async def test_sessions_are_listed_newest_first_with_filters(api: Api) -> None:
    async with connect(api.csms, "CS-A", "1.6") as a, connect(api.csms, "CS-B", "2.0.1") as b:
        first = await a.start("TAG-1", timestamp="2026-03-02T08:00:00Z")
        await a.stop(first, meter_stop_wh=5000, timestamp="2026-03-02T09:00:00Z")
        second = await a.start("TAG-2", timestamp="2026-03-03T08:00:00Z", meter_start_wh=100)
        third = await b.start("TAG-1", timestamp="2026-03-04T08:00:00Z")

    def get(**params: object):
        return api.client.get("/api/v1/transactions", params=params)

    everything = await get()
    assert ids(everything) == [third.id, second.id, first.id] and everything.headers["x-total-count"] == "3"
    assert ids(await get(station_id="CS-A")) == [second.id, first.id]
    assert ids(await get(id_tag="TAG-1")) == [third.id, first.id]
    assert ids(await get(state="open")) == [third.id, second.id]
    assert ids(await get(state="closed")) == [first.id]
    assert ids(await get(since="2026-03-03T00:00:00Z")) == [third.id, second.id]
    assert ids(await get(until="2026-03-03T00:00:00+00:00")) == [first.id]
    assert ids(await get(since="2026-03-03T00:00:00Z", until="2026-03-04T00:00:00Z")) == [second.id]
    assert ids(await get(station_id="CS-B", state="closed")) == []
    paged = await get(limit=1, offset=1)
    assert ids(paged) == [second.id] and paged.headers["x-total-count"] == "3"

    closed = (await get(state="closed")).json()[0]
    assert (closed["state"], closed["energy_kwh"], closed["stopped_at"]) == ("closed", 5.0, "2026-03-02T09:00:00Z")
    opened = (await get(station_id="CS-B")).json()[0]
    assert opened["ocpp_transaction_id"] == third.ocpp_id and opened["state"] == "open"

    assert_unprocessable(await get(since="2026-03-03T00:00:00"), "since")
    assert_unprocessable(await get(since="2026-03-04T00:00:00Z", until="2026-03-03T00:00:00Z"), "until")
    assert_unprocessable(await get(state="paused"), "state")
    assert_unprocessable(await get(limit=0), "limit")
    assert_unprocessable(await get(limit=5000), "limit")
    assert_unprocessable(await get(offset=-1), "offset")
    # text PostgreSQL cannot hold is refused before it reaches the database
    assert_unprocessable(await get(station_id="CS\u0000A"), "station_id")
    assert_unprocessable(await get(id_tag="TAG\u0000"), "id_tag")


async def meter(station, session: Session, at: str, energy_wh: int, power_w: int) -> None:
    await station.meter(session, at, [Sample(energy_wh, ENERGY, "Wh"), Sample(power_w, POWER, "W")])


async def test_a_session_shows_its_energy_samples_and_needs(api: Api) -> None:
    async with connect(api.csms, "CS-M", "1.6") as charger:
        session = await charger.start("TAG-M", timestamp="2026-03-02T08:00:00Z", meter_start_wh=1000)
        await meter(charger, session, "2026-03-02T08:15:00Z", 2000, 7400)
        await meter(charger, session, "2026-03-02T08:30:00Z", 3500, 7200)

        response = await api.client.get(f"/api/v1/transactions/{session.id}")
        assert response.status_code == 200, response.text
        detail = response.json()
        assert (detail["state"], detail["energy_kwh"], detail["station_id"]) == ("open", 2.5, "CS-M")
        assert detail["meter_values_total"] == 4
        samples = [(s["timestamp"], s["measurand"], s["value"], s["unit"]) for s in detail["meter_values"]]
        assert samples[0] == ("2026-03-02T08:15:00Z", ENERGY, 2000.0, "Wh")
        assert ("2026-03-02T08:30:00Z", POWER, 7200.0, "W") in samples
        needs = detail["needs"]
        # nothing said: the site's defaults (8 h stay, 20 kWh), less the 2.5 kWh delivered
        assert (needs["energy_source"], needs["energy_kwh"], needs["energy_remaining_kwh"]) == ("site", 20.0, 17.5)
        assert (needs["departure_source"], needs["departure_at"]) == ("site", "2026-03-02T16:00:00Z")
        assert detail["plan"] is None  # the default site has nothing to plan

        latest = (await api.client.get(f"/api/v1/transactions/{session.id}", params={"samples": 2})).json()
        assert [s["timestamp"] for s in latest["meter_values"]] == ["2026-03-02T08:30:00Z"] * 2

        page = await api.client.get(f"/api/v1/transactions/{session.id}/meter-values", params={"limit": 3})
        assert len(page.json()) == 3 and page.headers["x-total-count"] == "4"
        power = await api.client.get(f"/api/v1/transactions/{session.id}/meter-values", params={"measurand": POWER})
        assert [s["value"] for s in power.json()] == [7400.0, 7200.0]

        await charger.stop(session, meter_stop_wh=4000, timestamp="2026-03-02T09:00:00Z")
        closed = (await api.client.get(f"/api/v1/transactions/{session.id}")).json()
        assert (closed["state"], closed["energy_kwh"], closed["meter_stop_wh"]) == ("closed", 3.0, 4000.0)

    for path in ("/api/v1/transactions/999", "/api/v1/transactions/999/meter-values"):
        missing = await api.client.get(path)
        assert (missing.status_code, missing.json()["detail"]) == (404, "no transaction 999")
    assert_unprocessable(await api.client.get(f"/api/v1/transactions/{2**40}"), "transaction_id")
    assert_unprocessable(await api.client.get("/api/v1/transactions/abc"), "transaction_id")
    bad_measurand = {"measurand": "Power\u0000"}
    assert_unprocessable(await api.client.get("/api/v1/transactions/1/meter-values", params=bad_measurand), "measurand")
    assert_unprocessable(await api.client.get("/api/v1/transactions/1", params={"samples": 10**6}), "samples")


async def test_needs_set_through_the_api_change_the_plan(smart_api: Api) -> None:
    api = smart_api
    await patch_site_and_wait(api, limit_kw=22.0, default_energy_kwh=20.0)
    async with station(api.csms, "CS-1") as charger:
        session = await charger.start(timestamp=stamp())
        await until(lambda: profiles(charger), what="a first profile")
        before = (await api.client.get(f"/api/v1/transactions/{session.id}")).json()
        assert before["plan"] is not None and before["needs"]["energy_source"] == "site"

        departure = datetime.now(UTC) + timedelta(minutes=30)
        body = {"departure_at": format_timestamp(departure), "energy_kwh": 3.0}
        response = await api.client.put(f"/api/v1/transactions/{session.id}/needs", json=body)
        assert response.status_code == 200, response.text
        needs = response.json()["needs"]
        assert (needs["energy_source"], needs["energy_kwh"], needs["departure_source"]) == ("session", 3.0, "session")
        assert response.json()["energy_target_kwh"] == 3.0

        await wait_cycle(api.csms, lambda row: "session needs" in row.trigger)
        plan = (await api.client.get("/api/v1/sites/default/plan")).json()
        (ev,) = plan["evs"]
        assert (ev["energy_source"], ev["departure_source"]) == ("session", "session")
        assert ev["planned_kwh"] == pytest.approx(3.0, abs=1e-3)
        after = (await api.client.get(f"/api/v1/transactions/{session.id}")).json()
        assert after["plan"]["planned_kwh"] == pytest.approx(3.0, abs=1e-3)
        assert after["plan"]["departure"] >= format_timestamp(departure)[:16]


async def test_the_evs_own_needs_win_over_the_api(api: Api) -> None:
    async with connect(api.csms, "CS-15118", "2.0.1") as charger:
        session = await charger.start(timestamp=stamp())
        departure = datetime.now(UTC) + timedelta(hours=2)
        await charger.call(needs_call(12_000, departure, 16))
        put = await api.client.put(f"/api/v1/transactions/{session.id}/needs", json={"energy_kwh": 40})
        assert put.status_code == 200
        needs = put.json()["needs"]
        assert (needs["energy_source"], needs["energy_kwh"], needs["departure_source"]) == ("ev", 12.0, "ev")
        assert needs["ev_needs_at"] is not None and put.json()["energy_target_kwh"] == 40.0


async def test_bad_needs_are_refused(api: Api) -> None:
    async with connect(api.csms, "CS-N", "1.6") as charger:
        session = await charger.start(timestamp=stamp())
        ended = await charger.start(evse_id=2, timestamp=stamp(-60))
        await charger.stop(ended, meter_stop_wh=10, timestamp=stamp())
    path = f"/api/v1/transactions/{session.id}/needs"
    future = format_timestamp(datetime.now(UTC) + timedelta(hours=3))
    for body, field in [
        ({"departure_at": format_timestamp(datetime.now(UTC) - timedelta(minutes=1))}, "departure_at"),
        ({"departure_at": format_timestamp(datetime.now(UTC) + timedelta(days=40))}, "departure_at"),
        ({"departure_at": "2030-01-01T08:00:00"}, "departure_at"),
        ({"energy_kwh": 0}, "energy_kwh"),
        ({"energy_kwh": -5}, "energy_kwh"),
        ({"energy_kwh": 5000}, "energy_kwh"),
        ({"energy_kwh": "lots"}, "energy_kwh"),
        ({}, "give departure_at, energy_kwh or both"),
        ({"energy_kwh": 5, "soc": 80}, "soc"),
    ]:
        assert_unprocessable(await api.client.put(path, json=body), field)
    closed = await api.client.put(f"/api/v1/transactions/{ended.id}/needs", json={"departure_at": future})
    assert closed.status_code == 409 and "has ended" in closed.json()["detail"]
    missing = await api.client.put("/api/v1/transactions/424242/needs", json={"energy_kwh": 5})
    assert (missing.status_code, missing.json()["detail"]) == (404, "no transaction 424242")
    stored = (await api.client.get(f"/api/v1/transactions/{session.id}")).json()
    assert (stored["departure_at"], stored["energy_target_kwh"]) == (None, None)  # nothing bad was stored
