"""What a charging station does, in neither version's words: sessions, authorization, availability,
resets, triggered messages, and the physics tick that makes the EVs charge. Smart charging
(:mod:`~simulators.station.smart`) and reservations (:mod:`~simulators.station.reservations`) are
parts it holds.

Everything here runs on the event loop without waiting for the network, except the few operations
that must (Authorize). Messages go out through the :class:`Uplink` (the connection), either at
once or through the offline queue; the :class:`~simulators.station.protocol.Protocol` writes them.
CSMS commands arrive through the protocol's client as calls to the methods under "commands".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import datetime
from typing import Any
from typing import Protocol as TypingProtocol

from optivgi_csms.domain.charging_profile import ChargingProfile, ProfilePurpose
from simulators.clock import SimClock
from simulators.ev import EVModel
from simulators.recorder import PowerSample, Recorder
from simulators.station.config import StationConfig
from simulators.station.evse import Evse, StartRequest, Status, Transaction
from simulators.station.outbox import Envelope
from simulators.station.protocol import MeterContext, Protocol, StartTrigger, StopReason
from simulators.station.reservations import Reservations
from simulators.station.smart import SmartCharging
from simulators.station.variables import StationVariables, default_settings

log = logging.getLogger(__name__)

# The 2.0.1 idToken type of a tag presented at the station (an RFID card).
LOCAL_TOKEN_TYPE = "ISO14443"


class Uplink(TypingProtocol):
    """What the behaviour needs from the connection."""

    @property
    def online(self) -> bool:
        """Connected and admitted by the CSMS."""
        ...

    def queue(self, envelope: Envelope) -> None:
        """Send through the offline queue."""
        ...

    async def call(self, payload: Any) -> Any | None:
        """Send now and return the answer; None when off line or the answer was unusable."""
        ...

    async def restart(self, boot_reason: str) -> None:
        """Reboot: drop the connection, stay off for a moment, connect and boot again."""
        ...

    async def boot_now(self, reason: str) -> None:
        """Send a BootNotification now (TriggerMessage)."""
        ...


class StationCore:
    """The behaviour of one station."""

    def __init__(self, config: StationConfig, clock: SimClock, recorder: Recorder) -> None:
        self.config = config
        self.clock = clock
        self.recorder = recorder
        rules = config.rules
        self.variables = StationVariables(
            default_settings(
                evse_count=config.evse_count,
                heartbeat_interval_s=config.heartbeat_interval_s,
                meter_interval_s=config.meter_interval_s,
                max_stack_level=rules.max_stack_level,
                rate_units=rules.allowed_units,
                max_periods=rules.max_periods,
                max_profiles=rules.max_profiles,
                limits_writable=config.limits_writable,
            )
        )
        self.variables.on_change(self._setting_changed)
        self.evses = [
            Evse(index, config.max_current_a, config.phases, config.voltage_v)
            for index in range(1, config.evse_count + 1)
        ]
        self.smart = SmartCharging(config, self.evses, self.variables, clock, recorder)
        self.store = self.smart.store
        self.limits = self.smart.limits
        self.reservations = Reservations(
            self.evses,
            self.variables,
            changed=self.refresh,
            expired=lambda reservation_id: self.queue(self.protocol.reservation_ended(reservation_id, expired=True)),
        )
        self.auth_cache: dict[str, str] = {}
        self.reset_scheduled: bool = False  # a 2.0.1 OnIdle reset waiting for the sessions to end
        self.uplink: Uplink | None = None
        self.protocol: Protocol = _protocol_for(config.ocpp_version, self)
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- helpers --------------------------------------------------------------------------------

    @property
    def station_id(self) -> str:
        """The station's identity."""
        return self.config.station_id

    @property
    def online(self) -> bool:
        """Connected and admitted by the CSMS."""
        return self.uplink is not None and self.uplink.online

    def evse(self, evse_id: int) -> Evse | None:
        """The EVSE with this id (1-based), or None."""
        return self.evses[evse_id - 1] if 1 <= evse_id <= len(self.evses) else None

    def _evse(self, evse_id: int) -> Evse:
        evse = self.evse(evse_id)
        if evse is None:
            raise ValueError(f"{self.station_id} has no EVSE {evse_id} (it has {len(self.evses)})")
        return evse

    @staticmethod
    def now() -> datetime:
        """Wall UTC time (OCPP runs on the real clock)."""
        return SimClock.wall_now()

    def violation(self, description: str) -> None:
        """Count something the CSMS did against the protocol (it never stops the station)."""
        log.warning("%s: %s", self.station_id, description)
        self.recorder.protocol_error(self.clock.sim_now(), self.station_id, description)

    def count(self, direction: str, action: str) -> None:
        """Count one message sent or received."""
        self.recorder.message(self.station_id, direction, action)

    def queue(self, envelope: Envelope | None) -> None:
        """Hand a message to the connection (volatile ones only while on line)."""
        if envelope is None or self.uplink is None:
            return
        if not envelope.persistent and not self.uplink.online:
            return
        self.uplink.queue(envelope)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` in the background: what a command handler must not await (see link.py)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background work failed", self.station_id, exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        """Stop all background work."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _setting_changed(self, name: str) -> None:
        if name == "meter_interval":
            # A new sample interval takes effect now, not after the old interval has run out.
            interval = self.variables["meter_interval"]
            for evse in self.evses:
                if evse.transaction is not None:
                    evse.next_meter_at = time.monotonic() + interval if interval > 0 else None

    # --- the EV side: plugging in and out -------------------------------------------------------

    async def plug_in(self, evse_id: int, ev: EVModel, id_tag: str, id_token_type: str = LOCAL_TOKEN_TYPE) -> None:
        """An EV arrives and its driver presents ``id_tag``: Preparing, Authorize, start, Charging."""
        evse = self._evse(evse_id)
        if evse.ev is not None:
            raise ValueError(f"{self.station_id} EVSE {evse_id} already has an EV plugged in")
        evse.ev = ev
        evse.finishing = False
        self.refresh(evse)
        pending = evse.remote_start
        if pending is not None:
            # A remote start waited for this cable; its authorization (if asked for) may still be under way.
            if pending.authorized:
                self._start(evse, pending, StartTrigger.CABLE_PLUGGED_IN)
            return
        if not self._may_start(evse, id_tag):
            log.info("%s: EVSE %d cannot start for %s", self.station_id, evse_id, id_tag)
            return
        if not await self.authorize(id_tag, id_token_type):
            log.info("%s: %s not authorized on EVSE %d", self.station_id, id_tag, evse_id)
            return
        if evse.ev is ev and evse.transaction is None and evse.remote_start is None and self._may_start(evse, id_tag):
            self._start(evse, StartRequest(id_tag, id_token_type), StartTrigger.AUTHORIZED)

    async def unplug(self, evse_id: int) -> None:
        """The EV leaves: its session stops (EVDisconnected), Finishing, then Available."""
        evse = self._evse(evse_id)
        if evse.transaction is not None:
            self.stop(evse, StopReason.EV_DISCONNECTED)
        evse.ev = None
        evse.finishing = False
        evse.draw(0.0)
        self.refresh(evse)

    def set_fault(self, evse_id: int, error_code: str | None) -> None:
        """Put an EVSE in Faulted (``error_code``, a 1.6 ChargePointErrorCode) or clear its fault (None)."""
        evse = self._evse(evse_id)
        evse.fault = error_code
        self._draw(evse)
        self.refresh(evse)

    def _may_start(self, evse: Evse, id_tag: str) -> bool:
        """Whether a session for ``id_tag`` may start here (availability, faults, reservations)."""
        if evse.transaction is not None or evse.fault is not None or not evse.operative:
            return False
        return not self.reservations.blocks(evse, id_tag)

    # --- authorization --------------------------------------------------------------------------

    async def authorize(self, id_tag: str, id_token_type: str = LOCAL_TOKEN_TYPE) -> bool:
        """Whether ``id_tag`` may charge: ask the CSMS, or decide locally when it cannot be asked."""
        settings = self.variables
        cached = self.auth_cache.get(id_tag) if settings["auth_cache_enabled"] else None
        if self.online and self.uplink is not None:
            if settings["local_pre_authorize"] and cached == "Accepted":
                return True
            result = await self.uplink.call(self.protocol.authorize_request(id_tag, id_token_type))
            if result is not None:
                status = self.protocol.authorization_status(result)
                self.remember(id_tag, status)
                return status == "Accepted"
        # Off line (or no usable answer): the local rules.
        if cached is not None:
            return bool(settings["local_authorize_offline"]) and cached == "Accepted"
        return bool(settings["allow_offline_unknown"])

    def remember(self, id_tag: str | None, status: str | None) -> None:
        """Keep an id tag's status in the authorization cache."""
        if id_tag is not None and status is not None and self.variables["auth_cache_enabled"]:
            self.auth_cache[id_tag] = status

    def deauthorized(self, transaction: Transaction, status: str) -> None:
        """The CSMS refused the tag of a running session (in its start answer)."""
        self.remember(transaction.id_tag, status)
        evse = self.evse(transaction.evse_id)
        if evse is None or evse.transaction is not transaction:
            return
        if self.variables["stop_on_invalid_id"]:
            self.stop(evse, StopReason.DEAUTHORIZED)

    # --- sessions -------------------------------------------------------------------------------

    def _start(self, evse: Evse, request: StartRequest, trigger: StartTrigger) -> Transaction:
        now = self.now()
        reservation_id = self.reservations.use(evse, request.id_tag)
        transaction = Transaction(
            evse_id=evse.evse_id,
            id_tag=request.id_tag,
            id_token_type=request.id_token_type,
            started_at=now,
            meter_start_wh=evse.energy_wh,
            remote_start_id=request.remote_start_id,
            reservation_id=reservation_id,
        )
        if self.config.ocpp_version == "2.0.1":
            transaction.ocpp_id = transaction.local_id
        evse.transaction = transaction
        evse.remote_start = None
        evse.finishing = False
        if isinstance(request.profile, ChargingProfile):
            self.smart.set_profile(evse.evse_id, request.profile, transaction.local_id)
        # The station knows its limit before it closes the contactor: no apply delay at the start.
        self.limits.update(now, time.monotonic())
        evse.applied_limit_a = evse.target_limit_a
        evse.limit_changes.clear()
        transaction.reported_limit_a = evse.applied_limit_a
        self._draw(evse)
        self.queue(self.protocol.transaction_started(evse, transaction, evse.reading(now), trigger))
        if evse.ev is not None and evse.ev.spec.iso15118:
            # An ISO 15118 EV tells its needs once the session runs: queued after the Started event, so the
            # CSMS knows the session the needs belong to.
            self.queue(self.protocol.ev_charging_needs(evse, transaction))
        interval = self.variables["meter_interval"]
        evse.next_meter_at = time.monotonic() + interval if interval > 0 else None
        self.refresh(evse)
        return transaction

    def stop(self, evse: Evse, reason: StopReason, id_tag: str | None = None) -> None:
        """End the session on ``evse``."""
        transaction = evse.transaction
        if transaction is None:
            return
        self.queue(self.protocol.transaction_ended(evse, transaction, evse.reading(self.now()), reason, id_tag))
        evse.transaction = None
        evse.finishing = evse.ev is not None
        evse.next_meter_at = None
        self.store.transaction_ended(evse.evse_id)
        evse.draw(0.0)
        if evse.inoperative_when_idle:
            evse.operative = False
            evse.inoperative_when_idle = False
        self.refresh(evse)
        if self.reset_scheduled and all(other.transaction is None for other in self.evses):
            self.reset_scheduled = False
            self.spawn(self._reboot(None))

    def transaction(self, ocpp_id: str) -> Evse | None:
        """The EVSE running the transaction the CSMS knows as ``ocpp_id``."""
        return next((e for e in self.evses if e.transaction is not None and e.transaction.ocpp_id == ocpp_id), None)

    # --- status ---------------------------------------------------------------------------------

    def refresh(self, evse: Evse, *, force: bool = False) -> None:
        """Report the EVSE's status (and 2.0.1 charging state) when it changed."""
        new = evse.status()
        old = evse.reported_status
        if new == old and not force:
            return
        evse.reported_status = new
        for envelope in self.protocol.status_changed(evse, None if force else old, new):
            self.queue(envelope)
        transaction = evse.transaction
        if transaction is not None and new != old:
            self.queue(self.protocol.charging_state_changed(evse, transaction, new))

    def station_status(self) -> Status:
        """The station as a whole (1.6 connector 0)."""
        return Status.AVAILABLE if any(evse.operative for evse in self.evses) else Status.UNAVAILABLE

    def report_all(self) -> None:
        """Report every status as it is now (after connecting, or when triggered)."""
        for envelope in self.protocol.station_status(self.station_status()):
            self.queue(envelope)
        for evse in self.evses:
            self.refresh(evse, force=True)

    # --- the physics tick -----------------------------------------------------------------------

    def tick(self, wall_seconds: float) -> None:
        """Advance the station by ``wall_seconds``: expiries, limits, charging, statuses, meter values."""
        now = self.now()
        monotonic = time.monotonic()
        self._expire(now, monotonic)
        self.limits.update(now, monotonic)
        sim_seconds = self.clock.sim_seconds(wall_seconds)
        sim_now = self.clock.sim_now()
        for evse in self.evses:
            evse.advance(sim_seconds)  # what was drawn over the step that just ended
            self._draw(evse)
            self.refresh(evse)
            self._report_rate_change(evse, now)
            self._meter_if_due(evse, now, monotonic)
            self.recorder.sample(
                PowerSample(
                    sim_time=sim_now,
                    station_id=self.station_id,
                    evse_id=evse.evse_id,
                    ev_id=evse.ev.spec.ev_id if evse.ev is not None else None,
                    power_kw=evse.power_kw,
                    offered_kw=evse.offered_kw if evse.transaction is not None else None,
                    energy_kwh=evse.session_energy_kwh(),
                    soc=evse.ev.soc if evse.ev is not None else None,
                )
            )

    def _draw(self, evse: Evse) -> None:
        evse.draw(self.limits.offer_a(evse))

    def _meter_if_due(self, evse: Evse, now: datetime, monotonic: float) -> None:
        transaction = evse.transaction
        if transaction is None or evse.next_meter_at is None or monotonic < evse.next_meter_at:
            return
        self.queue(self.protocol.meter_values(evse, transaction, evse.reading(now), MeterContext.PERIODIC))
        interval = self.variables["meter_interval"]
        if interval <= 0:
            evse.next_meter_at = None
            return
        # Keep the cadence; after a stall (a slow tick) start again from now rather than catch up.
        evse.next_meter_at += interval
        if evse.next_meter_at <= monotonic:
            evse.next_meter_at = monotonic + interval

    def _report_rate_change(self, evse: Evse, now: datetime) -> None:
        """2.0.1: a limit change beyond LimitChangeSignificance (percent) is a ChargingRateChanged event."""
        transaction = evse.transaction
        if transaction is None:
            return
        before = transaction.reported_limit_a if transaction.reported_limit_a is not None else evse.max_current_a
        after = evse.applied_limit_a if evse.applied_limit_a is not None else evse.max_current_a
        if abs(after - before) <= max(before, 1e-9) * self.variables["limit_change_significance"] / 100:
            return
        transaction.reported_limit_a = evse.applied_limit_a
        self.queue(self.protocol.charging_rate_changed(evse, transaction, evse.reading(now)))

    def _expire(self, now: datetime, monotonic: float) -> None:
        """Reservations past their expiry and remote starts whose cable never came."""
        self.reservations.expire(now)
        for evse in self.evses:
            if evse.remote_start is not None and evse.ev is None and evse.remote_start.deadline <= monotonic:
                log.info("%s: no EV came to EVSE %d for the remote start", self.station_id, evse.evse_id)
                evse.remote_start = None
                self.refresh(evse)

    # --- commands: sessions ---------------------------------------------------------------------

    def remote_start(
        self,
        evse_id: int | None,
        id_tag: str,
        id_token_type: str,
        remote_start_id: int | None,
        profile: ChargingProfile | None,
    ) -> tuple[bool, Transaction | None]:
        """RemoteStartTransaction / RequestStartTransaction: (accepted, the session if it started at once)."""
        if profile is not None and profile.purpose is not ProfilePurpose.TX:
            return False, None
        evse = self.evse(evse_id) if evse_id else self._free_evse(id_tag)
        if evse is None or evse.remote_start is not None or not self._may_start(evse, id_tag):
            return False, None
        authorize = bool(self.variables["authorize_remote"])
        deadline = time.monotonic() + self.variables["connection_timeout"]
        request = StartRequest(id_tag, id_token_type, remote_start_id, deadline, profile, authorized=not authorize)
        evse.remote_start = request
        if authorize:
            self.spawn(self._authorize_remote(evse, request))
            self.refresh(evse)
            return True, None
        if evse.ev is not None:
            return True, self._start(evse, request, StartTrigger.REMOTE_START)
        self.refresh(evse)
        return True, None

    def _free_evse(self, id_tag: str) -> Evse | None:
        """The EVSE a remote start without one goes to: one with an EV waiting, else a free one."""
        candidates = [evse for evse in self.evses if evse.remote_start is None and self._may_start(evse, id_tag)]
        waiting = [evse for evse in candidates if evse.ev is not None and not evse.finishing]
        return (waiting or [evse for evse in candidates if evse.ev is None] or [None])[0]

    async def _authorize_remote(self, evse: Evse, request: StartRequest) -> None:
        accepted = await self.authorize(request.id_tag, request.id_token_type)
        if evse.remote_start is not request:
            return  # cancelled meanwhile
        if not accepted:
            evse.remote_start = None
            self.refresh(evse)
            return
        request.authorized = True
        if evse.ev is not None and evse.transaction is None:
            self._start(evse, request, StartTrigger.REMOTE_START)

    def remote_stop(self, ocpp_transaction_id: str) -> bool:
        """RemoteStopTransaction / RequestStopTransaction."""
        evse = self.transaction(ocpp_transaction_id)
        if evse is None:
            return False
        self.stop(evse, StopReason.REMOTE)
        return True

    # --- commands: the station ------------------------------------------------------------------

    def reset(self, *, hard: bool, when_idle: bool) -> str:
        """Reset: ``Accepted`` (sessions stop, the station reboots) or ``Scheduled`` (after the sessions)."""
        if when_idle and any(evse.transaction is not None for evse in self.evses):
            self.reset_scheduled = True
            return "Scheduled"
        self.spawn(self._reboot(StopReason.HARD_RESET if hard else StopReason.SOFT_RESET))
        return "Accepted"

    async def _reboot(self, reason: StopReason | None) -> None:
        for evse in self.evses:
            if reason is not None:
                self.stop(evse, reason)
            evse.remote_start = None
            self.refresh(evse)
        if self.uplink is not None:
            await self.uplink.restart("RemoteReset")

    def change_availability(self, evse_id: int, operative: bool) -> str:
        """ChangeAvailability on an EVSE (0: all): ``Accepted``, ``Scheduled`` (after its session) or ``Rejected``."""
        targets = self.evses if evse_id == 0 else [e for e in [self.evse(evse_id)] if e is not None]
        if not targets:
            return "Rejected"
        scheduled = False
        for evse in targets:
            if operative:
                evse.operative = True
                evse.inoperative_when_idle = False
            elif evse.transaction is not None:
                evse.inoperative_when_idle = True
                scheduled = True
            else:
                evse.operative = False
                evse.remote_start = None
            self.refresh(evse)
        if evse_id == 0:
            for envelope in self.protocol.station_status(self.station_status()):
                self.queue(envelope)
        return "Scheduled" if scheduled else "Accepted"

    def unlock(self, evse_id: int, *, stop_session: bool) -> str:
        """UnlockConnector: ``Unknown`` EVSE, ``Busy`` (a session runs and ``stop_session`` is False) or
        ``Unlocked`` (after stopping the session when asked to)."""
        evse = self.evse(evse_id)
        if evse is None:
            return "Unknown"
        if evse.transaction is not None:
            if not stop_session:
                return "Busy"
            self.stop(evse, StopReason.UNLOCK_COMMAND)
        return "Unlocked"

    def clear_cache(self) -> bool:
        """ClearCache."""
        self.auth_cache.clear()
        return True

    # --- commands: triggered messages -----------------------------------------------------------

    def trigger_meter_values(self, evse_id: int | None) -> bool:
        """Send meter values now (TriggerMessage MeterValues); False for an unknown EVSE."""
        targets = self.evses if not evse_id else [e for e in [self.evse(evse_id)] if e is not None]
        if not targets:
            return False
        now = self.now()
        for evse in targets:
            self.queue(self.protocol.meter_values(evse, evse.transaction, evse.reading(now), MeterContext.TRIGGER))
        return True

    def trigger_status(self, evse_id: int | None) -> bool:
        """Send StatusNotification now (TriggerMessage); False for an unknown EVSE."""
        if evse_id:
            evse = self.evse(evse_id)
            if evse is None:
                return False
            self.refresh(evse, force=True)
            return True
        self.report_all()
        return True


def _protocol_for(version: str, core: StationCore) -> Protocol:
    # Imported here: the protocol modules import this one for typing.
    if version == "1.6":
        from simulators.station.protocol16 import Protocol16

        return Protocol16(core)
    from simulators.station.protocol201 import Protocol201

    return Protocol201(core)
