"""A site's day in compressed time, against the live server: smart charging (lp), EDF and uncontrolled.

Run from the repository root with the project's environment (nothing beyond optivgi-csms and its ``sim``
extra is needed)::

    .venv/bin/python benchmarks/site_day.py            # workplace-54 and depot-200-overnight at 300x, ~30 min
    .venv/bin/python benchmarks/site_day.py --quick    # workplace-54 only, at 600x, ~7 min

For each scenario and each run (``lp``: the site's limit planned by the default algorithm; ``edf``: the same
with earliest-deadline-first; ``uncontrolled``: a site with no limit, so no profile is ever sent), a fresh
server is started as an operator would: ``optivgi-csms db upgrade`` and ``optivgi-csms serve`` in a temporary
directory, configured by a TOML file (port, ``time_scale``, ``site_limit_kw``). The site's other settings
(slot length, horizon, algorithm, phase limits, prices, defaults for sessions whose EV says nothing) are
written to its database row, as the operator's Python interface does. Then the simulator (in this process,
so every meter sample can be read) runs the scenario's stations, half of them OCPP 2.0.1, against it; the
scenario clock starts ``SETTLE_WALL_S`` after they are all connected, as on a real site whose stations are on
line (with their fail-safe profiles) long before the morning's first EV.

Printed per run, from the simulator's meters unless named otherwise:

- energy delivered vs requested, and the EVs fully served (>= 99 % of what they asked);
- peak site power vs the scenario's limit;
- limit violations: samples (every physics step of the stations, one scenario minute at 300x) where the site
  is over its limit for longer than the reaction tolerance (the stations' apply delay + one slot + one
  sampling step, as in tests/e2e_sim), their count and the worst excess; the longest stretch over the limit;
- cost: the energy drawn times the scenario's prices;
- the CSMS's cycle time p50/p99 and solver time p50/p99 (from that server's ``scheduling_cycles`` table) and
  the number of profiles the stations received (and refused);
- the needs told: NotifyEVChargingNeeds sent (and accepted), sessions set through the API (and failures), and
  the sessions by the source of their needs in the cycle records.

What each EV wants and when it leaves reaches the CSMS as on a real site (``--needs``, default ``ev+api``):
every EV on a 2.0.1 station speaks ISO 15118 and tells its own (NotifyEVChargingNeeds, ``optivgi-sim
--iso15118 all``), and for each session on a 1.6 station, once the CSMS has given it an id, the benchmark sets
them through the operator API (``PUT /api/v1/transactions/{id}/needs`` with a token made by ``optivgi-csms
token create``), as a driver app would. Both give the scenario's departure as the wall time it comes at and
the energy in the site's units (scenario kWh; the server divides by its ``time_scale``). ``--needs ev`` leaves
the 1.6 sessions out, ``--needs none`` tells the CSMS nothing. Sessions it was not told of are planned with the
site's defaults, set from the scenario (the largest request, so no EV is stopped early by the CSMS; the median
stay) and printed. A second line per run says where the CSMS's cycle records say the sessions' needs came
from (``ev``, ``session`` or ``site``, as energy/departure, from the latest record of each session).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.plan_followed import plan_followed, read_plans  # noqa: E402
from optivgi_csms.domain.site import DEFAULT_SITE_ID, LimitStep  # noqa: E402
from optivgi_csms.scheduling import ALGORITHMS  # noqa: E402
from optivgi_csms.scheduling.site import sample_steps  # noqa: E402
from optivgi_csms.services.events import EventBus  # noqa: E402
from optivgi_csms.services.sites import SiteService  # noqa: E402
from optivgi_csms.store.database import Database  # noqa: E402
from simulators.recorder import Recorder  # noqa: E402
from simulators.report import power_series, write_report  # noqa: E402
from simulators.scenario import SimEV, SimScenario, load_scenario  # noqa: E402
from simulators.site import SiteOptions, SiteRun, physics_tick_s  # noqa: E402
from simulators.station import StationConfig  # noqa: E402

SCENARIOS = ("workplace-54", "depot-200-overnight")
#: (label, site algorithm, whether the site gets its limit, phase limits and prices)
RUNS: tuple[tuple[str, str, bool], ...] = (("lp", "lp", True), ("edf", "edf", True), ("uncontrolled", "lp", False))
#: How long the stations take to bring their EVs to a new limit (the simulator's default), wall seconds.
APPLY_DELAY_WALL_S: float = StationConfig.__dataclass_fields__["profile_apply_delay_s"].default
#: Power over the limit by less than this is rounding (limits go out rounded down to 0.1 A), kW.
EPSILON_KW = 0.05
#: Wall seconds between every station connected and the scenario clock starting: the CSMS reads their
#: capabilities and installs their fail-safe profiles before the EVs plugged in at the start draw, as on a real
#: site whose stations are on line long before the morning.
SETTLE_WALL_S = 5.0
#: Stations report their meter this often (wall seconds): at 300x, every 10 scenario minutes.
DEFAULT_METER_INTERVAL_S = 2.0
#: How the CSMS learns each session's needs (``--needs``): nothing; the 2.0.1 EVs by ISO 15118; and the 1.6
#: sessions through the operator API as well. Each with the simulator's ``--iso15118`` mode it takes.
NEEDS = {"none": "none", "ev": "all", "ev+api": "all"}
NEEDS_TEXT = {
    "none": "none told (site defaults for every session)",
    "ev": "2.0.1 EVs tell theirs (ISO 15118), 1.6 sessions on site defaults",
    "ev+api": "2.0.1 EVs tell theirs (ISO 15118), 1.6 sessions set through the API",
}
#: How often (wall seconds) the driver app looks for new 1.6 sessions to set needs for.
NEEDS_POLL_S = 0.1
#: The operator API's limits on what a session may be given (optivgi_csms/api/routes/transactions.py).
API_MAX_ENERGY_KWH = 1000.0
API_MAX_DEPARTURE_AHEAD = timedelta(days=31)


@dataclass
class RunResult:
    """One run's figures."""

    scenario: str
    run: str
    algorithm: str
    time_scale: float
    wall_s: float
    requested_kwh: float
    delivered_kwh: float
    evs: int
    evs_served: int
    #: EVs that plugged in and left with nothing (starved).
    evs_without_energy: int
    limit_kw: float
    peak_kw: float
    samples: int
    violations: int
    worst_excess_kw: float
    longest_over_wall_s: float
    tolerance_wall_s: float
    cost: float
    cycles: int
    cycle_p50_ms: float | None
    cycle_p99_ms: float | None
    solve_p50_ms: float | None
    solve_p99_ms: float | None
    profiles: int
    profiles_refused: int
    protocol_errors: int
    clock_offset_s: float
    #: The energy drawn within the CSMS's plan as a share of the energy planned, and the energy drawn above
    #: it as a share of the energy drawn (see benchmarks/plan_followed.py); None for an uncontrolled run.
    plan_followed: float | None = None
    plan_beyond: float | None = None
    planned_kwh: float | None = None
    needs: str = "none"
    #: NotifyEVChargingNeeds sent, and answered Accepted.
    needs_ev_sent: int = 0
    needs_ev_accepted: int = 0
    #: Sessions whose needs were set through the operator API, and PUTs that failed.
    needs_api_set: int = 0
    needs_api_failed: int = 0
    #: Sessions by where the CSMS's latest cycle record of each took its needs from ("energy/departure").
    needs_sources: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- the server -----------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """``optivgi-csms db upgrade`` then ``optivgi-csms serve`` in ``directory``, configured by a TOML file."""

    def __init__(
        self, directory: Path, *, time_scale: float, limit_kw: float | None, raise_delay_s: float = 2.0
    ) -> None:
        self.directory = directory
        self.port = free_port()
        # The operator API on a known port: the driver app of the 1.6 sessions sets their needs through it.
        self.api_port = free_port()
        while self.api_port == self.port:  # the probe's port may be handed out again at once
            self.api_port = free_port()
        self.token: str | None = None
        self.database_path = directory / "data" / "optivgi-csms.db"
        self.config = directory / "csms.toml"
        lines = [
            'host = "127.0.0.1"',
            f"port = {self.port}",
            f"api_port = {self.api_port}",
            f'data_dir = "{(directory / "data").as_posix()}"',
            f"time_scale = {time_scale}",
            # As an operator sets it for their chargers: how long the stations take to apply a new limit.
            f"profile_raise_delay = {raise_delay_s}",
            'log_format = "json"',
            'log_level = "warning"',
        ]
        if limit_kw is not None:
            lines.append(f"site_limit_kw = {limit_kw}")
        self.config.write_text("\n".join(lines) + "\n")
        self.log_path = directory / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "optivgi_csms", *args, "--config", str(self.config)]

    def upgrade(self) -> None:
        """Create the database (a real migration run, as ``make run`` does)."""
        subprocess.run(self._command("db", "upgrade"), check=True, capture_output=True, cwd=self.directory)

    def create_token(self) -> str:
        """An operator token for the API, made as an operator makes one (``optivgi-csms token create``)."""
        done = subprocess.run(
            self._command("token", "create", "site-day"), check=True, capture_output=True, cwd=self.directory
        )
        self.token = done.stdout.decode().strip()
        return self.token

    def start(self, timeout_s: float = 30.0) -> None:
        """Start ``serve`` and wait until it accepts connections."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self._command("serve"), stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"optivgi-csms serve exited: {self.log_path.read_text()[-2000:]}")
            if all(_listening(port) for port in (self.port, self.api_port)):
                return
            time.sleep(0.1)
        raise RuntimeError("optivgi-csms serve did not start listening in time")

    def stop(self) -> None:
        """SIGINT (a clean shutdown), then wait; killed if it does not exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def configure_site(self, **changes: Any) -> None:
        """Change the default site in the server's database (each cycle reads the site afresh)."""
        database = Database(f"sqlite+aiosqlite:///{self.database_path.as_posix()}")
        try:
            database.start()
            await SiteService(database, EventBus()).update(DEFAULT_SITE_ID, **changes)
        finally:
            await database.close()

    def needs_sources(self) -> dict[str, int]:
        """Sessions by where the latest cycle record that lists each took its needs from: ``energy/departure``,
        each ``ev``, ``session`` or ``site`` (a departure's ``+overstay`` left out)."""
        with sqlite3.connect(self.database_path) as connection:
            rows = connection.execute("SELECT evs FROM scheduling_cycles ORDER BY id").fetchall()
        latest: dict[int, str] = {}
        for (evs,) in rows:
            for line in json.loads(evs or "[]"):
                if line.get("transaction_id") is not None:
                    departure = str(line.get("departure_source", "?")).split("+")[0]
                    latest[line["transaction_id"]] = f"{line.get('energy_source', '?')}/{departure}"
        return dict(Counter(latest.values()).most_common())

    def cycles(self) -> list[tuple[float | None, float | None, int]]:
        """(cycle seconds, solve seconds, profiles sent) of every recorded cycle."""
        with sqlite3.connect(self.database_path) as connection:
            rows = connection.execute("SELECT cycle_s, solve_s, summary FROM scheduling_cycles").fetchall()
        out = []
        for cycle_s, solve_s, summary in rows:
            sent = json.loads(summary or "{}").get("profiles_sent", 0) if summary else 0
            out.append((cycle_s, solve_s, int(sent or 0)))
        return out


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# --- the driver app of the 1.6 sessions -------------------------------------------------------------------------


