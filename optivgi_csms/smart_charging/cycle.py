"""One scheduling cycle of a site: read, solve off the event loop, queue the profiles, record it all.

The cycle returns as soon as its profiles are queued; the stations' answers are awaited by a separate
task (:func:`finish`), which acts on each answer and then writes the cycle's record with them. So a slow
station never holds up the next cycle, and the record still says how every station answered.

An algorithm that raises or takes longer than ``solver_timeout`` does not leave the site without a plan: the
cycle falls back on equal shares within every limit (:mod:`.safe_schedule`), sends them like any plan, and
records ``status`` ``fallback`` with the reason in its summary (``scheduler_fallback``). The algorithm works
on copies of the EVs, so one still running in its thread after the timeout cannot touch what is sent.
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from optivgi_csms.domain.time import format_timestamp, utc_now
from optivgi_csms.logs import get_logger
from optivgi_csms.scheduling import ALGORITHMS, DEFAULT_ALGORITHM, EV, ScheduleResult
from optivgi_csms.scheduling.ev import kw_from_amps
from optivgi_csms.smart_charging.limits import connection_limits_kw
from optivgi_csms.smart_charging.meters import LiveMeters
from optivgi_csms.smart_charging.outcomes import settle
from optivgi_csms.smart_charging.plan import SitePlan, site_plan
from optivgi_csms.smart_charging.records import CycleRow, write_cycle
from optivgi_csms.smart_charging.runtime import Runtime
from optivgi_csms.smart_charging.safe_schedule import EqualShareAlgorithm
from optivgi_csms.smart_charging.spread import spread
from optivgi_csms.smart_charging.translation import CycleInputs, OcppTranslation

log = get_logger(__name__)

#: The algorithm's time budget (s) when the caller gives none (the ``solver_timeout`` setting's default).
DEFAULT_SOLVER_TIMEOUT_S = 30.0


@dataclass
class CycleReport:
    """A finished cycle: its inputs, the scheduler's result, the plan and the record to complete."""

    row: CycleRow
    inputs: CycleInputs | None = None
    result: ScheduleResult | None = None
    plan: SitePlan | None = None
    #: Why the cycle used equal shares instead of its algorithm's plan (None: it did not).
    fallback_reason: str | None = None

    @property
    def worth_recording(self) -> bool:
        """A periodic cycle of a site with nothing in it is not recorded (it would fill the table)."""
        if self.row.error is not None or self.fallback_reason is not None or set(self.row.trigger) != {"tick"}:
            return True
        inputs = self.inputs
        return inputs is not None and bool(inputs.population.evs or inputs.population.uncontrolled or inputs.sent)


async def run_cycle(
    translation: OcppTranslation,
    site_id: str,
    trigger: dict[str, int],
    executor: Executor | None,
    *,
    solver_timeout_s: float = DEFAULT_SOLVER_TIMEOUT_S,
) -> CycleReport:
    """Plan a controlled site once and queue its profiles (``translation.runtime`` holds the state)."""
    started_at = utc_now()
    started = time.perf_counter()
    row = CycleRow(site_id=site_id, started_at=started_at, trigger=dict(trigger), algorithm="", status="error")
    report = CycleReport(row)
    try:
        evs, voltage = await translation.get_evs(site_id)
        inputs = translation.cycle
        assert inputs is not None
        report.inputs = inputs
        name = inputs.config.algorithm if inputs.config.algorithm in ALGORITHMS else DEFAULT_ALGORITHM
        row.algorithm = name
        now = inputs.timing.now
        demand = await translation.get_peak_power_demand(site_id, now, voltage)
        timing = {"resolution": inputs.timing.resolution, "horizon": inputs.horizon}
        try:
            own = [copy.copy(ev) for ev in evs]
            algorithm = ALGORITHMS[name](own, demand, now, **timing)
            async with asyncio.timeout(solver_timeout_s):
                result = await asyncio.get_running_loop().run_in_executor(executor, algorithm.calculate)
        except Exception as error:
            reason = (
                f"{name} took longer than {solver_timeout_s:g} s"
                if isinstance(error, TimeoutError)
                else f"{name} failed: {type(error).__name__}: {error}"
            )[:500]
            log.error("scheduler fell back on equal shares", site_id=site_id, reason=reason)
            report.fallback_reason = reason
            algorithm = EqualShareAlgorithm(evs, demand, now, reason=reason, **timing)
            result = algorithm.calculate()  # numpy, milliseconds: on the loop, as the executor may be stuck
        else:
            result = _spread(result, algorithm.evs, inputs.config.min_current_a)
        report.result = result
        row.status, row.solve_s = result.status, result.solve_s
        await translation.send_power_to_evs(algorithm.get_charging_profiles())
        report.plan = site_plan(inputs, result, started_at)
    except Exception as error:  # recorded, logged; the next cycle tries again
        log.exception("scheduling cycle failed", site_id=site_id)
        row.error = f"{type(error).__name__}: {error}"[:2000]
    row.cycle_s = time.perf_counter() - started
    return report


def _spread(result: ScheduleResult, evs: list[EV], min_current_a: float) -> ScheduleResult:
    """The plan with its next slots spread over the EVs that are to charge in them (see :mod:`.spread`);
    each EV's ``power`` (what its profile is made of) follows."""
    by_id = {ev.ev_id: ev for ev in evs}
    ordered = [by_id[ev_id] for ev_id in result.problem.ev_ids]
    min_kw = np.array([max(ev.min_kw, kw_from_amps(min_current_a, ev.voltage, ev.phases)) for ev in ordered])
    power = spread(result.problem, result.power_kw, min_kw)
    for ev, row in zip(ordered, power, strict=True):
        ev.power = [ev.from_kw(float(value)) for value in row]
    return replace(result, power_kw=power)


