"""A charging profile as one version-neutral value; each protocol adapter renders it in its version."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from optivgi_csms.domain.time import format_timestamp, parse_timestamp


class ProfilePurpose(StrEnum):
    """What a profile limits. 1.6 ``ChargePointMaxProfile`` and 2.0.1 ``ChargingStationMaxProfile``
    are both ``STATION_MAX``."""

    STATION_MAX = "StationMax"
    TX_DEFAULT = "TxDefault"
    TX = "Tx"
    EXTERNAL_CONSTRAINTS = "ExternalConstraints"


class ProfileKind(StrEnum):
    """How the schedule's start is anchored."""

    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class RecurrencyKind(StrEnum):
    """The period of a recurring profile."""

    DAILY = "Daily"
    WEEKLY = "Weekly"


class RateUnit(StrEnum):
    """``A`` limits the current per phase; ``W`` limits the total power."""

    AMPERE = "A"
    WATT = "W"


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """From ``start_s`` seconds after the schedule start, charge at most ``limit`` (in the schedule's unit).

    The limit is rounded to one decimal, the precision OCPP carries.
    """

    start_s: int
    limit: float
    number_phases: int | None = None
    # 2.0.1 only, with ACPhaseSwitchingSupported: the phase a single-phase limit applies to.
    phase_to_use: int | None = None

    def __post_init__(self) -> None:
        # OCPP limits carry at most one decimal: hold the value the station will actually get.
        object.__setattr__(self, "limit", round(self.limit, 1))
        if self.start_s < 0:
            raise ValueError(f"period start {self.start_s} s is negative")
        if self.limit < 0:
            raise ValueError(f"period limit {self.limit} is negative")
        if self.number_phases is not None and self.number_phases not in (1, 2, 3):
            raise ValueError(f"numberPhases {self.number_phases} is not 1, 2 or 3")
        if self.phase_to_use is not None and (self.phase_to_use not in (1, 2, 3) or self.number_phases != 1):
            raise ValueError("phaseToUse (1, 2 or 3) goes only with numberPhases 1")


@dataclass(frozen=True, slots=True)
class ChargingSchedule:
    """A list of periods in one unit, optionally anchored at ``start`` and bounded by ``duration_s``."""

    unit: RateUnit
    periods: tuple[SchedulePeriod, ...]
    start: datetime | None = None
    duration_s: int | None = None
    min_rate: float | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if self.min_rate is not None:
            object.__setattr__(self, "min_rate", round(self.min_rate, 1))
        if not self.periods:
            raise ValueError("a charging schedule needs at least one period")
        if self.periods[0].start_s != 0:
            raise ValueError("the first period of a charging schedule must start at 0 s")
        starts = [period.start_s for period in self.periods]
        if any(later <= earlier for earlier, later in itertools.pairwise(starts)):
            raise ValueError("period starts must increase strictly")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("schedule duration must be positive")
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("schedule start must carry a time zone")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, for storage and the API."""
        return {
            "id": self.id,
            "unit": self.unit.value,
            "start": format_timestamp(self.start) if self.start else None,
            "duration_s": self.duration_s,
            "min_rate": self.min_rate,
            "periods": [
                {
                    "start_s": p.start_s,
                    "limit": p.limit,
                    "number_phases": p.number_phases,
                    "phase_to_use": p.phase_to_use,
                }
                for p in self.periods
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChargingSchedule:
        """Inverse of :meth:`to_dict`; raises ``ValueError``/``KeyError`` on bad data."""
        return cls(
            id=data.get("id"),
            unit=RateUnit(data["unit"]),
            start=parse_timestamp(data["start"]) if data.get("start") else None,
            duration_s=data.get("duration_s"),
            min_rate=data.get("min_rate"),
            periods=tuple(
                SchedulePeriod(int(p["start_s"]), float(p["limit"]), p.get("number_phases"), p.get("phase_to_use"))
                for p in data["periods"]
            ),
        )


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """A charging profile: identity, precedence (purpose and stack level), validity and schedule.

    ``transaction_id`` is the CSMS's transaction id (required for ``TX`` profiles outside a
    remote start); adapters translate it to the id their station knows.
    """

    id: int
    stack_level: int
    purpose: ProfilePurpose
    kind: ProfileKind
    schedule: ChargingSchedule
    recurrency: RecurrencyKind | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.id <= 0:
            raise ValueError("charging profile id must be positive")
        if self.stack_level < 0:
            raise ValueError("stack level must be 0 or more")
        if self.kind is ProfileKind.RECURRING and self.recurrency is None:
            raise ValueError("a Recurring profile needs a recurrency kind (Daily or Weekly)")
        if self.purpose is not ProfilePurpose.TX and self.transaction_id is not None:
            raise ValueError("only Tx profiles carry a transaction id")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("validTo must be after validFrom")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, for storage and the API."""
        return {
            "id": self.id,
            "stack_level": self.stack_level,
            "purpose": self.purpose.value,
            "kind": self.kind.value,
            "recurrency": self.recurrency.value if self.recurrency else None,
            "valid_from": format_timestamp(self.valid_from) if self.valid_from else None,
            "valid_to": format_timestamp(self.valid_to) if self.valid_to else None,
            "transaction_id": self.transaction_id,
            "schedule": self.schedule.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChargingProfile:
        """Inverse of :meth:`to_dict`; raises ``ValueError``/``KeyError`` on bad data."""
        return cls(
            id=int(data["id"]),
            stack_level=int(data["stack_level"]),
            purpose=ProfilePurpose(data["purpose"]),
            kind=ProfileKind(data["kind"]),
            recurrency=RecurrencyKind(data["recurrency"]) if data.get("recurrency") else None,
            valid_from=parse_timestamp(data["valid_from"]) if data.get("valid_from") else None,
            valid_to=parse_timestamp(data["valid_to"]) if data.get("valid_to") else None,
            transaction_id=data.get("transaction_id"),
            schedule=ChargingSchedule.from_dict(data["schedule"]),
        )


@dataclass(frozen=True, slots=True)
class CompositeSchedule:
    """What a station says it will apply on an EVSE (GetCompositeSchedule)."""

    evse_id: int
    start: datetime | None
    schedule: ChargingSchedule | None
