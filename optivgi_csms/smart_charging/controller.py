"""Smart charging in a running CSMS: events in, cycles per site, profiles out.

:class:`SmartCharging` subscribes to the services' events and maps each to its site: a session starts or
stops, an EV tells its needs, a reservation changes, a station connects, boots or goes, a site's limits
change, or a meter shows an EV drawing less than offered. The site's loop coalesces a burst of them into
one cycle (:mod:`.site_loop`), and ticks every ``scheduling_interval`` (divided by ``time_scale`` in
rehearsals) when nothing happens. Nothing here runs inside an OCPP handler: a subscriber only notes the
event; reading capabilities, solving and sending happen in tasks, the solver in a thread.

After an accepted boot (or a connection without one, when the station's capabilities were never read)
the station's capabilities are read and stored, and its site plans again: that cycle installs the
station's fail-safe profile and any session's TxProfile.

One process plans every site. In a cluster of processes (:mod:`optivgi_csms.cluster`) each plans only the
sites it leads: it is built with ``lead_every_site=False``, is told :meth:`~SmartCharging.lead` and
:meth:`~SmartCharging.resign` as leadership moves, and gets its sites' events from every node through
:meth:`~SmartCharging.handle` instead of the local bus.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from optivgi_csms.config import Settings
from optivgi_csms.domain.time import utc_now
from optivgi_csms.logs import get_logger
from optivgi_csms.metrics import CsmsMetrics
from optivgi_csms.server.registry import StationRegistry
from optivgi_csms.services import Services
from optivgi_csms.services.events import (
    ChargingNeedsReceived,
    ConnectorStatusChanged,
    Event,
    MeterReading,
    ReservationChanged,
    SessionNeedsChanged,
    SiteChanged,
    StationBooted,
    StationConnected,
    StationDisconnected,
    TransactionEnded,
    TransactionStarted,
)
from optivgi_csms.smart_charging.capabilities import read_capabilities
from optivgi_csms.smart_charging.changes import EXPIRY_SLOTS
from optivgi_csms.smart_charging.cycle import CycleReport, finish, run_cycle, site_power_and_limit
from optivgi_csms.smart_charging.cycle_event import cycle_finished
from optivgi_csms.smart_charging.evs import DEFAULT_PHASES
from optivgi_csms.smart_charging.outbox import Outbox
from optivgi_csms.smart_charging.plan import SitePlan
from optivgi_csms.smart_charging.profiles import end_of
from optivgi_csms.smart_charging.records import CycleRow, recent_cycles, save_capabilities
from optivgi_csms.smart_charging.runtime import Runtime
from optivgi_csms.smart_charging.site_loop import SiteLoop
from optivgi_csms.smart_charging.timebase import TimeScale
from optivgi_csms.smart_charging.translation import OcppTranslation
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import Station

log = get_logger(__name__)

#: Events of one burst arriving within this many seconds of each other make one cycle.
DEFAULT_DEBOUNCE_S = 0.5
#: Rehearsals shorten the tick with the time scale, but never below this (seconds).
MIN_INTERVAL_S = 1.0
#: Commands wait this long after an accepted boot, so the station has its BootNotification answer first.
BOOT_SETTLE_S = 0.05
#: A station that connects without booting (it kept its session over a reconnection) is set up after this.
CONNECT_GRACE_S = 2.0
#: The statuses that say whether an EV draws (OCPP 1.6 reports them; 2.0.1 says it in TransactionEvents).
SUSPENDED_EV, CHARGING = "SuspendedEV", "Charging"


class SmartCharging:
    """The smart-charging controller of a CSMS; ``await start()`` after the database, ``await stop()`` before."""

    def __init__(
        self,
        settings: Settings,
        services: Services,
        registry: StationRegistry,
        database: Database,
        *,
        debounce_s: float = DEFAULT_DEBOUNCE_S,
        metrics: CsmsMetrics | None = None,
        lead_every_site: bool = True,
    ) -> None:
        self.services = services
        self.metrics = metrics if metrics is not None else CsmsMetrics()
        self.registry = registry
        self.scale = TimeScale(settings.time_scale)
        self.interval_s = max(settings.scheduling_interval / settings.time_scale, MIN_INTERVAL_S)
        self.debounce_s = debounce_s
        self.solver_timeout_s = settings.solver_timeout
        self.runtime = Runtime(
            database=database,
            sites=services.sites,
            is_connected=registry.is_connected,
            outbox=Outbox(registry.get, apply_delay_s=settings.profile_raise_delay),
            scale=self.scale,
        )
        self.loops: dict[str, SiteLoop] = {}
        self._site_of: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._setups: dict[str, asyncio.Task[None]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._controlled: dict[str, bool] = {}
        self._running = False
        #: The sites this process plans: None for every site (one process), else those it leads (a cluster).
        self._led: set[str] | None = None if lead_every_site else set()
        #: Awaited before each cycle with the site's id (a cluster node learns where its stations are).
        self.before_cycle: Callable[[str], Awaitable[None]] | None = None
        #: Called with a site's new plan after a cycle (a cluster node shares it with the others).
        self.plan_changed: Callable[[str, SitePlan | None], None] | None = None
        #: The plans of sites another cluster node leads, as it last shared them.
        self.shared_plans: dict[str, SitePlan | None] = {}

    # --- life ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to events and start a loop for every site (each plans once at once)."""
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scheduler")
        self._running = True
        if self._led is None:  # a cluster node gets its sites' events from every node through handle()
            self.services.bus.subscribe(self._on_event)
        for config in await self.services.sites.all():
            self._controlled[config.id] = config.controlled
            if self._plans(config.id):
                self._loop_of(config.id)
        self._update_needs_answer()

    def handle(self, event: Event) -> None:
        """Note an event of a site this process plans (a cluster node's events arrive here, wherever the
        station is connected); must return at once."""
        self._on_event(event)

    async def lead(self, site_id: str, connected: Iterable[str]) -> None:
        """Plan ``site_id`` from now on (this cluster node became its leader). Planning starts from what the
        database holds: the ``connected`` stations are set up as on a reconnection, so they are sent profiles."""
        if self._led is None or site_id in self._led or not self._running:
            return
        self._led.add(site_id)
        config = await self.services.sites.get(site_id)
        self._controlled[site_id] = config.controlled
        self._update_needs_answer()
        for station_id in connected:
            self._site_of[station_id] = site_id
            self._setup(station_id, 0.0, read=False)
        self._loop_of(site_id)

    async def resign(self, site_id: str) -> None:
        """Stop planning ``site_id`` (leadership lost or given up): its cycle under way finishes, and what this
        process remembers of its stations is forgotten (the next leader rebuilds it)."""
        if self._led is None or site_id not in self._led:
            return
        self._led.discard(site_id)
        loop = self.loops.pop(site_id, None)
        if loop is not None:
            await loop.stop()
        for station_id in [station for station, site in self._site_of.items() if site == site_id]:
            self._forget_station(station_id)
            self._site_of.pop(station_id, None)

    def _plans(self, site_id: str) -> bool:
        return self._led is None or site_id in self._led

    async def stop(self) -> None:
        """Stop planning and sending; the cycle under way finishes, queued profiles are dropped."""
        if not self._running:
            return
        self._running = False
        with contextlib.suppress(ValueError):
            self.services.bus.unsubscribe(self._on_event)
        for loop in list(self.loops.values()):
            await loop.stop()
        await self.runtime.outbox.close()
        tasks = [*self._tasks, *self._setups.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- what operators read ----------------------------------------------------------------------------

    def plan(self, site_id: str) -> SitePlan | None:
        """The site's current plan, per EV and slot (None before its first cycle or with nothing to plan)."""
        loop = self.loops.get(site_id)
        return loop.plan if loop is not None else self.shared_plans.get(site_id)

    async def cycles(self, site_id: str, limit: int = 20) -> list[CycleRow]:
        """The site's latest recorded cycles, newest first."""
        return await recent_cycles(self.runtime.database, site_id, limit)

    async def replan(self, site_id: str) -> SitePlan | None:
        """Plan the site now and wait for that cycle to finish; returns the new plan (in a cluster, only on
        the site's leader: elsewhere the plan is None)."""
        if not self._plans(site_id):
            return None
        loop = self._loop_of(site_id)
        waiter = loop.next_cycle()
        loop.notify("operator")
        await waiter
        return loop.plan

    # --- cycles --------------------------------------------------------------------------------------------

    def _loop_of(self, site_id: str) -> SiteLoop:
        loop = self.loops.get(site_id)
        if loop is None:
            loop = SiteLoop(site_id, self._cycle, interval_s=self.interval_s, debounce_s=self.debounce_s)
            self.loops[site_id] = loop
            if self._running:
                loop.start()
        return loop

    async def _cycle(self, loop: SiteLoop, trigger: dict[str, int]) -> None:
        config = await self.services.sites.get(loop.site_id)
        self._controlled[config.id] = config.controlled
        if not config.controlled:
            # Nothing to plan (no limit, no prices): nothing is sent, and profiles sent while it had
            # limits are dropped with the limits.
            if loop.plan is not None:
                self._spawn(self._release(loop.site_id))
            loop.plan = None
            self.metrics.set_site(loop.site_id, None, None)  # no cycles: its gauges would go stale
            if self.plan_changed is not None:
                self.plan_changed(loop.site_id, None)
            return
        if self.before_cycle is not None:
            await self.before_cycle(loop.site_id)
        report = await run_cycle(
            OcppTranslation(self.runtime), loop.site_id, trigger, self._executor, solver_timeout_s=self.solver_timeout_s
        )
        self.metrics.observe_cycle(loop.site_id, trigger, report.row.cycle_s)
        if report.inputs is not None:
            self.metrics.set_site(loop.site_id, *site_power_and_limit(report.inputs, self.runtime.meters))
        if report.inputs is not None:
            for station in report.inputs.snapshot.stations.values():
                self._site_of[station.id] = loop.site_id
                if station.connected and not station.capabilities_read and station.id not in self._setups:
                    self._setup(station.id, 0.0, read=True)  # set up while its site had nothing to plan
        if report.plan is not None:
            loop.plan = report.plan
            if self.plan_changed is not None:
                self.plan_changed(loop.site_id, report.plan)
        self._spawn(self._finish(loop, report))

    async def _finish(self, loop: SiteLoop, report: CycleReport) -> None:
        await finish(self.runtime, report, loop.notify)
        self.services.bus.publish(cycle_finished(report))  # for the live event stream
        self._watch_expiry(loop, report)

    def _watch_expiry(self, loop: SiteLoop, report: CycleReport) -> None:
        """Profiles cut short for stations with few periods end before the plan does: plan again before the
        first of them ends, so no session falls back to its fail-safe limit while the plan still runs."""
        inputs = report.inputs
        if inputs is None or not self._running:
            return
        horizon_end = inputs.timing.now + inputs.horizon
        ends = []
        for held in self.runtime.book:
            if held.station_id in inputs.snapshot.stations:
                end = end_of(held.profile)
                if end is not None and end < horizon_end:
                    ends.append(end)
        if ends:
            margin = EXPIRY_SLOTS * inputs.timing.resolution
            delay = (min(ends) - margin - utc_now()).total_seconds()
            loop.notify_at(max(delay, inputs.timing.resolution.total_seconds() / 2), "expiry")

    async def _release(self, site_id: str) -> None:
        """Clear the profiles smart charging installed on a site that no longer has anything to plan."""
        book = self.runtime.book
        for station_id in await self.services.sites.stations_of(site_id):
            held = [h for h in book if h.station_id == station_id]
            fallback = book.fallback(station_id)
            book.forget_station(station_id)
            if not self.registry.is_connected(station_id):
                continue
            commands = self.registry.get(station_id)
            for profile in [h.profile for h in held] + ([fallback] if fallback is not None else []):
                try:
                    await commands.clear_charging_profile(profile_id=profile.id)
                except Exception as error:
                    log.info("profile not cleared", station_id=station_id, error=str(error))

    # --- events ----------------------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """Note an event (called by the bus from the message handler: must return at once)."""
        if not self._running:
            return
        match event:
            case TransactionStarted():
                self._notify(event.station_id, "start")
            case TransactionEnded():
                self.runtime.book.forget(event.transaction_id)
                # A profile still queued for the session would only be refused (no transaction).
                self.runtime.outbox.withdraw(event.station_id, ("tx", event.transaction_id))
                self.runtime.deviations.forget(event.transaction_id)
                self.runtime.meters.forget(event.station_id, event.evse_id)
                self._notify(event.station_id, "stop")
            case MeterReading():
                self._on_reading(event)
            case ConnectorStatusChanged():
                self._on_status(event)
            case ReservationChanged():
                self._notify(event.station_id, "reservation")
            case ChargingNeedsReceived():
                self.runtime.book.force(event.station_id, event.evse_id, event.transaction_id)
                self._notify(event.station_id, "ev needs")
            case SessionNeedsChanged():
                self._notify(event.station_id, "session needs")
            case SiteChanged():
                self._site_of.clear()
                if self._plans(event.site_id):
                    self._loop_of(event.site_id).notify("site")
                self._spawn(self._refresh_controlled())
            case StationBooted(accepted=True):
                self._setup(event.station_id, BOOT_SETTLE_S, read=True)
            case StationConnected(admitted=True):
                self._setup(event.station_id, CONNECT_GRACE_S, read=False)
            case StationDisconnected():
                self._on_disconnect(event.station_id)
            case _:
                pass

    def _notify(self, station_id: str, kind: str) -> None:
        site_id = self._site_of.get(station_id)
        if site_id is not None:
            if self._plans(site_id):
                self._loop_of(site_id).notify(kind)
        else:
            self._spawn(self._notify_later(station_id, kind))

    async def _notify_later(self, station_id: str, kind: str) -> None:
        site_id = await self.services.sites.site_of(station_id)
        self._site_of[station_id] = site_id
        if self._plans(site_id):
            self._loop_of(site_id).notify(kind)

    def _on_reading(self, reading: MeterReading) -> None:
        runtime = self.runtime
        before = runtime.meters.get(reading.station_id, reading.evse_id)
        live = runtime.meters.update(reading)
        if live is None:
            return
        planned_phases = before.phases if before and before.phases else DEFAULT_PHASES
        planned_names = before.phase_names if before else None
        if (live.phases is not None and live.phases != planned_phases) or (
            live.phase_names is not None and live.phase_names != planned_names
        ):
            # Seen drawing on other phases than planned: its maximum (and its profile's phases) change.
            self._notify(reading.station_id, "phases")
        held = (
            runtime.book.get(reading.transaction_id)
            if reading.transaction_id is not None
            else runtime.book.at(reading.station_id, reading.evse_id)
        )
        if held is None:
            return  # not ours
        # Judged against the lowest limit of the last moments: a slot's higher limit that began just before
        # the reading may not have reached the EV yet, and its lower draw then says nothing about the EV.
        offered = held.offered_kw_settled(reading.timestamp)
        measured = live.measured_kw(held.voltage_v)
        if offered is None or measured is None:
            return
        if runtime.deviations.observe(held.transaction_id, measured, offered, held.min_kw, reading.timestamp):
            self._notify(reading.station_id, "meter deviation")

    def _on_status(self, event: ConnectorStatusChanged) -> None:
        held = self.runtime.book.at(event.station_id, event.evse_id)
        if held is None:
            return
        deviations = self.runtime.deviations
        if event.status == SUSPENDED_EV:
            changed = deviations.suspended(held.transaction_id, held.min_kw, utc_now())
        elif event.status == CHARGING:
            changed = deviations.resumed(held.transaction_id)
        else:
            return
        if changed:
            self._notify(event.station_id, "status")

    def _on_disconnect(self, station_id: str) -> None:
        self._forget_station(station_id)
        self._notify(station_id, "disconnect")

    def _forget_station(self, station_id: str) -> None:
        runtime = self.runtime
        runtime.ready.discard(station_id)
        for transaction_id in runtime.book.forget_station(station_id):
            runtime.deviations.forget(transaction_id)
        runtime.outbox.drop_station(station_id)
        runtime.meters.forget(station_id)
        setup = self._setups.pop(station_id, None)
        if setup is not None:
            setup.cancel()

    # --- stations ---------------------------------------------------------------------------------------------

    def _setup(self, station_id: str, delay_s: float, *, read: bool) -> None:
        previous = self._setups.get(station_id)
        if previous is not None and not previous.done():
            if not read:
                return  # a boot's set-up is under way already
            previous.cancel()
        task = asyncio.create_task(self._set_up(station_id, delay_s, read=read), name=f"smart-setup:{station_id}")
        self._setups[station_id] = task
        task.add_done_callback(lambda done: self._setup_done(station_id, done))

    def _setup_done(self, station_id: str, task: asyncio.Task[None]) -> None:
        if self._setups.get(station_id) is task:
            del self._setups[station_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("station smart-charging set-up failed", station_id=station_id, error=repr(task.exception()))

    async def _set_up(self, station_id: str, delay_s: float, *, read: bool) -> None:
        """Read and store the station's capabilities (after a boot, or when never read), then plan its site.

        A station of a site with nothing to plan is left alone: its capabilities are read when its site
        first plans (see :meth:`_read_missing`)."""
        await asyncio.sleep(delay_s)
        if not self.registry.is_connected(station_id):
            return
        site_id = await self.services.sites.site_of(station_id)
        self._site_of[station_id] = site_id
        if not self._controlled.get(site_id, False):
            read = False
        elif not read:
            async with self.runtime.database.read() as session:
                stored = await session.scalar(select(Station.capabilities).where(Station.id == station_id))
            read = stored is None
        if read:
            capabilities = await read_capabilities(self.registry.get(station_id), utc_now())
            await save_capabilities(self.runtime.database, station_id, capabilities)
        self.runtime.ready.add(station_id)
        self._notify(station_id, "boot" if read else "connect")

    # --- helpers --------------------------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("smart-charging task failed", error=repr(task.exception()))

    async def _refresh_controlled(self) -> None:
        for config in await self.services.sites.all():
            self._controlled[config.id] = config.controlled
        self._update_needs_answer()

    def _update_needs_answer(self) -> None:
        # NotifyEVChargingNeeds is answered Accepted (a schedule will follow) once a site is controlled.
        # The answer is one flag for the whole CSMS: a station of an uncontrolled site also hears Accepted
        # while another site is controlled, and then gets no profile.
        self.services.charging_needs.schedules_available = any(self._controlled.values())
