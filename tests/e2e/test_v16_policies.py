"""What 1.6 stations report and operator policies on it: data transfers, status order, firmware and diagnostics
status, the journal, and many stations writing at once. Id tag policies, the same for both versions, are in
``test_policies.py``."""

from __future__ import annotations

import asyncio

from ocpp.v16 import call
from sqlalchemy import func, select

from optivgi_csms.store.models import (
    Connector,
    DataTransferRecord,
    JournalEntry,
    MeterValue,
    Station,
    StatusNotification,
)
from tests.support.stations import connect16, connect_raw

BOOT = call.BootNotification(charge_point_vendor="V", charge_point_model="M")


async def test_data_transfer_vendor_policy(make_csms) -> None:
    csms = await make_csms(data_transfer_vendors=("com.acme",))
    async with connect16(csms, "CP-D") as station:
        known = await station.call(call.DataTransfer(vendor_id="com.acme", message_id="hello", data='{"a":1}'))
        unknown = await station.call(call.DataTransfer(vendor_id="org.other", data="x"))
    assert known.status == "Accepted" and unknown.status == "UnknownVendorId"
    async with csms.database.read() as session:
        rows = (await session.scalars(select(DataTransferRecord).order_by(DataTransferRecord.id))).all()
    assert [(r.direction, r.vendor_id, r.message_id, r.data, r.status) for r in rows] == [
        ("in", "com.acme", "hello", '{"a":1}', "Accepted"),
        ("in", "org.other", None, "x", "UnknownVendorId"),
    ]


async def test_a_late_older_status_goes_to_history_only(csms) -> None:
    async with connect16(csms, "CP-S") as station:
        await station.call(
            call.StatusNotification(
                connector_id=2, error_code="NoError", status="Charging", timestamp="2026-03-02T08:05:00Z"
            )
        )
        await station.call(
            call.StatusNotification(
                connector_id=2, error_code="NoError", status="Preparing", timestamp="2026-03-02T08:00:00Z"
            )
        )
        await station.call(
            call.StatusNotification(
                connector_id=0, error_code="GroundFailure", status="Faulted", vendor_error_code="E42", info="ground"
            )
        )
    async with csms.database.read() as session:
        connectors = {(c.evse_id, c.connector_id): c for c in (await session.scalars(select(Connector))).all()}
        history = (await session.scalars(select(StatusNotification.status).order_by(StatusNotification.id))).all()
    assert connectors[(2, 1)].status == "Charging"
    assert connectors[(0, 0)].status == "Faulted" and connectors[(0, 0)].error_code == "GroundFailure"
    assert connectors[(0, 0)].vendor_error_code == "E42"
    assert history == ["Charging", "Preparing", "Faulted"]


async def test_firmware_and_diagnostics_status_are_kept(csms) -> None:
    async with connect16(csms, "CP-F") as station:
        await station.call(call.FirmwareStatusNotification(status="Installing"))
        await station.call(call.DiagnosticsStatusNotification(status="Uploaded"))
    async with csms.database.read() as session:
        row = await session.get(Station, "CP-F")
    assert (row.firmware_status, row.diagnostics_status) == ("Installing", "Uploaded")


async def test_the_journal_keeps_the_last_messages(make_csms) -> None:
    csms = await make_csms(journal_size=6)
    async with connect16(csms, "CP-J") as station:
        await station.call(BOOT)
        for _ in range(5):
            await station.call(call.Heartbeat())
    await csms.services.journal.flush()
    async with csms.database.read() as session:
        rows = (await session.scalars(select(JournalEntry).order_by(JournalEntry.id))).all()
    assert len(rows) == 6  # 12 frames went by; the newest 6 remain
    assert [row.direction for row in rows] == ["in", "out"] * 3
    assert all('"Heartbeat"' in row.message for row in rows if row.direction == "in")
    assert all(row.station_id == "CP-J" for row in rows)


async def test_many_stations_writing_at_once_lose_nothing(csms) -> None:
    stations, readings = 20, 10

    async def charge(index: int) -> int:
        async with connect16(csms, f"CP-{index:02}") as station:
            started = await station.call(
                call.StartTransaction(connector_id=1, id_tag="T", meter_start=0, timestamp="2026-03-02T08:00:00Z")
            )
            for minute in range(readings):
                await station.call(
                    call.MeterValues(
                        connector_id=1,
                        transaction_id=started.transaction_id,
                        meter_value=[
                            {
                                "timestamp": f"2026-03-02T08:{minute + 1:02}:00Z",
                                "sampledValue": [{"value": str(minute * 100)}],
                            }
                        ],
                    )
                )
            return started.transaction_id

    transaction_ids = await asyncio.gather(*(charge(index) for index in range(stations)))
    assert len(set(transaction_ids)) == stations
    async with csms.database.read() as session:
        stored = await session.scalar(select(func.count()).select_from(MeterValue))
        linked = await session.scalar(select(func.count(func.distinct(MeterValue.transaction_id))))
    assert stored == stations * readings and linked == stations
    # Every answer waited for a commit, and the commits were shared.
    assert csms.database.writer.stats.batches < csms.database.writer.stats.operations


async def test_the_journal_survives_frames_the_database_cannot_hold(make_csms) -> None:
    csms = await make_csms(journal_size=10)
    async with connect_raw(csms, "CP-NUL") as raw:
        reply = await raw.exchange('[2,"n1","Heartbeat",{"x":"a\x00b"}]')
        assert reply[2] == "FormationViolation"
        assert (await raw.call("Heartbeat", {}))[0] == 3
    await csms.services.journal.flush()
    async with csms.database.read() as session:
        messages = (await session.scalars(select(JournalEntry.message).order_by(JournalEntry.id))).all()
    assert len(messages) == 4 and "\\u0000" in messages[0]
