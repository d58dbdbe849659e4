"""A plug-in EV: what it can take, what it draws from an offer, and how its battery fills.

Pure physics, no I/O. Currents are per phase (what a station's pilot signal offers and what its
meter measures per phase); power is the total over the phases the EV actually charges on. The
station decides the offer (its hardware limit and the charging profile in force); the EV draws
the minimum of that offer and what it can take, so meter values built from :meth:`EVModel.draw_a`
tell the truth even when the EV takes less than it is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

# Float slack for "reached the target" and "offer at the minimum": 6.0 A computed as 5.9999999
# must not pause the EV, and a SoC one ulp below the target is full.
_EPSILON = 1e-9


@dataclass(frozen=True)
class EVSpec:
    """An EV's battery and on-board charger."""

    ev_id: str
    battery_kwh: float
    soc_initial: float  # 0..1
    soc_target: float  # 0..1: the EV stops drawing when reached
    max_kw: float  # on-board charger limit (AC), over all its phases
    phases: int = 3  # 1 or 3 (a 1-phase EV on a 3-phase station loads one phase)
    min_current_a: float = 6.0  # an offer below this per-phase current makes it pause (IEC 61851)
    draw_factor: float = 1.0  # "draws less than offered": takes this fraction of what it could take
    taper_soc: float = 0.8  # above this SoC its acceptance falls linearly ...
    taper_floor: float = 0.1  # ... to this fraction of max_kw at 100 %
    phase_map: tuple[str, ...] = ()  # the site phases it loads (its meter's phases), when not L1.. in order
    # It speaks ISO 15118 with the station: a 2.0.1 station passes its needs on (NotifyEVChargingNeeds).
    iso15118: bool = False
    departure: datetime | None = None  # when its driver leaves (scenario time): what it tells through ISO 15118

    def __post_init__(self) -> None:
        # A bad EV description is a scenario error: fail at construction, naming the field.
        if not self.battery_kwh > 0:
            raise ValueError(f"{self.ev_id}: battery_kwh must be positive, not {self.battery_kwh}")
        if not 0 <= self.soc_initial <= 1:
            raise ValueError(f"{self.ev_id}: soc_initial must be within 0..1, not {self.soc_initial}")
        if not 0 <= self.soc_target <= 1:
            raise ValueError(f"{self.ev_id}: soc_target must be within 0..1, not {self.soc_target}")
        if not self.max_kw > 0:
            raise ValueError(f"{self.ev_id}: max_kw must be positive, not {self.max_kw}")
        if self.phases not in (1, 2, 3):
            raise ValueError(f"{self.ev_id}: phases must be 1, 2 or 3, not {self.phases}")
        if self.min_current_a < 0:
            raise ValueError(f"{self.ev_id}: min_current_a must not be negative, not {self.min_current_a}")
        if not 0 < self.draw_factor <= 1:
            raise ValueError(f"{self.ev_id}: draw_factor must be within (0, 1], not {self.draw_factor}")
        if not 0 <= self.taper_soc <= 1:
            raise ValueError(f"{self.ev_id}: taper_soc must be within 0..1, not {self.taper_soc}")
        if not 0 < self.taper_floor <= 1:
            raise ValueError(f"{self.ev_id}: taper_floor must be within (0, 1], not {self.taper_floor}")

    @property
    def requested_kwh(self) -> float:
        """The energy it asks for: from its initial to its target state of charge (0 if already there)."""
        return max(0.0, self.soc_target - self.soc_initial) * self.battery_kwh


@dataclass(frozen=True)
class ChargingNeeds:
    """What an ISO 15118 EV tells the station when its session starts (ISO 15118-2 ChargeParameterDiscovery),
    in whole units as OCPP 2.0.1 carries them. Energies are scenario energies, like every energy of the model;
    ``departure`` is scenario time (the station states it in wall time)."""

    phases: int  # the phases it charges on at this station: its requested energy transfer mode
    energy_wh: int  # still wanted to reach its target
    min_current_a: int  # per phase
    max_current_a: int  # per phase, its on-board charger's limit
    max_voltage_v: int
    departure: datetime | None


