"""Scenario format v1 (``scenarios/FORMAT.md``): parsing with errors that name the field, and the answer.

No file I/O here: callers read the text and pass it (or an already decoded dict) in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from optivgi_csms.scheduling.algorithm import ScheduleResult
from optivgi_csms.scheduling.ev import EV, ChargingRateUnit
from optivgi_csms.scheduling.metrics import Metrics
from optivgi_csms.scheduling.site import Site, Step

FORMAT_VERSION = 1


class ScenarioError(ValueError):
    """A scenario that does not follow the format; the message starts with the field's path."""


@dataclass(frozen=True)
class Scenario:
    """One scheduling problem as the format describes it."""

    name: str
    now: datetime
    resolution: timedelta
    horizon: timedelta
    site: Site
    evs: tuple[EV, ...]


def _need(data: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in data:
        raise ScenarioError(f"{path}{key}: missing")
    return data[key]


def _number(value: Any, path: str, *, minimum: float | None = 0.0, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(f"{path}: expected a number, got {value!r}")
    if positive and value <= 0:
        raise ScenarioError(f"{path}: must be positive, got {value!r}")
    if minimum is not None and value < minimum:
        raise ScenarioError(f"{path}: must be at least {minimum:g}, got {value!r}")
    return float(value)


def _time(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise ScenarioError(f"{path}: expected an ISO 8601 time, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise ScenarioError(f"{path}: not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise ScenarioError(f"{path}: needs a time zone (e.g. 'Z' or '+01:00'): {value!r}")
    return moment


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{path}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(f"{path}: expected a list, got {type(value).__name__}")
    return value


def _steps(value: Any, path: str, key: str) -> tuple[Step, ...]:
    steps = []
    for k, item in enumerate(_list(value, path)):
        entry = _object(item, f"{path}[{k}]")
        start = _time(_need(entry, "start", f"{path}[{k}]."), f"{path}[{k}].start")
        steps.append(Step(start, _number(_need(entry, key, f"{path}[{k}]."), f"{path}[{k}].{key}")))
    return tuple(steps)


def _site(data: Mapping[str, Any]) -> Site:
    path = "site."
    limit = _number(_need(data, "limit_kw", path), "site.limit_kw")
    schedule = _steps(data.get("limit_kw_schedule", []), "site.limit_kw_schedule", "limit_kw")
    phases: dict[str, float] = {}
    for name, amps in _object(data.get("phase_limit_a", {}), "site.phase_limit_a").items():
        phases[str(name)] = _number(amps, f"site.phase_limit_a.{name}")
    prices = None
    if "price_per_kwh" in data:
        prices = _steps(data["price_per_kwh"], "site.price_per_kwh", "price")
        for k, step in enumerate(prices):
            _number(step.value, f"site.price_per_kwh[{k}].price", minimum=None)
    return Site(
        limit_kw=limit,
        limit_kw_schedule=schedule,
        phase_limit_a=phases,
        price_per_kwh=prices or None,
        min_current_a=_number(data.get("min_current_a", 0), "site.min_current_a"),
        voltage_v=_number(data.get("voltage_v", 230), "site.voltage_v", positive=True),
    )


def _ev(data: Mapping[str, Any], k: int, voltage: float) -> EV:
    path = f"evs[{k}]."
    ev_id = _need(data, "id", path)
    if not isinstance(ev_id, str | int) or isinstance(ev_id, bool):
        raise ScenarioError(f"{path}id: expected a string, got {ev_id!r}")
    phases = data.get("phases", 3)
    if phases not in (1, 3) or isinstance(phases, bool):
        raise ScenarioError(f"{path}phases: must be 1 or 3, got {phases!r}")
    phase_map = tuple(str(p) for p in _list(data.get("phase_map", ["L1", "L2", "L3"][:phases]), f"{path}phase_map"))
    if len(phase_map) != phases or len(set(phase_map)) != phases:
        raise ScenarioError(f"{path}phase_map: needs {phases} distinct phase name(s), got {list(phase_map)!r}")
    arrival = _time(_need(data, "arrival", path), f"{path}arrival")
    departure = _time(_need(data, "departure", path), f"{path}departure")
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise ScenarioError(f"{path}active: expected true or false, got {active!r}")
    connector = data.get("connector_id", 1)
    if isinstance(connector, bool) or not isinstance(connector, int):
        raise ScenarioError(f"{path}connector_id: expected an integer, got {connector!r}")
    max_kw = _number(_need(data, "max_kw", path), f"{path}max_kw")
    min_kw = _number(data.get("min_kw", 0.0), f"{path}min_kw")
    return EV(
        ev_id=ev_id,
        active=active,
        station_id=data.get("station_id", ""),
        connector_id=connector,
        min_power=min_kw,
        max_power=max_kw,
        arrival_time=arrival,
        departure_time=departure,
        energy=_number(_need(data, "energy_kwh", path), f"{path}energy_kwh"),
        unit=ChargingRateUnit.W,
        voltage=voltage,
        phases=phases,
        phase_map=phase_map,
    )


def parse_scenario(source: str | bytes | Mapping[str, Any]) -> Scenario:
    """A :class:`Scenario` from JSON text or a decoded dict; :class:`ScenarioError` names the bad field."""
    if isinstance(source, str | bytes):
        try:
            source = json.loads(source)
        except json.JSONDecodeError as error:
            raise ScenarioError(f"not valid JSON: {error}") from None
    data = _object(source, "scenario")
    version = _need(data, "format", "")
    if version != FORMAT_VERSION:
        raise ScenarioError(f"format: only version {FORMAT_VERSION} is understood, got {version!r}")
    resolution_s = _number(_need(data, "resolution_s", ""), "resolution_s", positive=True)
    horizon_s = _number(_need(data, "horizon_s", ""), "horizon_s", positive=True)
    site = _site(_object(_need(data, "site", ""), "site"))
    evs = [
        _ev(_object(item, f"evs[{k}]"), k, site.voltage_v)
        for k, item in enumerate(_list(_need(data, "evs", ""), "evs"))
    ]
    seen: set[str | int] = set()
    for k, ev in enumerate(evs):
        if ev.ev_id in seen:
            raise ScenarioError(f"evs[{k}].id: duplicate id {ev.ev_id!r}")
        seen.add(ev.ev_id)
    name = data.get("name", "")
    return Scenario(
        name=str(name),
        now=_time(_need(data, "now", ""), "now"),
        resolution=timedelta(seconds=resolution_s),
        horizon=timedelta(seconds=horizon_s),
        site=site,
        evs=tuple(evs),
    )


def iso(moment: datetime) -> str:
    """ISO 8601 with ``Z`` for UTC, as the format writes times."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def answer(scenario: Scenario, result: ScheduleResult, metrics: Metrics) -> dict[str, Any]:
    """The answer document of the format for ``result`` (``power_kw`` per EV id, one value per slot)."""
    # Rounded down, so that rounding can never lift a schedule over a limit.
    power = np.floor(result.power_kw * 1e9) / 1e9
    return {
        "format": FORMAT_VERSION,
        "scenario": scenario.name,
        "algorithm": result.algorithm,
        "solve_s": round(result.solve_s, 6),
        "status": result.status,
        "slot_starts": [iso(s) for s in result.slot_starts],
        "power_kw": {str(ev_id): power[i].tolist() for i, ev_id in enumerate(result.problem.ev_ids)},
        "metrics": metrics.as_dict(),
        "shortfalls": [
            {
                "id": s.ev_id,
                "requested_kwh": round(s.requested_kwh, 6),
                "delivered_kwh": round(s.delivered_kwh, 6),
                "reason": s.reason,
            }
            for s in result.shortfalls
        ],
        "notes": list(result.notes),
    }
