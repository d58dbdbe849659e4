"""The live-event subscriptions of one API app, so that a stopping server ends every stream at once
(an event stream never ends by itself, and shutting down must not wait for it)."""

from __future__ import annotations

from typing import Any

from optivgi_csms.api.live.subscription import DEFAULT_CAPACITY, Subscription
from optivgi_csms.services.events import EventBus


class LiveEvents:
    """Opens subscriptions on ``bus`` and closes them all on :meth:`close_all`."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._subscriptions: set[Subscription] = set()
        self._stopping = False

    def __len__(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, types: frozenset[str] | None = None, capacity: int = DEFAULT_CAPACITY) -> Subscription:
        """A new open subscription (closed at once when the server is stopping)."""
        subscription = Subscription(self._bus, types, capacity)
        if self._stopping:
            subscription.close("server stopping")
            return subscription
        subscription.open()
        self._subscriptions.add(subscription)
        return subscription

    def release(self, subscription: Subscription) -> None:
        """Close ``subscription`` and forget it (its stream ended)."""
        subscription.close()
        self._subscriptions.discard(subscription)

    def close_all(self, reason: str = "server stopping") -> None:
        """End every stream: the server is stopping."""
        self._stopping = True
        for subscription in list(self._subscriptions):
            subscription.close(reason)
        self._subscriptions.clear()


def live_events(app: Any) -> LiveEvents:
    """The app's registry (created on first use, over its CSMS's event bus)."""
    registry: LiveEvents | None = getattr(app.state, "live_events", None)
    if registry is None:
        registry = LiveEvents(app.state.csms.services.bus)
        app.state.live_events = registry
    return registry


def close_live_events(app: Any) -> None:
    """End every live-event stream of ``app`` (called when its server stops)."""
    registry: LiveEvents | None = getattr(app.state, "live_events", None)
    if registry is not None:
        registry.close_all()
