"""Reconnection back-off: exponential, capped, with random jitter.

Jitter matters for a site: when a CSMS restarts, every station loses its connection at the same
moment, and without it they would all knock again in lock step.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays before successive reconnection attempts: ``initial × 2^n`` up to ``cap``, each shortened
    by a random fraction of at most ``jitter`` (so the delay lies in ``[(1 - jitter) d, d]``)."""

    def __init__(
        self, initial_s: float, cap_s: float, *, jitter: float = 0.5, rng: random.Random | None = None
    ) -> None:
        if not initial_s > 0 or cap_s < initial_s:
            raise ValueError("back-off needs 0 < initial <= cap")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must lie in [0, 1)")
        self.initial_s = initial_s
        self.cap_s = cap_s
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        # The exponent is bounded so that a station off line for days does not overflow a float.
        ceiling = min(self.cap_s, self.initial_s * 2 ** min(self._failures, 60))
        self._failures += 1
        return ceiling * (1 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """Start again from ``initial`` (after a connection that worked)."""
        self._failures = 0

    @property
    def failures(self) -> int:
        """Attempts that failed since the last reset."""
        return self._failures
