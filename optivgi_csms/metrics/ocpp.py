"""The OCPP series of one protocol version, with label children cached for the receive loop.

Action names come from the stations, so they are never used as label values as they are: an action the
version does not define is counted as ``unknown``, a frame that is not a readable OCPP message as
``invalid_frame``, and a station's CALLRESULT or CALLERROR (an answer to the CSMS's own request) as
``answer``. OCPP action names are CamelCase, so these lower-case values cannot clash with one. A station
sending a million made-up actions therefore adds one series, not a million.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Histogram

UNKNOWN_ACTION = "unknown"
INVALID_FRAME = "invalid_frame"
ANSWER = "answer"


@dataclass(frozen=True, slots=True)
class CallSeries:
    """The children counting one action's CALLs and timing their handling."""

    received: Counter
    latency: Histogram


class OcppMetrics:
    """Counters and latency of one OCPP version (shared by every connection of that version)."""

    __slots__ = ("_actions", "_answers", "_calls", "_errors", "_invalid", "_latency", "_received", "_sent", "version")

    def __init__(
        self, version: str, actions: frozenset[str], received: Counter, errors_sent: Counter, latency: Histogram
    ) -> None:
        self.version = version
        self._actions = actions
        self._received = received
        self._sent = errors_sent
        self._latency = latency
        self._calls: dict[str, CallSeries] = {}
        self._errors: dict[tuple[str, str], Counter] = {}
        self._answers = received.labels(version, ANSWER)
        self._invalid = received.labels(version, INVALID_FRAME)

    def call(self, action: str) -> CallSeries:
        """The series of a received CALL's action (``unknown`` for actions the version does not define)."""
        series = self._calls.get(action)
        if series is None:
            label = self._label(action)
            series = self._calls.get(label)
            if series is None:
                series = CallSeries(
                    self._received.labels(self.version, label), self._latency.labels(self.version, label)
                )
                self._calls[label] = series
        return series

    def _label(self, action: str) -> str:
        return action if action in self._actions else UNKNOWN_ACTION

    def answer_received(self) -> None:
        """Count a CALLRESULT or CALLERROR from the station."""
        self._answers.inc()

    def invalid_frame(self) -> None:
        """Count a frame that is not a readable OCPP message."""
        self._invalid.inc()

    def error_sent(self, action: str | None, code: str) -> None:
        """Count a CALLERROR sent for ``action`` (None: for a frame that named none readably)."""
        label = INVALID_FRAME if action is None else self._label(action)
        # Error codes are the CSMS's own (a dozen OCPP codes), so they are safe as label values.
        key = (label, code)
        child = self._errors.get(key)
        if child is None:
            child = self._errors[key] = self._sent.labels(self.version, label, code)
        child.inc()
