"""A node id is held by one running process at a time."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from optivgi_csms.cluster.identity import NodeIdentity, NodeIdInUseError
from optivgi_csms.cluster.keys import Keys


async def test_a_second_process_with_the_same_node_id_is_refused(redis: Redis, prefix: str) -> None:
    first = NodeIdentity(redis, Keys(prefix), "node-a", lease_s=5)
    await first.take()
    second = NodeIdentity(redis, Keys(prefix), "node-a", lease_s=5)
    with pytest.raises(NodeIdInUseError, match="'node-a' is in use"):
        await second.take(wait_s=0.3)
    assert await first.renew() is True
    await NodeIdentity(redis, Keys(prefix), "node-b").take(wait_s=0)  # another id is free
    await first.release()
    await second.take(wait_s=0)  # released on stop: a successor starts at once


async def test_a_crashed_holder_s_id_is_free_once_its_lease_ends(redis: Redis, prefix: str) -> None:
    crashed = NodeIdentity(redis, Keys(prefix), "node-a", lease_s=0.4)
    await crashed.take()
    successor = NodeIdentity(redis, Keys(prefix), "node-a", lease_s=5)
    await successor.take(wait_s=2.0)  # waits out the lease instead of failing
    assert await crashed.renew() is False  # and the crashed one, were it alive, would know it lost the id
