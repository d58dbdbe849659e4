"""Token scopes: a read token may look (every GET, the live event stream), only an operator token may change
anything; 401 says "who are you", 403 "not with this token".

The walk over every route of the app is what keeps a route added later from being writable with a read token
(or readable with none): it fails until the new route behaves like the others.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import fastapi.routing
import httpx
import pytest
import websockets
from fastapi import FastAPI
from sqlalchemy import update
from starlette.routing import Route, WebSocketRoute

from optivgi_csms.store.models import ApiToken
from tests.api.conftest import Api
from tests.support.stations import connect16

#: Routes anyone may GET: health for load balancers, the API's own documentation, the dashboard's files.
PUBLIC = {"/api/v1/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/", "/dashboard", "/dashboard/{name}"}
#: A value for each path parameter that passes its validation, so the request gets as far as the route.
PATH_VALUES = {"station_id": "CS-SCOPE", "site_id": "default", "id_tag": "TAG-SCOPE", "name": "app.js"}
READ_METHODS = {"GET", "HEAD"}


@pytest.fixture
async def reader(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a read token."""
    async with api.client_with_scope("read") as client:
        yield client


def every_route(app: FastAPI) -> list[Any]:
    """The app's routes with their full paths, routers included (FastAPI >= 0.165 keeps an included router as
    one entry of ``app.routes``; before it, ``app.routes`` was already flat)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(contexts(app.routes)) if contexts is not None else list(app.routes)


def http_routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves over HTTP, HEAD left out (it follows GET)."""
    assert api.csms.api is not None
    found = []
    for route in every_route(api.csms.api.app):
        original = getattr(route, "original_route", route)
        if isinstance(original, Route):  # FastAPI's APIRoute is one too
            found += [(method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"]
        else:
            assert isinstance(original, WebSocketRoute), f"a route of an unknown kind: {original!r}"
    return found


def concrete(template: str) -> str:
    """The path with a valid value in each ``{parameter}`` (1 for the numeric ids)."""
    return re.sub(r"\{(\w+)\}", lambda match: PATH_VALUES.get(match[1], "1"), template)


async def status_of(client: httpx.AsyncClient, method: str, path: str) -> httpx.Response:
    """The response's head only: ``GET /api/v1/events`` streams until the client leaves."""
    async with client.stream(method, path, json={} if method not in READ_METHODS else None) as response:
        if response.headers.get("content-type", "").startswith("application/json"):
            await response.aread()
        return response


async def test_every_route_needs_the_right_scope(api: Api, reader: httpx.AsyncClient) -> None:
    routes = http_routes(api)
    writes = [(method, path) for method, path in routes if method not in READ_METHODS]
    reads = [(method, path) for method, path in routes if method in READ_METHODS]
    # Not vacuous: the app's commands, registrations, sites, needs, reservations and tags are all here.
    assert len(writes) >= 25 and len(reads) >= 15, (writes, reads)
    assert not {path for _, path in writes} & PUBLIC, "a public route that changes something"

    for method, template in writes:
        path = concrete(template)
        refused = await status_of(reader, method, path)
        assert refused.status_code == 403, f"{method} {template} with a read token: {refused.status_code}"
        body = refused.json()
        assert body["scope_needed"] == "operator" and body["scope"] == "read", (method, template, body)
        assert "'operator'" in body["detail"]
        anonymous = await status_of(api.anonymous, method, path)
        assert anonymous.status_code == 401, f"{method} {template} without a token: {anonymous.status_code}"

    for method, template in reads:
        path = concrete(template)
        looked = await status_of(reader, method, path)
        assert looked.status_code not in (401, 403), f"{method} {template} with a read token: {looked.status_code}"
        if template not in PUBLIC:
            anonymous = await status_of(api.anonymous, method, path)
            assert anonymous.status_code == 401, f"{method} {template} without a token: {anonymous.status_code}"


async def test_a_read_token_changes_nothing(api: Api, reader: httpx.AsyncClient) -> None:
    token = await reader.get("/api/v1/token")
    assert token.status_code == 200 and token.json()["scope"] == "read"

    refused = await reader.put("/api/v1/stations/CS-NEW", json={"password": "a-long-enough-password"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "PUT needs a token with scope 'operator'; this token's scope is 'read'"
    assert (await reader.get("/api/v1/stations/CS-NEW")).status_code == 404

    before = (await reader.get("/api/v1/sites/default")).json()
    assert (await reader.patch("/api/v1/sites/default", json={"limit_kw": 11})).status_code == 403
    assert (await reader.get("/api/v1/sites/default")).json() == before

    assert (await reader.post("/api/v1/id-tags", json={"id_tag": "TAG-R"})).status_code == 403
    assert (await reader.get("/api/v1/id-tags/TAG-R")).status_code == 404

    async with connect16(api.csms, "CS-R") as station:
        for command, body in (("reset", {"kind": "Soft"}), ("clear-cache", {}), ("get-configuration", {})):
            answer = await reader.post(f"/api/v1/stations/CS-R/commands/{command}", json=body)
            assert answer.status_code == 403, command
        # The operator's token reaches the station; the read token's requests never did.
        assert (await api.client.post("/api/v1/stations/CS-R/commands/clear-cache", json={})).status_code == 200
        assert [action for action, _ in station.received] == ["ClearCache"]


async def test_401_is_for_the_token_403_for_its_scope(api: Api, reader: httpx.AsyncClient) -> None:
    path = "/api/v1/id-tags"
    missing = await api.anonymous.post(path, json={"id_tag": "T"})
    wrong = await api.anonymous.post(path, json={"id_tag": "T"}, headers={"Authorization": "Bearer ovc_nope"})
    scoped = await reader.post(path, json={"id_tag": "T"})
    assert (missing.status_code, wrong.status_code, scoped.status_code) == (401, 401, 403)
    assert missing.headers["www-authenticate"] == wrong.headers["www-authenticate"] == "Bearer"
    assert "www-authenticate" not in scoped.headers  # the token is fine: no challenge to answer

    # Bad input from a read token is still refused for its scope first: it learns nothing about the body.
    assert (await reader.post(path, content=b'{"id_tag": 5}')).status_code == 403

    assert await api.csms.services.api_tokens.revoke("tests-read")
    assert (await reader.post(path, json={"id_tag": "T"})).status_code == 401
    assert (await reader.get("/api/v1/token")).status_code == 401


async def test_an_operator_token_may_do_everything(api: Api) -> None:
    async with api.client_with_scope("operator", "ops") as operator:
        assert (await operator.get("/api/v1/token")).json()["scope"] == "operator"
        created = await operator.post("/api/v1/id-tags", json={"id_tag": "TAG-OP"})
        assert created.status_code == 201, created.text


async def test_a_token_with_an_unknown_scope_may_do_nothing(api: Api) -> None:
    async with api.client_with_scope("read", "odd") as odd:
        # A scope the CSMS does not know (a row edited by hand) must not fall back to anything.
        await api.csms.database.write(
            lambda session: session.execute(update(ApiToken).where(ApiToken.name == "odd").values(scope="admin"))
        )
        refused = await odd.get("/api/v1/stations")
        assert refused.status_code == 403 and refused.json()["scope_needed"] == "read"
        assert (await odd.post("/api/v1/id-tags", json={"id_tag": "T"})).status_code == 403


async def test_a_read_token_follows_the_live_events(api: Api, reader: httpx.AsyncClient) -> None:
    async with reader.stream("GET", "/api/v1/events") as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                assert json.loads(line[5:])["type"] == "ready"
                break
    _, secret = await api.csms.services.api_tokens.create("ws-read", "read")
    url = api.base_url.replace("http://", "ws://") + "/api/v1/events/ws"
    async with websockets.connect(url) as websocket:
        await websocket.send(json.dumps({"token": secret}))
        assert json.loads(await websocket.recv())["type"] == "ready"
