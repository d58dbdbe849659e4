"""Running fuzzed frames against a real CSMS: pipelined on one websocket, answers checked in order,
with a well-behaved station beside it and the database's consistency checked afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import websockets
from ocpp.messages import get_validator
from sqlalchemy import func, select, text
from sqlalchemy.orm import aliased

from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import Base, MeterValue, Transaction, TransactionEventRecord
from tests.fuzz.frames import RESULT, Expected, Version, expected_answer, is_finite_json
from tests.support.stations import RawStation


@dataclass
class FuzzReport:
    """What one fuzzing run sent and got back."""

    frames: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # by error code, or CALLRESULT, or "none"
    calls_from_csms: int = 0
    wire_seconds: float = 0.0  # time spent sending frames and waiting for their answers
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log and docs/reliability.md."""
        answers = ", ".join(f"{code} {count}" for code, count in sorted(self.answers.items()))
        return f"{self.frames} frames; answers: {answers}; CALLs from the CSMS: {self.calls_from_csms}"


class Pipeline:
    """Sends batches of frames back to back on one connection and checks each answer in turn.

    The CSMS handles a connection's frames in order and answers each CALL before reading the next, so
    the answers arrive in the order of the frames that need one; a Heartbeat with a fresh id after each
    batch marks where the batch's answers end. Every frame is checked against :func:`expected_answer`.
    """

    def __init__(self, station: RawStation, version: Version, report: FuzzReport) -> None:
        self.station = station
        self.version = version
        self.report = report
        self._batches = 0

    async def run(self, frames: list[str | bytes]) -> list[str]:
        """Send ``frames`` and a sentinel; return the problems found with their answers."""
        self._batches += 1
        sentinel = f"~end-{self._batches}"
        expected = [expected_answer(frame, self.version) for frame in frames]
        started = time.perf_counter()
        replies, _ = await asyncio.gather(self._read_until(sentinel), self._send([*frames, _heartbeat(sentinel)]))
        self.report.wire_seconds += time.perf_counter() - started
        self.report.frames += len(frames)
        return self._check(frames, expected, replies)

    async def _send(self, frames: list[str | bytes]) -> None:
        for frame in frames:
            await self.station.send(frame)

    async def _read_until(self, sentinel: str) -> list[list[Any]]:
        replies: list[list[Any]] = []
        while True:
            reply = json.loads(await asyncio.wait_for(self.station.connection.recv(), 30))
            if reply[:2] == [3, sentinel]:
                return replies
            if reply[0] == 2:
                # The CSMS calling the station (e.g. smart charging): refused, and not an answer.
                self.report.calls_from_csms += 1
                await self.station.send(json.dumps([4, reply[1], "NotSupported", "fuzzing station", {}]))
                continue
            replies.append(reply)

    def _check(self, frames: list[str | bytes], expected: list[Expected | None], replies: list[list[Any]]) -> list[str]:
        problems: list[str] = []
        owed = [(frame, want) for frame, want in zip(frames, expected, strict=True) if want is not None]
        self.report.answers["none"] += len(frames) - len(owed)
        if len(owed) != len(replies):
            return [f"{len(owed)} answers owed, {len(replies)} came: {replies[:5]!r}"]
        for (frame, want), reply in zip(owed, replies, strict=True):
            shown = repr(frame)[:300]
            if reply[0] == 3 and len(reply) == 3:
                answer = RESULT
            elif reply[0] == 4 and len(reply) == 5:
                answer = reply[2]
                if not (isinstance(reply[3], str) and isinstance(reply[4], dict)) or answer not in self.version.codes:
                    problems.append(f"{shown}: ill-formed CALLERROR {reply!r}")
            else:
                problems.append(f"{shown}: answered with {reply!r}")
                continue
            self.report.answers[answer] += 1
            if want.message_id and reply[1] != want.message_id:
                problems.append(f"{shown}: answer carries id {reply[1]!r}, not {want.message_id!r}")
            if answer not in want.allowed:
                problems.append(f"{shown}: answered {answer} {reply[3:]!r}, expected one of {sorted(want.allowed)}")
            if answer == RESULT and want.action is not None:
                try:
                    get_validator(3, want.action, self.version.name).validate(reply[2])
                except Exception as error:  # any schema failure is the finding
                    problems.append(f"{shown}: CALLRESULT breaks the schema: {error}")
                if not is_finite_json(reply[2]):
                    problems.append(f"{shown}: CALLRESULT holds a non-finite number")
        return problems


