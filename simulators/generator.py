"""Generated sites: N chargers and an arrival pattern become a scenario in memory, without a file.

The scenario is built as a format-v1 document and parsed like a file, so a generated site passes
the same checks and runs through the same code as a written one. The same options and seed give
the same site.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from optivgi_csms.scheduling.scenario import iso
from simulators.scenario import SimScenario, parse_sim_scenario

#: Arrival patterns: every EV there from the start; a working day (arrivals around the start, long
#: stays); a turnover site (short stays all day, several EVs in sequence on each connector).
PATTERNS = ("all-at-start", "workplace", "turnover")

#: (max_kw, phases, share of the fleet): common AC on-board chargers.
EV_KINDS = ((3.7, 1, 0.15), (7.4, 1, 0.35), (11.0, 3, 0.35), (22.0, 3, 0.15))
BATTERIES_KWH = (40.0, 58.0, 77.0, 100.0)


@dataclass(frozen=True)
class GeneratorOptions:
    """What to generate. ``limit_kw`` ``None``: half of what all EVSEs together could draw at 11 kW."""

    chargers: int = 10
    evses_per_charger: int = 1
    pattern: str = "workplace"
    hours: float = 8.0
    limit_kw: float | None = None
    seed: int = 1
    start: datetime | None = None
    prefix: str = "SIM-"


def _visits(pattern: str, rng: random.Random, hours: float) -> list[tuple[float, float, bool]]:
    """``(arrival_h, departure_h, active)`` for one connector, in hours after the start."""
    if pattern == "all-at-start":
        return [(0.0, hours, True)]
    if pattern == "workplace":
        # Arrivals cluster in the first hours, stays are a working day (cut at the end of the run).
        arrival = min(max(0.0, rng.gauss(hours * 0.1, hours * 0.08)), hours * 0.5)
        stay = rng.uniform(0.6, 1.0) * hours
        return [(arrival, min(hours, arrival + stay), arrival == 0.0)]
    visits = []
    t = rng.uniform(0.0, hours * 0.1)
    while t < hours * 0.9:
        stay = rng.uniform(0.1, 0.35) * hours
        visits.append((t, min(hours, t + stay), t == 0.0))
        t += stay + rng.uniform(0.02, 0.1) * hours
    return visits


def _ev(rng: random.Random, ev_id: str, station_id: str, connector: int, start: datetime, visit: tuple) -> dict:
    arrival_h, departure_h, active = visit
    max_kw, phases, _ = rng.choices(EV_KINDS, weights=[kind[2] for kind in EV_KINDS])[0]
    battery = rng.choice(BATTERIES_KWH)
    stay_h = departure_h - arrival_h
    # Ask for what the stay could bring at full power, or less: some EVs leave satisfied, some do not.
    energy = round(min(battery * rng.uniform(0.15, 0.7), max_kw * stay_h * rng.uniform(0.5, 1.2)), 2)
    return {
        "id": ev_id,
        "station_id": station_id,
        "connector_id": connector,
        "active": active,
        "arrival": iso(start + timedelta(hours=arrival_h)),
        "departure": iso(start + timedelta(hours=departure_h)),
        "energy_kwh": max(energy, 0.5),
        "max_kw": max_kw,
        "phases": phases,
        "battery_kwh": battery,
    }


def generate_document(options: GeneratorOptions) -> dict[str, Any]:
    """The scenario document (format v1 plus the simulator's fields) the options describe."""
    if options.pattern not in PATTERNS:
        raise ValueError(f"unknown arrival pattern {options.pattern!r}; choose one of {', '.join(PATTERNS)}")
    if options.chargers < 1 or options.evses_per_charger < 1 or options.hours <= 0:
        raise ValueError("chargers, EVSEs per charger and hours must be positive")
    rng = random.Random(options.seed)
    start = options.start or datetime.now(UTC).replace(second=0, microsecond=0)
    width = len(str(options.chargers))
    stations, evs = [], []
    for c in range(1, options.chargers + 1):
        station_id = f"{options.prefix}{c:0{width}d}"
        stations.append({"id": station_id, "evse_count": options.evses_per_charger})
        for connector in range(1, options.evses_per_charger + 1):
            for visit in _visits(options.pattern, rng, options.hours):
                evs.append(_ev(rng, f"ev-{len(evs) + 1}", station_id, connector, start, visit))
    evses = options.chargers * options.evses_per_charger
    limit = options.limit_kw if options.limit_kw is not None else round(evses * 11.0 / 2, 1)
    return {
        "format": 1,
        "name": f"generated-{options.chargers}-{options.pattern}",
        "now": iso(start),
        "resolution_s": 900,
        "horizon_s": round(options.hours * 3600),
        "site": {"voltage_v": 230, "limit_kw": limit, "min_current_a": 6},
        "stations": stations,
        "evs": evs,
    }


def generate_scenario(options: GeneratorOptions) -> SimScenario:
    """A generated site, checked like a scenario file."""
    return parse_sim_scenario(generate_document(options))
