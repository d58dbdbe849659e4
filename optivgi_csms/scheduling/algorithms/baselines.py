"""The classic baselines, for comparison: each serves EVs fully one after another, in its own order, slot
after slot. Unlike their textbook forms they never break a limit: an EV that does not fit (or would get
less than its minimum current) gets nothing in that slot.
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.algorithm import Algorithm, Solution
from optivgi_csms.scheduling.algorithms.greedy import run_slots, sorted_policy
from optivgi_csms.scheduling.problem import Problem


def _arrival(problem: Problem, t: int, present: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    # First slot with presence: first come, first served.
    return np.argmax(problem.frac[present] > 0, axis=1).astype(float)


def _departure(problem: Problem, t: int, present: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    # Last slot with presence, refined by the part of it the EV is still there.
    frac = problem.frac[present]
    last = frac.shape[1] - 1 - np.argmax(frac[:, ::-1] > 0, axis=1)
    return last + frac[np.arange(len(present)), last]


def _laxity(problem: Problem, t: int, present: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    # Hours the EV could stand idle and still finish at full power.
    window_h = problem.frac[present, t:].sum(axis=1) * problem.dt_h
    with np.errstate(divide="ignore", invalid="ignore"):
        needed_h = np.where(problem.max_kw[present] > 0, remaining[present] / problem.max_kw[present], np.inf)
    return window_h - needed_h


class UncontrolledAlgorithm(Algorithm):
    """Plug and charge at full power, first come first served, cut only where a limit would break."""

    name = "uncontrolled"

    def solve(self, problem: Problem) -> Solution:
        return Solution(run_slots(problem, sorted_policy(_arrival)), status="heuristic")


class EarliestDeadlineFirst(Algorithm):
    """Each slot, serve the EVs that leave first, at full power."""

    name = "edf"

    def solve(self, problem: Problem) -> Solution:
        return Solution(run_slots(problem, sorted_policy(_departure)), status="heuristic")


class LeastLaxityFirst(Algorithm):
    """Each slot, serve the EVs with the least time to spare, at full power."""

    name = "llf"

    def solve(self, problem: Problem) -> Solution:
        return Solution(run_slots(problem, sorted_policy(_laxity)), status="heuristic")
