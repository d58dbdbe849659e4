"""Off line and misbehaving CSMSs: the simulated station keeps charging, queues its transaction messages
and meter values, reconnects with back-off and delivers the queue in order, each message once; a CSMS
that breaks the protocol is counted, never fatal.

The restart tests run against our CSMS (stopped, then started again on the same database and port);
the misbehaviour tests against a scripted CSMS that answers as each test says.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import pytest
import websockets

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
)
from optivgi_csms.domain.time import format_timestamp, utc_now
from simulators.station.backoff import Backoff
from simulators.station.outbox import Envelope, Outbox
from tests.simulators.test_station_support import (
    both_versions,
    ev,
    eventually,
    meter_values,
    running,
    station_config,
    transaction_events,
    transactions,
)

ENERGY = "Energy.Active.Import.Register"


def periodic(samples: list[Any]) -> list[Any]:
    return [sample for sample in samples if sample.context == "Sample.Periodic"]


# --- a CSMS restart mid-transaction -----------------------------------------------------------------


@pytest.mark.slow
@both_versions
async def test_a_csms_restart_mid_transaction_delivers_every_queued_message_once(make_csms, version: str) -> None:
    csms = await make_csms()
    port = csms.ocpp.port
    config = station_config(port, "SIM-1", version, meter_interval_s=0.1, profile_apply_delay_s=0.0)
    async with running(config) as station:
        commands = csms.registry.get("SIM-1")
        default = ChargingProfile(
            1,
            0,
            ProfilePurpose.TX_DEFAULT,
            ProfileKind.RELATIVE,
            ChargingSchedule(RateUnit.AMPERE, (SchedulePeriod(0, 12.0),)),
        )
        assert (await commands.set_charging_profile(1, default)).accepted
        await station.plug_in(1, ev(), "TAG-1")
        await eventually(lambda: station.snapshot().evses[0].transaction_id is not None)
        await asyncio.sleep(0.3)  # a few samples delivered on line

        await csms.stop()
        await eventually(lambda: not station.snapshot().connected)
        delivered_before = station.outbox.delivered
        await asyncio.sleep(0.6)
        # Off line it keeps charging under its last profile, and queues.
        assert station.snapshot().evses[0].status == "Charging"
        assert station.core.evses[0].current_a == 12.0
        assert station.snapshot().queued >= 4
        await station.unplug(1)  # the session ends off line too
        assert station.outbox.delivered == delivered_before
        energy_wh = station.core.evses[0].energy_wh

        restarted = await make_csms(port=port)
        await eventually(lambda: station.snapshot().accepted, timeout=5.0)
        await eventually(lambda: station.snapshot().queued == 0, timeout=5.0)
    assert station.connection.connects == 2
    assert station.recorder.messages["sent:BootNotification"] == 1  # a reconnection is no reboot
    assert station.outbox.dropped == 0

    [transaction] = await transactions(restarted, "SIM-1")
    assert transaction.stopped_at is not None and transaction.stop_reason == "EVDisconnected"
    assert transaction.meter_stop_wh == pytest.approx(energy_wh, abs=1)
    energy = periodic(await meter_values(restarted, "SIM-1", ENERGY))
    assert all(sample.transaction_id == transaction.id for sample in energy)
    readings = [sample.value_numeric for sample in energy]
    assert readings == sorted(readings) and len(set(readings)) == len(readings)
    if version == "1.6":
        # Every MeterValues the station queued is stored, once (one energy reading each).
        assert len(energy) == station.outbox.queued["MeterValues"]
    else:
        events = await transaction_events(restarted, "SIM-1")
        assert [event.seq_no for event in events] == list(range(station.outbox.queued["TransactionEvent"]))
        assert len(energy) == sum(event.trigger_reason == "MeterValuePeriodic" for event in events)
        # Events generated off line say so.
        assert any(event.offline for event in events) and not events[0].offline
        assert events[-1].event_type == "Ended" and events[-1].offline
    assert station.recorder.protocol_errors == []


@both_versions
async def test_a_session_started_off_line_is_delivered_whole(make_csms, version: str) -> None:
    csms = await make_csms()
    port = csms.ocpp.port
    config = station_config(port, "SIM-1", version, meter_interval_s=0.1)
    async with running(config) as station:
        await csms.stop()
        await eventually(lambda: not station.snapshot().connected)
        # The CSMS cannot be asked: an unknown tag may charge off line (AllowOfflineTxForUnknownId).
        await station.plug_in(1, ev(), "TAG-OFF")
        assert station.snapshot().evses[0].status == "Charging"
        assert station.snapshot().evses[0].transaction_id is None or version == "2.0.1"
        await asyncio.sleep(0.35)
        await station.unplug(1)
        restarted = await make_csms(port=port)
        await eventually(lambda: station.snapshot().queued == 0, timeout=5.0)
    [transaction] = await transactions(restarted, "SIM-1")
    assert transaction.id_tag == "TAG-OFF" and transaction.stop_reason == "EVDisconnected"
    energy = periodic(await meter_values(restarted, "SIM-1", ENERGY))
    assert len(energy) >= 2
    # 1.6: the meter values queued before the StartTransaction answer carry the id it brought.
    assert all(sample.transaction_id == transaction.id for sample in energy)
    assert station.recorder.messages["sent:Authorize"] == 0


@both_versions
async def test_a_tag_refused_after_reconnecting_ends_its_off_line_session(make_csms, version: str) -> None:
    csms = await make_csms(unknown_id_tags="reject")
    port = csms.ocpp.port
    async with running(station_config(port, "SIM-1", version)) as station:
        await csms.stop()
        await eventually(lambda: not station.snapshot().connected)
        await station.plug_in(1, ev(), "NOBODY")  # allowed off line: the CSMS cannot be asked
        assert station.snapshot().evses[0].status == "Charging"
        restarted = await make_csms(unknown_id_tags="reject", port=port)
        # The start's answer refuses the tag: the station stops the session (StopTransactionOnInvalidId).
        await eventually(lambda: station.snapshot().evses[0].status == "Finishing", timeout=5.0)
        await eventually(lambda: station.snapshot().queued == 0)
        assert station.core.auth_cache == {"NOBODY": "Invalid"}
    [transaction] = await transactions(restarted, "SIM-1")
    assert transaction.stop_reason == "DeAuthorized" and transaction.authorization_status == "Invalid"


@both_versions
async def test_a_full_queue_gives_up_periodic_samples_never_starts_or_stops(make_csms, version: str) -> None:
    csms = await make_csms()
    port = csms.ocpp.port
    config = station_config(port, "SIM-1", version, meter_interval_s=0.05, queue_limit=5)
    async with running(config) as station:
        await csms.stop()
        await eventually(lambda: not station.snapshot().connected)
        await station.plug_in(1, ev(), "TAG-1")
        await asyncio.sleep(0.6)
        await station.unplug(1)
        assert station.snapshot().queued <= 5
        assert station.outbox.dropped > 0
        restarted = await make_csms(port=port)
        await eventually(lambda: station.snapshot().queued == 0, timeout=5.0)
    [transaction] = await transactions(restarted, "SIM-1")
    assert transaction.stopped_at is not None
    assert station.recorder.messages[f"dropped:{'MeterValues' if version == '1.6' else 'TransactionEvent'}"] > 0


# --- a scripted CSMS that misbehaves ----------------------------------------------------------------

Reply = Callable[[str, dict[str, Any], int], Any]
CLOSE = object()  # close the connection instead of answering
SILENT = object()  # answer nothing
ID = "<id>"  # in a scripted frame: the id of the CALL it answers


def answer_16(action: str, payload: dict[str, Any], transaction_ids: itertools.count) -> dict[str, Any]:
    """What a well-behaved 1.6 CSMS answers."""
    now = format_timestamp(utc_now())
    if action == "BootNotification":
        return {"currentTime": now, "interval": 300, "status": "Accepted"}
    if action == "Heartbeat":
        return {"currentTime": now}
    if action == "Authorize":
        return {"idTagInfo": {"status": "Accepted"}}
    if action == "StartTransaction":
        return {"transactionId": next(transaction_ids), "idTagInfo": {"status": "Accepted"}}
    return {}


def answer_201(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What a well-behaved 2.0.1 CSMS answers."""
    now = format_timestamp(utc_now())
    if action == "BootNotification":
        return {"currentTime": now, "interval": 300, "status": "Accepted"}
    if action == "Heartbeat":
        return {"currentTime": now}
    if action == "Authorize":
        return {"idTokenInfo": {"status": "Accepted"}}
    if action == "NotifyEVChargingNeeds":
        return {"status": "Accepted"}
    return {}


