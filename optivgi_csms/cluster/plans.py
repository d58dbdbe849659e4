"""Every node answers with the current plan of every site, though only the site's leader computes it.

The leader publishes a site's plan after each cycle that changes it, on one channel every node listens to,
and keeps the latest in a key for nodes that start later. A plan is published once per cycle and site (every
``scheduling_interval`` or after a burst of events), never per station event, so broadcasting it is cheap.
"""

from __future__ import annotations

import json

from redis.asyncio import Redis
from redis.exceptions import RedisError

from optivgi_csms.cluster import codec
from optivgi_csms.cluster.channels import Channels
from optivgi_csms.cluster.keys import Keys
from optivgi_csms.logs import get_logger
from optivgi_csms.smart_charging import SmartCharging
from optivgi_csms.smart_charging.plan import SitePlan

log = get_logger(__name__)

#: A stored plan outlives its leader this long (s): a plan nobody renews is not shown as current for ever.
STORED_S = 3600


class SharedPlans:
    """Publishes this node's plans and keeps the other nodes' in :attr:`SmartCharging.shared_plans`."""

    def __init__(self, redis: Redis, channels: Channels, keys: Keys, smart_charging: SmartCharging) -> None:
        self._redis = redis
        self._channels = channels
        self._keys = keys
        self._smart = smart_charging

    async def start(self, site_ids: list[str]) -> None:
        """Read the plans stored so far, then follow every new one."""
        await self._channels.subscribe(self._keys.plans_channel(), self._received)
        if site_ids:
            stored = await self._redis.mget([self._keys.plan(site_id) for site_id in site_ids])
            for site_id, data in zip(site_ids, stored, strict=True):
                if data is not None:
                    self._keep(site_id, data)

    async def publish(self, site_id: str, plan: SitePlan | None) -> None:
        """Share the plan of a site this node leads (None: it has nothing to plan)."""
        data = json.dumps({"site": site_id, "plan": codec.encode(plan)})
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self._keys.plan(site_id), data, ex=STORED_S)
                pipe.publish(self._keys.plans_channel(), data)
                await pipe.execute()
        except RedisError as error:
            log.warning("the site's plan is not shared with the other nodes", site_id=site_id, error=repr(error))

    def _received(self, data: bytes) -> None:
        try:
            site_id = str(json.loads(data)["site"])
        except (ValueError, KeyError, TypeError):
            return
        self._keep(site_id, data)

    def _keep(self, site_id: str, data: bytes | str) -> None:
        try:
            plan = codec.decode(json.loads(data)["plan"])
        except (ValueError, KeyError, TypeError) as error:
            log.warning("unreadable shared plan dropped", site_id=site_id, error=str(error))
            return
        if plan is None or isinstance(plan, SitePlan):
            self._smart.shared_plans[site_id] = plan
