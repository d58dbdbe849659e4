"""``optivgi-sim`` on the command line: bad arguments and scenarios give one line and exit 2; a CSMS
that is down is retried and reported, not a crash; a whole run against the CSMS writes its report."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.cli import main, share_201

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulators.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://x"], "optivgi-sim: --url: expected ws://HOST[:PORT][/PATH] or wss://..., got 'http://x'"),
        (["--url", "ws://h:99999"], "optivgi-sim: --url: bad port in 'ws://h:99999'"),
        (["--time-scale", "0"], "optivgi-sim: argument --time-scale: must be a positive number, got '0' (see --help)"),
        (["--duration", "x"], "optivgi-sim: argument --duration: expected a number, got 'x' (see --help)"),
        (["--versions", "2.0"], "optivgi-sim: argument --versions: a comma-separated list of 1.6 and 2.0.1"),
        (["--share-201", "1.5"], "optivgi-sim: argument --share-201: must be from 0 to 1, got '1.5' (see --help)"),
        (["--versions", "1.6", "--share-201", "0.5"], "optivgi-sim: --share-201 0.5 contradicts --versions 1.6"),
        (["--settle-s", "-1"], "optivgi-sim: argument --settle-s: must be zero or a positive number, got '-1'"),
        (["--chargers", "0"], "optivgi-sim: argument --chargers: must be at least 1, got '0' (see --help)"),
        (["--arrivals", "lunch"], "optivgi-sim: argument --arrivals: invalid choice: 'lunch'"),
        (["--scenario", "nope.json"], "optivgi-sim: nope.json: cannot read: No such file or directory"),
        (
            ["--scenario", "scenarios/small-office-8.json", "--chargers", "3", "--hours", "2"],
            "optivgi-sim: --chargers, --hours: generator options go without --scenario",
        ),
        (["--bogus"], "optivgi-sim: unrecognized arguments: --bogus (see --help)"),
        (["--iso15118", "some"], "optivgi-sim: argument --iso15118: invalid choice: 'some'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exited:  # argparse's own errors leave through SystemExit
        raise SystemExit(main(args))
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_a_bad_scenario_file_names_the_field_as_a_command(tmp_path: Path) -> None:
    scenario = json.loads((ROOT / "scenarios" / "small-office-8.json").read_text())
    scenario["evs"][3]["battery_kwh"] = -1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(scenario))
    result = run_cli("--scenario", str(path), "--report-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr == f"optivgi-sim: {path}: evs[3].battery_kwh: must be positive, got -1\n"
    assert result.stdout == ""


def test_a_non_boolean_iso15118_is_refused_naming_the_field(tmp_path: Path) -> None:
    scenario = json.loads((ROOT / "scenarios" / "small-office-8.json").read_text())
    scenario["evs"][2]["iso15118"] = "true"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(scenario))
    result = run_cli("--scenario", str(path), "--iso15118", "all", "--report-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr == f"optivgi-sim: {path}: evs[2].iso15118: expected true or false, got 'true'\n"
    assert result.stdout == ""


def test_bad_flags_as_a_command() -> None:
    result = run_cli("--time-scale", "-3")
    assert result.returncode == 2
    assert result.stderr == "optivgi-sim: argument --time-scale: must be a positive number, got '-3' (see --help)\n"


def test_help_lists_the_options() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--url", "--scenario", "--time-scale", "--duration", "--report-dir", "--password", "--settle-s"):
        assert flag in result.stdout
    for flag in ("--iso15118 {scenario,all,none}", "NotifyEVChargingNeeds"):
        assert flag in result.stdout
    for flag in ("--versions", "--share-201", "--chargers", "--arrivals"):
        assert flag in result.stdout


def test_protocol_mix() -> None:
    assert share_201(None, None) == 0.5
    assert share_201(("1.6",), None) == 0.0
    assert share_201(("2.0.1",), 1.0) == 1.0
    assert share_201(("1.6", "2.0.1"), 0.2) == 0.2
    assert share_201(None, 0.3) == 0.3


@pytest.mark.slow
def test_a_csms_that_is_down_is_retried_and_reported(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}/ocpp"
    args = ["--url", url, "--chargers", "2", "--hours", "1", "--time-scale", "3600", "--duration", "2"]
    result = run_cli(*args, "--connect-timeout", "0.5", "--report-dir", str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert f"no station could connect to {url}" in result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stations"]["connected"] == 0 and report["stations"]["count"] == 2
    assert (tmp_path / "report.png").exists()


@pytest.mark.slow
async def test_a_run_against_the_csms(csms, tmp_path: Path) -> None:
    """The command end to end: a generated mixed site against our server, the report on disk."""
    url = f"ws://127.0.0.1:{csms.ocpp.port}/ocpp"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "simulators.cli", "--url", url, "--chargers", "4", "--arrivals", "all-at-start", "--hours", "1"),
        *("--time-scale", "1800", "--report-dir", str(tmp_path), "--seed", "3"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "stations: 4 of 4 connected (2 × 1.6, 2 × 2.0.1)" in out.decode()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped"] == "scenario over"
    assert report["totals"]["evs_with_energy"] == report["totals"]["evs"] == 4
    assert report["protocol_errors"]["count"] == 0
