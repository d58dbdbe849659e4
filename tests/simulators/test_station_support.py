"""Helpers for the simulated-station tests (no tests here): a station running against a CSMS on
loopback with intervals short enough for tests, EVs, and reads of what the CSMS stored."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import MeterValue, StatusNotification, Transaction, TransactionEventRecord
from simulators.clock import SimClock
from simulators.ev import EVModel, EVSpec
from simulators.recorder import Recorder
from simulators.station import SimulatedStation, StationConfig

VERSIONS = ["1.6", "2.0.1"]
# Every test that takes ``version`` runs once per OCPP version.
both_versions = pytest.mark.parametrize("version", VERSIONS)


def station_config(csms: Csms | int, station_id: str, version: str, **overrides: Any) -> StationConfig:
    """A station for ``csms`` (or a port) with test-sized intervals: 50 ms physics, no periodic meter
    values unless asked for, a 0.2 s profile delay and a fast back-off."""
    port = csms if isinstance(csms, int) else csms.ocpp.port
    settings: dict[str, Any] = {
        "tick_s": 0.05,
        "meter_interval_s": 0.0,
        "profile_apply_delay_s": 0.2,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
        "call_timeout_s": 3.0,
        "reboot_s": 0.1,
    }
    settings.update(overrides)
    return StationConfig(station_id, f"ws://127.0.0.1:{port}", ocpp_version=version, **settings)


@contextlib.asynccontextmanager
async def running(
    config: StationConfig, *, time_scale: float = 60.0, recorder: Recorder | None = None, accepted: bool = True
) -> AsyncIterator[SimulatedStation]:
    """A running station; with ``accepted`` the CSMS has accepted its boot, and has its statuses, when this
    yields."""
    station = SimulatedStation(config, SimClock(datetime.now(UTC), time_scale), recorder or Recorder())
    task = asyncio.create_task(station.run())
    try:
        if accepted:
            await eventually(lambda: station.snapshot().accepted, timeout=5.0)
            await eventually(lambda: station.snapshot().queued == 0)  # its first statuses are out
        yield station
    finally:
        await station.stop(drain_timeout_s=2.0)
        await asyncio.wait_for(task, 10)


def ev(ev_id: str = "EV-1", **overrides: Any) -> EVModel:
    """An 11 kW three-phase EV with a 60 kWh battery going from 20 % to 80 %."""
    spec: dict[str, Any] = {"battery_kwh": 60.0, "soc_initial": 0.2, "soc_target": 0.8, "max_kw": 11.0}
    spec.update(overrides)
    return EVModel(EVSpec(ev_id, **spec))


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait until ``condition()`` holds; fail when it still does not after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def eventually_async(condition: Callable[[], Any], timeout: float = 3.0) -> Any:
    """Like :func:`eventually` for an async condition (e.g. a database read); returns its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await condition()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"condition not reached in time (last: {value!r})"
        await asyncio.sleep(0.02)


async def transactions(csms: Csms, station_id: str) -> list[Transaction]:
    """The station's transactions the CSMS stored, oldest first."""
    async with csms.database.read() as session:
        rows = await session.scalars(
            select(Transaction).where(Transaction.station_id == station_id).order_by(Transaction.id)
        )
        return list(rows)


async def meter_values(csms: Csms, station_id: str, measurand: str | None = None) -> list[MeterValue]:
    """The station's stored samples (of one measurand if given), in time order."""
    async with csms.database.read() as session:
        query = select(MeterValue).where(MeterValue.station_id == station_id)
        if measurand is not None:
            query = query.where(MeterValue.measurand == measurand)
        return list(await session.scalars(query.order_by(MeterValue.timestamp, MeterValue.id)))


async def statuses(csms: Csms, station_id: str, evse_id: int = 1) -> list[str]:
    """The status history the CSMS stored for an EVSE, in arrival order."""
    async with csms.database.read() as session:
        rows = await session.scalars(
            select(StatusNotification)
            .where(StatusNotification.station_id == station_id, StatusNotification.evse_id == evse_id)
            .order_by(StatusNotification.id)
        )
        return [row.status for row in rows]


async def transaction_events(csms: Csms, station_id: str) -> list[TransactionEventRecord]:
    """The 2.0.1 transaction events the CSMS stored, by seqNo."""
    async with csms.database.read() as session:
        rows = await session.scalars(
            select(TransactionEventRecord)
            .where(TransactionEventRecord.station_id == station_id)
            .order_by(TransactionEventRecord.seq_no)
        )
        return list(rows)


def collapse(items: list[str]) -> list[str]:
    """``items`` without consecutive repeats."""
    return [item for index, item in enumerate(items) if index == 0 or items[index - 1] != item]
