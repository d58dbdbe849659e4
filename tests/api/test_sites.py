"""Sites through the API: settings read and changed, a change reaching stations as new profiles, the plan per
EV and slot, the recorded cycles, and every bad setting refused with the field named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import Api
from tests.api.smart_api import assert_unprocessable, patch_site_and_wait, smart_api
from tests.smart_charging.helpers import profiles, stamp, station, until

__all__ = ["smart_api"]  # the fixture, imported for pytest


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_the_default_site_is_listed_and_read(api: Api) -> None:
    response = await api.client.get("/api/v1/sites")
    assert response.status_code == 200
    (site,) = response.json()
    assert (site["id"], site["limit_kw"], site["algorithm"], site["controlled"]) == ("default", None, "lp", False)
    one = await api.client.get("/api/v1/sites/default")
    assert one.status_code == 200 and one.json() == site
    plan = (await api.client.get("/api/v1/sites/default/plan")).json()
    assert plan["available"] is False and "nothing to plan" in plan["note"]


async def test_a_limit_changed_through_the_api_changes_the_profiles_stations_get(smart_api: Api) -> None:
    api = smart_api
    await patch_site_and_wait(api, limit_kw=11.0)
    async with station(api.csms, "CS-1") as charger:
        await charger.start(timestamp=stamp())
        await until(lambda: profiles(charger), what="a first profile")
        assert profiles(charger)[-1].periods[0][1] == 15.9  # 11 kW over 3 x 230 V

        response = await patch_site_and_wait(api, limit_kw=6.9)
        assert response.json()["limit_kw"] == 6.9
        await until(lambda: profiles(charger)[-1].periods[0][1] == 10.0, what="a profile at the new limit")

        plan = (await api.client.get("/api/v1/sites/default/plan")).json()
        assert plan["available"] and plan["resolution_s"] == 60 and len(plan["slots"]) == 60
        (ev,) = plan["evs"]
        assert ev["ev_id"].startswith("tx-") and ev["station_id"] == "CS-1" and ev["active"]
        assert len(ev["power_kw"]) == 60 and ev["power_kw"][0] == pytest.approx(6.9, abs=0.01)
        first = plan["slots"][0]
        assert first["limit_kw"] == pytest.approx(6.9) and first["total_kw"] == pytest.approx(ev["power_kw"][0])
        assert all(slot["total_kw"] <= slot["limit_kw"] + 1e-6 for slot in plan["slots"])
        short = (await api.client.get("/api/v1/sites/default/plan", params={"slots": 5})).json()
        assert len(short["slots"]) == 5 and len(short["evs"][0]["power_kw"]) == 5

        cycles = await api.client.get("/api/v1/sites/default/cycles", params={"limit": 2})
        assert cycles.status_code == 200 and int(cycles.headers["x-total-count"]) >= 3
        newest, older = cycles.json()
        assert newest["started_at"] >= older["started_at"]
        latest_site_change = next(
            row for row in (await api.client.get("/api/v1/sites/default/cycles")).json() if "site" in row["trigger"]
        )
        assert latest_site_change["summary"]["limit_kw"] == 6.9 and latest_site_change["status"] != "error"
        line = latest_site_change["evs"][0]
        assert line["station_id"] == "CS-1" and line["energy_source"] == "site"
        page = await api.client.get("/api/v1/sites/default/cycles", params={"limit": 1, "offset": 1})
        assert page.json()[0]["id"] == older["id"]


async def test_a_site_is_created_replaced_and_patched(api: Api) -> None:
    steps = [
        {"start": iso(datetime(2030, 1, 1, 18, tzinfo=UTC)), "limit_kw": 20},
        {"start": iso(datetime(2030, 1, 1, 6, tzinfo=UTC)), "limit_kw": 50},
    ]
    body = {
        "id": "depot-2",
        "name": "Depot",
        "limit_kw": 100,
        "limit_schedule": steps,
        "phase_limits_a": {"L1": 160, "L2": 160},
        "prices": [{"start": "2030-01-01T00:00:00+01:00", "price": -0.02}],
        "algorithm": "go",
    }
    created = await api.client.post("/api/v1/sites", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/sites/depot-2"
    site = created.json()
    assert site["controlled"] and site["stations"] == [] and site["phase_limits_a"] == {"L1": 160, "L2": 160}
    assert [step["value"] for step in site["limit_schedule"]] == [50, 20]  # sorted by start
    assert site["prices"] == [{"start": "2029-12-31T23:00:00Z", "value": -0.02}]
    again = await api.client.post("/api/v1/sites", json={"id": "depot-2"})
    assert again.status_code == 409 and "exists" in again.json()["detail"]

    replaced = await api.client.put("/api/v1/sites/depot-2", json={"name": "Depot B", "limit_kw": 40})
    assert replaced.status_code == 200
    site = replaced.json()
    assert (site["name"], site["limit_kw"], site["limit_schedule"], site["algorithm"]) == ("Depot B", 40, [], "lp")

    patched = await api.client.patch("/api/v1/sites/depot-2", json={"limit_kw": None, "default_energy_kwh": 12.5})
    assert patched.status_code == 200
    site = patched.json()
    assert (site["limit_kw"], site["default_energy_kwh"], site["name"]) == (None, 12.5, "Depot B")
    assert not site["controlled"]
    listed = [one["id"] for one in (await api.client.get("/api/v1/sites")).json()]
    assert listed == ["default", "depot-2"]
    cycles = await api.client.get("/api/v1/sites/depot-2/cycles")
    assert cycles.status_code == 200 and all(row["trigger"] for row in cycles.json())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"algorithm": "magic"}, "algorithm"),
        ({"limit_kw": -1}, "limit_kw"),
        ({"limit_kw": "lots"}, "limit_kw"),
        ({"resolution_s": 7200, "horizon_s": 3600}, "resolution_s"),
        ({"resolution_s": 1, "horizon_s": 86400}, "horizon_s"),
        ({"phase_limits_a": {"L4": 10}}, "phase_limits_a.L4"),
        ({"voltage_v": 20}, "voltage_v"),
        ({"limit_schedule": [{"start": "2030-01-01T00:00:00", "limit_kw": 5}]}, "limit_schedule.0.start"),
        (
            {"limit_schedule": [{"start": "2030-01-01T00:00:00Z", "limit_kw": 5}] * 2},
            "limit_schedule: two steps start",
        ),
        ({"prices": [{"start": "0001-01-01T00:00:00+01:00", "price": 1}]}, "prices.0.start"),
        ({"name": None}, "name"),
        ({"name": "a\u0000b"}, "name"),  # PostgreSQL cannot store NUL
        ({"horizon": 3600}, "horizon"),
    ],
)
async def test_bad_settings_are_refused_naming_the_field(api: Api, body: dict, field: str) -> None:
    assert_unprocessable(await api.client.patch("/api/v1/sites/default", json=body), field)
    site = (await api.client.get("/api/v1/sites/default")).json()
    assert site["limit_kw"] is None and site["algorithm"] == "lp"  # nothing was stored


async def test_unknown_sites_and_bad_ids_are_clear(api: Api) -> None:
    for method, path in [
        ("GET", "/api/v1/sites/nowhere"),
        ("PUT", "/api/v1/sites/nowhere"),
        ("PATCH", "/api/v1/sites/nowhere"),
        ("GET", "/api/v1/sites/nowhere/plan"),
        ("GET", "/api/v1/sites/nowhere/cycles"),
    ]:
        response = await api.client.request(method, path, json={} if method != "GET" else None)
        assert response.status_code == 404, (method, path)
        assert response.json()["detail"] == "no site 'nowhere'"
    assert_unprocessable(await api.client.post("/api/v1/sites", json={"id": "a/b"}), "id")
    assert_unprocessable(await api.client.get("/api/v1/sites/a%00b"), "site_id")
    assert_unprocessable(await api.client.post("/api/v1/sites", json={"id": "x" * 49}), "id")
    assert_unprocessable(await api.client.get("/api/v1/sites/default/cycles", params={"limit": 0}), "limit")
    assert_unprocessable(await api.client.get("/api/v1/sites/default/plan", params={"slots": 5000}), "slots")
    assert (await api.anonymous.get("/api/v1/sites")).status_code == 401


async def test_a_limit_schedule_set_through_the_api_is_planned(smart_api: Api) -> None:
    api = smart_api
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    drop = now + timedelta(minutes=10)
    await patch_site_and_wait(
        api, limit_kw=22.0, limit_schedule=[{"start": iso(drop), "limit_kw": 11.0}], phase_limits_a={"L1": 32}
    )
    async with station(api.csms, "CS-S") as charger:
        await charger.start(timestamp=stamp())
        await until(lambda: api.csms.smart_charging.plan("default") is not None and profiles(charger))
        plan = (await api.client.get("/api/v1/sites/default/plan")).json()
        limits = {slot["start"]: slot["limit_kw"] for slot in plan["slots"]}
        later = [limit for start, limit in limits.items() if start >= iso(drop)]
        assert later and max(later) <= 11.0 + 1e-6
