"""Scenario format v1 parsing, the answer document and ``optivgi-csms schedule``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optivgi_csms.cli import main
from optivgi_csms.scheduling import validate
from optivgi_csms.scheduling.scenario import ScenarioError, parse_scenario

SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.json"))
MINIMAL = {
    "format": 1,
    "now": "2026-03-02T08:00:00Z",
    "resolution_s": 900,
    "horizon_s": 3600,
    "site": {"limit_kw": 10},
    "evs": [
        {
            "id": "a",
            "arrival": "2026-03-02T07:00:00Z",
            "departure": "2026-03-02T09:00:00Z",
            "energy_kwh": 5,
            "max_kw": 11,
        }
    ],
}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_parses(path: Path) -> None:
    scenario = parse_scenario(path.read_text())
    assert scenario.evs and scenario.now.tzinfo is not None


def _with(change: dict) -> dict:
    data = json.loads(json.dumps(MINIMAL))
    for dotted, value in change.items():
        target = data
        *parents, last = dotted.split(".")
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return data


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"format": 2}, "format"),
        ({"now": "2026-03-02T08:00:00"}, "now"),
        ({"site.limit_kw": -1}, "site.limit_kw"),
        ({"site.limit_kw": None}, "site.limit_kw"),
        ({"evs.0.energy_kwh": "lots"}, "evs[0].energy_kwh"),
        ({"evs.0.phases": 2}, "evs[0].phases"),
        ({"evs.0.phase_map": ["L1", "L1", "L2"]}, "evs[0].phase_map"),
        ({"evs.0.departure": "tomorrow"}, "evs[0].departure"),
        ({"resolution_s": 0}, "resolution_s"),
        ({"site.price_per_kwh": [{"start": "2026-03-02T08:00:00Z"}]}, "site.price_per_kwh[0].price"),
    ],
)
def test_bad_fields_are_named(change: dict, field: str) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario(_with(change))
    assert str(error.value).startswith(field)


def test_duplicate_ids_are_refused() -> None:
    data = _with({})
    data["evs"].append(dict(data["evs"][0]))
    with pytest.raises(ScenarioError, match=r"evs\[1\].id"):
        parse_scenario(data)


def test_schedule_json_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = SCENARIOS[0]
    assert main(["schedule", "--scenario", str(path), "--algorithm", "lp", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    scenario = parse_scenario(path.read_text())
    assert answer["format"] == 1 and answer["scenario"] == scenario.name and answer["algorithm"] == "lp"
    assert set(answer["power_kw"]) == {str(ev.ev_id) for ev in scenario.evs}
    assert len(answer["slot_starts"]) == 96
    assert {"requested_kwh", "delivered_kwh", "peak_kw", "cost", "evs_fully_served", "min_served_fraction"} <= set(
        answer["metrics"]
    )
    power = [answer["power_kw"][str(ev.ev_id)] for ev in scenario.evs]
    assert validate(list(scenario.evs), scenario.site, scenario.now, scenario.resolution, power) == []


def test_schedule_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    path = next(p for p in SCENARIOS if "small" in p.stem)
    assert main(["schedule", "--scenario", str(path), "--algorithm", "go"]) == 0
    out = capsys.readouterr().out
    assert "delivered" in out and "ev-1" in out


def test_schedule_bad_file_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_with({"evs.0.max_kw": None})))
    assert main(["schedule", "--scenario", str(bad)]) == 2
    assert "evs[0].max_kw: missing" in capsys.readouterr().err
    assert main(["schedule", "--scenario", str(tmp_path / "none.json")]) == 2
    bad.write_text("{not json")
    assert main(["schedule", "--scenario", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_schedule_json_stays_json_with_the_pulp_reference(capfd: pytest.CaptureFixture[str]) -> None:
    # PuLP's HiGHS interface prints a banner on file descriptor 1 when it builds a solver.
    path = next(p for p in SCENARIOS if "small" in p.stem)
    assert main(["schedule", "--scenario", str(path), "--algorithm", "pulp", "--json"]) == 0
    answer = json.loads(capfd.readouterr().out)
    assert answer["algorithm"] == "pulp"