class NeedsByApi:
    """Sets each 1.6 session's departure and energy through the operator API once the CSMS has given it an id,
    as a driver app would (a 1.6 station has no message for what the EV needs)."""

    def __init__(self, server: LiveServer, run: SiteRun) -> None:
        self.server = server
        self.run = run
        self.evs = {ev.ev_id: ev for ev in run.scenario.evs if run.versions[ev.station_id] == "1.6"}
        self.done: set[str] = set()
        self.set = 0
        self.failed: list[str] = []

    async def follow(self) -> None:
        """Until cancelled: every new 1.6 session gets its needs."""
        while True:
            for ev_id in list(self.run.plugged):
                if ev_id in self.done or ev_id not in self.evs:
                    continue
                transaction_id = self.run.transaction_id(ev_id)
                if transaction_id is None:
                    continue  # its StartTransaction is not answered yet
                self.done.add(ev_id)
                await self._put(self.evs[ev_id], int(transaction_id))
            await asyncio.sleep(NEEDS_POLL_S)

    def body(self, ev: SimEV) -> dict[str, Any]:
        """What the session needs: the scenario's departure as the wall time it comes at, and the EV's energy in
        the site's units (scenario kWh), within what the API accepts."""
        body: dict[str, Any] = {}
        departure = self.run.clock.wall_time(ev.departure)
        now = datetime.now(UTC)
        if now < departure < now + API_MAX_DEPARTURE_AHEAD:
            body["departure_at"] = departure.isoformat()
        if ev.requested_kwh > 0:
            body["energy_kwh"] = round(min(ev.requested_kwh, API_MAX_ENERGY_KWH), 3)
        return body

    async def _put(self, ev: SimEV, transaction_id: int) -> None:
        body = self.body(ev)
        if not body:
            return
        request = urllib.request.Request(
            f"{self.server.api_url}/transactions/{transaction_id}/needs",
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {self.server.token}", "Content-Type": "application/json"},
        )

        def send() -> None:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()

        try:
            await asyncio.to_thread(send)
        except urllib.error.HTTPError as error:
            if error.code == 409:  # the session ended before the app got to it: nothing left to plan
                return
            detail = error.read().decode(errors="replace")[:200]
            self.failed.append(f"{ev.ev_id} (transaction {transaction_id}): HTTP {error.code} {detail}")
        except OSError as error:
            self.failed.append(f"{ev.ev_id} (transaction {transaction_id}): {error}")
        else:
            self.set += 1


