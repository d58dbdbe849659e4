"""The default algorithm: a flow along a cut, or a lexicographic LP on time blocks (HiGHS), certified against
an upper bound.

The objectives and the model are in :mod:`highs_model`: energy and fairness, then cost, then (for the
``flat`` shape) the peak; charging early is a final move that changes none of these (:mod:`shift`).

* **flow path** (first, where it applies: no price differences, no phase limit that can bind, the
  ``early`` shape, at least ``FLOW_MIN_CELLS`` EV-slots). Without those, the first stage is a transportation
  problem on the exact segments of the horizon (:mod:`network`); a schedule is built along its best
  prefix cut, max-min fair, each EV in one run where it can, then completed by augmenting paths
  (:mod:`cut_flow`, :mod:`augment`), no solver involved. The cut's bound bounds every valid schedule:
  within ``CERTIFIED_GAP`` of it the schedule is used (path ``flow``), otherwise the LP paths below run,
  keeping the bound.
* **block path** (the first LP path). Slots are grouped into coarse blocks of at most :func:`block_slots`
  slots, cut wherever the site limit or the price changes and, where possible, where EVs arrive or leave
  (:mod:`optivgi_csms.scheduling.blocks`). The LP holds an EV present for a whole block at one power over
  it, and gives EVs arriving or leaving inside a block one power per segment where nothing changes
  (:meth:`Cells.flat_in_blocks`): every LP point is a valid per-slot schedule as it stands. It starts from
  a fair greedy plan (:mod:`block_greedy`). If the relaxation charges some column under the EV's minimum
  current, the columns it uses are switched on at their minimum, the others off, and the stages are
  solved again from the same basis (:mod:`repair`). Where nothing binds, EVs charge at their maximum
  from the start of a block (:mod:`expand`); room left goes to EVs still short.
* **certificate**. The schedule is compared with an upper bound on what any valid schedule delivers: the
  best of every EV alone in its window and the bound from the LP's own row prices (:mod:`bounds`, no
  extra LP), and only if those do not show it within ``CERTIFIED_GAP`` (0.1%), the relaxation summed over
  the coarse blocks (an LP, started from the schedule). Within 0.1%: status ``optimal``.
* **refinement** (only when the block path is further from its bounds than that, which the
  minimum-current rule can cause on congested sites): blocks half as long, then the per-slot LP (started
  from the block schedule, with the same minimum-current repair), and on small sites (up to
  ``MIP_CELLS`` EV-slots) the minimum-current rule solved exactly: the first stage as a MIP with
  semi-continuous powers (HiGHS, at most ``MIP_SECONDS``), then the LP stages on the EV-slots it switches
  on (path ``exact``). The best schedule found is kept (most energy; the cheaper of two that tie).

On the LP paths, pauses the simplex's vertex leaves in some EVs' charging are then filled where moves that
change no EV's energy, no bill and no peak allow it (:mod:`restarts`).

The result's ``path`` and first note say which path it took and how far it is from the bound. A later
stage that fails keeps the previous stage's schedule; if the first fails, :class:`Algorithm` falls back to
GoAlgorithm.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from optivgi_csms.scheduling.algorithm import DEFAULT_RESOLUTION, Algorithm, Solution
from optivgi_csms.scheduling.algorithms.block_greedy import block_greedy
from optivgi_csms.scheduling.algorithms.bounds import dual_bound, window_bound
from optivgi_csms.scheduling.algorithms.cells import Cells
from optivgi_csms.scheduling.algorithms.cut_flow import applies, cut_schedule
from optivgi_csms.scheduling.algorithms.expand import fit_limits, realise
from optivgi_csms.scheduling.algorithms.greedy import EPS_KW
from optivgi_csms.scheduling.algorithms.highs_model import (
    FAIRNESS_EPS,
    Shape,
    SolverError,
    StagedModel,
    max_energy,
    min_cost,
    run_stages,
    solve_stages,
)
from optivgi_csms.scheduling.algorithms.network import SegmentNetwork
from optivgi_csms.scheduling.algorithms.repair import minimums, switch_on, top_up
from optivgi_csms.scheduling.algorithms.restarts import fewer_restarts
from optivgi_csms.scheduling.algorithms.shift import shift_early
from optivgi_csms.scheduling.algorithms.smooth import regroup_early
from optivgi_csms.scheduling.blocks import Blocks, exact_partition, partition
from optivgi_csms.scheduling.ev import EV
from optivgi_csms.scheduling.feasibility import make_valid
from optivgi_csms.scheduling.problem import Problem
from optivgi_csms.scheduling.site import Site

#: The block path is accepted when it delivers at least this much less than the bound (relative): 0.1%,
#: and, when prices differ, costs at most this much more than the cheapest way to deliver as much.
CERTIFIED_GAP = 1e-3
#: Blocks grow until the model has about this many columns (EV × block)...
CELL_BUDGET = 3000
#: ...but the horizon keeps at least this many blocks, so that "early" still means something...
MIN_BLOCKS = 24
#: ...and blocks are at least 1/48 of the horizon: the greedy start, the early shift and the simplex all
#: cost per block, and blocks merge only where nothing changes on small sites.
GREEDY_BLOCKS = 48
#: Sites with up to this many EV-slots that no LP path certifies get the minimum-current rule solved
#: exactly (a MIP with semi-continuous powers), for at most MIP_SECONDS.
MIP_CELLS = 2000
MIP_SECONDS = 5.0
#: The flow path (:mod:`cut_flow`) is tried from this many EV-slots on: below it the LP takes a few
#: milliseconds and is exact, while the flow path is only certified within ``CERTIFIED_GAP``.
FLOW_MIN_CELLS = 2000


def _cells(problem: Problem) -> int:
    """EV-slots where an EV that still wants energy could charge."""
    return int(np.count_nonzero((problem.frac > 0) & (problem.energy_kwh[:, None] > 1e-9)))


def block_slots(problem: Problem) -> int:
    """The longest block the block path uses for ``problem``, in slots (1: the per-slot path)."""
    cells = _cells(problem)
    by_size = max(math.ceil(cells / CELL_BUDGET), problem.n_slots // GREEDY_BLOCKS, 1)
    return int(min(by_size, max(1, problem.n_slots // MIN_BLOCKS)))


def _early(rows: Blocks, cells: Cells, x: np.ndarray, coarse: Blocks, shape: Shape) -> np.ndarray:
    """``x`` with energy moved early (:mod:`shift`), under the peak the ``flat`` shape holds."""
    peak = None
    if shape == "flat":
        run, row = cells.expand_runs()
        peak = float(np.bincount(row, weights=x[run], minlength=rows.n_blocks).max(initial=0.0)) * (1 + 1e-9)
    return shift_early(rows, cells, x, coarse, peak)


def _better(a: _Candidate, b: _Candidate) -> bool:
    """``a`` delivers more than ``b``, or as much (within 1e-6) for less."""
    if abs(a.delivered - b.delivered) <= 1e-6 * max(b.delivered, 1.0):
        return a.cost < b.cost - 1e-9
    return a.delivered > b.delivered


def _delivered(problem: Problem, power: np.ndarray) -> float:
    return float(power.sum() * problem.dt_h)


def _with_minimums(
    rows: Blocks,
    cells: Cells,
    deadline: float,
    shape: Shape,
    notes: list[str],
    start: np.ndarray | None,
    start_is_feasible: bool = False,
) -> tuple[np.ndarray, float, tuple[np.ndarray, np.ndarray] | None]:
    """The stages on ``cells``, then, if the relaxation charges some column under its minimum, again with
    the columns it uses switched on and the others off (:func:`repair.switch_on`), from the same basis.
    Returns the column values, the relaxation's first-stage energy and its block rows' prices."""
    x, energy, model = solve_stages(rows, cells, deadline, shape, notes, start, start_is_feasible=start_is_feasible)
    duals = model.first_duals
    lo = minimums(rows, cells)
    if ((x > EPS_KW) & (x < lo * (1 - 1e-9))).any():
        lower, upper = switch_on(rows, cells, x)
        model.release()
        model.set_bounds(lower, upper)
        try:
            x, _ = run_stages(model, shape, notes)
        except SolverError as error:
            # Cannot happen when the minimums fit (they were pruned to fit); be safe anyway: drop what is
            # under its minimum (the safety net and the top-up do the rest).
            notes.append(f"the minimum-current re-solve failed ({error}); columns under their minimum dropped")
            x = np.where(x >= lo * (1 - 1e-9), x, 0.0)
    return x, energy, duals


def _cheap_bound(rows: Blocks, coarse: Blocks, duals: tuple[np.ndarray, np.ndarray] | None) -> float:
    """The better of two bounds of :mod:`bounds` that need no LP: every EV within its window alone, and the
    model's own row prices spread evenly over each coarse block (the restricted model's prices pile up on
    the segments where EVs arrive or leave; spread, they bound the per-slot problem far more tightly)."""
    problem = rows.problem
    best = window_bound(problem)
    if duals is not None:
        site, phases = duals
        in_coarse = np.searchsorted(coarse.first, rows.first[:-1], side="right") - 1
        site_block = np.bincount(in_coarse, weights=site, minlength=coarse.n_blocks) / coarse.length
        phase_block = (
            np.stack([np.bincount(in_coarse, weights=row, minlength=coarse.n_blocks) for row in phases]) / coarse.length
            if len(phases)
            else np.zeros((0, coarse.n_blocks))
        )
        site_slot = np.repeat(site_block, coarse.length)
        phase_slot = np.repeat(phase_block, coarse.length, axis=1)
        best = min(best, dual_bound(problem, site_slot, phase_slot))
    return best


def _per_slot(
    problem: Problem, deadline: float, shape: Shape, notes: list[str], start: np.ndarray
) -> tuple[np.ndarray, float]:
    """The per-slot path (module docstring): powers and the per-slot relaxation's energy."""
    slots = partition(problem, 1)
    cells = Cells.per_block(slots)
    # The start is a valid schedule (the block schedule, or the greedy's): the primal simplex goes on from it.
    x, energy, _ = _with_minimums(slots, cells, deadline, shape, notes, start[cells.ev, cells.first], True)
    power = cells.to_slots(slots, _early(slots, cells, x, slots, shape))
    return top_up(problem, regroup_early(problem, power)), energy


