"""A site run: every station of a scenario connected to a CSMS, every EV arriving and leaving on time.

The runner starts one :class:`~simulators.station.SimulatedStation` per station, waits (briefly) for
them to connect, then starts the scenario clock and drives each connector through its EVs in order
of arrival: ``plug_in`` at arrival (at once for EVs already there), ``unplug`` at departure. A
connector holds one EV at a time; an EV that arrives while the previous one is still plugged in
waits for it to leave (noted in the report). The run ends when every EV has left, after
``duration_s`` wall seconds, or when asked to stop; EVs still plugged in are unplugged then, so every
session the CSMS saw is also closed.

The runner owns the :class:`~simulators.recorder.SessionRecord` of each EV (asked vs delivered);
stations write samples, profiles, errors and message counts to the same recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from simulators.clock import SimClock
from simulators.ev import EVModel, EVSpec
from simulators.recorder import Recorder, SessionRecord
from simulators.report import RunInfo
from simulators.scenario import ISO15118_MODES, SimEV, SimScenario, StationSpec
from simulators.station import StationConfig

log = logging.getLogger(__name__)

#: How often the runner checks for the end of the run and refreshes delivered energy, wall seconds.
POLL_S = 0.1
#: The longest a station gets to close a session or shut down at the end before it is abandoned.
STOP_TIMEOUT_S = 10.0


class Station(Protocol):
    """What the runner needs of a station (:class:`simulators.station.SimulatedStation` provides it)."""

    async def run(self) -> None: ...
    async def stop(self) -> None: ...
    async def plug_in(self, evse_id: int, ev: EVModel, id_tag: str) -> None: ...
    async def unplug(self, evse_id: int) -> None: ...


#: Builds a station from its configuration, the clock and the recorder.
StationFactory = Callable[[StationConfig, SimClock, Recorder], Station]


@dataclass(frozen=True)
class SiteOptions:
    """How to run a site. ``share_201`` applies only to stations whose version the scenario leaves open."""

    url: str
    time_scale: float = 1.0
    duration_s: float | None = None
    share_201: float = 0.0
    password: str | None = None
    meter_interval_s: float | None = None
    connect_timeout_s: float = 10.0
    # Smart-charging capabilities (stack levels, rate units, periods) changeable by the CSMS, or read-only.
    limits_writable: bool = True
    # Wall seconds between every station connected and the scenario clock starting. A real site's stations
    # are on line, with the CSMS's fail-safe profiles, long before the morning's first EV; without this the
    # EVs plugged in at the start would charge at full power until the CSMS's first profiles land.
    settle_s: float = 0.0
    # Which EVs speak ISO 15118 (one of ISO15118_MODES).
    iso15118: str = "scenario"

    def __post_init__(self) -> None:
        if self.iso15118 not in ISO15118_MODES:
            raise ValueError(f"iso15118: must be one of {', '.join(ISO15118_MODES)}, got {self.iso15118!r}")


def assign_versions(stations: tuple[StationSpec, ...], share_201: float) -> dict[str, str]:
    """Each station's OCPP version: the scenario's where it says, else ``share_201`` of the rest speak 2.0.1.

    The 2.0.1 stations are spread evenly through the list (with a share of 0.5, every second one), so a
    run that stops early still has both versions at work.
    """
    versions: dict[str, str] = {}
    open_k = 0
    for station in stations:
        if station.ocpp_version is not None:
            versions[station.station_id] = station.ocpp_version
            continue
        is_201 = math.floor((open_k + 1) * share_201 + 1e-9) > math.floor(open_k * share_201 + 1e-9)
        versions[station.station_id] = "2.0.1" if is_201 else "1.6"
        open_k += 1
    return versions


def physics_tick_s(time_scale: float) -> float:
    """Wall seconds per physics step: about one scenario minute, between 0.1 s and 1 s of wall time."""
    return min(1.0, max(0.1, 60.0 / time_scale))


def speaks_iso15118(ev: SimEV, mode: str) -> bool:
    """Whether the EV speaks ISO 15118 in a run with ``--iso15118 mode`` (see :data:`ISO15118_MODES`)."""
    return mode == "all" or (mode == "scenario" and ev.iso15118)


def ev_spec(ev: SimEV, *, iso15118: bool | None = None) -> EVSpec:
    """The EV model's description of a scenario EV (tapering left at the model's defaults unless given);
    ``iso15118`` overrides the scenario's word on whether it speaks ISO 15118."""
    extra: dict[str, float] = {}
    if ev.taper_soc is not None:
        extra["taper_soc"] = ev.taper_soc
    if ev.taper_floor is not None:
        extra["taper_floor"] = ev.taper_floor
    return EVSpec(
        ev_id=ev.ev_id,
        battery_kwh=ev.battery_kwh,
        soc_initial=ev.soc_initial,
        soc_target=ev.soc_target,
        max_kw=ev.max_kw,
        phases=ev.phases,
        min_current_a=ev.min_current_a,
        draw_factor=ev.draw_factor,
        phase_map=ev.phase_map,
        iso15118=ev.iso15118 if iso15118 is None else iso15118,
        departure=ev.departure,
        **extra,
    )


