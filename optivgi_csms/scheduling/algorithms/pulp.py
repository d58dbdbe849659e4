"""PulpNumericalAlgorithm: the readable reference formulation in PuLP, exact (a MILP).

The lexicographic objectives of the default LP, stated strictly (energy, then fairness when not everything
can be delivered, then cost when prices differ, then charging early), each stage holding the previous optimum by
a constraint. The minimum-current rule is modelled exactly with one binary per EV-slot where it applies
(``p ≥ lo·on`` and ``p ≤ cap·on``), so on small problems this is the true optimum the default algorithm is
tested against. PuLP solves it with HiGHS when it can reach it (in process), else with its bundled CBC.
It is slow on large problems: each stage has a time limit, a stage that does not finish
keeps the previous stage's schedule, and if the first does not, :class:`Algorithm` falls back to
GoAlgorithm.

What changed from Opti-VGI's PuLP model, and why: no smoothing term that could outweigh delivered energy;
no common "percentage" that holds every EV at the worst EV's share; an EV with an empty window or nothing
to charge simply has no variables (no division by zero); an infeasible or unfinished solve is detected;
and energy is capped per EV, so nothing is over-delivered.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
import pulp

from optivgi_csms.scheduling.algorithm import DEFAULT_RESOLUTION, Algorithm, Solution
from optivgi_csms.scheduling.algorithms.highs_model import HIGHS_THREADS, stdout_silenced
from optivgi_csms.scheduling.algorithms.objectives import FAIR_SHARES, FAIR_WEIGHTS, HOLD, early_cost
from optivgi_csms.scheduling.ev import EV
from optivgi_csms.scheduling.problem import Problem
from optivgi_csms.scheduling.site import Site


class StageFailed(RuntimeError):
    """CBC found no solution for a stage in time."""


def _solver(time_limit_s: float) -> pulp.LpSolver:
    """HiGHS through PuLP when PuLP can reach it (in process, no deprecation), else PuLP's bundled CBC."""
    if pulp.HiGHS(msg=False).available():
        # The same thread count as our own HiGHS models, or whichever solves second fails (HIGHS_THREADS).
        return pulp.HiGHS(msg=False, timeLimit=time_limit_s, threads=HIGHS_THREADS)
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=max(1, int(time_limit_s)))


def _solve(model: pulp.LpProblem, deadline: float) -> None:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise StageFailed("time limit reached")
    # PuLP builds a ``highspy.Highs``, which prints a banner on stdout (it would corrupt
    # ``optivgi-csms schedule --json``): file descriptor 1 goes to /dev/null meanwhile.
    with stdout_silenced():
        model.solve(_solver(left))
    # sol_status 1 is optimal; 2 is a feasible integer solution found before the time limit.
    if model.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        raise StageFailed(pulp.LpStatus[model.status])


