"""The time arithmetic of OCPP charging profiles: which period is in force, stacking, composites.

Pure functions over the neutral domain values; :class:`~simulators.smart_charging.profiles.ProfileStore`
decides which profiles take part and in what order, these functions evaluate them.

Every limit is reduced to one neutral figure, the **current per phase** on the phases the EV
actually charges on, before limits are compared. That makes the minimum of an ``A`` profile and a
``W`` profile well defined and lets a composite be reported in either unit:

* ``A`` limits are per phase. ``numberPhases`` (3 when absent) is the number of phases the CSMS
  allows. When the EV charges on more phases than that (the station cannot switch phases), the
  allowed total current ``limit × numberPhases`` is spread over the phases in use.
* ``W`` limits are the total power: ``limit / (V × phases in use)`` per phase, so a 1-phase EV on a
  3-phase station may take the whole power on its one phase (capped by the hardware elsewhere).

All times are aware UTC datetimes (wall time: OCPP profiles are in the CSMS's clock). Recurring
profiles repeat every 24 h / 7 days of UTC, as stations that keep UTC do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    RateUnit,
    RecurrencyKind,
    SchedulePeriod,
)

DAY_S = 86_400
WEEK_S = 7 * DAY_S
# numberPhases when a period leaves it out (OCPP: 3 is assumed on AC).
DEFAULT_NUMBER_PHASES = 3


@dataclass(frozen=True)
class Candidate:
    """A profile taking part in a stack, with the instant its schedule counts from.

    ``anchor`` is ``startSchedule`` (Absolute, Recurring), the installation time (Absolute
    without ``startSchedule``) or the transaction start (Relative); None means it cannot start.
    """

    profile: ChargingProfile
    anchor: datetime | None


# A layer is one purpose's stack in precedence order: the first candidate with a period in force
# gives the layer's limit (highest stack level first; lower levels show through when it lapses).
Layer = Sequence[Candidate]


def recurrence_s(profile: ChargingProfile) -> int | None:
    """The length of a recurring profile's cycle in seconds, None for one that does not recur."""
    if profile.kind is not ProfileKind.RECURRING:
        return None
    return WEEK_S if profile.recurrency is RecurrencyKind.WEEKLY else DAY_S


def schedule_anchor(
    profile: ChargingProfile, *, installed_at: datetime, transaction_start: datetime | None
) -> datetime | None:
    """The instant ``startPeriod`` 0 refers to.

    Relative profiles count from the transaction start (None without one: the caller substitutes
    the instant it asks about, i.e. "as if the transaction started now"). Absolute profiles
    without ``startSchedule`` count from their installation. Recurring ones need ``startSchedule``
    (the store rejects them without); the installation time is only a fallback.
    """
    if profile.kind is ProfileKind.RELATIVE:
        return transaction_start
    return profile.schedule.start or installed_at


def period_in_force(candidate: Candidate, when: datetime) -> SchedulePeriod | None:
    """The schedule period of ``candidate`` in force at ``when``, None if none is.

    None when outside ``validFrom``/``validTo``, before the schedule starts, after its
    ``duration``, or (for a recurring profile) in the part of the cycle past its ``duration``.
    Without a duration the last period runs on indefinitely (until the transaction ends, for Tx).
    """
    profile = candidate.profile
    if profile.valid_from is not None and when < profile.valid_from:
        return None
    if profile.valid_to is not None and when >= profile.valid_to:
        return None
    if candidate.anchor is None:
        return None
    offset = (when - candidate.anchor).total_seconds()
    cycle = recurrence_s(profile)
    if cycle is not None:
        # The cycle repeats in both directions: startSchedule only sets its phase.
        offset %= cycle
    elif offset < 0:
        return None
    schedule = profile.schedule
    if schedule.duration_s is not None and offset >= schedule.duration_s:
        return None
    in_force = None
    for period in schedule.periods:  # starts increase strictly; the first is at 0
        if period.start_s > offset:
            break
        in_force = period
    return in_force


def per_phase_a(period: SchedulePeriod, unit: RateUnit, *, phases: int, voltage_v: float) -> float:
    """A period's limit as current per phase on ``phases`` phases at ``voltage_v`` (see module doc)."""
    _check_supply(phases, voltage_v)
    if unit is RateUnit.WATT:
        return period.limit / (voltage_v * phases)
    allowed_phases = period.number_phases or DEFAULT_NUMBER_PHASES
    if phases <= allowed_phases:
        return float(period.limit)
    return period.limit * allowed_phases / phases


