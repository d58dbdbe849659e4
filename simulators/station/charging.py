"""From installed profiles to what each EVSE offers its EV, the way a station's firmware does it.

Each tick the limit the profiles impose now (the *target*) is computed per EVSE; a change of target
reaches the EV only ``profile_apply_delay_s`` later (real stations take a moment to re-signal the
pilot), so a CSMS measuring its control loop sees a realistic lag. The station maximum (StationMax,
EVSE 0) limits the *sum* of the EVSEs, as OCPP defines it: when several EVSEs charge, it is shared
by water-filling (an EV that takes less leaves its share to the others). An offer below 6 A is 0
(IEC 61851: the pilot cannot signal less), which the EV sees as a pause.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from simulators.smart_charging import ProfileStore
from simulators.station.evse import Evse

# IEC 61851-1: the smallest current a pilot signal can offer; anything lower means "no current".
MIN_PILOT_A = 6.0


class LimitController:
    """Turns the profile store's limits into each EVSE's offer, with the configured delay."""

    def __init__(self, store: ProfileStore, evses: Sequence[Evse], apply_delay_s: float) -> None:
        self.store = store
        self.evses = evses
        self.apply_delay_s = apply_delay_s

    def update(self, now: datetime, monotonic_now: float) -> None:
        """Recompute every EVSE's target and apply the changes whose delay has passed."""
        targets = {evse.evse_id: self._own_limit(evse, now) for evse in self.evses}
        shares = self._station_shares(now, targets)
        for evse in self.evses:
            target = _min(targets[evse.evse_id], shares.get(evse.evse_id))
            if target is not None:
                target = round(target, 3)  # float noise must not count as a change
            if target != evse.target_limit_a:
                evse.target_limit_a = target
                evse.limit_changes.append((monotonic_now + self.apply_delay_s, target))
            while evse.limit_changes and evse.limit_changes[0][0] <= monotonic_now:
                evse.applied_limit_a = evse.limit_changes.pop(0)[1]

    def offer_a(self, evse: Evse) -> float:
        """The per-phase current the EVSE offers its EV now: hardware, applied limit, pilot minimum."""
        if not evse.charging_allowed:
            return 0.0
        offer = evse.max_current_a if evse.applied_limit_a is None else min(evse.max_current_a, evse.applied_limit_a)
        return offer if offer >= MIN_PILOT_A else 0.0

    def _own_limit(self, evse: Evse, now: datetime) -> float | None:
        transaction = evse.transaction
        return self.store.limit_a(
            evse.evse_id,
            now,
            transaction_start=transaction.started_at if transaction else None,
            phases=evse.phases_used,
            voltage_v=evse.voltage_v,
        )

    def _station_shares(self, now: datetime, targets: dict[int, float | None]) -> dict[int, float]:
        """Each charging EVSE's share of the station maximum, when more than one charges."""
        active = [evse for evse in self.evses if evse.charging_allowed and evse.ev is not None]
        if len(active) < 2:
            return {}
        station = self.store.station_limit_a(now, phases=self.evses[0].phases, voltage_v=self.evses[0].voltage_v)
        if station is None:
            return {}
        demands = {}
        for evse in active:
            assert evse.ev is not None
            acceptance = evse.ev.acceptance_a(evse.voltage_v, supply_phases=evse.phases)
            own = targets[evse.evse_id]
            demand = min(evse.max_current_a, acceptance, own if own is not None else evse.max_current_a)
            demands[evse.evse_id] = max(0.0, demand)
        return water_fill(station, demands)


def water_fill(total: float, demands: dict[int, float]) -> dict[int, float]:
    """Share ``total`` so that no one gets more than it asks and the rest split what is left equally."""
    shares: dict[int, float] = {}
    remaining = dict(demands)
    left = total
    while remaining:
        equal = left / len(remaining)
        satisfied = {key: demand for key, demand in remaining.items() if demand <= equal}
        if not satisfied:
            shares.update({key: equal for key in remaining})
            return shares
        for key, demand in satisfied.items():
            shares[key] = demand
            left -= demand
            del remaining[key]
    # Everyone is satisfied: the leftover is headroom, given equally so a rising demand is not cut.
    bonus = left / len(shares) if shares else 0.0
    return {key: share + bonus for key, share in shares.items()}


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