@dataclass(frozen=True)
class _Candidate:
    """A schedule and what is known about it."""

    power: np.ndarray
    delivered: float
    cost: float
    #: Upper bound on any valid schedule's energy.
    bound: float
    #: Lower bound on the bill of any valid schedule delivering ``delivered`` (0 without prices).
    cost_floor: float
    described: str
    path: str

    def certified(self, bound: float) -> bool:
        """Within the gap of ``bound`` in energy and of its own floor in cost."""
        energy_ok = self.delivered >= (1 - CERTIFIED_GAP) * bound - 1e-9
        return energy_ok and self.cost <= (1 + CERTIFIED_GAP) * self.cost_floor + 1e-6


def _cost(problem: Problem, power: np.ndarray) -> float:
    return 0.0 if problem.price is None else float(power.sum(axis=0) @ problem.price * problem.dt_h)


def _exact_minimums(problem: Problem, deadline: float, shape: Shape, notes: list[str]) -> _Candidate | None:
    """The per-slot path with the minimum-current rule solved exactly: the first stage as a MIP (each
    EV-slot 0 or at least its minimum), then the LP stages with the EV-slots it switches on held at their
    minimum and the others off. None when the site is too large or no MIP solution is found in time."""
    slots = partition(problem, 1)
    cells = Cells.per_block(slots)
    if not 0 < len(cells) <= MIP_CELLS:
        return None
    model = StagedModel(slots, cells, min(deadline, time.perf_counter() + MIP_SECONDS))
    lo = minimums(slots, cells)
    x = model.solve_semicontinuous(lo)
    if x is None:
        notes.append("the minimum-current MIP found no schedule in time")
        return None
    on = x > EPS_KW
    held = Cells(
        cells.ev,
        cells.first,
        cells.stop,
        np.where(on, np.minimum(lo, cells.upper), 0.0),
        np.where(on, cells.upper, 0.0),
    )
    x, _, _ = solve_stages(slots, held, deadline, shape, notes, x, start_is_feasible=True)
    power = top_up(problem, held.to_slots(slots, _early(slots, held, x, slots, shape)))
    described = "the per-slot LP with the minimum-current rule solved exactly (MIP)"
    delivered, cost = _delivered(problem, power), _cost(problem, power)
    return _Candidate(power, delivered, cost, float("inf"), cost, described, "exact")