def _heartbeat(message_id: str) -> str:
    return json.dumps([2, message_id, "Heartbeat", {}])


# --- the well-behaved station next to the fuzzing -------------------------------------------------


GOOD_STATUS = {
    "1.6": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    "2.0.1": {"timestamp": "2026-03-02T08:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
}


@dataclass
class GoodStation:
    """A station that keeps sending Heartbeat and StatusNotification and times each answer."""

    station: RawStation
    version: Version
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        """Call until ``stop`` is set, one call every 20 ms."""
        count = 0
        while not stop.is_set():
            count += 1
            action, payload = ("Heartbeat", {}) if count % 2 else ("StatusNotification", GOOD_STATUS[self.version.name])
            message_id = f"good-{count}"
            started = time.perf_counter()
            try:
                reply = await self.station.call(action, payload, message_id)
            except (TimeoutError, websockets.ConnectionClosed) as error:
                self.failures.append(f"{action}: {error!r}")
                return
            self.latencies.append(time.perf_counter() - started)
            if reply[:2] != [3, message_id]:
                self.failures.append(f"{action}: {reply!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.02)


# --- afterwards --------------------------------------------------------------------------------


async def integrity_problems(csms: Csms) -> list[str]:
    """Rows that break the model: orphans of any foreign key, half-written sessions, misplaced samples."""
    problems: list[str] = []
    async with csms.database.read() as session:
        for table in Base.metadata.sorted_tables:
            for key in table.foreign_keys:
                parent = aliased(key.column.table)
                child_column, parent_column = key.parent, parent.c[key.column.name]
                orphans = await session.scalar(
                    select(func.count())
                    .select_from(table.outerjoin(parent, child_column == parent_column))
                    .where(child_column.is_not(None), parent_column.is_(None))
                )
                if orphans:
                    problems.append(f"{orphans} rows of {table.name}.{child_column.name} point to no {parent}")
        # A 1.6 session is stopped with its final reading in one write: both or neither.
        half_stopped = await session.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(
                Transaction.ocpp_transaction_id.is_(None),
                Transaction.stopped_at.is_(None) != Transaction.meter_stop_wh.is_(None),
            )
        )
        if half_stopped:
            problems.append(f"{half_stopped} 1.6 sessions with a stop time but no final reading, or the reverse")
        # A 2.0.1 session is created by an event, stored in the same write.
        eventless = await session.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(
                Transaction.ocpp_transaction_id.is_not(None),
                ~select(TransactionEventRecord.id)
                .where(TransactionEventRecord.transaction_id == Transaction.id)
                .exists(),
            )
        )
        if eventless:
            problems.append(f"{eventless} 2.0.1 sessions without any event")
        foreign_samples = await session.scalar(
            select(func.count())
            .select_from(MeterValue)
            .join(Transaction, MeterValue.transaction_id == Transaction.id)
            .where(MeterValue.station_id != Transaction.station_id)
        )
        if foreign_samples:
            problems.append(f"{foreign_samples} meter values linked to another station's session")
        if session.bind.dialect.name == "sqlite":
            (verdict,) = (await session.execute(text("PRAGMA integrity_check"))).one()
            if verdict != "ok":
                problems.append(f"SQLite integrity_check: {verdict}")
            broken = (await session.execute(text("PRAGMA foreign_key_check"))).all()
            if broken:
                problems.append(f"SQLite foreign_key_check: {broken[:5]}")
    return problems


def running_tasks() -> Counter[str]:
    """The running asyncio tasks, by coroutine name (a task's identity says nothing across runs)."""
    return Counter(getattr(task.get_coro(), "__qualname__", repr(task.get_coro())) for task in asyncio.all_tasks())


async def leftover_tasks(baseline: Counter[str], timeout: float = 5.0) -> Counter[str]:
    """The tasks running beyond ``baseline`` once they have had ``timeout`` seconds to end."""
    # Polled: nothing tells a bystander that another's task has ended.
    extra = running_tasks() - baseline
    for _ in range(int(timeout / 0.02)):
        if not extra:
            break
        await asyncio.sleep(0.02)
        extra = running_tasks() - baseline
    return extra
