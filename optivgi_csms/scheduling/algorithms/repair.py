"""The minimum-current rule around an LP relaxation: which EV-slots to switch on, and refilling room left.

The rule (0 or at least 6 A) makes the exact problem a MILP. The default algorithm solves the relaxation,
switches on the columns it uses with their minimum as a lower bound and switches the others off
(:func:`switch_on`), solves again from the same basis, and gives any room left to EVs still short
(:func:`top_up`).
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.algorithms.cells import Cells
from optivgi_csms.scheduling.algorithms.greedy import EPS_KW, allocate_in_order
from optivgi_csms.scheduling.algorithms.objectives import departure_slot
from optivgi_csms.scheduling.blocks import Blocks
from optivgi_csms.scheduling.problem import Problem


def minimums(rows: Blocks, cells: Cells) -> np.ndarray:
    """(m,) each column's lowest power while charging (kW): the EV's minimum times its presence, which is
    the same in every slot of a column's run."""
    return rows.problem.lo[cells.ev, rows.first[cells.first]]


def switch_on(rows: Blocks, cells: Cells, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New column bounds after a relaxation ``x``: the columns it uses are switched on (their minimum as
    lower bound), the others off (upper bound 0); pruned until the minimums alone fit every EV's energy and
    every row's limits, the smallest uses dropped first."""
    problem = rows.problem
    lo = minimums(rows, cells)
    hours = cells.hours(rows)
    keep = x > EPS_KW
    by_size = np.nonzero(keep)[0]
    by_size = by_size[np.argsort(x[by_size], kind="stable")]
    # Energy: an EV's minimums must not ask more than it wants.
    need = np.bincount(cells.ev[keep], weights=(lo * hours)[keep], minlength=problem.n_evs)
    over = need - problem.energy_kwh > 1e-9
    if over.any():
        for j in by_size[over[cells.ev[by_size]]]:
            i = cells.ev[j]
            if over[i]:
                keep[j] = False
                need[i] -= lo[j] * hours[j]
                over[i] = need[i] - problem.energy_kwh[i] > 1e-9
    # Rows: the minimums switched on in a block must fit the site and each phase.
    coef = problem.slot_coef[cells.ev]
    limits = np.vstack([rows.site_kw[None, :], np.repeat(problem.phase_limit_a[:, None], rows.n_blocks, axis=1)])
    run, row = cells.expand_runs()
    on = keep[run]
    load = np.zeros_like(limits)
    np.add.at(load.T, row[on], coef[run[on]] * lo[run[on], None])
    bad = (load > limits + 1e-9).any(axis=0)
    if bad.any():
        run_start = np.concatenate([[0], np.cumsum(cells.stop - cells.first)])
        touches = np.zeros(len(cells), dtype=bool)
        np.logical_or.at(touches, run, bad[row])
        for j in by_size[touches[by_size]]:
            if not keep[j]:
                continue
            covered = row[run_start[j] : run_start[j + 1]]
            excess = load[:, covered] > limits[:, covered] + 1e-9
            if (excess & (coef[j] > 0)[:, None]).any():
                keep[j] = False
                load[:, covered] -= (coef[j] * lo[j])[:, None]
    return np.where(keep, lo, 0.0), np.where(keep, cells.upper, 0.0)


def top_up(problem: Problem, power: np.ndarray) -> np.ndarray:
    """Give room left in each slot (earliest first) to EVs still short, never below their minimum; in
    place, and returned. Only slots with room on the site and an EV short there with room to take more
    are visited."""
    dt = problem.dt_h
    remaining = np.maximum(problem.energy_kwh - power.sum(axis=1) * dt, 0.0)
    if remaining.max(initial=0.0) <= 1e-6:
        return power
    coef, limits = problem.slot_coef, problem.slot_limits
    cap, lo = problem.cap, problem.lo
    head_all = limits - coef.T @ power
    wanting = (cap - power > EPS_KW) & (remaining > 1e-6)[:, None]
    last = departure_slot(problem)
    for t in np.nonzero((head_all[0] > 1e-9) & wanting.any(axis=0))[0]:
        short = np.nonzero((remaining > 1e-6) & (cap[:, t] - power[:, t] > EPS_KW))[0]
        if not len(short):
            continue
        head = head_all[:, t].copy()
        short = short[np.argsort(last[short], kind="stable")]
        want = np.minimum(cap[short, t] - power[short, t], remaining[short] / dt)
        floor = np.where(power[short, t] > 0, 0.0, lo[short, t])
        extra = allocate_in_order(want, floor, coef[short], head)
        power[short, t] += extra
        remaining[short] -= extra * dt
    return power
