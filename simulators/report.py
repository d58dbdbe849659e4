"""The end-of-run report: what every EV asked for and got, site power against the limit, profiles,
protocol errors and message counts, as ``report.json`` and a ``report.png`` chart.

Built from the :class:`~simulators.recorder.Recorder` of a run and a :class:`RunInfo` (what the site
runner knows beyond it), so it can be produced, and tested, without any station or CSMS.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from simulators.recorder import PowerSample, Recorder, SessionRecord
from simulators.scenario import SimScenario

REPORT_FORMAT = 1
#: Points of the site-power series (and chart): fine enough to see every EV, small enough for JSON.
SERIES_POINTS = 600
#: An EV counts as fully served when it got at least this share of what it asked for.
SERVED_SHARE = 0.99
#: Lists that could grow with the run are cut to this many entries in the JSON (the counts stay whole).
MAX_LISTED = 200


@dataclass
class RunInfo:
    """What the report needs besides the recorder: the scenario, the run's settings and how it ended."""

    scenario: SimScenario
    url: str
    time_scale: float
    versions: Mapping[str, str]  # station id -> "1.6" / "2.0.1"
    wall_s: float
    sim_start: datetime
    sim_end: datetime
    stopped: str  # "scenario over", "duration" or "interrupted"
    connected: frozenset[str] = frozenset()  # stations that were connected at least once
    notes: Mapping[str, list[str]] = field(default_factory=dict)  # per EV id: what went wrong


@dataclass(frozen=True)
class PowerSeries:
    """Site and per-EV power on a regular grid of scenario times, with the limit in force."""

    times: list[datetime]
    site_kw: np.ndarray
    limit_kw: np.ndarray
    ev_kw: dict[str, np.ndarray]

    @property
    def step_s(self) -> float:
        return (self.times[1] - self.times[0]).total_seconds() if len(self.times) > 1 else 0.0


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    text = moment.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def power_series(
    samples: Iterable[PowerSample], scenario: SimScenario, start: datetime, end: datetime, points: int = SERIES_POINTS
) -> PowerSeries:
    """Resample the EVSEs' samples onto ``points`` moments from ``start`` to ``end``.

    Each EVSE's last sample holds until its next one, but not longer than three of its usual sampling
    intervals: a station that stopped sampling (off line, stopped) does not keep drawing in the chart.
    """
    span = max((end - start).total_seconds(), 1.0)
    grid_s = np.linspace(0.0, span, max(points, 2))
    times = [start + timedelta(seconds=float(s)) for s in grid_s]
    by_evse: dict[tuple[str, int], list[PowerSample]] = defaultdict(list)
    for sample in samples:
        by_evse[(sample.station_id, sample.evse_id)].append(sample)
    site = np.zeros(len(grid_s))
    ev_kw: dict[str, np.ndarray] = {}
    for evse_samples in by_evse.values():
        evse_samples.sort(key=lambda s: s.sim_time)
        at = np.array([(s.sim_time - start).total_seconds() for s in evse_samples])
        power = np.array([s.power_kw for s in evse_samples])
        gaps = np.diff(at)
        hold = 3 * float(np.median(gaps)) if len(gaps) else span / max(points - 1, 1)
        index = np.searchsorted(at, grid_s, side="right") - 1
        valid = index >= 0
        valid[valid] &= grid_s[valid] - at[index[valid]] <= max(hold, 1e-9)
        values = np.where(valid, power[np.clip(index, 0, None)], 0.0)
        site += values
        owners = np.array([s.ev_id or "" for s in evse_samples], dtype=object)[np.clip(index, 0, None)]
        for ev_id in {o for o in owners[valid] if o}:
            mask = valid & (owners == ev_id)
            ev_kw.setdefault(ev_id, np.zeros(len(grid_s)))[mask] += values[mask]
    limit = np.array(scenario.limit_kw_at(times))
    return PowerSeries(times=times, site_kw=site, limit_kw=limit, ev_kw=ev_kw)


def _ev_rows(recorder: Recorder, info: RunInfo) -> list[dict[str, Any]]:
    peaks: dict[str, float] = {}
    for sample in recorder.samples:
        if sample.ev_id is not None:
            peaks[sample.ev_id] = max(peaks.get(sample.ev_id, 0.0), sample.power_kw)
    rows = []
    for record in recorder.sessions.values():
        rows.append(
            {
                "id": record.ev_id,
                "station_id": record.station_id,
                "evse_id": record.evse_id,
                "ocpp_version": info.versions.get(record.station_id),
                "requested_kwh": round(record.requested_kwh, 3),
                "delivered_kwh": round(record.delivered_kwh, 3),
                "served_share": round(_share(record), 4),
                "status": _status(record),
                "peak_kw": round(peaks.get(record.ev_id, 0.0), 3),
                "arrival": _iso(record.arrival),
                "departure": _iso(record.departure),
                "plugged_at": _iso(record.plugged_at),
                "unplugged_at": _iso(record.unplugged_at),
                "transaction_id": record.transaction_id,
                "notes": list(info.notes.get(record.ev_id, [])),
            }
        )
    return rows


