"""What an EV says it needs (ISO 15118 through OCPP 2.0.1 NotifyEVChargingNeeds), and charging limits
a station reports from outside the CSMS (NotifyChargingLimit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from optivgi_csms.domain.charging_profile import ChargingSchedule


@dataclass(frozen=True, slots=True)
class ChargingNeeds:
    """An EV's charging needs on an EVSE. Energy in Wh, current in A, voltage in V, power in W."""

    station_id: str
    evse_id: int
    requested_energy_transfer: str
    departure_time: datetime | None = None
    energy_amount_wh: float | None = None
    ev_min_current_a: float | None = None
    ev_max_current_a: float | None = None
    ev_max_voltage_v: float | None = None
    ev_max_power_w: float | None = None
    state_of_charge: int | None = None
    ev_energy_capacity_wh: float | None = None
    max_schedule_tuples: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class ChargingLimitReport:
    """A limit set on the station by someone other than the CSMS (an energy manager, the grid operator)."""

    station_id: str
    source: str
    evse_id: int | None = None
    is_grid_critical: bool | None = None
    schedules: tuple[ChargingSchedule, ...] = ()
