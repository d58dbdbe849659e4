"""The station side of OCPP smart charging: installed profiles, their rules, the limit in force.

Pure models shared by the 1.6 and 2.0.1 simulated stations: no I/O, every call gets the time.
"""

from __future__ import annotations

from .composite import (
    DAY_S,
    DEFAULT_NUMBER_PHASES,
    WEEK_S,
    Candidate,
    composite_schedule,
    from_per_phase_a,
    per_phase_a,
    period_in_force,
)
from .profiles import DEFAULT_MAX_CURRENT_A, InstalledProfile, ProfileRules, ProfileStore

__all__ = [
    "DAY_S",
    "DEFAULT_MAX_CURRENT_A",
    "DEFAULT_NUMBER_PHASES",
    "WEEK_S",
    "Candidate",
    "InstalledProfile",
    "ProfileRules",
    "ProfileStore",
    "composite_schedule",
    "from_per_phase_a",
    "per_phase_a",
    "period_in_force",
]
