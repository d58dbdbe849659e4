"""No secret reaches the log: API tokens (good, wrong, revoked), Authorization headers and station passwords
(right, wrong, too short) go through a real server while every log line down to DEBUG is captured, and none
of them appears in what was written."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog
import websockets
from ocpp.v16 import call as call16
from websockets.exceptions import InvalidStatus

from optivgi_csms.logs import configure_logging
from tests.api.conftest import api_for
from tests.conftest import CsmsFactory
from tests.support.stations import connect16

PASSWORD = "station-secret-Pw-0123"
WRONG_PASSWORD = "not-the-secret-Pw-4567"
SHORT_PASSWORD = "tiny-Pw-89"  # refused by the policy: its 422 must not log it either
WRONG_TOKEN = "ovc_wrong-token-that-was-never-issued-abcdef"


@pytest.fixture
def debug_logs() -> Iterator[None]:
    """Log as ``serve --log-format json --log-level debug`` would, for this test only."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("json", "debug")
    # Loggers first used in this test must not keep this set-up once it is undone.
    structlog.configure(cache_logger_on_first_use=False)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def basic(station_id: str, password: str) -> str:
    """The base64 credentials of an HTTP Basic Authorization header."""
    return base64.b64encode(f"{station_id}:{password}".encode()).decode()


async def test_no_token_password_or_authorization_header_is_logged(
    make_csms: CsmsFactory, debug_logs: None, capfd: pytest.CaptureFixture[str]
) -> None:
    csms = await make_csms(api=True, security_profile=1)
    async for api in api_for(csms):
        _, read_token = await csms.services.api_tokens.create("reader", "read")
        _, revoked_token = await csms.services.api_tokens.create("gone", "operator")
        await csms.services.api_tokens.revoke("gone")

        assert (await api.client.put("/api/v1/stations/CS-SEC", json={"password": PASSWORD})).status_code == 201
        short = await api.client.put("/api/v1/stations/CS-SEC/password", json={"password": SHORT_PASSWORD})
        assert short.status_code == 422
        async with connect16(csms, "CS-SEC", password=PASSWORD) as station:
            event = call16.SecurityEventNotification("StartupOfTheDevice", "2026-03-02T08:00:00Z", tech_info=None)
            await station.call(event, suppress=False)
        with pytest.raises(InvalidStatus):
            async with connect16(csms, "CS-SEC", password=WRONG_PASSWORD):
                pass

        for token, expected in ((read_token, 403), (WRONG_TOKEN, 401), (revoked_token, 401)):
            headers = {"Authorization": f"Bearer {token}"}
            response = await api.anonymous.post("/api/v1/id-tags", json={"id_tag": "T"}, headers=headers)
            assert response.status_code == expected
        async with api.client.stream("GET", "/api/v1/events") as stream:
            assert stream.status_code == 200
        url = api.base_url.replace("http://", "ws://") + "/api/v1/events/ws"
        for token in (read_token, WRONG_TOKEN):
            async with websockets.connect(url) as websocket:
                await websocket.send(json.dumps({"token": token}))
                with contextlib.suppress(websockets.ConnectionClosed):  # the wrong one is closed with 4401
                    await websocket.recv()
        async with httpx.AsyncClient(base_url=api.base_url) as other:
            await other.get("/api/v1/stations", headers={"Authorization": f"Basic {basic('op', PASSWORD)}"})

    written = "".join(capfd.readouterr())
    # Not vacuous: the requests and connections above were logged, down to DEBUG.
    assert "CS-SEC" in written and "security event" in written, written[-2000:]
    secrets = {
        "operator token": api.token,
        "read token": read_token,
        "revoked token": revoked_token,
        "wrong token": WRONG_TOKEN,
        "station password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "short password": SHORT_PASSWORD,
        "Basic credentials": basic("CS-SEC", PASSWORD),
        "wrong Basic credentials": basic("CS-SEC", WRONG_PASSWORD),
    }
    leaked = [name for name, secret in secrets.items() if secret in written]
    assert not leaked, f"secrets in the log: {leaked}"
    assert "Bearer " not in written and "Basic " not in written  # no Authorization header, whole or in part
