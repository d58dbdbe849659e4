"""Benchmark every scheduling algorithm, and Opti-VGI's two, on the same inputs.

Run from the repository root (see benchmarks/README.md for the environment)::

    benchmarks/.venv/bin/python benchmarks/scheduler.py            # everything, about 20 minutes
    benchmarks/.venv/bin/python benchmarks/scheduler.py --quick    # scenario files and N <= 200

Cases: the scenario files in scenarios/ and generated sites (benchmarks/generate.py) with N = 10, 50, 200,
1000, 5000 EVs at 15-minute slots over 24 hours (with a day/night tariff) and at 1-minute slots over 8
hours (Opti-VGI's own setting). Each run is a separate process with a 60 s limit ("> 60 s" when it does
not finish); once an algorithm needs more than that at some N, larger N (at that resolution) are not
tried. Printed per run:
wall seconds of the calculation (the median of three runs from fresh inputs when one takes under 2 s, the
same for every algorithm, ours and Opti-VGI's), delivered energy as a fraction of the LP optimum (the per-slot
relaxation, an upper bound for any valid schedule; on the largest sites, if that LP takes over two
minutes, the relaxation summed over blocks, a slightly looser bound, marked "*"), the same for the energy
left once the schedule is cut to a valid one (only Opti-VGI's differ: it knows no minimum current or
phases and can over-deliver), peak kW, cost, restarts (an EV paused and started again), and the number of
constraint violations found by optivgi_csms.scheduling.validate. After each case, one line compares the
default algorithm with Opti-VGI's GoAlgorithm: speed ratio and valid energy.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from generate import generate  # noqa: E402

from optivgi_csms.scheduling import ALGORITHMS, DEFAULT_ALGORITHM, Problem, validate  # noqa: E402
from optivgi_csms.scheduling.algorithms.cells import Cells  # noqa: E402
from optivgi_csms.scheduling.algorithms.highs_model import SolverError, max_energy  # noqa: E402
from optivgi_csms.scheduling.algorithms.lp import block_slots, energy_upper_bound  # noqa: E402
from optivgi_csms.scheduling.blocks import partition  # noqa: E402
from optivgi_csms.scheduling.feasibility import make_valid  # noqa: E402
from optivgi_csms.scheduling.metrics import compute_metrics  # noqa: E402
from optivgi_csms.scheduling.scenario import Scenario, parse_scenario  # noqa: E402

TIMEOUT_S = 60.0
OURS = ["lp", "pulp", "go", "uncontrolled", "edf", "llf"]
THEIRS = ["optivgi-go", "optivgi-pulp"]


def _opti_vgi_power(scenario: Scenario, name: str) -> tuple[Any, float]:
    """Run Opti-VGI's algorithm on the scenario; returns (power kW array, seconds)."""
    import numpy as np
    from optivgi.scm.constants import AlgorithmConstants
    from optivgi.scm.ev import EV as OptiEV
    from optivgi.scm.go_algorithm import GoAlgorithm
    from optivgi.scm.pulp_numerical_algorithm import PulpNumericalAlgorithm

    n_slots = round(scenario.horizon / scenario.resolution)
    # Its horizon and resolution are class constants: set them to the case's (this is a child process).
    AlgorithmConstants.RESOLUTION = scenario.resolution
    AlgorithmConstants.RUNTIME = scenario.horizon
    AlgorithmConstants.TIMESTEPS = n_slots
    AlgorithmConstants.POWER_ENERGY_FACTOR = scenario.resolution.total_seconds() / 3600
    evs = [
        OptiEV(
            ev_id=k,
            active=ev.active,
            station_id=k,
            connector_id=1,
            min_power=0.0,
            max_power=ev.max_kw,
            arrival_time=ev.arrival_time,
            departure_time=ev.departure_time,
            energy=ev.energy_kwh,
        )
        for k, ev in enumerate(scenario.evs)
    ]
    starts = [scenario.now + k * scenario.resolution for k in range(n_slots)]
    demand = [float(v) for v in scenario.site.limits_kw(starts)]
    cls = GoAlgorithm if name == "optivgi-go" else PulpNumericalAlgorithm
    algorithm = cls(evs, demand, scenario.now)
    started = time.perf_counter()
    algorithm.calculate()
    seconds = time.perf_counter() - started
    return np.array([[p or 0.0 for p in ev.power] for ev in evs]), seconds


