"""The end-of-run report from a synthetic recorder: JSON figures, and a chart written as PNG."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from simulators.recorder import PowerSample, ProfileEvent, Recorder, SessionRecord
from simulators.report import RunInfo, build_report, power_series, summary_lines, write_report
from simulators.scenario import parse_sim_scenario

SCENARIO = parse_sim_scenario(
    {
        "format": 1,
        "name": "two-evs",
        "now": "2026-03-02T08:00:00Z",
        "resolution_s": 900,
        "horizon_s": 7200,
        "site": {"limit_kw": 15, "limit_kw_schedule": [{"start": "2026-03-02T09:00:00Z", "limit_kw": 10}]},
        "evs": [
            {
                "id": "a",
                "station_id": "S1",
                "arrival": "2026-03-02T08:00:00Z",
                "departure": "2026-03-02T09:00:00Z",
                "energy_kwh": 10,
                "max_kw": 7.4,
                "phases": 1,
            },
            {
                "id": "b",
                "station_id": "S2",
                "arrival": "2026-03-02T08:30:00Z",
                "departure": "2026-03-02T10:00:00Z",
                "energy_kwh": 12,
                "max_kw": 11,
            },
            {
                "id": "c",
                "station_id": "S2",
                "arrival": "2026-03-02T09:00:00Z",
                "departure": "2026-03-02T10:00:00Z",
                "energy_kwh": 5,
                "max_kw": 11,
                "connector_id": 2,
            },
        ],
    }
)
START = SCENARIO.start


def minutes(m: float):
    return START + timedelta(minutes=m)


@pytest.fixture
def recorder() -> Recorder:
    """``a`` draws 7.4 kW 08:00-09:00 on S1; ``b`` 11 kW 08:30-10:00 on S2; ``c`` never gets energy."""
    recorder = Recorder()
    for m in range(120):
        recorder.sample(PowerSample(minutes(m), "S1", 1, "a" if m < 60 else None, 7.4 if m < 60 else 0.0, 7.4, 0, None))
        if m >= 30:
            recorder.sample(PowerSample(minutes(m), "S2", 1, "b", 11.0, 22.0, 0, 0.5))
    a, b, c = SCENARIO.evs
    for ev, delivered, plugged in ((a, 7.4, 0), (b, 12.0, 30), (c, 0.0, None)):
        recorder.sessions[ev.ev_id] = SessionRecord(
            ev.ev_id,
            ev.station_id,
            ev.connector_id,
            ev.requested_kwh,
            ev.arrival,
            ev.departure,
            delivered_kwh=delivered,
            plugged_at=None if plugged is None else minutes(plugged),
            unplugged_at=None if plugged is None else ev.departure,
            transaction_id=None if plugged is None else f"tx-{ev.ev_id}",
        )
    recorder.profile(ProfileEvent(minutes(5), "S1", 1, {"id": 1, "stackLevel": 0}, True))
    recorder.profile(ProfileEvent(minutes(6), "S1", 1, {"id": 2, "stackLevel": 99}, False, "stack level too high"))
    recorder.profile(ProfileEvent(minutes(7), "S2", 0, {"id": 3}, False, "stack level too high"))
    recorder.protocol_error(minutes(50), "S2", "answer broke the schema")
    for action, direction, n in (
        ("BootNotification", "sent", 2),
        ("MeterValues", "sent", 10),
        ("Reset", "received", 1),
    ):
        for _ in range(n):
            recorder.message("S1", direction, action)
    return recorder


def info(**changes) -> RunInfo:
    fields = dict(
        scenario=SCENARIO,
        url="ws://127.0.0.1:9000/ocpp",
        time_scale=120.0,
        versions={"S1": "1.6", "S2": "2.0.1"},
        wall_s=60.2,
        sim_start=START,
        sim_end=SCENARIO.end,
        stopped="scenario over",
        connected=frozenset({"S1", "S2"}),
        notes={"c": ["not plugged in: it left before the start"]},
    )
    fields.update(changes)
    return RunInfo(**fields)


def test_site_power_holds_each_sample_and_sums_the_evses(recorder: Recorder) -> None:
    series = power_series(recorder.samples, SCENARIO, START, SCENARIO.end, points=121)
    assert series.step_s == 60
    assert series.site_kw[[0, 29, 45, 70, 119]].tolist() == pytest.approx([7.4, 7.4, 18.4, 11.0, 11.0])
    assert series.limit_kw[[0, 59, 60, 120]].tolist() == [15, 15, 10, 10]
    assert series.ev_kw["a"][[0, 59, 60]].tolist() == pytest.approx([7.4, 7.4, 0.0])
    assert series.ev_kw["b"][[29, 30]].tolist() == pytest.approx([0.0, 11.0])


def test_a_station_that_stops_sampling_stops_drawing() -> None:
    samples = [PowerSample(minutes(m), "S1", 1, "a", 7.4, None, 0, None) for m in range(10)]
    series = power_series(samples, SCENARIO, START, minutes(60), points=61)
    assert series.site_kw[9] == pytest.approx(7.4) and series.site_kw[20] == 0


def test_report_figures(recorder: Recorder) -> None:
    report = build_report(recorder, info())
    assert report["scenario"] == "two-evs" and report["stopped"] == "scenario over"
    assert report["stations"]["by_version"] == {"1.6": 1, "2.0.1": 1}
    assert report["stations"]["connected"] == 2
    totals = report["totals"]
    assert totals["evs"] == 3 and totals["evs_plugged_in"] == 2 and totals["evs_with_energy"] == 2
    assert totals["evs_fully_served"] == 1
    assert (totals["requested_kwh"], totals["delivered_kwh"]) == (27.0, 19.4)
    assert totals["peak_site_kw"] == pytest.approx(18.4)
    assert totals["min_limit_kw"] == 10
    assert totals["max_excess_kw"] == pytest.approx(3.4)
    # over the limit from 08:30 to 09:00 (18.4 > 15) and from 09:00 to 10:00 (11 > 10): 1.5 h
    assert totals["time_over_limit_s"] == pytest.approx(5400, rel=0.02)
    assert totals["energy_over_limit_kwh"] == pytest.approx(3.4 * 0.5 + 1.0, rel=0.03)
    rows = {row["id"]: row for row in report["evs"]}
    assert rows["a"]["status"] == "partly served" and rows["a"]["served_share"] == 0.74
    assert rows["b"]["status"] == "served" and rows["b"]["peak_kw"] == 11 and rows["b"]["ocpp_version"] == "2.0.1"
    assert rows["c"]["status"] == "not plugged in" and rows["c"]["notes"] == [
        "not plugged in: it left before the start"
    ]
    assert rows["a"]["plugged_at"] == "2026-03-02T08:00:00Z" and rows["b"]["transaction_id"] == "tx-b"
    assert set(report["ev_power_kw"]) == {"a", "b"}
    assert len(report["site_power"]["times"]) == len(report["site_power"]["power_kw"]) == 600


def test_profiles_errors_and_messages(recorder: Recorder) -> None:
    report = build_report(recorder, info())
    profiles = report["profiles"]
    assert (profiles["received"], profiles["accepted"], profiles["rejected"]) == (3, 1, 2)
    assert profiles["per_station"]["S1"] == {"accepted": 1, "rejected": 1, "reasons": {"stack level too high": 1}}
    assert profiles["events"][1]["reason"] == "stack level too high"
    assert report["protocol_errors"]["count"] == 1 and report["protocol_errors"]["per_station"] == {"S2": 1}
    assert report["protocol_errors"]["items"][0]["sim_time"] == "2026-03-02T08:50:00Z"
    messages = report["messages"]
    assert (messages["sent"], messages["received"]) == (12, 1)
    assert messages["by_action"]["MeterValues"] == {"sent": 10, "received": 0}


def test_files_are_written(recorder: Recorder, tmp_path: Path) -> None:
    target = tmp_path / "out" / "run"
    report = write_report(recorder, info(), target)
    assert json.loads((target / "report.json").read_text()) == json.loads(json.dumps(report))
    png = (target / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    lines = summary_lines(report)
    assert "19.4 of 27.0 kWh delivered" in lines[2] and "1 × 1.6, 1 × 2.0.1" in lines[1]


def test_an_empty_run_still_reports(tmp_path: Path) -> None:
    report = write_report(Recorder(), info(stopped="interrupted", connected=frozenset(), notes={}), tmp_path)
    assert report["totals"]["peak_site_kw"] == 0 and report["totals"]["evs"] == 0
    assert (tmp_path / "report.png").exists()
