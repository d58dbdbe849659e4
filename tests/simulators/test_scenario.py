"""Simulator scenarios: v1 plus stations and EV batteries; every error names its field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from simulators.generator import PATTERNS, GeneratorOptions, generate_document, generate_scenario
from simulators.scenario import ScenarioError, load_scenario, parse_sim_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

BASE: dict[str, Any] = {
    "format": 1,
    "name": "t",
    "now": "2026-03-02T08:00:00Z",
    "resolution_s": 900,
    "horizon_s": 86400,
    "site": {"limit_kw": 50, "voltage_v": 230},
    "evs": [
        {
            "id": "a",
            "station_id": "CP1",
            "connector_id": 1,
            "arrival": "2026-03-02T08:00:00Z",
            "departure": "2026-03-02T12:00:00Z",
            "energy_kwh": 21.0,
            "max_kw": 11.0,
        },
        {
            "id": "b",
            "station_id": "CP1",
            "connector_id": 2,
            "active": False,
            "arrival": "2026-03-02T09:00:00Z",
            "departure": "2026-03-02T17:00:00Z",
            "energy_kwh": 30.0,
            "max_kw": 7.4,
            "phases": 1,
        },
    ],
}


def doc(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def with_ev(k: int, **fields: Any) -> dict[str, Any]:
    data = doc()
    data["evs"][k].update(fields)
    return data


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.json")), ids=lambda p: p.stem)
def test_every_bundled_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert len(scenario.evs) == len(json.loads(path.read_text())["evs"])
    for ev in scenario.evs:
        assert ev.battery_kwh * (ev.soc_target - ev.soc_initial) == pytest.approx(ev.requested_kwh)


def test_stations_are_derived_from_the_evs_when_absent() -> None:
    scenario = parse_sim_scenario(doc())
    [station] = scenario.stations
    assert (station.station_id, station.evse_count, station.ocpp_version, station.max_current_a) == ("CP1", 2, None, 32)
    assert scenario.end.hour == 17
    assert scenario.limit_kw_at([scenario.start]) == [50.0]


def test_derived_stations_are_big_enough_for_their_evs() -> None:
    scenario = parse_sim_scenario(with_ev(0, max_kw=43.0))  # 3 × 62 A
    assert scenario.stations[0].max_current_a == 62


def test_batteries_are_derived_so_the_ev_is_full_when_it_got_what_it_asked() -> None:
    a, b = parse_sim_scenario(doc()).evs
    assert (a.battery_kwh, a.soc_target) == (50.0, 0.8) and a.soc_initial == pytest.approx(0.8 - 21 / 50)
    assert (a.max_kw, a.phases, a.draw_factor, a.id_tag, a.active) == (11.0, 3, 1.0, "a", True)
    assert (b.phases, b.active) == (1, False)
    big = parse_sim_scenario(with_ev(0, energy_kwh=70.0)).evs[0]
    assert big.battery_kwh == pytest.approx(100.0) and big.soc_initial == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("given", "battery", "initial", "target"),
    [
        ({"battery_kwh": 60.0}, 60.0, 0.45, 0.8),
        ({"battery_kwh": 60.0, "soc_target": 0.9}, 60.0, 0.55, 0.9),
        ({"battery_kwh": 60.0, "soc_initial": 0.2}, 60.0, 0.2, 0.55),
        ({"soc_initial": 0.3, "soc_target": 1.0}, 30.0, 0.3, 1.0),
        ({"soc_initial": 0.9}, 210.0, 0.9, 1.0),
        ({"battery_kwh": 60.0, "soc_initial": 0.1, "soc_target": 0.45}, 60.0, 0.1, 0.45),
    ],
)
def test_given_battery_details_are_kept_and_the_rest_fits_the_energy(given, battery, initial, target) -> None:
    ev = parse_sim_scenario(with_ev(0, **given)).evs[0]
    assert (ev.battery_kwh, ev.soc_initial, ev.soc_target) == pytest.approx((battery, initial, target))


def test_extras_of_an_ev() -> None:
    fields = {"ev_max_kw": 7.0, "draw_factor": 0.5, "id_tag": "TAG-1", "min_current_a": 8, "taper_soc": 0.7}
    ev = parse_sim_scenario(with_ev(0, **fields)).evs[0]
    assert (ev.max_kw, ev.draw_factor, ev.id_tag, ev.min_current_a, ev.taper_soc) == (7.0, 0.5, "TAG-1", 8, 0.7)


def test_an_ev_speaks_iso15118_only_when_the_scenario_says_so() -> None:
    first, second = parse_sim_scenario(with_ev(1, iso15118=True)).evs
    assert (first.iso15118, second.iso15118) == (False, True)
    assert parse_sim_scenario(with_ev(0, iso15118=False)).evs[0].iso15118 is False


def test_energy_may_be_left_out_when_the_battery_says_it() -> None:
    data = with_ev(0, battery_kwh=40.0, soc_initial=0.25, soc_target=0.75)
    del data["evs"][0]["energy_kwh"]
    assert parse_sim_scenario(data).evs[0].requested_kwh == pytest.approx(20.0)


def test_a_stations_list_is_used_as_given() -> None:
    stations = [
        {"id": "CP1", "ocpp_version": "2.0.1", "evse_count": 2, "max_current_a": 16, "phases": 1, "password": "p" * 16},
        {"id": "IDLE", "ocpp_version": "1.6", "vendor": "ACME", "model": "Box", "meter_interval_s": 30},
    ]
    cp1, idle = parse_sim_scenario(doc(stations=stations)).stations
    assert (cp1.ocpp_version, cp1.evse_count, cp1.max_current_a, cp1.phases, cp1.password) == (
        "2.0.1",
        2,
        16.0,
        1,
        "p" * 16,
    )
    assert (idle.station_id, idle.vendor, idle.model, idle.meter_interval_s, idle.evse_count) == (
        "IDLE",
        "ACME",
        "Box",
        30.0,
        1,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (with_ev(1, battery_kwh=-2), "evs[1].battery_kwh: must be positive, got -2"),
        (with_ev(0, battery_kwh=10), "evs[0].battery_kwh: smaller than energy_kwh (21), got 10"),
        (with_ev(0, soc_initial=1.5), "evs[0].soc_initial: must be at most 1, got 1.5"),
        (with_ev(0, soc_initial=0.5, soc_target=0.4), "evs[0].soc_target: must be above soc_initial (0.5), got 0.4"),
        (with_ev(0, battery_kwh=30, soc_initial=0.5), "evs[0].soc_initial: leaves room for 15 kWh"),
        (with_ev(0, battery_kwh=30, soc_target=0.5), "evs[0].soc_target: 0.5 of 30 kWh holds less than energy_kwh"),
        (
            with_ev(0, battery_kwh=60, soc_initial=0.1, soc_target=0.9),
            "evs[0].energy_kwh: 21 kWh, but battery_kwh × (soc_target − soc_initial) = 48 kWh",
        ),
        (with_ev(0, ev_max_kw=0), "evs[0].ev_max_kw: must be positive, got 0"),
        (with_ev(0, max_kw=0), "evs[0].max_kw: must be positive, got 0"),
        (with_ev(1, draw_factor=1.2), "evs[1].draw_factor: must be at most 1, got 1.2"),
        (with_ev(1, id_tag="x" * 21), "evs[1].id_tag: at most 20 characters, got 21"),
        (with_ev(0, station_id="no spaces"), "evs[0].station_id: a station id is 1-48 characters"),
        (with_ev(0, connector_id=0), "evs[0].connector_id: must be at least 1, got 0"),
        (with_ev(0, departure="2026-03-02T07:00:00Z"), "evs[0].departure: must be after arrival"),
        (with_ev(1, id="a"), "evs[1].id: duplicate id 'a'"),
        (with_ev(0, phases=2), "evs[0].phases: must be 1 or 3, got 2"),  # v1's own check
        (with_ev(1, iso15118="yes"), "evs[1].iso15118: expected true or false, got 'yes'"),
        (with_ev(0, iso15118=1), "evs[0].iso15118: expected true or false, got 1"),
        (with_ev(0, iso15118=None), "evs[0].iso15118: expected true or false, got None"),
        (doc(stations={"id": "CP1"}), "stations: expected a list, got dict"),
        (doc(stations=[{"evse_count": 2}]), "stations[0].id: missing"),
        (doc(stations=[{"id": "CP1", "ocpp_version": "2.0"}]), "stations[0].ocpp_version: must be one of 1.6, 2.0.1"),
        (doc(stations=[{"id": "CP1", "evse_count": 0}]), "stations[0].evse_count: must be at least 1, got 0"),
        (doc(stations=[{"id": "CP1", "phases": 2}]), "stations[0].phases: must be 1 or 3, got 2"),
        (doc(stations=[{"id": "CP1", "vendor": "v" * 21}]), "stations[0].vendor: at most 20 characters"),
        (doc(stations=[{"id": "CP1", "evse_count": 2}, {"id": "CP1"}]), "stations[1].id: duplicate id 'CP1'"),
        (doc(stations=[{"id": "CP2"}]), "evs[0].station_id: no station 'CP1' in stations"),
        (doc(stations=[{"id": "CP1"}]), "evs[1].connector_id: station 'CP1' has 1 EVSE(s), got 2"),
    ],
)
def test_errors_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_sim_scenario(data)
    assert str(caught.value).startswith(message)


def test_missing_station_id_is_named() -> None:
    data = doc()
    del data["evs"][0]["station_id"]
    with pytest.raises(ScenarioError, match=r"^evs\[0\]\.station_id: missing"):
        parse_sim_scenario(data)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nope\.json: cannot read"):
        load_scenario(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(with_ev(0, battery_kwh=-1)))
    with pytest.raises(ScenarioError, match=r"bad.json: evs\[0\]\.battery_kwh: must be positive"):
        load_scenario(bad)
    bad.write_text("{")
    with pytest.raises(ScenarioError, match=r"bad\.json: not valid JSON"):
        load_scenario(bad)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_generated_sites_are_valid_and_repeatable(pattern: str) -> None:
    options = GeneratorOptions(chargers=5, evses_per_charger=2, pattern=pattern, seed=7)
    scenario = generate_scenario(options)
    assert len(scenario.stations) == 5 and all(s.evse_count == 2 for s in scenario.stations)
    assert {(ev.station_id, ev.connector_id) for ev in scenario.evs} == {
        (f"SIM-{c}", e) for c in range(1, 6) for e in (1, 2)
    }
    fixed = GeneratorOptions(chargers=5, evses_per_charger=2, pattern=pattern, seed=7, start=scenario.start)
    assert generate_document(fixed) == generate_document(fixed)
    assert all(scenario.start <= ev.arrival < ev.departure <= scenario.end for ev in scenario.evs)
    if pattern == "turnover":
        assert len(scenario.evs) > 10  # several EVs in sequence per connector
    if pattern == "all-at-start":
        assert all(ev.active for ev in scenario.evs)


def test_generator_options_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown arrival pattern 'x'"):
        generate_document(GeneratorOptions(pattern="x"))
    with pytest.raises(ValueError, match="must be positive"):
        generate_document(GeneratorOptions(chargers=0))
