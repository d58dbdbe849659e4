"""Test stations: OCPP clients built from the ``ocpp`` library, talking to the CSMS over real websockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.time import utc_now
from optivgi_csms.protocol.commands import StationCommands
from optivgi_csms.security.passwords import hash_password
from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import Station


class Station16(ChargePoint16):
    """A 1.6 station that answers every CSMS command and remembers what it was asked.

    ``answers`` overrides the status of a command by action name (default ``Accepted``);
    ``received`` lists ``(action, payload)`` in arrival order.
    """

    def __init__(self, station_id: str, connection: Any) -> None:
        super().__init__(station_id, connection, response_timeout=5)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, Any] = {}
        self.composite_schedule: dict[str, Any] | None = None
        self.configuration: list[dict[str, Any]] = [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "8"},
        ]

    def _got(self, action: str, payload: dict[str, Any], default: str = "Accepted") -> str:
        self.received.append((action, payload))
        return self.answers.get(action, default)

    def last(self, action: str) -> dict[str, Any]:
        """The payload of the last command named ``action``."""
        for name, payload in reversed(self.received):
            if name == action:
                return payload
        raise AssertionError(f"no {action} received; got {[name for name, _ in self.received]}")

    @on(Action.remote_start_transaction)
    def remote_start(self, **payload: Any) -> Any:
        return call_result.RemoteStartTransaction(status=self._got("RemoteStartTransaction", payload))

    @on(Action.remote_stop_transaction)
    def remote_stop(self, **payload: Any) -> Any:
        return call_result.RemoteStopTransaction(status=self._got("RemoteStopTransaction", payload))

    @on(Action.reset)
    def reset(self, **payload: Any) -> Any:
        return call_result.Reset(status=self._got("Reset", payload))

    @on(Action.change_availability)
    def change_availability(self, **payload: Any) -> Any:
        return call_result.ChangeAvailability(status=self._got("ChangeAvailability", payload))

    @on(Action.get_configuration)
    def get_configuration(self, **payload: Any) -> Any:
        self._got("GetConfiguration", payload)
        wanted = payload.get("key")
        known = [entry for entry in self.configuration if not wanted or entry["key"] in wanted]
        unknown = [key for key in wanted or [] if key not in {entry["key"] for entry in self.configuration}]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def change_configuration(self, **payload: Any) -> Any:
        return call_result.ChangeConfiguration(status=self._got("ChangeConfiguration", payload))

    @on(Action.unlock_connector)
    def unlock_connector(self, **payload: Any) -> Any:
        return call_result.UnlockConnector(status=self._got("UnlockConnector", payload, "Unlocked"))

    @on(Action.trigger_message)
    def trigger_message(self, **payload: Any) -> Any:
        return call_result.TriggerMessage(status=self._got("TriggerMessage", payload))

    @on(Action.clear_cache)
    def clear_cache(self, **payload: Any) -> Any:
        return call_result.ClearCache(status=self._got("ClearCache", payload))

    @on(Action.set_charging_profile)
    def set_charging_profile(self, **payload: Any) -> Any:
        return call_result.SetChargingProfile(status=self._got("SetChargingProfile", payload))

    @on(Action.clear_charging_profile)
    def clear_charging_profile(self, **payload: Any) -> Any:
        return call_result.ClearChargingProfile(status=self._got("ClearChargingProfile", payload))

    @on(Action.get_composite_schedule)
    def get_composite_schedule(self, **payload: Any) -> Any:
        status = self._got("GetCompositeSchedule", payload)
        schedule = self.composite_schedule
        return call_result.GetCompositeSchedule(
            status=status,
            connector_id=payload["connector_id"] if schedule else None,
            schedule_start="2026-03-02T08:00:00Z" if schedule else None,
            charging_schedule=schedule,
        )

    @on(Action.reserve_now)
    def reserve_now(self, **payload: Any) -> Any:
        return call_result.ReserveNow(status=self._got("ReserveNow", payload))

    @on(Action.cancel_reservation)
    def cancel_reservation(self, **payload: Any) -> Any:
        return call_result.CancelReservation(status=self._got("CancelReservation", payload))


def station_url(csms: Csms, station_id: str, prefix: str = "") -> str:
    """The websocket URL of ``station_id`` on a running CSMS."""
    path = f"{prefix.strip('/')}/{station_id}" if prefix else station_id
    return f"ws://127.0.0.1:{csms.ocpp.port}/{path}"


def basic_auth(station_id: str, password: str) -> dict[str, str]:
    """The Authorization header for security profile 1."""
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def wait_registered(csms: Csms, station_id: str, timeout: float = 5.0) -> None:
    """Wait until the CSMS has registered the station's connection (the handshake ends a little earlier)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not csms.registry.is_connected(station_id):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{station_id} never registered")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def connect16(
    csms: Csms, station_id: str, *, password: str | None = None, prefix: str = ""
) -> AsyncIterator[Station16]:
    """A running :class:`Station16` connected to ``csms``."""
    headers = basic_auth(station_id, password) if password is not None else None
    async with websockets.connect(
        station_url(csms, station_id, prefix), subprotocols=["ocpp1.6"], additional_headers=headers
    ) as connection:
        station = Station16(station_id, connection)
        task = asyncio.create_task(station.start())
        await wait_registered(csms, station_id)
        try:
            yield station
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task


