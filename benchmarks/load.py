"""Load: K stations against a live ``optivgi-csms serve``, and against a bare ``ocpp`` library server on the same load.

Run from the repository root with the project's environment::

    .venv/bin/python benchmarks/load.py                                   # 500 stations, 1 msg/s each, 30 s
    .venv/bin/python benchmarks/load.py --stations 2000 --client-processes 2 --json /tmp/load.json

For each server (``--servers``, default ``ours,baseline``) a fresh one is started as a subprocess on a free port:

- ``ours``: ``optivgi-csms db upgrade`` then ``optivgi-csms serve`` (the virtualenv's entry point) in a
  temporary directory with a TOML configuration: SQLite in that directory, or a fresh database created on
  the PostgreSQL server of ``--database-url`` (and dropped afterwards; the database named in the URL is only
  connected to, to create and drop ours). Connection and authentication limits are raised above the load;
  no site limit, so smart charging plans nothing.
  With ``--nodes N`` (PostgreSQL only), ours is N ``serve`` processes of one cluster (docs/cluster.md) on the
  same port with SO_REUSEPORT and the Redis of ``--redis-url``: the kernel spreads the stations among them; CPU
  and memory are the sum over the N processes.
- ``baseline``: ``benchmarks/baseline_server.py``, one ``ocpp.v16.ChargePoint`` per connection answering
  BootNotification, Heartbeat, MeterValues and StatusNotification, with no persistence and no scheduling.

The stations are raw OCPP 1.6J websocket clients (subprotocol ``ocpp1.6``, path ``/LOAD-000001`` ...) in
``--client-processes`` generator processes of their own, so the load generator does not share the server's
process. Every call waits for its answer before the station sends the next, as a real station does.

1. Boot storm: every station connects (at once, or at random within ``--ramp`` seconds, as stations backing
   off after a restart do) and sends BootNotification (then one StatusNotification);
   connect failures and BootNotification latency are recorded.
2. Steady phase, ``--duration`` seconds: each station sends ``--rate`` messages per second, MeterValues
   (connector 1, one meterValue of six sampled values: the energy register, power, current on L1/L2/L3 and
   voltage) with a Heartbeat in place of every ``--heartbeat-every``-th, its first message at a random
   offset within the first interval so the stations do not fire together.

Printed per server: stations connected/asked, boot p50/p99, the messages of the steady phase answered (of
those sent: a station still waiting for an answer when the phase ends does not send what was still due, and
that shortfall is noted as "due not sent"), the answers received within the phase per second, their latency
p50/p99/max (send to answer), errors (CALLERROR, no answer within ``--timeout``, connection closed), the
server's CPU during the steady phase (CPU seconds / wall seconds x 100, the server process and any children,
read from ``/proc``; 100 = one core), its resident memory at the end of the steady phase, and the growth of
that memory since before the first connection divided by the stations connected (KiB per connection). Notes
in brackets: the boot storm's length, the generators' own CPU (near 100% per process would mean the load,
not the server, is the limit), the server's CPU milliseconds per message answered in the phase. Then our
figures as ratios of the baseline's, and for ours whether every MeterValues acknowledged is in the
``meter_values`` table (messages counted as distinct station and timestamp; sampled values as rows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ("ours", "baseline")
PHASES = ("L1", "L2", "L3")
STATION_PREFIX = "LOAD-"
#: Sampled values in every MeterValues the stations send (one row each in ``meter_values``).
SAMPLES_PER_METER_VALUES = 6
#: Seconds an idle server is left after it listens before its memory is read as the "before" figure.
SETTLE_S = 1.0
#: Seconds between the last station booted and the steady phase (the server's boot writes settle).
PAUSE_S = 2.0
#: The BootNotification every station sends.
BOOT_PAYLOAD = {"chargePointVendor": "optivgi-load", "chargePointModel": "raw-16"}
STATUS_PAYLOAD = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}


# --- figures --------------------------------------------------------------------------------------------------


@dataclass
class BootReport:
    """What the boot storm of one generator process (or of all, merged) saw."""

    asked: int = 0
    connected: int = 0
    #: Stations that did not get on line, by reason ("http 503", "connect TimeoutError", "boot timeout" ...).
    failures: dict[str, int] = field(default_factory=dict)
    connect_s: list[float] = field(default_factory=list)
    boot_s: list[float] = field(default_factory=list)
    #: Failed StatusNotifications after an accepted boot (the station still takes part).
    status_errors: int = 0
    #: From the common start of the storm to the last station of this process done (on line or failed).
    wall_s: float = 0.0


@dataclass
class SteadyReport:
    """What the steady phase of one generator process (or of all, merged) saw."""

    sent: dict[str, int] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    #: Answers received before the end of the steady phase (the throughput figure; the others came after it).
    answered_in_window: int = 0
    #: Messages sent more than one interval after they were due (the station was still waiting for an answer).
    late: int = 0
    #: Messages due in the steady phase and never sent: it ended while their station was still waiting.
    unsent: int = 0

    def record(self, action: str, result: CallResult, *, in_window: bool) -> None:
        """Count one call's outcome; ``in_window``: answered before the steady phase ended."""
        self.sent[action] = self.sent.get(action, 0) + 1
        if result.outcome == "ok":
            self.answered[action] = self.answered.get(action, 0) + 1
            self.answered_in_window += in_window
            self.latencies_s.append(result.latency_s)
        else:
            self.errors[result.outcome] = self.errors.get(result.outcome, 0) + 1


