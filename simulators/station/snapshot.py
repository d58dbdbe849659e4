"""A station's state at one moment, for the live display and the site runner."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvseSnapshot:
    """One EVSE now."""

    evse_id: int
    status: str
    ev_id: str | None
    power_kw: float  # what the EV draws
    offered_kw: float  # what the station offers it
    energy_kwh: float  # energy of the running (or just finished) session
    soc: float | None  # 0..1
    limit_a: float | None  # per-phase limit the profiles impose now (None: no profile limits)
    transaction_id: str | None  # as the CSMS knows it (1.6: None until the start is answered)


@dataclass(frozen=True)
class StationSnapshot:
    """One station now."""

    station_id: str
    ocpp_version: str
    connected: bool  # websocket open
    accepted: bool  # connected and admitted by the CSMS (boot accepted)
    queued: int  # messages waiting for the CSMS
    evses: tuple[EvseSnapshot, ...]
