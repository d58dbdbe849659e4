"""One OCPP 1.6J charging session against any CSMS: boot, authorize, start, meter values, stop.

    python -m simulators.session16 ws://127.0.0.1:9000/CP-1 [--id-tag TAG] [--minutes 5] [--power-kw 11]
                                   [--password PW]

Each simulated minute is sent at once, so the session takes about a second. It prints every
answer and exits 1 if the CSMS refuses anything. A first taste of the bundled simulator; the full
site simulator grows beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import websockets
from ocpp.v16 import ChargePoint, call


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


async def run_session(url: str, id_tag: str, minutes: int, power_kw: float, password: str | None) -> bool:
    """Run one session; returns True when the CSMS accepted every step."""
    station_id = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    headers = None
    if password is not None:
        token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
    async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers) as connection:
        station = ChargePoint(station_id, connection)
        reader = asyncio.create_task(station.start())
        try:
            return await _session(station, id_tag, minutes, power_kw)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await reader


async def _session(station: ChargePoint, id_tag: str, minutes: int, power_kw: float) -> bool:
    boot = await station.call(call.BootNotification(charge_point_vendor="optivgi-sim", charge_point_model="session16"))
    print(f"BootNotification -> {boot.status}")
    if boot.status != "Accepted":
        return False
    await station.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
    authorized = await station.call(call.Authorize(id_tag=id_tag))
    print(f"Authorize {id_tag} -> {authorized.id_tag_info['status']}")
    if authorized.id_tag_info["status"] != "Accepted":
        return False
    start = datetime.now(UTC).replace(microsecond=0)
    started = await station.call(
        call.StartTransaction(connector_id=1, id_tag=id_tag, meter_start=0, timestamp=_stamp(start))
    )
    print(f"StartTransaction -> transaction {started.transaction_id}, {started.id_tag_info['status']}")
    await station.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
    energy_wh = 0.0
    for minute in range(1, minutes + 1):
        energy_wh += power_kw * 1000 / 60
        await station.call(
            call.MeterValues(
                connector_id=1,
                transaction_id=started.transaction_id,
                meter_value=[
                    {
                        "timestamp": _stamp(start + timedelta(minutes=minute)),
                        "sampledValue": [
                            {"value": f"{energy_wh:.0f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                            {"value": f"{power_kw * 1000:.0f}", "measurand": "Power.Active.Import", "unit": "W"},
                        ],
                    }
                ],
            )
        )
    print(f"MeterValues x{minutes} -> stored, {energy_wh / 1000:.2f} kWh")
    await station.call(
        call.StopTransaction(
            meter_stop=round(energy_wh),
            timestamp=_stamp(start + timedelta(minutes=minutes)),
            transaction_id=started.transaction_id,
            reason="EVDisconnected",
        )
    )
    await station.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
    print("StopTransaction -> done")
    return True


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Run one OCPP 1.6J charging session against a CSMS.")
    parser.add_argument("url", help="the station's URL, e.g. ws://127.0.0.1:9000/CP-1")
    parser.add_argument("--id-tag", default="DEMO-TAG")
    parser.add_argument("--minutes", type=int, default=5, help="simulated minutes of charging (default 5)")
    parser.add_argument("--power-kw", type=float, default=11.0)
    parser.add_argument("--password", help="Basic-auth password (security profile 1)")
    args = parser.parse_args(argv)
    if urlsplit(args.url).scheme not in ("ws", "wss"):
        parser.error(f"the URL must start with ws:// or wss://, not {args.url!r}")
    try:
        ok = asyncio.run(run_session(args.url, args.id_tag, args.minutes, args.power_kw, args.password))
    except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed) as error:
        print(f"session16: cannot talk to {args.url}: {error}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
