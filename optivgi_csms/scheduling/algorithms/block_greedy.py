"""A fast, fair plan per block: the starting point of the default algorithm's LP.

Block after block (earliest first), for the EVs present: first what each must get now to still finish
(most urgent first), then the room left is shared so that the EVs' served shares rise together (a common
level of "share of its request delivered so far", water-filling), then what a phase limit kept from the
common level goes to the most urgent EVs that can still take it. It is GoAlgorithm's rule on blocks, with
fairness by share instead of by power; the LP starts from it (HiGHS crosses over to a basis nearby), which
cuts the simplex's work several times over and leaves ties between equally good schedules broken fairly.
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.algorithms.greedy import allocate_in_order
from optivgi_csms.scheduling.blocks import Blocks


def max_level(lower: np.ndarray, upper: np.ndarray, slope: np.ndarray, head: float) -> float:
    """The largest ``λ`` with ``Σ slope_i · clip(λ - lower_i, 0, upper_i - lower_i) ≤ head`` (∞ if all fit).

    The sum is piecewise linear and non-decreasing in ``λ``; its breakpoints are sorted once and the segment
    where it crosses ``head`` is found by a search, so the answer is exact.
    """
    if not len(lower):
        return np.inf
    points = np.concatenate([lower, upper])
    change = np.concatenate([slope, -slope])
    order = np.argsort(points, kind="stable")
    points, change = points[order], change[order]
    rate = np.cumsum(change)  # slope right after each point
    value = np.concatenate([[0.0], np.cumsum(np.diff(points) * rate[:-1])])  # the sum at each point
    if value[-1] <= head:
        return np.inf
    k = int(np.searchsorted(value, head, side="right")) - 1
    return float(points[k] + (head - value[k]) / rate[k]) if rate[k] > 0 else float(points[k])


def share_fill(
    done: np.ndarray, rest: np.ndarray, request: np.ndarray, coef: np.ndarray, head: np.ndarray
) -> np.ndarray:
    """Water-filling by share: top-ups ``clip(λ·request - done, 0, rest)`` for the largest common share ``λ``
    that every constraint (rows of ``coef.T`` against ``head``) allows."""
    level = np.inf
    live = (rest > 0) & (request > 0)
    for c in range(coef.shape[1]):
        on = live & (coef[:, c] > 0)
        if on.any():
            lower = done[on] / request[on]
            upper = (done[on] + rest[on]) / request[on]
            level = min(level, max_level(lower, upper, coef[on, c] * request[on], max(float(head[c]), 0.0)))
    if not np.isfinite(level):
        return np.where(live, rest, 0.0)
    return np.where(live, np.clip(level * request - done, 0.0, rest), 0.0)


def block_greedy(blocks: Blocks) -> np.ndarray:
    """(n, B) average powers (kW) of the greedy plan (see the module docstring); within every block limit."""
    problem = blocks.problem
    hours = blocks.hours
    n_blocks = blocks.n_blocks
    most = blocks.cap * hours[None, :]  # kWh each EV can take in each block
    after = np.zeros_like(most)  # ... and in all later blocks
    if n_blocks > 1:
        after[:, :-1] = np.cumsum(most[:, ::-1], axis=1)[:, ::-1][:, 1:]
    request = problem.energy_kwh
    remaining = request.copy()
    coef = problem.slot_coef
    limits = np.vstack([blocks.site_kw[None, :], np.repeat(problem.phase_limit_a[:, None], n_blocks, axis=1)])
    plan = np.zeros_like(most)
    max_kw = np.maximum(problem.max_kw, 1e-9)
    for b in range(n_blocks):
        present = np.nonzero((most[:, b] > 1e-12) & (remaining > 1e-9))[0]
        if not len(present):
            continue
        head = limits[:, b] * hours[b]
        want = np.minimum(most[present, b], remaining[present])
        c = coef[present]
        if (c.T @ want <= head + 1e-9).all():  # room for everyone: nothing to decide
            plan[present, b] = want
            remaining[present] -= want
            continue
        must = np.clip(remaining[present] - after[present, b], 0.0, want)
        spare_h = (after[present, b] + most[present, b] - remaining[present]) / max_kw[present]
        order = np.argsort(spare_h, kind="stable")
        ev, c, want = present[order], c[order], want[order]
        zeros = np.zeros(len(ev))
        given = allocate_in_order(must[order], zeros, c, head) if must.max() > 1e-9 else zeros.copy()
        done = request[ev] - remaining[ev] + given
        top = share_fill(done, want - given, request[ev], c, head)
        given += top
        head -= c.T @ top
        if c.shape[1] > 1:  # what a phase limit kept from the common level goes to the most urgent
            given += allocate_in_order(want - given, zeros, c, head)
        plan[ev, b] = given
        remaining[ev] -= given
    return plan / np.where(hours > 0, hours, 1.0)[None, :]