class ScriptedCsms:
    """A 1.6 (or 2.0.1) CSMS on loopback that answers well unless ``script(action, payload, connection_no)``
    says otherwise (a frame to send as is, :data:`CLOSE`, :data:`SILENT`, or None for the normal answer)."""

    def __init__(self, script: Reply | None = None, version: str = "1.6") -> None:
        self.script = script or (lambda action, payload, connection: None)
        self.version = version
        self.received: list[tuple[int, str, dict[str, Any]]] = []
        self.connections = 0
        self.replies: list[list[Any]] = []  # the station's answers to our own CALLs
        self.websocket: Any = None
        self._transaction_ids = itertools.count(100)
        self.server: Any = None

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def handle(self, websocket: Any) -> None:
        self.connections += 1
        connection = self.connections
        self.websocket = websocket
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in websocket:
                frame = json.loads(raw)
                if frame[0] != 2:
                    self.replies.append(frame)
                    continue
                _, message_id, action, payload = frame
                self.received.append((connection, action, payload))
                scripted = self.script(action, payload, connection)
                if scripted is CLOSE:
                    await websocket.close()
                    return
                if scripted is SILENT:
                    continue
                if scripted is None and self.version == "2.0.1":
                    scripted = [3, message_id, answer_201(action, payload)]
                elif scripted is None:
                    scripted = [3, message_id, answer_16(action, payload, self._transaction_ids)]
                elif isinstance(scripted, list):
                    scripted = [message_id if item == ID else item for item in scripted]
                await websocket.send(scripted if isinstance(scripted, str) else json.dumps(scripted))

    async def call(self, frame: list[Any]) -> list[Any]:
        """Send the station a frame as is and return its reply."""
        count = len(self.replies)
        await self.websocket.send(json.dumps(frame))
        await eventually(lambda: len(self.replies) > count)
        return self.replies[-1]

    def actions(self, connection: int | None = None) -> list[str]:
        return [action for number, action, _ in self.received if connection is None or number == connection]