def pulp_schedule(problem: Problem, *, time_limit_s: float = 60.0) -> Solution:
    """The reference schedule for ``problem`` (see the module docstring)."""
    deadline = time.perf_counter() + time_limit_s
    dt = problem.dt_h
    power = np.zeros((problem.n_evs, problem.n_slots))
    cap, lo = problem.cap, problem.lo
    pairs = [(int(i), int(t)) for i, t in zip(*problem.window_slots(), strict=True) if problem.energy_kwh[i] > 0]
    if not pairs:
        return Solution(power, status="optimal", energy_bound_kwh=0.0)

    model = pulp.LpProblem("charging_schedule", pulp.LpMinimize)
    p = {(i, t): model.add_variable(f"p_{i}_{t}", 0, float(cap[i, t])) for i, t in pairs}
    # The minimum-current rule: charging at all means charging at least the minimum.
    for i, t in pairs:
        if lo[i, t] > 0:
            on = model.add_variable(f"on_{i}_{t}", 0, 1, cat=pulp.LpBinary)
            model += p[i, t] <= float(cap[i, t]) * on
            model += p[i, t] >= float(lo[i, t]) * on

    by_slot: dict[int, list[tuple[int, int]]] = {}
    by_ev: dict[int, list[tuple[int, int]]] = {}
    for i, t in pairs:
        by_slot.setdefault(t, []).append((i, t))
        by_ev.setdefault(i, []).append((i, t))
    for t, keys in by_slot.items():
        model += pulp.lpSum(p[k] for k in keys) <= float(problem.site_kw[t]), f"site_{t}"
        for q, name in enumerate(problem.phase_names):
            loads = [(float(problem.phase_coef[i, q]), p[i, s]) for i, s in keys if problem.phase_coef[i, q] > 0]
            if loads:
                limit = float(problem.phase_limit_a[q])
                model += pulp.lpSum(c * v for c, v in loads) <= limit, f"phase_{name}_{t}"
    delivered = {i: pulp.lpSum(p[k] * dt for k in keys) for i, keys in by_ev.items()}
    for i, expr in delivered.items():
        model += expr <= float(problem.energy_kwh[i]), f"energy_{i}"

    def snapshot() -> np.ndarray:
        out = np.zeros_like(power)
        for (i, t), var in p.items():
            out[i, t] = var.value() or 0.0
        return out

    # Stage 1: as much energy as possible.
    total = pulp.lpSum(delivered.values())
    model.setObjective(-total)
    _solve(model, deadline)
    energy = float(pulp.value(total))
    model += total >= energy - HOLD * max(energy, 1.0), "hold_energy"
    power = snapshot()
    notes: list[str] = []
    stage = "fairness"
    try:
        if energy < sum(problem.energy_kwh[i] for i in by_ev) - 1e-6:
            # Stage 2: served fractions, in steps (FAIR_SHARES) each worth less than the one before.
            utility = []
            for i in by_ev:
                steps = [model.add_variable(f"fair_{i}_{k}", 0, float(w)) for k, w in enumerate(FAIR_SHARES)]
                model += float(problem.energy_kwh[i]) * pulp.lpSum(steps) <= delivered[i], f"served_{i}"
                utility += [float(w) * s for w, s in zip(FAIR_WEIGHTS, steps, strict=True)]
            fairness = pulp.lpSum(utility)
            model.setObjective(-fairness)
            _solve(model, deadline)
            best = float(pulp.value(fairness))
            model += fairness >= best - HOLD * max(best, 1.0), "hold_fairness"
            power = snapshot()
        if problem.has_prices and problem.price is not None:
            # Stage 3: the cheapest way to deliver that.
            stage = "cost"
            bill = pulp.lpSum(float(problem.price[t] * dt) * p[i, t] for i, t in pairs)
            model.setObjective(bill)
            _solve(model, deadline)
            best = float(pulp.value(bill))
            model += bill <= best + HOLD * max(abs(best), 1.0), "hold_cost"
            power = snapshot()
        # Stage 4: as early as possible, EVs that leave first keener.
        stage = "shape"
        weight = early_cost(problem)
        model.setObjective(pulp.lpSum(float(weight[i, t]) * p[i, t] for i, t in pairs))
        _solve(model, deadline)
        power = snapshot()
    except StageFailed as error:
        notes.append(f"the {stage} stage did not finish ({error}); the previous stage's schedule is kept")
    status = "optimal" if not notes and model.sol_status == pulp.LpSolutionOptimal else "feasible"
    return Solution(power, status=status, notes=tuple(notes))


class PulpNumericalAlgorithm(Algorithm):
    """Reference MILP in PuLP/CBC: exact, readable, slow beyond a few dozen EVs (``time_limit_s`` bounds
    the whole calculation)."""

    name = "pulp"

    def __init__(
        self,
        evs: list[EV],
        peak_power_demand: list[float] | Site,
        now: datetime,
        *,
        resolution: timedelta = DEFAULT_RESOLUTION,
        horizon: timedelta | None = None,
        time_limit_s: float = 60.0,
    ) -> None:
        super().__init__(evs, peak_power_demand, now, resolution=resolution, horizon=horizon)
        self.time_limit_s = time_limit_s

    def solve(self, problem: Problem) -> Solution:
        return pulp_schedule(problem, time_limit_s=self.time_limit_s)
