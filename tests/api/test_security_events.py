"""Security events through the API: what 1.6 (security extension) and 2.0.1 stations sent over real websockets,
listed newest first with filters and pages, per station too, with a read token; bad queries are 422 naming
the field, an unknown station 404."""

from __future__ import annotations

import httpx
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from tests.api.conftest import Api
from tests.api.smart_api import assert_unprocessable
from tests.support.stations import connect16
from tests.support.stations201 import connect201


def types(response: httpx.Response) -> list[str]:
    """The listed events' types, in order."""
    assert response.status_code == 200, response.text
    return [row["type"] for row in response.json()]


async def report_events(api: Api) -> None:
    """CS-16 (1.6) and CS-201 (2.0.1) send two security events each."""
    async with connect16(api.csms, "CS-16") as old, connect201(api.csms, "CS-201") as new:
        # The library's 1.6 message wants tech_info spelled out, even as None.
        startup16 = call16.SecurityEventNotification("StartupOfTheDevice", "2026-03-02T08:00:00Z", tech_info=None)
        await old.call(startup16, suppress=False)
        startup201 = call201.SecurityEventNotification(type="StartupOfTheDevice", timestamp="2026-03-03T08:00:00Z")
        await new.call(startup201, suppress=False)
        tamper = call16.SecurityEventNotification(
            type="TamperDetectionActivated", timestamp="2026-03-04T09:30:00+02:00", tech_info="lid opened"
        )
        await old.call(tamper, suppress=False)
        certificate = call201.SecurityEventNotification(type="InvalidCsmsCertificate", timestamp="2026-03-05T08:00:00Z")
        await new.call(certificate, suppress=False)


async def test_security_events_of_both_versions_are_listed_with_filters(api: Api) -> None:
    await report_events(api)
    async with api.client_with_scope("read") as reader:

        def get(path: str = "/api/v1/security-events", **params: object):
            return reader.get(path, params=params)

        everything = await get()
        assert types(everything) == [
            "InvalidCsmsCertificate",
            "TamperDetectionActivated",
            "StartupOfTheDevice",
            "StartupOfTheDevice",
        ]
        assert everything.headers["x-total-count"] == "4"
        tamper = everything.json()[1]
        assert (tamper["station_id"], tamper["timestamp"], tamper["tech_info"]) == (
            "CS-16",
            "2026-03-04T07:30:00Z",
            "lid opened",
        )
        assert tamper["received_at"].endswith("Z") and isinstance(tamper["id"], int)

        assert types(await get(station_id="CS-16")) == ["TamperDetectionActivated", "StartupOfTheDevice"]
        assert [row["station_id"] for row in (await get(type="StartupOfTheDevice")).json()] == ["CS-201", "CS-16"]
        assert types(await get(since="2026-03-04T07:30:00Z")) == ["InvalidCsmsCertificate", "TamperDetectionActivated"]
        assert types(await get(until="2026-03-03T08:00:00+00:00")) == ["StartupOfTheDevice"]
        assert types(await get(type="StartupOfTheDevice", station_id="CS-201")) == ["StartupOfTheDevice"]
        assert types(await get(type="NoSuchType")) == []
        paged = await get(limit=2, offset=1)
        assert types(paged) == ["TamperDetectionActivated", "StartupOfTheDevice"]
        assert paged.headers["x-total-count"] == "4"

        per_station = await get("/api/v1/stations/CS-201/security-events")
        assert types(per_station) == ["InvalidCsmsCertificate", "StartupOfTheDevice"]
        assert per_station.headers["x-total-count"] == "2"
        assert types(await get("/api/v1/stations/CS-201/security-events", type="InvalidCsmsCertificate")) == [
            "InvalidCsmsCertificate"
        ]
        assert types(await get("/api/v1/stations/CS-201/security-events", limit=1, offset=1)) == ["StartupOfTheDevice"]


async def test_a_station_without_security_events_and_an_unknown_station(api: Api) -> None:
    async with connect16(api.csms, "CS-QUIET"):
        pass
    quiet = await api.client.get("/api/v1/stations/CS-QUIET/security-events")
    assert quiet.json() == [] and quiet.headers["x-total-count"] == "0"
    unknown = await api.client.get("/api/v1/stations/CS-NEVER/security-events")
    assert unknown.status_code == 404 and unknown.json()["detail"] == "no station 'CS-NEVER'"


async def test_bad_queries_are_refused_naming_the_field(api: Api) -> None:
    def get(path: str = "/api/v1/security-events", **params: object):
        return api.client.get(path, params=params)

    assert_unprocessable(await get(since="2026-03-03T00:00:00"), "since")  # no zone
    assert_unprocessable(await get(since="yesterday"), "since")
    assert_unprocessable(await get(until="2026-13-01T00:00:00Z"), "until")
    assert_unprocessable(await get(since="2026-03-04T00:00:00Z", until="2026-03-03T00:00:00Z"), "until")
    assert_unprocessable(await get(limit=0), "limit")
    assert_unprocessable(await get(limit=1001), "limit")
    assert_unprocessable(await get(offset=-1), "offset")
    assert_unprocessable(await get(type="x" * 51), "type")
    assert_unprocessable(await get(type="tab\there"), "type")
    assert_unprocessable(await get(station_id="bad id with spaces"), "station_id")
    assert_unprocessable(await get("/api/v1/stations/CS-1/security-events", limit="many"), "limit")
    assert_unprocessable(await get("/api/v1/stations/CS-1/security-events", since="2026-03-03"), "since")


async def test_security_events_need_a_token(api: Api) -> None:
    for path in ("/api/v1/security-events", "/api/v1/stations/CS-1/security-events"):
        assert (await api.anonymous.get(path)).status_code == 401