#: A run under this many seconds is repeated (REPEATS times in all) and its median reported: one cold call
#: on a shared 2-core machine varies by +-20%; every algorithm, ours and Opti-VGI's, is measured the same way.
REPEAT_BELOW_S = 2.0
REPEATS = 3


def _solve_once(case: dict, name: str) -> tuple[Any, float, Scenario]:
    """One solve of the case from freshly parsed EVs: (power kW, seconds of ``calculate()``, scenario)."""
    scenario = parse_scenario(case)
    if name in THEIRS:
        power, seconds = _opti_vgi_power(scenario, name)
        return power, seconds, scenario
    algorithm = ALGORITHMS[name](
        list(scenario.evs), scenario.site, scenario.now, resolution=scenario.resolution, horizon=scenario.horizon
    )
    started = time.perf_counter()
    result = algorithm.calculate()
    return result.power_kw, time.perf_counter() - started, scenario


def _run(case: dict, name: str, out: Any) -> None:
    """Child process: solve (repeated when quick), validate the first answer, measure; send a small dict back."""
    power, first_s, scenario = _solve_once(case, name)
    times = [first_s]
    if first_s < REPEAT_BELOW_S:
        times += [_solve_once(case, name)[1] for _ in range(REPEATS - 1)]
    seconds = sorted(times)[len(times) // 2]
    evs = list(scenario.evs)
    problem = Problem.build(evs, scenario.site, scenario.now, scenario.resolution, power.shape[1])
    metrics = compute_metrics(problem, power)
    violations = validate(evs, scenario.site, scenario.now, scenario.resolution, power)
    # What is left of the schedule once every broken limit is cut (the safety net under our algorithms).
    valid, _ = make_valid(problem, power)
    out.send(
        {
            "seconds": seconds,
            "first_seconds": first_s,
            "delivered_kwh": metrics.delivered_kwh,
            "valid_kwh": float(valid.sum() * problem.dt_h),
            "peak_kw": metrics.peak_kw,
            "cost": metrics.cost,
            "restarts": metrics.restarts,
            "served": metrics.evs_fully_served,
            "violations": len(violations),
            "violation_kinds": dict(Counter(v.kind.split(":")[0] for v in violations)),
        }
    )


def run_one(case: dict, name: str, timeout_s: float = TIMEOUT_S) -> dict | None:
    """Run one algorithm on one case in its own process; ``None`` if it did not finish in time."""
    context = mp.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_run, args=(case, name, send))
    process.start()
    answer = receive.recv() if receive.poll(timeout_s) else None
    process.join(1)
    if process.is_alive():
        process.kill()
        process.join()
    return answer


def upper_bound(problem: Problem) -> tuple[float, bool]:
    """The per-slot LP relaxation's optimum, or, if that takes over two minutes, the relaxation summed over
    the default algorithm's blocks (also an upper bound, a little looser); and whether it is the latter."""
    try:
        return energy_upper_bound(problem, time_limit_s=120.0), False
    except SolverError:
        coarse = partition(problem, block_slots(problem))
        return max_energy(coarse, Cells.per_block(coarse), time.perf_counter() + 600.0), True


