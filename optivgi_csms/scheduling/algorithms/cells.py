"""The power columns of the default algorithm's LP: one EV's power, constant over a run of blocks.

Two ways to cut a horizon into columns (the rows are always one per block of some partition):

* :meth:`Cells.per_block`: one column per (EV, block), its *average* power over the block. With coarse
  blocks this is a **relaxation** (every per-slot schedule averages to a feasible point), so its optimum is
  an upper bound; with one slot per block it is the per-slot model itself.
* :meth:`Cells.flat_in_blocks`: rows are the *segments* of coarse blocks (the exact blocks inside each
  coarse block: runs of slots where nothing changes); an EV present during a whole coarse block gets one
  column, constant over all the block's segments; an EV arriving or leaving inside the block gets one
  column per segment it is present in. This is a **restriction**: every point is a valid per-slot
  schedule as it stands (each column's power in each slot of its run), so nothing is lost turning it back
  into slots. It loses only what holding the EVs that stay the whole block at one power costs (measured:
  0.01% of the energy at 200 EVs × 480 one-minute slots); the relaxation bounds the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optivgi_csms.scheduling.blocks import Blocks, exact_starts


def expand_runs(first: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(run, index)`` pairs for the runs ``first[j] .. stop[j]-1``: every index of every run."""
    length = stop - first
    run = np.repeat(np.arange(len(first)), length)
    offset = np.arange(len(run)) - np.repeat(np.cumsum(length) - length, length)
    return run, np.repeat(first, length) + offset


@dataclass(frozen=True)
class Cells:
    """Column ``j`` is EV ``ev[j]``'s power (kW), the same in every slot of blocks ``first[j] .. stop[j]-1``
    of its row partition, within ``[lower[j], upper[j]]``."""

    ev: np.ndarray
    first: np.ndarray
    stop: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def __len__(self) -> int:
        return len(self.ev)

    @classmethod
    def per_block(cls, blocks: Blocks) -> Cells:
        """Every (EV, block) where the EV can draw power and still wants energy, with bounds ``[0, cap]``."""
        cap = blocks.cap
        wants = blocks.problem.energy_kwh > 1e-9
        ev, block = np.nonzero((cap > 1e-12) & wants[:, None])
        return cls(ev, block, block + 1, np.zeros(len(ev)), cap[ev, block])

    @classmethod
    def flat_in_blocks(cls, coarse: Blocks) -> tuple[Blocks, Cells]:
        """The segments of ``coarse`` (the row partition) and the restricted columns on them (module
        docstring)."""
        problem = coarse.problem
        n_slots = problem.n_slots
        starts = np.union1d(coarse.first[:-1], exact_starts(problem)).astype(int)
        segments = Blocks(problem, np.append(starts, n_slots))
        # The first segment of each coarse block (and the end).
        opening = np.searchsorted(segments.first, coarse.first)
        of_block = np.searchsorted(coarse.first, starts, side="right") - 1
        wants = problem.energy_kwh > 1e-9
        # Present in every slot of the block, fully (a sum of ones is exact).
        whole = (coarse.presence == coarse.length[None, :]) & wants[:, None] & (problem.max_kw > 0)[:, None]
        ev_w, block_w = np.nonzero(whole)
        frac = problem.frac[:, starts]  # the same in every slot of a segment
        ev_p, seg_p = np.nonzero((frac > 0) & wants[:, None] & ~whole[:, of_block] & (problem.max_kw > 0)[:, None])
        ev = np.concatenate([ev_w, ev_p])
        first = np.concatenate([opening[block_w], seg_p])
        stop = np.concatenate([opening[block_w + 1], seg_p + 1])
        upper = np.concatenate([problem.max_kw[ev_w], problem.max_kw[ev_p] * frac[ev_p, seg_p]])
        order = np.lexsort((first, ev))
        cells = cls(ev[order], first[order], stop[order], np.zeros(len(ev)), upper[order])
        return segments, cells

    def hours(self, blocks: Blocks) -> np.ndarray:
        """Hours each column covers (kW × hours = kWh)."""
        cumulative = np.concatenate([[0.0], np.cumsum(blocks.hours)])
        return cumulative[self.stop] - cumulative[self.first]

    def expand_runs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(column, block)`` index pairs: every block each column covers."""
        return expand_runs(self.first, self.stop)

    def to_slots(self, blocks: Blocks, x: np.ndarray) -> np.ndarray:
        """(n, T) per-slot powers: each column's value in every slot of its run."""
        problem = blocks.problem
        power = np.zeros((problem.n_evs, problem.n_slots))
        slot_first = blocks.first[self.first]
        length = blocks.first[self.stop] - slot_first
        total = int(length.sum())
        if total:
            rows = np.repeat(self.ev, length)
            cols = np.repeat(slot_first, length) + np.arange(total) - np.repeat(np.cumsum(length) - length, length)
            power[rows, cols] = np.repeat(x, length)
        return power

    def from_block_average(self, blocks: Blocks, coarse: Blocks, avg: np.ndarray) -> np.ndarray:
        """Column values that carry the per-coarse-block averages ``avg`` (n, B): an EV's energy in a
        block, spread over the slots it is present in (so a starting point, not always feasible)."""
        problem = coarse.problem
        slot_first = blocks.first[self.first]
        block = coarse.slot_block[slot_first]
        presence = coarse.presence[self.ev, block]
        rate = avg[self.ev, block] * coarse.length[block] / np.where(presence > 0, presence, 1.0)
        return np.minimum(rate * problem.frac[self.ev, slot_first], self.upper)
