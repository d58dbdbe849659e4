"""End-to-end fixtures: the OCPP version a scenario runs in."""

from __future__ import annotations

import pytest

from tests.support.driver import VERSIONS


@pytest.fixture(params=VERSIONS)
def ocpp_version(request: pytest.FixtureRequest) -> str:
    """Each OCPP version the CSMS speaks: a scenario that asks for it runs once per version."""
    return request.param
