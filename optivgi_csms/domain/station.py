"""Stations, their EVSEs/connectors and what they report about themselves."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# OCPP 2.0.1 part 4: a station identity is 1-48 characters from this URL-safe set. 1.6 sets no rule;
# the same one keeps ids usable as Basic-auth user names, log keys and file names.
STATION_ID_PATTERN = re.compile(r"[A-Za-z0-9*\-_=:+|@.~]{1,48}")
STATION_ID_RULE = "1-48 characters of A-Z a-z 0-9 * - _ = : + | @ . ~"


def is_valid_station_id(station_id: str) -> bool:
    """Whether ``station_id`` is an identity OCPP allows."""
    return STATION_ID_PATTERN.fullmatch(station_id) is not None


class BootStatus(StrEnum):
    """The CSMS's answer to a BootNotification (same words in 1.6 and 2.0.1)."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


@dataclass(frozen=True, slots=True)
class EvseRef:
    """Where on a station something happens.

    1.6 connector ``n`` is EVSE ``n`` with connector 1, and 1.6 connector 0 (the whole station) is
    EVSE 0 connector 0; 2.0.1 names EVSE and connector itself. One scheme for both versions.
    """

    evse_id: int
    connector_id: int

    @classmethod
    def from_v16_connector(cls, connector_id: int) -> EvseRef:
        """The EVSE/connector pair of a 1.6 ``connectorId``."""
        return cls(connector_id, 1 if connector_id > 0 else 0)

    @property
    def v16_connector_id(self) -> int:
        """The 1.6 ``connectorId`` of this place."""
        return self.evse_id


@dataclass(frozen=True, slots=True)
class BootInfo:
    """What a station says about itself in BootNotification."""

    vendor: str
    model: str
    serial_number: str | None = None
    charge_box_serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BootDecision:
    """The answer to a BootNotification."""

    status: BootStatus
    current_time: datetime
    interval_s: int


@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    """One StatusNotification: the state of an EVSE/connector at a moment."""

    where: EvseRef
    status: str
    error_code: str | None = None
    timestamp: datetime | None = None
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
