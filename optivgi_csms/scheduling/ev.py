"""The EV being scheduled, and the charging profile its schedule turns into.

The names follow Opti-VGI (``ev_id``, ``active``, ``min_power``, ``max_power``, ``arrival_time``,
``departure_time``, ``energy``, ``unit``, ``voltage``, ``power``) so that its users recognise them. Unlike
Opti-VGI, the EV also knows how many phases it draws on and which site phases those are, the slot length is
a parameter rather than a constant, and every time must carry a zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

#: Phase-to-neutral voltage assumed when nothing else is known (IEC low-voltage networks).
DEFAULT_VOLTAGE_V = 230.0
#: IEC 61851: the lowest pilot current an EV follows; anything lower means pause.
IEC_MIN_CURRENT_A = 6.0
#: Phase names used when an EV does not say which phases it loads.
ALL_PHASES: tuple[str, ...] = ("L1", "L2", "L3")


class ChargingRateUnit(Enum):
    """How an EV's powers are expressed: ``W`` means kW (energy in kWh); ``A`` means amperes per phase
    (energy in ampere-hours per phase), as in OCPP where an ``A`` limit is per phase."""

    W = "W"
    A = "A"


def kw_from_amps(amps: float, voltage_v: float, phases: int) -> float:
    """Total power in kW drawn at ``amps`` per phase on ``phases`` phases: P = V × I × phases."""
    return amps * voltage_v * phases / 1000.0


def amps_from_kw(kw: float, voltage_v: float, phases: int) -> float:
    """Current per phase in A for a total power of ``kw`` spread over ``phases`` phases."""
    return kw * 1000.0 / (voltage_v * phases)


def require_aware(moment: datetime, what: str) -> None:
    """Raise ``ValueError`` unless ``moment`` carries a time zone: naive times are ambiguous by hours."""
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")


@dataclass(frozen=True)
class ChargingPeriod:
    """One period of a charging profile: from ``start_s`` seconds after the profile start, at most ``limit``
    in the profile's unit (kW-based profiles give W, as OCPP does), drawn on ``number_phases`` phases."""

    start_s: int
    limit: float
    number_phases: int


@dataclass(frozen=True)
class ChargingProfile:
    """A version-neutral charging profile: what the live server turns into an OCPP 1.6 or 2.0.1
    ``SetChargingProfile`` for one EV. ``unit`` is ``W`` (limits in watts, total) or ``A`` (per phase);
    the profile ends ``duration_s`` seconds after ``start``."""

    ev_id: str | int
    station_id: str | int
    connector_id: int
    start: datetime
    unit: ChargingRateUnit
    periods: tuple[ChargingPeriod, ...]
    duration_s: int

    def limit_at(self, moment: datetime) -> float:
        """The limit in force at ``moment`` (0 outside the profile)."""
        offset = (moment - self.start).total_seconds()
        if offset < 0 or offset >= self.duration_s:
            return 0.0
        limit = 0.0
        for period in self.periods:
            if period.start_s > offset:
                break
            limit = period.limit
        return limit


