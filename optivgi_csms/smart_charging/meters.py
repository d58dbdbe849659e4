"""The latest meter reading of every EVSE, kept in memory from the readings the services publish.

The scheduler needs what EVs actually draw, not what they were offered: the phases an EV loads (a
single-phase car on a three-phase station), the power of sessions it does not control, and the draw it
compares with the plan to find EVs that take less than offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from optivgi_csms.services.events import MeterReading

#: A phase carrying at least this current (A) is one the EV draws on.
PHASE_ACTIVE_A = 1.0
#: The site phases a meter may name.
SITE_PHASES = frozenset({"L1", "L2", "L3"})


@dataclass(frozen=True, slots=True)
class LiveReading:
    """What an EVSE's meter said last, and the phases it has been seen drawing on."""

    timestamp: datetime
    power_kw: float | None
    currents_a: tuple[float, ...]
    #: Phases seen drawing (kept from an earlier reading while the EV draws nothing).
    phases: int | None
    #: Which site phases those are, when the station names them (a one-phase EV may be on L2 or L3 of the
    #: site, as stations are wired with their phases rotated to balance the load).
    phase_names: tuple[str, ...] | None = None

    def measured_kw(self, voltage_v: float) -> float | None:
        """The power drawn: the reported power, else the per-phase currents times the voltage."""
        if self.power_kw is not None:
            return max(self.power_kw, 0.0)
        if self.currents_a:
            return sum(max(current, 0.0) for current in self.currents_a) * voltage_v / 1000.0
        return None


class LiveMeters:
    """The latest reading per (station, EVSE)."""

    def __init__(self) -> None:
        self._readings: dict[tuple[str, int], LiveReading] = {}

    def update(self, reading: MeterReading) -> LiveReading | None:
        """Fold in a reading; returns the EVSE's state, or None when the reading is older than the one held
        (stations send queued readings after a reconnection) or says nothing about power."""
        key = (reading.station_id, reading.evse_id)
        held = self._readings.get(key)
        if held is not None and reading.timestamp < held.timestamp:
            return None
        if reading.power_kw is None and not reading.current_a:
            return None
        drawing = sum(1 for current in reading.current_a if current >= PHASE_ACTIVE_A)
        phases = drawing if drawing else (held.phases if held is not None else None)
        names = held.phase_names if held is not None else None
        if drawing and len(reading.current_phases) == len(reading.current_a):
            found = tuple(
                sorted(
                    name
                    for name, current in zip(reading.current_phases, reading.current_a, strict=True)
                    if current >= PHASE_ACTIVE_A
                )
            )
            names = found if set(found) <= SITE_PHASES else None
        live = LiveReading(reading.timestamp, reading.power_kw, tuple(reading.current_a), phases, names)
        self._readings[key] = live
        return live

    def get(self, station_id: str, evse_id: int) -> LiveReading | None:
        """The EVSE's latest reading, if any."""
        return self._readings.get((station_id, evse_id))

    def forget(self, station_id: str, evse_id: int | None = None) -> None:
        """Drop an EVSE's readings (its session ended), or a whole station's."""
        if evse_id is not None:
            self._readings.pop((station_id, evse_id), None)
            return
        for key in [key for key in self._readings if key[0] == station_id]:
            del self._readings[key]
