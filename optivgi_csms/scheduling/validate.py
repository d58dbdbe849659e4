"""An independent check of a schedule against every constraint of ``scenarios/FORMAT.md``.

It deliberately does not use :mod:`problem`: it recomputes presence fractions, minimums and limits from the
EVs and the site as the format defines them, so a bug in the discretisation cannot hide itself. Tests and
benchmarks run every algorithm's output through it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from optivgi_csms.scheduling.ev import EV, kw_from_amps
from optivgi_csms.scheduling.site import Site

#: Slack allowed for floating-point sums: far below anything a meter or a station could resolve.
TOL_KW = 1e-6
TOL_KWH = 1e-6


@dataclass(frozen=True)
class Violation:
    """One broken constraint: ``kind`` is ``nan``, ``negative``, ``max_power``, ``min_current``,
    ``energy``, ``site`` or ``phase:<name>``; ``excess`` is by how much (kW, kWh or A)."""

    kind: str
    ev_id: str | int | None
    slot: int | None
    excess: float


def _usable(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else 0.0


def validate(
    evs: Sequence[EV],
    site: Site,
    now: datetime,
    resolution: timedelta,
    power_kw: np.ndarray,
) -> list[Violation]:
    """Every violation of ``power_kw`` (EVs × slots, kW) against ``evs`` on ``site`` from ``now``."""
    power = np.asarray(power_kw, dtype=float)
    power = power.reshape(len(evs), power.shape[-1] if power.ndim else 0)
    n_slots = power.shape[1]
    res_s = resolution.total_seconds()
    dt_h = res_s / 3600.0
    starts = [now + k * resolution for k in range(n_slots)]
    out: list[Violation] = []

    for i, slot in zip(*np.nonzero(~np.isfinite(power)), strict=True):
        out.append(Violation("nan", evs[i].ev_id, int(slot), math.inf))
    power = np.nan_to_num(power, nan=0.0, posinf=0.0, neginf=0.0)
    for i, slot in zip(*np.nonzero(power < -TOL_KW), strict=True):
        out.append(Violation("negative", evs[i].ev_id, int(slot), float(-power[i, slot])))

    slot_begin = np.arange(n_slots) * res_s
    min_current = _usable(site.min_current_a)
    phase_amps = {name: np.zeros(n_slots) for name in site.phase_limit_a}
    for i, ev in enumerate(evs):
        row = power[i]
        usable_ev = math.isfinite(ev.voltage) and ev.voltage > 0 and ev.phases in (1, 2, 3)
        max_kw = _usable(ev.max_kw) if usable_ev else 0.0
        floor_kw = max(_usable(ev.min_kw), kw_from_amps(min_current, ev.voltage, ev.phases)) if usable_ev else 0
        arrival = (ev.arrival_time - now).total_seconds()
        departure = (ev.departure_time - now).total_seconds()
        inside = np.clip(np.minimum(departure, slot_begin + res_s) - np.maximum(arrival, slot_begin), 0, res_s)
        frac = inside / res_s
        over = row - max_kw * frac
        for slot in np.nonzero(over > TOL_KW)[0]:
            out.append(Violation("max_power", ev.ev_id, int(slot), float(over[slot])))
        under = floor_kw * frac - row
        for slot in np.nonzero((row > TOL_KW) & (under > TOL_KW))[0]:
            out.append(Violation("min_current", ev.ev_id, int(slot), float(under[slot])))
        wanted = _usable(ev.energy_kwh) if usable_ev else 0.0
        delivered = float(row.sum() * dt_h)
        if delivered > wanted + TOL_KWH:
            out.append(Violation("energy", ev.ev_id, None, delivered - wanted))
        if usable_ev:
            for name in ev.phase_map:
                if name in phase_amps:
                    phase_amps[name] += row * 1000.0 / (ev.voltage * ev.phases)

    site_kw = np.maximum(np.nan_to_num(site.limits_kw(starts), nan=0.0), 0.0)
    excess = power.sum(axis=0) - site_kw
    for slot in np.nonzero(excess > TOL_KW)[0]:
        out.append(Violation("site", None, int(slot), float(excess[slot])))
    for name, amps in phase_amps.items():
        excess = amps - _usable(float(site.phase_limit_a[name]))
        # Currents are larger numbers than powers: scale the slack so that it means the same thing.
        for slot in np.nonzero(excess > TOL_KW * 1000.0 / 100.0)[0]:
            out.append(Violation(f"phase:{name}", None, int(slot), float(excess[slot])))
    return out
