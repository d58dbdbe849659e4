"""Meter samples as stations report them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The specification's defaults for optional sampled-value fields (same in 1.6 and 2.0.1); they are
# stored explicitly so that every row says what it measures.
DEFAULT_MEASURAND = "Energy.Active.Import.Register"
DEFAULT_CONTEXT = "Sample.Periodic"
DEFAULT_LOCATION = "Outlet"
DEFAULT_FORMAT = "Raw"
DEFAULT_UNIT = {"Energy.Active.Import.Register": "Wh"}


@dataclass(frozen=True, slots=True)
class SampledValue:
    """One sampled value at one moment: a measurand, maybe per phase, with its unit."""

    timestamp: datetime
    value: str
    measurand: str = DEFAULT_MEASURAND
    phase: str | None = None
    unit: str | None = None
    context: str = DEFAULT_CONTEXT
    location: str = DEFAULT_LOCATION
    format: str = DEFAULT_FORMAT
    # 2.0.1 signedMeterValue, as sent (signed data, signing method, encoding, public key).
    signed_data: dict[str, Any] | None = None

    @property
    def numeric(self) -> float | None:
        """The value as a finite number, or None (signed data, or not a number)."""
        if self.format != "Raw":
            return None
        try:
            number = float(self.value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None


def energy_register_wh(sample: SampledValue) -> float | None:
    """The reading of the total imported-energy register in Wh, or None if ``sample`` is not one.

    Only the register itself counts (no phase, a plain number in Wh or kWh): it rises
    monotonically, so the smallest reading of a session is its start and the largest its end.
    """
    if sample.measurand != DEFAULT_MEASURAND or sample.phase is not None:
        return None
    number = sample.numeric
    if number is None:
        return None
    unit = (sample.unit or "Wh").lower()
    if unit == "wh":
        return number
    if unit == "kwh":
        return number * 1000
    return None