@dataclass
class ServerFigures:
    """One server's figures under the load."""

    server: str
    stations: int
    connected: int
    connect_failures: dict[str, int]
    boot_storm_s: float
    boot_p50_ms: float | None
    boot_p99_ms: float | None
    boot_max_ms: float | None
    status_errors: int
    duration_s: float
    #: Messages due in the steady phase (stations x rate x duration, give or take the jitter) and sent.
    due: int
    sent: int
    #: Answers to the messages sent (some after the phase ended), and those received within it, per second.
    answered: int
    answered_per_s: float
    answered_by_action: dict[str, int]
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    errors: int
    errors_by_kind: dict[str, int]
    late: int
    unsent: int
    cpu_s: float
    cpu_pct: float
    cpu_ms_per_message: float | None
    rss_idle_mb: float
    rss_mb: float
    kib_per_connection: float | None
    generator_cpu_pct: float
    #: The server had exited by the end of the steady phase (its memory figures are then meaningless).
    server_exited: bool = False
    #: Ours only: MeterValues messages (and sampled values) found in the database after the run.
    persisted_messages: int | None = None
    persisted_samples: int | None = None


def percentile_ms(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank) of ``values`` in seconds, as milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return round(ordered[rank] * 1000, 2)


def merge_boot(reports: list[BootReport]) -> BootReport:
    """The generator processes' boot reports as one."""
    merged = BootReport()
    failures: Counter[str] = Counter()
    for report in reports:
        merged.asked += report.asked
        merged.connected += report.connected
        failures.update(report.failures)
        merged.connect_s.extend(report.connect_s)
        merged.boot_s.extend(report.boot_s)
        merged.status_errors += report.status_errors
        merged.wall_s = max(merged.wall_s, report.wall_s)
    merged.failures = dict(failures.most_common())
    return merged


def merge_steady(reports: list[SteadyReport]) -> SteadyReport:
    """The generator processes' steady-phase reports as one."""
    merged = SteadyReport()
    sent: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for report in reports:
        sent.update(report.sent)
        answered.update(report.answered)
        errors.update(report.errors)
        merged.latencies_s.extend(report.latencies_s)
        merged.late += report.late
        merged.unsent += report.unsent
        merged.answered_in_window += report.answered_in_window
    merged.sent, merged.answered, merged.errors = dict(sent), dict(answered), dict(errors.most_common())
    return merged


# --- one station: a raw OCPP 1.6J client --------------------------------------------------------------------


@dataclass(frozen=True)
class LoadPlan:
    """What every station does, shared by the generator processes."""

    url: str
    rate: float
    heartbeat_every: int
    timeout_s: float
    seed: int
    #: Connections spread evenly at random over this many seconds (0: all at once).
    ramp_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CallResult:
    """A call's outcome (``ok``, ``CALLERROR <code>``, ``timeout``, ``closed``) and its send-to-answer time."""

    outcome: str
    latency_s: float
    payload: Any = None


