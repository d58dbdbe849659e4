"""Real ``optivgi-csms serve`` processes as the nodes of one cluster, and 1.6 stations talking to them.

Each node is its own process on its own loopback ports (OCPP and API), all on one PostgreSQL database and the
machine's Redis under the test's prefix; every log is kept (JSON lines) so a test can see what a node did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from ocpp.v16 import call as call16

from tests.faults.serve import ServeHandle, clean_env, free_port, spawn_serve, wait_listening
from tests.support.stations import Station16


class Node(ServeHandle):
    """One ``serve`` process of the cluster (killed and stopped as :class:`ServeHandle`)."""

    def __init__(self, cwd: Path, name: str, database_url: str, redis_url: str, prefix: str, *settings: str) -> None:
        self.cwd = cwd
        self.name = name
        self.database_url = database_url
        self.redis_url = redis_url
        self.prefix = prefix
        self.settings = settings
        self.port = free_port()
        self.api_port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.log_path = cwd / f"{name}.log"

    def spawn(self) -> None:
        """Start the process (use :meth:`wait_listening` to know it is up)."""
        self.process = spawn_serve(
            self.cwd,
            self.log_path,
            *("--host", "127.0.0.1", "--port", str(self.port), "--api-port", str(self.api_port)),
            *("--database-url", self.database_url),
            *("--redis-url", self.redis_url, "--redis-prefix", self.prefix, "--node-id", self.name),
            *("--log-format", "json", "--call-timeout", "5", "--profile-raise-delay", "0.3"),
            *self.settings,
        )

    async def wait_listening(self, timeout_s: float = 30.0) -> None:
        """Return once both the OCPP server and the API accept connections."""
        assert self.process is not None
        await wait_listening(self.process, (self.port, self.api_port), self.log_path, time.monotonic() + timeout_s)

    def log(self) -> str:
        """The process's output so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines whose event is ``name``."""
        found = []
        for line in self.log().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("event") == name:
                    found.append(entry)
        return found

    def leads(self) -> bool:
        """Whether the node took the default site's lead (and has not logged giving it up)."""
        return len(self.events("leading the site's smart charging")) > len(
            self.events("no longer leading the site's smart charging")
        )

    def api(self, token: str) -> httpx.AsyncClient:
        """An HTTP client of the node's operator API."""
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.api_port}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=20,
        )

    def station_url(self, station_id: str) -> str:
        """Where a station connects to this node."""
        return f"ws://127.0.0.1:{self.port}/{station_id}"


def create_token(cwd: Path, database_url: str) -> str:
    """An operator token in the cluster's database (``optivgi-csms token create``)."""
    command = [sys.executable, "-m", "optivgi_csms", "token", "create", "tests", "--database-url", database_url]
    done = subprocess.run(command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def start_nodes(*nodes: Node) -> None:
    """Start the nodes together and wait until every one listens."""
    for node in nodes:
        node.spawn()
    await asyncio.gather(*(node.wait_listening() for node in nodes))


async def until(condition: Callable[[], Any], timeout_s: float, what: str) -> float:
    """Poll ``condition`` (sync or async) until it is true; returns when (monotonic). Fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic()
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.05)


def now_iso() -> str:
    """The time now as a station writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Connected:
    """A 1.6 station's live connection to one node."""

    def __init__(self, station: Station16, connection: Any, task: asyncio.Task[Any]) -> None:
        self.station = station
        self.connection = connection
        self.task = task

    def count(self, action: str) -> int:
        """How many commands named ``action`` the station received on this connection."""
        return sum(1 for name, _ in self.station.received if name == action)

    async def boot(self) -> None:
        """BootNotification, accepted."""
        answer = await self.station.call(call16.BootNotification(charge_point_vendor="V", charge_point_model="M"))
        assert answer.status == "Accepted"

    async def start(self, id_tag: str) -> int:
        """Plug in and start a session on connector 1; returns the transaction id."""
        await self.station.call(
            call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging", timestamp=now_iso())
        )
        answer = await self.station.call(
            call16.StartTransaction(connector_id=1, id_tag=id_tag, meter_start=0, timestamp=now_iso())
        )
        return int(answer.transaction_id)

    async def meter(self, transaction_id: int, energy_wh: int, power_w: int) -> None:
        """One MeterValues sample of the session: the register and the power."""
        sampled = [
            {"value": str(energy_wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"},
        ]
        await self.station.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=transaction_id,
                meter_value=[{"timestamp": now_iso(), "sampled_value": sampled}],
            )
        )

    async def stop(self, transaction_id: int, meter_stop_wh: int) -> None:
        """End the session."""
        await self.station.call(
            call16.StopTransaction(transaction_id=transaction_id, meter_stop=meter_stop_wh, timestamp=now_iso())
        )


@contextlib.asynccontextmanager
async def station(node: Node, station_id: str) -> AsyncIterator[Connected]:
    """A :class:`Station16` connected to ``node`` (answering every command), closed at the end."""
    async with websockets.connect(node.station_url(station_id), subprotocols=["ocpp1.6"]) as connection:
        station = Station16(station_id, connection)
        task = asyncio.create_task(station.start())
        try:
            yield Connected(station, connection, task)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task
