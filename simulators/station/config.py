"""What a simulated charging station is: identity, hardware, and the settings it starts with."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulators.smart_charging import ProfileRules

OCPP_VERSIONS = ("1.6", "2.0.1")


@dataclass
class StationConfig:
    """One station's description. Times are wall seconds (OCPP runs on the real clock)."""

    station_id: str
    url: str  # CSMS base URL; the station connects to url.rstrip("/") + "/" + station_id
    ocpp_version: str = "1.6"  # or "2.0.1"
    evse_count: int = 1
    max_current_a: float = 32.0  # per EVSE, per phase (hardware)
    phases: int = 3
    voltage_v: float = 230.0
    vendor: str = "optivgi-sim"
    model: str = "SimStation"
    serial_number: str | None = None
    firmware_version: str = "1.0"
    password: str | None = None  # Basic auth (security profile 1)
    meter_interval_s: float = 60.0  # MeterValueSampleInterval, wall seconds (changeable by the CSMS)
    profile_apply_delay_s: float = 1.0  # a new limit reaches the EV after this many wall seconds
    tick_s: float = 1.0  # physics step, wall seconds
    rules: ProfileRules = field(default_factory=ProfileRules)
    # The CSMS may change the rules' configuration keys / SmartChargingCtrlr variables (ChangeConfiguration /
    # SetVariables), and the change takes effect: a CSMS can rehearse stations that allow less. Real stations
    # report them read-only, as OCPP defines them: False does that.
    limits_writable: bool = True
    # --- beyond the design's minimum: connection behaviour -------------------------------------
    heartbeat_interval_s: float = 300.0  # until the CSMS's BootNotification answer says otherwise
    call_timeout_s: float = 30.0  # how long to wait for the CSMS's answer to a message
    reconnect_initial_s: float = 1.0  # first back-off after a lost connection ...
    reconnect_max_s: float = 60.0  # ... doubling up to this cap (each with random jitter)
    queue_limit: int = 1000  # offline queue: transaction messages and meter values kept at most
    reboot_s: float = 1.0  # how long a reset keeps the station off line

    def __post_init__(self) -> None:
        # A bad description is a scenario error: fail at construction, naming the field.
        if not self.station_id or "/" in self.station_id:
            raise ValueError(f"station_id must be a non-empty name without '/', not {self.station_id!r}")
        if not self.url.startswith(("ws://", "wss://")):
            raise ValueError(f"{self.station_id}: url must start with ws:// or wss://, not {self.url!r}")
        if self.ocpp_version not in OCPP_VERSIONS:
            raise ValueError(f"{self.station_id}: ocpp_version must be 1.6 or 2.0.1, not {self.ocpp_version!r}")
        if self.evse_count < 1:
            raise ValueError(f"{self.station_id}: evse_count must be at least 1, not {self.evse_count}")
        if self.phases not in (1, 3):
            raise ValueError(f"{self.station_id}: phases must be 1 or 3, not {self.phases}")
        for name in ("max_current_a", "voltage_v", "tick_s", "call_timeout_s", "reconnect_initial_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{self.station_id}: {name} must be positive, not {getattr(self, name)}")
        for name in ("meter_interval_s", "profile_apply_delay_s", "heartbeat_interval_s", "reboot_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{self.station_id}: {name} must not be negative, not {getattr(self, name)}")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError(f"{self.station_id}: reconnect_max_s must be at least reconnect_initial_s")
        if self.queue_limit < 1:
            raise ValueError(f"{self.station_id}: queue_limit must be at least 1, not {self.queue_limit}")

    @property
    def endpoint(self) -> str:
        """The websocket URL this station connects to."""
        return self.url.rstrip("/") + "/" + self.station_id

    @property
    def subprotocol(self) -> str:
        """The websocket subprotocol of its OCPP version."""
        return "ocpp1.6" if self.ocpp_version == "1.6" else "ocpp2.0.1"
