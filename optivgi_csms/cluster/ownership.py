"""Which node holds a station's websocket: one Redis key per station, with a lease its node renews.

The key's value is ``node|connection|version``: the node, a token of the connection (so that releasing an
old connection can never delete a newer one's claim, even on the same node) and the station's OCPP version
(so another node can answer ``ocpp_version`` without asking). A node renews the leases of its connections
every :data:`RENEW_S`; a node that dies stops renewing, and its stations are owned by nobody
:data:`LEASE_S` later at most (commands to them are refused as "not connected" until they reconnect).

Every change is atomic in Redis: a claim is ``SET ... GET`` (the newest connection wins, and learns whom it
displaced), a release and a renewal are Lua scripts that compare the value first (compare-and-delete,
compare-and-extend).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from optivgi_csms.cluster.keys import Keys

#: How long a claim lives without renewal (s): how soon a dead node's stations are owned by nobody.
LEASE_S = 6.0
#: How often a node renews its claims (s); a third of the lease survives two lost renewals.
RENEW_S = 2.0
#: Keys per renewal script or MGET: a node with 30,000 stations renews in 60 round trips, none of them long.
BATCH = 500

# Delete the key only if it still holds this exact claim (a newer connection, here or elsewhere, wins).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Set each claim again with a new lease when the key holds it, an older claim of this node (two connections
# of the station here raced: the newest is the one this node holds), or nothing (it expired during a Redis
# outage longer than the lease: the websocket is still here, so the station is still ours). Leave a claim of
# another node, and report it: the station connected there.
_RENEW = """
local lost = {}
local prefix = ARGV[2]
for i, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if not value or string.sub(value, 1, #prefix) == prefix then
    redis.call('SET', key, ARGV[i + 2], 'PX', ARGV[1])
  else
    table.insert(lost, i)
  end
end
return lost
"""


@dataclass(frozen=True)
class Owner:
    """A station's claim: the node holding its websocket, that connection's token and its OCPP version."""

    node_id: str
    token: str
    ocpp_version: str

    @property
    def value(self) -> str:
        """The claim as stored."""
        return f"{self.node_id}|{self.token}|{self.ocpp_version}"

    @classmethod
    def parse(cls, value: str | bytes | None) -> Owner | None:
        """The claim stored as ``value`` (None: no claim, or not one of ours)."""
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else value
        parts = text.split("|")
        return cls(*parts) if len(parts) == 3 else None


class Ownership:
    """Claims, releases, renews and reads station ownership for one node."""

    def __init__(self, redis: Redis, keys: Keys, node_id: str, *, lease_s: float = LEASE_S) -> None:
        self._redis = redis
        self._keys = keys
        self.node_id = node_id
        self.lease_ms = int(lease_s * 1000)
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    def new_claim(self, ocpp_version: str) -> Owner:
        """A claim for a new connection on this node."""
        return Owner(self.node_id, secrets.token_hex(6), ocpp_version)

    async def claim(self, station_id: str, claim: Owner) -> Owner | None:
        """Make ``claim`` the station's owner (the newest connection wins); returns the claim it replaced."""
        previous = await self._redis.set(self._keys.owner(station_id), claim.value, px=self.lease_ms, get=True)
        return Owner.parse(previous)

    async def release(self, station_id: str, claim: Owner) -> bool:
        """Delete the station's ownership if it is still ``claim`` (compare-and-delete); whether it was."""
        return bool(await self._release(keys=[self._keys.owner(station_id)], args=[claim.value]))

    async def renew(self, claims: Mapping[str, Owner]) -> list[str]:
        """Extend the lease of every claim; returns the stations another node has claimed since."""
        items = list(claims.items())
        lost: list[str] = []
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            keys = [self._keys.owner(station_id) for station_id, _ in batch]
            args: list[str | int] = [self.lease_ms, f"{self.node_id}|", *(claim.value for _, claim in batch)]
            indices = await self._renew(keys=keys, args=args)
            lost.extend(batch[int(index) - 1][0] for index in indices)
        return lost

    async def owner(self, station_id: str) -> Owner | None:
        """The station's owner now (None: nobody holds it)."""
        return Owner.parse(await self._redis.get(self._keys.owner(station_id)))

    async def all_owned(self) -> list[str]:
        """Every station some node holds (a SCAN: for an operator's listing, not for every message)."""
        prefix = self._keys.owner("")
        found = []
        # The prefix holds no glob character (see config's redis_prefix): it matches itself.
        async for key in self._redis.scan_iter(match=prefix + "*", count=1000):
            found.append((key.decode() if isinstance(key, bytes) else key)[len(prefix) :])
        return found

    async def owners(self, station_ids: Iterable[str]) -> dict[str, Owner]:
        """The owners of those stations that have one."""
        ids = list(dict.fromkeys(station_ids))
        if not ids:
            return {}
        found: dict[str, Owner] = {}
        for start in range(0, len(ids), BATCH):  # in slices: one huge MGET would hold Redis up
            batch = ids[start : start + BATCH]
            values = await self._redis.mget([self._keys.owner(station_id) for station_id in batch])
            for station_id, value in zip(batch, values, strict=True):
                if (owner := Owner.parse(value)) is not None:
                    found[station_id] = owner
        return found
