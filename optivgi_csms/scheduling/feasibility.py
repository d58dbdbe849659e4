"""Bringing any schedule within every limit of its problem: the safety net under every algorithm.

Our algorithms produce valid schedules up to floating-point noise; this module removes that noise and, for
an algorithm someone else wrote, cuts whatever breaks a limit. It only ever lowers power (never raises it),
so whatever it returns is valid: lowering cannot break an upper limit, and an EV lowered below its minimum
is set to 0.
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.problem import Problem

#: Powers below this are noise (1 mW).
ZERO_KW = 1e-6
#: Floating-point slack below which a sum is not "over" its limit (far inside validate's tolerance).
SLACK = 1e-9


def slot_loads(problem: Problem, power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per slot: the site load (T,) in kW and each limited phase's current (P, T) in A."""
    return power.sum(axis=0), problem.phase_coef.T @ power


def make_valid(problem: Problem, power: np.ndarray) -> tuple[np.ndarray, int]:
    """A valid copy of ``power`` and how many EV-slot values had to change by more than noise."""
    original = np.asarray(power, dtype=float)
    if not np.isfinite(original).all():
        original = np.nan_to_num(original, nan=0.0, posinf=0.0, neginf=0.0)
    p = np.minimum(np.maximum(original, 0.0), problem.cap)
    p[p < np.maximum(problem.lo * (1 - 1e-9), ZERO_KW)] = 0.0
    _cap_energy(problem, p)
    _cap_slots(problem, p)
    changed = int(np.count_nonzero(np.abs(p - original) > 1e-6))
    return p, changed


def _cap_energy(problem: Problem, p: np.ndarray) -> None:
    """Trim each EV's latest power until it asks for no more than its energy."""
    dt = problem.dt_h
    for i in np.nonzero(p.sum(axis=1) * dt > problem.energy_kwh + SLACK)[0]:
        allowed = problem.energy_kwh[i]
        kept = 0.0
        for t in np.nonzero(p[i] > 0)[0]:
            room = max(allowed - kept, 0.0) / dt
            if p[i, t] > room:
                p[i, t] = room if room >= problem.lo[i, t] * (1 - 1e-9) and room > ZERO_KW else 0.0
            kept += p[i, t] * dt


def _cap_slots(problem: Problem, p: np.ndarray) -> None:
    """Lower the EVs of any slot whose site or phase load is over its limit."""
    site, phases = slot_loads(problem, p)
    bad = (site > problem.site_kw + SLACK) | (phases > problem.phase_limit_a[:, None] + SLACK).any(axis=0)
    lo = problem.lo
    for t in np.nonzero(bad)[0]:
        # Constraint rows of this slot: the site (coefficient 1) and each limited phase.
        coef, limit = problem.slot_coef, problem.slot_limits[:, t]
        while True:
            load = coef.T @ p[:, t]
            excess = load - limit
            worst = int(np.argmax(excess / np.maximum(limit, 1e-9)))
            if excess[worst] <= SLACK:
                break
            on = np.nonzero((p[:, t] > 0) & (coef[:, worst] > 0))[0]
            margin = p[on, t] - lo[on, t]
            # Take from the EV with the most room above its minimum; when nobody has room, switch off
            # the smallest EV (dropping one EV is better than starving all of them below 6 A).
            j = on[int(np.argmax(margin))]
            need = excess[worst] / coef[j, worst] * (1 + 1e-9) + 1e-12
            if p[j, t] - need >= lo[j, t] and p[j, t] - need > ZERO_KW:
                p[j, t] -= need
            elif margin.max() > 1e-12 and lo[j, t] > 0:
                p[j, t] = lo[j, t]
            else:
                p[on[int(np.argmin(p[on, t]))], t] = 0.0
