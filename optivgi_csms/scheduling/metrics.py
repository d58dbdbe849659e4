"""What a schedule achieves: energy, peak, cost, how evenly EVs are served and how often they restart."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from optivgi_csms.scheduling.problem import Problem

#: Power above which an EV counts as charging (1 W).
ON_KW = 1e-3


@dataclass(frozen=True)
class Metrics:
    """Figures of one schedule over the whole horizon. ``cost`` is ``None`` when the site has no prices;
    ``restarts`` counts how often a charging EV was paused and started again (on/off cycling)."""

    requested_kwh: float
    delivered_kwh: float
    peak_kw: float
    cost: float | None
    evs_fully_served: int
    min_served_fraction: float
    restarts: int

    def as_dict(self) -> dict[str, Any]:
        """Rounded for printing and JSON."""
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def compute_metrics(problem: Problem, power_kw: np.ndarray) -> Metrics:
    """The :class:`Metrics` of ``power_kw`` (EVs × slots, kW) on ``problem``."""
    dt = problem.dt_h
    delivered = power_kw.sum(axis=1) * dt
    requested = problem.energy_kwh
    served = delivered >= requested * (1 - 1e-6) - 1e-6
    asked = requested > 1e-9
    fractions = np.where(asked, delivered / np.where(asked, requested, 1.0), 1.0)
    on = power_kw > ON_KW
    starts = np.count_nonzero(on[:, 1:] & ~on[:, :-1], axis=1) + on[:, 0]
    cost = None
    if problem.price is not None:
        cost = float((power_kw.sum(axis=0) * problem.price).sum() * dt)
    return Metrics(
        requested_kwh=float(requested.sum()),
        delivered_kwh=float(delivered.sum()),
        peak_kw=float(power_kw.sum(axis=0).max(initial=0.0)),
        cost=cost,
        evs_fully_served=int(served.sum()),
        min_served_fraction=float(fractions.min(initial=1.0)),
        restarts=int(np.maximum(starts - 1, 0).sum()),
    )
