"""Helpers for smart-charging tests: stations with chosen capabilities, the profiles they received, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from optivgi_csms.domain.time import format_timestamp
from optivgi_csms.server.app import Csms
from optivgi_csms.smart_charging import CycleRow
from tests.support.driver import Driver
from tests.support.stations import Station16, station_url, wait_registered
from tests.support.stations201 import Station201

VOLTAGE = 230.0


def stamp(offset_s: float = 0.0) -> str:
    """An OCPP timestamp ``offset_s`` seconds from now."""
    return format_timestamp(datetime.now(UTC) + timedelta(seconds=offset_s))


@dataclass(frozen=True)
class Rules:
    """What a test station accepts in a profile (None: anything)."""

    max_stack_level: int | None = None
    units: tuple[str, ...] | None = None
    max_periods: int | None = None

    def verdict(self, profile: dict[str, Any]) -> str:
        """``Accepted`` or ``Rejected`` for a received profile (snake_case, either version)."""
        schedule = profile["charging_schedule"]
        schedule = schedule[0] if isinstance(schedule, list) else schedule
        if self.max_stack_level is not None and profile["stack_level"] > self.max_stack_level:
            return "Rejected"
        if self.units is not None and schedule["charging_rate_unit"] not in self.units:
            return "Rejected"
        if self.max_periods is not None and len(schedule["charging_schedule_period"]) > self.max_periods:
            return "Rejected"
        return "Accepted"


class PickyStation16(Station16):
    """A 1.6 test station that refuses profiles its :class:`Rules` forbid, whatever it reports."""

    rules = Rules()

    @on(Action16.set_charging_profile)
    def set_charging_profile(self, **payload: Any) -> Any:
        status = self._got("SetChargingProfile", payload, self.rules.verdict(payload["cs_charging_profiles"]))
        return result16.SetChargingProfile(status=status)


class PickyStation201(Station201):
    """The 2.0.1 counterpart of :class:`PickyStation16`."""

    rules = Rules()

    @on(Action201.set_charging_profile)
    def set_charging_profile(self, **payload: Any) -> Any:
        status = self._got("SetChargingProfile", payload, self.rules.verdict(payload["charging_profile"]))
        return result201.SetChargingProfile(status=status)


@contextlib.asynccontextmanager
async def station(
    csms: Csms,
    station_id: str,
    version: str = "1.6",
    *,
    config: dict[str, str] | None = None,
    rules: Rules | None = None,
    boot: bool = True,
) -> AsyncIterator[Driver]:
    """A booted test station of ``version`` whose capabilities are ``config`` (1.6 configuration keys, or
    2.0.1 ``SmartChargingCtrlr`` variables) and which refuses what ``rules`` forbid."""
    cls = PickyStation201 if version == "2.0.1" else PickyStation16
    async with websockets.connect(station_url(csms, station_id), subprotocols=["ocpp" + version]) as connection:
        charger = cls(station_id, connection)
        charger.rules = rules or Rules()
        for key, value in (config or {}).items():
            if version == "2.0.1":
                charger.variables[("SmartChargingCtrlr", key)] = value
            else:
                charger.configuration = [e for e in charger.configuration if e["key"] != key]
                charger.configuration.append({"key": key, "readonly": True, "value": value})
        task = asyncio.create_task(charger.start())
        await wait_registered(csms, station_id)
        driver = Driver(csms, version, charger)
        try:
            if boot:
                await driver.boot()
                await until(lambda: csms.smart_charging.runtime.is_ready(station_id), what=f"{station_id} set up")
            yield driver
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task


@dataclass(frozen=True)
class Received:
    """A SetChargingProfile a test station received, in neutral terms."""

    evse_id: int
    id: int
    purpose: str
    stack_level: int
    unit: str
    start: str | None
    duration: int | None
    periods: tuple[tuple[int, float, int | None], ...]
    transaction_id: Any

    def limit_at(self, moment: datetime) -> float | None:
        """The limit in force at ``moment`` (None outside the profile)."""
        if self.start is None:
            return self.periods[0][1]
        start = datetime.fromisoformat(self.start.replace("Z", "+00:00"))
        offset = (moment - start).total_seconds()
        if offset < 0 or (self.duration is not None and offset >= self.duration):
            return None
        limit = self.periods[0][1]
        for begin, value, _ in self.periods:
            if begin <= offset:
                limit = value
        return limit

    def kw_at(self, moment: datetime) -> float:
        """The limit at ``moment`` in kW (0 outside the profile)."""
        limit = self.limit_at(moment)
        if limit is None:
            return 0.0
        if self.unit == "W":
            return limit / 1000.0
        phases = self.periods[0][2] or 3
        return limit * VOLTAGE * phases / 1000.0


_PURPOSES = {
    "TxProfile": "Tx",
    "TxDefaultProfile": "TxDefault",
    "ChargePointMaxProfile": "StationMax",
    "ChargingStationMaxProfile": "StationMax",
}


def profiles(driver: Driver, purpose: str | None = "Tx") -> list[Received]:
    """Every SetChargingProfile the station received (of ``purpose``: Tx, TxDefault), in order."""
    found = []
    for action, payload in driver.station.received:
        if action != "SetChargingProfile":
            continue
        body = payload.get("charging_profile") or payload["cs_charging_profiles"]
        schedule = body["charging_schedule"]
        schedule = schedule[0] if isinstance(schedule, list) else schedule
        received = Received(
            evse_id=payload.get("evse_id", payload.get("connector_id")),
            id=body.get("id", body.get("charging_profile_id")),
            purpose=_PURPOSES[body["charging_profile_purpose"]],
            stack_level=body["stack_level"],
            unit=schedule["charging_rate_unit"],
            start=schedule.get("start_schedule"),
            duration=schedule.get("duration"),
            periods=tuple(
                (p["start_period"], float(p["limit"]), p.get("number_phases"))
                for p in schedule["charging_schedule_period"]
            ),
            transaction_id=body.get("transaction_id"),
        )
        if purpose is None or received.purpose == purpose:
            found.append(received)
    return found


async def until(
    condition: Callable[[], object | Awaitable[object]], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Wait until ``condition()`` (sync or async) holds; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{what} not reached within {timeout} s"
        await asyncio.sleep(0.01)


async def in_force(csms: Csms, transaction_id: int) -> None:
    """Wait until the CSMS knows the session's latest profile is accepted (readings are judged against it)."""

    def accepted() -> bool:
        held = csms.smart_charging.runtime.book.get(transaction_id)
        return held is not None and held.state == "accepted"

    await until(accepted, what=f"transaction {transaction_id}'s profile accepted")


async def cycles(csms: Csms, site_id: str = "default") -> list[CycleRow]:
    """The site's recorded cycles, oldest first."""
    return list(reversed(await csms.smart_charging.cycles(site_id, limit=1000)))


async def wait_cycle(csms: Csms, predicate: Callable[[CycleRow], bool], timeout: float = 5.0) -> CycleRow:
    """The first recorded cycle of the default site matching ``predicate``, waiting for it."""
    found: list[CycleRow] = []

    async def check() -> bool:
        found[:] = [row for row in await cycles(csms) if predicate(row)]
        return bool(found)

    await until(check, timeout, "a matching cycle")
    return found[0]


async def limit_site(csms: Csms, **changes: Any) -> None:
    """Change the default site (short slots unless given) and wait for the cycle it triggers."""
    changes.setdefault("resolution_s", 60)
    changes.setdefault("horizon_s", 3600)
    waiter = csms.smart_charging.loops["default"].next_cycle()
    await csms.services.sites.update("default", **changes)
    await asyncio.wait_for(waiter, 5)
