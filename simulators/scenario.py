"""Site scenarios for the simulator: format v1 (``scenarios/FORMAT.md``) plus the simulator's extras.

The scheduler's parser reads the v1 fields (site, limits, EVs and their windows); this module adds
what a simulated site needs beyond a scheduling problem and checks it with errors that name the
field, in the same style (``evs[3].battery_kwh: must be positive, got -2``):

- an optional top-level ``stations`` list: ``id``, ``ocpp_version`` (``"1.6"``/``"2.0.1"``),
  ``evse_count``, ``max_current_a``, ``phases``, ``password``, ``vendor``, ``model``,
  ``serial_number``, ``meter_interval_s``. Without it, one station per distinct ``station_id`` of the
  EVs, with as many EVSEs as its highest ``connector_id``, and the protocol version left to the run.
- per-EV battery details: ``battery_kwh``, ``soc_initial``, ``soc_target``, ``ev_max_kw``,
  ``draw_factor``, ``min_current_a``, ``taper_soc``, ``taper_floor``, ``id_tag`` (``phases`` is v1's).
  Missing ones are derived from ``energy_kwh``/``max_kw`` so that the EV is full (at its target)
  exactly when it has received ``energy_kwh`` (:func:`_battery`).
- per EV, ``iso15118`` (``true``/``false``, default false): the EV speaks ISO 15118, so on a 2.0.1 station
  it tells the CSMS its departure and energy (NotifyEVChargingNeeds). The run's ``--iso15118`` may
  override it for every EV (:data:`ISO15118_MODES`).

No network, no asyncio: the site runner turns a :class:`SimScenario` into stations and EVs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from optivgi_csms.domain.station import STATION_ID_RULE, is_valid_station_id
from optivgi_csms.scheduling.scenario import Scenario, ScenarioError, parse_scenario
from optivgi_csms.scheduling.site import sample_steps

__all__ = [
    "ISO15118_MODES",
    "OCPP_VERSIONS",
    "ScenarioError",
    "SimEV",
    "SimScenario",
    "StationSpec",
    "load_scenario",
    "parse_sim_scenario",
]

#: The protocol versions a simulated station can speak.
OCPP_VERSIONS = ("1.6", "2.0.1")
#: Which EVs of a run speak ISO 15118 (and so, on a 2.0.1 station, tell the CSMS their departure and energy):
#: those whose ``iso15118`` is true, every one, or none. OCPP 1.6 has no message for it whatever the mode.
ISO15118_MODES = ("scenario", "all", "none")
#: A battery assumed when the scenario gives none: no smaller than this ...
DEFAULT_BATTERY_KWH = 50.0
#: ... and big enough that the wanted energy is at most this share of it (so the EV arrives with some charge).
DEFAULT_ENERGY_SHARE = 0.7
#: The state of charge an EV stops at when the scenario names neither target nor battery.
DEFAULT_SOC_TARGET = 0.8
#: Hardware current per EVSE and phase when the scenario has no ``stations`` list (a common 22 kW AC box).
DEFAULT_STATION_CURRENT_A = 32.0
#: IEC 61851: an EV pauses below this pilot current; used when the site sets no ``min_current_a``.
IEC_MIN_CURRENT_A = 6.0
#: OCPP 1.6 ``idTag`` and the 1.6 vendor/model fields are CiString20: the tightest of both versions.
MAX_ID_TAG = 20
MAX_VENDOR_MODEL = 20
#: How far ``energy_kwh`` may differ from ``battery_kwh × (soc_target − soc_initial)`` when all are given.
ENERGY_TOLERANCE = 0.01


@dataclass(frozen=True)
class StationSpec:
    """One charging station of the site. ``ocpp_version`` ``None``: the run's protocol mix decides."""

    station_id: str
    ocpp_version: str | None = None
    evse_count: int = 1
    max_current_a: float = DEFAULT_STATION_CURRENT_A
    phases: int = 3
    password: str | None = None
    vendor: str = "optivgi-sim"
    model: str = "SimStation"
    serial_number: str | None = None
    meter_interval_s: float | None = None