def _block_path(problem: Problem, longest: int, deadline: float, shape: Shape, notes: list[str]) -> _Candidate:
    """The block path with blocks of at most ``longest`` slots, with its bounds."""
    coarse = partition(problem, longest)
    greedy = block_greedy(coarse)
    segments, cells = Cells.flat_in_blocks(coarse)
    start = cells.from_block_average(segments, coarse, greedy)
    x, _, duals = _with_minimums(segments, cells, deadline, shape, notes, start)
    x = _early(segments, cells, x, coarse, shape)
    power = top_up(problem, realise(segments, cells, x, coarse.slot_block))
    delivered, cost = _delivered(problem, power), _cost(problem, power)
    bound = _cheap_bound(segments, coarse, duals)
    relaxed = Cells.per_block(coarse)
    average = coarse.average(power)[relaxed.ev, relaxed.first]
    if delivered < (1 - CERTIFIED_GAP) * bound - 1e-9:
        # The relaxation on the coarse blocks bounds every valid schedule (started from this one).
        try:
            bound = min(bound, max_energy(coarse, relaxed, deadline, average))
        except SolverError as error:
            notes.append(f"the energy bound could not be computed ({error})")
    cost_floor = 0.0
    if problem.has_prices:
        # The cheapest way to deliver as much in the relaxation: no valid schedule doing so costs less.
        try:
            cost_floor = min_cost(coarse, relaxed, deadline, delivered * (1 - 1e-9), average)
        except SolverError as error:
            notes.append(f"the cost bound could not be computed ({error})")
            cost_floor = -np.inf
    described = f"{coarse.n_blocks} blocks of up to {longest} slots"
    return _Candidate(power, delivered, cost, bound, cost_floor, described, "blocks")


