"""One EVSE's state: the EV plugged in, its session, its meter, its availability and reservation.

The status OCPP reports is *derived* from this state (:meth:`Evse.status`), never set by hand, so
it cannot drift from what the EVSE is doing: charging when the EV draws current, SuspendedEVSE when
the offer is below what the EV can use (a profile at 0 A), SuspendedEV when the EV takes nothing
although offered enough (it is full).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from simulators.ev import EVModel
from simulators.station.metering import MeterReading


class Status(StrEnum):
    """The 1.6 connector statuses; 2.0.1 maps them to its connector status and charging state."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


@dataclass
class Transaction:
    """A charging session as the station knows it.

    ``local_id`` is the station's own id (the 2.0.1 transactionId, and the key Tx profiles are
    stored under in both versions); ``ocpp_id`` is the id the CSMS knows it by: in 2.0.1 the same,
    in 1.6 the integer the StartTransaction answer allocates (None until it arrives, e.g. off line).
    """

    evse_id: int
    id_tag: str | None
    id_token_type: str
    started_at: datetime
    meter_start_wh: float
    remote_start_id: int | None = None
    reservation_id: int | None = None
    local_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    ocpp_id: str | None = None
    seq_no: int = 0  # 2.0.1: the next TransactionEvent's seqNo
    charging_state: str | None = None  # 2.0.1: the last charging state reported
    reported_limit_a: float | None = None  # 2.0.1: the limit last reported by ChargingRateChanged
    start_failed: bool = False  # 1.6: the StartTransaction was never answered (dropped)

    def next_seq_no(self) -> int:
        """The seqNo for the next event of this transaction."""
        seq_no = self.seq_no
        self.seq_no += 1
        return seq_no


@dataclass
class Reservation:
    """A reservation held by an EVSE (or by the station, EVSE 0: any EVSE)."""

    reservation_id: int
    id_tag: str
    expires_at: datetime
    evse_id: int
    parent_id_tag: str | None = None

    def admits(self, id_tag: str, parent_id_tag: str | None = None) -> bool:
        """Whether ``id_tag`` (or a tag of the same group) may use it."""
        return id_tag == self.id_tag or (self.parent_id_tag is not None and parent_id_tag == self.parent_id_tag)


@dataclass
class StartRequest:
    """Whom a session is to start for: a tag presented at the station, or a remote start. A remote start
    accepted before the EV is connected waits for the cable until ``deadline`` (ConnectionTimeOut)."""

    id_tag: str
    id_token_type: str
    remote_start_id: int | None = None
    deadline: float = 0.0  # monotonic
    profile: object | None = None  # a ChargingProfile to install as the session's Tx profile
    authorized: bool = True  # False while a remote start's Authorize (AuthorizeRemoteTxRequests) is out


@dataclass
class Evse:
    """One EVSE (with one connector) of a station."""

    evse_id: int
    max_current_a: float
    phases: int
    voltage_v: float
    energy_wh: float = 0.0
    operative: bool = True
    inoperative_when_idle: bool = False  # ChangeAvailability Inoperative answered Scheduled
    fault: str | None = None  # a 1.6 error code while Faulted
    ev: EVModel | None = None
    transaction: Transaction | None = None
    finishing: bool = False  # the session ended, the EV is still plugged in
    remote_start: StartRequest | None = None  # a remote start waiting for its cable
    reservation: Reservation | None = None
    # Charging limits: the target the profiles set now, the one the EV has got (after the delay),
    # and the changes on their way from one to the other (monotonic due time, limit).
    target_limit_a: float | None = None
    applied_limit_a: float | None = None
    limit_changes: list[tuple[float, float | None]] = field(default_factory=list)
    offered_a: float = 0.0
    current_a: float = 0.0
    next_meter_at: float | None = None  # monotonic; None: no periodic meter values due
    reported_status: Status | None = None  # what the CSMS was last told

    @property
    def phases_used(self) -> int:
        """Phases the EV charges on (the station's when no EV is plugged in)."""
        return self.ev.phases_used(self.phases) if self.ev is not None else self.phases

    @property
    def power_kw(self) -> float:
        """What the EV draws now."""
        return self.current_a * self.voltage_v * self.phases_used / 1000

    @property
    def offered_kw(self) -> float:
        """What the station offers now."""
        return self.offered_a * self.voltage_v * self.phases_used / 1000

    @property
    def charging_allowed(self) -> bool:
        """Whether the EVSE may deliver energy at all now."""
        return self.transaction is not None and self.ev is not None and self.fault is None and self.operative

    def status(self) -> Status:
        """The connector status its state stands for."""
        if self.fault is not None:
            return Status.FAULTED
        if self.transaction is not None:
            if self.current_a > 0:
                return Status.CHARGING
            if self.ev is None or self.ev.full:
                return Status.SUSPENDED_EV
            if self.offered_a < self.ev.spec.min_current_a:
                return Status.SUSPENDED_EVSE
            return Status.SUSPENDED_EV
        if not self.operative:
            return Status.UNAVAILABLE
        if self.ev is not None:
            return Status.FINISHING if self.finishing else Status.PREPARING
        if self.remote_start is not None:
            return Status.PREPARING
        if self.reservation is not None:
            return Status.RESERVED
        return Status.AVAILABLE

    def reading(self, now: datetime) -> MeterReading:
        """What its meter reads now."""
        return MeterReading(
            timestamp=now,
            energy_wh=self.energy_wh,
            current_a=self.current_a,
            offered_a=self.offered_a,
            phases=self.phases_used,
            phase_names=self.ev.spec.phase_map if self.ev is not None else (),
            voltage_v=self.voltage_v,
            soc=self.ev.soc if self.ev is not None else None,
        )

    def draw(self, offered_a: float) -> None:
        """Offer ``offered_a`` per phase; the EV takes what it can of it."""
        self.offered_a = offered_a if self.charging_allowed else 0.0
        if self.ev is None or not self.charging_allowed:
            self.current_a = 0.0
            return
        self.current_a = self.ev.draw_a(self.offered_a, self.voltage_v, supply_phases=self.phases)

    def advance(self, sim_seconds: float) -> float:
        """Let the EV charge for ``sim_seconds`` (scenario time) at the current draw; returns the Wh metered."""
        if self.ev is None or self.current_a <= 0 or sim_seconds <= 0:
            return 0.0
        added_wh = self.ev.advance(self.current_a, self.voltage_v, sim_seconds, supply_phases=self.phases) * 1000
        self.energy_wh += added_wh
        return added_wh

    def session_energy_kwh(self) -> float:
        """Energy of the running (or just finished) session."""
        if self.transaction is None:
            return 0.0
        return (self.energy_wh - self.transaction.meter_start_wh) / 1000
