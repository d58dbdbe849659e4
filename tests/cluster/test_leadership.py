"""Site leadership on a real PostgreSQL database: one leader per site, taken over when its session dies."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from optivgi_csms.cluster.leadership import SiteLeadership, lock_key
from tests.conftest import PostgresDatabases

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database_url(postgres: PostgresDatabases) -> AsyncIterator[str]:
    name = await postgres.clone()
    try:
        yield postgres.url_of(name)
    finally:
        await postgres.drop(name)


class Recorder:
    """What a node's smart charging was told."""

    def __init__(self) -> None:
        self.led: list[str] = []
        self.resigned: list[str] = []

    async def lead(self, site_id: str) -> None:
        self.led.append(site_id)

    async def resign(self, site_id: str) -> None:
        self.resigned.append(site_id)


def node(database_url: str, sites: list[str], recorder: Recorder) -> SiteLeadership:
    async def site_ids() -> list[str]:
        return list(sites)

    return SiteLeadership(database_url, "test", site_ids, on_lead=recorder.lead, on_resign=recorder.resign, poll_s=0.1)


async def test_one_leader_per_site_and_a_new_one_when_its_session_dies(database_url: str) -> None:
    sites = ["default", "depot"]
    first, second = Recorder(), Recorder()
    a, b = node(database_url, sites, first), node(database_url, sites, second)
    await a.start()
    await b.start()
    try:
        assert first.led == ["default", "depot"] and second.led == []
        sites.append("garage")  # a site created later is led by exactly one node too
        started = time.monotonic()
        while not (a.led | b.led) >= {"garage"}:
            assert time.monotonic() - started < 3, "nobody took the new site"
            await a.poll()
            await b.poll()
        assert a.led.isdisjoint(b.led)

        # The leader's database session dies (as when its process is killed): its locks go with it at once.
        assert a._connection is not None
        a._connection.terminate()
        killed = time.monotonic()
        while b.led != {"default", "depot", "garage"}:
            assert time.monotonic() - killed < 3, "the standby did not take the sites over"
            await b.poll()
        # The old leader learns it lost its session at its next round, and stops planning.
        await a.poll()
        assert a.led == set() and set(first.resigned) == set(first.led)
    finally:
        await a.stop()
        await b.stop()
    assert set(second.resigned) == {"default", "depot", "garage"}  # stop gives every site up


def test_lock_keys_differ_per_site_and_prefix() -> None:
    keys = {lock_key(prefix, site) for prefix in ("a", "b") for site in ("default", "depot")}
    assert len(keys) == 4 and all(-(2**63) <= key < 2**63 for key in keys)
