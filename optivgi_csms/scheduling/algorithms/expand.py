"""From LP columns (one EV's power over a run of slots) to one power per slot, within every limit.

A column of the restricted block model (:meth:`Cells.flat_in_blocks`) is already a valid piece of a
per-slot schedule: the EV at one power in every slot of its run. Two things are still decided here:

* where a column's whole block has room for every EV planned there at its maximum at once (no limit binds),
  the EV charges at its maximum from the start of its run until its energy is in (earliest first), or at
  the end of its run when it charges right after the run but not right before, so that it does not pause;
* a column under the EV's minimum (6 A) charges at the minimum, or a little above, for as many slots as its
  energy allows, the turns of such columns staggered over their block; a column with less energy than
  one slot at the minimum is dropped.

Turns can overload a slot; :func:`fit_limits` brings such slots within their limits, and the caller gives
any room left to EVs still short (:func:`optivgi_csms.scheduling.algorithms.repair.top_up`).
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.algorithms.cells import Cells
from optivgi_csms.scheduling.algorithms.objectives import departure_slot
from optivgi_csms.scheduling.blocks import Blocks
from optivgi_csms.scheduling.problem import Problem

#: Relative slack for comparisons of rates with an EV's minimum and maximum.
REL = 1e-9
#: Floating-point slack below which a load is not "over" its limit (kW or A).
SLACK = 1e-9


def realise(rows: Blocks, cells: Cells, x: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per-slot powers (n, T) for the column values ``x`` on ``rows`` (see the module docstring).

    ``group`` (T,) numbers the blocks whose columns take turns together (the coarse blocks).
    """
    problem = rows.problem
    dt = problem.dt_h
    power = cells.to_slots(rows, x)
    use = x > 1e-12
    ev = cells.ev[use]
    if not len(ev):
        return power
    s = rows.first[cells.first[use]]
    z = rows.first[cells.stop[use]]
    n_slots = z - s
    frac = problem.frac
    cum = np.zeros((problem.n_evs, problem.n_slots + 1))
    np.cumsum(frac, axis=1, out=cum[:, 1:])

    def presence(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        return cum[ev, stop] - cum[ev, start]

    e = x[use] * cells.hours(rows)[use]
    max_kw, min_kw = problem.max_kw[ev], problem.min_kw[ev]
    before = (s > 0) & (power[ev, np.maximum(s - 1, 0)] > 0)
    after = (z < problem.n_slots) & (power[ev, np.minimum(z, problem.n_slots - 1)] > 0)
    start, length = s.copy(), n_slots.copy()

    # Front-loaded runs where nothing binds, unless the EV charges right before and right after.
    run = _roomy(problem, power, group)[s] & ~(before & after)
    at_end = run & after & ~before
    need = np.ceil(e / np.maximum(max_kw * dt, 1e-12) - REL).astype(int)
    length[run] = np.clip(need[run], 1, n_slots[run])
    for _ in range(3):  # a partial slot at a window's edge holds less: lengthen until the energy fits
        start = np.where(at_end, z - length, s)
        short = run & (presence(start, start + length) * max_kw * dt < e * (1 - REL)) & (length < n_slots)
        if not short.any():
            break
        length[short] += 1
    start = np.where(at_end, z - length, s)

    # Under the minimum: turns at the minimum, staggered.
    rate = e / np.maximum(presence(start, start + length) * dt, 1e-12)
    low = (rate < min_kw * (1 - REL)) & (min_kw > 0)
    if low.any():
        turns = np.floor(e / np.maximum(min_kw * dt, 1e-12) + REL).astype(int)
        length[low] = np.clip(turns[low], 0, n_slots[low])
        leaves = departure_slot(problem)[ev[low]]
        start[low] = _staggered(group[s[low]], s[low], length[low], n_slots[low], leaves)
        for _ in range(3):  # partial slots hold less: shorten until the minimum fits the energy
            over = low & (length > 0) & (presence(start, start + length) * min_kw * dt > e * (1 + REL))
            if not over.any():
                break
            length[over] -= 1
        rate = np.where(low, e / np.maximum(presence(start, start + length) * dt, 1e-12), rate)
    changed = run | low
    if changed.any():
        _clear(power, ev[changed], s[changed], n_slots[changed])
        rate = np.minimum(rate, max_kw)
        ok = changed & (length > 0) & (rate >= min_kw * (1 - REL)) & (rate > 0)
        _fill(power, ev[ok], start[ok], length[ok], rate[ok], frac)
    return fit_limits(problem, power)


def _roomy(problem: Problem, power: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(T,) True in the slots of groups where every EV planned in the group could charge at its maximum
    at once."""
    n_groups = int(group.max()) + 1 if len(group) else 0
    planned = np.zeros((problem.n_evs, n_groups), dtype=bool)
    on = np.nonzero(power > 0)
    planned[on[0], group[on[1]]] = True
    load = problem.slot_coef.T @ (problem.cap * planned[:, group])
    fits = (load <= problem.slot_limits + SLACK).all(axis=0)
    per_group = np.ones(n_groups, dtype=bool)
    np.logical_and.at(per_group, group, fits)
    return per_group[group]


def _staggered(
    group: np.ndarray, s: np.ndarray, length: np.ndarray, n_slots: np.ndarray, leaves: np.ndarray
) -> np.ndarray:
    """Starts of turns that follow each other through their group (EVs leaving first go first), each kept
    inside its run without wrapping round (a wrapped turn would be a pause)."""
    order = np.lexsort((leaves, group))
    offset = np.zeros(len(group), dtype=int)
    sorted_group = group[order]
    sorted_length = length[order]
    cumulative = np.cumsum(sorted_length) - sorted_length
    group_start = np.searchsorted(sorted_group, sorted_group, side="left")
    offset[order] = cumulative - cumulative[group_start]
    offset %= np.maximum(n_slots, 1)
    return s + np.minimum(offset, np.maximum(n_slots - length, 0))


def _runs(ev: np.ndarray, start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = int(length.sum())
    rows = np.repeat(ev, length)
    cols = np.repeat(start, length) + np.arange(total) - np.repeat(np.cumsum(length) - length, length)
    return rows, cols


def _clear(power: np.ndarray, ev: np.ndarray, start: np.ndarray, length: np.ndarray) -> None:
    rows, cols = _runs(ev, start, length)
    power[rows, cols] = 0.0


def _fill(power: np.ndarray, ev: np.ndarray, start: np.ndarray, length: np.ndarray, rate: np.ndarray, frac) -> None:
    """Write each run: ``rate × presence`` in slots ``start .. start+length-1`` of its EV."""
    rows, cols = _runs(ev, start, length)
    power[rows, cols] = np.repeat(rate, length) * frac[rows, cols]


def fit_limits(problem: Problem, power: np.ndarray) -> np.ndarray:
    """Bring every overloaded slot within its site and phase limits by lowering the EVs charging there,
    each in proportion to what it draws above its minimum; in place, and returned.

    Each EV keeps the smallest share any of its constraints allows, so each constraint loses at least its
    excess. Where even the minimums do not fit, EVs are left for the safety net (which switches some off).
    """
    coef, limits = problem.slot_coef, problem.slot_limits
    excess = coef.T @ power - limits
    bad = np.nonzero((excess > SLACK).any(axis=0))[0]
    if not len(bad):
        return power
    p = power[:, bad]
    floor = problem.lo[:, bad] * (p > 0)
    flexible = np.maximum(p - floor, 0.0)
    flexible_load = coef.T @ flexible
    over = np.maximum(excess[:, bad], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = np.where(over > 0, 1.0 - over / flexible_load, 1.0)
    keep = np.clip(np.nan_to_num(keep, nan=0.0), 0.0, 1.0)
    share = np.where(coef[:, :, None] > 0, keep[None, :, :], 1.0).min(axis=1)
    power[:, bad] = floor + flexible * share * (1 - 1e-12)
    return power
