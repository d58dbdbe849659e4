"""SIGTERM to a real ``optivgi-csms serve`` process: stop accepting, answer what is in hand, keep what was
acknowledged, close every station with 1001 (going away), exit 0 within the grace.

A station's message is made to be "in hand" when the signal arrives the way it happens in production: the
database is slow. The test holds SQLite's write lock from outside, so the CSMS's handler waits for its commit
(the CSMS answers only after committing) until the test lets go.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

pytestmark = pytest.mark.slow

NOW = "2026-03-02T08:00:00Z"


def _env() -> dict[str, str]:
    # The process reads only what the test gives it, not the developer's OPTIVGI_* settings.
    return {key: value for key, value in os.environ.items() if not key.startswith("OPTIVGI_") and key != "DATABASE_URL"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """``python -m optivgi_csms serve`` on a free port with a temporary SQLite database."""

    def __init__(self, cwd: Path, grace_s: float) -> None:
        self.cwd = cwd
        self.database = cwd / "data" / "optivgi-csms.db"
        command = [sys.executable, "-m", "optivgi_csms", "db", "upgrade"]
        upgrade = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=60)
        assert upgrade.returncode == 0, upgrade.stderr
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "optivgi_csms", "serve", "--host", "127.0.0.1", "--port", str(self.port)),
                *("--api-port", "0", "--shutdown-grace", str(grace_s), "--log-format", "json"),
            ],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited: {self.process.communicate()[1]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "serve did not start listening"
                time.sleep(0.1)

    @property
    def url(self) -> str:
        """A station's websocket URL."""
        return f"ws://127.0.0.1:{self.port}/CP-1"

    def terminate(self) -> float:
        """Send SIGTERM; returns when it was sent (monotonic seconds)."""
        self.process.send_signal(signal.SIGTERM)
        return time.monotonic()

    async def exit(self, timeout: float) -> tuple[int, str]:
        """Wait for the process to end (without blocking the event loop); its exit code and log."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"serve still running {timeout} s after SIGTERM")
            await asyncio.sleep(0.05)
        _, stderr = self.process.communicate(timeout=5)
        return self.process.returncode, stderr

    def kill(self) -> None:
        """Make sure the process is gone (a failed test must not leave it behind)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)

    def meter_values(self) -> list[str]:
        """Every stored sample's value, in time order."""
        with sqlite3.connect(self.database) as connection:
            return [row[0] for row in connection.execute("SELECT value FROM meter_values ORDER BY timestamp")]


@contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock (the CSMS's writer waits for it) until the block ends."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=10)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def meter_values(message_id: str, transaction_id: int, minute: int, wh: int) -> str:
    """A 1.6 MeterValues CALL with one energy register sample."""
    sample = {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    payload = {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [{"timestamp": f"2026-03-02T08:{minute:02d}:00Z", "sampledValue": [sample]}],
    }
    return json.dumps([2, message_id, "MeterValues", payload])


async def call(ws: Any, frame: str, timeout: float = 10.0) -> list[Any]:
    """Send a CALL and return the CSMS's reply."""
    await ws.send(frame)
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def start_session(ws: Any) -> int:
    """Boot, start a transaction and have one meter value acknowledged; returns the transaction id."""
    boot = {"chargePointVendor": "V", "chargePointModel": "M"}
    assert (await call(ws, json.dumps([2, "b1", "BootNotification", boot])))[2]["status"] == "Accepted"
    start = {"connectorId": 1, "idTag": "TAG-1", "meterStart": 0, "timestamp": NOW}
    started = await call(ws, json.dumps([2, "s1", "StartTransaction", start]))
    transaction_id = started[2]["transactionId"]
    assert await call(ws, meter_values("m1", transaction_id, 1, 1000)) == [3, "m1", {}]
    return transaction_id


async def refused(url: str) -> str:
    """How a new connection attempt fails (it must fail)."""
    try:
        async with websockets.connect(url, subprotocols=["ocpp1.6"], open_timeout=5):  # type: ignore[list-item]
            pass
    except InvalidStatus as error:
        return f"HTTP {error.response.status_code}"
    except OSError as error:
        return type(error).__name__
    raise AssertionError("a connection was accepted during shutdown")


async def closing_frame(ws: Any, timeout: float = 10.0) -> tuple[list[Any], ConnectionClosed]:
    """The frames the station receives until its connection closes, and how it closed."""
    frames: list[Any] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except ConnectionClosed as closed:
        return frames, closed


async def test_sigterm_answers_the_message_in_hand_then_closes_with_1001(tmp_path: Path) -> None:
    grace_s = 8.0
    server = Server(tmp_path, grace_s)
    try:
        async with websockets.connect(server.url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            transaction_id = await start_session(ws)
            with write_lock(server.database):
                await ws.send(meter_values("m2", transaction_id, 2, 2000))
                with pytest.raises(TimeoutError):  # in hand: waiting for its commit
                    await asyncio.wait_for(ws.recv(), 0.5)
                signalled = server.terminate()
                await asyncio.sleep(0.5)
                # New stations are turned away at once, while the one in hand still waits for its answer.
                assert await refused(server.url) in ("ConnectionRefusedError", "HTTP 503")
                # A message sent after the signal is not taken: the station sends it again to the next CSMS.
                await ws.send(json.dumps([2, "h1", "Heartbeat", {}]))
                await asyncio.sleep(0.3)
            frames, closed = await closing_frame(ws)
        code, log = await server.exit(grace_s)
        elapsed = time.monotonic() - signalled
    finally:
        server.kill()
    assert frames == [[3, "m2", {}]]  # the answer, then the close; no answer to the Heartbeat
    assert closed.rcvd is not None and closed.rcvd.code == 1001
    assert closed.rcvd.reason == "CSMS shutting down"
    assert code == 0, log
    assert elapsed < grace_s
    assert server.meter_values() == ["1000", "2000"]  # acknowledged before and during shutdown: both kept
    events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
    assert events.index("shutting down") < events.index("stopped")


async def test_the_grace_bounds_how_long_a_stuck_message_holds_the_shutdown(tmp_path: Path) -> None:
    grace_s = 1.0
    server = Server(tmp_path, grace_s)
    try:
        async with websockets.connect(server.url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            transaction_id = await start_session(ws)
            with write_lock(server.database):
                await ws.send(meter_values("m2", transaction_id, 2, 2000))
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.5)
                signalled = server.terminate()
                # The database stays stuck past the grace: the station is closed anyway, unanswered.
                frames, closed = await closing_frame(ws, timeout=grace_s + 5)
                closed_after = time.monotonic() - signalled
        code, log = await server.exit(15)
    finally:
        server.kill()
    assert frames == []
    assert closed.rcvd is not None and closed.rcvd.code == 1001
    assert grace_s <= closed_after < grace_s + 3
    assert code == 0, log
    # Unanswered, so the station will send it again; it was written once the database came back.
    assert server.meter_values() == ["1000", "2000"]
