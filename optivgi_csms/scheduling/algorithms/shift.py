"""Charging early: moving each EV's energy to earlier blocks with room, changing nothing optimised.

An LP optimum says how much each EV gets, at what cost; many schedules share those numbers, and a simplex
vertex picks one with no regard for time. Moving part of an EV's energy from a later column into an
earlier one where the EV and every limit have room keeps each EV's total (so energy and fairness), cannot
raise the bill (only towards blocks no dearer) and keeps every limit (only room is used). Block after
block, the room goes to the EVs that leave first, taking their energy from their latest columns: EVs
charge as early as possible (robust to early departures), each in one run where room allows.

Energy is moved into columns that cover a whole block (an EV present throughout), at one power over the
block, so the result stays a valid per-slot schedule as it stands; and never so that a column ends up
charging under the EV's minimum (a column is emptied or keeps at least its minimum).
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.algorithms.cells import Cells, expand_runs
from optivgi_csms.scheduling.algorithms.greedy import allocate_in_order
from optivgi_csms.scheduling.algorithms.objectives import departure_slot
from optivgi_csms.scheduling.blocks import Blocks

#: Below this an amount of energy is noise (kWh).
EPS_KWH = 1e-9


def shift_early(rows: Blocks, cells: Cells, x: np.ndarray, coarse: Blocks, site_kw: float | None = None) -> np.ndarray:
    """Column values ``x`` with energy moved to earlier columns (see the module docstring).

    ``rows`` are the model's row blocks (segments of the ``coarse`` blocks); ``site_kw`` lowers the site
    limit, e.g. to a peak an earlier stage holds.
    """
    problem = rows.problem
    x = x.copy()
    m = len(cells)
    if not m:
        return x
    hours = cells.hours(rows)
    coef_all = problem.slot_coef[cells.ev]  # (m, 1 + P)
    limits = np.vstack([rows.site_kw[None, :], np.repeat(problem.phase_limit_a[:, None], rows.n_blocks, axis=1)])
    if site_kw is not None:
        limits[0] = np.minimum(limits[0], site_kw)
    run_col, run_row = cells.expand_runs()
    load = np.zeros_like(limits)
    np.add.at(load.T, run_row, coef_all[run_col] * x[run_col, None])
    spare = limits - load
    price = rows.price if rows.price is not None else np.zeros(rows.n_blocks)
    col_price = price[cells.first]
    # Columns are sorted by EV, then time: each EV's columns are one contiguous range.
    ev_end = np.searchsorted(cells.ev, cells.ev, side="right")
    leaves = departure_slot(problem)[cells.ev]
    lo = problem.lo[cells.ev, rows.first[cells.first]]  # the minimum while charging, in every slot of a run
    # Columns that cover a whole coarse block (its first to its last segment) can take more.
    segment_of_block = np.searchsorted(rows.first, coarse.first)
    block = np.searchsorted(coarse.first, rows.first[cells.first], side="right") - 1
    whole = (cells.first == segment_of_block[block]) & (cells.stop == segment_of_block[block + 1])
    for b in range(coarse.n_blocks - 1):
        lo_seg, hi_seg = segment_of_block[b], segment_of_block[b + 1]
        head = spare[:, lo_seg:hi_seg].min(axis=1)
        if head[0] <= EPS_KWH:
            continue
        receive = np.nonzero(whole & (cells.first == lo_seg) & (cells.upper - x > 1e-12))[0]
        if not len(receive):
            continue
        # Later columns of each receiving EV (no cheaper than this block), and the energy they hold.
        count = ev_end[receive] - receive - 1
        later = np.repeat(receive + 1, count) + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        owner = np.repeat(np.arange(len(receive)), count)
        usable = col_price[later] >= price[lo_seg] - 1e-12
        later, owner = later[usable], owner[usable]
        movable = np.bincount(owner, weights=x[later] * hours[later], minlength=len(receive))
        keep = movable > EPS_KWH
        if not keep.any():
            continue
        receive, movable = receive[keep], movable[keep]
        renumber = np.cumsum(keep) - 1
        in_keep = keep[owner]
        later, owner = later[in_keep], renumber[owner[in_keep]]
        order = np.argsort(leaves[receive], kind="stable")
        receive, movable = receive[order], movable[order]
        rank = np.empty(len(order), dtype=int)
        rank[order] = np.arange(len(order))
        owner = rank[owner]
        want = np.minimum(cells.upper[receive] - x[receive], movable / hours[receive])
        floor = np.where(x[receive] > 0, 0.0, lo[receive])
        got = allocate_in_order(want, floor, coef_all[receive], np.maximum(head, 0.0))
        moved = got * hours[receive]
        if moved.max(initial=0.0) <= EPS_KWH:
            continue
        # Take from each EV's latest columns first (sorted latest first); the column taken from last keeps
        # at least its minimum, or the move shrinks to leave it so.
        order = np.lexsort((-cells.first[later], owner))
        later, owner = later[order], owner[order]
        energy = x[later] * hours[later]
        before = np.cumsum(energy) - energy
        group_start = np.searchsorted(owner, owner, side="left")
        before -= before[group_start]
        cut = (moved[owner] > before + EPS_KWH) & (moved[owner] < before + energy - EPS_KWH)
        left = before + energy - moved[owner]
        too_little = cut & (left < lo[later] * hours[later] * (1 - 1e-9))
        allowed = np.where(too_little, np.maximum(before + energy - lo[later] * hours[later], before), np.inf)
        limit = np.full(len(receive), np.inf)
        np.minimum.at(limit, owner, allowed)
        moved = np.minimum(moved, limit)
        got = moved / hours[receive]
        got[(floor > 0) & (got < floor * (1 - 1e-9))] = 0.0  # would charge under the minimum: no move
        moved = got * hours[receive]
        x[receive] += got
        spare[:, lo_seg:hi_seg] -= (coef_all[receive].T @ got)[:, None]
        take = np.clip(moved[owner] - before, 0.0, energy)
        x[later] -= take / hours[later]
        taken = later[take > 0]
        if len(taken):
            run, row = expand_runs(cells.first[taken], cells.stop[taken])
            freed = coef_all[taken][run] * (take[take > 0] / hours[taken])[run, None]
            np.add.at(spare.T, row, freed)
    return np.maximum(x, 0.0)
