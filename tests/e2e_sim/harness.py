"""The simulator against our CSMS, in compressed time, and what its meters say about the site.

Everything here drives real parts: an in-process :class:`~optivgi_csms.server.app.Csms` (from the
``make_csms`` fixture, real database, real websockets on loopback) and the simulator's own
:class:`~simulators.site.SiteRun` with its :class:`~simulators.station.SimulatedStation` stations and EV
models. The assertions read the simulator's meter samples (:class:`~simulators.recorder.PowerSample`),
never the CSMS's view of itself: a plan that looks right but does not reach the EVs fails.

Time: the scenario clock runs :data:`TIME_SCALE` times faster than the wall clock, and the CSMS is told the
same (``time_scale``), so its slots of :data:`SLOT_S` scenario seconds last :data:`SLOT_WALL_S` wall
seconds. OCPP messages, the stations' apply delay and meter intervals stay in wall seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from optivgi_csms.server.app import Csms
from simulators.clock import SimClock
from simulators.recorder import PowerSample, Recorder
from simulators.report import RunInfo
from simulators.scenario import SimScenario, parse_sim_scenario
from simulators.site import SiteOptions, SiteRun, physics_tick_s
from simulators.station import SimulatedStation, StationConfig

#: Scenario seconds per wall second: an 8-minute scenario passes in 4 wall seconds.
TIME_SCALE = 120.0
#: The site's slot (``resolution_s``), scenario seconds: 2 wall seconds, well above a cycle's latency
#: (0.5 s debounce + a solve of a few EVs + a message round trip) even on a loaded machine.
SLOT_S = 240
SLOT_WALL_S = SLOT_S / TIME_SCALE
#: The planning horizon, scenario seconds: 15 slots (a short horizon keeps every solve small).
HORIZON_S = 15 * SLOT_S
#: How long a simulated station takes to bring its EV to a new limit (the StationConfig default), wall s.
APPLY_DELAY_WALL_S = StationConfig.__dataclass_fields__["profile_apply_delay_s"].default
#: How often the stations sample their EVs (and so how finely the recorder sees the site), wall seconds.
SAMPLE_WALL_S = physics_tick_s(TIME_SCALE)
#: The issue's tolerance: the site may be over its limit only for "one slot's reaction time". A change (an
#: EV arrives, a plan moves power from one EV to another) reaches the EVs after the CSMS's next cycle (at
#: most one slot: the debounce, the solve and the send fit in it) plus the station's apply delay. The
#: recorder sees the site only at each physics tick, so an episode may look one tick longer than it was.
REACTION_WALL_S = APPLY_DELAY_WALL_S + SLOT_WALL_S + SAMPLE_WALL_S
#: Meter readings this much over the limit are not a violation: limits go out rounded down to 0.1 A, and
#: the EV model's power is current × voltage in floating point.
POWER_EPSILON_KW = 0.05
#: Stations report their meters this often (wall seconds), so the CSMS sees a draw below the offer quickly.
METER_INTERVAL_WALL_S = 0.25
#: The CSMS plans every slot when nothing happens (``scheduling_interval`` is in scenario seconds).
SCHEDULING_INTERVAL_S = float(SLOT_S)

START = datetime.fromisoformat("2026-03-02T08:00:00+00:00")
VOLTAGE_V = 230.0


def at(wall_seconds: float) -> datetime:
    """The scenario time ``wall_seconds`` of wall time after the start (tests think in wall seconds: the
    CSMS's reactions, slots and the stations' delays all run on the wall clock)."""
    return START + timedelta(seconds=wall_seconds * TIME_SCALE)


def wall_s(scenario_seconds: float) -> float:
    """Wall seconds a span of scenario seconds lasts."""
    return scenario_seconds / TIME_SCALE


def station(station_id: str, version: str, *, evses: int = 1, phases: int = 3) -> dict[str, Any]:
    """A scenario station (32 A per phase)."""
    return {"id": station_id, "ocpp_version": version, "evse_count": evses, "phases": phases}


def ev(
    ev_id: str,
    station_id: str,
    arrive_s: float,
    leave_s: float,
    *,
    connector: int = 1,
    max_kw: float = 11.0,
    energy_kwh: float = 40.0,
    **extra: Any,
) -> dict[str, Any]:
    """A scenario EV plugged in from ``arrive_s`` to ``leave_s`` (wall seconds after the start) that wants
    more than it can get in the run, so it draws all it is offered."""
    return {
        "id": ev_id,
        "station_id": station_id,
        "connector_id": connector,
        "arrival": at(arrive_s).isoformat(),
        "departure": at(leave_s).isoformat(),
        "energy_kwh": energy_kwh,
        "max_kw": max_kw,
        "active": arrive_s <= 0,
        **extra,
    }


def scenario(name: str, limit_kw: float, stations: list[dict[str, Any]], evs: list[dict[str, Any]]) -> SimScenario:
    """A format-1 scenario of the given stations and EVs under a constant limit."""
    return parse_sim_scenario(
        {
            "format": 1,
            "name": name,
            "now": START.isoformat(),
            "resolution_s": SLOT_S,
            "horizon_s": HORIZON_S,
            "site": {"limit_kw": limit_kw, "voltage_v": VOLTAGE_V},
            "stations": stations,
            "evs": evs,
        }
    )


async def smart_csms(make_csms: Callable[..., Any], limit_kw: float, **overrides: Any) -> Csms:
    """A CSMS whose default site is held to ``limit_kw``, planning in compressed time with short slots."""
    settings: dict[str, Any] = {
        "time_scale": TIME_SCALE,
        "site_limit_kw": limit_kw,
        "scheduling_interval": SCHEDULING_INTERVAL_S,
        "log_level": "warning",
        # A station notices a new profile at its next physics tick, each on its own: a raise must wait out
        # that jitter as well as the apply delay both share, or it can reach its EV before the lowering it
        # pairs with reaches another station's.
        "profile_raise_delay": SAMPLE_WALL_S + 0.3,
    }
    csms: Csms = await make_csms(**(settings | overrides))
    await csms.services.sites.update("default", resolution_s=SLOT_S, horizon_s=HORIZON_S)
    return csms


ConfigChange = Callable[[StationConfig], StationConfig]


async def run_site(
    csms: Csms,
    site: SimScenario,
    *,
    configure: ConfigChange | None = None,
    during: Callable[[SiteRun], Any] | None = None,
    timeout_s: float = 60.0,
    iso15118: str = "scenario",
) -> tuple[SiteRun, RunInfo]:
    """Run the scenario against ``csms`` to its end; ``configure`` may change each station's configuration
    (capabilities, rules), ``during`` runs alongside (e.g. to stop the CSMS at a chosen moment) and
    ``iso15118`` says which EVs speak ISO 15118 (``optivgi-sim --iso15118``)."""

    def factory(config: StationConfig, clock: SimClock, recorder: Recorder) -> SimulatedStation:
        return SimulatedStation(configure(config) if configure else config, clock, recorder)

    options = SiteOptions(
        url=f"ws://127.0.0.1:{csms.ocpp.port}/ocpp",
        time_scale=TIME_SCALE,
        meter_interval_s=METER_INTERVAL_WALL_S,
        connect_timeout_s=5.0,
        iso15118=iso15118,
    )
    run = SiteRun(site, options, station_factory=factory)
    side = asyncio.create_task(during(run)) if during is not None else None
    try:
        info = await asyncio.wait_for(run.run(), timeout_s)
    finally:
        if side is not None:
            if not side.done():
                side.cancel()
            await asyncio.gather(side, return_exceptions=True)
    if side is not None and not side.cancelled() and side.exception() is not None:
        raise side.exception()  # type: ignore[misc]
    return run, info


async def until(condition: Callable[[], bool], *, timeout_s: float, poll_s: float = 0.05) -> None:
    """Wait until ``condition()`` holds; TimeoutError after ``timeout_s`` wall seconds."""
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(poll_s)


def replace_config(**changes: Any) -> ConfigChange:
    """A ``configure`` that changes the same fields of every station."""
    return lambda config: dataclasses.replace(config, **changes)


# --- what the meters say -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Episode:
    """A stretch of time the site's measured power was over its limit."""

    start: datetime
    end: datetime
    peak_kw: float

    @property
    def wall_s(self) -> float:
        """How long it lasted, wall seconds."""
        return wall_s((self.end - self.start).total_seconds())


