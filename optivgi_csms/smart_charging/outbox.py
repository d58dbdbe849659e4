"""Sending profiles without ever making anyone wait for a station.

Each station has its own queue and its own sending task, so a slow or silent station delays only
itself; stations are served concurrently. A queue holds at most one profile per (EVSE, purpose): a newer
plan replaces a profile still waiting to go (its sender hears "Superseded"), so a station that answers
slowly receives the latest plan, not a backlog of stale ones. Cycles hand profiles in and go on; they
never await a station inside an OCPP handler (the station's messages are answered by the same loop).

A profile the station refuses is tried once more in the alternative shape (the other unit, or stack
level 0); if that is refused too the outcome says so and the caller decides what it means.

When limits move, the site must hold in between: a raise that needs the room lowered limits free (the
caller decides which, see changes.raises_to_hold) waits until every profile handed in before it has been
answered, and until the stations have had ``apply_delay_s`` to put the accepted ones in force (stations
apply a new limit a moment after accepting it). Otherwise an EV given more could draw it before another,
given less, had slowed down. Only the raise waits: the station's other deliveries go past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from optivgi_csms.domain.charging_profile import ChargingProfile
from optivgi_csms.logs import get_logger
from optivgi_csms.protocol.commands import StationCommands
from optivgi_csms.protocol.errors import CallErrorResponse, CommandError, InvalidCommandError

log = get_logger(__name__)

#: Outcomes that mean the station will not take the profile as it is (as opposed to "did not hear it").
#: "Invalid" is a profile that would break the station's schema: the alternative shape may still pass.
REFUSALS = frozenset({"Rejected", "NotSupported", "NotImplemented", "Invalid"})


@dataclass(frozen=True, slots=True)
class Delivery:
    """A profile for one EVSE of a station, with the alternative to try if the first is refused."""

    station_id: str
    evse_id: int
    #: What replaces what in the queue: ("tx", transaction id) or ("fallback", 0).
    slot: tuple[str, int]
    attempts: tuple[ChargingProfile, ...]
    #: A raise that needs the room lowered limits free: goes once the deliveries handed in before it were
    #: answered and the accepted ones applied.
    after_lowerings: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a delivery ended: ``status`` is the station's last answer (``Accepted``, ``Rejected``...), a
    failure word (``Timeout``, ``NotConnected``, ``CallError:<code>``), ``Superseded`` or ``Cancelled``."""

    status: str
    #: The profile accepted, or the last one tried.
    profile: ChargingProfile | None
    #: Each attempt's answer, in order.
    answers: tuple[str, ...] = ()
    #: When the outcome came (``time.monotonic()``).
    answered_at: float = field(default=0.0, compare=False)
    #: For ``Superseded``: the delivery that took its place (what waited for this one waits for that one).
    successor: asyncio.Future[Outcome] | None = field(default=None, compare=False, repr=False)

    @property
    def accepted(self) -> bool:
        """Whether the station installed ``profile``."""
        return self.status == "Accepted"

    @property
    def refused(self) -> bool:
        """Whether every attempt was refused: the station will not take this profile."""
        return bool(self.answers) and all(_is_refusal(answer) for answer in self.answers)

    @property
    def retried(self) -> bool:
        """Whether the alternative shape was needed."""
        return len(self.answers) > 1


@dataclass(frozen=True, slots=True)
class _Queued:
    """A delivery in a station's queue, its caller's future and the deliveries it must wait for."""

    delivery: Delivery
    future: asyncio.Future[Outcome]
    after: tuple[asyncio.Future[Outcome], ...]


def _unanswered(futures: Iterable[asyncio.Future[Outcome]]) -> set[asyncio.Future[Outcome]]:
    """The futures not done yet, following superseded ones to their successors."""
    waiting = set()
    for future in futures:
        while future.done() and (successor := future.result().successor) is not None:
            future = successor
        if not future.done():
            waiting.add(future)
    return waiting


def _is_refusal(answer: str) -> bool:
    # A CALLERROR about the content (FormationViolation, PropertyConstraintViolation, NotSupported...)
    # is a refusal of this profile; a station that timed out or went away refused nothing.
    return answer in REFUSALS or (answer.startswith("CallError:") and answer != "CallError:InternalError")


