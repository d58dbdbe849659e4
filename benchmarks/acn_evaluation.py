"""The default algorithm in a simulator nobody here wrote: Caltech's acnportal (ACN-Sim).

Our LP is wrapped as an acnportal scheduling algorithm and run on a congested synthetic workplace of 54
EVSEs (32 A at 230 V each, 397 kW installed) under a single site limit, with two weekdays of synthetic
arrivals (about 70 sessions a day, arriving around 08:30, staying 3–10 h, asking 5–35 kWh), against
acnportal's own Earliest Deadline First, Least Laxity First and Uncontrolled baselines, with ideal
batteries and 5-minute periods. acnportal measures energy delivered, demands met and the peak; we add
milliseconds per scheduling call. Run from the repository root::

    benchmarks/.venv/bin/python benchmarks/acn_evaluation.py [--limit-kw 150 80]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acnportal import acnsim, algorithms  # noqa: E402
from acnportal.acnsim.network import Current  # noqa: E402
from acnportal.algorithms import BaseAlgorithm  # noqa: E402

from optivgi_csms.scheduling import EV, GoAlgorithm, LPAlgorithm, Site  # noqa: E402

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
PERIOD_MIN = 5
VOLTAGE = 230.0
MAX_AMPS = 32.0
N_EVSE = 54


class OptiVgiCsms(BaseAlgorithm):
    """An optivgi-csms algorithm as an acnportal scheduler: each call plans the EVs present over their
    remaining stay and applies the first slot, as the live server does every cycle."""

    def __init__(self, algorithm_cls: type, limit_kw: float) -> None:
        super().__init__()
        # Re-plan every period (acnportal otherwise calls a scheduler only on plug-in and unplug events).
        self.max_recompute = 1
        self.algorithm_cls = algorithm_cls
        self.limit_kw = limit_kw
        self.seconds: list[float] = []

    def schedule(self, active_sessions: list) -> dict[str, list[float]]:
        iface = self.interface
        period = timedelta(minutes=iface.period)
        now = START + iface.current_time * period
        evs = [
            EV(
                ev_id=s.session_id,
                active=True,
                station_id=s.station_id,
                connector_id=1,
                min_power=0.0,
                max_power=iface.max_pilot_signal(s.station_id) * iface.evse_voltage(s.station_id) / 1000,
                arrival_time=now,
                departure_time=now + max(s.remaining_time, 1) * period,
                energy=max(s.remaining_demand, 0.0),
                voltage=iface.evse_voltage(s.station_id),
                phases=1,
            )
            for s in active_sessions
        ]
        if not evs:
            return {}
        horizon = max(max(s.remaining_time for s in active_sessions), 1) * period
        started = time.perf_counter()
        algorithm = self.algorithm_cls(
            evs, Site(limit_kw=self.limit_kw, min_current_a=6.0), now, resolution=period, horizon=horizon
        )
        result = algorithm.calculate()
        self.seconds.append(time.perf_counter() - started)
        pilots = {}
        for ev, row in zip(evs, result.power_kw, strict=True):
            amps = row[0] * 1000 / ev.voltage
            # A hair under the plan, so that acnportal's own rounding can never see it above a limit.
            pilots[ev.station_id] = [max(min(amps * (1 - 1e-9), MAX_AMPS), 0.0)]
        return pilots


def network(limit_kw: float) -> acnsim.ChargingNetwork:
    """54 single-phase EVSEs under one site limit (converted to amperes at 230 V)."""
    net = acnsim.ChargingNetwork()
    ids = [f"EVSE-{k:02d}" for k in range(N_EVSE)]
    for station in ids:
        net.register_evse(acnsim.get_evse_by_type(station, "BASIC"), VOLTAGE, 0)
    net.add_constraint(Current(ids), limit_kw * 1000 / VOLTAGE, name="site")
    return net


def sessions(days: int = 2, per_day: int = 70, seed: int = 4) -> acnsim.EventQueue:
    """Synthetic weekday arrivals, each put on an EVSE free at its arrival (or turned away)."""
    rng = np.random.default_rng(seed)
    periods_per_hour = 60 // PERIOD_MIN
    free_at = np.zeros(N_EVSE, dtype=int)
    events = []
    arrivals = []
    for day in range(days):
        for _ in range(per_day):
            hour = float(np.clip(rng.normal(8.5, 1.2), 6, 14))
            stay = float(rng.uniform(3, 10))
            arrivals.append((day * 24 + hour, stay, float(rng.uniform(5, 35))))
    for k, (hour, stay, kwh) in enumerate(sorted(arrivals)):
        arrival = int(hour * periods_per_hour)
        departure = arrival + int(stay * periods_per_hour)
        free = np.nonzero(free_at <= arrival)[0]
        if not len(free):
            continue
        station = int(free[0])
        free_at[station] = departure
        battery = acnsim.Battery(capacity=100, init_charge=0, max_power=MAX_AMPS * VOLTAGE / 1000)
        ev = acnsim.EV(arrival, departure, kwh, f"EVSE-{station:02d}", f"s{k}", battery)
        events.append(acnsim.PluginEvent(arrival, ev))
    return acnsim.EventQueue(events)


def evaluate(name: str, scheduler: BaseAlgorithm, limit_kw: float) -> dict[str, float]:
    """Run the simulation; acnportal's own metrics."""
    sim = acnsim.Simulator(network(limit_kw), scheduler, sessions(), START, period=PERIOD_MIN, verbose=False)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim.run()
    wall = time.perf_counter() - started
    steps = max(len(getattr(scheduler, "seconds", [])), 1)
    calls = getattr(scheduler, "seconds", None)
    per_call_ms = 1000 * (sum(calls) / steps if calls else wall / max(sim.pilot_signals.shape[1], 1))
    peak_kw = float(np.max(acnsim.aggregate_current(sim))) * VOLTAGE / 1000
    return {
        "energy": float(acnsim.proportion_of_energy_delivered(sim)),
        "demands_met": float(acnsim.proportion_of_demands_met(sim)),
        "peak_kw": peak_kw,
        "ms_per_call": per_call_ms,
        "sessions": len(sim.ev_history),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-kw", type=float, nargs="+", default=[150.0, 80.0])
    args = parser.parse_args()
    print(f"{'limit kW':>8} {'algorithm':<28} {'energy':>8} {'demands met':>12} {'peak kW':>8} {'ms/call':>8}")
    for limit in args.limit_kw:
        contenders: list[tuple[str, BaseAlgorithm]] = [
            ("optivgi-csms lp (default)", OptiVgiCsms(LPAlgorithm, limit)),
            ("optivgi-csms go", OptiVgiCsms(GoAlgorithm, limit)),
            ("acnportal EDF", algorithms.SortedSchedulingAlgo(algorithms.earliest_deadline_first)),
            ("acnportal LLF", algorithms.SortedSchedulingAlgo(algorithms.least_laxity_first)),
            ("acnportal Uncontrolled", algorithms.UncontrolledCharging()),
        ]
        for name, scheduler in contenders:
            m = evaluate(name, scheduler, limit)
            print(
                f"{limit:>8.0f} {name:<28} {m['energy']:>8.1%} {m['demands_met']:>12.1%} "
                f"{m['peak_kw']:>8.1f} {m['ms_per_call']:>8.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