# --- one run ----------------------------------------------------------------------------------------------------


def site_defaults(scenario: SimScenario) -> dict[str, Any]:
    """What the CSMS assumes of a session whose EV says nothing: the scenario's largest request (so the CSMS
    never stops an EV that still wants energy) and its median stay."""
    stays = [(ev.departure - max(ev.arrival, scenario.start)).total_seconds() for ev in scenario.evs]
    return {
        "default_energy_kwh": round(max(ev.requested_kwh for ev in scenario.evs), 1),
        "default_dwell_s": int(statistics.median(stays)),
    }


def wall_steps(steps: Any, key_start: datetime, scenario_start: datetime, time_scale: float) -> tuple[LimitStep, ...]:
    """Scenario steps (prices) moved to the wall clock: the CSMS plans in wall time (``time_scale``)."""
    return tuple(LimitStep(key_start + (step.start - scenario_start) / time_scale, float(step.value)) for step in steps)


async def run_once(
    scenario: SimScenario,
    label: str,
    algorithm: str,
    controlled: bool,
    args: argparse.Namespace,
    report_dir: Path | None,
) -> RunResult:
    """Start a server, run the scenario against it, measure, stop the server."""
    base = scenario.base
    time_scale = args.time_scale
    resolution_s = args.resolution_s or int(base.resolution.total_seconds())
    with tempfile.TemporaryDirectory(prefix=f"site-day-{label}-") as temp:
        server = LiveServer(
            Path(temp),
            time_scale=time_scale,
            limit_kw=base.site.limit_kw if controlled else None,
            raise_delay_s=args.raise_delay,
        )
        server.upgrade()
        if args.needs == "ev+api":
            server.create_token()
        server.start()
        notes: list[str] = []
        try:
            # The stations connect within about a second; prices are anchored to that expected start and the
            # actual offset is reported (at 300x a second is five scenario minutes of hour-long price steps).
            expected_start = datetime.now(UTC) + timedelta(seconds=0.5 + 0.01 * len(scenario.stations))
            changes: dict[str, Any] = {
                "resolution_s": resolution_s,
                "horizon_s": int(base.horizon.total_seconds()),
                "algorithm": algorithm,
                "voltage_v": base.site.voltage_v,
                "min_current_a": base.site.min_current_a,
                **site_defaults(scenario),
            }
            if controlled:
                changes["phase_limits_a"] = dict(base.site.phase_limit_a)
                changes["prices"] = wall_steps(base.site.price_per_kwh or (), expected_start, base.now, time_scale)
            await server.configure_site(**changes)
            options = SiteOptions(
                url=server.url,
                time_scale=time_scale,
                share_201=0.5,
                meter_interval_s=args.meter_interval,
                connect_timeout_s=60.0,
                settle_s=SETTLE_WALL_S,
                iso15118=NEEDS[args.needs],
            )
            run = SiteRun(scenario, options)
            app = NeedsByApi(server, run) if args.needs == "ev+api" else None
            driver = asyncio.create_task(app.follow()) if app is not None else None
            clock_wall: list[datetime] = []

            async def note_start() -> None:
                await run.clock_started.wait()
                clock_wall.append(datetime.now(UTC))

            watcher = asyncio.create_task(note_start())
            started = time.monotonic()
            try:
                info = await run.run()
            finally:
                if driver is not None:
                    driver.cancel()
                    await asyncio.gather(driver, return_exceptions=True)
            wall = time.monotonic() - started
            watcher.cancel()
            offset = (clock_wall[0] - expected_start).total_seconds() if clock_wall else float("nan")
        finally:
            server.stop()
        cycles = server.cycles()
        sources = server.needs_sources()
        followed = None
        if controlled and clock_wall:
            followed = plan_followed(
                run.recorder.samples,
                read_plans(server.database_path),
                clock_start_wall=clock_wall[0],
                scenario_start=scenario.start,
                time_scale=time_scale,
                reaction_wall_s=APPLY_DELAY_WALL_S,
            )
        if app is not None and app.failed:
            notes.append(f"needs through the API failed for {len(app.failed)} session(s), first: {app.failed[0]}")
        if args.keep is not None:
            # The server's database and log, to read its cycles (``scheduling_cycles``) after the run.
            kept = args.keep / f"{scenario.name}-{label}"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(temp, kept)
        if report_dir is not None:
            write_report(run.recorder, info, report_dir / f"{scenario.name}-{label}")
    result = measure(
        scenario, label, algorithm, run.recorder, info.sim_end, time_scale, resolution_s, wall, cycles, offset, notes
    )
    if followed is not None:
        result.plan_followed = round(followed.followed, 3)
        result.plan_beyond = round(followed.beyond, 3)
        result.planned_kwh = followed.planned_kwh
    messages = run.recorder.messages
    result.needs = args.needs
    result.needs_ev_sent = messages["sent:NotifyEVChargingNeeds"]
    result.needs_ev_accepted = messages["answered:NotifyEVChargingNeeds:Accepted"]
    result.needs_api_set = app.set if app is not None else 0
    result.needs_api_failed = len(app.failed) if app is not None else 0
    result.needs_sources = sources
    return result


