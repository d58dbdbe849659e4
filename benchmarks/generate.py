"""Synthetic sites in scenario format v1, for the benchmarks (deterministic for a given seed).

The shape follows the figures in shared/anchors.md: EVs of 7.2–19.2 kW, a site limit of 30% of the
installed power, a 1-minute × 8-hour case like the one Opti-VGI was measured on, and 15-minute × 24-hour
cases with a day/night tariff. Most EVs are plugged in; the rest are reservations arriving later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def generate(
    n_evs: int,
    *,
    resolution_s: int = 900,
    horizon_s: int = 86400,
    seed: int = 1,
    prices: bool = True,
    min_current_a: float = 6.0,
    limit_share: float = 0.3,
) -> dict[str, Any]:
    """A scenario dict with ``n_evs`` EVs."""
    rng = np.random.default_rng(seed)
    horizon_h = horizon_s / 3600
    evs = []
    for k in range(n_evs):
        three_phase = rng.random() < 0.8
        max_kw = float(rng.uniform(7.2, 19.2)) if three_phase else 7.2
        if rng.random() < 0.7:  # plugged in already
            arrival = NOW - timedelta(hours=float(rng.uniform(0, 2)))
        else:
            arrival = NOW + timedelta(hours=float(rng.uniform(0, 0.6 * horizon_h)))
        departure = arrival + timedelta(hours=float(rng.uniform(2, min(10, max(horizon_h, 2.5)))))
        evs.append(
            {
                "id": f"ev-{k + 1}",
                "station_id": f"CP{k + 1:05d}",
                "connector_id": 1,
                "active": arrival <= NOW,
                "arrival": _iso(arrival.replace(microsecond=0)),
                "departure": _iso(departure.replace(microsecond=0)),
                "energy_kwh": round(float(rng.uniform(5, 60)), 2),
                "max_kw": round(max_kw, 2),
                "min_kw": 0.0,
                "phases": 3 if three_phase else 1,
                "phase_map": ["L1", "L2", "L3"] if three_phase else [f"L{1 + k % 3}"],
            }
        )
    installed = sum(ev["max_kw"] for ev in evs)
    site: dict[str, Any] = {
        "voltage_v": 230,
        "limit_kw": round(limit_share * installed, 1),
        "min_current_a": min_current_a,
    }
    if prices:
        site["price_per_kwh"] = [
            {"start": _iso(NOW), "price": 0.32},
            {"start": _iso(NOW + timedelta(hours=9)), "price": 0.38},
            {"start": _iso(NOW + timedelta(hours=14)), "price": 0.22},
            {"start": _iso(NOW + timedelta(hours=22)), "price": 0.14},
        ]
    minutes = resolution_s // 60
    return {
        "format": 1,
        "name": f"generated-{n_evs}-{minutes}min",
        "now": _iso(NOW),
        "resolution_s": resolution_s,
        "horizon_s": horizon_s,
        "site": site,
        "evs": evs,
    }
