"""A running CSMS with its API (for scraping) and a quick scheduling debounce, on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from optivgi_csms.server.app import Csms
from tests.api.conftest import Api, api_for
from tests.conftest import settings_for

#: Events this close together make one cycle here (the server's default is 0.5 s).
DEBOUNCE_S = 0.05


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    """A running CSMS with its API on a free port, and clients with and without a token."""
    csms = Csms(settings_for(database_url, api=True))
    csms.smart_charging.debounce_s = DEBOUNCE_S
    await csms.start()
    try:
        async for value in api_for(csms):
            yield value
    finally:
        await csms.stop()
