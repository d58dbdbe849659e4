"""Augmenting paths on the segment network: delivering what a constructed schedule left undelivered.

In the residual network of a schedule ``x`` (kWh per segment and EV, :mod:`network`), an *augmenting path*
runs from an EV still short, to a segment where it could charge more, to an EV charging there that could
charge less, to another segment where that EV could charge more, ... to a segment with room on the site.
Pushing ``δ`` along it raises the first EV's energy by ``δ`` and changes no other EV's total (each EV on
the way only moves ``δ`` from one segment to another); a schedule without such a path is a maximum flow,
and the full segments the short EVs reach then form a minimum cut (:meth:`SegmentNetwork.residual_cut`).

The minimum-current rule is kept on every arc in the form :mod:`cut_flow` can realise: an EV lowered in a
segment keeps at least one slot at its minimum there, and an EV that did not charge in a segment starts
there only with at least that much (a piece under the minimum over the whole segment charges at the
minimum in fewer slots). Paths are found breadth first from all short EVs at once (the least served
first), several per search; a path the rule forbids closes its arc for the next search; up to a budget.
"""

from __future__ import annotations

import time

import numpy as np

from optivgi_csms.scheduling.algorithms.network import SegmentNetwork

#: Below this an amount is noise (kWh).
EPS = 1e-9


def augment(net: SegmentNetwork, x: np.ndarray, *, rounds: int = 1000, seconds: float = 0.05) -> int:
    """Push flow along augmenting paths in ``x`` (S, n) kWh, in place, for at most ``rounds`` searches or
    ``seconds``; returns how many paths were used."""
    problem = net.problem
    request = problem.energy_kwh
    cap, minimum, site = net.cap, net.least, net.site
    scale = np.maximum(request, EPS)
    stop_at = time.perf_counter() + seconds
    pushed = 0
    closed = np.zeros(cap.shape, dtype=bool)  # start arcs the rule forbade
    for _ in range(rounds):
        room = request - x.sum(axis=0)
        spare = site - x.sum(axis=1)
        short = np.flatnonzero(room > 1e-6)
        if not len(short) or (spare <= 1e-6).all() or time.perf_counter() > stop_at:
            break
        on = x > EPS
        # May go up: more where charging, or from 0 to at least the minimum; may go down: keeping it.
        up = (np.where(on, cap - x, np.where(cap >= minimum, cap, 0.0)) > 1e-6) & ~closed
        down = x - minimum > 1e-6
        found = _search(up, down, spare > 1e-6, short[np.argsort((request - room)[short] / scale[short])])
        if found is None:
            break
        seg_parent, ev_parent, sinks = found
        used, closing = 0, int(closed.sum())
        for sink in sinks.tolist():
            path = _trace(sink, seg_parent, ev_parent)
            amount = _bottleneck(path, x, cap, minimum, room, spare[sink])
            if amount <= 1e-6:
                for ev, _, segment in path:
                    closed[segment, ev] |= x[segment, ev] <= EPS
                continue
            for ev, source, segment in path:
                x[segment, ev] += amount
                if source >= 0:
                    x[source, ev] -= amount
                else:
                    room[ev] -= amount
            spare[sink] -= amount
            used += 1
        if not used and closed.sum() == closing:
            break
        pushed += used
    return pushed


def _search(
    up: np.ndarray, down: np.ndarray, has_room: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Breadth-first search from the EVs ``start`` (in priority order): returns each reached segment's
    parent EV, each reached EV's parent segment (-1 for a start) and the segments with room at the first
    depth that has any; None when no segment with room can be reached."""
    n_segments, n_evs = up.shape
    seg_parent = np.full(n_segments, -1)
    ev_parent = np.full(n_evs, -1)
    seen_seg = np.zeros(n_segments, dtype=bool)
    seen_ev = np.zeros(n_evs, dtype=bool)
    seen_ev[start] = True
    frontier = start
    while len(frontier):
        reach = up[:, frontier]  # (S, k)
        new = reach.any(axis=1) & ~seen_seg
        if not new.any():
            return None
        segments = np.flatnonzero(new)
        seg_parent[segments] = frontier[np.argmax(reach[segments], axis=1)]
        seen_seg[segments] = True
        sinks = segments[has_room[segments]]
        if len(sinks):
            return seg_parent, ev_parent, sinks
        back = down[segments]  # (k, n)
        evs = np.flatnonzero(back.any(axis=0) & ~seen_ev)
        ev_parent[evs] = segments[np.argmax(back[:, evs], axis=0)]
        seen_ev[evs] = True
        frontier = evs
    return None


def _trace(sink: int, seg_parent: np.ndarray, ev_parent: np.ndarray) -> list[tuple[int, int, int]]:
    """The path ending in ``sink`` as ``(ev, from_segment, to_segment)`` steps (``from_segment`` -1: the EV
    itself is short), sink side first."""
    path = []
    segment = sink
    while True:
        ev = int(seg_parent[segment])
        source = int(ev_parent[ev])
        path.append((ev, source, segment))
        if source < 0:
            return path
        segment = source


def _bottleneck(
    path: list[tuple[int, int, int]],
    x: np.ndarray,
    cap: np.ndarray,
    minimum: np.ndarray,
    room: np.ndarray,
    spare: float,
) -> float:
    """The most that can be pushed along ``path`` now (0 if the minimum-current rule forbids it)."""
    amount = spare
    starts = []  # arcs where an EV would start charging: the amount must reach its minimum
    for ev, source, segment in path:
        amount = min(amount, cap[segment, ev] - x[segment, ev])
        if x[segment, ev] <= EPS:
            starts.append(minimum[segment, ev])
        amount = min(amount, x[source, ev] - minimum[source, ev] if source >= 0 else room[ev])
    if starts and amount < max(starts) - EPS:
        return 0.0
    return max(amount, 0.0)
