"""The models of ``/api/v1/sites``: settings in and out, the plan per EV and slot, the recorded cycles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from optivgi_csms.api.schemas.text import FreeText
from optivgi_csms.api.schemas.times import ApiTime
from optivgi_csms.domain.site import ALGORITHMS, LimitStep, SiteConfig
from optivgi_csms.smart_charging.plan import SitePlan
from optivgi_csms.store.models import SchedulingCycle

#: The scheduling core's algorithms, by name (the default first).
Algorithm = StrEnum("Algorithm", {name.upper(): name for name in ALGORITHMS})  # type: ignore[misc]

_DEFAULTS = SiteConfig(id="defaults")
#: Generous bounds: a site connection of a gigawatt, a week of horizon, a month of default stay.
MAX_KW = 1_000_000.0
MAX_PHASE_A = 100_000.0
MAX_PRICE = 1_000_000.0
MAX_STEPS = 1000
MAX_HORIZON_S = 7 * 24 * 3600
MAX_DWELL_S = 31 * 24 * 3600
MAX_ENERGY_KWH = 1000.0
SITE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"


class LimitStepIn(BaseModel):
    """From ``start`` on (until the next step) the site may draw at most ``limit_kw``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    start: ApiTime
    limit_kw: float = Field(ge=0, le=MAX_KW)


class PriceStepIn(BaseModel):
    """From ``start`` on (until the next step) energy costs ``price`` per kWh (any currency; may be negative)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    start: ApiTime
    price: float = Field(ge=-MAX_PRICE, le=MAX_PRICE)


class PhaseLimits(BaseModel):
    """The most current the site may draw on each phase, A (a phase left out is not limited)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    L1: float | None = Field(default=None, ge=0, le=MAX_PHASE_A)
    L2: float | None = Field(default=None, ge=0, le=MAX_PHASE_A)
    L3: float | None = Field(default=None, ge=0, le=MAX_PHASE_A)

    def as_dict(self) -> dict[str, float]:
        """Only the phases that are limited."""
        return {phase: value for phase, value in self.model_dump().items() if value is not None}


class SiteSettings(BaseModel):
    """Every setting of a site; a setting left out takes its default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: FreeText = Field(default="", max_length=100)
    limit_kw: float | None = Field(default=None, ge=0, le=MAX_KW, description="the connection limit, kW (null: none)")
    limit_schedule: list[LimitStepIn] = Field(
        default_factory=list, max_length=MAX_STEPS, description="steps overriding limit_kw from their start on"
    )
    phase_limits_a: PhaseLimits = Field(default_factory=PhaseLimits)
    prices: list[PriceStepIn] = Field(
        default_factory=list, max_length=MAX_STEPS, description="the energy price as steps (empty: price plays no role)"
    )
    voltage_v: float = Field(default=_DEFAULTS.voltage_v, ge=100, le=1000, description="phase voltage, V")
    min_current_a: float = Field(
        default=_DEFAULTS.min_current_a, ge=0, le=32, description="the least current a charging EV is given, A"
    )
    default_dwell_s: int = Field(
        default=_DEFAULTS.default_dwell_s, ge=1, le=MAX_DWELL_S, description="assumed stay of an EV that says nothing"
    )
    default_energy_kwh: float = Field(
        default=_DEFAULTS.default_energy_kwh, ge=0, le=MAX_ENERGY_KWH, description="assumed energy wanted, kWh"
    )
    algorithm: Algorithm = Field(default=Algorithm(_DEFAULTS.algorithm), description="the scheduling algorithm")
    resolution_s: int = Field(default=_DEFAULTS.resolution_s, ge=1, le=MAX_HORIZON_S, description="slot length")
    horizon_s: int = Field(
        default=_DEFAULTS.horizon_s, ge=1, le=MAX_HORIZON_S, description="how far ahead it plans (at most 2000 slots)"
    )


class SiteCreate(SiteSettings):
    """A new site: its id and settings."""

    id: str = Field(min_length=1, max_length=48, pattern=SITE_ID_PATTERN, description="letters, digits, . _ : -")


class SitePatch(BaseModel):
    """Settings to change; those left out stay. Only ``limit_kw`` may be null (no constant limit)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: FreeText | None = Field(default=None, max_length=100)
    limit_kw: float | None = Field(default=None, ge=0, le=MAX_KW)
    limit_schedule: list[LimitStepIn] | None = Field(default=None, max_length=MAX_STEPS)
    phase_limits_a: PhaseLimits | None = None
    prices: list[PriceStepIn] | None = Field(default=None, max_length=MAX_STEPS)
    voltage_v: float | None = Field(default=None, ge=100, le=1000)
    min_current_a: float | None = Field(default=None, ge=0, le=32)
    default_dwell_s: int | None = Field(default=None, ge=1, le=MAX_DWELL_S)
    default_energy_kwh: float | None = Field(default=None, ge=0, le=MAX_ENERGY_KWH)
    algorithm: Algorithm | None = None
    resolution_s: int | None = Field(default=None, ge=1, le=MAX_HORIZON_S)
    horizon_s: int | None = Field(default=None, ge=1, le=MAX_HORIZON_S)

    def changes(self) -> dict[str, Any]:
        """The given settings as :class:`SiteConfig` fields; raises ``ValueError`` for a null that is not allowed."""
        given = self.model_fields_set
        changes: dict[str, Any] = {}
        for name in given:
            value = getattr(self, name)
            if value is None and name != "limit_kw":
                raise ValueError(f"{name}: may not be null (leave it out to keep it)")
            changes[name] = value
        return _config_fields(changes)


