"""Fixtures for API tests: a running CSMS (OCPP and API on free loopback ports) and an HTTP client with a token."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from optivgi_csms.server.app import Csms
from tests.conftest import CsmsFactory


@dataclass
class Api:
    """The CSMS under test and HTTP clients to its API: ``client`` has an operator token, ``anonymous`` none."""

    csms: Csms
    client: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    token: str

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return str(self.client.base_url).rstrip("/")

    @contextlib.asynccontextmanager
    async def client_with_scope(self, scope: str, name: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
        """A client with a fresh token of ``scope`` (``read`` or ``operator``), named ``name`` or after it."""
        _, token = await self.csms.services.api_tokens.create(name or f"tests-{scope}", scope)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10) as client:
            yield client


async def api_for(csms: Csms) -> AsyncIterator[Api]:
    """Clients for a running ``csms`` (a fresh operator token is created for them)."""
    assert csms.api is not None, "the CSMS was started without its API: use make_csms(api=True)"
    _, token = await csms.services.api_tokens.create("tests")
    base = f"http://127.0.0.1:{csms.api.port}"
    async with (
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client,
        httpx.AsyncClient(base_url=base, timeout=10) as anonymous,
    ):
        yield Api(csms, client, anonymous, token)


@pytest.fixture
async def api(make_csms: CsmsFactory) -> AsyncIterator[Api]:
    """A running CSMS with default settings, on a fresh database, and clients to its API."""
    csms = await make_csms(api=True)
    async for value in api_for(csms):
        yield value
