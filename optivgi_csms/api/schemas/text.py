"""Strings the API accepts: what every database can store and every station can carry.

PostgreSQL refuses a NUL character in text (the request would fail deep in the driver), and OCPP identifiers
(station ids, id tokens, measurands) are printable ASCII; free text (names, notes) may be any Unicode but
control characters other than tab and line breaks.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from optivgi_csms.domain.station import STATION_ID_PATTERN, STATION_ID_RULE

#: One or more printable ASCII characters (OCPP's CiString alphabet).
PRINTABLE_ASCII = r"^[\x20-\x7e]+$"
STATION_ID = f"^{STATION_ID_PATTERN.pattern}$"
__all__ = ["PRINTABLE_ASCII", "STATION_ID", "STATION_ID_RULE", "FreeText"]

_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


def _no_controls(text: str) -> str:
    if any((ord(char) < 0x20 and char not in _ALLOWED_CONTROLS) or ord(char) == 0x7F for char in text):
        raise ValueError("must not contain control characters")
    return text


FreeText = Annotated[str, AfterValidator(_no_controls)]
"""Free text for people (names, notes): no control characters but tab and line breaks."""