def _default_factory(config: StationConfig, clock: SimClock, recorder: Recorder) -> Station:
    from simulators.station import SimulatedStation  # imported late: runner tests bring their own

    return SimulatedStation(config, clock, recorder)


class _Gate:
    """A monotonic clock that stands at zero until opened, so the scenario starts once the site is up."""

    def __init__(self) -> None:
        self._opened_at: float | None = None

    def open(self) -> None:
        if self._opened_at is None:
            self._opened_at = time.monotonic()

    def __call__(self) -> float:
        return 0.0 if self._opened_at is None else time.monotonic() - self._opened_at


class SiteRun:
    """One run of a scenario against a CSMS. ``await run()`` once; read ``recorder`` while it runs."""

    def __init__(
        self,
        scenario: SimScenario,
        options: SiteOptions,
        *,
        recorder: Recorder | None = None,
        station_factory: StationFactory | None = None,
    ) -> None:
        self.scenario = scenario
        self.options = options
        self.recorder = recorder or Recorder()
        self.versions = assign_versions(scenario.stations, options.share_201)
        self._gate = _Gate()
        self.clock = SimClock(scenario.start, options.time_scale, monotonic=self._gate)
        factory = station_factory or _default_factory
        self.stations: dict[str, Station] = {
            spec.station_id: factory(self._config(spec), self.clock, self.recorder) for spec in scenario.stations
        }
        #: EVs plugged in now, by id (the progress display reads their energy).
        self.plugged: dict[str, EVModel] = {}
        self.notes: dict[str, list[str]] = defaultdict(list)
        self.ever_connected: set[str] = set()
        #: Set when the scenario clock starts (every station connected, or the connect timeout passed).
        self.clock_started = asyncio.Event()
        self._wall_start = time.monotonic()
        self._stop = asyncio.Event()
        self._evs = {ev.ev_id: ev for ev in scenario.evs}
        for ev in scenario.evs:
            self.recorder.sessions[ev.ev_id] = SessionRecord(
                ev_id=ev.ev_id,
                station_id=ev.station_id,
                evse_id=ev.connector_id,
                requested_kwh=ev.requested_kwh,
                arrival=ev.arrival,
                departure=ev.departure,
            )

    def _config(self, spec: StationSpec) -> StationConfig:
        options = self.options
        interval = spec.meter_interval_s or options.meter_interval_s
        return StationConfig(
            station_id=spec.station_id,
            url=options.url,
            ocpp_version=self.versions[spec.station_id],
            evse_count=spec.evse_count,
            max_current_a=spec.max_current_a,
            phases=spec.phases,
            voltage_v=self.scenario.base.site.voltage_v,
            vendor=spec.vendor,
            model=spec.model,
            serial_number=spec.serial_number or f"SIM-{spec.station_id}"[:25],
            password=spec.password if spec.password is not None else options.password,
            tick_s=physics_tick_s(options.time_scale),
            limits_writable=options.limits_writable,
            **({"meter_interval_s": interval} if interval is not None else {}),
        )

    # --- the run -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the run to end now (EVs are unplugged, stations stopped, the report still written)."""
        self._stop.set()

    @property
    def started(self) -> bool:
        """Whether the scenario clock runs."""
        return self.clock_started.is_set()

    def wall_elapsed_s(self) -> float:
        return time.monotonic() - self._wall_start

    async def run(self) -> RunInfo:
        """Run the site until the scenario is over, ``duration_s`` has passed or :meth:`stop` is called."""
        self._wall_start = time.monotonic()
        station_tasks = {
            sid: asyncio.create_task(self._station(sid, station), name=f"station {sid}")
            for sid, station in self.stations.items()
        }
        connector_tasks: list[asyncio.Task[None]] = []
        stopped = "interrupted"
        try:
            await self._await_connections()
            await self._settle()
            self._gate.open()
            self.clock_started.set()
            connector_tasks = [
                asyncio.create_task(self._connector(station_id, evse_id, evs), name=f"{station_id}/{evse_id}")
                for (station_id, evse_id), evs in self._queues().items()
            ]
            stopped = await self._until_done(connector_tasks)
        finally:
            for task in connector_tasks:
                task.cancel()
            await asyncio.gather(*connector_tasks, return_exceptions=True)
            await self._unplug_all()
            await self._stop_stations(station_tasks)
        self._refresh()
        return RunInfo(
            scenario=self.scenario,
            url=self.options.url,
            time_scale=self.options.time_scale,
            versions=dict(self.versions),
            wall_s=self.wall_elapsed_s(),
            sim_start=self.scenario.start,
            sim_end=min(self.clock.sim_now(), max(self.scenario.end, self.scenario.start)),
            stopped=stopped,
            connected=frozenset(self.ever_connected),
            notes={ev_id: list(notes) for ev_id, notes in self.notes.items()},
        )

    async def _station(self, station_id: str, station: Station) -> None:
        """Run one station; a station that fails is reported and stays down, the others go on."""
        try:
            await station.run()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("station %s failed", station_id)
            self.recorder.protocol_error(self.clock.sim_now(), station_id, f"station stopped on an error: {error!r}")

    async def _await_connections(self) -> None:
        """Hold the scenario clock until every station is connected, at most ``connect_timeout_s``.

        A CSMS that is down is no reason to give up: the stations keep reconnecting with back-off and
        the scenario runs anyway (stations charge off line and deliver their queues when they connect).
        """
        deadline = time.monotonic() + self.options.connect_timeout_s
        while time.monotonic() < deadline and not self._stop.is_set() and not self._over_duration():
            self._refresh()
            if self.ever_connected >= set(self.stations):
                return
            await asyncio.sleep(POLL_S)
        missing = sorted(set(self.stations) - self.ever_connected)
        if missing:
            log.warning(
                "%d of %d stations not connected after %.0f s; starting the scenario anyway (they keep retrying)",
                len(missing),
                len(self.stations),
                self.options.connect_timeout_s,
            )

    async def _settle(self) -> None:
        """Let the connected site settle (boots, capabilities, fail-safe profiles) before the clock starts."""
        if self.options.settle_s <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.options.settle_s)

    def _queues(self) -> dict[tuple[str, int], list[SimEV]]:
        queues: dict[tuple[str, int], list[SimEV]] = defaultdict(list)
        for ev in self.scenario.evs:
            queues[(ev.station_id, ev.connector_id)].append(ev)
        for evs in queues.values():
            evs.sort(key=lambda ev: (not ev.active, ev.arrival))  # the EV plugged in at the start goes first
        return queues

    def _over_duration(self) -> bool:
        return self.options.duration_s is not None and self.wall_elapsed_s() >= self.options.duration_s

    async def _until_done(self, connector_tasks: list[asyncio.Task[None]]) -> str:
        """Wait for the end of the run; returns why it ended."""
        while True:
            self._refresh()
            if self._stop.is_set():
                return "interrupted"
            if self._over_duration():
                return "duration"
            if all(task.done() for task in connector_tasks) and self.clock.sim_now() >= self.scenario.end:
                return "scenario over"
            await asyncio.sleep(POLL_S)

    def _refresh(self) -> None:
        """Note connections and bring the plugged-in EVs' delivered energy into their records."""
        self.ever_connected |= self.recorder.connected
        for ev_id, model in self.plugged.items():
            self.recorder.sessions[ev_id].delivered_kwh = model.delivered_kwh

    async def _sleep_until(self, moment: datetime) -> None:
        # The clock runs by the time connectors wait (it starts before them), so one sleep is exact.
        await asyncio.sleep(self.clock.wall_seconds_until(moment))

    async def _connector(self, station_id: str, evse_id: int, evs: list[SimEV]) -> None:
        """One connector's EVs, one after the other."""
        station = self.stations[station_id]
        previous: SimEV | None = None
        for ev in evs:
            await self._sleep_until(ev.arrival)
            now = self.clock.sim_now()
            if now >= ev.departure:
                why = "the previous EV stayed" if previous and previous.departure > ev.arrival else "before the start"
                self.notes[ev.ev_id].append(f"not plugged in: it left {why}")
                continue
            if previous is not None and previous.departure > ev.arrival:
                self.notes[ev.ev_id].append(f"plugged in late, at {now:%H:%M}: {previous.ev_id} was still there")
            await self._visit(station, station_id, evse_id, ev)
            previous = ev

    async def _visit(self, station: Station, station_id: str, evse_id: int, ev: SimEV) -> None:
        model = EVModel(ev_spec(ev, iso15118=speaks_iso15118(ev, self.options.iso15118)))
        record = self.recorder.sessions[ev.ev_id]
        record.plugged_at = self.clock.sim_now()
        self.plugged[ev.ev_id] = model
        try:
            await station.plug_in(evse_id, model, ev.id_tag)
        except Exception as error:  # a refused or failed start is part of the result, not a crash
            self._failed(ev.ev_id, station_id, "plug-in", error)
        await self._sleep_until(ev.departure)
        # Not reached when the run ends first: then _unplug_all closes the session.
        await self._unplug(station, station_id, evse_id, ev.ev_id)

    async def _unplug(self, station: Station, station_id: str, evse_id: int, ev_id: str) -> None:
        model = self.plugged.pop(ev_id, None)
        record = self.recorder.sessions[ev_id]
        # Read before the session ends: afterwards the EVSE no longer knows it.
        record.transaction_id = self._csms_transaction_id(station, evse_id) or record.transaction_id
        try:
            await asyncio.wait_for(station.unplug(evse_id), STOP_TIMEOUT_S)
        except Exception as error:
            self._failed(ev_id, station_id, "unplug", error)
        record.unplugged_at = self.clock.sim_now()
        if model is not None:
            record.delivered_kwh = model.delivered_kwh

    def transaction_id(self, ev_id: str) -> str | None:
        """The id the CSMS knows the session of a plugged-in EV by (None before the CSMS has given one)."""
        ev = self._evs.get(ev_id)
        if ev is None or ev_id not in self.plugged:
            return None
        return self._csms_transaction_id(self.stations[ev.station_id], ev.connector_id)

    @staticmethod
    def _csms_transaction_id(station: Station, evse_id: int) -> str | None:
        """The session's id as the CSMS knows it, from the station's snapshot (stand-ins may have none)."""
        snapshot = getattr(station, "snapshot", None)
        if not callable(snapshot):
            return None
        with contextlib.suppress(Exception):
            for evse in snapshot().evses:
                if evse.evse_id == evse_id and evse.transaction_id is not None:
                    return str(evse.transaction_id)
        return None

    def _failed(self, ev_id: str, station_id: str, what: str, error: BaseException) -> None:
        text = f"{what} failed: {error!r}" if not isinstance(error, TimeoutError) else f"{what} timed out"
        self.notes[ev_id].append(text)
        self.recorder.protocol_error(self.clock.sim_now(), station_id, f"{ev_id}: {text}")

    async def _unplug_all(self) -> None:
        """At the end: every EV still plugged in leaves, so its session ends in the CSMS too."""
        left = [self._evs[ev_id] for ev_id in self.plugged]
        await asyncio.gather(
            *(self._unplug(self.stations[ev.station_id], ev.station_id, ev.connector_id, ev.ev_id) for ev in left)
        )

    async def _stop_stations(self, tasks: Mapping[str, asyncio.Task[None]]) -> None:
        async def stop_one(station_id: str) -> None:
            try:
                await asyncio.wait_for(self.stations[station_id].stop(), STOP_TIMEOUT_S)
            except Exception as error:
                log.warning("station %s did not stop cleanly: %r", station_id, error)

        await asyncio.gather(*(stop_one(sid) for sid in tasks))
        _, pending = await asyncio.wait(tasks.values(), timeout=STOP_TIMEOUT_S) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
