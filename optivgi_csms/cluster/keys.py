"""The names of one cluster's Redis keys and channels.

Everything lives under ``redis_prefix`` so that two clusters (or two test runs) can share a Redis. Pub/sub
channels are not scoped by Redis's database number, so the prefix is what keeps them apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Key and channel names under one prefix."""

    prefix: str

    def node(self, node_id: str) -> str:
        """The key a running node holds (with a lease) so that no other process uses its id."""
        return f"{self.prefix}:node-id:{node_id}"

    def owner(self, station_id: str) -> str:
        """The key naming the node that holds ``station_id``'s websocket (with a lease)."""
        return f"{self.prefix}:owner:{station_id}"

    def node_channel(self, node_id: str) -> str:
        """The channel a node listens on: commands for its stations, answers to its own commands, and notices
        that one of its stations connected elsewhere."""
        return f"{self.prefix}:node:{node_id}"

    def plan(self, site_id: str) -> str:
        """The key holding a site's latest plan, for nodes that start after it was published."""
        return f"{self.prefix}:plan:{site_id}"

    def plans_channel(self) -> str:
        """The channel of every site's new plans (once per cycle and site); every node listens."""
        return f"{self.prefix}:plans"

    def site_channel(self, site_id: str) -> str:
        """The channel of a site's events; only the site's leader listens, so other nodes never decode them."""
        return f"{self.prefix}:site:{site_id}"
