"""Several ``optivgi-csms serve`` processes as one CSMS: one PostgreSQL database, one Redis.

Imported only when ``redis_url`` is set (see :mod:`optivgi_csms.server.app`); a single process never loads
it. The parts, one job each:

- :mod:`.codec`: commands, answers, errors and events as JSON with an allow-list of types (never pickle);
- :mod:`.keys`: the names of this cluster's Redis keys and channels, under ``redis_prefix``;
- :mod:`.identity`: a node id is held by one running process at a time;
- :mod:`.ownership`: which node holds a station's websocket (a Redis key with a renewed lease);
- :mod:`.rpc`: a node's Redis channel: commands to its stations in, answers out;
- :mod:`.proxy`: a :class:`~optivgi_csms.protocol.commands.StationCommands` for a station on another node;
- :mod:`.registry`: the registry the rest of the CSMS uses, local sessions first, else a proxy;
- :mod:`.leadership`: which node plans each site (a PostgreSQL advisory lock per site);
- :mod:`.forwarding`: a station's events reach its site's leader;
- :mod:`.plans`: the leader's plans are shown by every node;
- :mod:`.channels`: the one pub/sub connection a node listens on;
- :mod:`.node`: all of it started and stopped together.

docs/cluster.md describes how they behave together and when a node dies.
"""
