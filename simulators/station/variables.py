"""The station's settings, seen as 1.6 configuration keys and as 2.0.1 device-model variables.

One set of values, two views: ``MeterValueSampleInterval`` (1.6) and
``SampledDataCtrlr.TxUpdatedInterval`` (2.0.1) are the same setting, so a station behaves the same
whichever version it speaks. The CSMS reads and writes them (GetConfiguration/ChangeConfiguration,
GetVariables/SetVariables/GetBaseReport); the station reads them where they matter (intervals,
authorization, smart-charging limits), so a change takes effect. Mutability follows the
specifications: capabilities (stack levels, periods, units) are read-only, behaviour is writable.

2.0.1 also reports a few live readings per EVSE (``EVSE.AvailabilityState`` ...), added by the
station with :meth:`StationVariables.add_reading`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from optivgi_csms.domain.charging_profile import RateUnit

# Measurands the meter can sample (see metering.py).
MEASURANDS = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
    "Current.Import",
    "Current.Offered",
    "Voltage",
    "SoC",
)
_UNIT_NAMES_16 = {RateUnit.AMPERE: "Current", RateUnit.WATT: "Power"}


class InvalidValue(ValueError):
    """A value the setting does not take; the message says why."""


@dataclass(frozen=True)
class Kind:
    """How a setting's value is read from and written as text (both versions use text)."""

    data_type: str  # the 2.0.1 dataType
    minimum: float | None = None
    choices: tuple[str, ...] | None = None  # MemberList members

    def parse(self, text: str) -> Any:
        """The value ``text`` stands for; raises :class:`InvalidValue`."""
        text = text.strip()
        if self.data_type == "boolean":
            if text.lower() not in ("true", "false"):
                raise InvalidValue(f"{text!r} is not true or false")
            return text.lower() == "true"
        if self.data_type in ("integer", "decimal"):
            try:
                number = int(text) if self.data_type == "integer" else float(text)
            except ValueError:
                kind = "an integer" if self.data_type == "integer" else "a number"
                raise InvalidValue(f"{text!r} is not {kind}") from None
            if number != number or number in (float("inf"), float("-inf")):
                raise InvalidValue(f"{text!r} is not a finite number")
            if self.minimum is not None and number < self.minimum:
                raise InvalidValue(f"{text} is below the minimum {self.minimum:g}")
            return number
        if self.data_type == "MemberList":
            members = tuple(item.strip() for item in text.split(",") if item.strip())
            unknown = [item for item in members if self.choices is not None and item not in self.choices]
            if unknown:
                raise InvalidValue(f"{', '.join(unknown)} not supported (choose from {', '.join(self.choices or ())})")
            if self.minimum is not None and len(members) < self.minimum:
                raise InvalidValue(f"at least {self.minimum:g} of {', '.join(self.choices or ())} needed")
            return members
        return text

    def format(self, value: Any) -> str:
        """``value`` as OCPP text."""
        if self.data_type == "boolean":
            return "true" if value else "false"
        if self.data_type == "decimal":
            return str(int(value)) if float(value).is_integer() else str(float(value))
        if self.data_type == "MemberList":
            return ",".join(value)
        return str(value)


INTEGER = Kind("integer", minimum=0)
SECONDS = Kind("decimal", minimum=0)  # whole seconds in OCPP; fractions accepted for fast simulations
BOOLEAN = Kind("boolean")
TEXT = Kind("string")
MEASURAND_LIST = Kind("MemberList", choices=MEASURANDS)


@dataclass(frozen=True)
class VariableName:
    """Where a setting lives in the 2.0.1 device model."""

    component: str
    variable: str
    variable_instance: str | None = None


@dataclass
class Setting:
    """One setting: its names in each version, its kind, whether the CSMS may write it, its value."""

    name: str
    key16: str | None
    var201: VariableName | None
    kind: Kind
    value: Any
    read_only: bool = False
    unit: str | None = None  # the 2.0.1 characteristic unit ("s", "Percent")


@dataclass(frozen=True)
class Reading:
    """A live 2.0.1 variable of one EVSE (or of the station, ``evse_id`` None): read-only."""

    component: str
    variable: str
    evse_id: int | None
    read: Callable[[], str]
    data_type: str = "string"
    unit: str | None = None


