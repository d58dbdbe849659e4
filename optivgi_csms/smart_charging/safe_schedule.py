"""The schedule a cycle falls back on when its algorithm fails or takes too long: equal shares.

Nothing clever, so nothing to go wrong: in each slot the EVs that can charge get the same power, capped by
what each can take, as high as the site's limit and every phase's limit allow. When that share is below an
EV's minimum (the minimum-current rule), fewer EVs charge: the ones first in line (sessions before
reservations, then in the order the cycle lists them) keep power and the others wait, rather than everyone
getting a current the EVs would not accept. The result goes through the same safety net as every algorithm
(:func:`~optivgi_csms.scheduling.feasibility.make_valid`), so it can only be lowered, never break a limit.
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.algorithm import Algorithm, Solution
from optivgi_csms.scheduling.problem import Problem

#: Bisection steps on the share; 60 halve a kW range far below a milliwatt.
_STEPS = 60
#: Relative slack for "at its minimum" and "within a limit" (floating point only).
_EPS = 1e-9


class EqualShareAlgorithm(Algorithm):
    """Equal shares within every limit (see the module docstring); ``reason`` says why it is used."""

    name = "equal-share"

    def __init__(self, *args: object, reason: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.reason = reason

    def solve(self, problem: Problem) -> Solution:
        """Each slot's equal shares; slots with the same EVs and limits are computed once."""
        power = np.zeros((problem.n_evs, problem.n_slots))
        order = np.lexsort((np.arange(problem.n_evs), ~problem.active))  # sessions first, then as listed
        done: dict[bytes, np.ndarray] = {}
        for t in range(problem.n_slots):
            cap, lo, limits = problem.cap[:, t], problem.lo[:, t], problem.slot_limits[:, t]
            key = cap.tobytes() + lo.tobytes() + limits.tobytes()
            column = done.get(key)
            if column is None:
                column = done[key] = _slot_shares(problem.slot_coef, limits, cap, lo, order)
            power[:, t] = column
        notes = (f"equal shares: {self.reason}",) if self.reason else ("equal shares",)
        return Solution(power, status="fallback", notes=notes, path="equal-share")


def _slot_shares(
    coef: np.ndarray, limits: np.ndarray, cap: np.ndarray, lo: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """One slot: the largest equal share for as many EVs (in ``order``) as can each get their minimum."""
    candidates = [i for i in order if cap[i] > 0]
    # The more EVs charge, the smaller the share: find the most that still all reach their minimum.
    low, high = 0, len(candidates)
    best = np.zeros(len(cap))
    while low <= high:
        k = (low + high) // 2
        chosen = np.array(candidates[:k], dtype=int)
        shares = _equal_share(coef, limits, cap, chosen)
        if k == 0 or np.all(shares[chosen] >= lo[chosen] * (1 - _EPS)):
            best = shares
            low = k + 1
        else:
            high = k - 1
    return best


def _equal_share(coef: np.ndarray, limits: np.ndarray, cap: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """``min(cap, x)`` for the chosen EVs, with ``x`` as high as every slot constraint allows (bisection: the
    load only grows with ``x``)."""
    shares = np.zeros(len(cap))
    if len(chosen) == 0:
        return shares

    def fits(x: float) -> bool:
        shares[:] = 0.0
        shares[chosen] = np.minimum(cap[chosen], x)
        return bool(np.all(coef.T @ shares <= limits * (1 + _EPS) + _EPS))

    low, high = 0.0, float(cap[chosen].max())
    if not fits(high):
        for _ in range(_STEPS):
            middle = (low + high) / 2
            if fits(middle):
                low = middle
            else:
                high = middle
        high = low
    fits(high)
    return shares.copy()