class SitePower:
    """The site's measured power over time: at each sample, the sum of every EVSE's latest sample."""

    def __init__(self, samples: Iterable[PowerSample]) -> None:
        ordered = sorted(samples, key=lambda s: s.sim_time)
        self.samples = ordered
        latest: dict[tuple[str, int], float] = {}
        self.times: list[datetime] = []
        self.kw: list[float] = []
        for sample in ordered:
            latest[(sample.station_id, sample.evse_id)] = sample.power_kw
            total = sum(latest.values())
            if self.times and self.times[-1] == sample.sim_time:
                self.kw[-1] = total
            else:
                self.times.append(sample.sim_time)
                self.kw.append(total)

    def peak_kw(self, start: datetime | None = None, end: datetime | None = None) -> float:
        """The highest site power in ``[start, end)``."""
        return max((kw for t, kw in zip(self.times, self.kw, strict=True) if _within(t, start, end)), default=0.0)

    def over(self, limit_kw: float, epsilon_kw: float = POWER_EPSILON_KW) -> list[Episode]:
        """Every stretch over ``limit_kw`` (+ ``epsilon_kw``); one ends at the first moment back under."""
        episodes: list[Episode] = []
        begun: datetime | None = None
        peak = 0.0
        for moment, kw in zip(self.times, self.kw, strict=True):
            if kw > limit_kw + epsilon_kw:
                if begun is None:
                    begun, peak = moment, kw
                peak = max(peak, kw)
            elif begun is not None:
                episodes.append(Episode(begun, moment, peak))
                begun = None
        if begun is not None:
            episodes.append(Episode(begun, self.times[-1], peak))
        return episodes

    def mean_kw(self, start: datetime, end: datetime, ev_ids: Sequence[str] | None = None) -> float:
        """Mean power in ``[start, end)`` of the whole site, or of the named EVs only.

        Per EVSE the samples come at a steady wall cadence, so a plain mean of each EVSE's samples is its
        time average; the site's is their sum."""
        per_evse: dict[tuple[str, int], list[float]] = {}
        for sample in self.samples:
            if not _within(sample.sim_time, start, end):
                continue
            if ev_ids is not None and sample.ev_id not in ev_ids:
                continue
            per_evse.setdefault((sample.station_id, sample.evse_id), []).append(sample.power_kw)
        return sum(sum(values) / len(values) for values in per_evse.values())

    def ev_samples(self, ev_id: str, start: datetime | None = None, end: datetime | None = None) -> list[PowerSample]:
        """One EV's samples in ``[start, end)``."""
        return [s for s in self.samples if s.ev_id == ev_id and _within(s.sim_time, start, end)]

    def mean_offer_kw(self, ev_id: str, start: datetime, end: datetime) -> float:
        """What the station offered the EV in ``[start, end)`` on average, kW."""
        offers = [s.offered_kw or 0.0 for s in self.ev_samples(ev_id, start, end)]
        return sum(offers) / len(offers) if offers else 0.0

    def timeline(self, every_s: float = SLOT_S / 2) -> str:
        """The site and every EV (drawn / offered kW) every ``every_s`` scenario seconds, for failure messages."""
        lines: list[str] = []
        latest: dict[str, tuple[float, float | None]] = {}
        shown: datetime | None = None
        for sample in self.samples:
            if sample.ev_id is not None:
                latest[sample.ev_id] = (sample.power_kw, sample.offered_kw)
            if shown is None or (sample.sim_time - shown).total_seconds() >= every_s:
                shown = sample.sim_time
                site = self.kw[self.times.index(sample.sim_time)]
                evs = " ".join(
                    f"{k} {p:.1f}/{'-' if o is None else f'{o:.1f}'}" for k, (p, o) in sorted(latest.items())
                )
                lines.append(f"{sample.sim_time:%H:%M:%S} site {site:5.1f} | {evs}")
        return "\n".join(lines)


def _within(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment < end)


def after_reaction(moment: datetime) -> datetime:
    """The scenario time one reaction (:data:`REACTION_WALL_S`) after ``moment``."""
    return moment + timedelta(seconds=REACTION_WALL_S * TIME_SCALE)


def describe(episodes: Sequence[Episode]) -> str:
    """Episodes in a line each, for assertion messages."""
    return "\n".join(
        f"{e.start:%H:%M:%S} to {e.end:%H:%M:%S}: {e.wall_s:.2f} s wall, peak {e.peak_kw:.2f} kW" for e in episodes
    )
