"""The OCPP Translation: the scheduling core's three calls answered from the store and the stations.

:class:`OcppTranslation` implements :class:`~optivgi_csms.scheduling.translation.AsyncTranslation` for the
live server, with a site id as Opti-VGI's station group:

- ``get_evs``: the site's open sessions and reservations in the horizon as EVs (see :mod:`.evs`);
- ``get_peak_power_demand``: the site's limits less the load it does not control (see :mod:`.limits`);
- ``send_power_to_evs``: each session's plan as a TxProfile in its station's shape, queued only when it
  changed meaningfully (see :mod:`.changes`), after the fail-safe profile of every station that needs one.

It can run under :func:`~optivgi_csms.scheduling.scm_runner_async` like any translation; the controller
runs it itself to record each cycle. One instance serves one cycle at a time: ``get_evs`` reads the
snapshot the two other calls use, and the last cycle's inputs and sends stay in :attr:`cycle`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from optivgi_csms.domain.charging_profile import ChargingProfile
from optivgi_csms.domain.site import SiteConfig
from optivgi_csms.domain.time import utc_now
from optivgi_csms.scheduling import EV, ChargingRateUnit, Site
from optivgi_csms.scheduling import ChargingProfile as PlannedProfile
from optivgi_csms.scheduling.ev import kw_from_amps
from optivgi_csms.scheduling.runner import slot_start
from optivgi_csms.scheduling.translation import PeakPowerDemand
from optivgi_csms.smart_charging.book import HeldProfile
from optivgi_csms.smart_charging.changes import Candidate, raises_to_hold, select_sends
from optivgi_csms.smart_charging.evs import PlannedEv, Population, Timing, build_population
from optivgi_csms.smart_charging.fallback import fair_share_a, fallback_profile, fallback_shapes, same_limits
from optivgi_csms.smart_charging.limits import planning_site, slot_count
from optivgi_csms.smart_charging.outbox import Delivery, Outcome
from optivgi_csms.smart_charging.profiles import shapes_for, tx_profile
from optivgi_csms.smart_charging.runtime import Runtime
from optivgi_csms.smart_charging.snapshot import SiteSnapshot, load_snapshot

#: Readings are compared with a new limit only this long after the station accepted it (at most).
MAX_SETTLE = timedelta(seconds=10)


@dataclass
class Sent:
    """A profile queued in this cycle, and the future of its outcome."""

    kind: str  # "tx" or "fallback"
    station_id: str
    evse_id: int
    profile: ChargingProfile
    reason: str
    future: asyncio.Future[Outcome]
    entry: PlannedEv | None = None
    settle: timedelta = timedelta(0)


@dataclass
class CycleInputs:
    """What one cycle read and decided, for the controller's record and the plan view."""

    config: SiteConfig
    snapshot: SiteSnapshot
    population: Population
    timing: Timing
    horizon: timedelta
    site: Site | None = None
    sent: list[Sent] = field(default_factory=list)
    #: Sessions whose profile was left as the station holds it, and why.
    kept: dict[str | int, str] = field(default_factory=dict)

    @property
    def slot_starts(self) -> list[datetime]:
        """Start of every slot of the plan."""
        return [
            self.timing.now + k * self.timing.resolution
            for k in range(slot_count(self.horizon, self.timing.resolution))
        ]


