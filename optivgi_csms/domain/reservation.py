"""Reservations of an EVSE for an id tag until an expiry time."""

from __future__ import annotations

from enum import StrEnum


class ReservationStatus(StrEnum):
    """The life of a reservation row. The first five are the station's answers to ReserveNow."""

    ACCEPTED = "Accepted"
    FAULTED = "Faulted"
    OCCUPIED = "Occupied"
    REJECTED = "Rejected"
    UNAVAILABLE = "Unavailable"
    # Stored for a time window that begins later (or a station not connected yet): ReserveNow is
    # sent when the window begins and the station is there.
    SCHEDULED = "Scheduled"
    REQUESTED = "Requested"
    CANCELLED = "Cancelled"
    USED = "Used"
    EXPIRED = "Expired"
    FAILED = "Failed"


#: Reservations that still hold (or will hold) a place for an EV: the scheduler plans them as future
#: EVs (from ``starts_at``, or now when it has none, until ``expires_at``), and they may still expire.
ACTIVE_STATUSES = frozenset({ReservationStatus.SCHEDULED, ReservationStatus.REQUESTED, ReservationStatus.ACCEPTED})
