"""GoAlgorithm: Opti-VGI's fast heuristic, rebuilt so that it never breaks a limit or over-delivers.

Slot after slot (earliest first), in three passes:

1. *Admission by urgency*: EVs in order of least time to spare get their minimum current, or what they
   must get now to still finish, if it fits. An EV that does not fit at its minimum gets nothing in this
   slot: with too little room, fewer EVs charge rather than anyone going below 6 A.
2. *Fair share*: the room left is water-filled over the admitted EVs: the same extra power for each until
   they are full.
3. *Leftovers*: whatever a phase limit kept from the common level goes to the most urgent EVs that can
   still take it.

An EV never gets more than it still needs, and is kept from ending up with a remainder too small to charge
at its minimum.
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.algorithm import Algorithm, Solution
from optivgi_csms.scheduling.algorithms.greedy import EPS_KW, allocate_in_order, fill_level, run_slots
from optivgi_csms.scheduling.problem import Problem


def go_schedule(problem: Problem) -> np.ndarray:
    """GoAlgorithm's powers (EVs × slots, kW) for ``problem``; always valid."""
    dt = problem.dt_h
    cap_all = problem.cap
    # Energy each EV could still take after slot t if it had the site to itself.
    after = np.zeros_like(cap_all)
    if problem.n_slots > 1:
        after[:, :-1] = np.cumsum(cap_all[:, ::-1], axis=1)[:, ::-1][:, 1:] * dt
    coef_all = problem.slot_coef

    def policy(problem: Problem, t: int, present: np.ndarray, remaining: np.ndarray, head: np.ndarray):
        cap, lo = cap_all[present, t], problem.lo[present, t]
        min_kw, rem = problem.min_kw[present], remaining[present]
        want = np.minimum(cap, rem / dt)
        # Do not leave a remainder below one slot at the minimum: it could never be delivered.
        leftover = rem / dt - want
        shorter = rem / dt - min_kw
        crumb = (leftover > EPS_KW) & (leftover < min_kw) & (shorter >= lo) & (shorter > EPS_KW)
        want = np.where(crumb, np.minimum(want, shorter), want)
        must = np.clip((rem - after[present, t]) / dt, 0.0, want)
        with np.errstate(divide="ignore", invalid="ignore"):
            spare_h = (after[present, t] + cap * dt - rem) / np.maximum(problem.max_kw[present], EPS_KW)
        order = np.argsort(spare_h, kind="stable")
        coef = coef_all[present[order]]
        want_o, lo_o = want[order], lo[order]

        given = allocate_in_order(np.minimum(np.maximum(lo_o, must[order]), want_o), lo_o, coef, head)
        admitted = (given > 0) | (lo_o <= EPS_KW)
        top = fill_level(np.where(admitted, want_o - given, 0.0), coef, head)
        given += top
        head -= coef.T @ top
        given += allocate_in_order(np.where(admitted, want_o - given, 0.0), np.zeros_like(given), coef, head)

        out = np.empty(len(present))
        out[order] = given
        return out

    return run_slots(problem, policy)


class GoAlgorithm(Algorithm):
    """Fast heuristic: urgency-first admission, fair water-filling, never over any limit."""

    name = "go"

    def solve(self, problem: Problem) -> Solution:
        return Solution(go_schedule(problem), status="heuristic")