def from_per_phase_a(current_a: float, unit: RateUnit, *, phases: int, voltage_v: float) -> float:
    """A per-phase current in ``unit``: itself for ``A``, the total power ``I × V × phases`` for ``W``."""
    _check_supply(phases, voltage_v)
    if unit is RateUnit.WATT:
        return float(current_a * voltage_v * phases)
    return float(current_a)


def layer_limit_a(layer: Layer, when: datetime, *, phases: int, voltage_v: float) -> float | None:
    """The per-phase limit a stack imposes at ``when``: the first candidate with a period in force."""
    for candidate in layer:
        period = period_in_force(candidate, when)
        if period is not None:
            unit = candidate.profile.schedule.unit
            return per_phase_a(period, unit, phases=phases, voltage_v=voltage_v)
    return None


def limit_a_at(
    layers: Iterable[Layer], when: datetime, *, phases: int, voltage_v: float, cap_a: float | None = None
) -> float | None:
    """The minimum over the layers (and ``cap_a``, a hardware limit) at ``when``; None if nothing limits."""
    limits = [
        limit
        for limit in (layer_limit_a(layer, when, phases=phases, voltage_v=voltage_v) for layer in layers)
        if limit is not None
    ]
    if cap_a is not None:
        limits.append(cap_a)
    return min(limits) if limits else None


def change_points(candidate: Candidate, start: datetime, end: datetime) -> set[datetime]:
    """Every instant in ``(start, end)`` at which what ``candidate`` says may change.

    Between two consecutive change points of all candidates, every layer's limit is constant,
    so a composite needs to evaluate only there.
    """
    profile = candidate.profile
    schedule = profile.schedule
    points: set[datetime] = set()
    for bound in (profile.valid_from, profile.valid_to):
        if bound is not None:
            points.add(bound)
    anchor = candidate.anchor
    if anchor is not None:
        offsets = [period.start_s for period in schedule.periods]
        if schedule.duration_s is not None:
            offsets.append(schedule.duration_s)
        cycle = recurrence_s(profile)
        if cycle is None:
            points.update(anchor + timedelta(seconds=offset) for offset in offsets)
        else:
            offsets = [offset for offset in offsets if offset < cycle]
            first = math.floor((start - anchor).total_seconds() / cycle)
            last = math.floor((end - anchor).total_seconds() / cycle)
            for index in range(first, last + 1):
                base = anchor + timedelta(seconds=index * cycle)
                points.update(base + timedelta(seconds=offset) for offset in offsets)
    return {point for point in points if start < point < end}


def composite_schedule(
    layers: Sequence[Layer],
    start: datetime,
    duration_s: int,
    unit: RateUnit,
    *,
    phases: int,
    voltage_v: float,
    cap_a: float,
) -> ChargingSchedule:
    """The limits in force over ``[start, start + duration_s)`` as one schedule in ``unit``.

    At every instant the limit is the minimum of the layers and ``cap_a`` (the hardware
    maximum, which also fills any time no profile limits). Periods start at whole seconds from
    ``start`` (a change within a second takes effect at the next whole second), limits carry
    one decimal, and equal neighbours are merged. Every period carries ``numberPhases=phases``.
    """
    if duration_s <= 0:
        raise ValueError(f"composite duration must be positive, not {duration_s}")
    end = start + timedelta(seconds=duration_s)
    points: set[datetime] = set()
    for layer in layers:
        for candidate in layer:
            points |= change_points(candidate, start, end)
    offsets = sorted({0} | {math.ceil((point - start).total_seconds()) for point in points})
    periods: list[SchedulePeriod] = []
    for offset in offsets:
        if offset >= duration_s:
            break
        when = start + timedelta(seconds=offset)
        current = limit_a_at(layers, when, phases=phases, voltage_v=voltage_v, cap_a=cap_a)
        assert current is not None  # cap_a always limits
        period = SchedulePeriod(
            offset, from_per_phase_a(current, unit, phases=phases, voltage_v=voltage_v), number_phases=phases
        )
        if periods and periods[-1].limit == period.limit:
            continue  # equal neighbours merge: the earlier period simply runs on
        periods.append(period)
    return ChargingSchedule(unit=unit, periods=tuple(periods), start=start, duration_s=duration_s)


def _check_supply(phases: int, voltage_v: float) -> None:
    if phases not in (1, 2, 3):
        raise ValueError(f"phases must be 1, 2 or 3, not {phases}")
    if not voltage_v > 0:
        raise ValueError(f"voltage must be positive, not {voltage_v}")
