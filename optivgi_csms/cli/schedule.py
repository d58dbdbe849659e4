"""``optivgi-csms schedule``: solve a site scenario file offline and print the answer and its metrics."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: Algorithm names, listed here so that ``--help`` needs no solver import.
ALGORITHM_NAMES = ("lp", "pulp", "go", "uncontrolled", "edf", "llf")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``schedule`` sub-command."""
    parser = commands.add_parser(
        "schedule",
        help="solve a scenario file offline",
        description="Solve a site scenario (scenarios/FORMAT.md) offline and print the schedule and its metrics.",
    )
    parser.add_argument("--scenario", required=True, metavar="FILE", help="scenario file (format v1)")
    parser.add_argument("--algorithm", default="lp", choices=ALGORITHM_NAMES, help="scheduling algorithm (default: lp)")
    parser.add_argument("--json", action="store_true", help="print the answer document of scenarios/FORMAT.md")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read, solve, print; a bad file is one ``CommandError`` naming the field."""
    from optivgi_csms.cli import CommandError
    from optivgi_csms.scheduling.algorithms import ALGORITHMS
    from optivgi_csms.scheduling.metrics import compute_metrics
    from optivgi_csms.scheduling.scenario import ScenarioError, answer, parse_scenario

    path = Path(args.scenario)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        scenario = parse_scenario(text)
    except ScenarioError as error:
        raise CommandError(f"{path}: {error}") from None
    algorithm = ALGORITHMS[args.algorithm](
        list(scenario.evs), scenario.site, scenario.now, resolution=scenario.resolution, horizon=scenario.horizon
    )
    result = algorithm.calculate()
    metrics = compute_metrics(result.problem, result.power_kw)
    document = answer(scenario, result, metrics)
    if args.json:
        json.dump(document, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(_summary(document, scenario))
    return 0


def _summary(document: dict, scenario: object) -> str:
    """A readable table: the headline figures, then one row per EV."""
    from optivgi_csms.scheduling.scenario import Scenario

    assert isinstance(scenario, Scenario)
    m = document["metrics"]
    slot_h = scenario.resolution.total_seconds() / 3600
    cost = "-" if m["cost"] is None else f"{m['cost']:.2f}"
    lines = [
        f"scenario {document['scenario']!r}: {len(scenario.evs)} EVs, {len(document['slot_starts'])} slots "
        f"of {scenario.resolution.total_seconds() / 60:g} min from {scenario.now.isoformat()}",
        f"algorithm {document['algorithm']} ({document['status']}), solved in {document['solve_s']:.3f} s",
        f"delivered {m['delivered_kwh']:.2f} of {m['requested_kwh']:.2f} kWh requested, peak {m['peak_kw']:.2f} kW, "
        f"cost {cost}, {m['evs_fully_served']} EVs fully served, lowest served share "
        f"{m['min_served_fraction']:.1%}, {m['restarts']} restarts",
        "",
        f"{'ev':<14} {'station':<10} {'state':<8} {'asked kWh':>10} {'gets kWh':>9} {'share':>7} {'max kW':>7}  note",
    ]
    reasons = {str(s["id"]): s["reason"] for s in document["shortfalls"]}
    for ev in scenario.evs:
        powers = document["power_kw"][str(ev.ev_id)]
        got = sum(powers) * slot_h
        share = got / ev.energy_kwh if ev.energy_kwh > 0 else 1.0
        state = "plugged" if ev.active else "expected"
        lines.append(
            f"{ev.ev_id!s:<14} {ev.station_id!s:<10} {state:<8} {ev.energy_kwh:>10.2f} {got:>9.2f} "
            f"{share:>7.1%} {max(powers, default=0.0):>7.2f}  {reasons.get(str(ev.ev_id), '')}"
        )
    lines += [f"note: {note}" for note in document["notes"]]
    return "\n".join(lines) + "\n"