def _share(record: SessionRecord) -> float:
    return record.delivered_kwh / record.requested_kwh if record.requested_kwh > 0 else 1.0


def _status(record: SessionRecord) -> str:
    if record.plugged_at is None:
        return "not plugged in"
    if _share(record) >= SERVED_SHARE:
        return "served"
    return "partly served" if record.delivered_kwh > 0 else "no energy"


def _profiles(recorder: Recorder) -> dict[str, Any]:
    per_station: dict[str, dict[str, Any]] = {}
    for event in recorder.profiles:
        entry = per_station.setdefault(event.station_id, {"accepted": 0, "rejected": 0, "reasons": Counter()})
        entry["accepted" if event.accepted else "rejected"] += 1
        if not event.accepted:
            entry["reasons"][event.reason or "no reason given"] += 1
    accepted = sum(e.accepted for e in recorder.profiles)
    return {
        "received": len(recorder.profiles),
        "accepted": accepted,
        "rejected": len(recorder.profiles) - accepted,
        "per_station": {sid: {**e, "reasons": dict(e["reasons"])} for sid, e in sorted(per_station.items())},
        "events": [
            {
                "sim_time": _iso(e.sim_time),
                "station_id": e.station_id,
                "evse_id": e.evse_id,
                "accepted": e.accepted,
                "reason": e.reason,
                "profile": e.profile,
            }
            for e in recorder.profiles[:MAX_LISTED]
        ],
    }


def _errors(recorder: Recorder) -> dict[str, Any]:
    per_station = Counter(str(e.get("station_id")) for e in recorder.protocol_errors)
    return {
        "count": len(recorder.protocol_errors),
        "per_station": dict(sorted(per_station.items())),
        "items": [
            {**e, "sim_time": _iso(e["sim_time"]) if isinstance(e.get("sim_time"), datetime) else e.get("sim_time")}
            for e in recorder.protocol_errors[:MAX_LISTED]
        ],
    }


def _messages(recorder: Recorder) -> dict[str, Any]:
    by_action: dict[str, dict[str, Any]] = defaultdict(lambda: {"sent": 0, "received": 0})
    for key, count in recorder.messages.items():
        direction, _, action = key.partition(":")
        if direction == "answered":  # the answers' statuses, e.g. NotifyEVChargingNeeds: {"Accepted": 3}
            action, _, status = action.partition(":")
            answers = by_action[action].setdefault("answers", {})
            answers[status] = answers.get(status, 0) + count
            continue
        by_action[action][direction] = by_action[action].get(direction, 0) + count
    return {
        "sent": sum(v["sent"] for v in by_action.values()),
        "received": sum(v["received"] for v in by_action.values()),
        "by_action": dict(sorted(by_action.items())),
    }


def build_report(recorder: Recorder, info: RunInfo, series: PowerSeries | None = None) -> dict[str, Any]:
    """The report document (``report.json``)."""
    series = series or power_series(recorder.samples, info.scenario, info.sim_start, info.sim_end)
    evs = _ev_rows(recorder, info)
    excess = np.clip(series.site_kw - series.limit_kw, 0.0, None)
    over = excess > 1e-6
    versions = Counter(info.versions.values())
    requested = sum(r.requested_kwh for r in recorder.sessions.values())
    delivered = sum(r.delivered_kwh for r in recorder.sessions.values())
    return {
        "format": REPORT_FORMAT,
        "scenario": info.scenario.name,
        "url": info.url,
        "time_scale": info.time_scale,
        "wall_s": round(info.wall_s, 3),
        "sim_start": _iso(info.sim_start),
        "sim_end": _iso(info.sim_end),
        "stopped": info.stopped,
        "stations": {
            "count": len(info.scenario.stations),
            "by_version": dict(sorted(versions.items())),
            "connected": len(info.connected),
            "list": [
                {
                    "id": s.station_id,
                    "ocpp_version": info.versions.get(s.station_id),
                    "evse_count": s.evse_count,
                    "connected": s.station_id in info.connected,
                }
                for s in info.scenario.stations
            ],
        },
        "totals": {
            "evs": len(evs),
            "evs_plugged_in": sum(row["plugged_at"] is not None for row in evs),
            "evs_with_energy": sum(row["delivered_kwh"] > 0 for row in evs),
            "evs_fully_served": sum(row["status"] == "served" for row in evs),
            "requested_kwh": round(requested, 3),
            "delivered_kwh": round(delivered, 3),
            "peak_site_kw": round(float(series.site_kw.max(initial=0.0)), 3),
            "min_limit_kw": round(float(series.limit_kw.min(initial=math.inf)), 3) if len(series.limit_kw) else None,
            "max_excess_kw": round(float(excess.max(initial=0.0)), 3),
            "time_over_limit_s": round(float(over.sum()) * series.step_s, 1),
            "energy_over_limit_kwh": round(float(excess.sum()) * series.step_s / 3600, 3),
        },
        "evs": evs,
        "site_power": {
            "times": [_iso(t) for t in series.times],
            "power_kw": [round(float(v), 3) for v in series.site_kw],
            "limit_kw": [round(float(v), 3) for v in series.limit_kw],
        },
        "ev_power_kw": {ev_id: [round(float(v), 3) for v in values] for ev_id, values in sorted(series.ev_kw.items())},
        "profiles": _profiles(recorder),
        "protocol_errors": _errors(recorder),
        "messages": _messages(recorder),
    }


