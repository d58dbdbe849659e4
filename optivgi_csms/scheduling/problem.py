"""The scheduling problem discretised into slots, as numpy arrays every algorithm works on.

Slot ``k`` is ``[now + k·resolution, now + (k+1)·resolution)``. An EV's presence in a slot is the fraction
``f`` of the slot inside its window; its power there is bounded by ``max_kw·f`` and, when positive, from
below by ``min_kw·f`` (the larger of its own minimum and the site's minimum current). Bad-but-legal inputs
(negative or NaN numbers, departed EVs, minimums above maximums) are mapped to "cannot charge" here and
recorded, so no algorithm has to defend against them again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property

import numpy as np

from optivgi_csms.scheduling.ev import EV, kw_from_amps, require_aware
from optivgi_csms.scheduling.site import Site


class Blocked(StrEnum):
    """Why an EV cannot charge at all in this problem."""

    NO_WINDOW = "no part of its window lies in the horizon"
    NO_POWER = "its maximum power is zero"
    MIN_ABOVE_MAX = "its minimum charging power is above its maximum"
    INVALID = "its voltage, phases or powers are not usable numbers"


def _finite_nonneg(value: float) -> float:
    return float(value) if math.isfinite(value) and value > 0 else 0.0


@dataclass(frozen=True, eq=False)
class Problem:
    """One scheduling problem: ``n`` EVs × ``T`` slots (see the module docstring for the meaning)."""

    now: datetime
    resolution: timedelta
    ev_ids: tuple[str | int, ...]
    active: np.ndarray  # (n,) bool: plugged in now
    energy_kwh: np.ndarray  # (n,) energy still wanted, ≥ 0
    max_kw: np.ndarray  # (n,) ≥ 0 (0 for blocked EVs)
    min_kw: np.ndarray  # (n,) minimum while charging, ≥ 0
    frac: np.ndarray  # (n, T) part of each slot inside the EV's window
    site_kw: np.ndarray  # (T,) site limit per slot, ≥ 0
    phase_names: tuple[str, ...]
    phase_limit_a: np.ndarray  # (P,) per-phase current limit, ≥ 0
    phase_coef: np.ndarray  # (n, P) A drawn on each limited phase per kW of the EV
    price: np.ndarray | None  # (T,) price per kWh, or None
    blocked: tuple[Blocked | None, ...]  # (n,) why an EV cannot charge, or None

    @property
    def n_evs(self) -> int:
        """Number of EVs."""
        return len(self.ev_ids)

    @property
    def n_slots(self) -> int:
        """Number of slots."""
        return len(self.site_kw)

    @property
    def dt_h(self) -> float:
        """Slot length in hours (kW × dt_h = kWh)."""
        return self.resolution.total_seconds() / 3600.0

    @cached_property
    def cap(self) -> np.ndarray:
        """(n, T) upper bound of each EV's power in each slot, kW."""
        return self.max_kw[:, None] * self.frac

    @cached_property
    def lo(self) -> np.ndarray:
        """(n, T) lowest positive power allowed in each slot (the minimum-current rule), kW."""
        return self.min_kw[:, None] * self.frac

    @cached_property
    def slot_coef(self) -> np.ndarray:
        """(n, 1+P) load an EV puts on each slot constraint per kW: 1 on the site, A on each phase."""
        return np.column_stack([np.ones(self.n_evs), self.phase_coef])

    @cached_property
    def slot_limits(self) -> np.ndarray:
        """(1+P, T) each slot constraint's limit: the site's kW, then each phase's A."""
        phases = np.repeat(self.phase_limit_a[:, None], self.n_slots, axis=1)
        return np.vstack([self.site_kw[None, :], phases])

    @property
    def slot_starts(self) -> list[datetime]:
        """Start of every slot."""
        return [self.now + k * self.resolution for k in range(self.n_slots)]

    @property
    def has_prices(self) -> bool:
        """True when prices differ between slots (a constant price cannot change the best schedule)."""
        return self.price is not None and bool(np.ptp(self.price) > 0)

    @classmethod
    def build(
        cls,
        evs: Sequence[EV],
        site: Site,
        now: datetime,
        resolution: timedelta,
        n_slots: int,
    ) -> Problem:
        """Discretise ``evs`` on ``site`` over ``n_slots`` slots of ``resolution`` from ``now``."""
        require_aware(now, "now")
        if resolution <= timedelta(0):
            raise ValueError(f"resolution must be positive, got {resolution}")
        n_slots = max(int(n_slots), 0)
        n = len(evs)
        res_s = resolution.total_seconds()
        starts = [now + k * resolution for k in range(n_slots)]

        energy = np.zeros(n)
        max_kw = np.zeros(n)
        min_kw = np.zeros(n)
        begin = np.zeros(n)  # window in slot units, clipped to the horizon
        end = np.zeros(n)
        blocked: list[Blocked | None] = [None] * n
        phase_names = tuple(sorted(site.phase_limit_a))
        phase_coef = np.zeros((n, len(phase_names)))
        min_current = _finite_nonneg(site.min_current_a)

        for i, ev in enumerate(evs):
            voltage, phases = ev.voltage, ev.phases
            if not (math.isfinite(voltage) and voltage > 0 and phases in (1, 2, 3)):
                blocked[i] = Blocked.INVALID
                continue
            try:
                energy[i] = _finite_nonneg(ev.energy_kwh)
                max_kw[i] = _finite_nonneg(ev.max_kw)
                own_min = _finite_nonneg(ev.min_kw)
            except (TypeError, ValueError, OverflowError):
                blocked[i] = Blocked.INVALID
                continue
            min_kw[i] = max(own_min, kw_from_amps(min_current, voltage, phases))
            a = (ev.arrival_time - now).total_seconds() / res_s
            d = (ev.departure_time - now).total_seconds() / res_s
            if not ev.active:
                # A reservation is not plugged in yet: if it is overdue, plan it from the next slot, since
                # it cannot draw power in the slot being applied now.
                a = max(a, 1.0) if a <= 0 else a
            begin[i], end[i] = max(a, 0.0), min(d, float(n_slots))
            for p, name in enumerate(phase_names):
                if name in ev.phase_map:
                    phase_coef[i, p] = 1000.0 / (voltage * phases)
            if end[i] <= begin[i]:
                blocked[i] = Blocked.NO_WINDOW
            elif max_kw[i] <= 0:
                blocked[i] = Blocked.NO_POWER
            elif min_kw[i] > max_kw[i] * (1 + 1e-9):
                blocked[i] = Blocked.MIN_ABOVE_MAX
            min_kw[i] = min(min_kw[i], max_kw[i])

        k = np.arange(n_slots, dtype=float)
        frac = np.clip(np.minimum(end[:, None], k + 1) - np.maximum(begin[:, None], k), 0.0, 1.0)
        frac[frac < 1e-9] = 0.0
        for i, reason in enumerate(blocked):
            if reason is not None:
                frac[i] = 0.0
                max_kw[i] = 0.0

        site_kw = np.nan_to_num(site.limits_kw(starts), nan=0.0, posinf=0.0)
        prices = site.prices(starts)
        if prices is not None:
            prices = np.nan_to_num(prices, nan=0.0)
        phase_limits = np.array([_finite_nonneg(float(site.phase_limit_a[name])) for name in phase_names], dtype=float)
        return cls(
            now=now,
            resolution=resolution,
            ev_ids=tuple(ev.ev_id for ev in evs),
            active=np.array([bool(ev.active) for ev in evs], dtype=bool),
            energy_kwh=energy,
            max_kw=max_kw,
            min_kw=min_kw,
            frac=frac.reshape(n, n_slots),
            site_kw=np.maximum(site_kw, 0.0),
            phase_names=phase_names,
            phase_limit_a=phase_limits,
            phase_coef=phase_coef,
            price=prices,
            blocked=tuple(blocked),
        )

    def window_slots(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ev, slot)`` index arrays of every pair where an EV could charge, grouped by EV, then time."""
        ev, slot = np.nonzero(self.frac > 0)
        return ev, slot