def _steps(items: list[LimitStepIn] | list[PriceStepIn], key: str, field: str) -> tuple[LimitStep, ...]:
    steps = sorted((LimitStep(item.start, getattr(item, key)) for item in items), key=lambda step: step.start)
    for before, after in pairwise(steps):
        if before.start == after.start:
            raise ValueError(f"{field}: two steps start at {after.start.isoformat()}")
    return tuple(steps)


def _config_fields(values: dict[str, Any]) -> dict[str, Any]:
    """API values (models, enums) as :class:`SiteConfig` field values."""
    fields = dict(values)
    if "limit_schedule" in fields:
        fields["limit_schedule"] = _steps(fields["limit_schedule"], "limit_kw", "limit_schedule")
    if "prices" in fields:
        fields["prices"] = _steps(fields["prices"], "price", "prices")
    if "phase_limits_a" in fields:
        fields["phase_limits_a"] = fields["phase_limits_a"].as_dict()
    if "algorithm" in fields:
        fields["algorithm"] = str(fields["algorithm"].value)
    return fields


def config_from(site_id: str, settings: SiteSettings) -> SiteConfig:
    """The site configuration these settings describe; raises ``ValueError`` naming the bad field."""
    values = {name: getattr(settings, name) for name in SiteSettings.model_fields}
    return SiteConfig(id=site_id, **_config_fields(values))


class StepOut(BaseModel):
    """A step of a schedule: ``value`` from ``start`` on."""

    start: datetime
    value: float


class SiteOut(BaseModel):
    """A site: its settings, its stations, and whether smart charging plans it."""

    id: str
    name: str
    limit_kw: float | None
    limit_schedule: list[StepOut] = Field(description="limit steps, kW")
    phase_limits_a: dict[str, float]
    prices: list[StepOut] = Field(description="price steps, per kWh")
    voltage_v: float
    min_current_a: float
    default_dwell_s: int
    default_energy_kwh: float
    algorithm: str
    resolution_s: int
    horizon_s: int
    controlled: bool = Field(description="whether there is anything to plan (a limit of some kind, or prices)")
    stations: list[str] = Field(description="ids of the stations that belong to it")

    @classmethod
    def of(cls, config: SiteConfig, stations: list[str]) -> SiteOut:
        """From a site's configuration."""
        return cls(
            id=config.id,
            name=config.name,
            limit_kw=config.limit_kw,
            limit_schedule=[StepOut(start=step.start, value=step.value) for step in config.limit_schedule],
            phase_limits_a=dict(config.phase_limits_a),
            prices=[StepOut(start=step.start, value=step.value) for step in config.prices],
            voltage_v=config.voltage_v,
            min_current_a=config.min_current_a,
            default_dwell_s=config.default_dwell_s,
            default_energy_kwh=config.default_energy_kwh,
            algorithm=config.algorithm,
            resolution_s=config.resolution_s,
            horizon_s=config.horizon_s,
            controlled=config.controlled,
            stations=stations,
        )


class SlotOut(BaseModel):
    """One slot of the plan: its start, the limit the plan held to, and the site's planned total."""

    start: datetime
    limit_kw: float = Field(description="the limit after room for uncontrolled load")
    total_kw: float = Field(description="the sum of every EV's planned power")


class EvPlanOut(BaseModel):
    """One EV's plan: a session (``tx-<id>``) or a reservation's EV still to come (``res-<id>``)."""

    ev_id: str
    station_id: str
    evse_id: int
    transaction_id: int | None
    reservation_id: int | None
    active: bool = Field(description="plugged in now (false: a reserved EV expected later)")
    arrival: datetime
    departure: datetime
    requested_kwh: float = Field(description="energy still wanted when planned")
    planned_kwh: float = Field(description="energy the plan gives it over the horizon")
    max_kw: float
    phases: int
    energy_source: str = Field(description="ev, session, reservation or site")
    departure_source: str = Field(description="ev, session, reservation or site (+overstay when it stayed on)")
    capped: str | None = Field(description="why its maximum is lowered, if it is")
    power_kw: list[float] = Field(description="its planned power in each slot")


