"""The station's connection to its CSMS: connect, boot, heartbeat, deliver the queue, reconnect.

One loop per station, for its whole life:

1. open the websocket (``ocpp1.6`` or ``ocpp2.0.1``, Basic auth when the station has a password);
   on failure wait an exponential, capped, jittered back-off and try again;
2. BootNotification, if the station has not been accepted since it (re)started: on Pending or
   Rejected wait the interval the CSMS gave and send it again (the station sends nothing else
   meanwhile); on Accepted take the interval as the heartbeat interval;
3. while connected: heartbeats at the HeartbeatInterval in force, and the offline queue delivered
   in order, each message until answered (see :mod:`simulators.station.outbox`);
4. when the connection drops: back to 1, the queue kept. Meanwhile the station keeps charging under
   its last profiles and queues its transaction messages and meter values.

A CSMS that answers badly (CALLERROR, schema-breaking answers, answers to nothing, timeouts) is
recorded through ``violation`` and the station carries on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from typing import Any

import websockets
from ocpp.exceptions import OCPPError
from websockets.exceptions import InvalidHandshake, InvalidStatus

from simulators.station.backoff import Backoff
from simulators.station.config import StationConfig
from simulators.station.link import AnswerTimeout, CallErrorAnswer, ClientLink, ConnectionLost, InvalidAnswer, LinkError
from simulators.station.outbox import Envelope, Outbox
from simulators.station.protocol import BootAnswer
from simulators.station.variables import StationVariables

log = logging.getLogger(__name__)

# When the CSMS gives interval 0 with Pending/Rejected, boot again after this many seconds.
DEFAULT_BOOT_RETRY_S = 60.0


class Connection:
    """The connection loop of one station (implements :class:`simulators.station.core.Uplink`)."""

    def __init__(self, config: StationConfig, core: Any, outbox: Outbox, *, backoff: Backoff | None = None) -> None:
        self.config = config
        self.core = core  # StationCore; Any to keep the import graph acyclic
        self.outbox = outbox
        self.backoff = backoff or Backoff(config.reconnect_initial_s, config.reconnect_max_s)
        self.link: ClientLink | None = None
        self.accepted_since_boot = False  # accepted at least once since the station (re)started
        self.boot_reason = "PowerUp"
        self.connects = 0  # successful websocket handshakes, for tests and reports
        self._online = False
        self._heartbeat_changed = asyncio.Event()
        self._rebooting = False
        self._stopping = asyncio.Event()
        self._accepted = asyncio.Event()  # set when a boot is accepted (also a triggered one)
        variables: StationVariables = core.variables
        variables.on_change(self._setting_changed)

    # --- Uplink ---------------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """Connected and admitted by the CSMS."""
        return self._online and self.link is not None and not self.link.closed

    @property
    def connected(self) -> bool:
        """The websocket is open."""
        return self.link is not None and not self.link.closed

    def queue(self, envelope: Envelope) -> None:
        """Queue a message for delivery in order."""
        self.outbox.put(envelope)

    async def call(self, payload: Any) -> Any | None:
        """Send now and return the answer; None when off line or the answer was unusable (recorded)."""
        link = self.link
        if not self.online or link is None:
            return None
        try:
            return await link.request(payload)
        except ConnectionLost:
            return None
        except LinkError as error:
            self.core.violation(f"{type(payload).__name__}: {error}")
            return None

    async def restart(self, boot_reason: str) -> None:
        """Reboot: give queued messages a moment to go, drop the connection, reconnect and boot."""
        if self.online:
            await self.outbox.wait_empty(min(self.config.call_timeout_s, 5.0))
        self.boot_reason = boot_reason
        self.accepted_since_boot = False
        if self.link is not None and not self.link.closed:
            self._rebooting = True
            await self.link.close()

    async def boot_now(self, reason: str) -> None:
        """A BootNotification on request (TriggerMessage), also while the boot is Pending (the CSMS
        triggers it to end the wait); the answer's interval is taken as usual."""
        link = self.link
        if link is None or link.closed:
            return
        try:
            answer = await link.request(self.core.protocol.boot_request(reason))
        except ConnectionLost:
            return
        except LinkError as error:
            self.core.violation(f"BootNotification: {error}")
            return
        self._booted(self.core.protocol.boot_answer(answer))

    async def heartbeat_now(self) -> None:
        """A Heartbeat on request (TriggerMessage)."""
        await self.call(self.core.protocol.heartbeat_request())

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, boot, serve, reconnect; until cancelled."""
        while not self._stopping.is_set():
            delay = await self._session()
            # Waiting on the stop event as well: a stop never waits out a back-off.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def stop(self, drain_timeout_s: float) -> None:
        """Let the queue drain for up to ``drain_timeout_s`` (only while on line), then close."""
        if self.online and drain_timeout_s > 0:
            await self.outbox.wait_empty(drain_timeout_s)
        self._stopping.set()
        if self.link is not None:
            await self.link.close()

    async def _session(self) -> float:
        """One connection from handshake to loss; returns how long to wait before the next."""
        websocket = await self._connect()
        if websocket is None:
            return self.backoff.next_delay()
        if self._stopping.is_set():
            await websocket.close()
            return 0.0
        self.connects += 1
        link = self.core.protocol.client(
            websocket,
            call_timeout_s=self.config.call_timeout_s,
            count=self.core.count,
            violation=self.core.violation,
        )
        self.link = link
        self.core.recorder.connection(self.config.station_id, True)
        reader = asyncio.create_task(link.serve(), name=f"{self.config.station_id}-reader")
        workers: list[asyncio.Task[Any]] = []
        try:
            if await self._boot(link, reader):
                self.backoff.reset()
                self._online = True
                self.core.report_all()
                workers = [
                    asyncio.create_task(self._deliver(link), name=f"{self.config.station_id}-outbox"),
                    asyncio.create_task(self._heartbeats(link), name=f"{self.config.station_id}-heartbeat"),
                ]
                await asyncio.wait([reader, *workers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._online = False
            for task in workers:
                task.cancel()
            await link.close()
            reader.cancel()
            await asyncio.gather(reader, *workers, return_exceptions=True)
            self.core.recorder.connection(self.config.station_id, False)
            self._drop_volatile()
        if self._rebooting:
            self._rebooting = False
            return self.config.reboot_s
        log.info("%s: connection lost", self.config.station_id)
        return self.backoff.next_delay()

    async def _connect(self) -> Any | None:
        """Open the websocket; None when the CSMS cannot be reached (recorded if it refused us)."""
        headers = None
        if self.config.password is not None:
            token = base64.b64encode(f"{self.config.station_id}:{self.config.password}".encode()).decode()
            headers = {"Authorization": f"Basic {token}"}
        try:
            websocket = await websockets.connect(
                self.config.endpoint,
                subprotocols=[self.config.subprotocol],  # type: ignore[list-item]
                additional_headers=headers,
                open_timeout=self.config.call_timeout_s,
                max_size=None,
            )
        except InvalidStatus as error:
            self.core.violation(f"the CSMS refused the connection: HTTP {error.response.status_code}")
            return None
        except (OSError, InvalidHandshake, TimeoutError) as error:
            log.debug("%s: cannot connect: %s", self.config.station_id, error)
            return None
        if websocket.subprotocol != self.config.subprotocol:
            self.core.violation(f"the CSMS did not agree to {self.config.subprotocol} (got {websocket.subprotocol})")
            await websocket.close()
            return None
        return websocket

    async def _boot(self, link: ClientLink, reader: asyncio.Task[Any]) -> bool:
        """BootNotification until accepted; False if the connection ended first."""
        if self.accepted_since_boot:
            return True  # a reconnection, not a restart: no new boot (OCPP boots once per start-up)
        protocol = self.core.protocol
        while not reader.done():
            try:
                answer = protocol.boot_answer(await link.request(protocol.boot_request(self.boot_reason)))
            except ConnectionLost:
                return False
            except (AnswerTimeout, CallErrorAnswer, InvalidAnswer) as error:
                self.core.violation(f"BootNotification: {error}")
                await _sleep_unless_done(self.backoff.next_delay(), reader)
                continue
            if answer.status == "Accepted":
                self._booted(answer)
                return True
            retry = answer.interval_s if answer.interval_s > 0 else DEFAULT_BOOT_RETRY_S
            log.info("%s: boot %s, again in %s s", self.config.station_id, answer.status, retry)
            self._accepted.clear()
            accepted = asyncio.ensure_future(self._accepted.wait())
            try:
                # A triggered boot (boot_now) may be accepted meanwhile: stop waiting then.
                await asyncio.wait([reader, accepted], timeout=retry, return_when=asyncio.FIRST_COMPLETED)
            finally:
                accepted.cancel()
            if self.accepted_since_boot:
                return True
        return False

    def _booted(self, answer: BootAnswer) -> None:
        if answer.status != "Accepted":
            return
        self.accepted_since_boot = True
        self._accepted.set()
        self.boot_reason = "PowerUp"
        if answer.interval_s > 0:
            self.core.variables.set("heartbeat_interval", float(answer.interval_s))

    async def _heartbeats(self, link: ClientLink) -> None:
        while not link.closed:
            interval = self.core.variables["heartbeat_interval"]
            self._heartbeat_changed.clear()
            if interval <= 0:
                await self._heartbeat_changed.wait()
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._heartbeat_changed.wait()
                continue  # the interval changed: start counting the new one
            await self.call(self.core.protocol.heartbeat_request())

    def _setting_changed(self, name: str) -> None:
        if name == "heartbeat_interval":
            self._heartbeat_changed.set()

    async def _deliver(self, link: ClientLink) -> None:
        """Send the queue in order; each message until answered, a failing one a limited number of times."""
        while True:
            envelope = await self.outbox.head()
            if not envelope.persistent and not self.online:
                self.outbox.drop(envelope)
                continue
            try:
                payload = envelope.build()
            except Exception:  # a bug here must not wedge the queue behind one message
                log.exception("%s: building %s failed", self.config.station_id, envelope.action)
                payload = None
            if payload is None:
                self.outbox.drop(envelope)  # e.g. its session's start was never answered
                continue
            try:
                result = await link.request(payload)
            except ConnectionLost:
                if not envelope.persistent:
                    self.outbox.drop(envelope)
                return  # kept at the head: sent again after reconnecting
            except OCPPError:  # our own message breaks the schema: a bug here, logged, never retried
                log.exception("%s: %s is invalid", self.config.station_id, envelope.action)
                self.outbox.drop(envelope)
                continue
            except (AnswerTimeout, CallErrorAnswer, InvalidAnswer) as error:
                self.core.violation(f"{envelope.action}: {error}")
                envelope.attempts += 1
                attempts = self.core.variables["message_attempts"] if envelope.retry else 1
                if not envelope.persistent or envelope.attempts >= attempts:
                    self.outbox.drop(envelope)
                    continue
                # OCPP: wait the retry interval times the attempts made before trying again.
                await asyncio.sleep(self.core.variables["message_retry_interval"] * envelope.attempts)
                continue
            self.outbox.done(envelope)
            if envelope.answered is not None:
                try:
                    envelope.answered(result)
                except Exception:
                    log.exception("%s: handling the answer to %s failed", self.config.station_id, envelope.action)

    def _drop_volatile(self) -> None:
        """Off line, messages only worth sending now go: the statuses are sent afresh on reconnecting."""
        for envelope in [item for item in self.outbox.items() if not item.persistent]:
            self.outbox.drop(envelope)


async def _sleep_unless_done(seconds: float, task: asyncio.Task[Any]) -> None:
    """Sleep ``seconds``, or less if ``task`` finishes first."""
    await asyncio.wait([task], timeout=seconds)
