"""A simulated charging station: the public face the site runner drives.

``run()`` lives until ``stop()``: the connection loop (connect, boot, heartbeats, queue, reconnect)
and the physics loop (EVs charging under the limits in force, statuses, meter values) run side by
side, so a station off line keeps charging and queueing exactly as on line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from simulators.clock import SimClock
from simulators.ev import EVModel
from simulators.recorder import Recorder
from simulators.station.config import StationConfig
from simulators.station.connection import Connection
from simulators.station.core import LOCAL_TOKEN_TYPE, StationCore
from simulators.station.outbox import Envelope, Outbox
from simulators.station.snapshot import EvseSnapshot, StationSnapshot

log = logging.getLogger(__name__)


class SimulatedStation:
    """One OCPP 1.6J or 2.0.1 charging station with its EVSEs."""

    def __init__(self, config: StationConfig, clock: SimClock, recorder: Recorder) -> None:
        self.config = config
        self.clock = clock
        self.recorder = recorder
        self.core = StationCore(config, clock, recorder)
        self.outbox = Outbox(config.queue_limit, on_drop=self._dropped)
        self.connection = Connection(config, self.core, self.outbox)
        self.core.uplink = self.connection
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()

    # --- life -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and charge until :meth:`stop`; reconnects whenever the connection is lost."""
        self._tasks = [
            asyncio.create_task(self.connection.run(), name=f"{self.config.station_id}-connection"),
            asyncio.create_task(self._physics(), name=f"{self.config.station_id}-physics"),
        ]
        try:
            await self._stopped.wait()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.core.cancel_tasks()
            if self.connection.link is not None:
                await self.connection.link.close()

    async def stop(self, *, drain_timeout_s: float = 5.0) -> None:
        """Stop the station; while on line, its queued messages get up to ``drain_timeout_s`` to go."""
        with contextlib.suppress(Exception):
            await self.connection.stop(drain_timeout_s)
        self._stopped.set()

    async def _physics(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.config.tick_s)
            now = time.monotonic()
            try:
                self.core.tick(now - last)
            except Exception:
                # A bug in one step must not stop the station's EVs (nor the rest of the site).
                log.exception("%s: physics step failed", self.config.station_id)
            last = now

    # --- the EV side ----------------------------------------------------------------------------

    async def plug_in(self, evse_id: int, ev: EVModel, id_tag: str, id_token_type: str = LOCAL_TOKEN_TYPE) -> None:
        """An EV arrives: Preparing, Authorize (or the local rules off line), the session starts, Charging."""
        await self.core.plug_in(evse_id, ev, id_tag, id_token_type)

    async def unplug(self, evse_id: int) -> None:
        """The EV leaves: its session stops (EVDisconnected), Finishing, Available."""
        await self.core.unplug(evse_id)

    def set_fault(self, evse_id: int, error_code: str | None = "OtherError") -> None:
        """Fault an EVSE (it stops delivering; Faulted) or, with None, clear the fault."""
        self.core.set_fault(evse_id, error_code)

    # --- observation ----------------------------------------------------------------------------

    def snapshot(self) -> StationSnapshot:
        """The station now: connection, queue and every EVSE."""
        evses = tuple(
            EvseSnapshot(
                evse_id=evse.evse_id,
                status=evse.status().value,
                ev_id=evse.ev.spec.ev_id if evse.ev is not None else None,
                power_kw=evse.power_kw,
                offered_kw=evse.offered_kw if evse.transaction is not None else 0.0,
                energy_kwh=evse.session_energy_kwh(),
                soc=evse.ev.soc if evse.ev is not None else None,
                limit_a=evse.applied_limit_a,
                transaction_id=evse.transaction.ocpp_id if evse.transaction is not None else None,
            )
            for evse in self.core.evses
        )
        return StationSnapshot(
            station_id=self.config.station_id,
            ocpp_version=self.config.ocpp_version,
            connected=self.connection.connected,
            accepted=self.connection.online,
            queued=len(self.outbox),
            evses=evses,
        )

    def _dropped(self, envelope: Envelope) -> None:
        if envelope.persistent:
            log.warning("%s: %s dropped undelivered", self.config.station_id, envelope.action)
            self.recorder.message(self.config.station_id, "dropped", envelope.action)
