"""Rehearsal time: plan as if the site's clock ran ``time_scale`` times faster than the wall clock.

The simulator (``optivgi-sim --time-scale N``) stamps OCPP messages with wall time but compresses its
scenario: EVs arrive, leave and gain energy N times faster, so an EV drawing 11 kW physically adds
11·N kWh to its register per wall hour. The scheduler therefore works in wall time with physical powers,
and everything the site states in scenario units is brought to wall units here: durations (slot length,
horizon, default dwell) and energies (targets, delivered, defaults) are divided by ``time_scale``.
Absolute times (departures, limit and price steps, reservation windows) are wall times already.
With ``time_scale == 1`` (every real site) all of this is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class TimeScale:
    """Converts a site's durations and energies (scenario units) to the scheduler's wall units and back."""

    factor: float = 1.0

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError("the time scale must be positive")

    def duration(self, site_seconds: float) -> timedelta:
        """A site duration in seconds as the wall time it lasts."""
        return timedelta(seconds=site_seconds / self.factor)

    def energy(self, site_kwh: float) -> float:
        """An energy the site counts (meters, targets) as the energy the scheduler plans, kWh."""
        return site_kwh / self.factor

    def site_energy(self, wall_kwh: float) -> float:
        """The inverse of :meth:`energy`: a planned energy in the site's own units, kWh."""
        return wall_kwh * self.factor
