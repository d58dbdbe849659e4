"""The algorithm interface (Opti-VGI's ``Algorithm``) and what a calculation returns.

A subclass implements :meth:`Algorithm.solve` on a discretised :class:`Problem`; :meth:`Algorithm.calculate`
does the rest: it builds the problem, runs the solver, falls back to :class:`GoAlgorithm` if the solver
fails, puts the answer through the safety net that guarantees every limit, explains what could not be
delivered, and fills each ``EV.power``. ``calculate()`` never raises for bad-but-legal data.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import numpy as np

from optivgi_csms.scheduling.ev import EV, ChargingProfile, ChargingRateUnit, require_aware
from optivgi_csms.scheduling.feasibility import make_valid
from optivgi_csms.scheduling.problem import Problem
from optivgi_csms.scheduling.site import Site

log = logging.getLogger(__name__)

#: Slot length used when the caller gives none.
DEFAULT_RESOLUTION = timedelta(minutes=15)
#: Horizon used with a :class:`Site` when the caller gives none.
DEFAULT_HORIZON = timedelta(hours=24)


@dataclass(frozen=True)
class Solution:
    """What :meth:`Algorithm.solve` returns: powers (EVs × slots, kW) and how they were found."""

    power_kw: np.ndarray
    status: str = "optimal"
    notes: tuple[str, ...] = ()
    #: An upper bound on deliverable energy (the LP relaxation), when the algorithm computed one.
    energy_bound_kwh: float | None = None
    #: Which way the algorithm found the schedule, when it has several (the default's ``blocks``,
    #: ``per-slot`` or ``exact``; ``fallback`` when GoAlgorithm's schedule replaced a failed solver).
    path: str | None = None


@dataclass(frozen=True)
class Shortfall:
    """An EV that will not get all it asked for, and why."""

    ev_id: str | int
    requested_kwh: float
    delivered_kwh: float
    reason: str


@dataclass(frozen=True)
class ScheduleResult:
    """A valid schedule and everything known about it.

    ``status`` is ``optimal`` (proved optimal, or for the default algorithm proved within 0.1% of the
    energy bound ``energy_bound_kwh``), ``feasible`` (valid, further from the bound), ``heuristic`` (no
    proof sought) or ``fallback`` (the chosen solver failed and GoAlgorithm's schedule is used).
    ``shortfalls`` lists each EV that gets less than it asked for, with the reason; ``notes`` says what
    else could not be satisfied, and ``path`` which way the schedule was found.
    """

    algorithm: str
    problem: Problem
    power_kw: np.ndarray
    solve_s: float
    status: str
    shortfalls: tuple[Shortfall, ...] = ()
    notes: tuple[str, ...] = ()
    energy_bound_kwh: float | None = None
    path: str | None = None

    @property
    def slot_starts(self) -> list[datetime]:
        """Start of every slot."""
        return self.problem.slot_starts

    @property
    def delivered_kwh(self) -> np.ndarray:
        """Energy each EV gets over the horizon, kWh."""
        return self.power_kw.sum(axis=1) * self.problem.dt_h

    def power_of(self, ev_id: str | int) -> np.ndarray:
        """One EV's powers, kW per slot."""
        return self.power_kw[self.problem.ev_ids.index(ev_id)]


def explain_shortfalls(problem: Problem, power: np.ndarray) -> tuple[Shortfall, ...]:
    """Why each EV that gets less than it asked for does."""
    delivered = power.sum(axis=1) * problem.dt_h
    alone = problem.cap.sum(axis=1) * problem.dt_h  # what the EV could take with the site to itself
    out = []
    for i in np.nonzero(delivered < problem.energy_kwh - 1e-6)[0]:
        blocked = problem.blocked[i]
        if blocked is not None:
            reason = blocked.value
        elif problem.energy_kwh[i] > alone[i] + 1e-6 and delivered[i] >= alone[i] - 1e-6:
            reason = f"its window allows at most {alone[i]:.2f} kWh at full power"
        else:
            reason = "shared site or phase limits (with the minimum-current rule) leave no more room"
        out.append(Shortfall(problem.ev_ids[i], float(problem.energy_kwh[i]), float(delivered[i]), reason))
    return tuple(out)


class Algorithm:
    """Base class of every scheduling algorithm (the names and call order of Opti-VGI's ``Algorithm``).

    ``Algorithm(evs, peak_power_demand, now)`` then ``calculate()``; afterwards each ``ev.power`` holds its
    schedule and :meth:`get_charging_profiles` turns it into profiles. ``peak_power_demand`` is either a
    list of site limits in kW, one per slot (Opti-VGI's form: the horizon is its length × ``resolution``),
    or a :class:`Site` with limits over time, phase limits, prices and the minimum current (then the
    horizon is ``horizon``, 24 h by default). ``now`` must be timezone-aware.
    """

    #: Short name used by the command line and the benchmarks.
    name: ClassVar[str] = "base"

    def __init__(
        self,
        evs: Sequence[EV],
        peak_power_demand: Sequence[float] | Site,
        now: datetime,
        *,
        resolution: timedelta = DEFAULT_RESOLUTION,
        horizon: timedelta | None = None,
    ) -> None:
        require_aware(now, "now")
        if resolution <= timedelta(0):
            raise ValueError(f"resolution must be positive, got {resolution}")
        self.evs = list(evs)
        self.peak_power_demand = peak_power_demand
        self.now = now
        self.resolution = resolution
        if isinstance(peak_power_demand, Site):
            self.site = peak_power_demand
            self.n_slots = math.ceil((horizon or DEFAULT_HORIZON) / resolution)
        else:
            limits = [float(v) for v in peak_power_demand]
            self.n_slots = len(limits)
            if horizon is not None and math.ceil(horizon / resolution) != self.n_slots:
                raise ValueError(
                    f"peak_power_demand has {self.n_slots} values but the horizon has "
                    f"{math.ceil(horizon / resolution)} slots of {resolution}"
                )
            voltage = self.evs[0].voltage if self.evs else Site(0.0).voltage_v
            self.site = Site.from_slot_limits(limits, now, resolution, voltage_v=voltage)
        self.horizon = self.n_slots * resolution
        self.result: ScheduleResult | None = None

    def solve(self, problem: Problem) -> Solution:
        """Compute powers (EVs × slots, kW) for ``problem``. Subclasses implement this."""
        raise NotImplementedError

    def calculate(self) -> ScheduleResult:
        """Solve, make sure the answer is valid, explain shortfalls and fill every ``ev.power``."""
        if type(self).solve is Algorithm.solve:
            raise NotImplementedError(f"{type(self).__name__} must implement solve() or calculate()")
        started = time.perf_counter()
        problem = Problem.build(self.evs, self.site, self.now, self.resolution, self.n_slots)
        try:
            solution = self.solve(problem)
        except Exception as error:  # a failing solver must still leave the site with a valid schedule
            log.exception("%s failed; using GoAlgorithm", self.name)
            solution = _fallback(problem, f"{self.name} failed ({error!r}); GoAlgorithm's schedule is used")
        power, changed = make_valid(problem, solution.power_kw)
        notes = list(solution.notes)
        if changed:
            notes.append(f"{changed} EV-slot powers were lowered to respect a limit")
        result = ScheduleResult(
            algorithm=self.name,
            problem=problem,
            power_kw=power,
            solve_s=time.perf_counter() - started,
            status=solution.status,
            shortfalls=explain_shortfalls(problem, power),
            notes=tuple(notes),
            energy_bound_kwh=solution.energy_bound_kwh,
            path=solution.path,
        )
        _fill_ev_powers(self.evs, power)
        self.result = result
        return result

    # -- Opti-VGI accessors --------------------------------------------------------------------------------
    def get_current_power(
        self, unit: ChargingRateUnit | None = None, *, include_planned: bool = False
    ) -> dict[EV, ChargingProfile]:
        """Each EV's profile for the first slot only."""
        return {
            ev: ev.current_charging_profile(self.now, self.resolution, unit)
            for ev in self.evs
            if ev.active or include_planned
        }

    def get_charging_profiles(
        self,
        unit: ChargingRateUnit | None = None,
        *,
        include_planned: bool = False,
        max_periods: int | None = None,
    ) -> dict[EV, ChargingProfile]:
        """Each plugged-in EV's profile over the horizon. Reservations are planned but not charged, so they
        get none unless ``include_planned``."""
        return {
            ev: ev.charging_profile(self.now, self.resolution, unit, max_periods=max_periods)
            for ev in self.evs
            if ev.active or include_planned
        }

    def get_total_energy_charged(self) -> dict[EV, float]:
        """Energy each EV is scheduled to get, in the unit of its ``energy``."""
        return {ev: ev.energy_charged(self.resolution) for ev in self.evs}


def _fill_ev_powers(evs: Sequence[EV], power: np.ndarray) -> None:
    """Each ``ev.power``: its row of ``power`` (kW) in the EV's unit, one float per slot.

    Row by row in numpy (``EV.from_kw`` per value cost 20 ms at 200 EVs × 480 slots); the same arithmetic
    as ``amps_from_kw``, so the values are identical. An EV that gets nothing gets zeros whatever its
    voltage (an unusable voltage would otherwise turn them into NaN).
    """
    for ev, row in zip(evs, power, strict=True):
        if ev.unit is ChargingRateUnit.W or not row.any():
            ev.power = row.tolist()
        else:
            ev.power = (row * 1000.0 / (ev.voltage * ev.phases)).tolist()


def _fallback(problem: Problem, note: str) -> Solution:
    from optivgi_csms.scheduling.algorithms.go import go_schedule

    try:
        return Solution(go_schedule(problem), status="fallback", notes=(note,), path="fallback")
    except Exception:  # last resort: charging nobody is always within every limit
        log.exception("GoAlgorithm failed too; charging nobody")
        zeros = np.zeros((problem.n_evs, problem.n_slots))
        return Solution(
            zeros, status="fallback", notes=(note, "GoAlgorithm failed too: nobody charges"), path="fallback"
        )
