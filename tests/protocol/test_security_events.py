"""SecurityEventNotification over real websockets: 2.0.1 stations and 1.6 stations with the security extension
(the ``ocpp`` library's v16 package carries the message and its schema) are answered and their events stored
alike; a malformed one is refused with a CALLERROR and stores nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from sqlalchemy import select

from optivgi_csms.protocol.rpc import V16, has_schema
from optivgi_csms.server.app import Csms
from tests.support.stations import connect16, connect_raw
from tests.support.stations201 import connect201


async def stored(csms: Csms) -> list[tuple[Any, ...]]:
    """Every stored security event as (station, type, station's time, tech info), in arrival order."""
    from optivgi_csms.store.models import SecurityEvent

    async with csms.database.read() as session:
        rows = await session.scalars(select(SecurityEvent).order_by(SecurityEvent.id))
        return [(row.station_id, row.type, row.timestamp, row.tech_info) for row in rows]


def test_the_1_6_security_extension_message_has_a_schema() -> None:
    # The receive loop validates every CALL it handles; without the schema the handler could not be reached.
    assert has_schema(V16, "SecurityEventNotification")


async def test_1_6_and_2_0_1_security_events_are_answered_and_stored(csms: Csms) -> None:
    async with connect16(csms, "CS-16") as station16, connect201(csms, "CS-201") as station201:
        answer16 = await station16.call(
            call16.SecurityEventNotification(
                type="TamperDetectionActivated", timestamp="2026-03-02T08:00:00+01:00", tech_info="lid opened"
            ),
            suppress=False,
        )
        answer201 = await station201.call(
            call201.SecurityEventNotification(type="StartupOfTheDevice", timestamp="2026-03-02T08:05:00Z"),
            suppress=False,
        )
    assert isinstance(answer16, result16.SecurityEventNotification)
    assert isinstance(answer201, result201.SecurityEventNotification)
    assert await stored(csms) == [
        ("CS-16", "TamperDetectionActivated", datetime(2026, 3, 2, 7, 0, tzinfo=UTC), "lid opened"),
        ("CS-201", "StartupOfTheDevice", datetime(2026, 3, 2, 8, 5, tzinfo=UTC), None),
    ]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "StartupOfTheDevice", "timestamp": "2026-13-01T00:00:00Z"}, "timestamp"),
        ({"type": "StartupOfTheDevice", "timestamp": "yesterday"}, "timestamp"),
        ({"type": "x" * 51, "timestamp": "2026-03-02T08:00:00Z"}, "type"),
        ({"type": "StartupOfTheDevice", "timestamp": "2026-03-02T08:00:00Z", "techInfo": "t" * 256}, "techInfo"),
    ],
)
async def test_a_malformed_1_6_security_event_is_refused_and_not_stored(
    csms: Csms, payload: dict[str, Any], field: str
) -> None:
    # A raw websocket: the library's client would refuse to send most of these itself.
    async with connect_raw(csms, "CS-16") as raw:
        reply = await raw.call("SecurityEventNotification", payload, message_id="s1")
    assert reply[:2] == [4, "s1"], reply
    assert field in json.dumps(reply[3:]), reply
    assert await stored(csms) == []