def cases(quick: bool, sizes: list[int] | None, resolutions: list[int], files: bool) -> list[dict]:
    """Scenario files, then generated sites by size."""
    out = [json.loads(path.read_text()) for path in sorted((ROOT / "scenarios").glob("*.json"))] if files else []
    sizes = sizes or ([10, 50, 200] if quick else [10, 50, 200, 1000, 5000])
    for resolution in resolutions:
        for n in sizes:
            if resolution == 900:
                out.append(generate(n, resolution_s=900, horizon_s=86400, prices=True))
            else:
                out.append(generate(n, resolution_s=resolution, horizon_s=8 * 3600, prices=False))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scenario files and N <= 200 only")
    parser.add_argument("--algorithms", default=",".join(OURS + THEIRS), help="comma-separated subset")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--sizes", help="comma-separated EV counts for the generated sites")
    parser.add_argument("--resolutions", default="900,60", help="slot lengths in seconds (900: 24 h, else 8 h)")
    parser.add_argument("--no-files", action="store_true", help="skip the scenario files")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")] if args.sizes else None
    resolutions = [int(r) for r in args.resolutions.split(",")]
    names = args.algorithms.split(",")
    rows: list[dict] = []
    too_slow: dict[tuple[str, int], int] = {}  # (algorithm, resolution) -> fewest EVs that took > 60 s
    header = f"{'case':<26} {'EVs':>5} {'slots':>5} {'algorithm':<13} {'wall s':>8} {'energy/LP':>9} "
    header += f"{'valid/LP':>9} {'peak kW':>9} {'cost':>9} {'restarts':>8} {'viol.':>6}"
    print(header)
    print("-" * len(header))
    for case in cases(args.quick, sizes, resolutions, not args.no_files):
        scenario = parse_scenario(case)
        n_slots = round(scenario.horizon / scenario.resolution)
        problem = Problem.build(list(scenario.evs), scenario.site, scenario.now, scenario.resolution, n_slots)
        bound, looser = upper_bound(problem)
        res = int(scenario.resolution.total_seconds())
        case_rows: dict[str, dict] = {}
        for name in names:
            n_evs = len(scenario.evs)
            if n_evs >= too_slow.get((name, res), n_evs + 1):
                answer: dict | None = None
            else:
                answer = run_one(case, name)
                if answer is None:
                    too_slow[(name, res)] = min(n_evs, too_slow.get((name, res), n_evs))
            row = {
                "case": scenario.name,
                "evs": len(scenario.evs),
                "slots": n_slots,
                "algorithm": name,
                "lp_optimum_kwh": bound,
                "bound_is_block_relaxation": looser,
                "result": answer,
            }
            rows.append(row)
            case_rows[name] = row
            print(_line(row), flush=True)
        comparison = _compare(case_rows.get(DEFAULT_ALGORITHM), case_rows.get("optivgi-go"))
        if comparison:
            print(comparison, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def _share(kwh: float, row: dict) -> float:
    return kwh / row["lp_optimum_kwh"] if row["lp_optimum_kwh"] > 0 else 1.0


def _line(row: dict) -> str:
    r = row["result"]
    head = f"{row['case']:<26} {row['evs']:>5} {row['slots']:>5} {row['algorithm']:<13} "
    if r is None:
        return head + f"{'> 60 s':>8}"
    mark = "*" if row.get("bound_is_block_relaxation") else " "
    cost = "-" if r["cost"] is None else f"{r['cost']:.1f}"
    kinds = ",".join(f"{k}:{v}" for k, v in r["violation_kinds"].items())
    return head + (
        f"{r['seconds']:>8.3f} {_share(r['delivered_kwh'], row):>8.2%}{mark} {_share(r['valid_kwh'], row):>8.2%}{mark} "
        f"{r['peak_kw']:>9.1f} {cost:>9} {r['restarts']:>8} {r['violations']:>6} {kinds}"
    )


def _compare(ours: dict | None, theirs: dict | None) -> str | None:
    """One line: the default algorithm against Opti-VGI's GoAlgorithm on the same case."""
    if not ours or not theirs or ours["result"] is None:
        return None
    a = ours["result"]
    if theirs["result"] is None:
        return f"  -> {DEFAULT_ALGORITHM} {a['seconds']:.3f} s; optivgi-go did not finish in {TIMEOUT_S:.0f} s"
    b = theirs["result"]
    ratio = b["seconds"] / a["seconds"] if a["seconds"] > 0 else float("inf")
    more = a["valid_kwh"] - b["valid_kwh"]
    return (
        f"  -> {DEFAULT_ALGORITHM} vs optivgi-go: {ratio:.1f}x faster ({a['seconds']:.3f} s vs {b['seconds']:.3f} s); "
        f"valid energy {a['valid_kwh']:.1f} vs {b['valid_kwh']:.1f} kWh ({more:+.1f} kWh, "
        f"{more / b['valid_kwh'] if b['valid_kwh'] > 0 else 0:+.2%}); optivgi-go as sent {b['delivered_kwh']:.1f} kWh "
        f"with {b['violations']} violations"
    )


if __name__ == "__main__":
    sys.exit(main())
