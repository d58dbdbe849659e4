"""Times the API accepts: ISO 8601 with a zone, within years the CSMS can store and compute with.

A naive time is refused (it would bill the wrong hour), and so is one so far off that turning it into UTC or
adding a slot to it overflows (year 1 with a positive offset, year 9999 with a negative one).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _within_range(moment: datetime) -> datetime:
    if not EARLIEST <= moment < LATEST:
        raise ValueError("must be between 1970 and 2200")
    return moment.astimezone(UTC)


ApiTime = Annotated[AwareDatetime, AfterValidator(_within_range)]
"""An aware time from 1970 to 2200, given back in UTC."""