def _flow_path(problem: Problem) -> tuple[np.ndarray, float]:
    """The flow path's schedule (:mod:`cut_flow`) and the least of its cut's bound and the window bound."""
    network = SegmentNetwork.build(problem)
    power, bound = cut_schedule(network)
    bound = min(bound, window_bound(problem))
    # Pieces under the minimum charged in fewer slots can overload a slot: lower them, refill what is left
    # (unless nothing is: every slot visited costs on large sites).
    power = fit_limits(problem, power)
    if _delivered(problem, power) < bound * (1 - 1e-9):
        power = top_up(problem, power)
    return power, bound


def _wants_flow(problem: Problem, shape: Shape, flow: bool | None, max_block_slots: int | None) -> bool:
    """Whether to try the flow path: asked for, or by default on sites where the LP is not cheap (and no
    block length was imposed); never for the ``flat`` shape or where the network is not the first stage."""
    if shape != "early" or flow is False or not applies(problem):
        return False
    return flow is True or (max_block_slots is None and _cells(problem) >= FLOW_MIN_CELLS)


def _finish(problem: Problem, power: np.ndarray, bound: float, path: str, described: str, notes: list[str]) -> Solution:
    """The solution for ``power``: valid, its status against ``bound``, and the first note saying how it
    was found. An LP vertex pauses some EVs between runs; those pauses are filled where moves that change
    no optimised number allow it (:mod:`restarts`). The flow path charges each EV in one run by
    construction and is left as it is (its pauses are few, and the moves would cost it most of its time)."""
    if path != "flow":
        power = fewer_restarts(problem, power)
    power, _ = make_valid(problem, power)
    delivered = _delivered(problem, power)
    status = "optimal" if delivered >= (1 - CERTIFIED_GAP) * bound - 1e-9 else "feasible"
    share = max(bound - delivered, 0.0) / bound if 0 < bound < float("inf") else 0.0
    notes.insert(0, f"{path} path ({described}): {delivered:.3f} kWh, {share:.3%} under the bound {bound:.3f} kWh")
    return Solution(power, status=status, notes=tuple(notes), energy_bound_kwh=bound, path=path)


