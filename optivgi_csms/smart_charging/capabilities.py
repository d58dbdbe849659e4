"""What a station's smart charging can do: read once after each accepted boot, stored on the station.

A station that is sent more than it supports rejects the profile, so every profile is shaped by these:
the rate units it accepts, its highest stack level, how many periods a schedule may have, whether its
smart charging is on at all. OCPP 1.6 reports them as configuration keys, 2.0.1 as SmartChargingCtrlr
variables; both become one :class:`Capabilities`. What a station does not report stays ``None`` and a
cautious default applies (stack level 0, a modest number of periods, either unit).

A rejection can teach more than a station reports (real stations claim stack levels they refuse):
:meth:`Capabilities.learned` records what was accepted instead, and the next profiles use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from optivgi_csms.domain.charging_profile import RateUnit
from optivgi_csms.domain.device_model import VariableRef, VariableResult
from optivgi_csms.domain.time import format_timestamp
from optivgi_csms.logs import get_logger
from optivgi_csms.protocol.commands import ConfigurationKey, StationCommands
from optivgi_csms.protocol.errors import CommandError, CommandNotSupportedError

log = get_logger(__name__)

#: Periods assumed when a station does not say (OCPP 1.6 makes ChargingScheduleMaxPeriods mandatory for
#: smart charging; chargers seen in the field take 10 to 50).
DEFAULT_MAX_PERIODS = 24
#: The stack level a Tx profile is sent at when the station allows it: above 0, so that a station that
#: claims levels it cannot take shows it at once and the retry at level 0 is a real alternative.
PREFERRED_TX_STACK_LEVEL = 1

# OCPP 1.6 configuration keys and the field each fills.
KEYS_16 = (
    "ChargeProfileMaxStackLevel",
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods",
    "MaxChargingProfilesInstalled",
    "NumberOfConnectors",
    "SupportedFeatureProfiles",
)
SMART = "SmartChargingCtrlr"
# OCPP 2.0.1 SmartChargingCtrlr variables (variable, instance).
VARIABLES_201: tuple[tuple[str, str | None], ...] = (
    ("Enabled", None),
    ("RateUnit", None),
    ("PeriodsPerSchedule", None),
    ("ProfileStackLevel", None),
    ("LimitChangeSignificance", None),
    ("Entries", "ChargingProfiles"),
)
# 1.6 names the units Current and Power; 2.0.1 says A and W.
_UNIT_WORDS = {"a": "A", "current": "A", "w": "W", "power": "W"}


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A station's smart-charging capabilities; ``None`` where the station did not say."""

    #: Units the station accepts in a charging schedule ("A", "W"); empty when unknown.
    rate_units: tuple[str, ...] = ()
    max_stack_level: int | None = None
    max_periods: int | None = None
    max_profiles: int | None = None
    #: False when the station's smart charging is off or absent (then it is never sent profiles).
    enabled: bool | None = None
    #: 2.0.1 LimitChangeSignificance: a change smaller than this percentage is not worth reporting.
    limit_change_significance_pct: float | None = None
    #: 1.6 NumberOfConnectors (each is an EVSE).
    evse_count: int | None = None
    #: Where the values came from: GetConfiguration, GetVariables, or none (the read failed).
    source: str = "none"
    read_at: str | None = None
    #: What a rejection taught beyond the report (e.g. "stack level 0 only").
    learned_note: str | None = None

    # --- interpretation ---------------------------------------------------------------------

    @property
    def controllable(self) -> bool:
        """Whether the station can be sent profiles at all."""
        return self.enabled is not False

    def allows(self, unit: RateUnit) -> bool:
        """Whether ``unit`` is allowed (unknown allowance allows both)."""
        return not self.rate_units or unit.value in self.rate_units

    def preferred_unit(self, *, dc: bool = False) -> RateUnit:
        """A for AC (W depends on the station's own voltage assumption) unless only W is allowed; W for DC
        unless only A is allowed."""
        first, second = (RateUnit.WATT, RateUnit.AMPERE) if dc else (RateUnit.AMPERE, RateUnit.WATT)
        return first if self.allows(first) or not self.allows(second) else second

    def stack_level(self, preferred: int = PREFERRED_TX_STACK_LEVEL) -> int:
        """The stack level to use: ``preferred``, lowered to what the station reports (0 when unknown)."""
        highest = self.max_stack_level if self.max_stack_level is not None else 0
        return max(0, min(preferred, highest))

    def periods(self, ev_limit: int | None = None) -> int:
        """How many periods a schedule may have: the station's limit and the EV's (ISO 15118
        maxScheduleTuples), whichever is lower; at least 1."""
        limits = [self.max_periods if self.max_periods is not None else DEFAULT_MAX_PERIODS]
        if ev_limit is not None and ev_limit > 0:
            limits.append(ev_limit)
        return max(1, min(limits))

    def learned(self, *, unit: RateUnit | None = None, stack_level: int | None = None) -> Capabilities:
        """These capabilities after a retry was accepted with ``unit`` or at ``stack_level``."""
        changes: dict[str, Any] = {}
        notes = []
        if unit is not None:
            changes["rate_units"] = (unit.value,)
            notes.append(f"accepts only {unit.value}")
        if stack_level is not None:
            changes["max_stack_level"] = stack_level
            notes.append(f"accepts stack level {stack_level} at most")
        return dataclasses.replace(self, **changes, learned_note="; ".join(notes) or self.learned_note)

    # --- storage ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored in ``stations.capabilities``."""
        data = dataclasses.asdict(self)
        data["rate_units"] = list(self.rate_units)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Capabilities:
        """Inverse of :meth:`to_dict`; unknown or missing keys are ignored (``None`` gives the defaults)."""
        if not data:
            return cls()
        names = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        values["rate_units"] = tuple(values.get("rate_units") or ())
        try:
            return cls(**values)
        except TypeError:
            return cls()


