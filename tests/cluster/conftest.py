"""Fixtures of the cluster tests: the machine's Redis under a key prefix of the test's own.

Redis is ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); without one that answers PING, these tests
are skipped. Pub/sub channels are not scoped by Redis's database number, so each test's prefix (keys and
channels alike) is what keeps parallel pytest workers apart.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.conftest import run_sync

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


async def _ping(url: str) -> str | None:
    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
        return None
    except Exception as error:
        return repr(error)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis (skips the test when it does not answer)."""
    problem = run_sync(_ping(REDIS_URL))
    if problem is not None:
        pytest.skip(f"Redis at {REDIS_URL} (REDIS_URL) does not answer PING: cluster cases skipped ({problem})")
    return REDIS_URL


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key and channel prefix of this test's own; its keys are deleted afterwards."""
    name = f"optivgi-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{name}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the machine's Redis."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