@dataclass(frozen=True)
class SimEV:
    """One EV visit: where and when it plugs in, what it asks for, and its battery.

    ``requested_kwh`` is v1's ``energy_kwh``; the battery fields always satisfy
    ``battery_kwh × (soc_target − soc_initial) ≈ requested_kwh`` so the EV stops when it got what it asked.
    """

    ev_id: str
    station_id: str
    connector_id: int
    arrival: datetime
    departure: datetime
    active: bool
    requested_kwh: float
    battery_kwh: float
    soc_initial: float
    soc_target: float
    max_kw: float
    phases: int
    draw_factor: float = 1.0
    min_current_a: float = IEC_MIN_CURRENT_A
    taper_soc: float | None = None
    taper_floor: float | None = None
    id_tag: str = ""
    #: The site phases it loads (v1's ``phase_map``: where the station's wiring puts a one-phase EV).
    phase_map: tuple[str, ...] = ()
    #: It speaks ISO 15118: on a 2.0.1 station it tells the CSMS its needs (the scenario's ``iso15118``).
    iso15118: bool = False


@dataclass(frozen=True)
class SimScenario:
    """A v1 scenario with the stations and EVs the simulator runs."""

    base: Scenario
    stations: tuple[StationSpec, ...]
    evs: tuple[SimEV, ...]

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def start(self) -> datetime:
        """Scenario time when the run begins (v1's ``now``)."""
        return self.base.now

    @property
    def end(self) -> datetime:
        """When the scenario is over: the last departure (or the horizon's end when there are no EVs)."""
        if not self.evs:
            return self.base.now + self.base.horizon
        return max(self.start, max(ev.departure for ev in self.evs))

    def limit_kw_at(self, moments: list[datetime]) -> list[float]:
        """The site limit in force at each moment (v1's ``limit_kw`` and ``limit_kw_schedule``), kW."""
        site = self.base.site
        return [float(v) for v in sample_steps(site.limit_kw, site.limit_kw_schedule, moments)]


# --- field checks (the messages follow optivgi_csms.scheduling.scenario) -------------------------------------


