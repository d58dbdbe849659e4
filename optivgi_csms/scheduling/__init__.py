"""Smart-charging scheduling core: pure Python and numpy, no I/O.

The names follow Opti-VGI so that its users can port a ``Translation`` or an ``Algorithm``: :class:`EV`,
:class:`Algorithm` (``__init__(evs, peak_power_demand, now)``, ``calculate()``, ``get_charging_profiles()``),
:class:`Translation`, :func:`scm_runner`, and the algorithms ``LPAlgorithm`` (default),
``PulpNumericalAlgorithm``, ``GoAlgorithm`` and the baselines.
"""

from __future__ import annotations

# numpy imports numpy.ma on the first call of np.unique (8-15 ms): import it with the package, not inside
# the first schedule the server computes.
import numpy.ma  # noqa: F401

from optivgi_csms.scheduling.algorithm import (
    DEFAULT_HORIZON,
    DEFAULT_RESOLUTION,
    Algorithm,
    ScheduleResult,
    Shortfall,
    Solution,
)
from optivgi_csms.scheduling.algorithms import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    EarliestDeadlineFirst,
    GoAlgorithm,
    LeastLaxityFirst,
    LPAlgorithm,
    PulpNumericalAlgorithm,
    UncontrolledAlgorithm,
)
from optivgi_csms.scheduling.ev import EV, ChargingPeriod, ChargingProfile, ChargingRateUnit
from optivgi_csms.scheduling.metrics import Metrics, compute_metrics
from optivgi_csms.scheduling.problem import Problem
from optivgi_csms.scheduling.site import Site, Step
from optivgi_csms.scheduling.validate import Violation, validate

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_HORIZON",
    "DEFAULT_RESOLUTION",
    "EV",
    "Algorithm",
    "ChargingPeriod",
    "ChargingProfile",
    "ChargingRateUnit",
    "EarliestDeadlineFirst",
    "GoAlgorithm",
    "LPAlgorithm",
    "LeastLaxityFirst",
    "Metrics",
    "Problem",
    "PulpNumericalAlgorithm",
    "ScheduleResult",
    "Shortfall",
    "Site",
    "Solution",
    "Step",
    "UncontrolledAlgorithm",
    "Violation",
    "compute_metrics",
    "validate",
]
