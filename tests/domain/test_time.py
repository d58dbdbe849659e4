"""Station timestamps: RFC 3339 in, aware UTC out; anything else refused with ValueError."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from optivgi_csms.domain.time import format_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T08:00:00Z", datetime(2026, 3, 2, 8, tzinfo=UTC)),
        ("2026-03-02T09:00:00+01:00", datetime(2026, 3, 2, 8, tzinfo=UTC)),
        ("2026-03-02T09:00:00+0100", datetime(2026, 3, 2, 8, tzinfo=UTC)),
        ("2026-03-02T08:00:00.123456789Z", datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=UTC)),
        ("2026-03-02T08:00:00", datetime(2026, 3, 2, 8, tzinfo=UTC)),  # no zone: UTC, as stations mean it
        ("2026-03-02 08:00", datetime(2026, 3, 2, 8, tzinfo=UTC)),
    ],
)
def test_accepted_forms(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "2026-03-02", "2026-W10-1", "08:00:00", "yesterday", "2026-13-02T08:00:00Z", "9999-12-31T23:59:59-05:00"],
)
def test_refused_forms(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_format_round_trips_with_a_z() -> None:
    moment = datetime(2026, 3, 2, 8, 0, 0, 250000, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-03-02T08:00:00.250Z"
    assert parse_timestamp(format_timestamp(moment)) == moment
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 3, 2))  # naive