def site_power_and_limit(inputs: CycleInputs, meters: LiveMeters) -> tuple[float, float | None]:
    """What the site draws (kW: the latest meter reading of each open session, 0 for one that has not
    reported) and its connection limit now (kW; None: no limit), as the cycle read them."""
    voltage = inputs.config.voltage_v
    power = 0.0
    for session in inputs.snapshot.sessions:
        reading = meters.get(session.station_id, session.evse_id)
        measured = reading.measured_kw(voltage) if reading is not None else None
        power += measured or 0.0
    (limit,) = connection_limits_kw(inputs.config, [inputs.timing.wall_now], math.inf)
    return power, (None if math.isinf(limit) else limit)


async def finish(runtime: Runtime, report: CycleReport, replan: Callable[[str], None]) -> None:
    """Await every answer to the cycle's profiles, act on them, and write the cycle's record."""
    inputs = report.inputs
    answers: list[dict[str, Any]] = []
    if inputs is not None and inputs.sent:
        stations = inputs.snapshot.stations
        answers = list(
            await asyncio.gather(
                *(settle(runtime, sent, stations.get(sent.station_id), replan) for sent in inputs.sent)
            )
        )
    _fill_row(report, answers)
    if report.worth_recording:
        try:
            await write_cycle(runtime.database, report.row)
        except Exception:
            log.exception("scheduling cycle not recorded", site_id=report.row.site_id)


def _iso(moment: datetime) -> str:
    return format_timestamp(moment)


def _fill_row(report: CycleReport, answers: list[dict[str, Any]]) -> None:
    """The record's summary and per-EV lines."""
    inputs, result, row = report.inputs, report.result, report.row
    if inputs is None:
        return
    population = inputs.population
    scale = inputs.timing.scale
    hours = inputs.timing.resolution.total_seconds() / 3600.0
    tx_answers = {answer["profile_id"]: answer for answer in answers if answer["kind"] == "tx"}
    sent_by_ev = {sent.entry.ev.ev_id: sent for sent in inputs.sent if sent.entry is not None}
    rows = dict(zip(result.problem.ev_ids, result.power_kw, strict=True)) if result is not None else {}
    evs: list[dict[str, Any]] = []
    requested = planned = 0.0
    for entry in population.evs:
        ev = entry.ev
        powers = rows.get(ev.ev_id)
        planned_kwh = scale.site_energy(float(powers.sum()) * hours) if powers is not None else 0.0
        requested += entry.requested_kwh
        planned += planned_kwh
        line: dict[str, Any] = {
            "ev_id": ev.ev_id,
            "station_id": entry.station_id,
            "evse_id": entry.evse_id,
            "transaction_id": entry.transaction_id,
            "reservation_id": entry.reservation_id,
            "active": ev.active,
            "energy_kwh": round(entry.requested_kwh, 4),
            "energy_source": entry.energy_source,
            "departure": _iso(ev.departure_time),
            "departure_source": entry.departure_source,
            "max_kw": round(ev.max_kw, 3),
            "phases": ev.phases,
            "capped": entry.capped,
            "planned_kwh": round(planned_kwh, 4),
            "power_now_kw": round(float(powers[0]), 3) if powers is not None and len(powers) else 0.0,
        }
        sent = sent_by_ev.get(ev.ev_id)
        if sent is not None:
            line["profile"] = tx_answers.get(sent.profile.id)
        elif ev.ev_id in inputs.kept:
            line["profile"] = {"status": "kept", "reason": inputs.kept[ev.ev_id]}
        evs.append(line)
    # A periodic cycle that changed no profile repeats what the cycle that sent them recorded: its per-EV
    # lines are left out (a 200-EV site ticking every minute would otherwise store ~100 MB a day).
    quiet = set(row.trigger) == {"tick"} and not inputs.sent
    row.evs = [] if quiet else evs
    site = inputs.site
    row.summary = {
        "evs": len(population.evs),
        "evs_listed": not quiet,
        "sessions": sum(1 for entry in population.evs if entry.ev.active),
        "reservations": sum(1 for entry in population.evs if not entry.ev.active),
        "uncontrolled": [
            {
                "station_id": load.station_id,
                "evse_id": load.evse_id,
                "transaction_id": load.transaction_id,
                "reservation_id": load.reservation_id,
                "kw": round(load.kw, 3),
                "until": _iso(load.until),
                "reason": load.reason,
            }
            for load in population.uncontrolled
        ],
        "stations": len(inputs.snapshot.stations),
        "limit_kw": inputs.config.limit_kw,
        "limit_now_kw": round(float(site.limits_kw([inputs.timing.now])[0]), 3) if site is not None else None,
        "resolution_s": inputs.timing.resolution.total_seconds(),
        "horizon_s": inputs.horizon.total_seconds(),
        "time_scale": scale.factor,
        "energy_requested_kwh": round(requested, 4),
        "energy_planned_kwh": round(planned, 4),
        "profiles_sent": sum(1 for answer in answers if answer["kind"] == "tx"),
        "profiles_kept": len(inputs.kept),
        "fallback": [answer for answer in answers if answer["kind"] == "fallback"],
        "scheduler_fallback": report.fallback_reason,
        "notes": list(result.notes) if result is not None else [],
        "path": result.path if result is not None else None,
        "shortfalls": [
            {
                "ev_id": s.ev_id,
                "requested_kwh": round(scale.site_energy(s.requested_kwh), 4),
                "planned_kwh": round(scale.site_energy(s.delivered_kwh), 4),
                "reason": s.reason,
            }
            for s in (result.shortfalls if result is not None else ())
        ],
    }