class EVModel:
    """One EV's state while plugged in: its state of charge and the energy it has received.

    ``supply_phases`` (optional everywhere) is the number of phases the station supplies; the EV
    charges on ``min(spec.phases, supply_phases)`` of them. A 3-phase EV on a 1-phase station
    therefore gets a third of its power: each of its charger modules takes its per-phase share.
    """

    def __init__(self, spec: EVSpec) -> None:
        self.spec = spec
        self.soc = spec.soc_initial
        self.delivered_kwh = 0.0

    @property
    def full(self) -> bool:
        """Whether it has reached its target state of charge (it then draws nothing)."""
        return self.soc >= self.spec.soc_target - _EPSILON

    @property
    def remaining_kwh(self) -> float:
        """Energy still to go to the target."""
        return max(0.0, self.spec.soc_target - self.soc) * self.spec.battery_kwh

    def phases_used(self, supply_phases: int | None = None) -> int:
        """The phases it charges on at a station supplying ``supply_phases`` (its own count if None)."""
        if supply_phases is None:
            return self.spec.phases
        if supply_phases not in (1, 2, 3):
            raise ValueError(f"supply phases must be 1, 2 or 3, not {supply_phases}")
        return min(self.spec.phases, supply_phases)

    def taper_fraction(self) -> float:
        """The fraction of ``max_kw`` its battery accepts at the current SoC (1 below the taper)."""
        spec = self.spec
        if self.soc <= spec.taper_soc or spec.taper_soc >= 1:
            return 1.0
        # Linear from 1 at taper_soc down to taper_floor at 100 %.
        progress = min(1.0, (self.soc - spec.taper_soc) / (1 - spec.taper_soc))
        return 1.0 - (1.0 - spec.taper_floor) * progress

    def acceptance_a(self, voltage_v: float, *, supply_phases: int | None = None) -> float:
        """Per-phase current it can take now: its charger limit, tapered near full; 0 when full.

        The limit per phase is ``max_kw`` shared over the EV's *own* phases: an 11 kW 3-phase
        charger has three 3.7 kW modules, so on a 1-phase supply it still takes only 16 A.
        ``supply_phases`` is accepted for symmetry; the per-phase figure does not depend on it.
        """
        _check_voltage(voltage_v)
        self.phases_used(supply_phases)  # validates it
        if self.full:
            return 0.0
        return self.spec.max_kw * self.taper_fraction() * 1000.0 / (voltage_v * self.spec.phases)

    def draw_a(self, offered_a: float, voltage_v: float, *, supply_phases: int | None = None) -> float:
        """Per-phase current it draws given a per-phase offer.

        Nothing when full or when the offer is below its minimum current (IEC 61851: it pauses
        rather than charge below the minimum); otherwise the smaller of the offer and its
        acceptance, times its draw factor (an EV never draws more than offered).
        """
        if offered_a < 0:
            raise ValueError(f"offered current must not be negative, not {offered_a}")
        acceptance = self.acceptance_a(voltage_v, supply_phases=supply_phases)
        if acceptance <= 0 or offered_a < self.spec.min_current_a - _EPSILON or offered_a <= 0:
            return 0.0
        return min(offered_a, acceptance) * self.spec.draw_factor

    def charging_needs(self, voltage_v: float, *, supply_phases: int | None = None) -> ChargingNeeds:
        """What it asks for now: the energy left to its target, its current range and its departure.

        The maximum is its charger's limit per phase (untapered: what it can take, not what it takes at
        this state of charge), rounded to the nearest ampere; the minimum is rounded up, since it pauses
        below it. ``voltage_v`` is the supply's phase voltage, reported as its maximum voltage.
        """
        _check_voltage(voltage_v)
        spec = self.spec
        max_current = max(1, round(spec.max_kw * 1000.0 / (voltage_v * spec.phases)))
        min_current = min(math.ceil(spec.min_current_a - _EPSILON), max_current)
        return ChargingNeeds(
            phases=self.phases_used(supply_phases),
            energy_wh=round(self.remaining_kwh * 1000.0),
            min_current_a=max(0, min_current),
            max_current_a=max_current,
            max_voltage_v=round(voltage_v),
            departure=spec.departure,
        )

    def power_kw(self, current_a: float, voltage_v: float, *, supply_phases: int | None = None) -> float:
        """Total power of a per-phase current over the phases it charges on: I × V × phases / 1000."""
        _check_voltage(voltage_v)
        return current_a * voltage_v * self.phases_used(supply_phases) / 1000.0

    def advance(self, current_a: float, voltage_v: float, seconds: float, *, supply_phases: int | None = None) -> float:
        """Charge at ``current_a`` per phase for ``seconds``; returns the kWh added.

        The caller passes what the EV draws (see :meth:`draw_a`); the energy is capped at what
        is left to the target, so the SoC never passes it. Every kWh metered goes into the
        battery (no charging losses): the meter and the SoC stay consistent.
        """
        if current_a < 0:
            raise ValueError(f"current must not be negative, not {current_a}")
        if seconds < 0:
            raise ValueError(f"time step must not be negative, not {seconds}")
        energy = self.power_kw(current_a, voltage_v, supply_phases=supply_phases) * seconds / 3600.0
        added = min(energy, self.remaining_kwh)
        if added <= 0:
            return 0.0
        if added >= self.remaining_kwh:
            # Land exactly on the target so ``full`` holds without float drift.
            self.soc = max(self.soc, self.spec.soc_target)
        else:
            self.soc += added / self.spec.battery_kwh
        self.delivered_kwh += added
        return added


def _check_voltage(voltage_v: float) -> None:
    if not voltage_v > 0:
        raise ValueError(f"voltage must be positive, not {voltage_v}")
