"""The fail-safe profile: what every station applies if the CSMS disappears.

Each station gets a TxDefaultProfile (every connector, every future session) holding each EVSE to its
fair share of the site: the lowest connection limit the site states from now on, divided by the number
of EVSEs at the site, and likewise for per-phase limits. Tx profiles override it while the CSMS plans, so
it never stops one EV from taking the whole site's capacity; it only keeps the site within its limit when
the plans stop coming. A station's maximum profile would cap even the planned sessions, so it is not used.
"""

from __future__ import annotations

import math
from datetime import datetime

from optivgi_csms.domain.charging_profile import ChargingProfile, ProfilePurpose, RateUnit
from optivgi_csms.scheduling.ev import amps_from_kw
from optivgi_csms.smart_charging.profiles import FALLBACK_PROFILE_ID, Shape, constant_profile
from optivgi_csms.smart_charging.snapshot import SiteSnapshot, StationInfo

#: The fail-safe profile assumes three phases (the most a share can be drawn on).
FALLBACK_PHASES = 3


def fair_share_a(snapshot: SiteSnapshot, now: datetime) -> float | None:
    """Each EVSE's share of the site's tightest limit from ``now`` on, in A per phase (None: no limit)."""
    config = snapshot.config
    evses = max(snapshot.evse_count, 1)
    shares = []
    limits = [step.value for step in config.limit_schedule if step.start > now]
    in_force = [step.value for step in config.limit_schedule if step.start <= now]
    current = in_force[-1] if in_force else config.limit_kw
    if current is not None:
        limits.append(current)
    if limits:
        shares.append(amps_from_kw(min(limits) / evses, config.voltage_v, FALLBACK_PHASES))
    if config.phase_limits_a:
        shares.append(min(config.phase_limits_a.values()) / evses)
    return min(shares) if shares else None


def fallback_shapes(station: StationInfo) -> tuple[Shape, Shape]:
    """The station's preferred unit at stack level 0, then the other unit."""
    unit = station.capabilities.preferred_unit()
    other = RateUnit.WATT if unit is RateUnit.AMPERE else RateUnit.AMPERE
    return Shape(unit, 0, 1), Shape(other, 0, 1)


def fallback_profile(share_a: float, shape: Shape, voltage_v: float, now: datetime) -> ChargingProfile:
    """The fail-safe TxDefault profile for a share of ``share_a`` per phase, in ``shape``'s unit, rounded down."""
    value = share_a if shape.unit is RateUnit.AMPERE else share_a * voltage_v * FALLBACK_PHASES
    limit = math.floor(value * 10.0 + 1e-6) / 10.0
    start = now.replace(microsecond=0)
    purpose = ProfilePurpose.TX_DEFAULT
    return constant_profile(FALLBACK_PROFILE_ID, purpose, max(limit, 0.0), shape, start, FALLBACK_PHASES)


def same_limits(a: ChargingProfile | None, b: ChargingProfile) -> bool:
    """Whether two fail-safe profiles hold the same limit (their start does not matter)."""
    return (
        a is not None
        and a.schedule.unit is b.schedule.unit
        and a.stack_level == b.stack_level
        and a.schedule.periods[0].limit == b.schedule.periods[0].limit
    )
