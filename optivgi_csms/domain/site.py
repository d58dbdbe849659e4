"""A site (Opti-VGI's "station group"): stations sharing a grid connection, its limits and prices."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from optivgi_csms.domain.time import format_timestamp, parse_timestamp

DEFAULT_SITE_ID = "default"
PHASES = ("L1", "L2", "L3")
#: The algorithms a site may use: the names of the scheduling core's ``ALGORITHMS`` (listed here so the
#: domain imports no solver; a test keeps the two lists equal), the default first.
ALGORITHMS = ("lp", "pulp", "go", "uncontrolled", "edf", "llf")


@dataclass(frozen=True, slots=True)
class LimitStep:
    """From ``start`` on (until the next step) the value is ``value`` (kW for limits, per kWh for prices)."""

    start: datetime
    value: float

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("a step start must carry a time zone")


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """What the scheduler must respect at a site, and what it assumes when an EV says nothing.

    ``limit_kw`` is the connection limit (None: no limit); ``limit_schedule`` overrides it from each
    step on. ``phase_limits_a`` caps the current per phase. ``prices`` is a step function of the energy
    price (empty: price plays no role). A session whose EV gives no departure or energy is assumed to
    stay ``default_dwell_s`` and want ``default_energy_kwh``.
    """

    id: str
    name: str = ""
    limit_kw: float | None = None
    limit_schedule: tuple[LimitStep, ...] = ()
    phase_limits_a: dict[str, float] = field(default_factory=dict)
    prices: tuple[LimitStep, ...] = ()
    voltage_v: float = 230.0
    min_current_a: float = 6.0
    default_dwell_s: int = 8 * 3600
    default_energy_kwh: float = 20.0
    algorithm: str = "lp"
    resolution_s: int = 900
    horizon_s: int = 24 * 3600

    def __post_init__(self) -> None:
        if not self.id or len(self.id) > 48:
            raise ValueError("a site id is 1 to 48 characters")
        if self.limit_kw is not None and self.limit_kw < 0:
            raise ValueError("limit_kw must be 0 or more")
        if any(step.value < 0 for step in self.limit_schedule):
            raise ValueError("limit_schedule values must be 0 or more")
        unknown = set(self.phase_limits_a) - set(PHASES)
        if unknown:
            raise ValueError(f"phase_limits_a: unknown phase {sorted(unknown)[0]!r} (use L1, L2, L3)")
        if any(value < 0 for value in self.phase_limits_a.values()):
            raise ValueError("phase_limits_a values must be 0 or more")
        if not 100 <= self.voltage_v <= 1000:
            raise ValueError("voltage_v must be between 100 and 1000 V")
        if not 0 <= self.min_current_a <= 32:
            raise ValueError("min_current_a must be between 0 and 32 A")
        if self.default_dwell_s <= 0 or self.default_energy_kwh < 0:
            raise ValueError("default_dwell_s must be positive and default_energy_kwh 0 or more")
        if not 1 <= self.resolution_s <= self.horizon_s:
            raise ValueError("resolution_s must be at least 1 and at most horizon_s")
        if self.horizon_s // self.resolution_s > 2000:
            raise ValueError("horizon_s / resolution_s must be at most 2000 slots")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")

    @property
    def controlled(self) -> bool:
        """Whether there is anything to plan: a limit of some kind, or prices."""
        return self.limit_kw is not None or bool(self.limit_schedule) or bool(self.phase_limits_a) or bool(self.prices)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (API and storage)."""
        return {
            "id": self.id,
            "name": self.name,
            "limit_kw": self.limit_kw,
            "limit_schedule": [{"start": format_timestamp(s.start), "limit_kw": s.value} for s in self.limit_schedule],
            "phase_limits_a": dict(self.phase_limits_a),
            "prices": [{"start": format_timestamp(s.start), "price": s.value} for s in self.prices],
            "voltage_v": self.voltage_v,
            "min_current_a": self.min_current_a,
            "default_dwell_s": self.default_dwell_s,
            "default_energy_kwh": self.default_energy_kwh,
            "algorithm": self.algorithm,
            "resolution_s": self.resolution_s,
            "horizon_s": self.horizon_s,
        }


def steps_from_json(items: list[dict[str, Any]] | None, key: str) -> tuple[LimitStep, ...]:
    """Parse ``[{"start": ISO, key: value}, ...]`` into steps sorted by start."""
    steps = [LimitStep(parse_timestamp(item["start"]), float(item[key])) for item in items or []]
    return tuple(sorted(steps, key=lambda step: step.start))
