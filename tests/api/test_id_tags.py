"""Id tags through the API, as a station sees them: created, listed, blocked, unblocked and expired tags get
the matching Authorize answer over a real websocket; bad tags and dates are refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optivgi_csms.cli import main as cli_main
from tests.api.conftest import Api
from tests.api.smart_api import assert_unprocessable
from tests.support.driver import VERSIONS, connect


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def statuses(api: Api, status: str) -> list[str]:
    response = await api.client.get("/api/v1/id-tags", params={"status": status})
    assert response.status_code == 200
    return [tag["id_tag"] for tag in response.json()]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_tag_created_blocked_unblocked_and_expired_through_the_api_is_what_stations_hear(
    api: Api, version: str
) -> None:
    created = await api.client.post("/api/v1/id-tags", json={"id_tag": "CARD-1", "note": "Ada", "parent_id_tag": "G"})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/v1/id-tags/CARD-1"
    tag = created.json()
    assert (tag["status"], tag["blocked"], tag["expiry_date"], tag["note"]) == ("Accepted", False, None, "Ada")
    async with connect(api.csms, "CS-1", version) as station:
        verdict = await station.authorize("CARD-1")
        assert (verdict.status, verdict.parent_id_tag) == ("Accepted", "G")

        blocked = await api.client.post("/api/v1/id-tags/CARD-1/block")
        assert (blocked.status_code, blocked.json()["status"], blocked.json()["blocked"]) == (200, "Blocked", True)
        assert (await station.authorize("CARD-1")).status == "Blocked"

        unblocked = await api.client.post("/api/v1/id-tags/CARD-1/unblock")
        assert unblocked.json()["status"] == "Accepted"
        assert (await station.authorize("CARD-1")).status == "Accepted"

        expired = await api.client.post("/api/v1/id-tags/CARD-1/expire")
        assert expired.status_code == 200 and expired.json()["status"] == "Expired"
        assert (await station.authorize("CARD-1")).status == "Expired"


async def test_listing_filters_on_the_verdict_now_and_pages(api: Api) -> None:
    later = iso(datetime.now(UTC) + timedelta(days=30))
    for tag in ("A-1", "B-2", "C-3", "D-4"):
        assert (await api.client.post("/api/v1/id-tags", json={"id_tag": tag, "expiry_date": later})).status_code == 201
    await api.client.post("/api/v1/id-tags/B-2/block")
    await api.client.post("/api/v1/id-tags/C-3/expire")
    # an expiry set ahead keeps it accepted until then
    ahead = await api.client.post("/api/v1/id-tags/D-4/expire", json={"at": later})
    assert ahead.json()["status"] == "Accepted" and ahead.json()["expiry_date"].startswith(later[:19])

    assert await statuses(api, "Accepted") == ["A-1", "D-4"]
    assert await statuses(api, "Blocked") == ["B-2"]
    assert await statuses(api, "Expired") == ["C-3"]
    page = await api.client.get("/api/v1/id-tags", params={"limit": 2, "offset": 1})
    assert [tag["id_tag"] for tag in page.json()] == ["B-2", "C-3"] and page.headers["x-total-count"] == "4"
    one = await api.client.get("/api/v1/id-tags/B-2")
    assert one.status_code == 200 and one.json()["status"] == "Blocked"

    patched = await api.client.patch("/api/v1/id-tags/C-3", json={"expiry_date": None, "note": "renewed"})
    assert patched.json()["status"] == "Accepted" and patched.json()["note"] == "renewed"


async def test_bad_tags_and_unknown_tags_are_clear(api: Api) -> None:
    too_long = "X" * 21
    assert_unprocessable(await api.client.post("/api/v1/id-tags", json={"id_tag": too_long}), "id_tag")
    assert_unprocessable(await api.client.post("/api/v1/id-tags", json={"id_tag": "CAFÉ"}), "id_tag")
    assert_unprocessable(await api.client.post("/api/v1/id-tags", json={"id_tag": ""}), "id_tag")
    assert_unprocessable(
        await api.client.post("/api/v1/id-tags", json={"id_tag": "T", "expiry_date": "2030-01-01T00:00:00"}),
        "expiry_date",
    )
    assert_unprocessable(
        await api.client.post("/api/v1/id-tags", json={"id_tag": "T", "parent_id_tag": too_long}), "parent_id_tag"
    )
    assert_unprocessable(await api.client.post("/api/v1/id-tags", json={"id_tag": "T", "colour": "red"}), "colour")
    assert_unprocessable(await api.client.post("/api/v1/id-tags", json={"id_tag": "T", "note": "a\u0000b"}), "note")
    assert_unprocessable(await api.client.post("/api/v1/id-tags", json={"id_tag": "T\u0000"}), "id_tag")
    assert_unprocessable(await api.client.get("/api/v1/id-tags", params={"status": "Maybe"}), "status")
    assert_unprocessable(await api.client.post("/api/v1/id-tags/T/expire", json={"at": "soon"}), "at")
    assert_unprocessable(await api.client.get(f"/api/v1/id-tags/{too_long}"), "id_tag")

    assert (await api.client.post("/api/v1/id-tags", json={"id_tag": "T"})).status_code == 201
    again = await api.client.post("/api/v1/id-tags", json={"id_tag": "T"})
    assert again.status_code == 409 and again.json()["detail"] == "id tag 'T' exists already"
    for method, path in [
        ("GET", "/api/v1/id-tags/NOPE"),
        ("PATCH", "/api/v1/id-tags/NOPE"),
        ("POST", "/api/v1/id-tags/NOPE/block"),
        ("POST", "/api/v1/id-tags/NOPE/unblock"),
        ("POST", "/api/v1/id-tags/NOPE/expire"),
    ]:
        response = await api.client.request(method, path, json={} if method == "PATCH" else None)
        assert (response.status_code, response.json()["detail"]) == (404, "no id tag 'NOPE'"), (method, path)


def test_the_cli_applies_the_same_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}"
    assert cli_main(["db", "upgrade", "--database-url", url]) == 0
    assert cli_main(["tag", "add", "X" * 21, "--database-url", url]) == 2
    assert "1 to 20 printable ASCII characters" in capsys.readouterr().err
    assert cli_main(["tag", "add", "CARD-9", "--database-url", url]) == 0
    assert cli_main(["tag", "expire", "CARD-9", "--database-url", url]) == 0
    capsys.readouterr()
    assert cli_main(["tag", "list", "--database-url", url]) == 0
    assert "Expired" in capsys.readouterr().out
    assert cli_main(["tag", "block", "NOPE", "--database-url", url]) == 2
    assert "no id tag 'NOPE'" in capsys.readouterr().err
