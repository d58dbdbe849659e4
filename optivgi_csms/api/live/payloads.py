"""Domain events as JSON objects: ``{"type": "meter.value", "at": ..., ...fields}``.

Event types are ``family.action``; a ``?types=`` filter may name a type or a whole family.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from optivgi_csms.domain.time import format_timestamp
from optivgi_csms.services.events import (
    ChargingNeedsReceived,
    ConnectorStatusChanged,
    Event,
    MeterReading,
    ReservationChanged,
    SchedulingCycleFinished,
    SessionNeedsChanged,
    SiteChanged,
    StationBooted,
    StationConnected,
    StationDisconnected,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)

#: The name of every event a client may receive, by domain event class.
EVENT_TYPES: dict[type, str] = {
    StationConnected: "station.connected",
    StationBooted: "station.booted",
    StationDisconnected: "station.disconnected",
    ConnectorStatusChanged: "connector.status",
    TransactionStarted: "transaction.started",
    TransactionUpdated: "transaction.updated",
    TransactionEnded: "transaction.ended",
    MeterReading: "meter.value",
    SchedulingCycleFinished: "cycle.finished",
    ReservationChanged: "reservation.status",
    ChargingNeedsReceived: "ev.needs",
    SessionNeedsChanged: "session.needs",
    SiteChanged: "site.changed",
}
TYPE_NAMES: tuple[str, ...] = tuple(EVENT_TYPES.values())
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(name.split(".", 1)[0] for name in TYPE_NAMES))
#: Messages of the stream itself (always sent, whatever the filter).
CONTROL_TYPES = ("ready", "dropped", "heartbeat", "closing")


class UnknownEventTypeError(ValueError):
    """A ``types`` filter names no event type or family."""


def parse_types(text: str | None) -> frozenset[str] | None:
    """The event type names a comma-separated filter selects (None: every type); a family name (``meter``)
    selects its types. Raises :class:`UnknownEventTypeError` naming the first unknown entry."""
    if text is None or not text.strip():
        return None
    selected: set[str] = set()
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry in TYPE_NAMES:
            selected.add(entry)
        elif entry in FAMILIES:
            selected.update(name for name in TYPE_NAMES if name.split(".", 1)[0] == entry)
        else:
            raise UnknownEventTypeError(
                f"unknown event type {entry[:60]!r}: use one of {', '.join(TYPE_NAMES)} or a family "
                f"({', '.join(FAMILIES)})"
            )
    return frozenset(selected) or None


def event_payload(event: Event, received_at: float) -> dict[str, Any]:
    """``event`` as a JSON object; ``received_at`` (epoch seconds) is when the CSMS published it."""
    body: dict[str, Any] = {
        "type": EVENT_TYPES[type(event)],
        "at": format_timestamp(datetime.fromtimestamp(received_at, UTC)),
    }
    for field in dataclasses.fields(event):  # type: ignore[arg-type]
        body[field.name] = _json(getattr(event, field.name))
    if isinstance(event, MeterReading | TransactionEnded):
        body["energy_kwh"] = None if event.energy_wh is None else round(event.energy_wh / 1000.0, 4)
    if isinstance(event, SchedulingCycleFinished):
        body["trigger"] = dict(event.trigger)
    return body


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _json(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    return value
