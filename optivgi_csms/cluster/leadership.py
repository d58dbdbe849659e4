"""Which node plans each site: a PostgreSQL advisory lock per site, held on a dedicated connection.

Why PostgreSQL and not a Redis lease: the lock lives exactly as long as the holder's database session.
When the holder dies (SIGKILL, a crash, a lost host) its connection closes and PostgreSQL releases the lock
at once, so the next node's attempt (every :data:`POLL_S`) takes over; there is no lease to tune against
pauses, and no window in which a slow-but-alive leader and a new one both hold a lease. Smart charging
already depends on that database to plan, so a node that loses it cannot plan either: losing the dedicated
connection is losing leadership (the node resigns its sites and tries again). Locks are scoped to the
database, so clusters on different databases never meet.

Every node tries every site it does not lead, so the first node to start leads every site and the others
stand by; when it dies, whichever node polls first takes each site over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy.engine import make_url

from optivgi_csms.logs import get_logger

log = get_logger(__name__)

#: How often a node tries to take the sites it does not lead, and checks that its connection still holds
#: the ones it does (s). A dead leader's sites are taken over within about this long.
POLL_S = 1.0
#: A connection attempt, and each round's query, gives up after this long (s), as the CSMS's own pool does.
CONNECT_TIMEOUT_S = 5.0
#: The server side of the dedicated connection probes a silent client (a leader whose host vanished without
#: closing its socket) after 5 s, every 2 s, 3 times: its locks are released about 11 s after the host went
#: away, instead of after the operating system's default of two hours.
KEEPALIVE = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}

SiteCallback = Callable[[str], Awaitable[None]]
SiteList = Callable[[], Awaitable[list[str]]]


def lock_key(prefix: str, site_id: str) -> int:
    """The advisory lock of a site: a signed 64-bit number from the cluster prefix and the site id."""
    digest = hashlib.blake2b(f"{prefix}\0site\0{site_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def plain_dsn(database_url: str) -> str:
    """The asyncpg DSN of a SQLAlchemy PostgreSQL URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class SiteLeadership:
    """Takes and holds the advisory locks of the sites this node leads; calls back as it gains or loses them."""

    def __init__(
        self,
        database_url: str,
        prefix: str,
        sites: SiteList,
        *,
        on_lead: SiteCallback,
        on_resign: SiteCallback,
        poll_s: float = POLL_S,
    ) -> None:
        self._dsn = plain_dsn(database_url)
        self._prefix = prefix
        self._sites = sites
        self._on_lead = on_lead
        self._on_resign = on_resign
        self.poll_s = poll_s
        #: The sites this node leads now.
        self.led: set[str] = set()
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the dedicated connection (raises when the database cannot be reached), take what is free, and
        keep trying in the background."""
        self._connection = await self._connect()
        await self.poll()
        self._task = asyncio.create_task(self._run(), name="cluster-leadership")

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self._dsn, timeout=CONNECT_TIMEOUT_S, server_settings={**KEEPALIVE, "application_name": "optivgi-leader"}
        )

    async def stop(self) -> None:
        """Stop planning every site and release the locks at once (the other nodes take over at their next poll)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._resign_all()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.execute("SELECT pg_advisory_unlock_all()")
            with contextlib.suppress(Exception):
                await self._connection.close(timeout=CONNECT_TIMEOUT_S)
            self._connection = None

    async def poll(self) -> None:
        """One round: try to lock every site not led here; the query also proves the held locks still stand."""
        if self._connection is None or self._connection.is_closed():
            await self._resign_all()  # the session that held the locks is gone, and the locks with it
            self._connection = await self._connect()
        wanted = [site_id for site_id in await self._sites() if site_id not in self.led]
        keys = {lock_key(self._prefix, site_id): site_id for site_id in wanted}
        try:
            rows = await self._connection.fetch(
                "SELECT key, pg_try_advisory_lock(key) AS taken FROM unnest($1::bigint[]) AS key",
                list(keys),
                timeout=CONNECT_TIMEOUT_S,  # a connection that died silently must not hang the round
            )
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
            with contextlib.suppress(Exception):
                self._connection.terminate()
            await self._resign_all()
            raise
        for row in rows:
            if row["taken"]:
                await self._lead(keys[row["key"]], row["key"])

    async def _lead(self, site_id: str, key: int) -> None:
        self.led.add(site_id)
        log.info("leading the site's smart charging", site_id=site_id)
        try:
            await self._on_lead(site_id)
        except Exception:
            # Holding the lock without planning would leave the site unplanned: let go, try again next round.
            log.exception("taking the site's lead failed", site_id=site_id)
            self.led.discard(site_id)
            with contextlib.suppress(Exception):
                await self._on_resign(site_id)
            assert self._connection is not None
            with contextlib.suppress(Exception):
                await self._connection.execute("SELECT pg_advisory_unlock($1::bigint)", key)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("site leadership round failed", error=repr(error), led=sorted(self.led))

    async def _resign_all(self) -> None:
        for site_id in sorted(self.led):
            self.led.discard(site_id)
            log.info("no longer leading the site's smart charging", site_id=site_id)
            try:
                await self._on_resign(site_id)
            except Exception:
                log.exception("resigning a site failed", site_id=site_id)
