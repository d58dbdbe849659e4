"""The live view of a site run (rich): scenario time, stations connected, EVs charging, site power
against the limit, energy, profiles and errors, refreshed a few times a second.

:func:`site_status` computes the figures from the run and its recorder (no terminal needed, so it
can be tested); :class:`LiveProgress` draws them while the run goes on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from simulators.recorder import PowerSample, Recorder
from simulators.site import SiteRun

REFRESH_PER_SECOND = 4


@dataclass(frozen=True)
class SiteStatus:
    """A run's figures at one moment."""

    sim_now: datetime
    wall_s: float
    done_share: float
    stations: int
    connected: int
    connected_by_version: dict[str, tuple[int, int]]  # version -> (connected, total)
    evs: int
    evs_waiting: int
    evs_plugged: int
    evs_charging: int
    evs_left: int
    power_kw: float
    limit_kw: float
    delivered_kwh: float
    requested_kwh: float
    profiles_accepted: int
    profiles_rejected: int
    errors: int
    messages: int


class LatestSamples:
    """The last sample of every EVSE, read incrementally from a recorder's growing list."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._seen = 0
        self.latest: dict[tuple[str, int], PowerSample] = {}

    def update(self) -> dict[tuple[str, int], PowerSample]:
        samples = self._recorder.samples
        for sample in samples[self._seen :]:
            self.latest[(sample.station_id, sample.evse_id)] = sample
        self._seen = len(samples)
        return self.latest


def site_status(site: SiteRun, latest: LatestSamples) -> SiteStatus:
    """The figures of ``site`` now."""
    recorder = site.recorder
    scenario = site.scenario
    now = min(site.clock.sim_now(), max(scenario.end, scenario.start))  # the clock runs on while the run winds down
    span = (scenario.end - scenario.start).total_seconds()
    done = min(1.0, max(0.0, (now - scenario.start).total_seconds() / span)) if span > 0 else 1.0
    by_version: dict[str, tuple[int, int]] = {}
    for station_id, version in site.versions.items():
        up, total = by_version.get(version, (0, 0))
        by_version[version] = (up + (station_id in recorder.connected), total + 1)
    samples = latest.update()
    # Only the EVs plugged in now: a sample can outlive its EV by a tick.
    charging = {s.ev_id for s in samples.values() if s.ev_id in site.plugged and s.power_kw > 0}
    records = recorder.sessions.values()
    left = sum(r.unplugged_at is not None or (r.plugged_at is None and r.departure <= now) for r in records)
    return SiteStatus(
        sim_now=now,
        wall_s=site.wall_elapsed_s(),
        done_share=done if site.started else 0.0,
        stations=len(site.stations),
        connected=len(recorder.connected),
        connected_by_version=dict(sorted(by_version.items())),
        evs=len(recorder.sessions),
        evs_waiting=sum(r.plugged_at is None and r.departure > now for r in records),
        evs_plugged=len(site.plugged),
        evs_charging=len(charging),
        evs_left=left,
        power_kw=sum(s.power_kw for s in samples.values()),
        limit_kw=scenario.limit_kw_at([now])[0],
        delivered_kwh=sum(r.delivered_kwh for r in records),
        requested_kwh=sum(r.requested_kwh for r in records),
        profiles_accepted=sum(p.accepted for p in recorder.profiles),
        profiles_rejected=sum(not p.accepted for p in recorder.profiles),
        errors=len(recorder.protocol_errors),
        # Answers counted by their status are not messages of their own.
        messages=sum(n for key, n in recorder.messages.items() if not key.startswith("answered:")),
    )


def render(status: SiteStatus, title: str) -> Panel:
    """The panel drawn for ``status``."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    state = "waiting for stations" if status.done_share == 0 and status.connected < status.stations else ""
    table.add_row("scenario time", f"{status.sim_now:%a %H:%M}  ({status.wall_s:.0f} s wall) {state}")
    table.add_row("", ProgressBar(total=1.0, completed=status.done_share, width=40))
    versions = ", ".join(f"{up}/{total} OCPP {v}" for v, (up, total) in status.connected_by_version.items())
    table.add_row("stations", f"{status.connected} of {status.stations} connected ({versions})")
    table.add_row(
        "EVs",
        f"{status.evs_charging} charging, {status.evs_plugged} plugged in, "
        f"{status.evs_waiting} to come, {status.evs_left} left (of {status.evs})",
    )
    over = status.power_kw > status.limit_kw + 1e-6
    power = Text(f"{status.power_kw:.1f} kW", style="bold red" if over else "bold green")
    table.add_row("site power", Text.assemble(power, f" of {status.limit_kw:.1f} kW limit"))
    table.add_row("energy", f"{status.delivered_kwh:.1f} of {status.requested_kwh:.1f} kWh asked")
    table.add_row(
        "CSMS",
        f"{status.profiles_accepted} profiles accepted, {status.profiles_rejected} rejected; "
        f"{status.errors} protocol errors; {status.messages} messages",
    )
    return Panel(Group(table), title=title, expand=False)


class LiveProgress:
    """Draws the run's status on ``console`` while a task (the site run) is going on."""

    def __init__(self, site: SiteRun, console: Console) -> None:
        self._site = site
        self._console = console
        self._latest = LatestSamples(site.recorder)
        self._title = f"optivgi-sim: {site.scenario.name or 'site'} → {site.options.url}"

    def _panel(self) -> Panel:
        return render(site_status(self._site, self._latest), self._title)

    async def follow(self, task: asyncio.Task) -> None:
        """Refresh until ``task`` is done; the last figures stay on screen."""
        with Live(self._panel(), console=self._console, auto_refresh=False) as live:
            while not task.done():
                await asyncio.wait({task}, timeout=1 / REFRESH_PER_SECOND)
                live.update(self._panel(), refresh=True)
