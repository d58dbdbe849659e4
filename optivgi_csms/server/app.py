"""The CSMS as one object: open the database, check its schema, start services and the OCPP server."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

from optivgi_csms.api.server import ApiServer
from optivgi_csms.config import ConfigError, Settings
from optivgi_csms.domain.site import DEFAULT_SITE_ID
from optivgi_csms.logs import get_logger
from optivgi_csms.metrics import CsmsMetrics
from optivgi_csms.server.registry import StationRegistry
from optivgi_csms.server.websocket import OcppServer
from optivgi_csms.services import Services
from optivgi_csms.services.reservation_manager import ReservationManager
from optivgi_csms.smart_charging import SmartCharging
from optivgi_csms.store import migrate
from optivgi_csms.store.database import Database
from optivgi_csms.store.writer import WriterClosedError

if TYPE_CHECKING:
    from optivgi_csms.cluster.node import ClusterNode

log = get_logger(__name__)

#: However late in the grace, pending writes get this long (s) to commit before the stations are closed.
MIN_FLUSH_S = 0.1


class StartupError(RuntimeError):
    """The CSMS cannot start; the message says why and what to do, in one line."""


class Csms:
    """A running CSMS. ``await start()``, then ``registry`` reaches stations; ``await stop()`` to finish."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database(settings.effective_database_url, retry_s=settings.database_retry)
        self.services = Services.create(self.database, settings)
        self.metrics = CsmsMetrics()
        # With redis_url this process is one node of several (docs/cluster.md); without it nothing of the
        # cluster is imported, and the CSMS is the single process it always was.
        self.cluster: ClusterNode | None = None
        if settings.redis_url:
            from optivgi_csms.cluster.node import ClusterNode

            self.cluster = ClusterNode(settings, self.metrics)
            self.registry: StationRegistry = self.cluster.registry
        else:
            self.registry = StationRegistry(self.metrics)
        self.ocpp = OcppServer(settings, self.services, self.registry, self.metrics)
        self.smart_charging = SmartCharging(
            settings,
            self.services,
            self.registry,
            self.database,
            metrics=self.metrics,
            lead_every_site=self.cluster is None,  # a cluster node plans the sites it leads
        )
        self.reservations = ReservationManager(self.services, self.registry)
        self.api: ApiServer | None = (
            ApiServer(self, settings.api_host or settings.host, settings.api_port, reuse_port=settings.reuse_port)
            if settings.api
            else None
        )

    async def start(self) -> None:
        """Check (or upgrade) the schema, then start the writer, the journal and the OCPP server."""
        try:
            # Certificates first: a security profile the server cannot enforce must stop it before anything runs.
            self.ocpp.prepare_tls()
        except ConfigError as error:
            raise StartupError(str(error)) from None
        try:
            await self._prepare_schema()
            self.database.start()
            if self.settings.site_limit_kw is not None:
                await self.services.sites.update(DEFAULT_SITE_ID, limit_kw=self.settings.site_limit_kw)
            await self.smart_charging.start()
            if self.cluster is not None:
                await self._join_cluster(self.cluster)  # after the database, before any station connects
            await self.ocpp.start()
        except OSError as error:
            await self._abandon_start()
            raise StartupError(
                f"cannot listen on {self.settings.host}:{self.settings.port}: {error.strerror or error}"
            ) from None
        except BaseException:
            await self._abandon_start()
            raise
        self.services.journal.start()
        await self.reservations.start()
        if self.api is not None:
            try:
                await self.api.start()
            except OSError as error:
                await self.stop()
                raise StartupError(
                    f"cannot listen on {self.api.host}:{self.api.port} (the API): {error.strerror or error}"
                ) from None
        log.info(
            "OCPP server listening",
            host=self.settings.host,
            port=self.ocpp.port,
            scheme=self.ocpp.scheme,
            path_prefix=self.settings.path_prefix or None,
            security_profile=self.settings.security_profile,
            api=f"http://{self.api.host}:{self.api.port}" if self.api is not None else None,
            database=self.database.url.render_as_string(hide_password=True),
        )

    async def _join_cluster(self, cluster: ClusterNode) -> None:
        from optivgi_csms.cluster.node import ClusterStartError

        try:
            await cluster.start(self.services, self.smart_charging)
        except ClusterStartError as error:
            raise StartupError(str(error)) from None

    async def _abandon_start(self) -> None:
        if self.cluster is not None:
            await self.cluster.close()
        await self.smart_charging.stop()
        await self.database.close()

    async def _prepare_schema(self) -> None:
        try:
            status = await migrate.schema_status(self.database)
        except Exception as error:
            shown = self.database.url.render_as_string(hide_password=True)
            raise StartupError(f"cannot open the database {shown}: {error}") from None
        if status.up_to_date:
            return
        if not self.settings.upgrade_db:
            raise StartupError(
                f"the database schema is at revision {status.current or 'none (empty database)'} but this "
                f"version needs {status.head}: run `optivgi-csms db upgrade` first (or serve with --upgrade-db)"
            )
        log.info("upgrading the database schema", current=status.current, head=status.head)
        await migrate.upgrade(self.database)

    async def stop(self) -> None:
        """Shut down gracefully: stop accepting stations, let each finish the message in hand (within
        ``shutdown_grace``), stop planning, commit pending writes, close every station with 1001 (going
        away), then close the database."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_grace
        try:
            if self.cluster is not None:
                # First: the other nodes take this node's sites and see its stations unowned at once.
                await self.cluster.resign()
            self.ocpp.stop_accepting()
            if self.api is not None:
                await self.api.stop()
            # Smart charging and reservations stop while the stations finish: answers to their last
            # commands still arrive on the draining connections.
            await asyncio.gather(
                self.ocpp.drain(self.settings.shutdown_grace), self.smart_charging.stop(), self.reservations.stop()
            )
            # A database stuck past the grace must not keep the stations waiting: they are closed, and the
            # writes still queued are finished when the database closes.
            await self._flush_writes(max(deadline - loop.time(), MIN_FLUSH_S))
            await self.ocpp.close()
            try:
                await self.services.journal.close()
            except Exception as error:  # the journal is a debugging aid: never block shutdown on it
                log.warning("journal not flushed at shutdown", error=repr(error))
        finally:
            if self.cluster is not None:
                await self.cluster.close()
            await self.database.close()
        log.info("stopped")

    async def _flush_writes(self, timeout_s: float) -> None:
        """Return once every write queued so far is committed (the writer commits in order, so an empty
        write committed is a barrier), or after ``timeout_s``."""

        async def barrier(_session: object) -> None:
            return None

        try:
            async with asyncio.timeout(timeout_s):
                await self.database.write(barrier)
        except WriterClosedError:
            pass  # never started (a failed start-up): nothing is pending
        except TimeoutError:
            log.warning("pending writes not committed within the shutdown grace: closing the stations anyway")
        except Exception as error:
            log.warning("pending writes not confirmed at shutdown", error=repr(error))


async def serve_until_signalled(settings: Settings) -> None:
    """Run the CSMS until SIGINT or SIGTERM, then shut down cleanly."""
    csms = Csms(settings)
    await csms.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down", grace_s=settings.shutdown_grace)
        await csms.stop()
