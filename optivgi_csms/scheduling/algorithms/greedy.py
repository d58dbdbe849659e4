"""Slot-by-slot allocation shared by the heuristics (GoAlgorithm and the classic baselines).

Each slot is allocated in time order, so energy goes out earliest first. Within a slot, the constraints are
the site limit and each limited phase: a matrix ``coef`` (EVs × constraints: 1 for the site, A per kW for a
phase) against ``head`` (what is left of each limit). Every allocation here checks ``head`` before it gives,
and gives an EV either 0 or at least its minimum, so no heuristic can break a limit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from optivgi_csms.scheduling.problem import Problem

#: Below this an allocation is noise (1 mW).
EPS_KW = 1e-6


def constraint_matrix(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """``coef`` (n, 1+P) and ``limits`` (1+P, T): the site and every limited phase as slot constraints."""
    return problem.slot_coef, problem.slot_limits


def room_for(coef: np.ndarray, head: np.ndarray) -> np.ndarray:
    """The most power each EV (row of ``coef``) could still get from ``head`` alone."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(coef > 0, np.maximum(head, 0.0)[None, :] / coef, np.inf)
    return ratio.min(axis=1)


def allocate_in_order(want: np.ndarray, lo: np.ndarray, coef: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Give each EV, in the order given, ``want`` or what is left if less, but never below ``lo``.

    ``head`` is lowered in place. Whole runs of EVs that fit are given at once (prefix sums), so the cost is
    a few vector operations per constraint that fills up rather than one Python step per EV.
    """
    m = len(want)
    given = np.zeros(m)
    # An EV that wants less than its minimum cannot charge at all in this slot.
    idx = np.nonzero((want > EPS_KW) & (want >= lo))[0]
    while len(idx):
        load = np.cumsum(want[idx, None] * coef[idx], axis=0)
        fits = (load <= head[None, :] + 1e-9).all(axis=1)
        k = len(idx) if fits.all() else int(np.argmin(fits))
        if k:
            given[idx[:k]] = want[idx[:k]]
            head -= load[k - 1]
        if k == len(idx):
            break
        j = idx[k]
        offer = min(want[j], float(room_for(coef[j : j + 1], head)[0]))
        if offer >= lo[j] and offer > EPS_KW:
            given[j] = offer
            head -= offer * coef[j]
        rest = idx[k + 1 :]
        # Drop everyone who cannot fit even their minimum any more: this keeps the loop short once a
        # constraint is full.
        need = np.maximum(lo[rest], EPS_KW)
        idx = rest[room_for(coef[rest], head) >= need]
    return given


def fill_level(extra: np.ndarray, coef: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Water-filling: the top-ups ``min(extra, λ)`` for the largest common ``λ`` that fits ``head``.
    Everyone gets the same extra power until they are full: fair sharing of what is left."""
    if not len(extra) or extra.max() <= EPS_KW:
        return np.zeros_like(extra)
    low, high = 0.0, float(extra.max())
    if (coef.T @ extra <= head + 1e-9).all():
        return extra.copy()
    for _ in range(50):
        mid = (low + high) / 2
        if (coef.T @ np.minimum(extra, mid) <= head + 1e-9).all():
            low = mid
        else:
            high = mid
    return np.minimum(extra, low)


#: A slot policy: (problem, slot, present EV indices, remaining kWh, head) -> powers for those EVs.
SlotPolicy = Callable[[Problem, int, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def run_slots(problem: Problem, policy: SlotPolicy) -> np.ndarray:
    """Apply ``policy`` slot after slot, earliest first, tracking each EV's remaining energy."""
    n, horizon = problem.n_evs, problem.n_slots
    power = np.zeros((n, horizon))
    remaining = problem.energy_kwh.copy()
    limits = problem.slot_limits
    cap = problem.cap
    for t in range(horizon):
        present = np.nonzero((cap[:, t] > EPS_KW) & (remaining > 1e-9))[0]
        if not len(present):
            continue
        head = limits[:, t].astype(float).copy()
        given = policy(problem, t, present, remaining, head)
        power[present, t] = given
        remaining[present] = np.maximum(remaining[present] - given * problem.dt_h, 0.0)
    return power


def wants(problem: Problem, t: int, present: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """What each present EV would take in slot ``t``: its cap, or just what finishes it."""
    return np.minimum(problem.cap[present, t], remaining[present] / problem.dt_h)


def sorted_policy(key: Callable[[Problem, int, np.ndarray, np.ndarray], np.ndarray]) -> SlotPolicy:
    """A policy that serves EVs fully, one after another, in the order of ``key`` (smallest first)."""

    def policy(problem: Problem, t: int, present: np.ndarray, remaining: np.ndarray, head: np.ndarray) -> np.ndarray:
        rank = np.argsort(key(problem, t, present, remaining), kind="stable")
        order = present[rank]
        coef = constraint_matrix(problem)[0][order]
        given = np.empty(len(present))
        given[rank] = allocate_in_order(wants(problem, t, order, remaining), problem.lo[order, t], coef, head)
        return given

    return policy
