"""Domain events: what happened, published after it is committed, for whoever needs to react.

Smart charging subscribes to plan again when sessions start or stop, meters disagree with the plan
or limits change. Publishing never waits: subscribers must be quick (they note the event and return;
any real work runs in their own tasks), and a failing subscriber is logged, never felt by the
station whose message caused the event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from optivgi_csms.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StationConnected:
    """A station opened a connection (``admitted``: the boot policy lets it talk)."""

    station_id: str
    admitted: bool


@dataclass(frozen=True, slots=True)
class StationBooted:
    """A station's BootNotification was answered (``accepted`` or not)."""

    station_id: str
    accepted: bool


@dataclass(frozen=True, slots=True)
class StationDisconnected:
    """A station's connection ended (and no newer one replaced it)."""

    station_id: str


@dataclass(frozen=True, slots=True)
class TransactionStarted:
    """A session began (first report of it; retransmissions publish nothing)."""

    station_id: str
    transaction_id: int
    evse_id: int
    id_tag: str | None = None
    #: When the station says it began.
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class TransactionUpdated:
    """A session reported a change mid-way (a 2.0.1 TransactionEvent Updated: its charging state, and why)."""

    station_id: str
    transaction_id: int
    evse_id: int
    charging_state: str | None = None
    trigger_reason: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionEnded:
    """A session ended (first report of its end)."""

    station_id: str
    transaction_id: int
    evse_id: int
    reason: str | None = None
    #: Energy delivered (the register at the end less at the start, Wh) when both are known.
    energy_wh: float | None = None
    #: When the station says it ended.
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class MeterReading:
    """What a station measured on an EVSE at one moment; the fields it did not report are None."""

    station_id: str
    evse_id: int
    transaction_id: int | None
    timestamp: datetime
    power_kw: float | None = None
    energy_wh: float | None = None
    current_a: tuple[float, ...] = ()
    soc: float | None = None
    #: The phase of each of ``current_a`` (L1, L2, L3), when the station named them all.
    current_phases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectorStatusChanged:
    """A connector's status changed (as reported, e.g. SuspendedEV)."""

    station_id: str
    evse_id: int
    connector_id: int
    status: str


@dataclass(frozen=True, slots=True)
class ReservationChanged:
    """A reservation was created, answered, cancelled, used or expired."""

    station_id: str
    reservation_id: int
    status: str


@dataclass(frozen=True, slots=True)
class ChargingNeedsReceived:
    """An EV told its needs (ISO 15118 NotifyEVChargingNeeds)."""

    station_id: str
    evse_id: int
    transaction_id: int | None


@dataclass(frozen=True, slots=True)
class SiteChanged:
    """A site's limits, prices, algorithm or stations changed."""

    site_id: str


@dataclass(frozen=True, slots=True)
class SessionNeedsChanged:
    """An operator or driver set a session's departure or energy."""

    station_id: str
    transaction_id: int


@dataclass(frozen=True, slots=True)
class LimitSent:
    """A charging profile a scheduling cycle sent, and the station's answer."""

    station_id: str
    evse_id: int
    #: The session it steers (None: a station's fail-safe profile).
    transaction_id: int | None
    kind: str  # "tx" (a session's plan) or "fallback" (the station's fail-safe limit)
    #: The profile's first limit, in its own unit ("A" or "W"), and in kW.
    limit: float
    unit: str
    limit_kw: float
    #: Accepted, Rejected, ... or what happened when there was no answer (e.g. NotConnected).
    status: str


@dataclass(frozen=True, slots=True)
class SchedulingCycleFinished:
    """A site's smart-charging cycle ran and every station answered its profiles (or could not)."""

    site_id: str
    started_at: datetime
    #: What made it run, with how many events of each kind (e.g. ``(("start", 1), ("tick", 1))``).
    trigger: tuple[tuple[str, int], ...]
    algorithm: str
    status: str
    #: The site's connection limit now (kW; None: no limit) and the planned power of its first slot.
    limit_kw: float | None = None
    planned_kw: float | None = None
    limits: tuple[LimitSent, ...] = ()
    error: str | None = None


Event = (
    StationConnected
    | StationBooted
    | StationDisconnected
    | TransactionStarted
    | TransactionUpdated
    | TransactionEnded
    | MeterReading
    | ConnectorStatusChanged
    | ReservationChanged
    | ChargingNeedsReceived
    | SiteChanged
    | SessionNeedsChanged
    | SchedulingCycleFinished
)
Subscriber = Callable[[Event], None]


class EventBus:
    """In-process publish/subscribe; the running server's one bus."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    @property
    def subscribers(self) -> int:
        """How many subscribers are registered (a live-event client that left must not stay one)."""
        return len(self._subscribers)

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber(event)`` for every event published from now on."""
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop calling ``subscriber``."""
        self._subscribers.remove(subscriber)

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber, now, without waiting for any work they start."""
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber failed", event=type(event).__name__)
