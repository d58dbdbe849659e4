"""What the meter of one EVSE reads, as OCPP sampled values in either version's shape.

The readings come from what the EV really draws (not from the limit offered), so a CSMS sees the
truth: an EV that tapers near full or takes less than offered shows it in its meter values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from optivgi_csms.domain.time import format_timestamp

_UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "Current.Offered": "A",
    "Voltage": "V",
    "SoC": "Percent",
}
_PHASES = ("L1", "L2", "L3")


@dataclass(frozen=True)
class MeterReading:
    """One EVSE's meter at one instant (wall time)."""

    timestamp: datetime
    energy_wh: float  # the register: everything this EVSE ever delivered
    current_a: float  # per phase, on each phase in use
    offered_a: float  # per phase, what the station offers the EV
    phases: int  # phases in use
    voltage_v: float
    soc: float | None  # 0..1, None without an EV
    phase_names: tuple[str, ...] = ()  # which site phases (L1, L2, L3 in order when not given)

    @property
    def power_w(self) -> float:
        """Total active power."""
        return self.current_a * self.voltage_v * self.phases


def _phase_names(reading: MeterReading) -> tuple[str, ...]:
    if len(reading.phase_names) == reading.phases:
        return reading.phase_names
    return _PHASES[: reading.phases]


def _samples(reading: MeterReading, measurands: Iterable[str]) -> list[tuple[str, str | None, float, str]]:
    """(measurand, phase, value, location) for each value the measurands ask for."""
    values: list[tuple[str, str | None, float, str]] = []
    for measurand in measurands:
        if measurand == "Energy.Active.Import.Register":
            values.append((measurand, None, round(reading.energy_wh, 1), "Outlet"))
        elif measurand == "Power.Active.Import":
            values.append((measurand, None, round(reading.power_w, 1), "Outlet"))
        elif measurand == "Current.Import":
            values.extend((measurand, phase, round(reading.current_a, 2), "Outlet") for phase in _phase_names(reading))
        elif measurand == "Current.Offered":
            values.append((measurand, None, round(reading.offered_a, 1), "Outlet"))
        elif measurand == "Voltage":
            values.extend(
                (measurand, f"{phase}-N", round(reading.voltage_v, 1), "Outlet") for phase in _phase_names(reading)
            )
        elif measurand == "SoC" and reading.soc is not None:
            values.append((measurand, None, round(reading.soc * 100, 1), "EV"))
    return values


def meter_value_v16(reading: MeterReading, measurands: Iterable[str], context: str) -> dict[str, Any]:
    """A 1.6 ``meterValue`` entry (snake_case): values as text, units named."""
    return {
        "timestamp": format_timestamp(reading.timestamp),
        "sampled_value": [
            {
                "value": _text(value),
                "context": context,
                "format": "Raw",
                "measurand": measurand,
                "phase": phase,
                "location": location,
                "unit": _UNITS[measurand],
            }
            for measurand, phase, value, location in _samples(reading, measurands)
        ],
    }


def meter_value_v201(reading: MeterReading, measurands: Iterable[str], context: str) -> dict[str, Any]:
    """A 2.0.1 ``meterValue`` entry (snake_case): values as numbers, units as unitOfMeasure."""
    return {
        "timestamp": format_timestamp(reading.timestamp),
        "sampled_value": [
            {
                "value": value,
                "context": context,
                "measurand": measurand,
                "phase": phase,
                "location": location,
                "unit_of_measure": {"unit": _UNITS[measurand]},
            }
            for measurand, phase, value, location in _samples(reading, measurands)
        ],
    }


def _text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
