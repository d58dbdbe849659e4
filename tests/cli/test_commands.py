"""The command line, run as a real subprocess the way an operator runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websockets
from ocpp.v16 import call

from tests.support.stations import Station16, basic_auth

PASSWORD = "correct-horse-battery-9"


def cli_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPTIVGI_") and key != "DATABASE_URL"}
    env.update(extra)
    return env


def run_cli(cwd: Path, *args: str, input: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optivgi_csms", *args],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        input=input,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_db_upgrade_creates_the_default_sqlite_database(tmp_path: Path) -> None:
    status = run_cli(tmp_path, "db", "status")
    assert status.returncode == 1 and "migrations pending" in status.stdout
    upgrade = run_cli(tmp_path, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert (tmp_path / "data" / "optivgi-csms.db").is_file()
    assert run_cli(tmp_path, "db", "status").returncode == 0


def test_serve_refuses_an_out_of_date_schema_naming_the_command(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "serve", "--port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("optivgi-csms serve: error:") and "optivgi-csms db upgrade" in lines[-1]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("serve", "--port", "abc"), {}, "invalid value for setting 'port' (from --port): 'abc' is not an integer"),
        (
            ("serve",),
            {"OPTIVGI_BOOT_POLICY": "nobody"},
            "setting 'boot_policy' (from environment variable OPTIVGI_BOOT_POLICY)",
        ),
        (("serve", "--database-url", "oracle://x"), {}, "unsupported database URL scheme 'oracle'"),
        (("db", "upgrade", "--config", "/nonexistent.toml"), {}, "config file /nonexistent.toml does not exist"),
        (("station", "add", "bad/id"), {}, "invalid station id 'bad/id'"),
        (("station", "add", "CP1", "--password", "short"), {}, "must be 16 to 40 characters"),
        (("tag", "add", "T1", "--expires", "tomorrow"), {}, "invalid --expires 'tomorrow'"),
    ],
)
def test_bad_arguments_get_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run_cli(tmp_path, *args, **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_station_and_tag_management(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "db", "upgrade").returncode == 0
    added = run_cli(tmp_path, "station", "add", "CP-7", "--password-stdin", input=PASSWORD + "\n")
    assert added.returncode == 0 and "registered with a password" in added.stdout
    listing = run_cli(tmp_path, "station", "list")
    assert "CP-7" in listing.stdout and "set" in listing.stdout
    removed = run_cli(tmp_path, "station", "remove", "CP-7")
    assert removed.returncode == 0 and "kept" in removed.stdout
    assert "no registered stations" in run_cli(tmp_path, "station", "list").stdout
    assert "CP-7" in run_cli(tmp_path, "station", "list", "--all").stdout
    again = run_cli(tmp_path, "station", "remove", "CP-7")
    assert again.returncode == 2 and "no registered station 'CP-7'" in again.stderr

    assert run_cli(tmp_path, "tag", "add", "CARD-1", "--expires", "2030-01-01T00:00:00Z").returncode == 0
    assert run_cli(tmp_path, "tag", "block", "CARD-1").returncode == 0
    assert "Blocked" in run_cli(tmp_path, "tag", "list").stdout
    assert run_cli(tmp_path, "tag", "block", "NOPE").returncode == 2


class RunningServer:
    """``optivgi-csms serve`` in a subprocess, on a free port."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "optivgi_csms",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--api-port",
                "0",
                *args,
            ],
            cwd=cwd,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited: {self.process.stderr.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("serve did not start listening")

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stderr


@pytest.mark.slow
async def test_serve_runs_a_station_session_and_stops_cleanly(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "db", "upgrade").returncode == 0
    server = RunningServer(tmp_path, "--security-profile", "1", "--log-format", "json")
    try:
        # Registered while the server runs: the next handshake sees it.
        assert run_cli(tmp_path, "station", "add", "CP-9", "--password", PASSWORD).returncode == 0
        url = f"ws://127.0.0.1:{server.port}/ocpp/CP-9"
        async with websockets.connect(
            url, subprotocols=["ocpp1.6"], additional_headers=basic_auth("CP-9", PASSWORD)
        ) as ws:
            station = Station16("CP-9", ws)
            import asyncio

            task = asyncio.create_task(station.start())
            boot = await station.call(call.BootNotification(charge_point_vendor="V", charge_point_model="M"))
            assert boot.status == "Accepted"
            task.cancel()
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(
                url, subprotocols=["ocpp1.6"], additional_headers=basic_auth("CP-9", "x" * 16)
            ):
                pass
        assert refused.value.response.status_code == 401
    finally:
        code, stderr = server.stop()
    assert code == 0, stderr
    assert '"event": "station connected"' in stderr and '"station_id": "CP-9"' in stderr
    assert '"event": "stopped"' in stderr
    listing = run_cli(tmp_path, "station", "list")
    assert "CP-9" in listing.stdout and "1.6" in listing.stdout and "V " in listing.stdout
