"""One CSMS, one port, one domain model: a 1.6 charger and a 2.0.1 charger connected at the same time play
the same scenario (boot, authorize, a session with meter values, a remote start and stop, a charging
profile round trip), and the database holds both in the same tables."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
)
from optivgi_csms.protocol.commands import ResetKind
from optivgi_csms.store.models import ChargingProfileRecord, MeterValue, Station, Transaction
from tests.support.driver import VERSIONS, Driver, Sample, Session, connect
from tests.support.stations import wait_connected

START = datetime(2026, 3, 2, 8, tzinfo=UTC)


def tx_default(profile_id: int) -> ChargingProfile:
    return ChargingProfile(
        id=profile_id,
        stack_level=0,
        purpose=ProfilePurpose.TX_DEFAULT,
        kind=ProfileKind.ABSOLUTE,
        schedule=ChargingSchedule(
            unit=RateUnit.AMPERE, periods=(SchedulePeriod(0, 16.0), SchedulePeriod(3600, 10.0)), start=START
        ),
    )


def tx_limit(profile_id: int, transaction_id: int) -> ChargingProfile:
    return ChargingProfile(
        id=profile_id,
        stack_level=1,
        purpose=ProfilePurpose.TX,
        kind=ProfileKind.RELATIVE,
        transaction_id=transaction_id,
        schedule=ChargingSchedule(unit=RateUnit.WATT, periods=(SchedulePeriod(0, 7400.0),)),
    )


async def play(station: Driver) -> tuple[Session, Session]:
    """The whole scenario, written once: the station's own messages and the CSMS's commands."""
    assert (await station.boot("VendorX", f"Model {station.version}")).status == "Accepted"
    assert await station.heartbeat()
    await station.status(1, "Available")
    commands = await wait_connected(station.csms, station.station_id)
    assert commands.ocpp_version == station.version

    # a session started at the station, with meter values
    assert (await station.authorize("TAG-LOCAL")).status == "Accepted"
    await station.status(1, "Occupied")
    local = await station.start("TAG-LOCAL", meter_start_wh=1000, timestamp="2026-03-02T08:00:00Z")
    for minute in (1, 2):
        await station.meter(
            local,
            f"2026-03-02T08:0{minute}:00Z",
            [
                Sample(1000 + 100 * minute, "Energy.Active.Import.Register", "Wh"),
                Sample(7.2, "Power.Active.Import", "kW"),
            ],
        )
    # a charging profile round trip while it runs: the station's default and this session's own limit
    assert (await commands.set_charging_profile(1, tx_default(10))).accepted
    assert (await commands.set_charging_profile(1, tx_limit(11, local.id))).accepted
    sent = station.last("SetChargingProfile")
    assert (sent.get("charging_profile") or sent["cs_charging_profiles"])["transaction_id"] == local.ocpp_id
    stopped = await station.stop(
        local, meter_stop_wh=1500, timestamp="2026-03-02T08:10:00Z", reason="Local", id_tag="TAG-LOCAL"
    )
    assert stopped.status == "Accepted"
    await station.status(1, "Available")

    # a session the CSMS starts and stops
    assert (await commands.remote_start("TAG-REMOTE", evse_id=1)).accepted
    remote = await station.start(
        "TAG-REMOTE",
        meter_start_wh=1500,
        timestamp="2026-03-02T09:00:00Z",
        remote_start_id=station.remote_start_id() if station.v201 else None,
    )
    await station.meter(remote, "2026-03-02T09:30:00Z", [Sample(3000, "Energy.Active.Import.Register", "Wh")])
    assert (await commands.remote_stop(remote.id)).accepted
    assert station.last("RemoteStop") == {"transaction_id": remote.ocpp_id}
    await station.stop(remote, meter_stop_wh=4500, timestamp="2026-03-02T10:00:00Z", reason="Remote")
    assert (await commands.reset(ResetKind.SOFT)).accepted
    assert station.received() == ["SetChargingProfile", "SetChargingProfile", "RemoteStart", "RemoteStop", "Reset"]
    return local, remote


async def test_a_16_and_a_201_charger_at_once_share_one_model(csms) -> None:
    async with connect(csms, "CP-16", "1.6") as old, connect(csms, "CP-201", "2.0.1") as new:
        assert sorted(csms.registry.ids()) == ["CP-16", "CP-201"]
        (local16, remote16), (local201, remote201) = await asyncio.gather(play(old), play(new))

    async with csms.database.read() as db:
        stations = {row.id: row for row in await db.scalars(select(Station))}
        assert {name: (row.ocpp_version, row.boot_status, row.model) for name, row in stations.items()} == {
            "CP-16": ("1.6", "Accepted", "Model 1.6"),
            "CP-201": ("2.0.1", "Accepted", "Model 2.0.1"),
        }

        transactions = {row.id: row for row in await db.scalars(select(Transaction))}
        assert set(transactions) == {local16.id, remote16.id, local201.id, remote201.id}
        # 1.6: the row's integer id is the station's transactionId; 2.0.1: the station's string id beside it
        for session in (local16, remote16):
            assert isinstance(session.ocpp_id, int) and session.ocpp_id == session.id
            assert transactions[session.id].ocpp_transaction_id is None
        for session in (local201, remote201):
            assert isinstance(session.ocpp_id, str)
            assert transactions[session.id].ocpp_transaction_id == session.ocpp_id
        summary = {
            (row.station_id, row.id_tag): (row.evse_id, row.meter_start_wh, row.meter_stop_wh, row.stop_reason)
            for row in transactions.values()
        }
        assert summary == {
            (station, tag): values
            for station in ("CP-16", "CP-201")
            for tag, values in (("TAG-LOCAL", (1, 1000, 1500, "Local")), ("TAG-REMOTE", (1, 1500, 4500, "Remote")))
        }
        assert all(
            row.stopped_at is not None and row.authorization_status == "Accepted" for row in transactions.values()
        )
        # the remote start id ties the 2.0.1 session to the CSMS's request; 1.6 has none
        assert transactions[remote201.id].remote_start_id is not None
        assert transactions[remote16.id].remote_start_id is None

        # every sample is linked to its own session: 2 readings x 2 measurands + the end reading for the local
        # session, 1 reading + the end for the remote one; 2.0.1 also reports each session's start reading
        linked = dict(
            (
                await db.execute(select(MeterValue.transaction_id, func.count()).group_by(MeterValue.transaction_id))
            ).all()
        )
        assert linked == {local16.id: 5, remote16.id: 2, local201.id: 6, remote201.id: 3}
        owners = (await db.execute(select(MeterValue.transaction_id, MeterValue.station_id).distinct())).all()
        assert all(transactions[transaction_id].station_id == station_id for transaction_id, station_id in owners)

        profiles = (await db.scalars(select(ChargingProfileRecord).order_by(ChargingProfileRecord.id))).all()
        assert sorted((p.station_id, p.profile_id, p.purpose, p.transaction_id, p.status) for p in profiles) == [
            ("CP-16", 10, "TxDefault", None, "Accepted"),
            ("CP-16", 11, "Tx", local16.id, "Accepted"),
            ("CP-201", 10, "TxDefault", None, "Accepted"),
            ("CP-201", 11, "Tx", local201.id, "Accepted"),
        ]
        assert all(p.answered_at is not None for p in profiles)


async def test_many_stations_of_both_versions_writing_at_once_lose_nothing(csms) -> None:
    per_version, readings = 8, 5

    async def charge(version: str, index: int) -> int:
        async with connect(csms, f"CP-{version}-{index}", version) as station:
            session = await station.start(f"TAG-{index}")
            for minute in range(readings):
                await station.meter(session, f"2026-03-02T08:{minute + 1:02}:00Z", [Sample(minute * 100)])
            return session.id

    ids = await asyncio.gather(*(charge(version, index) for version in VERSIONS for index in range(per_version)))
    assert len(set(ids)) == 2 * per_version
    async with csms.database.read() as db:
        counts = dict(
            (
                await db.execute(select(MeterValue.transaction_id, func.count()).group_by(MeterValue.transaction_id))
            ).all()
        )
        versions = dict(
            (await db.execute(select(Station.ocpp_version, func.count()).group_by(Station.ocpp_version))).all()
        )
    # 2.0.1 sessions also carry their start reading
    assert counts == {
        transaction_id: readings + (1 if position >= per_version else 0) for position, transaction_id in enumerate(ids)
    }
    assert versions == {"1.6": per_version, "2.0.1": per_version}
