"""Which new profiles are worth sending: only those whose limits changed meaningfully, and never a skip
that could let the site exceed a limit.

Re-sending every profile on every cycle costs O(N) messages per event and O(N²) in a start storm; most
plans move an EV's limit by a fraction of an ampere. A profile is re-sent when, within the next two
slots, it pauses or resumes the EV or a limit moves by more than the station's LimitChangeSignificance
(5 % when it does not say) or half an ampere (300 W); when its unit or shape changes; or when the profile
the station holds is about to end. A skipped profile leaves the station on the old limits, so a skip is
allowed only while the old limits fit in what the new plan leaves free at every slot, on the site limit
and every phase limit; skips that lower the load are taken first, as they free room for the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from optivgi_csms.domain.charging_profile import ChargingProfile, RateUnit
from optivgi_csms.scheduling import Site
from optivgi_csms.scheduling.ev import amps_from_kw
from optivgi_csms.smart_charging.profiles import boundaries, end_of, kw_per_slot, period_at

#: A change smaller than this share of the limit is not worth a message (unless the station says otherwise).
DEFAULT_SIGNIFICANCE = 0.05
#: ... nor one smaller than this, in the profile's unit.
ABSOLUTE_TOLERANCE = {RateUnit.AMPERE: 0.5, RateUnit.WATT: 300.0}
#: A profile the station holds that ends within this many slots is replaced before it ends.
EXPIRY_SLOTS = 2
#: Limits are compared over this many slots ahead (the one in progress and the next).
NEAR_SLOTS = 2


@dataclass
class Candidate:
    """A new profile for one EV, and what the station holds (or is being sent) for it."""

    key: Any
    new: ChargingProfile
    old: ChargingProfile | None
    voltage_v: float
    phases: int
    phase_map: tuple[str, ...]
    significance: float | None = None
    forced: bool = False
    #: False for an EV that suspended itself: its pilot is not counted in the site's load (see deviation).
    counted: bool = True
    #: Another profile the EV may still be running on: the one ``old`` replaces while ``old`` is not in
    #: force yet, or the station's fail-safe profile while it holds none of ours.
    earlier: ChargingProfile | None = None
    reason: str = field(default="", init=False)


def change_reason(candidate: Candidate, wall_now: datetime, resolution: timedelta) -> str | None:
    """Why the new profile must be sent, or None when the station's profile is as good."""
    new, old = candidate.new, candidate.old
    if candidate.forced:
        return "requested"
    if old is None:
        return "new"
    if old.schedule.unit is not new.schedule.unit or old.stack_level != new.stack_level:
        return "shape"
    old_end, new_end = end_of(old), end_of(new)
    if (
        old_end is not None
        and (new_end is None or old_end < new_end)
        and old_end - wall_now < EXPIRY_SLOTS * resolution
    ):
        return "expiring"
    horizon_end = new_end or (wall_now + 24 * resolution)
    window_end = min(horizon_end, old_end) if old_end is not None else horizon_end
    # Only the next slots decide: a change further ahead is sent when it comes near (the plan is made again
    # every slot, and will likely differ by then). Keeping the old limits meanwhile is safe: a kept profile
    # that holds more than the plan anywhere in the horizon must fit the site's room (select_sends).
    window_end = min(window_end, wall_now + NEAR_SLOTS * resolution)
    moments = sorted({*boundaries(new, wall_now, window_end), *boundaries(old, wall_now, window_end)})
    share = candidate.significance if candidate.significance is not None else DEFAULT_SIGNIFICANCE
    tolerance = ABSOLUTE_TOLERANCE[new.schedule.unit]
    for moment in moments:
        before, after = period_at(old, moment), period_at(new, moment)
        if before is None or after is None:
            return "window"
        a, b = before.limit, after.limit
        if (a <= 0) != (b <= 0):
            return "pause" if b <= 0 else "resume"
        if abs(b - a) > max(tolerance, share * max(a, b)):
            return f"limit {a:g} -> {b:g} {new.schedule.unit.value} at {moment.isoformat(timespec='seconds')}"
        if before.number_phases != after.number_phases:
            return "phases"
    return None