class UncontrolledOut(BaseModel):
    """Load the site leaves room for because smart charging cannot steer it."""

    station_id: str
    evse_id: int
    transaction_id: int | None
    reservation_id: int | None
    kw: float
    start: datetime | None
    until: datetime
    reason: str


class PlanOut(BaseModel):
    """A site's current plan."""

    site_id: str
    available: bool = Field(description="false: no plan (before the first cycle, or nothing to plan)")
    note: str | None = Field(description="why there is no plan, when there is none")
    computed_at: datetime | None
    algorithm: str | None
    status: str | None = Field(description="the scheduler's status: optimal, feasible, heuristic, fallback")
    resolution_s: float | None
    slots: list[SlotOut]
    evs: list[EvPlanOut]
    uncontrolled: list[UncontrolledOut]
    notes: list[str]

    @classmethod
    def of(cls, site_id: str, plan: SitePlan | None, config: SiteConfig, slots: int | None) -> PlanOut:
        """From the controller's plan (``slots``: keep only the first ones)."""
        if plan is None:
            note = (
                "the site has no limit and no prices: nothing to plan"
                if not config.controlled
                else "no plan yet: the site's first cycle has not finished"
            )
            return cls(
                site_id=site_id,
                available=False,
                note=note,
                computed_at=None,
                algorithm=None,
                status=None,
                resolution_s=None,
                slots=[],
                evs=[],
                uncontrolled=[],
                notes=[],
            )
        count = len(plan.limit_kw) if slots is None else min(slots, len(plan.limit_kw))
        starts, totals = plan.slot_starts[:count], plan.total_kw[:count]
        return cls(
            site_id=site_id,
            available=True,
            note=None,
            computed_at=plan.computed_at,
            algorithm=plan.algorithm,
            status=plan.status,
            resolution_s=plan.resolution.total_seconds(),
            slots=[
                SlotOut(start=start, limit_kw=round(limit, 4), total_kw=round(total, 4))
                for start, limit, total in zip(starts, plan.limit_kw[:count], totals, strict=True)
            ],
            evs=[
                EvPlanOut(
                    ev_id=str(ev.ev_id),
                    station_id=ev.station_id,
                    evse_id=ev.evse_id,
                    transaction_id=ev.transaction_id,
                    reservation_id=ev.reservation_id,
                    active=ev.active,
                    arrival=ev.arrival,
                    departure=ev.departure,
                    requested_kwh=round(ev.requested_kwh, 4),
                    planned_kwh=round(ev.planned_kwh, 4),
                    max_kw=round(ev.max_kw, 3),
                    phases=ev.phases,
                    energy_source=ev.energy_source,
                    departure_source=ev.departure_source,
                    capped=ev.capped,
                    power_kw=[round(value, 4) for value in ev.power_kw[:count]],
                )
                for ev in plan.evs
            ],
            uncontrolled=[
                UncontrolledOut(
                    station_id=load.station_id,
                    evse_id=load.evse_id,
                    transaction_id=load.transaction_id,
                    reservation_id=load.reservation_id,
                    kw=round(load.kw, 3),
                    start=load.start,
                    until=load.until,
                    reason=load.reason,
                )
                for load in plan.uncontrolled
            ],
            notes=list(plan.notes),
        )


class CycleOut(BaseModel):
    """One recorded scheduling cycle."""

    id: int
    started_at: datetime
    trigger: dict[str, Any] = Field(description="the kinds of events that made it run, with their counts")
    algorithm: str
    status: str = Field(description="optimal, feasible, heuristic, fallback, or error")
    solve_s: float | None
    cycle_s: float | None
    summary: dict[str, Any] = Field(description="inputs and outcome in brief")
    evs: list[dict[str, Any]] = Field(description="one line per EV: needs, sources, plan, the profile's answer")
    error: str | None

    @classmethod
    def of(cls, row: SchedulingCycle) -> CycleOut:
        """From the cycle's record."""
        return cls(
            id=row.id,
            started_at=row.started_at,
            trigger=row.trigger or {},
            algorithm=row.algorithm,
            status=row.status,
            solve_s=row.solve_s,
            cycle_s=row.cycle_s,
            summary=row.summary or {},
            evs=list(row.evs or []),
            error=row.error,
        )
