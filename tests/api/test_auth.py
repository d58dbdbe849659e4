"""Every endpoint but health needs a live bearer token; tokens come from `optivgi-csms token`."""

from __future__ import annotations

from sqlalchemy import select

from optivgi_csms.store.models import ApiToken
from tests.api.conftest import Api


async def test_health_needs_no_token_and_reports_the_database(api: Api) -> None:
    response = await api.anonymous.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["stations_connected"]) == ("ok", "ok", 0)


async def test_a_request_without_a_token_is_refused_with_a_challenge(api: Api) -> None:
    response = await api.anonymous.get("/api/v1/token")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in response.json()["detail"]


async def test_a_wrong_or_malformed_token_is_refused(api: Api) -> None:
    for header in ("Bearer ovc_not-a-real-token", "Bearer " + "x" * 5000, "Basic dXNlcjpwdw==", "Bearer"):
        response = await api.anonymous.get("/api/v1/token", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["detail"]


async def test_a_token_works_until_it_is_revoked(api: Api) -> None:
    response = await api.client.get("/api/v1/token")
    assert response.status_code == 200
    assert response.json()["name"] == "tests"
    assert await api.csms.services.api_tokens.revoke("tests")
    response = await api.client.get("/api/v1/token")
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid or revoked token"


async def test_tokens_are_stored_hashed_and_use_is_recorded(api: Api) -> None:
    await api.client.get("/api/v1/token")
    (info,) = await api.csms.services.api_tokens.list()
    assert info.last_used_at is not None
    async with api.csms.database.read() as session:
        stored = list(await session.scalars(select(ApiToken.token_hash)))
    assert stored and api.token not in stored and len(stored[0]) == 64


async def test_the_openapi_schema_and_docs_are_served(api: Api) -> None:
    schema = await api.anonymous.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/health" in paths and "/api/v1/token" in paths
    docs = await api.anonymous.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_an_unknown_path_is_a_clear_404(api: Api) -> None:
    response = await api.client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["detail"] == "Not Found"


async def test_credentials_are_judged_before_the_input(api: Api) -> None:
    """FastAPI reads a body before it runs dependencies: a client without a valid token must still learn
    that it has to authenticate (401), or that its token may not write (403), not what the body should be."""
    broken = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
    anonymous = await api.anonymous.post("/api/v1/sites", **broken)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    wrong = await api.anonymous.post(
        "/api/v1/sites", content=b"{not json", headers={**broken["headers"], "Authorization": "Bearer ovc_nope"}
    )
    assert wrong.status_code == 401
    async with api.client_with_scope("read") as reader:
        forbidden = await reader.post("/api/v1/sites", **broken)
        assert forbidden.status_code == 403 and forbidden.json()["scope_needed"] == "operator"
        # A bad query on a read route is the reader's to fix: 422 naming the field.
        assert (await reader.get("/api/v1/security-events", params={"limit": "many"})).status_code == 422
    operator = await api.client.post("/api/v1/sites", **broken)
    assert operator.status_code == 422 and operator.json()["detail"]
