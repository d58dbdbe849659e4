"""The OCPP 2.0.1 device model: components and variables a station reports and the CSMS reads and sets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VariableRef:
    """One attribute of one variable of one component, e.g. ``SmartChargingCtrlr.RateUnit`` (Actual)."""

    component: str
    variable: str
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    attribute: str = "Actual"

    def __str__(self) -> str:
        component = f"{self.component}[{self.component_instance}]" if self.component_instance else self.component
        variable = f"{self.variable}[{self.variable_instance}]" if self.variable_instance else self.variable
        where = f"@evse{self.evse_id}" if self.evse_id is not None else ""
        return f"{component}{where}.{variable}/{self.attribute}"


@dataclass(frozen=True, slots=True)
class ReportedVariable:
    """A variable attribute as a station described it in NotifyReport."""

    ref: VariableRef
    value: str | None
    mutability: str | None = None
    persistent: bool | None = None
    constant: bool | None = None
    data_type: str | None = None
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: str | None = None


@dataclass(frozen=True, slots=True)
class VariableResult:
    """A station's answer for one variable of GetVariables or SetVariables."""

    ref: VariableRef
    status: str
    value: str | None = None
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        """Whether the station read or applied the value."""
        return self.status == "Accepted"