def default_settings(
    *,
    evse_count: int,
    heartbeat_interval_s: float,
    meter_interval_s: float,
    max_stack_level: int,
    rate_units: frozenset[RateUnit],
    max_periods: int,
    max_profiles: int,
    limits_writable: bool = False,
) -> list[Setting]:
    """The settings of a station built from its configuration, with realistic defaults for the rest.

    The smart-charging capabilities (stack levels, rate units, periods, profiles) are read-only, as
    the specifications define them, unless ``limits_writable``: then a CSMS may change them too, to
    rehearse how it copes with stations that allow less.
    """
    comm, sampled, smart, auth, tx = "OCPPCommCtrlr", "SampledDataCtrlr", "SmartChargingCtrlr", "AuthCtrlr", "TxCtrlr"
    units = Kind("MemberList", choices=("A", "W"), minimum=1)
    positive = Kind("integer", minimum=1)
    fixed = not limits_writable
    return [
        Setting(
            "heartbeat_interval",
            "HeartbeatInterval",
            VariableName(comm, "HeartbeatInterval"),
            SECONDS,
            heartbeat_interval_s,
            unit="s",
        ),
        Setting(
            "meter_interval",
            "MeterValueSampleInterval",
            VariableName(sampled, "TxUpdatedInterval"),
            SECONDS,
            meter_interval_s,
            unit="s",
        ),
        Setting(
            "sampled_data",
            "MeterValuesSampledData",
            VariableName(sampled, "TxUpdatedMeasurands"),
            MEASURAND_LIST,
            ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Current.Offered", "SoC"),
        ),
        Setting(
            "stop_sampled_data",
            "StopTxnSampledData",
            VariableName(sampled, "TxEndedMeasurands"),
            MEASURAND_LIST,
            ("Energy.Active.Import.Register",),
        ),
        Setting(
            "max_stack_level",
            "ChargeProfileMaxStackLevel",
            VariableName(smart, "ProfileStackLevel"),
            INTEGER,
            max_stack_level,
            read_only=fixed,
        ),
        Setting(
            "rate_units",
            "ChargingScheduleAllowedChargingRateUnit",
            VariableName(smart, "RateUnit"),
            units,
            tuple(unit.value for unit in RateUnit if unit in rate_units),
            read_only=fixed,
        ),
        Setting(
            "max_periods",
            "ChargingScheduleMaxPeriods",
            VariableName(smart, "PeriodsPerSchedule"),
            positive,
            max_periods,
            read_only=fixed,
        ),
        Setting(
            "max_profiles",
            "MaxChargingProfilesInstalled",
            VariableName(smart, "Entries", "ChargingProfiles"),
            positive,
            max_profiles,
            read_only=fixed,
        ),
        Setting("smart_charging_enabled", None, VariableName(smart, "Enabled"), BOOLEAN, True),
        Setting(
            "limit_change_significance",
            None,
            VariableName(smart, "LimitChangeSignificance"),
            Kind("decimal", minimum=0),
            10.0,
            unit="Percent",
        ),
        Setting("number_of_connectors", "NumberOfConnectors", None, INTEGER, evse_count, read_only=True),
        Setting(
            "authorize_remote", "AuthorizeRemoteTxRequests", VariableName(auth, "AuthorizeRemoteStart"), BOOLEAN, False
        ),
        Setting(
            "local_authorize_offline",
            "LocalAuthorizeOffline",
            VariableName(auth, "LocalAuthorizeOffline"),
            BOOLEAN,
            True,
        ),
        Setting("local_pre_authorize", "LocalPreAuthorize", VariableName(auth, "LocalPreAuthorize"), BOOLEAN, False),
        # A simulated site keeps charging arrivals through a CSMS outage: unknown tags are allowed off line.
        Setting(
            "allow_offline_unknown",
            "AllowOfflineTxForUnknownId",
            VariableName(auth, "OfflineTxForUnknownIdEnabled"),
            BOOLEAN,
            True,
        ),
        Setting(
            "auth_cache_enabled", "AuthorizationCacheEnabled", VariableName("AuthCacheCtrlr", "Enabled"), BOOLEAN, True
        ),
        Setting(
            "stop_on_invalid_id", "StopTransactionOnInvalidId", VariableName(tx, "StopTxOnInvalidId"), BOOLEAN, True
        ),
        Setting(
            "connection_timeout", "ConnectionTimeOut", VariableName(tx, "EVConnectionTimeOut"), SECONDS, 60.0, unit="s"
        ),
        Setting("tx_start_point", None, VariableName(tx, "TxStartPoint"), TEXT, "PowerPathClosed", read_only=True),
        Setting("tx_stop_point", None, VariableName(tx, "TxStopPoint"), TEXT, "PowerPathClosed", read_only=True),
        Setting(
            "message_attempts",
            "TransactionMessageAttempts",
            VariableName(comm, "MessageAttempts", "TransactionEvent"),
            Kind("integer", minimum=1),
            3,
        ),
        Setting(
            "message_retry_interval",
            "TransactionMessageRetryInterval",
            VariableName(comm, "MessageAttemptInterval", "TransactionEvent"),
            SECONDS,
            5.0,
            unit="s",
        ),
        Setting(
            "reserve_connector_zero",
            "ReserveConnectorZeroSupported",
            VariableName("ReservationCtrlr", "NonEvseSpecific"),
            BOOLEAN,
            True,
            read_only=True,
        ),
        Setting(
            "supported_profiles",
            "SupportedFeatureProfiles",
            None,
            TEXT,
            "Core,Reservation,SmartCharging,RemoteTrigger",
            read_only=True,
        ),
        Setting("get_configuration_max_keys", "GetConfigurationMaxKeys", None, INTEGER, 100, read_only=True),
        # Core keys every 1.6 station has; stored and reported, with no further effect in the simulation.
        Setting(
            "clock_aligned_interval",
            "ClockAlignedDataInterval",
            VariableName("AlignedDataCtrlr", "Interval"),
            SECONDS,
            0.0,
            unit="s",
        ),
        Setting(
            "aligned_data", "MeterValuesAlignedData", VariableName("AlignedDataCtrlr", "Measurands"), MEASURAND_LIST, ()
        ),
        Setting(
            "stop_aligned_data",
            "StopTxnAlignedData",
            VariableName("AlignedDataCtrlr", "TxEndedMeasurands"),
            MEASURAND_LIST,
            (),
        ),
        Setting("connector_phase_rotation", "ConnectorPhaseRotation", None, TEXT, "NotApplicable"),
        Setting("reset_retries", "ResetRetries", None, INTEGER, 1),
        Setting(
            "stop_on_ev_disconnect",
            "StopTransactionOnEVSideDisconnect",
            VariableName(tx, "StopTxOnEVSideDisconnect"),
            BOOLEAN,
            True,
            read_only=True,
        ),
        Setting("unlock_on_ev_disconnect", "UnlockConnectorOnEVSideDisconnect", None, BOOLEAN, True),
        Setting(
            "websocket_ping_interval",
            "WebSocketPingInterval",
            VariableName(comm, "WebSocketPingInterval"),
            INTEGER,
            0,
            unit="s",
        ),
    ]