def _number(value: Any, path: str, *, low: float | None = None, high: float | None = None, positive=False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(f"{path}: expected a number, got {value!r}")
    if positive and value <= 0:
        raise ScenarioError(f"{path}: must be positive, got {value!r}")
    if low is not None and value < low:
        raise ScenarioError(f"{path}: must be at least {low:g}, got {value!r}")
    if high is not None and value > high:
        raise ScenarioError(f"{path}: must be at most {high:g}, got {value!r}")
    return float(value)


def _integer(value: Any, path: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{path}: expected an integer, got {value!r}")
    if value < low:
        raise ScenarioError(f"{path}: must be at least {low}, got {value!r}")
    return value


def _text(value: Any, path: str, *, max_length: int | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{path}: expected a non-empty string, got {value!r}")
    if max_length is not None and len(value) > max_length:
        raise ScenarioError(f"{path}: at most {max_length} characters, got {len(value)}")
    return value


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):  # 0/1 or "true" are refused too: JSON has true and false
        raise ScenarioError(f"{path}: expected true or false, got {value!r}")
    return value


def _phases(value: Any, path: str) -> int:
    if value not in (1, 3) or isinstance(value, bool):
        raise ScenarioError(f"{path}: must be 1 or 3, got {value!r}")
    return int(value)


def _station_id(value: Any, path: str) -> str:
    if not isinstance(value, str) or not is_valid_station_id(value):
        raise ScenarioError(f"{path}: a station id is {STATION_ID_RULE}, got {value!r}")
    return value


def _optional(data: Mapping[str, Any], key: str, path: str, **limits: Any) -> float | None:
    return _number(data[key], f"{path}{key}", **limits) if key in data else None


# --- stations ----------------------------------------------------------------------------------------------


def _station(data: Any, k: int) -> StationSpec:
    path = f"stations[{k}]."
    if not isinstance(data, Mapping):
        raise ScenarioError(f"stations[{k}]: expected an object, got {type(data).__name__}")
    if "id" not in data:
        raise ScenarioError(f"{path}id: missing")
    version = data.get("ocpp_version")
    if version is not None and version not in OCPP_VERSIONS:
        raise ScenarioError(f"{path}ocpp_version: must be one of {', '.join(OCPP_VERSIONS)}, got {version!r}")
    password = data.get("password")
    serial = data.get("serial_number")
    interval = _optional(data, "meter_interval_s", path, positive=True)
    return StationSpec(
        station_id=_station_id(data["id"], f"{path}id"),
        ocpp_version=version,
        evse_count=_integer(data.get("evse_count", 1), f"{path}evse_count", low=1),
        max_current_a=_number(
            data.get("max_current_a", DEFAULT_STATION_CURRENT_A), f"{path}max_current_a", positive=True
        ),
        phases=_phases(data.get("phases", 3), f"{path}phases"),
        password=None if password is None else _text(password, f"{path}password"),
        vendor=_text(data.get("vendor", "optivgi-sim"), f"{path}vendor", max_length=MAX_VENDOR_MODEL),
        model=_text(data.get("model", "SimStation"), f"{path}model", max_length=MAX_VENDOR_MODEL),
        serial_number=None if serial is None else _text(serial, f"{path}serial_number", max_length=25),
        meter_interval_s=interval,
    )


def _stations(raw: Any, evs: list[SimEV], voltage_v: float) -> tuple[StationSpec, ...]:
    """The ``stations`` list checked against the EVs, or stations derived from the EVs when absent."""
    if raw is None:
        evse_counts: dict[str, int] = {}
        currents: dict[str, float] = {}
        for ev in evs:  # first appearance keeps the scenario's order
            evse_counts[ev.station_id] = max(evse_counts.get(ev.station_id, 0), ev.connector_id)
            # The hardware must not be what limits an EV the scenario says can take more than a 32 A box gives
            # (rounded to the nearest ampere: a "7.4 kW" EV is a 32 A one at 230 V).
            needed = round(ev.max_kw * 1000 / (voltage_v * ev.phases))
            currents[ev.station_id] = max(currents.get(ev.station_id, DEFAULT_STATION_CURRENT_A), float(needed))
        return tuple(
            StationSpec(station_id=sid, evse_count=count, max_current_a=currents[sid])
            for sid, count in evse_counts.items()
        )
    if not isinstance(raw, list):
        raise ScenarioError(f"stations: expected a list, got {type(raw).__name__}")
    stations = [_station(item, k) for k, item in enumerate(raw)]
    by_id: dict[str, StationSpec] = {}
    for k, station in enumerate(stations):
        if station.station_id in by_id:
            raise ScenarioError(f"stations[{k}].id: duplicate id {station.station_id!r}")
        by_id[station.station_id] = station
    for k, ev in enumerate(evs):
        station = by_id.get(ev.station_id)
        if station is None:
            raise ScenarioError(f"evs[{k}].station_id: no station {ev.station_id!r} in stations")
        if ev.connector_id > station.evse_count:
            raise ScenarioError(
                f"evs[{k}].connector_id: station {ev.station_id!r} has {station.evse_count} EVSE(s), "
                f"got {ev.connector_id}"
            )
    return tuple(stations)


# --- EVs ---------------------------------------------------------------------------------------------------


def _battery(data: Mapping[str, Any], path: str, energy: float) -> tuple[float, float, float]:
    """``(battery_kwh, soc_initial, soc_target)`` with ``battery × (target − initial) = energy``.

    Given values are kept; missing ones are derived: the battery is the largest of 50 kWh, energy / 0.7
    and whatever the given states of charge need; the target defaults to 80 % (or what the initial
    state plus the energy gives); the initial state is what remains.
    """
    battery = _optional(data, "battery_kwh", path, positive=True)
    initial = _optional(data, "soc_initial", path, low=0, high=1)
    target = _optional(data, "soc_target", path, low=0, high=1)
    if initial is not None and target is not None and target <= initial:
        raise ScenarioError(f"{path}soc_target: must be above soc_initial ({initial:g}), got {target:g}")
    if battery is None:
        if initial is not None and target is not None:
            battery = energy / (target - initial) if energy > 0 else DEFAULT_BATTERY_KWH
        else:
            candidates = [DEFAULT_BATTERY_KWH, energy / DEFAULT_ENERGY_SHARE]
            if initial is not None and initial < 1:
                candidates.append(energy / (1 - initial))
            if target is not None and target > 0:
                candidates.append(energy / target)
            battery = max(candidates)
    if energy > battery * (1 + ENERGY_TOLERANCE):
        raise ScenarioError(f"{path}battery_kwh: smaller than energy_kwh ({energy:g}), got {battery:g}")
    share = min(1.0, energy / battery)
    if target is None:
        target = initial + share if initial is not None else max(DEFAULT_SOC_TARGET, share)
        if target > 1 + 1e-9:
            raise ScenarioError(
                f"{path}soc_initial: leaves room for {(1 - initial) * battery:g} kWh, but energy_kwh is {energy:g}"
            )
        target = min(1.0, target)
    if initial is None:
        initial = target - share
        if initial < -1e-9:
            raise ScenarioError(
                f"{path}soc_target: {target:g} of {battery:g} kWh holds less than energy_kwh ({energy:g})"
            )
        initial = max(0.0, initial)
    elif abs(battery * (target - initial) - energy) > max(ENERGY_TOLERANCE * energy, 0.01):
        raise ScenarioError(
            f"{path}energy_kwh: {energy:g} kWh, but battery_kwh × (soc_target − soc_initial) = "
            f"{battery * (target - initial):g} kWh"
        )
    return battery, initial, target


def _ev(data: Mapping[str, Any], k: int, v1_ev: Any, site_min_current_a: float) -> SimEV:
    path = f"evs[{k}]."
    ev_id = str(v1_ev.ev_id)
    if "station_id" not in data:
        raise ScenarioError(f"{path}station_id: missing (the simulator needs to know where the EV plugs in)")
    station_id = _station_id(data["station_id"], f"{path}station_id")
    connector = _integer(v1_ev.connector_id, f"{path}connector_id", low=1)
    if v1_ev.departure_time <= v1_ev.arrival_time:
        raise ScenarioError(f"{path}departure: must be after arrival ({data['arrival']}), got {data['departure']!r}")
    energy = float(v1_ev.energy)
    battery, initial, target = _battery(data, path, energy)
    if "ev_max_kw" in data:
        max_kw = _number(data["ev_max_kw"], f"{path}ev_max_kw", positive=True)
    else:
        max_kw = _number(v1_ev.max_power, f"{path}max_kw", positive=True)
    min_current = _optional(data, "min_current_a", path, low=0)
    id_tag = _text(data.get("id_tag", ev_id[-MAX_ID_TAG:]), f"{path}id_tag", max_length=MAX_ID_TAG)
    return SimEV(
        ev_id=ev_id,
        station_id=station_id,
        connector_id=connector,
        arrival=v1_ev.arrival_time,
        departure=v1_ev.departure_time,
        active=v1_ev.active,
        requested_kwh=energy,
        battery_kwh=battery,
        soc_initial=initial,
        soc_target=target,
        max_kw=max_kw,
        phases=v1_ev.phases,
        phase_map=tuple(v1_ev.phase_map),
        draw_factor=_optional(data, "draw_factor", path, positive=True, high=1) or 1.0,
        min_current_a=min_current if min_current is not None else (site_min_current_a or IEC_MIN_CURRENT_A),
        taper_soc=_optional(data, "taper_soc", path, low=0, high=1),
        taper_floor=_optional(data, "taper_floor", path, positive=True, high=1),
        id_tag=id_tag,
        iso15118=_boolean(data.get("iso15118", False), f"{path}iso15118"),
    )


def _fill_energy(raw_evs: Any) -> Any:
    """v1 needs ``energy_kwh``; the simulator also accepts an EV that gives its battery and both states of charge."""
    if not isinstance(raw_evs, list):
        return raw_evs
    filled = []
    for item in raw_evs:
        if isinstance(item, Mapping) and "energy_kwh" not in item:
            try:
                battery = float(item["battery_kwh"])
                energy = battery * (float(item["soc_target"]) - float(item["soc_initial"]))
            except (KeyError, TypeError, ValueError):
                pass  # v1 reports the missing energy_kwh
            else:
                item = {**item, "energy_kwh": max(0.0, energy)}
        filled.append(item)
    return filled


def parse_sim_scenario(source: str | bytes | Mapping[str, Any]) -> SimScenario:
    """A :class:`SimScenario` from JSON text or a decoded dict; :class:`ScenarioError` names the bad field."""
    if isinstance(source, str | bytes):
        try:
            source = json.loads(source)
        except json.JSONDecodeError as error:
            raise ScenarioError(f"not valid JSON: {error}") from None
    if not isinstance(source, Mapping):
        raise ScenarioError(f"scenario: expected an object, got {type(source).__name__}")
    data = dict(source)
    if "evs" in data:
        data["evs"] = _fill_energy(data["evs"])
    base = parse_scenario(data)
    pairs = enumerate(zip(data["evs"], base.evs, strict=True))
    evs = [_ev(raw, k, v1_ev, base.site.min_current_a) for k, (raw, v1_ev) in pairs]
    seen: dict[str, int] = {}
    for k, ev in enumerate(evs):
        if ev.ev_id in seen:  # v1 compares ids as given; 7 and "7" are one EV here
            raise ScenarioError(f"evs[{k}].id: duplicate id {ev.ev_id!r} (as evs[{seen[ev.ev_id]}])")
        seen[ev.ev_id] = k
    stations = _stations(data.get("stations"), evs, base.site.voltage_v)
    return SimScenario(base=base, stations=stations, evs=tuple(evs))


def load_scenario(path: str | Path) -> SimScenario:
    """Read and parse a scenario file; unreadable files are :class:`ScenarioError` too, naming the file."""
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        return parse_sim_scenario(text)
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None