def plot_report(report: Mapping[str, Any], series: PowerSeries, path: Path) -> None:
    """Write the chart: site power against the limit (top), each EV's power stacked (bottom)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, and never a GUI window from a CLI
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, height_ratios=(1, 1.3))
    times = series.times
    top.plot(times, series.site_kw, color="tab:blue", linewidth=1.4, label="site power")
    top.step(times, series.limit_kw, where="post", color="tab:red", linestyle="--", linewidth=1.2, label="site limit")
    top.fill_between(
        times, series.limit_kw, series.site_kw, where=series.site_kw > series.limit_kw, color="tab:red", alpha=0.15
    )
    top.set_ylabel("kW")
    top.legend(loc="upper right")
    totals = report["totals"]
    stations = report["stations"]["by_version"]
    mix = ", ".join(f"{count} × OCPP {version}" for version, count in stations.items())
    top.set_title(
        f"{report['scenario']}: {report['stations']['count']} stations ({mix}), time scale ×{report['time_scale']:g}\n"
        f"delivered {totals['delivered_kwh']:.1f} of {totals['requested_kwh']:.1f} kWh asked, "
        f"peak {totals['peak_site_kw']:.1f} kW",
        fontsize=10,
    )
    ordered = sorted(series.ev_kw.items(), key=lambda item: -float(item[1].sum()))
    if ordered:
        bottom.stackplot(
            times,
            *[values for _, values in ordered],
            labels=[ev_id for ev_id, _ in ordered],
            colors=[plt.cm.tab20(k % 20) for k in range(len(ordered))],
            linewidth=0,
        )
        if len(ordered) <= 12:
            bottom.legend(loc="upper right", fontsize=8, ncol=2)
    bottom.set_ylabel("kW per EV (stacked)")
    bottom.set_xlabel("scenario time (UTC)")
    long_run = len(times) > 1 and times[-1] - times[0] > timedelta(hours=20)
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M" if long_run else "%H:%M"))
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
        axis.set_ylim(bottom=0)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(recorder: Recorder, info: RunInfo, directory: Path) -> dict[str, Any]:
    """Write ``report.json`` and ``report.png`` into ``directory`` (created if needed); returns the report."""
    directory.mkdir(parents=True, exist_ok=True)
    series = power_series(recorder.samples, info.scenario, info.sim_start, info.sim_end)
    report = build_report(recorder, info, series)
    (directory / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    plot_report(report, series, directory / "report.png")
    return report


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """A few lines for the terminal at the end of a run."""
    totals = report["totals"]
    stations = report["stations"]
    profiles = report["profiles"]
    mix = ", ".join(f"{n} × {v}" for v, n in stations["by_version"].items())
    return [
        f"{report['scenario']}: stopped ({report['stopped']}) after {report['wall_s']:.0f} s wall, "
        f"scenario time {report['sim_start']} → {report['sim_end']}",
        f"stations: {stations['connected']} of {stations['count']} connected ({mix})",
        f"EVs: {totals['evs_with_energy']} of {totals['evs']} charged, {totals['evs_fully_served']} fully served; "
        f"{totals['delivered_kwh']:.1f} of {totals['requested_kwh']:.1f} kWh delivered",
        f"site: peak {totals['peak_site_kw']:.1f} kW, lowest limit {totals['min_limit_kw']} kW, "
        f"over the limit for {totals['time_over_limit_s'] / 3600:.1f} h of scenario time",
        f"profiles: {profiles['received']} received, {profiles['rejected']} rejected; "
        f"protocol errors: {report['protocol_errors']['count']}; "
        f"messages: {report['messages']['sent']} sent, {report['messages']['received']} received",
    ]