@contextlib.asynccontextmanager
async def scripted_csms(script: Reply | None = None, version: str = "1.6") -> AsyncIterator[ScriptedCsms]:
    csms = ScriptedCsms(script, version)
    subprotocol = f"ocpp{version}"
    async with websockets.serve(csms.handle, "127.0.0.1", 0, subprotocols=[subprotocol]) as server:  # type: ignore[list-item]
        csms.server = server
        yield csms


async def test_a_message_whose_answer_was_lost_is_sent_again_after_reconnecting() -> None:
    def script(action: str, payload: dict[str, Any], connection: int) -> Any:
        # The first StartTransaction arrives, but the connection dies before its answer.
        return CLOSE if action == "StartTransaction" and connection == 1 else None

    async with scripted_csms(script) as csms:
        config = station_config(csms.port, "SIM-1", "1.6", meter_interval_s=0.1)
        async with running(config) as station:
            await station.plug_in(1, ev(), "TAG-1")
            await eventually(lambda: station.snapshot().evses[0].transaction_id == "100", timeout=3.0)
            await eventually(lambda: "MeterValues" in csms.actions(2))
        starts = [payload for _, action, payload in csms.received if action == "StartTransaction"]
        assert len(starts) == 2 and starts[0] == starts[1]  # the same message: the CSMS can recognise it
        # Nothing overtook the start, and what followed it carries the id its answer brought.
        second = csms.actions(2)
        assert second.index("StartTransaction") < second.index("MeterValues")
        assert {p.get("transactionId") for _, a, p in csms.received if a == "MeterValues"} == {100}
        assert station.recorder.protocol_errors == []