def lp_schedule(
    problem: Problem,
    *,
    time_limit_s: float = 30.0,
    shape: Shape = "early",
    max_block_slots: int | None = None,
    flow: bool | None = None,
) -> Solution:
    """The default algorithm's schedule for ``problem`` (see the module docstring). ``max_block_slots``
    overrides :func:`block_slots` (1: the per-slot model); ``flow`` forces the flow path to be tried (True)
    or skipped (False)."""
    deadline = time.perf_counter() + time_limit_s
    n_slots = problem.n_slots
    if not ((problem.frac > 0) & (problem.energy_kwh[:, None] > 1e-9)).any():
        return Solution(np.zeros((problem.n_evs, n_slots)), status="optimal", energy_bound_kwh=0.0, path="blocks")
    notes: list[str] = []
    # Every bound found below holds for every valid schedule: the least is kept.
    bound = float("inf")
    if _wants_flow(problem, shape, flow, max_block_slots):
        power, bound = _flow_path(problem)
        delivered = _delivered(problem, power)
        if delivered >= (1 - CERTIFIED_GAP) * bound - 1e-9:
            return _finish(problem, power, bound, "flow", "fair schedule along the best prefix cut", notes)
        short = 1 - delivered / bound
        notes.append(f"the flow path delivered {delivered:.3f} kWh, {short:.3%} under its cut bound: the LP runs")
    longest = block_slots(problem) if max_block_slots is None else max(int(max_block_slots), 1)
    if longest == 1:
        # One slot per block: the per-slot path directly, started from the fair greedy (ties between
        # equally good schedules are then broken fairly), run on exact blocks (the same in every slot of a
        # block, and far fewer steps than slots).
        exact = exact_partition(problem, max(1, problem.n_slots // GREEDY_BLOCKS))
        start = np.repeat(block_greedy(exact), exact.length, axis=1)
        power, energy = _per_slot(problem, deadline, shape, notes, start)
        bound = min(bound, energy + FAIRNESS_EPS * problem.n_evs, window_bound(problem))
        path, described = "per-slot", "the per-slot LP with minimum-current repair"
    else:
        # Coarse blocks first; if that is not within the gap of its bounds, blocks half as long (a tighter
        # restriction and tighter bounds), then the per-slot LP. Every energy bound found holds: keep the
        # least. The schedule kept is the one delivering most, the cheaper of two within 1e-6.
        best: _Candidate | None = None
        for attempt in (longest, (longest + 1) // 2, 0):
            try:
                if attempt:
                    found = _block_path(problem, attempt, deadline, shape, notes)
                else:
                    assert best is not None
                    fine, fine_energy = _per_slot(problem, deadline, shape, notes, best.power)
                    fine_bound = fine_energy + FAIRNESS_EPS * problem.n_evs
                    found = _Candidate(
                        fine,
                        _delivered(problem, fine),
                        _cost(problem, fine),
                        fine_bound,
                        _cost(problem, fine),  # the last resort: its own LP's cost is the reference
                        "the per-slot LP with minimum-current repair",
                        "per-slot",
                    )
            except SolverError as error:
                if best is None:  # nothing yet: let Algorithm fall back to GoAlgorithm
                    raise
                what = f"blocks of up to {attempt} slots" if attempt else "the per-slot LP"
                notes.append(f"{what} did not finish ({error}); the best schedule so far is kept")
                break
            bound = min(bound, found.bound)
            if best is None or _better(found, best):
                best = found
            if best.certified(bound) or attempt == 1:
                break
        assert best is not None
        if not best.certified(bound):
            try:
                exact = _exact_minimums(problem, deadline, shape, notes)
            except SolverError as error:
                notes.append(f"the minimum-current MIP's stages did not finish ({error})")
                exact = None
            if exact is not None and _better(exact, best):
                best = exact
        power, path, described = best.power, best.path, best.described
        if problem.has_prices and best.path == "blocks" and best.cost_floor > 0:
            over = best.cost / best.cost_floor - 1
            notes.append(f"cost {best.cost:.2f}, {over:.3%} above the cheapest way to deliver as much")
    return _finish(problem, power, bound, path, described, notes)


def energy_upper_bound(problem: Problem, time_limit_s: float = 300.0) -> float:
    """The most energy any valid schedule could deliver (the per-slot LP relaxation's optimum), kWh."""
    slots = partition(problem, 1)
    return max_energy(slots, Cells.per_block(slots), time.perf_counter() + time_limit_s)


class LPAlgorithm(Algorithm):
    """The default: lexicographic LP (energy, fairness, cost, shape) on time blocks with HiGHS, certified
    within 0.1% of its bound or refined per slot (see the module docstring).

    ``shape`` is ``"early"`` (default: charge as early as possible, EVs leaving first keener) or ``"flat"``
    (the lowest block peak first, then early). ``time_limit_s`` bounds the whole calculation (on expiry
    of the first stage the result is GoAlgorithm's, status ``fallback``). ``max_block_slots`` overrides the
    block length (1: per-slot model). ``flow_path`` forces the flow path to be tried (True) or skipped
    (False); by default it is tried on sites of ``FLOW_MIN_CELLS`` EV-slots or more.
    """

    name = "lp"

    def __init__(
        self,
        evs: list[EV],
        peak_power_demand: list[float] | Site,
        now: datetime,
        *,
        resolution: timedelta = DEFAULT_RESOLUTION,
        horizon: timedelta | None = None,
        shape: Shape = "early",
        time_limit_s: float = 30.0,
        max_block_slots: int | None = None,
        flow_path: bool | None = None,
    ) -> None:
        super().__init__(evs, peak_power_demand, now, resolution=resolution, horizon=horizon)
        self.shape: Shape = shape
        self.time_limit_s = time_limit_s
        self.max_block_slots = max_block_slots
        self.flow_path = flow_path

    def solve(self, problem: Problem) -> Solution:
        return lp_schedule(
            problem,
            time_limit_s=self.time_limit_s,
            shape=self.shape,
            max_block_slots=self.max_block_slots,
            flow=self.flow_path,
        )
