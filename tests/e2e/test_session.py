"""A charger of either version, built from the ``ocpp`` library, boots, authorizes, charges with meter values and
stops, and every step is in the same tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from optivgi_csms.store.models import Connector, MeterValue, Station, StatusNotification, Transaction
from tests.support.driver import Sample, connect


async def test_full_session_is_recorded(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        boot = await station.boot("VendorX", "Wallbox 22", serial_number="SN-1", firmware_version="1.2.3")
        assert boot.status == "Accepted"
        assert boot.interval == 300

        assert (await station.heartbeat()).endswith("Z")

        occupied = await station.status(1, "Occupied")
        assert (await station.authorize("TAG-1")).status == "Accepted"

        session = await station.start("TAG-1", meter_start_wh=1000, timestamp="2026-03-02T08:00:00Z")
        assert session.verdict.status == "Accepted"
        await station.meter(
            session,
            "2026-03-02T08:01:00Z",
            [
                Sample(1500, "Energy.Active.Import.Register", "Wh"),
                Sample(7.4, "Power.Active.Import", "kW"),
                Sample(10.7, "Current.Import", "A", phase="L1"),
                Sample(10.6, "Current.Import", "A", phase="L2"),
            ],
        )
        stopped = await station.stop(
            session, meter_stop_wh=6000, timestamp="2026-03-02T09:00:00Z", reason="EVDisconnected", id_tag="TAG-1"
        )
        assert stopped.status == "Accepted"

    async with csms.database.read() as db:
        row = await db.get(Station, "CP-1")
        assert (row.vendor, row.model, row.serial_number, row.firmware_version) == (
            "VendorX",
            "Wallbox 22",
            "SN-1",
            "1.2.3",
        )
        assert row.boot_status == "Accepted" and row.last_heartbeat_at is not None
        assert row.ocpp_version == ocpp_version

        connector = await db.scalar(select(Connector).where(Connector.station_id == "CP-1"))
        assert (connector.evse_id, connector.connector_id, connector.status) == (1, 1, occupied)
        assert await db.scalar(select(StatusNotification.status)) == occupied

        (transaction,) = (await db.scalars(select(Transaction))).all()
        assert transaction.id == session.id
        # 1.6: the integer id is the station's; 2.0.1: the station's string id is kept beside it
        expected_ocpp_id = session.ocpp_id if station.v201 else None
        assert transaction.ocpp_transaction_id == expected_ocpp_id
        assert (transaction.station_id, transaction.evse_id, transaction.connector_id) == ("CP-1", 1, 1)
        assert (transaction.id_tag, transaction.authorization_status) == ("TAG-1", "Accepted")
        assert transaction.started_at == datetime(2026, 3, 2, 8, tzinfo=UTC)
        assert transaction.stopped_at == datetime(2026, 3, 2, 9, tzinfo=UTC)
        assert (transaction.meter_start_wh, transaction.meter_stop_wh, transaction.energy_wh) == (1000, 6000, 5000)
        assert transaction.stop_reason == "EVDisconnected"

        samples = (await db.scalars(select(MeterValue).order_by(MeterValue.id))).all()
        # a 2.0.1 station reports the register at the start as a sample; 1.6 sends it as meterStart
        begin = [("Energy.Active.Import.Register", None, "Wh", 1000.0, "Transaction.Begin")] if station.v201 else []
        assert [(s.measurand, s.phase, s.unit, s.value_numeric, s.context) for s in samples] == [
            *begin,
            ("Energy.Active.Import.Register", None, "Wh", 1500.0, "Sample.Periodic"),
            ("Power.Active.Import", None, "kW", 7.4, "Sample.Periodic"),
            ("Current.Import", "L1", "A", 10.7, "Sample.Periodic"),
            ("Current.Import", "L2", "A", 10.6, "Sample.Periodic"),
            ("Energy.Active.Import.Register", None, "Wh", 6000.0, "Transaction.End"),
        ]
        assert all(s.transaction_id == session.id for s in samples)
        assert all((s.station_id, s.evse_id, s.connector_id) == ("CP-1", 1, 1) for s in samples)


async def test_the_tag_that_stopped_a_session_is_kept(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        same = await station.start("TAG-1", timestamp="2026-03-02T08:00:00Z")
        await station.stop(same, meter_stop_wh=10, timestamp="2026-03-02T08:30:00Z", id_tag="TAG-1")
        other = await station.start("TAG-1", timestamp="2026-03-02T09:00:00Z")
        await station.stop(other, meter_stop_wh=20, timestamp="2026-03-02T09:30:00Z", id_tag="TAG-OTHER")
    async with csms.database.read() as db:
        rows = (await db.scalars(select(Transaction).order_by(Transaction.id))).all()
    assert [(row.id_tag, row.stop_id_tag) for row in rows] == [("TAG-1", "TAG-1"), ("TAG-1", "TAG-OTHER")]