class OcppTranslation:
    """The OCPP Translation of one CSMS (``group`` is a site id)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.cycle: CycleInputs | None = None

    async def get_evs(self, group: str) -> tuple[list[EV], float | None]:
        """The site's EVs: one per controlled open session and one per reservation in the horizon."""
        runtime = self.runtime
        config = await runtime.sites.get(group)
        resolution = runtime.scale.duration(config.resolution_s)
        horizon = runtime.scale.duration(config.horizon_s)
        wall_now = utc_now()
        timing = Timing(slot_start(wall_now, resolution), wall_now, resolution, runtime.scale)
        snapshot = await load_snapshot(runtime.database, config, timing.now, horizon, runtime.is_ready)
        population = build_population(snapshot, timing, runtime.meters, runtime.deviations)
        self.cycle = CycleInputs(config, snapshot, population, timing, horizon)
        return [entry.ev for entry in population.evs], config.voltage_v

    async def get_peak_power_demand(self, group: str, now: datetime, voltage: float | None = None) -> PeakPowerDemand:
        """The site's limits from ``now``, less what its uncontrolled sessions may draw."""
        cycle = self._cycle_of(group)
        population = cycle.population
        # "No limit" must still be a number the solver can hold: more than every EV and load together.
        unlimited = sum(e.ev.max_kw for e in population.evs) + sum(u.kw for u in population.uncontrolled) + 1.0
        cycle.site = planning_site(
            cycle.config, population.uncontrolled, now, cycle.timing.resolution, cycle.horizon, unlimited
        )
        return cycle.site

    async def send_power_to_evs(self, powers: dict[EV, PlannedProfile], unit: ChargingRateUnit | None = None) -> None:
        """Queue the fail-safe profiles that changed, then every session's TxProfile that changed.

        ``unit`` is ignored: each station gets its own preferred unit (the plan is re-rendered from each
        EV's schedule in the station's unit, stack level and number of periods)."""
        cycle = self.cycle
        if cycle is None:
            raise RuntimeError("send_power_to_evs before get_evs")
        self._send_fallbacks(cycle)
        self._send_tx_profiles(cycle, powers)

    # --- internals ---------------------------------------------------------------------------------

    @staticmethod
    def _pilot(ev: EV, config: SiteConfig) -> EV:
        """An idle EV's plan (all zero) as a pilot at the minimum charging current over its stay: it is not
        paused (EVs handle off/on cycling badly, and it may still top up), and not counted in the site's
        load while it draws nothing."""
        pilot_kw = max(ev.min_kw, kw_from_amps(config.min_current_a, ev.voltage, ev.phases))
        held = replace(ev, min_power=ev.from_kw(pilot_kw), max_power=ev.from_kw(pilot_kw))
        held.power = [ev.from_kw(pilot_kw)] * len(ev.power)
        return held

    def _cycle_of(self, group: str) -> CycleInputs:
        if self.cycle is None or self.cycle.config.id != group:
            raise RuntimeError(f"get_peak_power_demand for {group!r} before its get_evs")
        return self.cycle

    def _send_fallbacks(self, cycle: CycleInputs) -> None:
        runtime = self.runtime
        share = fair_share_a(cycle.snapshot, cycle.timing.wall_now)
        if share is None:
            return
        for station in cycle.snapshot.stations.values():
            if not station.controllable:
                continue
            first_shape, retry_shape = fallback_shapes(station)
            voltage = cycle.config.voltage_v
            first = fallback_profile(share, first_shape, voltage, cycle.timing.wall_now)
            if same_limits(runtime.book.fallback(station.id), first):
                continue
            retry = fallback_profile(share, retry_shape, voltage, cycle.timing.wall_now)
            future = runtime.outbox.submit(Delivery(station.id, 0, ("fallback", 0), (first, retry)))
            runtime.book.set_fallback(station.id, first)
            cycle.sent.append(Sent("fallback", station.id, 0, first, "fair share", future))

    def _earlier(self, held: HeldProfile | None, station_id: str, wall_now: datetime) -> ChargingProfile | None:
        """What the EV may still run on besides the profile held for it: the one that profile replaces until
        it is in force (accepted and settled), or the station's fail-safe profile when none of ours is."""
        if held is None:
            return self.runtime.book.fallback(station_id)
        if held.state == "accepted" and wall_now >= held.settled_at:
            return None
        return held.previous if held.previous is not None else self.runtime.book.fallback(station_id)

    def _send_tx_profiles(self, cycle: CycleInputs, powers: dict[EV, PlannedProfile]) -> None:
        runtime = self.runtime
        timing = cycle.timing
        entries = cycle.population.by_ev_id()
        candidates: list[Candidate] = []
        retries: dict[int, ChargingProfile] = {}
        for ev in powers:
            entry = entries.get(ev.ev_id)
            if entry is None or entry.transaction_id is None:
                continue  # a reservation: planned, nothing to send until its EV arrives
            station = cycle.snapshot.stations[entry.station_id]
            if entry.idle:
                ev = self._pilot(ev, cycle.config)
            first_shape, retry_shape = shapes_for(
                station.capabilities, dc=entry.dc, ev_periods=entry.max_schedule_tuples
            )
            # A guessed departure ends the profile with the plan: renewed before it ends while we run, and
            # left to the station's fail-safe profile, not to a pause, if we stop.
            until = ev.departure_time if entry.open_ended else None
            new = tx_profile(
                ev, entry.transaction_id, timing.now, timing.resolution, first_shape, dc=entry.dc, until=until
            )
            retries[id(new)] = tx_profile(
                ev, entry.transaction_id, timing.now, timing.resolution, retry_shape, dc=entry.dc, until=until
            )
            held = runtime.book.get(entry.transaction_id)
            significance = station.capabilities.limit_change_significance_pct
            candidates.append(
                Candidate(
                    key=entry,
                    new=new,
                    old=held.profile if held is not None else None,
                    voltage_v=ev.voltage,
                    phases=ev.phases,
                    phase_map=ev.phase_map,
                    significance=significance / 100.0 if significance is not None else None,
                    forced=runtime.book.take_forced(entry.transaction_id, entry.station_id, entry.evse_id),
                    counted=not entry.idle,
                    earlier=self._earlier(held, entry.station_id, timing.wall_now),
                )
            )
        if not candidates:
            return
        assert cycle.site is not None, "get_peak_power_demand must run before send_power_to_evs"
        sends = select_sends(candidates, cycle.site, cycle.slot_starts, timing.resolution, timing.wall_now)
        chosen = {id(candidate) for candidate in sends}
        for candidate in candidates:
            if id(candidate) not in chosen:
                cycle.kept[candidate.key.ev.ev_id] = candidate.reason
        settle = min(MAX_SETTLE, timing.resolution / 2)
        # A raise that needs the room lowered limits free waits until they are in force (the outbox holds
        # it until what was handed in before it was answered), so those are handed in first.
        to_hold = raises_to_hold(candidates, sends, cycle.site, cycle.slot_starts, timing.resolution)
        for candidate in sorted(sends, key=lambda candidate: id(candidate) in to_hold):
            entry = candidate.key
            assert isinstance(entry, PlannedEv) and entry.transaction_id is not None
            attempts = (candidate.new, retries[id(candidate.new)])
            future = runtime.outbox.submit(
                Delivery(
                    entry.station_id,
                    entry.evse_id,
                    ("tx", entry.transaction_id),
                    attempts,
                    after_lowerings=id(candidate) in to_hold,
                )
            )
            min_kw = max(entry.ev.min_kw, kw_from_amps(cycle.config.min_current_a, entry.ev.voltage, entry.ev.phases))
            if not entry.idle:
                min_kw = min(min_kw, entry.ev.max_kw)
            runtime.book.pending(
                HeldProfile(
                    profile=candidate.new,
                    station_id=entry.station_id,
                    evse_id=entry.evse_id,
                    transaction_id=entry.transaction_id,
                    state="pending",
                    since=timing.wall_now,
                    voltage_v=entry.ev.voltage,
                    min_kw=min_kw,
                    settled_at=timing.wall_now + settle,
                    settle=settle,
                )
            )
            cycle.sent.append(
                Sent("tx", entry.station_id, entry.evse_id, candidate.new, candidate.reason, future, entry, settle)
            )
