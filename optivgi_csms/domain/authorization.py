"""Id tags (1.6) / id tokens (2.0.1) and the answer to an authorization request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AuthorizationStatus(StrEnum):
    """Authorization outcome; the 1.6 words, which 2.0.1 extends."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


@dataclass(frozen=True, slots=True)
class Authorization:
    """The CSMS's verdict on an id tag, as sent back to the station."""

    status: AuthorizationStatus
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None

    @property
    def accepted(self) -> bool:
        """Whether the tag may charge."""
        return self.status is AuthorizationStatus.ACCEPTED
