"""The version seam: what the station's behaviour needs from an OCPP version.

The behaviour (:mod:`simulators.station.core`) decides *what* happens (a session starts, a meter
value is due, a command is accepted); a :class:`Protocol` says how that is written in 1.6 or
2.0.1, and builds the per-connection client whose handlers turn CSMS commands back into calls to
the behaviour. Neither side knows the other's version details.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from simulators.station.evse import Evse, Status, Transaction
from simulators.station.link import ClientLink, MessageCounter, ViolationSink
from simulators.station.metering import MeterReading
from simulators.station.outbox import Envelope

if TYPE_CHECKING:
    from simulators.station.core import StationCore


class StartTrigger(StrEnum):
    """What completed the conditions for a session to start (the 2.0.1 triggerReason of Started)."""

    AUTHORIZED = "Authorized"
    CABLE_PLUGGED_IN = "CablePluggedIn"
    REMOTE_START = "RemoteStart"


class StopReason(StrEnum):
    """Why a session ended, in 1.6's words (2.0.1 maps them to stoppedReason and triggerReason)."""

    EV_DISCONNECTED = "EVDisconnected"
    REMOTE = "Remote"
    LOCAL = "Local"
    DEAUTHORIZED = "DeAuthorized"
    SOFT_RESET = "SoftReset"
    HARD_RESET = "HardReset"
    UNLOCK_COMMAND = "UnlockCommand"
    OTHER = "Other"


class MeterContext(StrEnum):
    """Why a meter value was taken (the same words in both versions)."""

    PERIODIC = "Sample.Periodic"
    BEGIN = "Transaction.Begin"
    END = "Transaction.End"
    TRIGGER = "Trigger"


@dataclass(frozen=True)
class BootAnswer:
    """The CSMS's answer to BootNotification."""

    status: str  # Accepted, Pending or Rejected
    interval_s: int
    # 2.0.1: the answer's statusInfo, 1.6 has none
    reason: str | None = None


class Protocol(ABC):
    """How one OCPP version writes the station's messages and answers the CSMS's commands."""

    version: str

    def __init__(self, core: StationCore) -> None:
        self.core = core

    @abstractmethod
    def client(
        self, connection: Any, *, call_timeout_s: float, count: MessageCounter, violation: ViolationSink
    ) -> ClientLink:
        """The station's end of a new connection, answering the CSMS's commands."""

    # --- messages that wait for their answer -------------------------------------------------

    @abstractmethod
    def boot_request(self, reason: str) -> Any:
        """BootNotification (``reason``: the 2.0.1 boot reason, e.g. PowerUp, RemoteReset)."""

    @abstractmethod
    def boot_answer(self, result: Any) -> BootAnswer:
        """The BootNotification answer in neutral terms."""

    @abstractmethod
    def heartbeat_request(self) -> Any:
        """Heartbeat."""

    @abstractmethod
    def authorize_request(self, id_tag: str, id_token_type: str) -> Any:
        """Authorize."""

    @abstractmethod
    def authorization_status(self, result: Any) -> str:
        """The id tag's status in an Authorize answer."""

    # --- messages that go through the queue --------------------------------------------------

    @abstractmethod
    def status_changed(self, evse: Evse, old: Status | None, new: Status) -> list[Envelope]:
        """StatusNotification(s) for a status change (``old`` None: report it whatever it was)."""

    def station_status(self, status: Status) -> list[Envelope]:
        """The station's own status (1.6 connector 0); nothing by default."""
        return []

    @abstractmethod
    def transaction_started(
        self, evse: Evse, transaction: Transaction, reading: MeterReading, trigger: StartTrigger
    ) -> Envelope:
        """The start of a session (1.6 StartTransaction, 2.0.1 TransactionEvent Started)."""

    @abstractmethod
    def meter_values(
        self, evse: Evse, transaction: Transaction | None, reading: MeterReading, context: MeterContext
    ) -> Envelope | None:
        """Meter values of an EVSE (of its session when ``transaction`` is given)."""

    def charging_state_changed(self, evse: Evse, transaction: Transaction, status: Status) -> Envelope | None:
        """2.0.1 reports charging-state changes as transaction events; 1.6's StatusNotification does."""
        return None

    def charging_rate_changed(self, evse: Evse, transaction: Transaction, reading: MeterReading) -> Envelope | None:
        """2.0.1 reports a changed charging limit as a transaction event; 1.6 has no such message."""
        return None

    @abstractmethod
    def transaction_ended(
        self, evse: Evse, transaction: Transaction, reading: MeterReading, reason: StopReason, id_tag: str | None
    ) -> Envelope:
        """The end of a session (1.6 StopTransaction, 2.0.1 TransactionEvent Ended)."""

    def ev_charging_needs(self, evse: Evse, transaction: Transaction) -> Envelope | None:
        """What an ISO 15118 EV needs, once its session has started (2.0.1 NotifyEVChargingNeeds); 1.6 cannot
        carry it."""
        return None

    def reservation_ended(self, reservation_id: int, expired: bool) -> Envelope | None:
        """2.0.1 tells the CSMS when a reservation expires or is removed; 1.6 does not."""
        return None
