"""A node's id is its own: a Redis key with a lease, taken at start-up and renewed with the station claims.

Commands, replies and "moved" notices are addressed by node id, so two processes sharing one (a copied
configuration) would answer each other's calls and close each other's stations. The second one is refused at
start-up instead. A process restarted under the same configured id after a crash waits for the lease of its
predecessor to run out (at most :data:`~optivgi_csms.cluster.ownership.LEASE_S`).
"""

from __future__ import annotations

import asyncio
import secrets
import time

from redis.asyncio import Redis

from optivgi_csms.cluster.keys import Keys
from optivgi_csms.cluster.ownership import LEASE_S

# Extend the lease only while the key is still this process's; report whether it was.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class NodeIdInUseError(RuntimeError):
    """Another running process holds this node id."""


class NodeIdentity:
    """This process's hold on its node id."""

    def __init__(self, redis: Redis, keys: Keys, node_id: str, *, lease_s: float = LEASE_S) -> None:
        self._redis = redis
        self._key = keys.node(node_id)
        self.node_id = node_id
        self._token = secrets.token_hex(8)
        self._lease_ms = int(lease_s * 1000)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def take(self, wait_s: float = LEASE_S + 1.0) -> None:
        """Hold the id, waiting up to ``wait_s`` for a crashed predecessor's lease to end; raises
        :class:`NodeIdInUseError` when another process keeps it."""
        deadline = time.monotonic() + wait_s
        while not await self._redis.set(self._key, self._token, nx=True, px=self._lease_ms):
            if time.monotonic() >= deadline:
                raise NodeIdInUseError(
                    f"node id {self.node_id!r} is in use by another running process: give each its own node_id"
                )
            await asyncio.sleep(0.25)

    async def renew(self) -> bool:
        """Extend the hold; False when the key is no longer this process's (Redis lost it, or a clash)."""
        if await self._renew(keys=[self._key], args=[self._token, self._lease_ms]):
            return True
        # Lost (e.g. Redis restarted without its data): take it again if nobody else has.
        return bool(await self._redis.set(self._key, self._token, nx=True, px=self._lease_ms))

    async def release(self) -> None:
        """Let the id go (on stop): a successor may use it at once."""
        await self._release(keys=[self._key], args=[self._token])
