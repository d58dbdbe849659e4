"""The baseline CSMS of ``benchmarks/load.py``: the least an OCPP 1.6J server on the ``ocpp`` library can do.

One ``ocpp.v16.ChargePoint`` per connection on ``websockets``, answering BootNotification (Accepted),
Heartbeat, MeterValues and StatusNotification, with no persistence, no scheduling and no API. The
transport is set as ``optivgi-csms serve`` sets it (no per-message deflate, pings every 30 s), so a
comparison between the two measures what the CSMS does with a message, not the websocket options::

    .venv/bin/python benchmarks/baseline_server.py --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, RegistrationStatus
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

#: Seconds between heartbeats asked of the stations (the CSMS's default).
HEARTBEAT_INTERVAL_S = 300
#: Websocket keep-alive, as the CSMS's defaults (``ping_interval`` / ``ping_timeout``).
PING_S = 30.0


def now_text() -> str:
    """The current UTC time as OCPP writes it (milliseconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class BaselineStation(ChargePoint):
    """One connected station: every answer is made up on the spot, nothing is kept."""

    @on(Action.boot_notification)
    def on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=now_text(), interval=HEARTBEAT_INTERVAL_S, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now_text())

    @on(Action.meter_values)
    def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on(Action.status_notification)
    def on_status_notification(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()


async def handle(connection: ServerConnection) -> None:
    """Serve one station until it goes away; its id is the last part of the path."""
    if connection.subprotocol != "ocpp1.6":
        await connection.close(1002, "ocpp1.6 only")
        return
    station_id = connection.request.path.rstrip("/").rsplit("/", 1)[-1] if connection.request else "unknown"
    with contextlib.suppress(ConnectionClosed):
        await BaselineStation(station_id, connection).start()


async def run(host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    async with serve(
        handle,
        host,
        port,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        compression=None,
        ping_interval=PING_S,
        ping_timeout=PING_S,
        # The same time for a handshake as load.py gives the CSMS (``handshake_timeout``).
        open_timeout=30,
    ):
        await stop


def main(argv: list[str] | None = None) -> None:
    """Parse the address and serve."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args(argv)
    asyncio.run(run(args.host, args.port))


if __name__ == "__main__":
    main()
