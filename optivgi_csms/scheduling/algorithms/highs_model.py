"""The default algorithm's lexicographic LP on a grid of time blocks, built as sparse arrays, solved by HiGHS.

Rows are per *block* of a partition of the slots (:class:`Blocks`): one site row per block and one row
per limited phase per block (A per kW on each phase the EV loads), then one energy row per EV
(``Σ p·hours ≤ energy``) and one fairness row per EV (``Σ_k s ≤ Σ p·hours``). Columns are first the
powers of :class:`Cells` (one EV's power, constant over a run of consecutive blocks, in every row of the
run; bounds ``lower ≤ p ≤ upper``), then the fairness columns ``s[i,k]`` (kWh of EV ``i``'s ``k``-th
share step). With one block per slot and one slot per cell this is the per-slot model. The stages
(:func:`solve_stages`), in order:

1. **energy and fairness** in one solve: maximise delivered kWh plus ``ε = 1e-3`` times a concave
   piecewise-linear utility of each EV's served share (steps of 5, 5, 10, 15, 15 and 50% of its request,
   worth 1, 5/6, … 1/6 per share rather than per kWh). The utility is at most ``0.4·ε`` per EV, so the
   energy found is within ``ε`` kWh per EV of the maximum; among schedules delivering it, moving energy from
   an EV further along its request to one less far along always pays: nobody is starved while others get
   more than their share.
2. **cost** (only when prices differ): holding energy and fairness by two added rows (to a relative
   1e-7), minimise the bill. A held row, not a weight, so cost can never be bought with energy.
3. **peak** (only for the ``flat`` shape): holding all that, minimise the highest block load.

Each later stage starts from the previous stage's basis. Charging early is not an LP stage: a new
objective costs the simplex as much as the first stage again, while moving each EV's energy to earlier
blocks with room (:mod:`shift`) keeps every optimised quantity and costs almost nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, Literal

import highspy
import numpy as np

from optivgi_csms.scheduling.algorithms.cells import Cells
from optivgi_csms.scheduling.algorithms.objectives import FAIR_SHARES, FAIR_STARTS, FAIR_STEPS, FAIR_WEIGHTS, HOLD
from optivgi_csms.scheduling.blocks import Blocks

INF = highspy.kHighsInf
#: Weight of the fairness utility against delivered energy (see the module docstring).
FAIRNESS_EPS = 1e-3
#: The minimum-current MIP stops within this relative gap of its best objective.
MIP_REL_GAP = 1e-4

Shape = Literal["early", "flat"]


class SolverError(RuntimeError):
    """HiGHS did not reach an optimum."""


@contextlib.contextmanager
def stdout_silenced() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null (what C code prints there is lost), then restore it."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        with contextlib.suppress(Exception):  # flush C's buffered stdout while it still goes to /dev/null
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


# Every HiGHS instance in the process shares one global task scheduler, sized by the first solve's
# ``threads`` option; a later solve asking for another count fails outright (model status "Not Set").
# Ours and PuLP's instances must therefore ask for the same count. Two cores are shared with the CSMS
# itself, and HiGHS's parallel parts do not pay off at these sizes.
HIGHS_THREADS = 1


def new_highs() -> Any:
    """A silent single-threaded HiGHS instance.

    ``highspy.Highs()`` prints a banner on stdout while it is constructed, before any option can be set
    (that would corrupt ``optivgi-csms schedule --json``). The bare binding ``highspy._core._Highs`` does
    not; it is private, so when a highspy release drops it the public class is built with stdout silenced.
    """
    try:
        from highspy._core import _Highs
    except ImportError:
        with stdout_silenced():
            highs = highspy.Highs()
    else:
        highs = _Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", HIGHS_THREADS)
    return highs


class StagedModel:
    """One HiGHS model on ``cells`` with one time row per block of ``blocks``, solved objective after
    objective."""

    def __init__(self, blocks: Blocks, cells: Cells, deadline: float, *, fairness: bool = True) -> None:
        self.blocks = blocks
        self.problem = blocks.problem
        self.cells = cells
        self.deadline = deadline
        self.m = len(cells)
        #: Hours of each power column: kW × hours = kWh.
        self.hours = cells.hours(blocks)
        self.highs = new_highs()
        #: HiGHS simplex strategy to force (None: primal after an objective change, else dual).
        self.strategy: int | None = None
        self.lower, self.upper = cells.lower.astype(float), cells.upper.astype(float)
        self._held_rows: list[int] = []
        self._peak: int | None = None
        self._primal_feasible = False
        #: The block rows' prices after the first stage (for :mod:`bounds`).
        self.first_duals: tuple[np.ndarray, np.ndarray] | None = None
        wants = self.problem.energy_kwh[cells.ev] > 1e-9
        self.fair_evs = np.unique(cells.ev[wants]) if fairness else np.array([], dtype=int)
        self.k = len(self.fair_evs) * FAIR_STEPS
        self._build()

    def _build(self) -> None:
        problem, cells, m, k = self.problem, self.cells, self.m, self.k
        n_blocks = self.blocks.n_blocks
        col = np.arange(m)
        # Phase rows exist only for limited phases that some column loads.
        used = np.nonzero((problem.phase_coef[cells.ev] > 0).any(axis=0))[0] if m else np.array([], int)
        coef = np.column_stack([np.ones(m), problem.phase_coef[cells.ev][:, used]])  # (m, 1 + used)
        n_time = n_blocks * coef.shape[1]
        self._used_phases = used
        evs = np.unique(cells.ev)
        energy_row = np.full(problem.n_evs, -1)
        energy_row[evs] = n_time + np.arange(len(evs))
        fair_row = np.full(problem.n_evs, -1)
        fair_row[self.fair_evs] = n_time + len(evs) + np.arange(len(self.fair_evs))
        first_aggregate_row = n_time + len(evs) + len(self.fair_evs)

        # A column whose run covers several blocks would appear in every one of their rows. Instead, each
        # distinct run gets one aggregate column per constraint (``A = Σ coef·x`` over the run's columns, an
        # equality row), and A appears in the run's rows: far fewer nonzeros for the simplex to carry.
        long = cells.stop - cells.first > 1
        runs, run_of = np.unique(np.column_stack([cells.first[long], cells.stop[long]]), axis=0, return_inverse=True)
        run_of = np.asarray(run_of).ravel()
        long_cols = col[long]
        n_runs, n_cons = len(runs), coef.shape[1]
        aggregate = m + k + np.arange(n_runs * n_cons).reshape(n_runs, n_cons) if n_runs else np.zeros((0, n_cons), int)
        self.aggregate = aggregate
        self._aggregate_of = (long_cols, run_of)

        rows, vals, owners = [], [], []

        def add(r: np.ndarray, v: np.ndarray, o: np.ndarray) -> None:
            rows.append(r)
            vals.append(v)
            owners.append(o)

        # Columns covering one block: directly in that block's time rows.
        short = col[~long]
        site_entries = [(short, cells.first[~long])]
        for c in range(n_cons):
            on = coef[short, c] > 0
            add(c * n_blocks + cells.first[short[on]], coef[short[on], c], short[on])
        # Long columns: in their run's definitional rows; the aggregates in the run's time rows.
        for c in range(n_cons):
            on = coef[long_cols, c] > 0
            add(first_aggregate_row + run_of[on] * n_cons + c, coef[long_cols[on], c], long_cols[on])
            add(first_aggregate_row + np.arange(n_runs) * n_cons + c, -np.ones(n_runs), aggregate[:, c])
        if n_runs:
            length = runs[:, 1] - runs[:, 0]
            run_index = np.repeat(np.arange(n_runs), length)
            covered = (
                np.repeat(runs[:, 0], length)
                + np.arange(len(run_index))
                - np.repeat(np.cumsum(length) - length, length)
            )
            site_entries.append((aggregate[run_index, 0], covered))
            for c in range(n_cons):
                add(c * n_blocks + covered, np.ones(len(covered)), aggregate[run_index, c])
        self._site_entries = (
            np.concatenate([e[0] for e in site_entries]),
            np.concatenate([e[1] for e in site_entries]),
        )
        # Energy row (hours), fairness row (-hours).
        has_fair = fair_row[cells.ev] >= 0
        add(energy_row[cells.ev], self.hours, col)
        add(fair_row[cells.ev[has_fair]], -self.hours[has_fair], col[has_fair])
        # Fairness columns: +1 in their EV's fairness row (Σ_k s[i,k] ≤ Σ p·hours).
        add(np.repeat(fair_row[self.fair_evs], FAIR_STEPS), np.ones(k), m + np.arange(k))

        n_cols = m + k + n_runs * n_cons
        self.n_cols = n_cols
        row = np.concatenate(rows).astype(np.int32)
        val = np.concatenate(vals).astype(float)
        owner = np.concatenate(owners)
        order = np.argsort(owner, kind="stable")
        start = np.searchsorted(owner[order], np.arange(n_cols + 1)).astype(np.int32)

        n_rows = first_aggregate_row + n_runs * n_cons
        limits = np.concatenate([[0.0], problem.phase_limit_a[used]])
        time_upper = np.repeat(limits, n_blocks)
        time_upper[:n_blocks] = self.blocks.site_kw
        row_upper = np.concatenate(
            [time_upper, problem.energy_kwh[evs], np.zeros(len(self.fair_evs)), np.zeros(n_runs * n_cons)]
        )
        row_lower = np.full(n_rows, -INF)
        row_lower[first_aggregate_row:] = 0.0
        wanted = np.repeat(problem.energy_kwh[self.fair_evs], FAIR_STEPS)
        step = wanted * np.tile(FAIR_SHARES, len(self.fair_evs))
        # Per kWh, a step is worth its weight over the EV's request: steps are shares, not kWh, so a small
        # request's first 5% outweighs a big request's second 5%.
        self.fair_weights = np.tile(FAIR_WEIGHTS, len(self.fair_evs)) / wanted
        lp = highspy.HighsLp()
        lp.num_col_ = n_cols
        lp.num_row_ = n_rows
        lp.col_cost_ = np.zeros(n_cols)
        lp.col_lower_ = np.concatenate([cells.lower, np.zeros(k), np.zeros(n_runs * n_cons)]).astype(float)
        lp.col_upper_ = np.concatenate([cells.upper, step, np.full(n_runs * n_cons, INF)]).astype(float)
        lp.row_lower_ = row_lower
        lp.row_upper_ = row_upper.astype(float)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = row[order]
        lp.a_matrix_.value_ = val[order]
        lp.a_matrix_.num_col_ = n_cols
        lp.a_matrix_.num_row_ = n_rows
        self.highs.passModel(lp)

    def aggregate_start(self, x: np.ndarray) -> np.ndarray:
        """The aggregate columns' values implied by powers ``x``."""
        long_cols, run_of = self._aggregate_of
        n_runs, n_cons = self.aggregate.shape
        if not n_runs:
            return np.zeros(0)
        problem = self.problem
        used = np.nonzero((problem.phase_coef[self.cells.ev] > 0).any(axis=0))[0]
        coef = np.column_stack([np.ones(len(long_cols)), problem.phase_coef[self.cells.ev[long_cols]][:, used]])
        out = np.zeros((n_runs, n_cons))
        np.add.at(out, run_of, coef * x[long_cols, None])
        return out.ravel()

    def fair_start(self, x: np.ndarray) -> np.ndarray:
        """The fairness columns' values implied by powers ``x``: each EV's delivered kWh in steps."""
        delivered = np.bincount(self.cells.ev, weights=x * self.hours, minlength=self.problem.n_evs)
        wanted = self.problem.energy_kwh[self.fair_evs][:, None]
        filled = delivered[self.fair_evs][:, None] - wanted * FAIR_STARTS[None, :]
        return np.clip(filled, 0.0, wanted * FAIR_SHARES[None, :]).ravel()

    def solve(
        self,
        cost: np.ndarray,
        fair_cost: np.ndarray | None = None,
        start: np.ndarray | None = None,
        *,
        start_is_feasible: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Minimise ``cost · p + fair_cost · s`` from the current basis, or from the powers ``start`` (say
        whether it keeps every row: then the primal simplex goes on from it, else the dual)."""
        rest = self.n_cols - self.m - self.k
        fair = np.zeros(self.k) if fair_cost is None else fair_cost
        full = np.concatenate([cost, fair, np.zeros(rest)]).astype(float)
        self.highs.changeColsCost(len(full), np.arange(len(full), dtype=np.int32), full)
        if start is not None:
            # Must follow the objective change, which would otherwise discard it. HiGHS crosses over from
            # this point to a basis and the simplex goes on from there: several times fewer iterations than
            # from nothing (measured: 0.3 s against 1.4 s cold and 1.5 s for the interior point method at
            # 5000 EVs × 96 slots in blocks).
            solution = highspy.HighsSolution()
            x0 = np.clip(start, self.lower, self.upper)
            solution.col_value = np.concatenate([x0, self.fair_start(x0), self.aggregate_start(x0)]).tolist()
            solution.value_valid = True
            self.highs.setSolution(solution)
        left = self.deadline - time.perf_counter()
        if left <= 0:
            raise SolverError("time limit reached before the solve")
        self.highs.setOptionValue("time_limit", float(left))
        # After an objective change the optimal basis stays primal feasible, as does a basis crossed over
        # from a feasible start: the primal simplex goes on from it (measured: 0.3 s against 3 s for the
        # per-slot LP at 200 EVs × 480 slots from the block schedule). From nothing, or from a start that
        # breaks rows, the dual simplex is faster (25 ms against 53 ms for the block model there).
        primal = self._primal_feasible or (start is not None and start_is_feasible)
        self.highs.setOptionValue("simplex_strategy", self.strategy or (4 if primal else 1))
        self.highs.run()
        self._primal_feasible = True
        status = self.highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise SolverError(self.highs.modelStatusToString(status))
        values = np.asarray(self.highs.getSolution().col_value)
        return values[: self.m].copy(), values[self.m : self.m + self.k].copy()

    def solve_semicontinuous(self, minimum: np.ndarray) -> np.ndarray | None:
        """The first stage's objective with the minimum-current rule kept exactly: each power column is 0 or
        between ``minimum`` and its upper bound (HiGHS semi-continuous columns, a MIP). Returns the best
        schedule found by the deadline, or None if there is none."""
        on = np.nonzero(minimum > 1e-9)[0].astype(np.int32)
        lower = self.lower.copy()
        lower[on] = np.minimum(minimum[on], self.upper[on])
        self.highs.changeColsBounds(len(on), on, lower[on], self.upper[on])
        self.highs.changeColsIntegrality(len(on), on, np.full(len(on), highspy.HighsVarType.kSemiContinuous))
        rest = self.n_cols - self.m - self.k
        full = np.concatenate([-self.hours, -FAIRNESS_EPS * self.fair_weights, np.zeros(rest)]).astype(float)
        self.highs.changeColsCost(len(full), np.arange(len(full), dtype=np.int32), full)
        left = self.deadline - time.perf_counter()
        if left <= 0:
            return None
        self.highs.setOptionValue("time_limit", float(left))
        self.highs.setOptionValue("mip_rel_gap", MIP_REL_GAP)
        self.highs.run()
        if self.highs.getInfo().primal_solution_status != 2:  # 2: a feasible solution
            return None
        return np.asarray(self.highs.getSolution().col_value)[: self.m].copy()

    def time_duals(self) -> tuple[np.ndarray, np.ndarray]:
        """The last solve's prices of the block rows, per kW of site limit (B,) and per A of each phase limit
        (P, B), as non-negative kWh (the model maximises energy)."""
        n_blocks = self.blocks.n_blocks
        dual = -np.asarray(self.highs.getSolution().row_dual)
        site = dual[:n_blocks]
        phases = np.zeros((len(self.problem.phase_limit_a), n_blocks))
        for q, p in enumerate(self._used_phases):
            phases[p] = dual[n_blocks * (q + 1) : n_blocks * (q + 2)]
        return site, phases

    def objective(self) -> float:
        """Objective value of the last solve."""
        return float(self.highs.getInfo().objective_function_value)

    def hold(self, index: np.ndarray, coef: np.ndarray, lower: float, upper: float) -> None:
        """Add the row ``lower ≤ coef · columns[index] ≤ upper`` (an earlier stage's optimum, held)."""
        nz = np.nonzero(coef)[0]
        self._held_rows.append(self.highs.getNumRow())
        self.highs.addRow(lower, upper, len(nz), index[nz].astype(np.int32), coef[nz].astype(float))

    def release(self) -> None:
        """Let go of every held optimum, so that the stages can be solved again (after :meth:`set_bounds`)."""
        for row in self._held_rows:
            self.highs.changeRowBounds(row, -INF, INF)
        self._held_rows.clear()
        if self._peak is not None:
            self.highs.changeColBounds(self._peak, 0.0, INF)

    def set_bounds(self, lower: np.ndarray, upper: np.ndarray) -> None:
        """New bounds for the power columns. The basis is kept; the dual simplex repairs what they break."""
        self.lower, self.upper = lower.astype(float), upper.astype(float)
        index = np.arange(self.m, dtype=np.int32)
        self.highs.changeColsBounds(self.m, index, self.lower, self.upper)
        self._primal_feasible = False

    def min_peak(self) -> np.ndarray:
        """Minimise the highest block load (one extra column ``P`` and ``Σ_i p[i,b] - P ≤ 0`` per block),
        then hold it."""
        highs, cells = self.highs, self.cells
        if self._peak is not None:  # solved before: the column and rows are there
            highs.changeColCost(self._peak, 1.0)
            x, _ = self.solve(np.zeros(len(cells)))
            return self._hold_peak(x)
        n_blocks = self.blocks.n_blocks
        peak = highs.getNumCol()
        self._peak = peak
        highs.addCol(1.0, 0.0, INF, 0, np.array([], np.int32), np.array([]))
        entry_col, entry_block = self._site_entries
        order = np.argsort(entry_block, kind="stable")
        per_block = np.bincount(entry_block, minlength=n_blocks)
        # Row b holds what loads the site in block b, then P: starts step by (those entries + 1).
        starts = np.concatenate([[0], np.cumsum(per_block + 1)[:-1]]).astype(np.int32)
        index = np.empty(len(entry_col) + n_blocks, dtype=np.int32)
        value = np.ones(len(index))
        peak_at = starts + per_block
        index[peak_at] = peak
        value[peak_at] = -1.0
        index[np.setdiff1d(np.arange(len(index)), peak_at)] = entry_col[order]
        highs.addRows(n_blocks, np.full(n_blocks, -INF), np.zeros(n_blocks), len(index), starts, index, value)
        x, _ = self.solve(np.zeros(len(cells)))
        return self._hold_peak(x)

    def _hold_peak(self, x: np.ndarray) -> np.ndarray:
        assert self._peak is not None
        best = self.objective()
        self.highs.changeColBounds(self._peak, 0.0, best + HOLD * max(best, 1.0))
        self.highs.changeColCost(self._peak, 0.0)
        return x


def max_energy(blocks: Blocks, cells: Cells, deadline: float, start: np.ndarray | None = None) -> float:
    """The most energy (kWh) the model on ``cells`` allows, without fairness: with a relaxation's cells
    (:meth:`Cells.per_block`) an upper bound on any valid schedule."""
    if not len(cells):
        return 0.0
    model = StagedModel(blocks, cells, deadline, fairness=False)
    x, _ = model.solve(-model.hours, start=start, start_is_feasible=True)
    return float(x @ model.hours)


def min_cost(blocks: Blocks, cells: Cells, deadline: float, energy_kwh: float, start: np.ndarray) -> float:
    """The lowest bill (price × kWh) at which the model on ``cells`` delivers at least ``energy_kwh``: with
    a relaxation's cells, a lower bound on the bill of any valid schedule delivering that much. ``start``
    must deliver it (the primal simplex goes on from it)."""
    if not len(cells) or blocks.price is None:
        return 0.0
    model = StagedModel(blocks, cells, deadline, fairness=False)
    model.hold(np.arange(len(cells)), model.hours, energy_kwh, INF)
    cost = blocks.price[cells.first] * model.hours
    x, _ = model.solve(cost, start=start, start_is_feasible=True)
    return float(cost @ x)


def solve_stages(
    blocks: Blocks,
    cells: Cells,
    deadline: float,
    shape: Shape,
    notes: list[str],
    start: np.ndarray | None = None,
    *,
    start_is_feasible: bool = False,
) -> tuple[np.ndarray, float, StagedModel]:
    """Build the model on ``cells`` and solve its stages (:func:`run_stages`); also returns the model, so
    that the stages can be solved again with other bounds."""
    model = StagedModel(blocks, cells, deadline)
    x, energy = run_stages(model, shape, notes, start, start_is_feasible=start_is_feasible)
    return x, energy, model


def run_stages(
    model: StagedModel,
    shape: Shape,
    notes: list[str],
    start: np.ndarray | None = None,
    *,
    start_is_feasible: bool = False,
) -> tuple[np.ndarray, float]:
    """Solve the stages; returns the power columns' values and the first stage's energy (kWh).

    A later stage that fails keeps the previous stage's answer (and says so in ``notes``); a first stage
    that fails raises :class:`SolverError`.
    """
    blocks, cells, problem = model.blocks, model.cells, model.problem
    hours = model.hours
    x, s = model.solve(-hours, -FAIRNESS_EPS * model.fair_weights, start, start_is_feasible=start_is_feasible)
    energy = float(x @ hours)
    model.first_duals = model.time_duals()
    power_index = np.arange(len(cells))
    stage = "cost"
    try:
        model.hold(power_index, hours, energy - HOLD * max(energy, 1.0), INF)
        if model.k:
            fair_index = len(cells) + np.arange(model.k)
            fairness = float(model.fair_weights @ s)
            model.hold(fair_index, model.fair_weights, fairness - HOLD * max(fairness, 1.0), INF)
        if problem.has_prices and blocks.price is not None:
            cost = blocks.price[cells.first] * hours
            x, _ = model.solve(cost)
            bill = float(cost @ x)
            model.hold(power_index, cost, -INF, bill + HOLD * max(abs(bill), 1.0))
        if shape == "flat":
            stage = "peak"
            x = model.min_peak()
    except SolverError as error:
        notes.append(f"the {stage} stage did not finish ({error}); the previous stage's schedule is kept")
    return x, energy
