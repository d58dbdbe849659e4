"""Charging sessions: their start and stop as reported by a station."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from optivgi_csms.domain.authorization import Authorization
from optivgi_csms.domain.meter import SampledValue
from optivgi_csms.domain.station import EvseRef


@dataclass(frozen=True, slots=True)
class TransactionStart:
    """A station reports that a session began."""

    station_id: str
    where: EvseRef
    id_tag: str | None
    meter_start_wh: float
    timestamp: datetime
    reservation_id: int | None = None


@dataclass(frozen=True, slots=True)
class StartedTransaction:
    """The CSMS's answer to a start: the transaction id it allocated and the tag's verdict."""

    transaction_id: int
    authorization: Authorization
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class TransactionStop:
    """A station reports that a session ended."""

    station_id: str
    transaction_id: int
    meter_stop_wh: float
    timestamp: datetime
    reason: str | None = None
    id_tag: str | None = None
    samples: tuple[SampledValue, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class TransactionEvent:
    """One OCPP 2.0.1 TransactionEvent: a step (Started, Updated, Ended) of a session the station names.

    Events may arrive twice, late, or out of order (``offline``); ``seq_no`` orders them.
    """

    station_id: str
    ocpp_transaction_id: str
    event_type: str
    seq_no: int
    timestamp: datetime
    trigger_reason: str
    offline: bool = False
    where: EvseRef | None = None
    id_tag: str | None = None
    id_token_type: str | None = None
    charging_state: str | None = None
    stopped_reason: str | None = None
    remote_start_id: int | None = None
    number_of_phases_used: int | None = None
    cable_max_current_a: int | None = None
    reservation_id: int | None = None
    samples: tuple[SampledValue, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class TransactionEventResult:
    """The CSMS's answer to a TransactionEvent: the session it belongs to and the token's verdict."""

    transaction_id: int
    authorization: Authorization | None
    duplicate: bool = False
