"""Smart-charging fixtures: a CSMS whose sites plan in short slots and whose events coalesce quickly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from optivgi_csms.server.app import Csms
from tests.conftest import settings_for

#: Events this close together make one cycle in these tests (the server's default is 0.5 s).
TEST_DEBOUNCE_S = 0.05

SmartCsmsFactory = Callable[..., Awaitable[Csms]]


@pytest.fixture
async def smart_csms_factory(database_url: str) -> AsyncIterator[SmartCsmsFactory]:
    """Start CSMS instances (setting overrides as keywords) with a quick debounce; stopped at the end."""
    running: list[Csms] = []

    async def start(*, debounce_s: float = TEST_DEBOUNCE_S, **overrides: Any) -> Csms:
        csms = Csms(settings_for(database_url, **overrides))
        csms.smart_charging.debounce_s = debounce_s
        await csms.start()
        running.append(csms)
        return csms

    yield start
    for csms in reversed(running):
        await csms.stop()
