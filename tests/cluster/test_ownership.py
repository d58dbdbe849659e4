"""Station ownership in the machine's Redis: the newest connection wins, a release never deletes a newer claim,
and a node that stops renewing loses its stations within the lease."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from optivgi_csms.cluster.keys import Keys
from optivgi_csms.cluster.ownership import Owner, Ownership


def nodes(redis: Redis, prefix: str, *names: str, lease_s: float = 5.0) -> list[Ownership]:
    return [Ownership(redis, Keys(prefix), name, lease_s=lease_s) for name in names]


async def test_the_newest_claim_wins_and_learns_whom_it_replaced(redis: Redis, prefix: str) -> None:
    b, c = nodes(redis, prefix, "node-b", "node-c")
    on_b, on_c = b.new_claim("1.6"), c.new_claim("2.0.1")
    assert await b.claim("CS-1", on_b) is None
    assert await c.claim("CS-1", on_c) == on_b
    owner = await b.owner("CS-1")
    assert owner == on_c and owner.node_id == "node-c" and owner.ocpp_version == "2.0.1"


async def test_a_release_deletes_only_its_own_claim(redis: Redis, prefix: str) -> None:
    b, c = nodes(redis, prefix, "node-b", "node-c")
    old, new = b.new_claim("1.6"), c.new_claim("1.6")
    await b.claim("CS-1", old)
    await c.claim("CS-1", new)
    # B's connection ends after the station reconnected to C: C keeps the station.
    assert await b.release("CS-1", old) is False
    assert await b.owner("CS-1") == new
    # The same on one node: an older connection's release keeps the newer connection's claim.
    newer = c.new_claim("1.6")
    await c.claim("CS-1", newer)
    assert await c.release("CS-1", new) is False
    assert await c.owner("CS-1") == newer
    assert await c.release("CS-1", newer) is True
    assert await c.owner("CS-1") is None


async def test_an_unrenewed_claim_expires_within_the_lease_and_a_renewed_one_does_not(
    redis: Redis, prefix: str
) -> None:
    dead, alive = nodes(redis, prefix, "node-dead", "node-alive", lease_s=0.5)
    await dead.claim("CS-DEAD", dead.new_claim("1.6"))
    kept = alive.new_claim("1.6")
    await alive.claim("CS-ALIVE", kept)
    started = time.monotonic()
    while await dead.owner("CS-DEAD") is not None:
        await alive.renew({"CS-ALIVE": kept})
        assert time.monotonic() - started < 2.0, "the dead node's claim outlived its lease"
        await asyncio.sleep(0.05)
    assert time.monotonic() - started >= 0.3  # not before the lease ran (most of) its course
    # Renewed all along: still owned after more than twice the lease.
    assert await alive.owner("CS-ALIVE") == kept
    assert await redis.pttl(Keys(prefix).owner("CS-ALIVE")) > 0


async def test_renewal_leaves_a_claim_of_another_node_and_reports_it(redis: Redis, prefix: str) -> None:
    b, c = nodes(redis, prefix, "node-b", "node-c")
    mine, moved = b.new_claim("1.6"), b.new_claim("1.6")
    await b.claim("CS-MINE", mine)
    await b.claim("CS-MOVED", moved)
    taken = c.new_claim("1.6")
    await c.claim("CS-MOVED", taken)
    await redis.delete(Keys(prefix).owner("CS-MINE"))  # expired during a Redis outage
    assert await b.renew({"CS-MINE": mine, "CS-MOVED": moved}) == ["CS-MOVED"]
    assert await b.owner("CS-MINE") == mine  # set again: its websocket is still on B
    assert await b.owner("CS-MOVED") == taken


async def test_owners_and_listing_see_every_node(redis: Redis, prefix: str) -> None:
    b, c = nodes(redis, prefix, "node-b", "node-c")
    await b.claim("CS-1", b.new_claim("1.6"))
    await c.claim("CS-2", c.new_claim("2.0.1"))
    owners = await b.owners(["CS-1", "CS-2", "CS-3", "CS-1"])
    assert {station: owner.node_id for station, owner in owners.items()} == {"CS-1": "node-b", "CS-2": "node-c"}
    assert sorted(await c.all_owned()) == ["CS-1", "CS-2"]


def test_a_claim_reads_back_and_foreign_values_are_no_claim() -> None:
    claim = Owner("node-b", "abc123", "2.0.1")
    assert Owner.parse(claim.value.encode()) == claim
    assert Owner.parse(b"garbage") is None and Owner.parse(None) is None