# --- reading ------------------------------------------------------------------------------------


def _integer(text: str | None) -> int | None:
    try:
        return int(float(text)) if text is not None and text.strip() else None
    except ValueError:
        return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None and text.strip() else None
    except ValueError:
        return None


def _units(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    found = {_UNIT_WORDS.get(word.strip().lower()) for word in text.replace(";", ",").split(",")}
    return tuple(unit for unit in ("A", "W") if unit in found)


def _boolean(text: str | None) -> bool | None:
    if text is None:
        return None
    word = text.strip().lower()
    return True if word in ("true", "1") else False if word in ("false", "0") else None


def from_configuration(keys: Iterable[ConfigurationKey], now: datetime) -> Capabilities:
    """Capabilities from OCPP 1.6 configuration keys."""
    values = {key.key: key.value for key in keys}
    features = values.get("SupportedFeatureProfiles")
    enabled = None
    if features:
        enabled = "smartcharging" in {word.strip().lower() for word in features.split(",")}
    return Capabilities(
        rate_units=_units(values.get("ChargingScheduleAllowedChargingRateUnit")),
        max_stack_level=_integer(values.get("ChargeProfileMaxStackLevel")),
        max_periods=_integer(values.get("ChargingScheduleMaxPeriods")),
        max_profiles=_integer(values.get("MaxChargingProfilesInstalled")),
        enabled=enabled,
        evse_count=_integer(values.get("NumberOfConnectors")),
        source="GetConfiguration",
        read_at=format_timestamp(now),
    )


def from_variables(results: Iterable[VariableResult], now: datetime) -> Capabilities:
    """Capabilities from OCPP 2.0.1 SmartChargingCtrlr variables."""
    values = {
        (result.ref.variable, result.ref.variable_instance): result.value
        for result in results
        if result.accepted and result.ref.component == SMART
    }
    return Capabilities(
        rate_units=_units(values.get(("RateUnit", None))),
        max_stack_level=_integer(values.get(("ProfileStackLevel", None))),
        max_periods=_integer(values.get(("PeriodsPerSchedule", None))),
        max_profiles=_integer(values.get(("Entries", "ChargingProfiles"))),
        enabled=_boolean(values.get(("Enabled", None))),
        limit_change_significance_pct=_number(values.get(("LimitChangeSignificance", None))),
        source="GetVariables",
        read_at=format_timestamp(now),
    )


async def read_capabilities(commands: StationCommands, now: datetime) -> Capabilities:
    """Ask a connected station for its capabilities (GetConfiguration, or GetVariables where the version
    has no configuration keys). A station that cannot answer gets the defaults, never an error: smart
    charging then learns from its answers to profiles."""
    try:
        try:
            answer = await commands.get_configuration(KEYS_16)
        except CommandNotSupportedError:
            refs = [VariableRef(SMART, variable, variable_instance=instance) for variable, instance in VARIABLES_201]
            return from_variables(await commands.get_variables(refs), now)
        return from_configuration(answer.keys, now)
    except CommandError as error:
        log.info("capabilities not read", station_id=commands.station_id, error=str(error))
        return Capabilities(read_at=format_timestamp(now))
