"""Charging profiles in the shape a station accepts: its unit, stack level and number of periods.

The scheduler's plan for an EV becomes an Absolute TxProfile from the first slot's start, its limits
rounded *down* to one decimal (OCPP carries one; rounding down never lifts a limit above the plan), with
the number of phases the EV draws on. Its id is derived from the transaction, so a new plan for the same
session replaces the profile the station holds (2.0.1 refuses a second profile at the same purpose and
stack level; the same id replaces it in both versions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
)
from optivgi_csms.scheduling import EV, ChargingRateUnit
from optivgi_csms.scheduling.ev import DEFAULT_VOLTAGE_V
from optivgi_csms.smart_charging.capabilities import Capabilities

#: Tx profile ids are this plus the transaction id (below 2^31, the largest id OCPP carries).
TX_PROFILE_ID_BASE = 1_000_000_000
#: The id of the fail-safe TxDefault profile, the same on every station.
FALLBACK_PROFILE_ID = 999_000_001


def tx_profile_id(transaction_id: int) -> int:
    """The profile id of a session's Tx profile."""
    return TX_PROFILE_ID_BASE + transaction_id % TX_PROFILE_ID_BASE


@dataclass(frozen=True, slots=True)
class Shape:
    """How a station wants its profiles: unit, stack level, at most how many periods."""

    unit: RateUnit
    stack_level: int
    max_periods: int

    def describe(self) -> str:
        """Short text for logs and notes."""
        return f"{self.unit.value}, stack level {self.stack_level}"


def shapes_for(capabilities: Capabilities, *, dc: bool = False, ev_periods: int | None = None) -> tuple[Shape, Shape]:
    """The first shape to try and the retry after a rejection: the same at stack level 0 when the first was
    above it (the commonest reason real stations reject), else in the other unit."""
    unit = capabilities.preferred_unit(dc=dc)
    periods = capabilities.periods(ev_periods)
    first = Shape(unit, capabilities.stack_level(), periods)
    if first.stack_level > 0:
        return first, Shape(unit, 0, periods)
    other = RateUnit.WATT if unit is RateUnit.AMPERE else RateUnit.AMPERE
    return first, Shape(other, 0, periods)


def tx_profile(
    ev: EV,
    transaction_id: int,
    now: datetime,
    resolution: timedelta,
    shape: Shape,
    *,
    dc: bool = False,
    until: datetime | None = None,
) -> ChargingProfile:
    """The scheduler's plan for ``ev`` (its ``power``) as a TxProfile starting at ``now``, ending with the
    plan or at the end of the slot ``until`` falls in, whichever is first."""
    unit = ChargingRateUnit.A if shape.unit is RateUnit.AMPERE else ChargingRateUnit.W
    slots = max(math.ceil((until - now) / resolution), 1) if until is not None else None
    plan = ev.charging_profile(now, resolution, unit, max_periods=shape.max_periods, slots=slots)
    periods = tuple(
        SchedulePeriod(period.start_s, period.limit, None if dc else period.number_phases) for period in plan.periods
    )
    schedule = ChargingSchedule(unit=shape.unit, periods=periods, start=plan.start, duration_s=plan.duration_s or None)
    return ChargingProfile(
        id=tx_profile_id(transaction_id),
        stack_level=shape.stack_level,
        purpose=ProfilePurpose.TX,
        kind=ProfileKind.ABSOLUTE,
        schedule=schedule,
        transaction_id=transaction_id,
    )


def constant_profile(
    profile_id: int, purpose: ProfilePurpose, limit: float, shape: Shape, start: datetime, phases: int | None
) -> ChargingProfile:
    """A profile holding one limit from ``start`` on, indefinitely (the fail-safe profile)."""
    schedule = ChargingSchedule(unit=shape.unit, periods=(SchedulePeriod(0, limit, phases),), start=start)
    return ChargingProfile(
        id=profile_id, stack_level=shape.stack_level, purpose=purpose, kind=ProfileKind.ABSOLUTE, schedule=schedule
    )


# --- reading profiles back as power ---------------------------------------------------------------


def end_of(profile: ChargingProfile) -> datetime | None:
    """When an Absolute profile stops applying (None: never)."""
    schedule = profile.schedule
    if schedule.start is None or schedule.duration_s is None:
        return None
    return schedule.start + timedelta(seconds=schedule.duration_s)


def period_at(profile: ChargingProfile, moment: datetime) -> SchedulePeriod | None:
    """The period of an Absolute profile in force at ``moment``, or None outside the profile."""
    schedule = profile.schedule
    if schedule.start is None or moment < schedule.start:
        return None
    offset = (moment - schedule.start).total_seconds()
    if schedule.duration_s is not None and offset >= schedule.duration_s:
        return None
    current = schedule.periods[0]
    for period in schedule.periods:
        if period.start_s > offset:
            break
        current = period
    return current


def limit_kw(profile: ChargingProfile, moment: datetime, voltage_v: float = DEFAULT_VOLTAGE_V) -> float | None:
    """The limit an Absolute profile sets at ``moment`` in kW, or None outside it."""
    period = period_at(profile, moment)
    if period is None:
        return None
    if profile.schedule.unit is RateUnit.WATT:
        return period.limit / 1000.0
    return period.limit * voltage_v * (period.number_phases or 3) / 1000.0


def boundaries(profile: ChargingProfile, start: datetime, end: datetime) -> list[datetime]:
    """The moments in ``[start, end)`` where the profile's limit may change (and ``start`` itself)."""
    schedule = profile.schedule
    moments = [start]
    if schedule.start is None:
        return moments
    points = [schedule.start + timedelta(seconds=period.start_s) for period in schedule.periods]
    stop = end_of(profile)
    if stop is not None:
        points.append(stop)
    moments.extend(point for point in points if start < point < end)
    return moments


def kw_per_slot(
    profile: ChargingProfile | None,
    slot_starts: Sequence[datetime],
    resolution: timedelta,
    voltage_v: float,
    outside_kw: float,
) -> list[float]:
    """The highest power the profile allows in each slot, kW (``outside_kw`` where it does not apply).

    One pass over slots and periods together (this runs for every EV of every cycle)."""
    if profile is None or profile.schedule.start is None or not slot_starts:
        return [outside_kw] * len(slot_starts)
    schedule = profile.schedule
    origin = slot_starts[0]
    offset = (schedule.start - origin).total_seconds()
    # Pieces [begin, end) in seconds from the first slot's start, with their power; outside them, outside_kw.
    begins = [offset + period.start_s for period in schedule.periods]
    ends = [*begins[1:], offset + schedule.duration_s if schedule.duration_s is not None else math.inf]
    powers = [
        period.limit / 1000.0
        if schedule.unit is RateUnit.WATT
        else period.limit * voltage_v * (period.number_phases or 3) / 1000.0
        for period in schedule.periods
    ]
    step = resolution.total_seconds()
    values = []
    first = 0
    for start in slot_starts:
        lo = (start - origin).total_seconds()
        hi = lo + step
        while first < len(ends) and ends[first] <= lo:
            first += 1  # pieces that ended before this slot are done for every later slot too
        best = outside_kw if lo < begins[0] or hi > ends[-1] else -math.inf
        j = first
        while j < len(begins) and begins[j] < hi:
            best = max(best, powers[j])
            j += 1
        values.append(best if best != -math.inf else outside_kw)
    return values
