"""The profile outbox: a raised limit goes only after the lowered ones before it were answered and
applied, while everything else goes at once; a station that is slow to answer holds up no one else."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
)
from optivgi_csms.smart_charging.outbox import Delivery, Outbox

APPLY_DELAY_S = 0.3


def profile(limit_a: float) -> ChargingProfile:
    schedule = ChargingSchedule(
        unit=RateUnit.AMPERE,
        periods=(SchedulePeriod(0, limit_a),),
        start=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return ChargingProfile(1, 0, ProfilePurpose.TX, ProfileKind.ABSOLUTE, schedule)


@dataclass
class Answer:
    status: str


@dataclass
class Station:
    """A station's command side: answers SetChargingProfile when its gate opens, recording when."""

    name: str
    log: list[tuple[str, float, float]]
    status: str = "Accepted"
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def set_charging_profile(self, evse_id: int, charging_profile: ChargingProfile) -> Answer:
        self.log.append((f"{self.name}:{charging_profile.schedule.periods[0].limit:g}", time.monotonic(), 0.0))
        await self.gate.wait()
        return Answer(self.status)


@pytest.fixture
async def site() -> tuple[Outbox, dict[str, Station], list[tuple[str, float, float]]]:
    log: list[tuple[str, float, float]] = []
    stations = {name: Station(name, log) for name in ("A", "B")}
    outbox = Outbox(stations.__getitem__, apply_delay_s=APPLY_DELAY_S)  # type: ignore[arg-type]
    yield outbox, stations, log
    await outbox.close()


def delivery(station: str, limit_a: float, *, after_lowerings: bool, slot: int = 1) -> Delivery:
    return Delivery(station, 1, ("tx", slot), (profile(limit_a),), after_lowerings=after_lowerings)


def sent(log: list[tuple[str, float, float]]) -> list[str]:
    return [what for what, _, _ in log]


async def test_a_raise_waits_until_the_lowering_before_it_is_answered_and_applied(site) -> None:
    outbox, stations, log = site
    stations["B"].gate.clear()  # B is slow to answer
    lowering = outbox.submit(delivery("B", 6, after_lowerings=False))
    raising = outbox.submit(delivery("A", 32, after_lowerings=True))
    await asyncio.sleep(0.2)
    assert sent(log) == ["B:6"]  # A's raise is held while B has not answered
    stations["B"].gate.set()
    answered = time.monotonic()
    assert (await lowering).accepted
    assert (await raising).accepted
    assert sent(log) == ["B:6", "A:32"]
    # ... and then held for the apply delay, so B has slowed down before A may speed up.
    assert log[1][1] >= answered + APPLY_DELAY_S - 0.01


async def test_what_is_not_a_raise_goes_past_a_held_raise_on_the_same_station(site) -> None:
    outbox, stations, log = site
    stations["B"].gate.clear()
    outbox.submit(delivery("B", 6, after_lowerings=False))
    held = outbox.submit(delivery("A", 32, after_lowerings=True, slot=1))
    lowering = outbox.submit(delivery("A", 10, after_lowerings=False, slot=2))
    assert (await asyncio.wait_for(lowering, 2.0)).accepted
    assert not held.done()
    stations["B"].gate.set()
    assert (await asyncio.wait_for(held, 2.0)).accepted
    assert sent(log) == ["B:6", "A:10", "A:32"]


async def test_a_raise_goes_at_once_when_nothing_lowering_is_outstanding_or_it_was_refused(site) -> None:
    outbox, stations, log = site
    first = time.monotonic()
    assert (await outbox.submit(delivery("A", 32, after_lowerings=True))).accepted
    assert log[-1][1] - first < APPLY_DELAY_S  # nothing to wait for
    stations["B"].status = "Rejected"
    refused = outbox.submit(delivery("B", 6, after_lowerings=False))
    raising = outbox.submit(delivery("A", 20, after_lowerings=True, slot=2))
    assert (await refused).status == "Rejected"
    answered = time.monotonic()
    assert (await raising).accepted
    assert log[-1][1] - answered < APPLY_DELAY_S  # a refused profile changed nothing to wait for


async def test_a_raise_superseded_while_held_is_never_sent(site) -> None:
    outbox, stations, log = site
    stations["B"].gate.clear()
    outbox.submit(delivery("B", 6, after_lowerings=False))
    stale = outbox.submit(delivery("A", 32, after_lowerings=True))
    newer = outbox.submit(delivery("A", 16, after_lowerings=True))
    assert (await stale).status == "Superseded"
    stations["B"].gate.set()
    assert (await asyncio.wait_for(newer, 2.0)).accepted
    assert sent(log) == ["B:6", "A:16"]


async def test_a_profile_withdrawn_for_an_ended_session_is_never_sent(site) -> None:
    outbox, stations, log = site
    stations["B"].gate.clear()
    outbox.submit(delivery("B", 6, after_lowerings=False))
    held = outbox.submit(delivery("A", 32, after_lowerings=True, slot=7))
    outbox.withdraw("A", ("tx", 7))  # the session on A ended while its raise was held
    assert (await held).status == "Cancelled"
    stations["B"].gate.set()
    await asyncio.sleep(APPLY_DELAY_S + 0.1)
    assert sent(log) == ["B:6"]


async def test_a_raise_waits_for_the_lowering_that_replaced_the_one_it_waited_for(site) -> None:
    outbox, stations, log = site
    stations["B"].gate.clear()
    outbox.submit(delivery("B", 10, after_lowerings=False, slot=1))  # on the wire
    first = outbox.submit(delivery("B", 8, after_lowerings=False, slot=2))  # queued behind it
    raising = outbox.submit(delivery("A", 32, after_lowerings=True))
    newer = outbox.submit(delivery("B", 6, after_lowerings=False, slot=2))  # a newer plan replaces it
    assert (await first).status == "Superseded"
    await asyncio.sleep(0.1)
    assert not raising.done()  # still waiting, now for B's newer lowering
    stations["B"].gate.set()
    assert (await newer).accepted and (await raising).accepted
    assert sent(log) == ["B:10", "B:6", "A:32"]
