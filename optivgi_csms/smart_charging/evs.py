"""The EVs of a site as the scheduler sees them, built from a snapshot by the rules of the OCPP Translation.

Every open session is an EV, and every reservation in the horizon is an EV that has not arrived yet.
What each needs comes, in order of trust, from the EV itself (ISO 15118 NotifyEVChargingNeeds), from
what was set for the session through the API (:meth:`TransactionService.set_needs`), or from the site's
defaults; energy still needed is the target less what the meter says was delivered. How much an EV can
take is the lowest of the EVSE's, the cable's and the EV's current limits on the phases it is seen drawing
on, lowered further while it draws less than offered. Sessions smart charging cannot steer (a rejected
profile, a station that is off line or has smart charging off) are not EVs: they are load the site must
leave room for, at their maximum, until they are expected to leave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from optivgi_csms.scheduling import EV, ChargingRateUnit
from optivgi_csms.scheduling.ev import kw_from_amps
from optivgi_csms.smart_charging.deviation import Deviations
from optivgi_csms.smart_charging.meters import LiveMeters
from optivgi_csms.smart_charging.snapshot import ReservationInfo, SessionInfo, SiteSnapshot, StationInfo
from optivgi_csms.smart_charging.timebase import TimeScale

#: An EVSE's current limit per phase when nothing says otherwise (the usual 22 kW AC point).
DEFAULT_EVSE_MAX_CURRENT_A = 32.0
#: Phases assumed for an AC EV until its meter shows the phases it draws on.
DEFAULT_PHASES = 3
#: An EV still plugged in after its expected departure is planned to stay this many more slots.
OVERSTAY_SLOTS = 2
#: An EV that did not say when it leaves (no ISO 15118, nothing set for the session) is planned as if it
#: left within this many slots (two hours of 15-minute slots), planned again every cycle. Planned for the
#: site's whole default dwell it is deferred behind every EV with a known, earlier departure, and starved
#: when it leaves before the default said; planned as leaving within one hour it is served ahead of the EVs
#: that said when they leave. Two hours serve both alike (benchmarks/README.md, "EVs that say nothing").
OPEN_DEPARTURE_SLOTS = 8


def session_ev_id(transaction_id: int) -> str:
    """The scheduler's id of a session's EV."""
    return f"tx-{transaction_id}"


def reservation_ev_id(reservation_id: int) -> str:
    """The scheduler's id of a reservation's future EV."""
    return f"res-{reservation_id}"


@dataclass(frozen=True, slots=True)
class PlannedEv:
    """A scheduler EV with where it comes from and why it was given what it was given."""

    ev: EV
    station_id: str
    evse_id: int
    transaction_id: int | None = None
    reservation_id: int | None = None
    #: Energy still wanted in the site's own units (kWh), and where the target came from.
    requested_kwh: float = 0.0
    energy_source: str = "site"
    departure_source: str = "site"
    dc: bool = False
    #: The EV's own limit on periods per schedule (ISO 15118 maxScheduleTuples).
    max_schedule_tuples: int | None = None
    #: Why its maximum is below what the EVSE allows (drawing less than offered), if it is.
    capped: str | None = None
    #: It suspended itself: planned at 0 and not counted in the site's load, its pilot held at the minimum.
    idle: bool = False
    #: Its departure is a guess (the site's default): planned as leaving soon, and its profile ends where
    #: that plan ends, so a station the CSMS stops talking to falls back to its fail-safe profile, not 0.
    open_ended: bool = False


@dataclass(frozen=True, slots=True)
class UncontrolledLoad:
    """A session (or a reserved EV) smart charging does not steer: the site keeps ``kw`` free for it from
    ``start`` (now when None) until ``until``."""

    station_id: str
    evse_id: int
    kw: float
    phases: int
    until: datetime
    reason: str
    transaction_id: int | None = None
    reservation_id: int | None = None
    start: datetime | None = None


@dataclass
class Population:
    """The EVs to plan and the load to leave room for."""

    evs: list[PlannedEv] = field(default_factory=list)
    uncontrolled: list[UncontrolledLoad] = field(default_factory=list)

    def by_ev_id(self) -> dict[str | int, PlannedEv]:
        """Each planned EV by its scheduler id."""
        return {entry.ev.ev_id: entry for entry in self.evs}


@dataclass(frozen=True, slots=True)
class Timing:
    """The cycle's clock: ``now`` is the first slot's start, ``wall_now`` the moment of reading."""

    now: datetime
    wall_now: datetime
    resolution: timedelta
    scale: TimeScale


def build_population(snapshot: SiteSnapshot, timing: Timing, meters: LiveMeters, deviations: Deviations) -> Population:
    """Turn a site snapshot into EVs and uncontrolled load."""
    population = Population()
    for session in snapshot.sessions:
        station = snapshot.stations.get(session.station_id)
        if station is not None:
            _add_session(population, snapshot, station, session, timing, meters, deviations)
    _keep_room_to_resume(population, snapshot, timing)
    for reservation in snapshot.reservations:
        station = snapshot.stations.get(reservation.station_id)
        if station is not None:
            _add_reservation(population, snapshot, station, reservation, timing)
    return population


def _keep_room_to_resume(population: Population, snapshot: SiteSnapshot, timing: Timing) -> None:
    """Leave room for one suspended EV to draw its pilot again.

    A suspended EV is not counted in the site's load, but its pilot stays at the minimum current, and it
    may start drawing again at any moment: until the next reading shows it, nothing else makes room for it.
    Several resuming in the same reading interval is unlikely; one is not, so the largest pilot is kept free.
    """
    min_current_a = snapshot.config.min_current_a
    idle = [entry for entry in population.evs if entry.idle]
    if not idle or min_current_a <= 0:
        return
    largest = max(idle, key=lambda entry: entry.ev.phases)
    population.uncontrolled.append(
        UncontrolledLoad(
            largest.station_id,
            largest.evse_id,
            kw_from_amps(min_current_a, largest.ev.voltage, largest.ev.phases),
            largest.ev.phases,
            timing.now + OVERSTAY_SLOTS * timing.resolution,
            "room kept for a suspended EV to resume at its pilot",
            transaction_id=largest.transaction_id,
        )
    )


def _add_session(
    population: Population,
    snapshot: SiteSnapshot,
    station: StationInfo,
    session: SessionInfo,
    timing: Timing,
    meters: LiveMeters,
    deviations: Deviations,
) -> None:
    config = snapshot.config
    voltage = config.voltage_v
    needs = session.needs
    live = meters.get(session.station_id, session.evse_id)
    # What the meter shows beats what the EV said (ISO 15118), which beats the default guess.
    said = needs.phases if needs is not None else None
    phases = (live.phases if live is not None else None) or session.phases_used or said or DEFAULT_PHASES
    phases = min(max(int(phases), 1), 3)
    currents = [DEFAULT_EVSE_MAX_CURRENT_A]
    if session.cable_max_current_a:
        currents.append(session.cable_max_current_a)
    if needs is not None and needs.ev_max_current_a:
        currents.append(needs.ev_max_current_a)
    max_kw = kw_from_amps(min(currents), voltage, phases)
    if needs is not None and needs.ev_max_power_w:
        max_kw = min(max_kw, needs.ev_max_power_w / 1000.0) if not needs.dc else needs.ev_max_power_w / 1000.0
    min_kw = kw_from_amps(needs.ev_min_current_a, voltage, phases) if needs and needs.ev_min_current_a else 0.0

    departure, departure_source = _departure(session, config.default_dwell_s, timing)
    requested, energy_source = _energy_wanted(session, config.default_energy_kwh)

    reason = _uncontrolled_reason(station, session)
    if reason is not None:
        measured = live.measured_kw(voltage) if live is not None else None
        population.uncontrolled.append(
            UncontrolledLoad(
                session.station_id,
                session.evse_id,
                max(max_kw, measured or 0.0),
                phases,
                departure,
                reason,
                transaction_id=session.transaction_id,
            )
        )
        return

    open_ended = departure_source == "site"
    if open_ended:
        soon = timing.now + OPEN_DEPARTURE_SLOTS * timing.resolution
        if departure > soon:
            departure, departure_source = soon, "site+soon"
    if departure < timing.now + OVERSTAY_SLOTS * timing.resolution:
        # Still plugged in after it was expected to leave: it stays a little longer, planned again
        # every cycle, rather than being paused by a plan that thinks it has gone.
        departure = timing.now + OVERSTAY_SLOTS * timing.resolution
        departure_source += "+overstay"
    # A plugged-in EV is planned in whole slots, from the current slot's start to the end of the slot it
    # leaves in. A profile's limit in a slot is then the slot's planned power itself, so profiles whose
    # plans fit the site limit on average fit it at every instant (an EV present for part of a slot would
    # get a higher rate for that part, on top of the others' averages).
    departure = timing.now + math.ceil((departure - timing.now) / timing.resolution) * timing.resolution
    cap = deviations.get(session.transaction_id)
    capped = None
    idle = cap is not None and cap.idle
    energy = timing.scale.energy(requested)
    if idle:
        # It suspended itself (full): planned at nothing so its room goes to the others; the translation
        # still holds its pilot at the minimum, and it is counted again once it draws.
        assert cap is not None
        max_kw = min_kw = energy = 0.0
        capped = cap.reason
    elif cap is not None and cap.kw < max_kw:
        max_kw, capped = max(cap.kw, min_kw), cap.reason
    if departure_source == "site+soon":
        # Planned only up to its guessed departure: what it could take by then is all it asks of this plan,
        # so the plan shows a shortfall only when the site cannot give it that.
        energy = min(energy, max_kw * (departure - timing.now).total_seconds() / 3600.0)
    ev = EV(
        ev_id=session_ev_id(session.transaction_id),
        active=True,
        station_id=session.station_id,
        connector_id=session.evse_id,
        min_power=min(min_kw, max_kw),
        max_power=max_kw,
        arrival_time=timing.now,
        departure_time=departure,
        energy=energy,
        unit=ChargingRateUnit.W,
        voltage=voltage,
        phases=phases,
        # The phases its meter names (a one-phase EV on L3 loads L3, not L1); L1.. in order otherwise.
        phase_map=live.phase_names if live is not None and live.phase_names and len(live.phase_names) == phases else (),
    )
    population.evs.append(
        PlannedEv(
            ev,
            session.station_id,
            session.evse_id,
            transaction_id=session.transaction_id,
            requested_kwh=requested,
            energy_source=energy_source,
            departure_source=departure_source,
            dc=needs.dc if needs is not None else False,
            max_schedule_tuples=needs.max_schedule_tuples if needs is not None else None,
            capped=capped,
            idle=idle,
            open_ended=open_ended,
        )
    )


def _uncontrolled_reason(station: StationInfo, session: SessionInfo) -> str | None:
    if session.uncontrolled_reason:
        return session.uncontrolled_reason
    if not station.connected:
        return "the station is not connected (or not set up yet)"
    if not station.capabilities_read:
        return "the station's capabilities are being read"
    if not station.capabilities.controllable:
        return station.note or "smart charging is off on the station"
    return None


def _departure(session: SessionInfo, default_dwell_s: int, timing: Timing) -> tuple[datetime, str]:
    """When the EV leaves: as the EV said, else as set for the session, else after the site's dwell."""
    if session.needs is not None and session.needs.departure_time is not None:
        return session.needs.departure_time, "ev"
    if session.departure_at is not None:
        return session.departure_at, "session"
    return session.started_at + timing.scale.duration(default_dwell_s), "site"


