"""Reservations through the API against real stations: made (ReserveNow at once, or when the window begins),
planned as EVs to come, listed with filters, cancelled (CancelReservation when the station holds one), and
every refusal answered clearly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from optivgi_csms.domain.time import format_timestamp
from tests.api.conftest import Api
from tests.api.smart_api import assert_unprocessable, patch_site_and_wait, smart_api
from tests.smart_charging.helpers import station, until
from tests.support.driver import VERSIONS, connect
from tests.support.stations import eventually

__all__ = ["smart_api"]  # the fixture, imported for pytest


def at(minutes: float) -> str:
    """A time ``minutes`` from now, as the API takes it."""
    return format_timestamp(datetime.now(UTC) + timedelta(minutes=minutes))


def reservation(station_id: str = "CS-1", **fields: object) -> dict[str, object]:
    body: dict[str, object] = {"station_id": station_id, "evse_id": 1, "id_tag": "TAG-R", "expires_at": at(60)}
    body.update(fields)
    return body


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_reservation_reaches_the_station_and_is_cancelled_through_the_api(api: Api, version: str) -> None:
    async with connect(api.csms, "CS-1", version) as charger:
        response = await api.client.post("/api/v1/reservations", json=reservation(energy_kwh=12.5))
        assert response.status_code == 201, response.text
        made = response.json()
        assert (made["status"], made["active"], made["energy_kwh"]) == ("Accepted", True, 12.5)
        assert response.headers["location"] == f"/api/v1/reservations/{made['id']}"
        sent = charger.last("ReserveNow")
        if version == "1.6":
            assert (sent["reservation_id"], sent["connector_id"], sent["id_tag"]) == (made["id"], 1, "TAG-R")
        else:
            assert (sent["id"], sent["evse_id"], sent["id_token"]["id_token"]) == (made["id"], 1, "TAG-R")

        cancelled = await api.client.post(f"/api/v1/reservations/{made['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["status"], cancelled.json()["active"]) == ("Cancelled", False)
        assert charger.last("CancelReservation")["reservation_id"] == made["id"]
        again = await api.client.post(f"/api/v1/reservations/{made['id']}/cancel")
        assert again.status_code == 200 and charger.received().count("CancelReservation") == 1


async def test_a_station_that_refuses_is_the_answer(api: Api) -> None:
    async with connect(api.csms, "CS-1", "1.6") as charger:
        charger.answer("ReserveNow", "Occupied")
        response = await api.client.post("/api/v1/reservations", json=reservation())
        assert response.status_code == 201
        refused = response.json()
        assert (refused["status"], refused["active"]) == ("Occupied", False)
        cancel = await api.client.post(f"/api/v1/reservations/{refused['id']}/cancel")
        assert cancel.status_code == 409 and "Occupied" in cancel.json()["detail"]


async def test_a_later_window_is_planned_as_an_ev_to_come_and_withdrawn_unsent(smart_api: Api) -> None:
    api = smart_api
    await patch_site_and_wait(api, limit_kw=11.0)
    async with station(api.csms, "CS-1") as charger:
        body = reservation(starts_at=at(10), expires_at=at(40), energy_kwh=4.0)
        response = await api.client.post("/api/v1/reservations", json=body)
        assert response.status_code == 201
        made = response.json()
        assert (made["status"], made["active"]) == ("Scheduled", True)

        async def planned() -> bool:
            plan = (await api.client.get("/api/v1/sites/default/plan")).json()
            return any(ev["reservation_id"] == made["id"] for ev in plan["evs"])

        await until(planned, what="the reservation planned as an EV to come")
        plan = (await api.client.get("/api/v1/sites/default/plan")).json()
        (ev,) = plan["evs"]
        assert (ev["ev_id"], ev["active"], ev["energy_source"]) == (f"res-{made['id']}", False, "reservation")
        assert ev["planned_kwh"] == pytest.approx(4.0, abs=1e-3)

        cancelled = await api.client.post(f"/api/v1/reservations/{made['id']}/cancel")
        assert cancelled.json()["status"] == "Cancelled"
        assert "ReserveNow" not in charger.received() and "CancelReservation" not in charger.received()

        async def unplanned() -> bool:
            return not await planned()

        await until(unplanned, what="the reservation no longer planned")


async def test_reservations_are_listed_with_filters(api: Api) -> None:
    async with connect(api.csms, "CS-1", "1.6") as one, connect(api.csms, "CS-2", "2.0.1"):
        first = (await api.client.post("/api/v1/reservations", json=reservation())).json()
        later = reservation("CS-2", starts_at=at(30), expires_at=at(90))
        second = (await api.client.post("/api/v1/reservations", json=later)).json()
        one.answer("ReserveNow", "Rejected")
        third = (await api.client.post("/api/v1/reservations", json=reservation(evse_id=2))).json()

    def get(**params: object):
        return api.client.get("/api/v1/reservations", params=params)

    def ids(response) -> list[int]:
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()]

    everything = await get()
    assert ids(everything) == [third["id"], second["id"], first["id"]]
    assert everything.headers["x-total-count"] == "3"
    assert ids(await get(station_id="CS-1")) == [third["id"], first["id"]]
    assert ids(await get(status="Scheduled")) == [second["id"]]
    assert ids(await get(status="Rejected")) == [third["id"]]
    assert ids(await get(active=True)) == [second["id"], first["id"]]
    assert ids(await get(active=False)) == [third["id"]]
    assert ids(await get(limit=1, offset=2)) == [first["id"]]
    one_row = await api.client.get(f"/api/v1/reservations/{second['id']}")
    assert one_row.status_code == 200 and one_row.json()["starts_at"] == second["starts_at"]
    assert_unprocessable(await get(status="Pending"), "status")
    assert_unprocessable(await get(active="perhaps"), "active")
    assert_unprocessable(await get(station_id="CS\u00001"), "station_id")


async def test_bad_and_conflicting_reservations_are_refused(api: Api) -> None:
    async with connect(api.csms, "CS-1", "1.6"):
        post = api.client.post
        unknown = await post("/api/v1/reservations", json=reservation("CS-NOBODY"))
        assert (unknown.status_code, unknown.json()["detail"]) == (404, "no station 'CS-NOBODY'")
        assert (await post("/api/v1/reservations", json=reservation())).status_code == 201
        overlap = await post("/api/v1/reservations", json=reservation(starts_at=at(30), expires_at=at(120)))
        assert overlap.status_code == 409 and "already reserved" in overlap.json()["detail"]
        for body, field in [
            (reservation(expires_at=at(-5)), "expires_at"),
            (reservation(starts_at=at(30), expires_at=at(20)), "expires_at must be after starts_at"),
            (reservation(expires_at="2030-01-01T00:00:00"), "expires_at"),
            (reservation(id_tag="T" * 25), "id_tag"),  # longer than a 1.6 idTag
            (reservation(id_tag="T" * 40), "id_tag"),
            (reservation(parent_id_tag="P" * 21), "parent_id_tag"),
            (reservation(evse_id=-1), "evse_id"),
            (reservation(energy_kwh=0), "energy_kwh"),
            (reservation(colour="red"), "colour"),
            (reservation("CS\u00001"), "station_id"),
            ({"station_id": "CS-1", "evse_id": 1, "id_tag": "T"}, "expires_at"),
        ]:
            assert_unprocessable(await post("/api/v1/reservations", json=body), field)

    listed = (await api.client.get("/api/v1/reservations")).json()
    assert len(listed) == 1  # nothing refused was stored
    held = listed[0]["id"]
    not_connected = await api.client.post(f"/api/v1/reservations/{held}/cancel")
    assert not_connected.status_code == 409 and "not connected" in not_connected.json()["detail"]
    for method, path in [("GET", "/api/v1/reservations/777"), ("POST", "/api/v1/reservations/777/cancel")]:
        response = await api.client.request(method, path)
        assert (response.status_code, response.json()["detail"]) == (404, "no reservation 777")
    assert_unprocessable(await api.client.get(f"/api/v1/reservations/{2**40}"), "reservation_id")


async def test_a_scheduled_window_is_sent_when_it_begins(api: Api) -> None:
    async with connect(api.csms, "CS-1", "2.0.1") as charger:
        response = await api.client.post(
            "/api/v1/reservations", json=reservation(starts_at=at(0.01), expires_at=at(30))
        )
        made = response.json()
        await eventually(lambda: "ReserveNow" in charger.received(), timeout=5)

        async def accepted() -> bool:
            row = (await api.client.get(f"/api/v1/reservations/{made['id']}")).json()
            return row["status"] == "Accepted"

        await until(accepted, what="the station's answer recorded")
