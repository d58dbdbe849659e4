"""Everything a site run observes, for the live display and the final report.

Stations and the site runner write here; nothing here talks to a CSMS. All times are scenario
(simulated) times except where named ``wall``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class PowerSample:
    """What one EVSE drew at one moment."""

    sim_time: datetime
    station_id: str
    evse_id: int
    ev_id: str | None
    power_kw: float
    offered_kw: float | None
    energy_kwh: float
    soc: float | None


@dataclass
class ProfileEvent:
    """A charging profile a station received, and what it answered."""

    sim_time: datetime
    station_id: str
    evse_id: int
    profile: dict[str, Any]
    accepted: bool
    reason: str | None = None


@dataclass
class SessionRecord:
    """One EV's visit: what it asked for and what it got."""

    ev_id: str
    station_id: str
    evse_id: int
    requested_kwh: float
    arrival: datetime
    departure: datetime
    delivered_kwh: float = 0.0
    plugged_at: datetime | None = None
    unplugged_at: datetime | None = None
    transaction_id: str | None = None


@dataclass
class Recorder:
    """Collects samples, profiles, sessions, protocol errors and message counts of a run."""

    samples: list[PowerSample] = field(default_factory=list)
    profiles: list[ProfileEvent] = field(default_factory=list)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    protocol_errors: list[dict[str, Any]] = field(default_factory=list)
    messages: Counter[str] = field(default_factory=Counter)
    connected: set[str] = field(default_factory=set)

    def sample(self, sample: PowerSample) -> None:
        """Record what an EVSE draws now."""
        self.samples.append(sample)

    def profile(self, event: ProfileEvent) -> None:
        """Record a profile received."""
        self.profiles.append(event)

    def protocol_error(self, sim_time: datetime, station_id: str, description: str) -> None:
        """Record something the CSMS did against the protocol (or a failure talking to it)."""
        self.protocol_errors.append({"sim_time": sim_time, "station_id": station_id, "description": description})

    def message(self, station_id: str, direction: str, action: str) -> None:
        """Count one OCPP message (``direction``: ``sent`` or ``received``)."""
        self.messages[f"{direction}:{action}"] += 1

    def answer(self, station_id: str, action: str, status: str) -> None:
        """Count the CSMS's answer to a request by its status (``answered:<action>:<status>``), for requests
        whose answer says what the CSMS makes of them (NotifyEVChargingNeeds: Accepted, Rejected, ...)."""
        self.messages[f"answered:{action}:{status}"] += 1

    def connection(self, station_id: str, up: bool) -> None:
        """Record a station's connection going up or down."""
        if up:
            self.connected.add(station_id)
        else:
            self.connected.discard(station_id)
