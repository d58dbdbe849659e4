"""Every scheduling algorithm, by the short name the command line and the benchmarks use."""

from __future__ import annotations

from optivgi_csms.scheduling.algorithm import Algorithm
from optivgi_csms.scheduling.algorithms.baselines import (
    EarliestDeadlineFirst,
    LeastLaxityFirst,
    UncontrolledAlgorithm,
)
from optivgi_csms.scheduling.algorithms.go import GoAlgorithm
from optivgi_csms.scheduling.algorithms.lp import LPAlgorithm
from optivgi_csms.scheduling.algorithms.pulp import PulpNumericalAlgorithm

#: Name → class; the first entry is the default.
ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.name: cls
    for cls in (
        LPAlgorithm,
        PulpNumericalAlgorithm,
        GoAlgorithm,
        UncontrolledAlgorithm,
        EarliestDeadlineFirst,
        LeastLaxityFirst,
    )
}
DEFAULT_ALGORITHM = LPAlgorithm.name

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "EarliestDeadlineFirst",
    "GoAlgorithm",
    "LPAlgorithm",
    "LeastLaxityFirst",
    "PulpNumericalAlgorithm",
    "UncontrolledAlgorithm",
]