def measure(
    scenario: SimScenario,
    label: str,
    algorithm: str,
    recorder: Recorder,
    end: datetime,
    time_scale: float,
    resolution_s: int,
    wall_s: float,
    cycles: list[tuple[float | None, float | None, int]],
    clock_offset_s: float,
    notes: list[str],
) -> RunResult:
    """The run's figures from the simulator's samples and the server's cycle records."""
    tick_wall = physics_tick_s(time_scale)
    step_s = tick_wall * time_scale  # one sample per physics step of the stations
    points = max(int((end - scenario.start).total_seconds() / step_s) + 1, 2)
    series = power_series(recorder.samples, scenario, scenario.start, end, points)
    site_kw, limit_kw = series.site_kw, series.limit_kw
    step_h = series.step_s / 3600.0
    prices_steps = scenario.base.site.price_per_kwh or ()
    initial = prices_steps[0].value if prices_steps else 0.0
    prices = np.array([float(p) for p in sample_steps(initial, prices_steps, series.times)])
    cost = float(np.sum(site_kw * step_h * prices))

    # Over the limit for longer than a reaction: the stations' apply delay, one slot, one sampling step.
    tolerance_wall = APPLY_DELAY_WALL_S + resolution_s / time_scale + tick_wall
    over = site_kw > limit_kw + EPSILON_KW
    violations = 0
    worst = 0.0
    longest = 0
    run_length = 0
    for k in range(len(site_kw)):
        run_length = run_length + 1 if over[k] else 0
        longest = max(longest, run_length)
        if over[k] and run_length * series.step_s > tolerance_wall * time_scale:
            violations += 1
            worst = max(worst, float(site_kw[k] - limit_kw[k]))

    sessions = list(recorder.sessions.values())
    cycle_ms = [c[0] * 1000 for c in cycles if c[0] is not None]
    solve_ms = [c[1] * 1000 for c in cycles if c[1] is not None]

    def pct(values: list[float], q: float) -> float | None:
        return round(float(np.percentile(values, q)), 1) if values else None

    return RunResult(
        scenario=scenario.name,
        run=label,
        algorithm=algorithm if label != "uncontrolled" else "none",
        time_scale=time_scale,
        wall_s=round(wall_s, 1),
        requested_kwh=round(sum(s.requested_kwh for s in sessions), 1),
        delivered_kwh=round(sum(s.delivered_kwh for s in sessions), 1),
        evs=len(sessions),
        evs_served=sum(1 for s in sessions if s.requested_kwh <= 0 or s.delivered_kwh >= 0.99 * s.requested_kwh),
        evs_without_energy=sum(1 for s in sessions if s.plugged_at is not None and s.delivered_kwh < 0.01),
        limit_kw=float(np.min(limit_kw)),
        peak_kw=round(float(np.max(site_kw)), 1),
        samples=len(site_kw),
        violations=violations,
        worst_excess_kw=round(worst, 1),
        longest_over_wall_s=round(longest * series.step_s / time_scale, 1),
        tolerance_wall_s=round(tolerance_wall, 2),
        cost=round(cost, 2),
        cycles=len(cycles),
        cycle_p50_ms=pct(cycle_ms, 50),
        cycle_p99_ms=pct(cycle_ms, 99),
        solve_p50_ms=pct(solve_ms, 50),
        solve_p99_ms=pct(solve_ms, 99),
        profiles=len(recorder.profiles),
        profiles_refused=sum(1 for p in recorder.profiles if not p.accepted),
        protocol_errors=len(recorder.protocol_errors),
        clock_offset_s=round(clock_offset_s, 2),
        notes=notes,
    )