class RawStation:
    """A bare websocket speaking whatever frames a test writes: for malformed and hostile input."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def send(self, frame: str | bytes) -> None:
        """Send one frame as is."""
        await self.connection.send(frame)

    async def exchange(self, frame: str | bytes, timeout: float = 5.0) -> list[Any]:
        """Send a frame and return the parsed reply."""
        await self.connection.send(frame)
        return json.loads(await asyncio.wait_for(self.connection.recv(), timeout))

    async def call(self, action: str, payload: Any, message_id: str = "m1") -> list[Any]:
        """Send a well-formed CALL and return the reply."""
        return await self.exchange(json.dumps([2, message_id, action, payload]))

    async def no_reply(self, timeout: float = 0.5) -> bool:
        """True when nothing arrives within ``timeout``."""
        try:
            await asyncio.wait_for(self.connection.recv(), timeout)
        except TimeoutError:
            return True
        return False


@contextlib.asynccontextmanager
async def connect_raw(
    csms: Csms, station_id: str, *, subprotocol: str = "ocpp1.6", **options: Any
) -> AsyncIterator[RawStation]:
    """A raw websocket to ``csms`` as ``station_id``."""
    async with websockets.connect(station_url(csms, station_id), subprotocols=[subprotocol], **options) as connection:
        yield RawStation(connection)


# --- helpers for tests that play the station's side frame by frame ------------------------------


async def next_call(raw: RawStation, timeout: float = 5.0) -> list[Any]:
    """The next frame the CSMS sends to a raw station, which must be a CALL ``[2, id, action, payload]``."""
    frame = json.loads(await asyncio.wait_for(raw.connection.recv(), timeout))
    assert frame[0] == 2, f"expected a CALL, got {frame}"
    return frame


async def answer_call(raw: RawStation, call: list[Any], payload: dict[str, Any]) -> None:
    """Answer a CALL from the CSMS with a CALLRESULT carrying ``payload`` (sent as is, unvalidated)."""
    await raw.send(json.dumps([3, call[1], payload]))


async def answer_call_error(raw: RawStation, call: list[Any], code: str, description: str = "") -> None:
    """Answer a CALL from the CSMS with a CALLERROR."""
    await raw.send(json.dumps([4, call[1], code, description, {}]))


@contextlib.asynccontextmanager
async def connect_unresponsive(csms: Csms, station_id: str) -> AsyncIterator[asyncio.StreamReader]:
    """A station whose websocket handshake succeeded but which then never reads nor answers anything,
    not even a close frame: what a CSMS sees of a station whose network died silently."""
    reader, writer = await asyncio.open_connection("127.0.0.1", csms.ocpp.port)
    key = base64.b64encode(b"0123456789abcdef").decode()
    writer.write(
        (
            f"GET /{station_id} HTTP/1.1\r\nHost: 127.0.0.1:{csms.ocpp.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        ).encode()
    )
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert status.startswith(b"HTTP/1.1 101"), status
    try:
        yield reader
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def wait_connected(csms: Csms, station_id: str, timeout: float = 2.0) -> StationCommands:
    """The station's command interface once the CSMS has attached its connection.

    The websocket handshake completes before the CSMS records the connection and registers the
    session, so a test that talks first must wait for the registry, as an operator would.
    """
    await wait_registered(csms, station_id, timeout)
    return csms.registry.get(station_id)


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds; fail the test when it still does not after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def register(csms: Csms, station_id: str, password: str | None = None) -> None:
    """What ``optivgi-csms station add`` does: a registered row, with the password hashed."""

    async def op(session: AsyncSession) -> None:
        session.add(
            Station(
                id=station_id,
                registered=True,
                password_hash=hash_password(password) if password else None,
                created_at=utc_now(),
            )
        )

    await csms.database.write(op)