def _energy_wanted(session: SessionInfo, default_kwh: float) -> tuple[float, str]:
    """Energy still wanted (site units, kWh): what the EV asked for less what it got since it asked, else
    the session's target, else the site's default, less what was delivered."""
    needs = session.needs
    if needs is not None and needs.energy_amount_wh is not None:
        since = 0.0
        if session.register_wh is not None:
            at_needs = needs.register_wh if needs.register_wh is not None else session.meter_start_wh
            since = max(session.register_wh - (at_needs or session.register_wh), 0.0) / 1000.0
        return max(needs.energy_amount_wh / 1000.0 - since, 0.0), "ev"
    if session.energy_target_kwh is not None:
        return max(session.energy_target_kwh - session.delivered_kwh, 0.0), "session"
    return max(default_kwh - session.delivered_kwh, 0.0), "site"


def _add_reservation(
    population: Population,
    snapshot: SiteSnapshot,
    station: StationInfo,
    reservation: ReservationInfo,
    timing: Timing,
) -> None:
    config = snapshot.config
    arrival = max(reservation.starts_at or timing.now, timing.now)
    departure = max(reservation.expires_at, arrival + timing.scale.duration(config.default_dwell_s))
    max_kw = kw_from_amps(DEFAULT_EVSE_MAX_CURRENT_A, config.voltage_v, DEFAULT_PHASES)
    requested = reservation.energy_kwh if reservation.energy_kwh is not None else config.default_energy_kwh
    if station.capabilities_read and not station.capabilities.controllable:
        # Its EV will charge unsteered: hold its maximum from its expected arrival.
        population.uncontrolled.append(
            UncontrolledLoad(
                reservation.station_id,
                reservation.evse_id,
                max_kw,
                DEFAULT_PHASES,
                departure,
                station.note or "smart charging is off on the station",
                reservation_id=reservation.id,
                start=arrival,
            )
        )
        return
    ev = EV(
        ev_id=reservation_ev_id(reservation.id),
        active=False,
        station_id=reservation.station_id,
        connector_id=reservation.evse_id,
        min_power=0.0,
        max_power=max_kw,
        arrival_time=arrival,
        departure_time=departure,
        energy=timing.scale.energy(requested),
        unit=ChargingRateUnit.W,
        voltage=config.voltage_v,
        phases=DEFAULT_PHASES,
    )
    population.evs.append(
        PlannedEv(
            ev,
            reservation.station_id,
            reservation.evse_id,
            reservation_id=reservation.id,
            requested_kwh=requested,
            energy_source="reservation" if reservation.energy_kwh is not None else "site",
            departure_source="reservation",
        )
    )
