"""What each station holds from us: the Tx profile of every session and the fail-safe profile, as sent.

Kept in memory only: after a restart (ours or a station's connection) nothing is assumed installed and
the next cycle sends everything once. A profile is "pending" from the moment it is queued until the
station answers, so a cycle that runs meanwhile does not queue the same profile again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from optivgi_csms.domain.charging_profile import ChargingProfile
from optivgi_csms.smart_charging.profiles import boundaries, limit_kw


@dataclass(frozen=True, slots=True)
class HeldProfile:
    """A Tx profile sent for a session."""

    profile: ChargingProfile
    station_id: str
    evse_id: int
    transaction_id: int
    #: "pending" until the station accepts it, then "accepted".
    state: str
    since: datetime
    voltage_v: float
    #: The lowest power the EV charges at (kW): its floor when it stops drawing.
    min_kw: float
    #: Readings earlier than this reflect an older limit (the station and EV need time to follow).
    settled_at: datetime
    #: How long the station and EV take to follow a change of limit (also within the profile, at a slot's
    #: boundary): a reading reflects the limits of this long before it as much as the limit at its time.
    settle: timedelta = timedelta(0)
    #: The profile the station held before this one was accepted (kept to judge readings that straddle
    #: the change), if it held one of ours.
    previous: ChargingProfile | None = None

    def offered_kw(self, moment: datetime) -> float | None:
        """What the profile allows at ``moment`` (kW), when it is accepted and applies then."""
        if self.state != "accepted":
            return None
        return limit_kw(self.profile, moment, self.voltage_v)

    def offered_kw_settled(self, moment: datetime) -> float | None:
        """The lowest limit in force in the ``settle`` before ``moment`` (kW): what the EV was surely offered
        when read at ``moment``, since a higher limit that began within that time (a new slot's, or a new
        profile's) may not have reached it yet. Before this profile was accepted the station held the
        previous one. None while this one is pending, or when no profile of ours covers all of that time."""
        if self.state != "accepted":
            return None
        start = moment - self.settle
        moments = [*boundaries(self.profile, max(start, self.since), moment), moment]
        if start < self.since:
            if self.previous is None:
                return None
            moments += boundaries(self.previous, start, self.since)
        lowest: float | None = None
        for at in moments:
            profile = self.profile if at >= self.since else self.previous
            assert profile is not None
            kw = limit_kw(profile, at, self.voltage_v)
            if kw is None:
                return None
            lowest = kw if lowest is None else min(lowest, kw)
        return lowest


class ProfileBook:
    """The Tx profiles per session and the fail-safe profile per station, as last sent."""

    def __init__(self) -> None:
        self._tx: dict[int, HeldProfile] = {}
        self._fallback: dict[str, ChargingProfile] = {}
        self._forced_tx: set[int] = set()
        self._forced_places: set[tuple[str, int]] = set()

    # --- Tx profiles ---------------------------------------------------------------------------

    def get(self, transaction_id: int) -> HeldProfile | None:
        """The session's profile, pending or accepted."""
        return self._tx.get(transaction_id)

    def __iter__(self) -> Iterator[HeldProfile]:
        return iter(list(self._tx.values()))

    def at(self, station_id: str, evse_id: int) -> HeldProfile | None:
        """The profile of the session on an EVSE, if one was sent."""
        for held in self._tx.values():
            if held.station_id == station_id and held.evse_id == evse_id:
                return held
        return None

    def pending(self, held: HeldProfile) -> None:
        """A profile was queued for sending (the station keeps the one it holds until it accepts it)."""
        before = self._tx.get(held.transaction_id)
        if before is not None:
            held = replace(held, previous=before.profile if before.state == "accepted" else before.previous)
        self._tx[held.transaction_id] = held

    def accepted(
        self,
        transaction_id: int,
        queued: ChargingProfile,
        installed: ChargingProfile,
        at: datetime,
        settled_at: datetime,
    ) -> None:
        """The station installed ``installed`` (``queued``, or its retry in another shape). Ignored when a
        newer profile was queued meanwhile: that one is what the station will hold."""
        held = self._tx.get(transaction_id)
        if held is not None and held.profile is queued:
            self._tx[transaction_id] = replace(
                held, profile=installed, state="accepted", since=at, settled_at=settled_at
            )

    def failed(self, transaction_id: int, profile: ChargingProfile) -> None:
        """``profile`` did not reach the station: forget it (unless a newer one replaced it) so the next
        cycle sends again."""
        held = self._tx.get(transaction_id)
        if held is not None and held.profile is profile:
            del self._tx[transaction_id]

    def forget(self, transaction_id: int) -> None:
        """The session ended (the station drops its Tx profile) or is no longer controlled."""
        self._tx.pop(transaction_id, None)
        self._forced_tx.discard(transaction_id)

    # --- profiles that must go out even if unchanged ---------------------------------------------

    def force(self, station_id: str, evse_id: int, transaction_id: int | None) -> None:
        """Send the session's next profile even if unchanged (an EV that told its needs awaits one)."""
        if transaction_id is not None:
            self._forced_tx.add(transaction_id)
        else:
            self._forced_places.add((station_id, evse_id))

    def take_forced(self, transaction_id: int, station_id: str, evse_id: int) -> bool:
        """Whether the session's profile must be sent now; clears the request."""
        forced = transaction_id in self._forced_tx or (station_id, evse_id) in self._forced_places
        self._forced_tx.discard(transaction_id)
        self._forced_places.discard((station_id, evse_id))
        return forced

    # --- fail-safe profiles ----------------------------------------------------------------------

    def fallback(self, station_id: str) -> ChargingProfile | None:
        """The fail-safe profile last sent to the station on this connection."""
        return self._fallback.get(station_id)

    def set_fallback(self, station_id: str, profile: ChargingProfile | None) -> None:
        """Record the fail-safe profile sent (None: to send again)."""
        if profile is None:
            self._fallback.pop(station_id, None)
        else:
            self._fallback[station_id] = profile

    # --- stations --------------------------------------------------------------------------------

    def forget_station(self, station_id: str) -> list[int]:
        """The station's connection ended: nothing it held is known any more. Returns its sessions."""
        self._fallback.pop(station_id, None)
        gone = [tx for tx, held in self._tx.items() if held.station_id == station_id]
        for transaction_id in gone:
            del self._tx[transaction_id]
        self._forced_places = {place for place in self._forced_places if place[0] != station_id}
        return gone