# --- output -----------------------------------------------------------------------------------------------------

HEADER = (
    f"{'run':<13} {'delivered/asked kWh':>20} {'served':>7} {'peak/limit kW':>14} {'violations':>11} "
    f"{'worst':>7} {'longest':>8} {'cost':>8} {'cycles':>7} {'cycle p50/p99 ms':>17} {'solve p50/p99 ms':>17} "
    f"{'profiles':>9}"
)


def _ms(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a:.0f}/{b:.0f}"


def row(result: RunResult) -> str:
    """One line of the table."""
    delivered = (
        f"{result.delivered_kwh:.0f}/{result.requested_kwh:.0f} ({result.delivered_kwh / result.requested_kwh:.0%})"
    )
    refused = f" ({result.profiles_refused} refused)" if result.profiles_refused else ""
    return (
        f"{result.run:<13} {delivered:>20} {result.evs_served:>3}/{result.evs:<3} "
        f"{result.peak_kw:>7.1f}/{result.limit_kw:<6.0f} "
        f"{result.violations:>5}/{result.samples:<5} {'+' + format(result.worst_excess_kw, '.1f'):>7} "
        f"{result.longest_over_wall_s:>6.1f} s {result.cost:>8.2f} {result.cycles:>7} "
        f"{_ms(result.cycle_p50_ms, result.cycle_p99_ms):>17} {_ms(result.solve_p50_ms, result.solve_p99_ms):>17} "
        f"{result.profiles:>9}{refused}"
    )


