"""The site an EV group shares: its power limit over time, optional per-phase current limits, energy
prices over time, the network voltage and the minimum charging current."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from optivgi_csms.scheduling.ev import DEFAULT_VOLTAGE_V, IEC_MIN_CURRENT_A, require_aware


@dataclass(frozen=True)
class Step:
    """From ``start`` on (until the next step), the value is ``value``."""

    start: datetime
    value: float


def sample_steps(initial: float, steps: Sequence[Step], moments: Sequence[datetime]) -> np.ndarray:
    """Evaluate a step function at each of ``moments`` (``initial`` before the first step)."""
    ordered = sorted(steps, key=lambda step: step.start)
    starts = np.array([step.start.timestamp() for step in ordered], dtype=float)
    values = np.array([step.value for step in ordered], dtype=float)
    at = np.array([moment.timestamp() for moment in moments], dtype=float)
    index = np.searchsorted(starts, at, side="right") - 1
    out = np.full(len(at), float(initial))
    if len(values):
        out[index >= 0] = values[index[index >= 0]]
    return out


@dataclass(frozen=True)
class Site:
    """Limits and prices shared by the EVs of one station group.

    ``limit_kw`` is the site limit; ``limit_kw_schedule`` overrides it from each step's start on. A slot is
    bound by the limit in force at its start. ``phase_limit_a`` caps the current on named phases (A).
    ``price_per_kwh`` is a step function of energy price (the first price also applies before its start);
    ``None`` means price plays no role. ``min_current_a`` is the IEC 61851 rule: an EV charging at all
    draws at least this per phase (0 disables it).
    """

    limit_kw: float
    limit_kw_schedule: tuple[Step, ...] = ()
    phase_limit_a: Mapping[str, float] = field(default_factory=dict)
    price_per_kwh: tuple[Step, ...] | None = None
    min_current_a: float = IEC_MIN_CURRENT_A
    voltage_v: float = DEFAULT_VOLTAGE_V

    def __post_init__(self) -> None:
        for step in (*self.limit_kw_schedule, *(self.price_per_kwh or ())):
            require_aware(step.start, "a step start")

    @classmethod
    def from_slot_limits(
        cls,
        limits_kw: Sequence[float],
        now: datetime,
        resolution: timedelta,
        **options: object,
    ) -> Site:
        """A site whose limit is given per slot, as Opti-VGI's ``peak_power_demand`` list is."""
        require_aware(now, "now")
        steps = tuple(Step(now + k * resolution, float(v)) for k, v in enumerate(limits_kw))
        initial = float(limits_kw[0]) if len(limits_kw) else 0.0
        return cls(limit_kw=initial, limit_kw_schedule=steps, **options)  # type: ignore[arg-type]

    def limits_kw(self, slot_starts: Sequence[datetime]) -> np.ndarray:
        """The site limit in force at each slot start, kW."""
        return sample_steps(self.limit_kw, self.limit_kw_schedule, slot_starts)

    def prices(self, slot_starts: Sequence[datetime]) -> np.ndarray | None:
        """The energy price at each slot start, or ``None`` when the site has no prices."""
        if not self.price_per_kwh:
            return None
        first = min(self.price_per_kwh, key=lambda step: step.start).value
        return sample_steps(first, self.price_per_kwh, slot_starts)
