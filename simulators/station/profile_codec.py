"""Charging profiles and schedules between OCPP payloads (snake_case, as the ``ocpp`` library hands
them over) and the version-neutral values of :mod:`optivgi_csms.domain.charging_profile`.

The station stores and computes with the neutral values (through the ProfileStore); only this
module knows how each version spells them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    RecurrencyKind,
    SchedulePeriod,
)
from optivgi_csms.domain.time import format_timestamp, parse_timestamp

PURPOSES_16 = {
    "ChargePointMaxProfile": ProfilePurpose.STATION_MAX,
    "TxDefaultProfile": ProfilePurpose.TX_DEFAULT,
    "TxProfile": ProfilePurpose.TX,
}
PURPOSES_201 = {
    "ChargingStationMaxProfile": ProfilePurpose.STATION_MAX,
    "TxDefaultProfile": ProfilePurpose.TX_DEFAULT,
    "TxProfile": ProfilePurpose.TX,
    "ChargingStationExternalConstraints": ProfilePurpose.EXTERNAL_CONSTRAINTS,
}
PURPOSE_NAMES_201 = {purpose: name for name, purpose in PURPOSES_201.items()}


class ProfileFormatError(ValueError):
    """A profile the schema allows but OCPP does not (e.g. a first period after 0 s)."""


def _time(data: dict[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    return parse_timestamp(value) if value else None


def _schedule(data: dict[str, Any]) -> ChargingSchedule:
    return ChargingSchedule(
        id=data.get("id"),
        unit=RateUnit(data["charging_rate_unit"]),
        periods=tuple(
            SchedulePeriod(
                int(period["start_period"]),
                float(period["limit"]),
                period.get("number_phases"),
                period.get("phase_to_use"),
            )
            for period in data["charging_schedule_period"]
        ),
        start=_time(data, "start_schedule"),
        duration_s=data.get("duration"),
        min_rate=data.get("min_charging_rate"),
    )


def profile_from_v16(data: dict[str, Any]) -> tuple[ChargingProfile, str | None]:
    """A 1.6 ``csChargingProfiles`` as a neutral profile and the transaction id it names (as text)."""
    try:
        profile = ChargingProfile(
            id=int(data["charging_profile_id"]),
            stack_level=int(data["stack_level"]),
            purpose=PURPOSES_16[data["charging_profile_purpose"]],
            kind=ProfileKind(data["charging_profile_kind"]),
            recurrency=RecurrencyKind(data["recurrency_kind"]) if data.get("recurrency_kind") else None,
            valid_from=_time(data, "valid_from"),
            valid_to=_time(data, "valid_to"),
            schedule=_schedule(data["charging_schedule"]),
        )
    except (KeyError, ValueError) as error:
        raise ProfileFormatError(f"invalid profile: {error}") from None
    transaction_id = data.get("transaction_id")
    return profile, None if transaction_id is None else str(transaction_id)


def profile_from_v201(data: dict[str, Any]) -> tuple[ChargingProfile, str | None]:
    """A 2.0.1 ``chargingProfile`` as a neutral profile (its first schedule) and its transaction id."""
    try:
        profile = ChargingProfile(
            id=int(data["id"]),
            stack_level=int(data["stack_level"]),
            purpose=PURPOSES_201[data["charging_profile_purpose"]],
            kind=ProfileKind(data["charging_profile_kind"]),
            recurrency=RecurrencyKind(data["recurrency_kind"]) if data.get("recurrency_kind") else None,
            valid_from=_time(data, "valid_from"),
            valid_to=_time(data, "valid_to"),
            # ISO 15118 may offer up to three schedules; without an EV to choose, the first applies.
            schedule=_schedule(data["charging_schedule"][0]),
        )
    except (KeyError, IndexError, ValueError) as error:
        raise ProfileFormatError(f"invalid profile: {error}") from None
    return profile, data.get("transaction_id")


def schedule_to_ocpp(schedule: ChargingSchedule, *, with_phases: bool = True) -> dict[str, Any]:
    """A neutral schedule as the fields both versions share (snake_case)."""
    return {
        "charging_rate_unit": schedule.unit.value,
        "duration": schedule.duration_s,
        "start_schedule": format_timestamp(schedule.start) if schedule.start else None,
        "min_charging_rate": schedule.min_rate,
        "charging_schedule_period": [
            {
                "start_period": period.start_s,
                "limit": period.limit,
                "number_phases": period.number_phases if with_phases else None,
                "phase_to_use": period.phase_to_use if with_phases else None,
            }
            for period in schedule.periods
        ],
    }


def profile_to_v201(profile: ChargingProfile, transaction_id: str | None) -> dict[str, Any]:
    """A stored profile as a 2.0.1 ``chargingProfile`` (for ReportChargingProfiles)."""
    schedule = schedule_to_ocpp(profile.schedule)
    schedule["id"] = profile.schedule.id if profile.schedule.id is not None else profile.id
    return {
        "id": profile.id,
        "stack_level": profile.stack_level,
        "charging_profile_purpose": PURPOSE_NAMES_201[profile.purpose],
        "charging_profile_kind": profile.kind.value,
        "recurrency_kind": profile.recurrency.value if profile.recurrency else None,
        "valid_from": format_timestamp(profile.valid_from) if profile.valid_from else None,
        "valid_to": format_timestamp(profile.valid_to) if profile.valid_to else None,
        "transaction_id": transaction_id if profile.purpose is ProfilePurpose.TX else None,
        "charging_schedule": [schedule],
    }


def describe(profile: ChargingProfile, transaction_id: str | None) -> dict[str, Any]:
    """A profile for the recorder: the neutral description, with the station's transaction id."""
    return {**profile.to_dict(), "transaction_id": transaction_id}
