"""Regrouping a schedule so that EVs charge early and in one block, changing nothing that was optimised.

The LP decides how much each slot loads the site and each phase, and how much each EV gets; many
schedules share those numbers, and a simplex vertex picks one arbitrarily, often with EVs switching on and
off (which some EVs handle badly). Among EVs that load the same phases, any exchange of power between
them within a slot leaves every slot's site and phase load, and every EV's energy, exactly as they were:
so energy, fairness, cost and peak stay optimal. This pass redistributes each slot's power of such a group
to its EVs in order of departure (earliest first, up to each EV's maximum and remaining energy, never below
its minimum), which charges each EV as early as possible, in one block. If the greedy order cannot place
some EV's energy, that group keeps the LP's own distribution.
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.algorithms.greedy import EPS_KW, allocate_in_order
from optivgi_csms.scheduling.algorithms.objectives import departure_slot
from optivgi_csms.scheduling.problem import Problem


def regroup_early(problem: Problem, power: np.ndarray) -> np.ndarray:
    """``power`` redistributed within phase groups, earliest departure first (see the module docstring)."""
    out = power.copy()
    if problem.n_evs < 2:
        return out
    _, group = np.unique(np.round(problem.phase_coef, 9), axis=0, return_inverse=True)
    group = np.asarray(group).ravel()
    depart = departure_slot(problem) + problem.frac[np.arange(problem.n_evs), departure_slot(problem)]
    for g in np.unique(group):
        members = np.nonzero(group == g)[0]
        if len(members) < 2:
            continue
        members = members[np.argsort(depart[members], kind="stable")]
        regrouped = _regroup(problem, power[members], members)
        if regrouped is not None:
            out[members] = regrouped
    return out


def _regroup(problem: Problem, block: np.ndarray, members: np.ndarray) -> np.ndarray | None:
    """Greedy redistribution of one group's slot totals, or ``None`` if some EV's energy does not fit."""
    cap, lo = problem.cap[members], problem.lo[members]
    need = block.sum(axis=1)  # kW·slots each EV must get back
    totals = block.sum(axis=0)
    # What each EV could still take after each slot, if it had the group's power to itself.
    after = np.cumsum(cap[:, ::-1], axis=1)[:, ::-1] - cap
    new = np.zeros_like(block)
    ones = np.ones((len(members), 1))
    for t in np.nonzero(totals > EPS_KW)[0]:
        want = np.minimum(cap[:, t], need)
        head = np.array([totals[t]])
        # First what an EV must get now to still be able to finish, then earliest departure first.
        must = np.clip(need - after[:, t], 0.0, want)
        give = allocate_in_order(np.where(must > EPS_KW, np.maximum(must, lo[:, t]), 0.0), lo[:, t], ones, head)
        give += allocate_in_order(want - give, np.where(give > 0, 0.0, lo[:, t]), ones, head)
        left = float(head[0])
        if left > 1e-9 and not _fix_remainder(give, want, lo[:, t], left):
            return None
        new[:, t] = give
        need = need - give
    if (np.abs(need) > 1e-6).any():
        return None
    return new


def _fix_remainder(give: np.ndarray, want: np.ndarray, lo: np.ndarray, left: float) -> bool:
    """Place a remainder ``left`` smaller than anyone's minimum: the next EV in order gets its minimum, the
    last EV served gives up the difference (staying at or above its own minimum). In place; True if done."""
    waiting = np.nonzero((give <= 0) & (want >= lo) & (lo > left))[0]
    served = np.nonzero(give > 0)[0]
    if not len(waiting) or not len(served):
        return False
    k, j = waiting[0], served[-1]
    shift = lo[k] - left
    if give[j] - shift < lo[j] or give[j] - shift <= EPS_KW:
        return False
    give[j] -= shift
    give[k] = lo[k]
    return True
