"""Short builders for charging profiles in the smart-charging tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    RecurrencyKind,
    SchedulePeriod,
)
from simulators.smart_charging import ProfileRules, ProfileStore

# Monday 3 March 2025, 08:00 UTC: the day every case starts from.
T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
V = 230.0

A = RateUnit.AMPERE
W = RateUnit.WATT
MAX = ProfilePurpose.STATION_MAX
DEFAULT = ProfilePurpose.TX_DEFAULT
TX = ProfilePurpose.TX
EXTERNAL = ProfilePurpose.EXTERNAL_CONSTRAINTS


def at(hours: float = 0.0, minutes: float = 0.0, seconds: float = 0.0) -> datetime:
    """T0 plus an offset."""
    return T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def profile(
    profile_id: int,
    purpose: ProfilePurpose,
    *periods: tuple[int, float] | tuple[int, float, int],
    level: int = 0,
    unit: RateUnit = A,
    kind: ProfileKind = ProfileKind.ABSOLUTE,
    start: datetime | None = T0,
    duration_s: int | None = None,
    recurrency: RecurrencyKind | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    transaction_id: int | None = None,
) -> ChargingProfile:
    """A profile; ``periods`` are ``(start_s, limit)`` or ``(start_s, limit, numberPhases)``."""
    if kind is ProfileKind.RELATIVE:
        start = None
    schedule = ChargingSchedule(
        unit=unit,
        periods=tuple(SchedulePeriod(*period) for period in periods),
        start=start,
        duration_s=duration_s,
    )
    return ChargingProfile(
        id=profile_id,
        stack_level=level,
        purpose=purpose,
        kind=kind,
        schedule=schedule,
        recurrency=recurrency,
        valid_from=valid_from,
        valid_to=valid_to,
        transaction_id=transaction_id,
    )


def store(evse_count: int = 2, **rules: object) -> ProfileStore:
    return ProfileStore(ProfileRules(evse_count=evse_count, **rules))  # type: ignore[arg-type]


def install(
    target: ProfileStore,
    evse_id: int,
    item: ChargingProfile,
    *,
    now: datetime = T0,
    tx: str | None = None,
    active: str | None = None,
) -> None:
    """Install and insist it was accepted."""
    reason = target.install(evse_id, item, now=now, transaction_id=tx, active_transaction_id=active)
    assert reason is None, reason


def periods(schedule: ChargingSchedule) -> list[tuple[int, float]]:
    """A composite's periods as ``(start_s, limit)`` pairs."""
    return [(period.start_s, period.limit) for period in schedule.periods]
