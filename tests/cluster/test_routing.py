"""Commands to a station on another node fail as "not connected" when no live node holds it (real Redis)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from optivgi_csms.cluster.channels import Channels
from optivgi_csms.cluster.keys import Keys
from optivgi_csms.cluster.ownership import Ownership
from optivgi_csms.cluster.registry import ClusterRegistry
from optivgi_csms.cluster.rpc import NodeLink
from optivgi_csms.metrics import CsmsMetrics
from optivgi_csms.protocol.errors import StationNotConnectedError


@pytest.fixture
async def registry(redis_url: str, prefix: str) -> AsyncIterator[ClusterRegistry]:
    """Node A's registry, with a 0.3 s wait for other nodes' answers."""
    client = Redis.from_url(redis_url)
    channels = Channels(Redis.from_url(redis_url))
    link = NodeLink(channels, Keys(prefix), "node-a", local=lambda _station: None, reply_timeout_s=0.3)
    await link.start()
    yield ClusterRegistry(CsmsMetrics(), Ownership(client, Keys(prefix), "node-a"), link)
    await link.close()
    await channels.close()
    await client.aclose()


async def claim(redis: Redis, prefix: str, node_id: str, station_id: str) -> None:
    ownership = Ownership(redis, Keys(prefix), node_id)
    await ownership.claim(station_id, ownership.new_claim("1.6"))


async def test_a_station_nobody_holds_is_not_connected(registry: ClusterRegistry) -> None:
    with pytest.raises(StationNotConnectedError, match="CS-1 is not connected"):
        await registry.resolve("CS-1")
    with pytest.raises(StationNotConnectedError, match="CS-1 is not connected"):
        await registry.get("CS-1").reset()
    assert not registry.is_connected("CS-1")


async def test_a_station_whose_node_is_gone_fails_at_once(registry: ClusterRegistry, redis: Redis, prefix: str) -> None:
    # Killed a moment ago: its claim has not expired, but nothing listens on its channel any more.
    await claim(redis, prefix, "node-dead", "CS-1")
    commands = await registry.resolve("CS-1")
    assert commands.ocpp_version == "1.6" and registry.is_connected("CS-1")
    started = time.monotonic()
    with pytest.raises(StationNotConnectedError, match="node-dead is gone"):
        await commands.reset()
    assert time.monotonic() - started < 0.25  # no wait for an answer that cannot come


async def test_a_station_whose_node_does_not_answer_in_time_is_not_connected(
    registry: ClusterRegistry, redis: Redis, redis_url: str, prefix: str
) -> None:
    await claim(redis, prefix, "node-stuck", "CS-1")
    heard: list[bytes] = []
    stuck = Channels(Redis.from_url(redis_url))  # a node that receives calls and never answers
    await stuck.subscribe(Keys(prefix).node_channel("node-stuck"), heard.append)
    try:
        started = time.monotonic()
        with pytest.raises(StationNotConnectedError, match="node-stuck did not answer"):
            await registry.get("CS-1").clear_cache()
        assert 0.3 <= time.monotonic() - started < 2.0
        assert len(heard) == 1 and b'"method": "clear_cache"' in heard[0]
    finally:
        await stuck.close()