class StationVariables:
    """The settings of one station and both views of them."""

    def __init__(self, settings: Iterable[Setting]) -> None:
        self._settings = {setting.name: setting for setting in settings}
        self._by_key16 = {s.key16.lower(): s for s in self._settings.values() if s.key16}
        self._by_var201 = {
            (s.var201.component, s.var201.variable, s.var201.variable_instance): s
            for s in self._settings.values()
            if s.var201
        }
        self._readings: dict[tuple[str, str, int | None], Reading] = {}
        self._listeners: list[Callable[[str], None]] = []

    # --- the station's own view ----------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self._settings[name].value

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(name)`` after the CSMS (or the station) changes a setting."""
        self._listeners.append(listener)

    def set(self, name: str, value: Any) -> None:
        """Set a value directly (the station itself, e.g. the heartbeat interval a boot answer gives)."""
        self._settings[name].value = value
        for listener in self._listeners:
            listener(name)

    def add_reading(self, reading: Reading) -> None:
        """A live 2.0.1 variable, e.g. an EVSE's availability."""
        self._readings[(reading.component, reading.variable, reading.evse_id)] = reading

    def rate_units(self) -> frozenset[RateUnit]:
        """The charging-rate units profiles may use."""
        return frozenset(RateUnit(unit) for unit in self["rate_units"])

    def _write(self, setting: Setting, text: str) -> str | None:
        """Write a value from the CSMS; None when done, else why not."""
        if setting.read_only:
            return "read-only"
        try:
            value = setting.kind.parse(text)
        except InvalidValue as error:
            return str(error)
        self.set(setting.name, value)
        return None

    # --- OCPP 1.6: configuration keys ----------------------------------------------------------

    def configuration16(self, keys: Iterable[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
        """GetConfiguration: the ``configuration_key`` entries asked for (all when ``keys`` is empty) and
        the unknown keys."""
        wanted = list(keys or [])
        found = [self._by_key16.get(key.lower()) for key in wanted] if wanted else list(self._by_key16.values())
        entries = [
            {"key": s.key16, "readonly": s.read_only, "value": _to_16(s, s.kind.format(s.value))[:500]}
            for s in found
            if s is not None
        ]
        unknown = [key for key, s in zip(wanted, found, strict=True) if s is None] if wanted else []
        return entries, unknown

    def change16(self, key: str, value: str) -> str:
        """ChangeConfiguration: ``Accepted``, ``Rejected`` or ``NotSupported``."""
        setting = self._by_key16.get(key.lower())
        if setting is None:
            return "NotSupported"
        return "Accepted" if self._write(setting, _from_16(setting, value)) is None else "Rejected"

    # --- OCPP 2.0.1: device-model variables ----------------------------------------------------

    def get201(
        self, component: str, variable: str, instance: str | None, evse_id: int | None
    ) -> tuple[str, str | None]:
        """GetVariables for one (Actual) attribute: (attributeStatus, value)."""
        setting, reading, status = self._find201(component, variable, instance, evse_id)
        if setting is not None:
            return "Accepted", setting.kind.format(setting.value)
        if reading is not None:
            return "Accepted", reading.read()
        return status, None

    def set201(
        self, component: str, variable: str, instance: str | None, evse_id: int | None, value: str
    ) -> tuple[str, str | None]:
        """SetVariables for one (Actual) attribute: (attributeStatus, reason when refused)."""
        setting, reading, status = self._find201(component, variable, instance, evse_id)
        if reading is not None:
            return "Rejected", "read-only"
        if setting is None:
            return status, None
        why = self._write(setting, value)
        return ("Accepted", None) if why is None else ("Rejected", why)

    def _find201(
        self, component: str, variable: str, instance: str | None, evse_id: int | None
    ) -> tuple[Setting | None, Reading | None, str]:
        if evse_id is None:
            setting = self._by_var201.get((component, variable, instance))
            if setting is not None:
                return setting, None, "Accepted"
        reading = self._readings.get((component, variable, evse_id))
        if reading is not None:
            return None, reading, "Accepted"
        components = {name for name, _, _ in self._by_var201} | {name for name, _, _ in self._readings}
        evses = {evse for name, _, evse in self._readings if name == component}
        if component not in components or (evse_id is not None and evse_id not in evses):
            return None, None, "UnknownComponent"
        return None, None, "UnknownVariable"

    def report201(self, base: str) -> list[dict[str, Any]]:
        """NotifyReport ``report_data`` for a GetBaseReport (snake_case keys).

        ConfigurationInventory: the settings; FullInventory: the settings and the live readings;
        SummaryInventory: the live readings (availability).
        """
        entries: list[dict[str, Any]] = []
        if base in ("ConfigurationInventory", "FullInventory"):
            for setting in self._settings.values():
                if setting.var201 is None:
                    continue
                name = setting.var201
                entries.append(
                    {
                        "component": {"name": name.component},
                        "variable": {"name": name.variable, "instance": name.variable_instance},
                        "variable_attribute": [
                            {
                                "type": "Actual",
                                "value": setting.kind.format(setting.value),
                                "mutability": "ReadOnly" if setting.read_only else "ReadWrite",
                                "persistent": True,
                                "constant": setting.read_only,
                            }
                        ],
                        "variable_characteristics": _characteristics(setting.kind, setting.unit),
                    }
                )
        if base in ("FullInventory", "SummaryInventory"):
            for reading in self._readings.values():
                component: dict[str, Any] = {"name": reading.component}
                if reading.evse_id is not None:
                    component["evse"] = {"id": reading.evse_id}
                entries.append(
                    {
                        "component": component,
                        "variable": {"name": reading.variable},
                        "variable_attribute": [{"type": "Actual", "value": reading.read(), "mutability": "ReadOnly"}],
                        "variable_characteristics": {
                            "data_type": reading.data_type,
                            "supports_monitoring": False,
                            **({"unit": reading.unit} if reading.unit else {}),
                        },
                    }
                )
        return entries


def _characteristics(kind: Kind, unit: str | None) -> dict[str, Any]:
    characteristics: dict[str, Any] = {"data_type": kind.data_type, "supports_monitoring": False}
    if unit:
        characteristics["unit"] = unit
    if kind.choices:
        characteristics["values_list"] = ",".join(kind.choices)
    return characteristics


def _to_16(setting: Setting, text: str) -> str:
    # 1.6 names the rate units Current and Power where 2.0.1 says A and W.
    if setting.name == "rate_units":
        return ",".join(_UNIT_NAMES_16[RateUnit(unit)] for unit in text.split(",") if unit)
    return text


def _from_16(setting: Setting, text: str) -> str:
    if setting.name == "rate_units":
        names = {name: unit.value for unit, name in _UNIT_NAMES_16.items()}
        return ",".join(names.get(item.strip(), item.strip()) for item in text.split(","))
    return text
