"""Simulated time: the scenario's clock runs ``time_scale`` times faster than the wall clock.

OCPP messages always carry real (wall) UTC time, so any CSMS accepts them as current; only the
scenario's schedule (arrivals, departures) and the EVs' physics are compressed. With
``time_scale=60`` an 8-hour scenario day passes in 8 minutes and an EV drawing 11 kW gains
11 kWh of energy per wall minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimClock:
    """Maps wall time to scenario time: ``sim = scenario_start + (wall - wall_start) * time_scale``."""

    def __init__(
        self,
        scenario_start: datetime,
        time_scale: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if scenario_start.tzinfo is None:
            raise ValueError("the scenario start must carry a time zone")
        if time_scale <= 0:
            raise ValueError("the time scale must be positive")
        self.scenario_start = scenario_start
        self.time_scale = time_scale
        self._monotonic = monotonic
        self._wall_start = monotonic()

    def elapsed_wall_s(self) -> float:
        """Wall seconds since the clock started."""
        return self._monotonic() - self._wall_start

    def sim_now(self) -> datetime:
        """The scenario time now."""
        return self.scenario_start + timedelta(seconds=self.elapsed_wall_s() * self.time_scale)

    def sim_seconds(self, wall_seconds: float) -> float:
        """Scenario seconds that pass in ``wall_seconds`` of wall time."""
        return wall_seconds * self.time_scale

    def wall_seconds_until(self, sim_time: datetime) -> float:
        """Wall seconds from now until the scenario reaches ``sim_time`` (0 if it has)."""
        return max(0.0, (sim_time - self.sim_now()).total_seconds() / self.time_scale)

    def wall_time(self, sim_time: datetime) -> datetime:
        """The wall (real UTC) time at which the scenario reaches ``sim_time``: what an OCPP message states
        of a scenario moment, e.g. an EV's departure (in the past if the scenario has passed it)."""
        return self.wall_now() + timedelta(seconds=(sim_time - self.sim_now()).total_seconds() / self.time_scale)

    @staticmethod
    def wall_now() -> datetime:
        """The real UTC time, for OCPP timestamps."""
        return datetime.now(UTC)
