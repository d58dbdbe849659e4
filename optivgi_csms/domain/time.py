"""Time helpers: every time in the CSMS is timezone-aware UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


# RFC 3339 date-time, as OCPP requires; seconds and the zone are optional because real stations
# omit them (a time without a zone is taken as UTC).
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?")


def parse_timestamp(text: str) -> datetime:
    """Parse an OCPP (RFC 3339) timestamp into an aware UTC datetime.

    Raises ``ValueError`` for anything that is not a date-time (a bare date, a week date) or
    that UTC cannot hold.
    """
    if not isinstance(text, str) or not _DATE_TIME.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not an RFC 3339 date-time")
    value = text.strip()
    if value[-1:] in {"Z", "z"}:
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is outside the range of representable times") from None


def format_timestamp(moment: datetime) -> str:
    """Format a time for OCPP: UTC with a ``Z`` suffix and millisecond precision."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: every time in the CSMS must carry a zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