@pytest.mark.slow
async def test_a_misbehaving_csms_is_counted_never_fatal() -> None:
    meter_calls = itertools.count()

    def script(action: str, payload: dict[str, Any], connection: int) -> Any:
        if action == "StatusNotification":
            return [3, "nobody-asked", {}]  # an answer to a request never made (and none to ours)
        if action == "Heartbeat":
            return [3, ID, {"currentTime": 42}]  # breaks the schema
        if action == "MeterValues" and next(meter_calls) < 3:
            return [4, ID, "InternalError", "boom", {}]  # CALLERROR, three times
        if action == "Authorize":
            return "this is not json"
        return None

    async with scripted_csms(script) as csms:
        config = station_config(csms.port, "SIM-1", "1.6", meter_interval_s=0.1, call_timeout_s=0.3)
        async with running(config) as station:
            station.core.variables.set("message_retry_interval", 0.05)
            station.core.variables.set("heartbeat_interval", 0.2)
            await station.plug_in(1, ev(), "TAG-1")  # Authorize gets garbage: the local rules decide
            await eventually(lambda: station.snapshot().evses[0].transaction_id == "100", timeout=3.0)
            await asyncio.sleep(1.0)
            assert station.snapshot().connected  # still the first connection
            assert station.snapshot().evses[0].status == "Charging"
        descriptions = " | ".join(error["description"] for error in station.recorder.protocol_errors)
        assert "an answer to no pending request" in descriptions
        assert "unreadable frame" in descriptions
        assert "no answer to StatusNotification" in descriptions  # its answer never came
        assert "invalid answer to Heartbeat" in descriptions
        assert descriptions.count("MeterValues: CALLERROR InternalError: boom") == 3
        assert csms.connections == 1
        assert station.recorder.messages["sent:StartTransaction"] == 1
        # TransactionMessageAttempts (3) tries of the first sample, then it was given up; the rest went.
        assert station.recorder.messages["dropped:MeterValues"] == 1


async def test_a_csms_sending_unknown_or_broken_calls_gets_errors_and_is_counted() -> None:
    async with scripted_csms() as csms:
        async with running(station_config(csms.port, "SIM-1", "1.6")) as station:
            unknown = await csms.call([2, "c1", "NoSuchAction", {}])
            broken = await csms.call([2, "c2", "ChangeConfiguration", {"key": 5}])
            fine = await csms.call([2, "c3", "GetConfiguration", {"key": ["HeartbeatInterval"]}])
            assert unknown[:3] == [4, "c1", "NotImplemented"]
            assert broken[:2] == [4, "c2"] and broken[2] in ("TypeConstraintViolation", "FormationViolation")
            assert fine == [
                3,
                "c3",
                {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]},
            ]
            assert station.snapshot().connected
        assert len(station.recorder.protocol_errors) == 2


async def test_a_pending_station_answers_commands_and_boots_when_triggered() -> None:
    boots = itertools.count()

    def script(action: str, payload: dict[str, Any], connection: int) -> Any:
        if action == "BootNotification" and next(boots) == 0:
            return [3, ID, {"currentTime": format_timestamp(utc_now()), "interval": 300, "status": "Pending"}]
        return None

    async with scripted_csms(script) as csms:
        async with running(station_config(csms.port, "SIM-1", "1.6"), accepted=False) as station:
            await eventually(lambda: csms.actions() == ["BootNotification"])
            # Pending: the CSMS may configure the station, which sends nothing else on its own.
            reply = await csms.call(
                [2, "c1", "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"}]
            )
            assert reply == [3, "c1", {"status": "Accepted"}]
            assert not station.snapshot().accepted
            # The CSMS ends the wait by triggering the boot (instead of waiting out the 300 s).
            reply = await csms.call([2, "c2", "TriggerMessage", {"requestedMessage": "BootNotification"}])
            assert reply == [3, "c2", {"status": "Accepted"}]
            await eventually(lambda: station.snapshot().accepted)
            await eventually(lambda: "StatusNotification" in csms.actions())
        assert csms.actions()[:2] == ["BootNotification", "BootNotification"]
        assert station.core.variables["meter_interval"] == 30


