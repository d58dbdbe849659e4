"""A running CSMS with its API whose sites plan quickly (events coalesce in 50 ms), for API tests that watch
smart charging react: import the ``smart_api`` fixture into a test module to use it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from optivgi_csms.server.app import Csms
from tests.api.conftest import Api, api_for
from tests.conftest import settings_for
from tests.smart_charging.conftest import TEST_DEBOUNCE_S


@pytest.fixture
async def smart_api(database_url: str) -> AsyncIterator[Api]:
    """A CSMS with its API on a fresh database; its site loops coalesce events within 50 ms."""
    csms = Csms(settings_for(database_url, api=True))
    csms.smart_charging.debounce_s = TEST_DEBOUNCE_S
    await csms.start()
    try:
        async for value in api_for(csms):
            yield value
    finally:
        await csms.stop()


async def patch_site_and_wait(api: Api, site_id: str = "default", **changes: Any) -> httpx.Response:
    """``PATCH /sites/{site_id}`` (short slots unless given) and wait for the cycle the change triggers."""
    changes.setdefault("resolution_s", 60)
    changes.setdefault("horizon_s", 3600)
    waiter = api.csms.smart_charging.loops[site_id].next_cycle()
    response = await api.client.patch(f"/api/v1/sites/{site_id}", json=changes)
    assert response.status_code == 200, response.text
    await asyncio.wait_for(waiter, 5)
    return response


def assert_unprocessable(response: httpx.Response, field: str) -> None:
    """A 422 whose message names ``field``."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and field in detail, detail