def heading(scenario: SimScenario, args: argparse.Namespace) -> str:
    """What the scenario is and how it runs."""
    base = scenario.base
    resolution_s = args.resolution_s or int(base.resolution.total_seconds())
    defaults = site_defaults(scenario)
    return (
        f"{scenario.name}: {len(scenario.stations)} stations (half 2.0.1), {len(scenario.evs)} EVs, "
        f"{sum(ev.requested_kwh for ev in scenario.evs):.0f} kWh asked, limit {base.site.limit_kw:g} kW, "
        f"{(scenario.end - scenario.start).total_seconds() / 3600:.1f} h at {args.time_scale:g}x, "
        f"slots {resolution_s} s ({resolution_s / args.time_scale:.1f} s wall), meters every "
        f"{args.meter_interval:g} s wall, raises held {args.raise_delay:g} s wall; "
        f"session defaults {defaults['default_energy_kwh']:g} kWh, "
        f"{defaults['default_dwell_s'] / 3600:.1f} h; needs: {args.needs}, {NEEDS_TEXT[args.needs]}"
    )


def needs_line(result: RunResult) -> str:
    """What the CSMS was told of the EVs' needs, and where its cycle records say the sessions' needs came from."""
    sources = ", ".join(f"{source} {count}" for source, count in result.needs_sources.items()) or "no sessions listed"
    failed = f" ({result.needs_api_failed} failed)" if result.needs_api_failed else ""
    plan = ""
    if result.plan_followed is not None:
        plan = (
            f"; plan followed {result.plan_followed:.0%} of {result.planned_kwh:.0f} kWh planned, "
            f"{result.plan_beyond:.1%} drawn beyond it"
        )
    return (
        f"needs {result.needs}: {result.needs_ev_sent} NotifyEVChargingNeeds ({result.needs_ev_accepted} accepted), "
        f"{result.needs_api_set} set through the API{failed}; sessions by source (energy/departure): {sources}{plan}; "
        f"{result.evs_without_energy} EVs left with no energy"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="workplace-54 only, at 600x (about 7 minutes)")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="scenario(s) to run (default: both)")
    parser.add_argument("--runs", default="lp,edf,uncontrolled", help="comma-separated: lp, edf, uncontrolled")
    parser.add_argument("--time-scale", type=float, default=None, help="scenario seconds per wall second (300)")
    parser.add_argument("--resolution-s", type=int, default=None, help="slot length, scenario seconds (the scenario's)")
    parser.add_argument(
        "--raise-delay",
        type=float,
        default=APPLY_DELAY_WALL_S,
        help="the server's profile_raise_delay, wall seconds (default: the simulated stations' apply delay)",
    )
    parser.add_argument("--meter-interval", type=float, default=DEFAULT_METER_INTERVAL_S, help="wall seconds")
    parser.add_argument("--report-dir", type=Path, default=None, help="also write each run's report.json/png here")
    parser.add_argument("--json", type=Path, default=None, help="write every run's figures to this file")
    parser.add_argument("--keep", type=Path, default=None, help="copy each run's server folder (database, log) here")
    parser.add_argument(
        "--needs",
        choices=tuple(NEEDS),
        default="ev+api",
        help="how the CSMS learns what each EV needs: ev+api (default: the 2.0.1 EVs by ISO 15118, the 1.6 sessions "
        "through the operator API), ev (ISO 15118 only) or none (the site's defaults for every session)",
    )
    args = parser.parse_args(argv)
    if args.time_scale is None:
        args.time_scale = 600.0 if args.quick else 300.0
    if not args.scenario:
        args.scenario = ["workplace-54"] if args.quick else list(SCENARIOS)
    args.runs = [name.strip() for name in args.runs.split(",") if name.strip()]
    unknown = set(args.runs) - {label for label, _, _ in RUNS}
    if unknown:
        parser.error(f"--runs: unknown run {sorted(unknown)[0]!r}")
    if "edf" not in ALGORITHMS:
        parser.error("the scheduling core offers no 'edf' algorithm")
    return args


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results: list[RunResult] = []
    for name in args.scenario:
        scenario = load_scenario(ROOT / "scenarios" / f"{name}.json")
        print(heading(scenario, args), flush=True)
        print(HEADER, flush=True)
        for label, algorithm, controlled in RUNS:
            if label not in args.runs:
                continue
            result = await run_once(scenario, label, algorithm, controlled, args, args.report_dir)
            results.append(result)
            print(row(result), f"  [{result.wall_s:.0f} s wall, clock {result.clock_offset_s:+.1f} s]", flush=True)
            print(f"{'':<13} {needs_line(result)}", flush=True)
            for note in result.notes:
                print(f"{'':<13} note: {note}", flush=True)
        print(flush=True)
    print(
        "violations: samples over the limit for longer than the reaction tolerance (apply delay + one slot + one "
        "sample); worst: the largest excess among them; longest: the longest stretch over the limit, wall seconds; "
        "cost at the scenario's prices."
    )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(asyncio.run(main()))