def ocpp_time(epoch_ms: int) -> str:
    """An OCPP timestamp (UTC, milliseconds) of a time in milliseconds since the epoch."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class LoadStation:
    """One station's websocket: sends a CALL, matches its answer by id; refuses every command of the server."""

    def __init__(self, station_id: str, connection: ClientConnection, rng: random.Random, timeout_s: float) -> None:
        self.station_id = station_id
        self.connection = connection
        self.closed = False
        self.timeout_s = timeout_s
        self._rng = rng
        self._pending: dict[str, asyncio.Future[list[Any] | None]] = {}
        self._next_id = 0
        self._last_ms = 0
        self._energy_wh = rng.uniform(0.0, 50_000.0)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.connection:
                try:
                    message = json.loads(frame)
                    kind = message[0]
                except (ValueError, TypeError, IndexError, KeyError):
                    continue  # not OCPP: the call it may have answered times out and is counted then
                if kind in (3, 4):
                    future = self._pending.pop(message[1], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif kind == 2:
                    # No command is part of the load; answering keeps the server from waiting call_timeout.
                    error = [4, message[1], "NotImplemented", "the load generator answers no commands", {}]
                    await self.connection.send(json.dumps(error))
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            for future in self._pending.values():
                if not future.done():
                    future.set_result(None)
            self._pending.clear()

    async def call(self, action: str, payload: dict[str, Any]) -> CallResult:
        """Send one CALL and wait for its answer (at most ``timeout_s``)."""
        if self.closed:
            return CallResult("closed", 0.0)
        self._next_id += 1
        unique_id = str(self._next_id)
        future: asyncio.Future[list[Any] | None] = asyncio.get_running_loop().create_future()
        self._pending[unique_id] = future
        started = time.perf_counter()
        try:
            await self.connection.send(json.dumps([2, unique_id, action, payload], separators=(",", ":")))
            async with asyncio.timeout(self.timeout_s):
                message = await future
        except TimeoutError:
            self._pending.pop(unique_id, None)
            return CallResult("timeout", time.perf_counter() - started)
        except ConnectionClosed:
            self._pending.pop(unique_id, None)
            return CallResult("closed", time.perf_counter() - started)
        latency = time.perf_counter() - started
        if message is None:
            return CallResult("closed", latency)
        if message[0] == 4:
            return CallResult(f"CALLERROR {message[2]}", latency)
        return CallResult("ok", latency, message[2])

    def meter_values(self, interval_s: float) -> dict[str, Any]:
        """A MeterValues payload: a three-phase EV near 11 kW, the register grown by the last interval."""
        currents = [16.0 + self._rng.uniform(-0.5, 0.5) for _ in range(3)]
        voltage = 230.0 + self._rng.uniform(-2.0, 2.0)
        power_w = voltage * sum(currents)
        self._energy_wh += power_w * interval_s / 3600.0
        # Strictly increasing per station: a sample is stored once per (station, time, measurand, phase).
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        samples = [
            _sample("Energy.Active.Import.Register", f"{self._energy_wh:.1f}", "Wh"),
            _sample("Power.Active.Import", f"{power_w:.1f}", "W"),
            *(_sample("Current.Import", f"{a:.2f}", "A", phase) for phase, a in zip(PHASES, currents, strict=True)),
            _sample("Voltage", f"{voltage:.1f}", "V"),
        ]
        return {"connectorId": 1, "meterValue": [{"timestamp": ocpp_time(self._last_ms), "sampledValue": samples}]}


def _sample(measurand: str, value: str, unit: str, phase: str | None = None) -> dict[str, str]:
    sample = {"value": value, "context": "Sample.Periodic", "measurand": measurand, "location": "Outlet", "unit": unit}
    if phase is not None:
        sample["phase"] = phase
    return sample


# --- a generator process ------------------------------------------------------------------------------------


def _failure(error: BaseException) -> str:
    if isinstance(error, InvalidStatus):
        return f"http {error.response.status_code}"
    return f"connect {type(error).__name__}"


async def boot_one(station_id: str, plan: LoadPlan, rng: random.Random, report: BootReport) -> LoadStation | None:
    """Connect one station and boot it; the station, or None (its failure counted in ``report``)."""
    if plan.ramp_s > 0:
        # Stations reconnecting after a CSMS restart back off for a random while, they do not all come at once.
        await asyncio.sleep(rng.uniform(0.0, plan.ramp_s))
    started = time.perf_counter()
    try:
        connection = await connect(
            f"{plan.url}/{station_id}",
            subprotocols=[Subprotocol("ocpp1.6")],
            open_timeout=plan.timeout_s,
            ping_interval=None,  # the server pings; thousands of client pings would be load of our own making
            compression=None,
            proxy=None,
        )
    except Exception as error:  # any failure to connect is counted, whatever its kind
        report.failures[_failure(error)] = report.failures.get(_failure(error), 0) + 1
        return None
    report.connect_s.append(time.perf_counter() - started)
    station = LoadStation(station_id, connection, rng, plan.timeout_s)
    boot = await station.call("BootNotification", BOOT_PAYLOAD)
    status = boot.payload.get("status") if isinstance(boot.payload, dict) else None
    if boot.outcome != "ok" or status != "Accepted":
        reason = f"boot {boot.outcome}" if boot.outcome != "ok" else f"boot {status}"
        report.failures[reason] = report.failures.get(reason, 0) + 1
        await connection.close()
        return None
    report.boot_s.append(boot.latency_s)
    if (await station.call("StatusNotification", STATUS_PAYLOAD)).outcome != "ok":
        report.status_errors += 1
    report.connected += 1
    return station


async def boot_storm(ids: list[str], plan: LoadPlan, rng: random.Random) -> tuple[list[LoadStation], BootReport]:
    """Every station of this process connects and boots at once."""
    report = BootReport(asked=len(ids))
    started = time.perf_counter()
    stations = await asyncio.gather(*(boot_one(station_id, plan, rng, report) for station_id in ids))
    report.wall_s = time.perf_counter() - started
    return [station for station in stations if station is not None], report


async def drive(station: LoadStation, first: float, end: float, plan: LoadPlan, report: SteadyReport) -> None:
    """One station's steady phase: a message due every ``1 / rate`` seconds from ``first`` (loop time) to ``end``."""
    loop = asyncio.get_running_loop()
    interval = 1.0 / plan.rate
    sent = 0
    while True:
        due = first + sent * interval
        if due >= end:
            return
        if loop.time() >= end:
            # The phase ended while this station still waited for an answer: its remaining messages are not sent,
            # so that a slow server's tail neither extends the phase nor counts as throughput.
            report.unsent += math.ceil((end - due) / interval)
            return
        wait_s = due - loop.time()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        elif -wait_s > interval:
            report.late += 1
        sent += 1
        if plan.heartbeat_every and sent % plan.heartbeat_every == 0:
            action, payload = "Heartbeat", {}
        else:
            action, payload = "MeterValues", station.meter_values(interval)
        result = await station.call(action, payload)
        report.record(action, result, in_window=loop.time() <= end)
        if result.outcome == "closed":
            return  # counted once: a station whose connection is gone sends nothing more


async def steady_phase(
    stations: list[LoadStation], plan: LoadPlan, start_wall: float, duration_s: float, rng: random.Random
) -> SteadyReport:
    """Every station sends its messages from ``start_wall`` (epoch seconds) for ``duration_s``."""
    loop = asyncio.get_running_loop()
    start = loop.time() + (start_wall - time.time())
    end = start + duration_s
    interval = 1.0 / plan.rate
    report = SteadyReport()
    await asyncio.gather(*(drive(s, start + rng.uniform(0.0, interval), end, plan, report) for s in stations))
    return report


async def close_all(stations: list[LoadStation], limit_s: float = 10.0) -> None:
    """Close every connection, waiting at most ``limit_s`` for the closing handshakes."""
    closing = [asyncio.create_task(station.connection.close()) for station in stations]
    if closing:
        await asyncio.wait(closing, timeout=limit_s)


async def sleep_until(wall: float) -> None:
    """Sleep until the epoch time ``wall``."""
    await asyncio.sleep(max(0.0, wall - time.time()))


async def generate(ids: list[str], plan: LoadPlan, pipe: Connection) -> None:
    """A generator process's part, step by step as the parent says: boot at a time, steady at a time, close."""
    rng = random.Random(plan.seed)
    pipe.send(("ready",))
    _, boot_at = await asyncio.to_thread(pipe.recv)
    await sleep_until(boot_at)
    stations, boot = await boot_storm(ids, plan, rng)
    pipe.send(("booted", boot))
    _, steady_at, duration_s = await asyncio.to_thread(pipe.recv)
    steady = await steady_phase(stations, plan, steady_at, duration_s, rng)
    pipe.send(("done", steady))
    await asyncio.to_thread(pipe.recv)
    await close_all(stations)


def generator_main(ids: list[str], plan: LoadPlan, pipe: Connection) -> None:
    """Entry point of a generator process."""
    asyncio.run(generate(ids, plan, pipe))


class Generators:
    """The generator processes of one server's run, driven phase by phase."""

    def __init__(self, ids: list[str], plan: LoadPlan, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(processes):
            ours, theirs = context.Pipe()
            chunk = ids[index::processes]
            worker_plan = LoadPlan(
                plan.url, plan.rate, plan.heartbeat_every, plan.timeout_s, plan.seed + index, plan.ramp_s
            )
            process = context.Process(target=generator_main, args=(chunk, worker_plan, theirs), daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        """The generator processes' ids."""
        return [process.pid for process in self.processes if process.pid is not None]

    def receive(self, expected: str, limit_s: float) -> list[Any]:
        """One ``expected`` message from every process, in process order."""
        deadline = time.monotonic() + limit_s
        answers: dict[int, Any] = {}
        while len(answers) < len(self.pipes):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"the generator processes did not report {expected!r} within {limit_s:.0f} s")
            for pipe in wait([p for i, p in enumerate(self.pipes) if i not in answers], timeout=min(left, 1.0)):
                index = self.pipes.index(pipe)  # type: ignore[arg-type]
                try:
                    message = pipe.recv()  # type: ignore[union-attr]
                except EOFError:
                    raise RuntimeError(f"generator process {index} exited before {expected!r}") from None
                if message[0] != expected:
                    raise RuntimeError(f"generator process {index} said {message[0]!r}, not {expected!r}")
                answers[index] = message[1] if len(message) > 1 else None
        return [answers[index] for index in range(len(self.pipes))]

    def send(self, *message: Any) -> None:
        """Say the same to every process."""
        for pipe in self.pipes:
            pipe.send(message)

    def close(self) -> None:
        """Let every process close its connections and exit; kill those that do not."""
        with contextlib.suppress(OSError):
            self.send("close")
        for process in self.processes:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()
                process.join()


# --- the servers --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on ``port`` of the loopback interface."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def clean_environment() -> dict[str, str]:
    """This environment without settings of the CSMS, which would win over the benchmark's TOML file."""
    return {
        name: value for name, value in os.environ.items() if not name.startswith("OPTIVGI_") and name != "DATABASE_URL"
    } | {"PYTHONUNBUFFERED": "1"}


class ServerUnderTest:
    """A server subprocess on a free port, its output in ``directory/server.log``."""

    name = "server"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.log_path = directory / "server.log"
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """The base websocket URL: a station appends ``/<its id>``."""
        return f"ws://127.0.0.1:{self.port}"

    #: Processes serving the port together (more than one: cluster nodes sharing it with SO_REUSEPORT).
    copies = 1

    def command(self, copy: int = 0) -> list[str]:
        """The command line that serves (of copy number ``copy``)."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Whatever must run before the server starts."""

    def pids(self) -> list[int]:
        """Every process of the server (each copy and its children)."""
        return [pid for process in self.processes for pid in process_tree(process.pid)]

    def exited(self) -> bool:
        """Whether any copy has exited."""
        return any(process.poll() is not None for process in self.processes)

    def start(self, limit_s: float = 60.0) -> None:
        """Start the server (every copy) and wait until it accepts connections."""
        self.prepare()
        for copy in range(self.copies):
            with self.log_path.open("ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        self.command(copy),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=self.directory,
                        env=clean_environment(),
                    )
                )
            deadline = time.monotonic() + limit_s
            while not self._ready(copy):
                if self.exited():
                    raise RuntimeError(f"{self.name} server exited: {self.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} server did not listen within {limit_s:.0f} s: {self.log_tail()}")
                time.sleep(0.1)

    def _ready(self, copy: int) -> bool:
        """Whether copy ``copy`` serves."""
        return listening(self.port)

    def stop(self) -> None:
        """SIGINT (a clean shutdown), then wait; killed if it does not exit."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's output."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


class OursServer(ServerUnderTest):
    """``optivgi-csms serve``, migrated first, configured by a TOML file as an operator would."""

    name = "ours"

    def __init__(
        self, directory: Path, stations: int, database_url: str | None, *, nodes: int = 1, redis_url: str = ""
    ) -> None:
        super().__init__(directory)
        self.copies = nodes
        # Copies sharing the OCPP port cannot be told apart by connecting to it: each has an API port of its own,
        # and serves once that one listens (the API starts after the OCPP server).
        self.api_ports = [free_port() for _ in range(nodes)] if nodes > 1 else []
        data = directory / "data"
        self.database_url = database_url or f"sqlite+aiosqlite:///{(data / 'optivgi-csms.db').as_posix()}"
        self.config = directory / "csms.toml"
        lines = [
            'host = "127.0.0.1"',
            f"port = {self.port}",
            "api_port = 0",  # the API runs as in production, on any free port: the load does not use it
            f"data_dir = {json.dumps(data.as_posix())}",
            # Limits that would refuse the load: every station connects from 127.0.0.1 at once.
            f"max_connections = {max(10_000, 2 * stations)}",
            "auth_failure_limit = 0",
            "handshake_timeout = 30",
            'log_format = "json"',
            'log_level = "warning"',
        ]
        if database_url is not None:
            lines.append(f"database_url = {json.dumps(database_url)}")
        if nodes > 1:
            # A cluster on this host: every node on the same OCPP port, the kernel spreading the stations.
            prefix = f"load{os.getpid()}"
            lines += ["reuse_port = true", f"redis_url = {json.dumps(redis_url)}", f'redis_prefix = "{prefix}"']
        self.config.write_text("\n".join(lines) + "\n")

    def _command(self, *args: str) -> list[str]:
        entry_point = Path(sys.executable).with_name("optivgi-csms")
        program = [str(entry_point)] if entry_point.exists() else [sys.executable, "-m", "optivgi_csms"]
        return [*program, *args, "--config", str(self.config)]

    def prepare(self) -> None:
        """``optivgi-csms db upgrade`` with the same configuration."""
        with self.log_path.open("ab") as log:
            subprocess.run(
                self._command("db", "upgrade"),
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=clean_environment(),
            )

    def command(self, copy: int = 0) -> list[str]:
        if not self.api_ports:
            return self._command("serve")
        return [*self._command("serve"), "--api-port", str(self.api_ports[copy]), "--node-id", f"load-node-{copy + 1}"]

    def _ready(self, copy: int) -> bool:
        return listening(self.api_ports[copy]) if self.api_ports else listening(self.port)

    def persisted(self) -> tuple[int, int]:
        """(MeterValues messages, sampled values) of the load's stations in the database."""
        return asyncio.run(count_meter_values(self.database_url))


class BaselineServer(ServerUnderTest):
    """``benchmarks/baseline_server.py``: the ``ocpp`` library's ChargePoint, nothing kept."""

    name = "baseline"

    def command(self, copy: int = 0) -> list[str]:
        return [sys.executable, str(ROOT / "benchmarks" / "baseline_server.py"), "--port", str(self.port)]


async def count_meter_values(url: str) -> tuple[int, int]:
    """(distinct (station, timestamp), rows) in ``meter_values`` for the load's stations."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            where, prefix = "WHERE station_id LIKE :prefix", {"prefix": f"{STATION_PREFIX}%"}
            rows = await connection.scalar(text(f"SELECT COUNT(*) FROM meter_values {where}"), prefix)
            messages = await connection.scalar(
                text(f"SELECT COUNT(*) FROM (SELECT DISTINCT station_id, timestamp FROM meter_values {where}) AS m"),
                prefix,
            )
    finally:
        await engine.dispose()
    return int(messages or 0), int(rows or 0)


def postgres_url(text_url: str) -> URL:
    """The URL with the asyncpg driver (``postgresql://`` as the CSMS accepts it)."""
    url = make_url(text_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"--database-url: a PostgreSQL URL, not {url.get_backend_name()!r} (SQLite is the default)")
    return url.set(drivername="postgresql+asyncpg")


async def _admin(url: URL, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def fresh_postgres(text_url: str) -> Iterator[str]:
    """A new database on the server of ``text_url`` for one run (the URL's own database is only connected to, to
    create and drop it); dropped afterwards."""
    admin = postgres_url(text_url)
    name = f"optivgi_load_{os.getpid()}_{int(time.time())}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}"'))


# --- measuring a process tree through /proc -------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a scheduler worker process, if the server started one)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree.extend(children)
        frontier = children
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (from ``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return total / CLOCK_TICKS


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of these processes now (``VmRSS`` of ``/proc/<pid>/status``)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


# --- one server's run ----------------------------------------------------------------------------------------


def sleep_until_wall(wall: float) -> None:
    """Block until the epoch time ``wall``."""
    time.sleep(max(0.0, wall - time.time()))


def measure(server: ServerUnderTest, args: argparse.Namespace) -> ServerFigures:
    """Start the server, put the load on it, stop it; its figures."""
    ids = [f"{STATION_PREFIX}{n:06d}" for n in range(1, args.stations + 1)]
    plan = LoadPlan(server.url, args.rate, args.heartbeat_every, args.timeout, args.seed, args.ramp)
    server.start()
    try:
        time.sleep(SETTLE_S)
        rss_idle = rss_bytes(server.pids())
        generators = Generators(ids, plan, args.client_processes)
        try:
            generators.receive("ready", 60)
            generators.send("boot", time.time() + 0.5)
            boot = merge_boot(generators.receive("booted", 4 * args.timeout + 60))
            steady_at = time.time() + PAUSE_S
            generators.send("steady", steady_at, args.duration)
            sleep_until_wall(steady_at)
            tree = server.pids()
            cpu_start, generator_start = cpu_seconds(tree), cpu_seconds(generators.pids)
            sleep_until_wall(steady_at + args.duration)
            tree = server.pids()
            cpu_s = cpu_seconds(tree) - cpu_start
            generator_s = cpu_seconds(generators.pids) - generator_start
            rss = rss_bytes(tree)
            exited = server.exited()
            steady = merge_steady(generators.receive("done", args.timeout + 60))
        finally:
            generators.close()
    finally:
        server.stop()
    figures = summarize(server.name, args, boot, steady, cpu_s, generator_s, rss_idle, rss)
    figures.server_exited = exited
    if isinstance(server, OursServer):
        figures.persisted_messages, figures.persisted_samples = server.persisted()
    return figures


def summarize(
    name: str,
    args: argparse.Namespace,
    boot: BootReport,
    steady: SteadyReport,
    cpu_s: float,
    generator_s: float,
    rss_idle: int,
    rss: int,
) -> ServerFigures:
    """The printed and written figures of one server's run."""
    answered = sum(steady.answered.values())
    latencies = steady.latencies_s
    return ServerFigures(
        server=name,
        stations=boot.asked,
        connected=boot.connected,
        connect_failures=boot.failures,
        boot_storm_s=round(boot.wall_s, 2),
        boot_p50_ms=percentile_ms(boot.boot_s, 50),
        boot_p99_ms=percentile_ms(boot.boot_s, 99),
        boot_max_ms=percentile_ms(boot.boot_s, 100),
        status_errors=boot.status_errors,
        duration_s=args.duration,
        due=sum(steady.sent.values()) + steady.unsent,
        sent=sum(steady.sent.values()),
        answered=answered,
        answered_per_s=round(steady.answered_in_window / args.duration, 1),
        answered_by_action=steady.answered,
        latency_p50_ms=percentile_ms(latencies, 50),
        latency_p99_ms=percentile_ms(latencies, 99),
        latency_max_ms=percentile_ms(latencies, 100),
        errors=sum(steady.errors.values()),
        errors_by_kind=steady.errors,
        late=steady.late,
        unsent=steady.unsent,
        cpu_s=round(cpu_s, 2),
        cpu_pct=round(100 * cpu_s / args.duration, 1),
        # CPU of the phase per message answered in it (answers after it are the server's next seconds' work).
        cpu_ms_per_message=(round(1000 * cpu_s / steady.answered_in_window, 3) if steady.answered_in_window else None),
        rss_idle_mb=round(rss_idle / 2**20, 1),
        rss_mb=round(rss / 2**20, 1),
        kib_per_connection=round((rss - rss_idle) / 1024 / boot.connected, 1) if boot.connected else None,
        generator_cpu_pct=round(100 * generator_s / args.duration, 1),
    )


# --- output ---------------------------------------------------------------------------------------------------

HEADER = (
    f"{'server':<9} {'stations':>11} {'boot p50/p99 ms':>16} {'answered/sent':>15} {'per s':>8} "
    f"{'latency p50/p99/max ms':>23} {'errors':>7} {'CPU %':>6} {'RSS MB':>7} {'KiB/conn':>9}"
)


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def row(figures: ServerFigures) -> str:
    """One server's line."""
    boot = f"{_number(figures.boot_p50_ms, 0)}/{_number(figures.boot_p99_ms, 0)}"
    latency = "/".join(_number(v) for v in (figures.latency_p50_ms, figures.latency_p99_ms, figures.latency_max_ms))
    line = (
        f"{figures.server:<9} {f'{figures.connected}/{figures.stations}':>11} {boot:>16} "
        f"{f'{figures.answered}/{figures.sent}':>15} {figures.answered_per_s:>8.1f} {latency:>23} "
        f"{figures.errors:>7} {figures.cpu_pct:>6.1f} {figures.rss_mb:>7.1f} {_number(figures.kib_per_connection):>9}"
    )
    notes = ["SERVER EXITED during the run"] if figures.server_exited else []
    notes += [f"boot storm {figures.boot_storm_s:.1f} s", f"generators {figures.generator_cpu_pct:.0f}% CPU"]
    if figures.cpu_ms_per_message is not None:
        notes.append(f"{figures.cpu_ms_per_message:.2f} CPU ms/msg")
    if figures.late or figures.unsent:
        notes.append(f"{figures.late} sent late, {figures.unsent} of {figures.due} due not sent")
    if figures.connect_failures:
        notes.append("not on line: " + ", ".join(f"{k} {v}" for k, v in figures.connect_failures.items()))
    if figures.errors_by_kind:
        notes.append("errors: " + ", ".join(f"{k} {v}" for k, v in figures.errors_by_kind.items()))
    return f"{line}   [{'; '.join(notes)}]"


def ratios(ours: ServerFigures, baseline: ServerFigures) -> dict[str, float | None]:
    """Our figures divided by the baseline's."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    return {
        "answered_per_s": ratio(ours.answered_per_s, baseline.answered_per_s),
        "latency_p99": ratio(ours.latency_p99_ms, baseline.latency_p99_ms),
        "cpu": ratio(ours.cpu_pct, baseline.cpu_pct),
        "cpu_per_message": ratio(ours.cpu_ms_per_message, baseline.cpu_ms_per_message),
        "memory_per_connection": ratio(ours.kib_per_connection, baseline.kib_per_connection),
    }


def ratio_line(values: dict[str, float | None]) -> str:
    """The ratios as one line."""
    return (
        f"ours/baseline: msgs/s {_number(values['answered_per_s'], 2)}, p99 {_number(values['latency_p99'], 2)}, "
        f"CPU {_number(values['cpu'], 2)} (per message {_number(values['cpu_per_message'], 2)}), "
        f"memory per connection {_number(values['memory_per_connection'], 2)}"
    )


def persisted_line(figures: ServerFigures) -> str:
    """Whether every MeterValues acknowledged is in the database."""
    acknowledged = figures.answered_by_action.get("MeterValues", 0)
    return (
        f"persisted {figures.persisted_messages} of {acknowledged} acknowledged MeterValues "
        f"({figures.persisted_samples} of {acknowledged * SAMPLES_PER_METER_VALUES} sampled values)"
    )


def heading(args: argparse.Namespace) -> str:
    """What the load is."""
    heartbeats = f"a Heartbeat every {args.heartbeat_every}th" if args.heartbeat_every else "no Heartbeat"
    database = "PostgreSQL (a fresh database)" if args.database_url else "SQLite"
    nodes = f" as {args.nodes} cluster processes sharing the port" if args.nodes > 1 else ""
    ours = f"; ours on {database}{nodes}" if "ours" in args.servers else ""
    return (
        f"load: {args.stations} stations in {args.client_processes} generator process(es), {args.rate:g} msg/s each "
        f"({args.stations * args.rate:g}/s offered: MeterValues of {SAMPLES_PER_METER_VALUES} sampled values, "
        f"{heartbeats}) for {args.duration:g} s{ours}; {os.cpu_count()} CPUs"
        + (f"; connections spread over {args.ramp:g} s" if args.ramp else "")
    )


# --- main -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", "-k", type=int, default=500, help="stations to connect (default 500)")
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per station (default 1)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of steady load (default 30)")
    parser.add_argument(
        "--heartbeat-every", type=int, default=10, help="every N-th message is a Heartbeat (default 10; 0: none)"
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="ours as this many cluster processes sharing the port (SO_REUSEPORT), on --database-url and "
        "--redis-url (default 1: one process)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis of the cluster with --nodes above 1 (default: REDIS_URL, else redis://127.0.0.1:6379/0)",
    )
    parser.add_argument(
        "--ramp",
        type=float,
        default=0.0,
        help="spread the stations' connections at random over this many seconds, as stations reconnecting "
        "after a restart do (default 0: all at once)",
    )
    parser.add_argument("--client-processes", type=int, default=1, help="generator processes (default 1)")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated: ours, baseline (default both)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server for ours, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test: a fresh database "
        "is created there for the run and dropped after it (default: SQLite in a temporary directory)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a call may wait for its answer (30)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the start offsets and meter readings")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    args = parser.parse_args(argv)
    args.servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    if not args.servers or set(args.servers) - set(SERVERS):
        parser.error(f"--servers: a comma-separated choice of {', '.join(SERVERS)}")
    if args.stations < 1 or args.rate <= 0 or args.duration <= 0 or args.heartbeat_every < 0:
        parser.error("--stations, --rate and --duration must be positive, --heartbeat-every not negative")
    if not 1 <= args.client_processes <= args.stations:
        parser.error("--client-processes: between 1 and --stations")
    if args.database_url is not None:
        try:
            postgres_url(args.database_url)
        except ValueError as error:
            parser.error(str(error))
    if args.nodes < 1 or (args.nodes > 1 and args.database_url is None):
        parser.error("--nodes: 1, or more with --database-url (a cluster shares one PostgreSQL database)")
    return args


def raise_file_limit() -> None:
    """Open files up to the hard limit: every station is a socket, in a generator and in the server (both inherit
    the limit from this process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_server(name: str, args: argparse.Namespace) -> ServerFigures:
    """One server's run in a temporary directory (and, for ours on PostgreSQL, a fresh database)."""
    with tempfile.TemporaryDirectory(prefix=f"load-{name}-") as temp:
        directory = Path(temp)
        try:
            if name == "baseline":
                return measure(BaselineServer(directory), args)
            if args.database_url is None:
                return measure(OursServer(directory, args.stations, None), args)
            with fresh_postgres(args.database_url) as url:
                ours = OursServer(directory, args.stations, url, nodes=args.nodes, redis_url=args.redis_url)
                return measure(ours, args)
        except Exception:
            # The server's output says why it refused or failed; it goes with the temporary directory.
            log = directory / "server.log"
            if log.exists():
                shutil.copy(log, Path(tempfile.gettempdir()) / f"load-{name}-server.log")
                print(f"{name}: server log kept in {tempfile.gettempdir()}/load-{name}-server.log", file=sys.stderr)
            raise


def main(argv: list[str] | None = None) -> int:
    """Run the load on each server in turn, print and write the figures."""
    args = parse_args(argv)
    raise_file_limit()
    print(heading(args), flush=True)
    print(HEADER, flush=True)
    results: dict[str, ServerFigures] = {}
    for name in args.servers:
        results[name] = run_server(name, args)
        print(row(results[name]), flush=True)
    output: dict[str, Any] = {
        "config": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "servers": {name: asdict(figures) for name, figures in results.items()},
    }
    if "ours" in results and "baseline" in results:
        output["ratios"] = ratios(results["ours"], results["baseline"])
        print(ratio_line(output["ratios"]))
    if "ours" in results:
        print(persisted_line(results["ours"]))
    if args.json is not None:
        args.json.write_text(json.dumps(output, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
