"""Reservations (ReserveNow, CancelReservation): an EVSE, or any EVSE of the station (EVSE 0), held
for one id tag (or its group) until the reservation is used, cancelled or expires."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from simulators.station.evse import Evse, Reservation
from simulators.station.variables import StationVariables


class Reservations:
    """The reservations one station holds."""

    def __init__(
        self,
        evses: Sequence[Evse],
        variables: StationVariables,
        *,
        changed: Callable[[Evse], None],
        expired: Callable[[int], None],
    ) -> None:
        self.evses = evses
        self.variables = variables
        self.station: Reservation | None = None  # a reservation on EVSE 0: any EVSE
        self._changed = changed  # an EVSE's reservation changed (its status may have)
        self._expired = expired  # a reservation ran out (2.0.1 tells the CSMS)

    def reserve(
        self, reservation_id: int, evse_id: int, id_tag: str, expires_at: datetime, parent_id_tag: str | None
    ) -> str:
        """ReserveNow: Accepted, Faulted, Occupied, Rejected or Unavailable. The same id replaces."""
        self.cancel(reservation_id)
        reservation = Reservation(reservation_id, id_tag, expires_at, evse_id, parent_id_tag)
        if evse_id == 0:
            if not self.variables["reserve_connector_zero"]:
                return "Rejected"
            if not [e for e in self.evses if e.operative and e.fault is None and _idle(e)]:
                return "Occupied"
            self.station = reservation
            return "Accepted"
        evse = self.evses[evse_id - 1] if 1 <= evse_id <= len(self.evses) else None
        if evse is None:
            return "Rejected"
        if evse.fault is not None:
            return "Faulted"
        if not evse.operative:
            return "Unavailable"
        if not _idle(evse):
            return "Occupied"
        evse.reservation = reservation
        self._changed(evse)
        return "Accepted"

    def cancel(self, reservation_id: int) -> bool:
        """CancelReservation: whether the station held it."""
        if self.station is not None and self.station.reservation_id == reservation_id:
            self.station = None
            return True
        for evse in self.evses:
            if evse.reservation is not None and evse.reservation.reservation_id == reservation_id:
                evse.reservation = None
                self._changed(evse)
                return True
        return False

    def expire(self, now: datetime) -> None:
        """Drop the reservations whose time is up."""
        if self.station is not None and self.station.expires_at <= now:
            self._expired(self.station.reservation_id)
            self.station = None
        for evse in self.evses:
            if evse.reservation is not None and evse.reservation.expires_at <= now:
                self._expired(evse.reservation.reservation_id)
                evse.reservation = None
                self._changed(evse)

    def blocks(self, evse: Evse, id_tag: str) -> bool:
        """Whether a reservation keeps ``id_tag`` from starting on ``evse``."""
        if evse.reservation is not None and not evse.reservation.admits(id_tag):
            return True
        if self.station is not None and not self.station.admits(id_tag):
            # A station-wide reservation keeps one EVSE free for its holder.
            free = [other for other in self.evses if other.transaction is None and other.reservation is None]
            return len(free) <= 1
        return False

    def use(self, evse: Evse, id_tag: str) -> int | None:
        """Consume the reservation ``id_tag`` holds here (on the EVSE or the station); its id, if any."""
        if evse.reservation is not None and evse.reservation.admits(id_tag):
            used, evse.reservation = evse.reservation, None
            return used.reservation_id
        if self.station is not None and self.station.admits(id_tag):
            used, self.station = self.station, None
            return used.reservation_id
        return None


def _idle(evse: Evse) -> bool:
    return evse.transaction is None and evse.ev is None and evse.remote_start is None and evse.reservation is None