# --- the pieces on their own ------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    backoff = Backoff(1.0, 8.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(7)]
    ceilings = [1, 2, 4, 8, 8, 8, 8]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True))
    assert len({round(delay, 6) for delay in delays[3:]}) > 1  # jittered, not lock step
    backoff.reset()
    assert backoff.next_delay() <= 1.0
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)


async def test_the_outbox_keeps_order_and_gives_up_only_periodic_samples() -> None:
    dropped: list[str] = []
    outbox = Outbox(3, on_drop=lambda envelope: dropped.append(envelope.action))
    start = Envelope("Start", lambda: "start")
    outbox.put(start)
    outbox.put(Envelope("Sample-1", lambda: 1, droppable=True))
    outbox.put(Envelope("Sample-2", lambda: 2, droppable=True))
    outbox.put(Envelope("Sample-3", lambda: 3, droppable=True))  # full: the oldest sample goes
    outbox.put(Envelope("Stop", lambda: "stop"))  # full: the next sample goes
    assert [item.action for item in outbox.items()] == ["Start", "Sample-3", "Stop"]
    assert dropped == ["Sample-1", "Sample-2"]
    outbox.put(Envelope("Stop-2", lambda: "stop"))  # nothing droppable but Sample-3 ...
    outbox.put(Envelope("Stop-3", lambda: "stop"))  # ... then the bound gives way to a stop
    assert [item.action for item in outbox.items()] == ["Start", "Stop", "Stop-2", "Stop-3"]
    assert await outbox.head() is start
    outbox.done(start)
    assert (await outbox.head()).action == "Stop" and outbox.delivered == 1
    assert not await outbox.wait_empty(0.05)


class _Wire:
    """The station's side of a websocket, without a socket: records what is sent."""

    def __init__(self) -> None:
        self.sent: list[list[Any]] = []

    async def send(self, message: str) -> None:
        self.sent.append(json.loads(message))


@pytest.mark.parametrize("given_up_by", ["timeout", "cancellation", "shutdown"])
async def test_a_late_answer_to_a_request_given_up_on_is_no_violation(given_up_by: str) -> None:
    from ocpp.v16 import call

    from simulators.station.link import AnswerTimeout, ConnectionLost
    from simulators.station.protocol16 import Client16

    violations: list[str] = []
    protocol = SimpleNamespace(core=SimpleNamespace(station_id="SIM-1"))
    wire = _Wire()
    link = Client16(
        protocol,  # type: ignore[arg-type]
        wire,
        call_timeout_s=0.05 if given_up_by == "timeout" else 30.0,
        count=lambda direction, action: None,
        violation=violations.append,
    )
    request = asyncio.create_task(link.request(call.Heartbeat()))
    await eventually(lambda: wire.sent)
    if given_up_by == "cancellation":  # e.g. the station shutting down mid-request
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    elif given_up_by == "shutdown":  # the link closing while the answer is still on its way
        link.shut_down()
        with pytest.raises(ConnectionLost):
            await request
    else:
        with pytest.raises(AnswerTimeout):
            await request
    unique_id = wire.sent[0][1]
    await link.route_message(json.dumps([3, unique_id, {"currentTime": format_timestamp(utc_now())}]))
    assert violations == []
    # An answer to an id never sent is still one.
    await link.route_message(json.dumps([3, "never-sent", {"currentTime": format_timestamp(utc_now())}]))
    assert violations == ["an answer to no pending request (id 'never-sent')"]
