"""The site limits the scheduler plans within: the connection limit over time, per-phase current limits and
prices, less the load of everything smart charging does not control."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from optivgi_csms.domain.site import PHASES, SiteConfig
from optivgi_csms.scheduling import Site, Step
from optivgi_csms.scheduling.ev import amps_from_kw
from optivgi_csms.scheduling.site import sample_steps
from optivgi_csms.smart_charging.evs import UncontrolledLoad


def slot_count(horizon: timedelta, resolution: timedelta) -> int:
    """Slots in the horizon (the last one may reach past it)."""
    return max(math.ceil(horizon / resolution), 1)


def connection_limits_kw(config: SiteConfig, slot_starts: Sequence[datetime], unlimited_kw: float) -> list[float]:
    """The site's own limit at each slot start; ``unlimited_kw`` where it states none."""
    initial = config.limit_kw if config.limit_kw is not None else unlimited_kw
    steps = [Step(step.start, step.value) for step in config.limit_schedule]
    return [float(value) for value in sample_steps(initial, steps, slot_starts)]


def reserved_kw(
    loads: Sequence[UncontrolledLoad], slot_starts: Sequence[datetime], resolution: timedelta
) -> list[float]:
    """The uncontrolled load present at any moment of each slot, kW."""
    reserved = [0.0] * len(slot_starts)
    for load in loads:
        for k, start in enumerate(slot_starts):
            if load.until > start and (load.start is None or load.start < start + resolution):
                reserved[k] += load.kw
    return reserved


def planning_site(
    config: SiteConfig,
    loads: Sequence[UncontrolledLoad],
    now: datetime,
    resolution: timedelta,
    horizon: timedelta,
    unlimited_kw: float,
) -> Site:
    """The scheduler's :class:`Site` for one cycle: one limit per slot (the connection limit less the
    uncontrolled load), phase limits less the uncontrolled current on each phase, prices and the minimum
    current. ``unlimited_kw`` stands in for "no limit" (a value no plan can reach)."""
    slot_starts = [now + k * resolution for k in range(slot_count(horizon, resolution))]
    base = connection_limits_kw(config, slot_starts, unlimited_kw)
    held = reserved_kw(loads, slot_starts, resolution)
    limits = [max(limit - load, 0.0) for limit, load in zip(base, held, strict=True)]
    phase_limits = dict(config.phase_limits_a)
    for load in loads:
        if load.until <= now:
            continue
        current = amps_from_kw(load.kw, config.voltage_v, load.phases)
        for phase in PHASES[: load.phases]:
            if phase in phase_limits:
                phase_limits[phase] = max(phase_limits[phase] - current, 0.0)
    prices = tuple(Step(step.start, step.value) for step in config.prices) or None
    return Site.from_slot_limits(
        limits,
        now,
        resolution,
        phase_limit_a=phase_limits,
        price_per_kwh=prices,
        min_current_a=config.min_current_a,
        voltage_v=config.voltage_v,
    )
