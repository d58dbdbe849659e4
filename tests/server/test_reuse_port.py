"""SO_REUSEPORT: several CSMS processes of a cluster on one host share the OCPP and API ports."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import websockets

from optivgi_csms.server.app import Csms, StartupError
from tests.conftest import CsmsFactory

STATIONS = 24


async def wait_for(condition, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_two_servers_share_the_ports_and_the_kernel_spreads_stations(make_csms: CsmsFactory) -> None:
    first = await make_csms(reuse_port=True, api=True)
    second = await make_csms(reuse_port=True, api=True, port=first.ocpp.port, api_port=first.api.port)  # type: ignore[union-attr]
    assert second.ocpp.port == first.ocpp.port and second.api.port == first.api.port  # type: ignore[union-attr]
    async with contextlib.AsyncExitStack() as stack:
        for number in range(STATIONS):
            await stack.enter_async_context(
                websockets.connect(f"ws://127.0.0.1:{first.ocpp.port}/RP-{number}", subprotocols=["ocpp1.6"])
            )
        nodes: tuple[Csms, Csms] = (first, second)
        await wait_for(lambda: sum(len(node.registry.ids()) for node in nodes) == STATIONS)
        # Each connection lives on one of them; with 24 connections both get some (all on one: 2 × 2^-24).
        held = [set(node.registry.ids()) for node in nodes]
        assert held[0] and held[1] and not held[0] & held[1]


async def test_without_reuse_port_a_second_server_on_the_port_is_refused(make_csms: CsmsFactory) -> None:
    first = await make_csms()
    with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{first.ocpp.port}"):
        await make_csms(port=first.ocpp.port)
