"""History rows arrive twice in two ways: the station repeats a message it heard no answer to, or the
writer replays an operation whose commit went through although its acknowledgement was lost. Either way
the report is stored once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.station import ConnectorStatus, EvseRef
from optivgi_csms.domain.time import utc_now
from optivgi_csms.services.data_transfers import DataTransferService
from optivgi_csms.services.events import EventBus
from optivgi_csms.services.station_events import StationEventService
from optivgi_csms.services.stations import StationService
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import Base, DataTransferRecord, DeviceEvent, SecurityEvent, Station, StatusNotification
from optivgi_csms.store.writer import WriteOp

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


class ReplayingDatabase:
    """The database as the services see it, but every write is committed and then run again, as the writer
    does with a batch whose commit acknowledgement was lost."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def write(self, op: WriteOp[Any], **options: Any) -> Any:
        await self.database.write(op, **options)
        return await self.database.write(op, **options)

    def read(self) -> AsyncSession:
        return self.database.read()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    database.start()

    async def station(session: AsyncSession) -> None:
        session.add(Station(id="CS-1", registered=True, created_at=utc_now()))

    await database.write(station)
    yield database
    await database.close()


async def count(database: Database, model: type[Base]) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_status_report_repeated_or_replayed_is_history_once(database: Database) -> None:
    stations = StationService(ReplayingDatabase(database), EventBus(), boot_policy="accept", heartbeat_interval_s=60)  # type: ignore[arg-type]
    report = ConnectorStatus(EvseRef(1, 1), "Charging", "NoError", AT)
    await stations.status("CS-1", report)  # stored, then replayed
    await stations.status("CS-1", report)  # the station repeats it
    assert await count(database, StatusNotification) == 1
    # A different status at the same moment, or the same one later, is a new report.
    await stations.status("CS-1", ConnectorStatus(EvseRef(1, 1), "Faulted", "GroundFailure", AT))
    await stations.status("CS-1", ConnectorStatus(EvseRef(1, 1), "Charging", "NoError", AT.replace(minute=1)))
    assert await count(database, StatusNotification) == 3


async def test_a_status_report_without_the_station_time_is_kept_every_time(database: Database) -> None:
    """1.6 makes the timestamp optional: two reports without one cannot be told apart, so both stay."""
    stations = StationService(database, EventBus(), boot_policy="accept", heartbeat_interval_s=60)
    for _ in range(2):
        await stations.status("CS-1", ConnectorStatus(EvseRef(1, 1), "Available", "NoError", None))
    assert await count(database, StatusNotification) == 2


async def test_security_and_device_events_repeated_or_replayed_are_stored_once(database: Database) -> None:
    events = StationEventService(ReplayingDatabase(database))  # type: ignore[arg-type]
    for _ in range(2):
        await events.security_event("CS-1", "FirmwareUpdated", AT, "1.2.3")
    await events.security_event("CS-1", "FirmwareUpdated", AT, "1.2.4")
    assert await count(database, SecurityEvent) == 2
    event = {
        "event_id": 7,
        "timestamp": AT,
        "trigger": "Delta",
        "component": "EVSE",
        "variable": "AvailabilityState",
        "actual_value": "Occupied",
        "event_notification_type": "HardWiredNotification",
        "raw": {"eventId": 7},
    }
    for _ in range(2):
        await events.device_events("CS-1", [event])
    await events.device_events("CS-1", [{**event, "event_id": 8}])
    assert await count(database, DeviceEvent) == 2


async def test_a_data_transfer_replayed_by_the_writer_is_stored_once(database: Database) -> None:
    transfers = DataTransferService(ReplayingDatabase(database), known_vendors=["acme"])  # type: ignore[arg-type]
    assert await transfers.incoming("CS-1", "acme", "ping", "{}") == "Accepted"
    assert await count(database, DataTransferRecord) == 1
    # The same message sent again by the station is a second message: DataTransfer has no time to tell.
    assert await transfers.incoming("CS-1", "acme", "ping", "{}") == "Accepted"
    assert await count(database, DataTransferRecord) == 2