class Outbox:
    """Per-station queues of profiles to send."""

    def __init__(self, commands_of: Callable[[str], StationCommands], *, apply_delay_s: float = 0.0) -> None:
        self._commands_of = commands_of
        self.apply_delay_s = apply_delay_s
        self._queues: dict[str, OrderedDict[tuple[str, int], _Queued]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._submitted: dict[str, asyncio.Event] = {}
        # Deliveries not raising a limit and not yet answered: what a raise handed in now waits for.
        self._unanswered: set[asyncio.Future[Outcome]] = set()
        self._closed = False

    def submit(self, delivery: Delivery) -> asyncio.Future[Outcome]:
        """Queue a delivery; the future resolves with its outcome (never with an exception)."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_result(Outcome("Cancelled", delivery.attempts[0]))
            return future
        queue = self._queues.setdefault(delivery.station_id, OrderedDict())
        replaced = queue.pop(delivery.slot, None)
        if replaced is not None and not replaced.future.done():
            replaced.future.set_result(Outcome("Superseded", replaced.delivery.attempts[0], successor=future))
        after: tuple[asyncio.Future[Outcome], ...] = ()
        if delivery.after_lowerings:
            after = tuple(waiting for waiting in self._unanswered if not waiting.done())
        else:
            self._unanswered.add(future)
            future.add_done_callback(self._unanswered.discard)
        queue[delivery.slot] = _Queued(delivery, future, after)
        self._submitted.setdefault(delivery.station_id, asyncio.Event()).set()
        task = self._tasks.get(delivery.station_id)
        if task is None or task.done():
            self._tasks[delivery.station_id] = asyncio.create_task(
                self._drain(delivery.station_id), name=f"profiles:{delivery.station_id}"
            )
        return future

    def idle(self) -> bool:
        """Whether every delivery handed in has been answered (nothing queued, nothing on the wire)."""
        return all(task.done() for task in self._tasks.values())

    def waiting(self, station_id: str) -> int:
        """Deliveries queued for a station (not counting the one being sent)."""
        return len(self._queues.get(station_id, ()))

    def withdraw(self, station_id: str, slot: tuple[str, int]) -> None:
        """Take back what is queued for ``slot`` (its session ended): it ends ``Cancelled``."""
        queued = self._queues.get(station_id, OrderedDict()).pop(slot, None)
        if queued is not None and not queued.future.done():
            queued.future.set_result(Outcome("Cancelled", queued.delivery.attempts[0]))

    def drop_station(self, station_id: str) -> None:
        """Forget what is queued for a station that went away."""
        for queued in self._queues.pop(station_id, OrderedDict()).values():
            if not queued.future.done():
                queued.future.set_result(Outcome("NotConnected", queued.delivery.attempts[0]))

    async def close(self) -> None:
        """Stop sending; every waiting delivery ends ``Cancelled``."""
        self._closed = True
        for queue in self._queues.values():
            for queued in queue.values():
                if not queued.future.done():
                    queued.future.set_result(Outcome("Cancelled", queued.delivery.attempts[0]))
        self._queues.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _drain(self, station_id: str) -> None:
        while queue := self._queues.get(station_id):
            slot = self._next_ready(queue)
            if slot is None:
                await self._hold(station_id, queue.values())
                continue
            queued = queue.pop(slot)
            delivery, future = queued.delivery, queued.future
            try:
                outcome = await self._deliver(delivery)
            except asyncio.CancelledError:
                if not future.done():
                    future.set_result(Outcome("Cancelled", delivery.attempts[0]))
                raise
            except Exception as error:  # a bug here must not leave the caller waiting forever
                log.exception("profile delivery failed", station_id=station_id)
                outcome = Outcome(f"Error:{type(error).__name__}", delivery.attempts[0])
            if not future.done():
                future.set_result(replace(outcome, answered_at=time.monotonic()))

    def _ready_at(self, queued: _Queued) -> float | None:
        """When the delivery may go (monotonic), or None while what it waits for is unanswered."""
        applied = 0.0
        for earlier in queued.after:
            while True:
                if not earlier.done():
                    return None
                outcome = earlier.result()
                if outcome.successor is None:
                    break
                earlier = outcome.successor  # a lowering replaced by a newer plan's: wait for that
            if outcome.accepted:
                applied = max(applied, outcome.answered_at + self.apply_delay_s)
        return applied

    def _next_ready(self, queue: OrderedDict[tuple[str, int], _Queued]) -> tuple[str, int] | None:
        """The first queued delivery free to go, in order."""
        now = time.monotonic()
        for slot, queued in queue.items():
            ready_at = self._ready_at(queued)
            if ready_at is not None and ready_at <= now:
                return slot
        return None

    async def _hold(self, station_id: str, held: Iterable[_Queued]) -> None:
        """Wait until a held delivery may be free to go, or something new is queued for the station."""
        unanswered: set[asyncio.Future[Outcome]] = set()
        soonest = float("inf")
        for queued in held:
            ready_at = self._ready_at(queued)
            if ready_at is None:
                unanswered.update(_unanswered(queued.after))
            else:
                soonest = min(soonest, ready_at)
        submitted = self._submitted.setdefault(station_id, asyncio.Event())
        submitted.clear()
        watcher = asyncio.ensure_future(submitted.wait())
        try:
            timeout = None if soonest == float("inf") else max(0.0, soonest - time.monotonic())
            await asyncio.wait({*unanswered, watcher}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()

    async def _deliver(self, delivery: Delivery) -> Outcome:
        try:
            commands = self._commands_of(delivery.station_id)
        except CommandError as error:
            return Outcome(error.status_word, delivery.attempts[0])
        answers: list[str] = []
        profile = delivery.attempts[0]
        for profile in delivery.attempts:
            try:
                answer = (await commands.set_charging_profile(delivery.evse_id, profile)).status
            except (CallErrorResponse, InvalidCommandError) as error:
                answer = error.status_word
            except CommandError as error:
                answers.append(error.status_word)
                return Outcome(error.status_word, profile, tuple(answers))
            answers.append(answer)
            if answer == "Accepted" or not _is_refusal(answer):
                return Outcome(answer, profile, tuple(answers))
        return Outcome(answers[-1], profile, tuple(answers))
