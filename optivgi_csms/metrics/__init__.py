"""Prometheus metrics of one CSMS.

:class:`CsmsMetrics` (``csms.metrics``) owns its own ``CollectorRegistry``: several CSMSs in one process
(as in the tests) never share a series. The parts that feed it get it passed in; nothing here is global.
The OCPP receive loop uses :class:`OcppMetrics`, which hands out prometheus-client's label children once
per action so that counting a message costs a dictionary look-up and two increments.
"""

from optivgi_csms.metrics.ocpp import ANSWER, INVALID_FRAME, UNKNOWN_ACTION, CallSeries, OcppMetrics
from optivgi_csms.metrics.series import CONTENT_TYPE, CsmsMetrics

__all__ = [
    "ANSWER",
    "CONTENT_TYPE",
    "INVALID_FRAME",
    "UNKNOWN_ACTION",
    "CallSeries",
    "CsmsMetrics",
    "OcppMetrics",
]