@dataclass(eq=False)
class EV:
    """An EV plugged in now (``active``) or expected (a reservation), with what it needs and can take.

    ``min_power``/``max_power`` are in ``unit``: kW for ``W``, A per phase for ``A``; ``energy`` is what is
    still wanted, in kWh for ``W`` or Ah per phase for ``A``. ``min_power`` is a floor that applies only
    while charging (an EV charges at 0 or at least this; see also the site's minimum current). ``phases``
    is 1 or 3 and ``phase_map`` names the site phases it loads (default: all three, or ``L1``).

    After :meth:`Algorithm.calculate` the schedule is in ``power``: one value per slot, the average over
    the slot, in ``unit``. EVs compare and hash by ``ev_id`` so they can key dictionaries as in Opti-VGI.
    """

    ev_id: str | int
    active: bool
    station_id: str | int
    connector_id: int
    min_power: float
    max_power: float
    arrival_time: datetime
    departure_time: datetime
    energy: float
    unit: ChargingRateUnit = ChargingRateUnit.W
    voltage: float = DEFAULT_VOLTAGE_V
    phases: int = 3
    phase_map: tuple[str, ...] = ()
    power: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        require_aware(self.arrival_time, f"EV {self.ev_id} arrival_time")
        require_aware(self.departure_time, f"EV {self.ev_id} departure_time")
        if not self.phase_map:
            self.phase_map = ALL_PHASES[: self.phases] if self.phases in (1, 3) else ALL_PHASES
        else:
            self.phase_map = tuple(self.phase_map)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EV):
            return NotImplemented
        return self.ev_id == other.ev_id

    def __hash__(self) -> int:
        return hash(self.ev_id)

    # -- explicit units ----------------------------------------------------------------------------------
    def to_kw(self, value: float) -> float:
        """``value`` (a power in this EV's unit) in kW."""
        if self.unit is ChargingRateUnit.W:
            return value
        return kw_from_amps(value, self.voltage, self.phases)

    def from_kw(self, kw: float) -> float:
        """``kw`` in this EV's unit."""
        if self.unit is ChargingRateUnit.W:
            return kw
        return amps_from_kw(kw, self.voltage, self.phases)

    @property
    def max_kw(self) -> float:
        """Maximum power in kW."""
        return self.to_kw(self.max_power)

    @property
    def min_kw(self) -> float:
        """Minimum power while charging in kW."""
        return self.to_kw(self.min_power)

    @property
    def energy_kwh(self) -> float:
        """Energy still wanted in kWh (Ah per phase × V × phases for ``A``)."""
        return self.to_kw(self.energy)

    @property
    def power_kw(self) -> list[float]:
        """The schedule in kW, one value per slot."""
        return [self.to_kw(p) for p in self.power]

    # -- Opti-VGI helpers ----------------------------------------------------------------------------------
    def arrival_index(self, now: datetime, resolution: timedelta, n_slots: int) -> int:
        """The slot the EV arrives in, clamped to ``[0, n_slots - 1]``."""
        index = math.floor((self.arrival_time - now) / resolution)
        return max(0, min(index, n_slots - 1))

    def departure_index(self, now: datetime, resolution: timedelta, n_slots: int) -> int:
        """The first slot that starts at or after departure, clamped to ``[0, n_slots]``."""
        index = math.ceil((self.departure_time - now) / resolution)
        return max(0, min(index, n_slots))

    def energy_charged(self, resolution: timedelta) -> float:
        """Energy the schedule delivers, in the unit of ``energy`` (kWh or Ah)."""
        return sum(self.power) * resolution.total_seconds() / 3600.0

    def current_charging_profile(
        self, now: datetime, resolution: timedelta, unit: ChargingRateUnit | None = None
    ) -> ChargingProfile:
        """A profile holding only the first slot (Opti-VGI's "current power")."""
        return self.charging_profile(now, resolution, unit, max_periods=None, slots=1)

    def charging_profile(
        self,
        now: datetime,
        resolution: timedelta,
        unit: ChargingRateUnit | None = None,
        *,
        max_periods: int | None = None,
        slots: int | None = None,
    ) -> ChargingProfile:
        """The schedule in ``power`` as a charging profile starting at ``now`` (the first slot's start).

        Each slot's average power ``p`` becomes the rate ``p / f`` while the EV is present (``f`` is the
        part of the slot inside ``[arrival, departure)``) and 0 outside, so the energy is exactly the plan
        and nothing is drawn after the declared departure. Limits are rounded *down* to one decimal, as
        stations accept at most one, so rounding never lifts a limit. ``max_periods`` truncates the profile
        for stations with a small ``ChargingScheduleMaxPeriods`` (the profile then ends earlier).
        """
        require_aware(now, "now")
        unit = unit or self.unit
        powers_kw = self.power_kw[: slots if slots is not None else len(self.power)]
        res_s = resolution.total_seconds()
        arrival_s = (self.arrival_time - now).total_seconds()
        departure_s = (self.departure_time - now).total_seconds()
        raw: list[tuple[int, float]] = []
        for k, p_kw in enumerate(powers_kw):
            slot_start, slot_end = k * res_s, (k + 1) * res_s
            # Arrive later and leave earlier when rounding to whole seconds: both can only lower energy.
            on = max(slot_start, float(math.ceil(arrival_s)))
            off = min(slot_end, float(math.floor(departure_s)))
            if p_kw <= 0 or off <= on:
                raw.append((int(slot_start), 0.0))
                continue
            # Whole-second rounding shortens the presence by under 2 s: never let that lift the rate
            # above what the EV may take.
            rate_kw = min(p_kw * res_s / (off - on), max(self.max_kw, p_kw))
            raw.append((int(slot_start), 0.0))
            raw.append((int(on), self._limit_in(unit, rate_kw)))
            if off < slot_end:
                raw.append((int(off), 0.0))
        # Several entries can share a start (the last wins); equal neighbours merge into one period.
        latest: dict[int, float] = {}
        for start_s, limit in raw:
            latest[start_s] = limit
        periods: list[ChargingPeriod] = []
        for start_s, limit in latest.items():
            if not periods or periods[-1].limit != limit:
                periods.append(ChargingPeriod(start_s, limit, self.phases))
        duration_s = int(len(powers_kw) * res_s)
        if max_periods is not None and len(periods) > max_periods:
            duration_s = periods[max_periods].start_s
            periods = periods[:max_periods]
        return ChargingProfile(
            ev_id=self.ev_id,
            station_id=self.station_id,
            connector_id=self.connector_id,
            start=now,
            unit=unit,
            periods=tuple(periods),
            duration_s=duration_s,
        )

    def _limit_in(self, unit: ChargingRateUnit, kw: float) -> float:
        value = kw * 1000.0 if unit is ChargingRateUnit.W else amps_from_kw(kw, self.voltage, self.phases)
        # Round down to one decimal; the epsilon keeps 6.0000000001 A from becoming 5.9 A.
        return math.floor(value * 10.0 + 1e-6) / 10.0
