"""The current plan of a site, per EV and slot: what an operator reads to see who gets what, and when.

Powers are physical (kW); energies are in the site's own units (with a rehearsal ``time_scale`` they
are scenario kWh, as the meters count them); slot times are wall times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from optivgi_csms.scheduling import ScheduleResult
from optivgi_csms.smart_charging.evs import UncontrolledLoad
from optivgi_csms.smart_charging.translation import CycleInputs


@dataclass(frozen=True, slots=True)
class EvPlan:
    """One EV's plan: its power in every slot and what it was planned from."""

    ev_id: str | int
    station_id: str
    evse_id: int
    transaction_id: int | None
    reservation_id: int | None
    active: bool
    arrival: datetime
    departure: datetime
    #: Energy still wanted when planned (site units, kWh), and where the target came from.
    requested_kwh: float
    #: Energy the plan gives it over the horizon (site units, kWh).
    planned_kwh: float
    max_kw: float
    phases: int
    power_kw: tuple[float, ...]
    energy_source: str
    departure_source: str
    capped: str | None = None


@dataclass(frozen=True, slots=True)
class SitePlan:
    """A site's plan from ``start``, one value per slot of ``resolution`` (wall time)."""

    site_id: str
    computed_at: datetime
    algorithm: str
    status: str
    start: datetime
    resolution: timedelta
    #: The limit the plan was held under in each slot (kW), after room for uncontrolled load.
    limit_kw: tuple[float, ...]
    evs: tuple[EvPlan, ...]
    uncontrolled: tuple[UncontrolledLoad, ...]
    notes: tuple[str, ...] = ()

    @property
    def slot_starts(self) -> list[datetime]:
        """Start of every slot."""
        return [self.start + k * self.resolution for k in range(len(self.limit_kw))]

    @property
    def total_kw(self) -> list[float]:
        """The planned power of the whole site in each slot, kW."""
        return [sum(ev.power_kw[k] for ev in self.evs) for k in range(len(self.limit_kw))]

    def ev(self, ev_id: str | int) -> EvPlan | None:
        """An EV's plan by its id (``tx-<transaction>`` or ``res-<reservation>``)."""
        return next((ev for ev in self.evs if ev.ev_id == ev_id), None)

    def of_transaction(self, transaction_id: int) -> EvPlan | None:
        """The plan of a session."""
        return next((ev for ev in self.evs if ev.transaction_id == transaction_id), None)

    def power_at(self, ev_id: str | int, moment: datetime) -> float:
        """An EV's planned power at ``moment`` (0 outside the plan), kW."""
        plan = self.ev(ev_id)
        if plan is None or moment < self.start:
            return 0.0
        k = int((moment - self.start) / self.resolution)
        return plan.power_kw[k] if k < len(plan.power_kw) else 0.0


def site_plan(inputs: CycleInputs, result: ScheduleResult, computed_at: datetime) -> SitePlan:
    """The plan of a cycle's result."""
    scale = inputs.timing.scale
    hours = inputs.timing.resolution.total_seconds() / 3600.0
    rows = {ev_id: row for ev_id, row in zip(result.problem.ev_ids, result.power_kw, strict=True)}
    evs = []
    for entry in inputs.population.evs:
        ev = entry.ev
        row = rows.get(ev.ev_id)
        powers = tuple(float(value) for value in row) if row is not None else ()
        evs.append(
            EvPlan(
                ev_id=ev.ev_id,
                station_id=entry.station_id,
                evse_id=entry.evse_id,
                transaction_id=entry.transaction_id,
                reservation_id=entry.reservation_id,
                active=ev.active,
                arrival=ev.arrival_time,
                departure=ev.departure_time,
                requested_kwh=entry.requested_kwh,
                planned_kwh=scale.site_energy(sum(powers) * hours),
                max_kw=ev.max_kw,
                phases=ev.phases,
                power_kw=powers,
                energy_source=entry.energy_source,
                departure_source=entry.departure_source,
                capped=entry.capped,
            )
        )
    return SitePlan(
        site_id=inputs.config.id,
        computed_at=computed_at,
        algorithm=result.algorithm,
        status=result.status,
        start=inputs.timing.now,
        resolution=inputs.timing.resolution,
        limit_kw=tuple(float(value) for value in result.problem.site_kw),
        evs=tuple(evs),
        uncontrolled=tuple(inputs.population.uncontrolled),
        notes=result.notes,
    )
