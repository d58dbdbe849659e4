"""The energy stage as a transportation network on exact segments, and the cuts that bound it.

Without phase limits, the default algorithm's first stage (the most energy, under the site limit, each EV
within its window, power and request) is a transportation problem: EV ``i`` supplies up to ``E_i`` kWh,
segment ``s`` (a run of identical slots, :func:`blocks.exact_partition`) takes up to ``C_s`` kWh (site limit
× length), and EV ``i`` can put at most ``U_is`` kWh into segment ``s`` (its maximum power × its presence).
A constant power per EV over a segment loses nothing (the slots of a segment are interchangeable), so the
network's optimum is the per-slot LP relaxation's.

By max-flow/min-cut, that optimum equals ``min_T C(T) + Σ_i min(E_i, U_i(not T))`` over sets ``T`` of
segments: the segments in ``T`` are full, and each EV gets at most its request or what it can take outside
``T``. Every ``T`` gives an upper bound on what any valid schedule delivers (it is :func:`bounds.dual_bound`
with price 1 on ``T``), so a cut is a certificate. On a site that is congested now and free later the best
cut is a prefix ``[0, τ)`` of the horizon; all prefixes are compared at once (``O(n·S)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from optivgi_csms.scheduling.blocks import Blocks, exact_partition
from optivgi_csms.scheduling.problem import Problem


@dataclass(frozen=True, eq=False)
class SegmentNetwork:
    """The transportation network of a problem (module docstring). Arrays are time-major: ``(S, n)``."""

    problem: Problem
    segments: Blocks

    @classmethod
    def build(cls, problem: Problem) -> SegmentNetwork:
        """The network on the problem's exact segments (never cut: nothing changes inside one)."""
        return cls(problem, exact_partition(problem, max(problem.n_slots, 1)))

    @property
    def n_segments(self) -> int:
        """Number of segments ``S``."""
        return self.segments.n_blocks

    @cached_property
    def frac(self) -> np.ndarray:
        """(S, n) each EV's presence in every slot of each segment (the same in all its slots)."""
        return np.ascontiguousarray(self.problem.frac[:, self.segments.first[:-1]].T)

    @cached_property
    def cap(self) -> np.ndarray:
        """(S, n) the most kWh each EV can take in each segment."""
        return self.frac * self.problem.max_kw[None, :] * self.segments.hours[:, None]

    @cached_property
    def minimum(self) -> np.ndarray:
        """(S, n) the fewest kWh an EV charging through a whole segment takes (the minimum-current rule)."""
        return self.frac * self.problem.min_kw[None, :] * self.segments.hours[:, None]

    @cached_property
    def least(self) -> np.ndarray:
        """(S, n) the fewest kWh an EV charging in a segment at all takes: one slot at its minimum (a piece
        under the minimum over the whole segment charges in fewer slots, see :mod:`cut_flow`)."""
        return self.frac * self.problem.min_kw[None, :] * self.problem.dt_h

    @cached_property
    def site(self) -> np.ndarray:
        """(S,) kWh the site allows in each segment."""
        return self.segments.site_kw * self.segments.hours

    @cached_property
    def cap_from(self) -> np.ndarray:
        """(S+1, n) kWh each EV can take from each segment to the end (row ``S``: zeros)."""
        out = np.zeros((self.n_segments + 1, self.problem.n_evs))
        np.cumsum(self.cap[::-1], axis=0, out=out[-2::-1])
        return out

    def prefix_cuts(self) -> np.ndarray:
        """(S+1,) the bound of every prefix cut: ``C([0, τ)) + Σ_i min(E_i, U_i([τ, S)))`` for ``τ = 0..S``."""
        full = np.concatenate([[0.0], np.cumsum(self.site)])
        return full + np.minimum(self.problem.energy_kwh[None, :], self.cap_from).sum(axis=1)

    def best_prefix(self) -> tuple[int, float]:
        """The prefix cut with the least bound: ``(τ, bound)``."""
        cuts = self.prefix_cuts()
        tau = int(np.argmin(cuts))
        return tau, float(cuts[tau])

    def cut_bound(self, full: np.ndarray) -> float:
        """The bound of the cut ``T`` given as a boolean mask (S,) over segments."""
        outside = np.where(full[:, None], 0.0, self.cap).sum(axis=0)
        return float(self.site[full].sum() + np.minimum(self.problem.energy_kwh, outside).sum())

    def to_segments(self, power: np.ndarray) -> np.ndarray:
        """(S, n) kWh per segment of a per-slot schedule (n, T) in kW."""
        return np.ascontiguousarray(self.segments.sum(power).T) * self.problem.dt_h

    def residual_cut(self, energy: np.ndarray, *, tol: float = 1e-9) -> np.ndarray:
        """The full segments an EV still short can reach in the residual network of ``energy`` (S, n): from a
        short EV to a segment where it has room, from a full segment to the EVs charging there, and on. If no
        reachable segment had room, this is a minimum cut and its bound equals what ``energy`` delivers."""
        short = energy.sum(axis=0) < self.problem.energy_kwh - tol
        full = energy.sum(axis=1) >= self.site - tol
        room = self.cap - energy > tol
        charging = energy > tol
        reached = np.zeros(self.n_segments, dtype=bool)
        frontier = short
        while frontier.any():
            new = room[:, frontier].any(axis=1) & full & ~reached
            if not new.any():
                break
            reached |= new
            frontier = charging[new].any(axis=0) & ~short
            short = short | frontier
        return reached
