"""The live plan's next slots spread over the EVs that are to charge in them, rather than concentrated.

The scheduler's plan is a vertex of its LP: among EVs with the same priority it gives a few of them their
full power in one slot and the others nothing, and which few changes from one cycle to the next. Live, that
is costly. Every EV the plan switches on is first offered the station's maximum, which an EV with a
smaller on-board charger cannot take; the power it leaves is lost until its meter is read and the site
planned again. And EVs switched off and on every slot is what real EVs handle worst.

So, before the profiles go out, the power the plan gives each group of EVs in each of the next
:data:`SPREAD_SLOTS` slots is shared out again among the group's EVs in proportion to what the plan gives
each over those slots, never above what an EV may take and never between 0 and its minimum. A group is the
EVs that load the same phases in the same way, so the load of every phase, the site's total per slot and
the bill are exactly the plan's; each EV's energy over those slots stays close to the plan's (the same when
the group's total is the same in each slot). EVs that have not arrived (reservations) keep their plan.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from optivgi_csms.scheduling.problem import Problem

#: The plan's next slots whose power is spread (one hour of 15-minute slots).
SPREAD_SLOTS = 4
#: Powers below this (kW) are no power.
EPS_KW = 1e-6
_BISECTIONS = 60


def spread(problem: Problem, power_kw: np.ndarray, min_kw: np.ndarray) -> np.ndarray:
    """``power_kw`` (EVs × slots, kW) with its first slots shared out evenly within each group of EVs;
    ``min_kw`` is each EV's lowest charging power (the site's minimum current on its phases)."""
    out = power_kw.copy()
    window = min(SPREAD_SLOTS, power_kw.shape[1])
    if window == 0:
        return out
    groups: dict[tuple[float, ...], list[int]] = defaultdict(list)
    for i in range(len(problem.ev_ids)):
        if problem.active[i] and problem.max_kw[i] > EPS_KW:
            groups[tuple(np.round(problem.phase_coef[i], 6))].append(i)
    for members in groups.values():
        index = np.asarray(members)
        weight = power_kw[index, :window].mean(axis=1)
        for k in range(window):
            presence = problem.frac[index, k]
            if ((presence > 1e-9) & (presence < 1.0 - 1e-9)).any():
                continue  # an EV leaving or arriving within the slot: keep the plan's exact powers there
            present = index[presence >= 1.0 - 1e-9]
            if present.size == 0:
                continue
            total = float(power_kw[present, k].sum())
            cap = np.minimum(problem.max_kw[present], problem.energy_kwh[present] / problem.dt_h)
            shared = _share(total, weight[presence >= 1.0 - 1e-9], cap, np.minimum(min_kw[present], cap))
            if shared is not None:
                out[present, k] = shared
    return out


def _share(total: float, weight: np.ndarray, cap: np.ndarray, floor: np.ndarray) -> np.ndarray | None:
    """``total`` shared in proportion to ``weight``, each between its ``floor`` and ``cap`` (or 0 when it
    is left out); None when it cannot be shared so."""
    if total <= EPS_KW:
        return np.zeros_like(weight)
    taking = (weight > EPS_KW) & (cap > EPS_KW)
    while taking.any():
        if float(floor[taking].sum()) <= total + EPS_KW and float(cap[taking].sum()) >= total - EPS_KW:
            low, high = 0.0, float((cap[taking] / weight[taking]).max())
            for _ in range(_BISECTIONS):
                middle = (low + high) / 2
                given = np.clip(middle * weight[taking], floor[taking], cap[taking]).sum()
                low, high = (middle, high) if given < total else (low, middle)
            result = np.zeros_like(weight)
            result[taking] = np.clip(high * weight[taking], floor[taking], cap[taking])
            return result * (total / float(result.sum()))
        if float(floor[taking].sum()) > total + EPS_KW:
            # Not enough for every EV's minimum: the one the plan gives least goes without in this slot.
            candidates = np.flatnonzero(taking)
            taking[candidates[np.argmin(weight[candidates])]] = False
            continue
        return None  # they cannot take it all (cannot happen for a valid plan)
    return None