def raises_to_hold(
    candidates: Sequence[Candidate],
    sends: Sequence[Candidate],
    site: Site,
    slot_starts: Sequence[datetime],
    resolution: timedelta,
) -> set[int]:
    """The ids of the sends that must wait for the lowered limits to be in force first.

    Until a lowered profile is in force its EV may still draw its old limit. A profile that lets its EV
    draw more than it may now (its old profile, or the one before while that is not in force yet) can go
    at once if the increase fits in what the site has left over everyone's current limits; one that needs
    the room the lowerings free must wait for them (the outbox holds it). Increases are let through
    smallest first, over the current and next slot, on the site limit and every phase limit."""
    starts = list(slot_starts)[:NEAR_SLOTS]
    if not starts:
        return set()
    shape = _LoadShape(site, starts, resolution)
    running = {id(candidate): shape.running_load(candidate) for candidate in candidates}
    headroom = [limit.copy() for limit in shape.limits]
    for loads in running.values():
        for row, value in zip(headroom, loads, strict=True):
            row -= value
    increases = []
    for candidate in sends:
        now = running.get(id(candidate)) or shape.running_load(candidate)
        new = shape.load(candidate, candidate.new)
        deltas = [np.maximum(after - before, 0.0) for after, before in zip(new, now, strict=True)]
        if any(bool(np.any(delta > 1e-6)) for delta in deltas):
            increases.append((candidate, deltas))
    increases.sort(key=lambda item: float(item[1][0].max()))
    held: set[int] = set()
    for candidate, deltas in increases:
        if all(bool(np.all(row - delta >= -1e-6)) for row, delta in zip(headroom, deltas, strict=True)):
            for row, delta in zip(headroom, deltas, strict=True):
                row -= delta
        else:
            held.add(id(candidate))
    return held


class _LoadShape:
    """A site's limits over some slots, and an EV's load under a profile on the same rows (site kW, then
    each limited phase's A)."""

    def __init__(self, site: Site, starts: list[datetime], resolution: timedelta) -> None:
        self.starts = starts
        self.resolution = resolution
        self.phase_names = sorted(site.phase_limit_a)
        self.limits = [np.asarray(site.limits_kw(starts), dtype=float)]
        self.limits += [np.full(len(starts), float(site.phase_limit_a[name])) for name in self.phase_names]

    def running_load(self, candidate: Candidate) -> list[np.ndarray]:
        """The most the EV may draw now: under ``old``, or ``earlier`` while that may still be in force."""
        old, earlier = self.load(candidate, candidate.old), self.load(candidate, candidate.earlier)
        return [np.maximum(a, b) for a, b in zip(old, earlier, strict=True)]

    def load(self, candidate: Candidate, profile: ChargingProfile | None) -> list[np.ndarray]:
        """The most the EV may draw under ``profile`` (nothing where it does not apply)."""
        if not candidate.counted:
            return [np.zeros(len(self.starts)) for _ in self.limits]
        kw = np.asarray(kw_per_slot(profile, self.starts, self.resolution, candidate.voltage_v, 0.0))
        per_phase = amps_from_kw(1.0, candidate.voltage_v, candidate.phases)
        return [kw] + [
            kw * per_phase if name in candidate.phase_map else np.zeros(len(self.starts)) for name in self.phase_names
        ]


def select_sends(
    candidates: Sequence[Candidate],
    site: Site,
    slot_starts: Sequence[datetime],
    resolution: timedelta,
    wall_now: datetime,
) -> list[Candidate]:
    """The candidates to send; each gets its ``reason`` (why it is sent, or why it is kept)."""
    shape = _LoadShape(site, list(slot_starts), resolution)
    load = shape.load
    new_loads = {id(c): load(c, c.new) for c in candidates}
    headroom = [limit.copy() for limit in shape.limits]
    for loads in new_loads.values():
        for row, value in zip(headroom, loads, strict=True):
            row -= value

    sends: list[Candidate] = []
    keeps: list[tuple[Candidate, list[np.ndarray]]] = []
    for candidate in candidates:
        reason = change_reason(candidate, wall_now, resolution)
        if reason is not None:
            candidate.reason = reason
            sends.append(candidate)
            continue
        old_loads = load(candidate, candidate.old)
        deltas = [old - new for old, new in zip(old_loads, new_loads[id(candidate)], strict=True)]
        keeps.append((candidate, deltas))
    # Keeping a profile that holds less than the new one frees room; take those first.
    keeps.sort(key=lambda item: max(float(delta.max()) for delta in item[1]))
    for candidate, deltas in keeps:
        if all(bool(np.all(row - delta >= -1e-6)) for row, delta in zip(headroom, deltas, strict=True)):
            for row, delta in zip(headroom, deltas, strict=True):
                row -= delta
            candidate.reason = "unchanged"
        else:
            candidate.reason = "kept limits would exceed the site's room"
            sends.append(candidate)
    return sends
