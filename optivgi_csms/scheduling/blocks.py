"""Time blocks: runs of consecutive slots that the default algorithm plans as one unit.

Slots where nothing changes (no EV arrives or leaves inside, the same site limit and the same price) are
interchangeable for energy, cost and fairness: averaging each EV's power over such a run keeps every limit
(each is the same linear constraint in every slot of the run) and every objective (they are linear or
concave in the EVs' totals), so some optimal schedule holds each EV's power constant over the run. Such a
run is an *exact* block. A model with one variable per (EV, exact block) has the optimum of the per-slot
model, with fewer variables and no switching inside a block.

On large sites nearly every slot holds an arrival or a departure, so exact blocks save little. Merging
neighbouring exact blocks into *coarse* blocks (never across a change of site limit or price) gives a
model whose constraints are the per-slot ones summed over each block: every valid schedule satisfies them,
so its optimum is an **upper bound** on what any valid schedule delivers. Turning a coarse plan back into
slots (:mod:`optivgi_csms.scheduling.algorithms.expand`) can lose a little where EVs arrive or leave
inside a block; the bound says how much at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from optivgi_csms.scheduling.problem import Problem


@dataclass(frozen=True, eq=False)
class Blocks:
    """A partition of a problem's slots into blocks, and the problem's figures per block.

    Block ``b`` holds slots ``first[b] .. first[b+1]-1``. The site limit and the price are the same in every
    slot of a block (partitions never cut across a change of either).
    """

    problem: Problem
    first: np.ndarray  # (B+1,) first slot of each block, then n_slots

    @property
    def n_blocks(self) -> int:
        """Number of blocks."""
        return len(self.first) - 1

    @cached_property
    def length(self) -> np.ndarray:
        """(B,) slots per block."""
        return np.diff(self.first)

    @cached_property
    def hours(self) -> np.ndarray:
        """(B,) length of each block in hours."""
        return self.length * self.problem.dt_h

    @cached_property
    def slot_block(self) -> np.ndarray:
        """(T,) the block of every slot."""
        return np.repeat(np.arange(self.n_blocks), self.length)

    @cached_property
    def site_kw(self) -> np.ndarray:
        """(B,) the site limit in each block."""
        return self.problem.site_kw[self.first[:-1]]

    @cached_property
    def price(self) -> np.ndarray | None:
        """(B,) the price in each block, or ``None`` when the site has none."""
        price = self.problem.price
        return None if price is None else price[self.first[:-1]]

    @cached_property
    def presence(self) -> np.ndarray:
        """(n, B) slots of each block the EV is present in (fractions at the edges of its window)."""
        return self.sum(self.problem.frac)

    @cached_property
    def cap(self) -> np.ndarray:
        """(n, B) the highest average power each EV can draw over each block, kW."""
        return self.problem.max_kw[:, None] * self.presence / self.length[None, :]

    @cached_property
    def is_exact(self) -> bool:
        """True when every block is a run of identical slots: then the block model loses nothing."""
        return bool(np.isin(exact_starts(self.problem), self.first).all())

    def sum(self, per_slot: np.ndarray) -> np.ndarray:
        """Sum of ``per_slot`` (…, T) over each block: (…, B)."""
        if self.n_blocks == 0:
            return np.zeros((*per_slot.shape[:-1], 0))
        return np.add.reduceat(per_slot, self.first[:-1], axis=-1)

    def average(self, power: np.ndarray) -> np.ndarray:
        """(n, B) average power of each EV over each block, from per-slot powers (n, T)."""
        return self.sum(power) / self.length[None, :]


def _cuts(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (T,) masks: slots where something changes from the slot before (an exact block starts), and
    slots where the site limit or price changes (every block must start there)."""
    n_slots = problem.n_slots
    hard = np.zeros(n_slots, dtype=bool)
    if n_slots == 0:
        return hard, hard
    hard[0] = True
    hard[1:] |= problem.site_kw[1:] != problem.site_kw[:-1]
    if problem.price is not None:
        hard[1:] |= problem.price[1:] != problem.price[:-1]
    exact = hard.copy()
    if problem.n_evs:
        exact[1:] |= (problem.frac[:, 1:] != problem.frac[:, :-1]).any(axis=0)
    return exact, hard


def exact_starts(problem: Problem) -> np.ndarray:
    """First slot of every exact block."""
    return np.nonzero(_cuts(problem)[0])[0]


def exact_partition(problem: Problem, max_slots: int) -> Blocks:
    """Exact blocks, those longer than ``max_slots`` slots cut into pieces of at most that many."""
    n_slots = problem.n_slots
    if n_slots == 0:
        return Blocks(problem, np.zeros(1, dtype=int))
    starts = exact_starts(problem)
    length = np.diff(np.append(starts, n_slots))
    pieces = -(-length // max(int(max_slots), 1))
    block = np.repeat(np.arange(len(starts)), pieces)
    offset = np.arange(len(block)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    first = starts[block] + offset * max(int(max_slots), 1)
    return Blocks(problem, np.append(first, n_slots).astype(int))


def partition(problem: Problem, max_slots: int) -> Blocks:
    """Blocks of at most ``max_slots`` slots: exact blocks merged while they fit, cut at every change of site
    limit or price, and at arrivals and departures wherever a cut is needed anyway.

    ``max_slots = 1`` gives one block per slot (the per-slot model).
    """
    n_slots = problem.n_slots
    max_slots = max(int(max_slots), 1)
    if n_slots == 0:
        return Blocks(problem, np.zeros(1, dtype=int))
    if max_slots == 1:
        return Blocks(problem, np.arange(n_slots + 1))
    exact, hard = _cuts(problem)
    starts = np.nonzero(exact)[0]
    ends = np.append(starts[1:], n_slots)
    firsts = [0]
    for start, end, forced in zip(starts.tolist(), ends.tolist(), hard[starts].tolist(), strict=True):
        # A new block when the limit or price changes, or when this exact block would overfill the current one.
        if start > firsts[-1] and (forced or end - firsts[-1] > max_slots):
            firsts.append(start)
        # An exact block longer than the maximum is cut into pieces (the early-first stage needs them).
        while end - firsts[-1] > max_slots:
            firsts.append(firsts[-1] + max_slots)
    firsts.append(n_slots)
    return Blocks(problem, np.asarray(firsts, dtype=int))
