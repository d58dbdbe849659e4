"""The default algorithm's fast path: an energy-optimal, fair schedule built along a cut, without a solver.

On the network of :mod:`network`, take the best prefix cut ``[0, τ)`` (the site congested before ``τ``).
If it is a minimum cut, every maximum flow has the same shape (complementary slackness): every segment
before ``τ`` is full; after ``τ``, each EV that cannot get all it wants there (``E_i > U_i([τ, S))``, *short*)
charges at its maximum throughout, and every other EV gets all it wants there and nothing before ``τ``.
The schedule is built in that shape, segment by segment, earliest first:

* **before τ** the short EVs share the congested capacity. First their *targets*: max-min fair in the share
  of its request each EV ends up with (water-filling, :func:`block_greedy.max_level`), so nobody is starved
  while another gets more than its share. Then in each segment: what an EV must get now to still reach its
  target, then the EVs leaving first toward their targets (so each charges in one run, and those that leave
  first are served first), then whatever is left to the lowest served share (a target no schedule can reach
  leaves room to others);
* **after τ** the short EVs at their maximum; the others at their maximum from the start (charging early)
  in order of departure, what they must get now first.

Where the prefix is not a minimum cut, or the order above misjudged who needs the congested capacity, the
construction falls short of the bound: augmenting paths (:mod:`augment`) then deliver the rest.

Every allocation is 0 or at least the EV's minimum (the 6 A rule). An EV's last piece too small for its
minimum is raised to it from the EV's earlier pieces (through an exchange with another EV where its segment
is full); a piece still under the minimum over its segment charges at the minimum in fewer slots, the EVs
charging there making room in those slots and taking it back in the others.

Nothing here proves optimality: the caller compares the result with the cut's bound (any cut bounds every
valid schedule) and uses it only within the certified gap. It needs no phase limit to bind (each phase row
would be another constraint per segment) and no price differences (the bill is the LP's second stage).
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.algorithms.augment import augment
from optivgi_csms.scheduling.algorithms.block_greedy import max_level
from optivgi_csms.scheduling.algorithms.network import SegmentNetwork
from optivgi_csms.scheduling.problem import Problem

#: Below this an amount is noise (kWh).
EPS = 1e-9
#: Augmenting paths are searched only when the construction is further than this below its cut's bound.
AUGMENT_ABOVE = 2e-4


def applies(problem: Problem) -> bool:
    """True when the network is the whole first stage: prices do not differ and no phase limit can bind
    (every phase could carry all its EVs at their maximum at once)."""
    if problem.has_prices:
        return False
    if not len(problem.phase_limit_a):
        return True
    load = problem.phase_coef.T @ problem.cap  # (P, T) A if every EV charged at its maximum
    return bool((load <= problem.phase_limit_a[:, None] + 1e-9).all())


def fill_in_order(want: np.ndarray, lo: np.ndarray, head: float) -> tuple[np.ndarray, float]:
    """Give each entry, in order, ``want`` or what is left of ``head`` if less, never a positive amount under
    ``lo`` (who cannot get ``lo`` gets 0 and the next is tried). Returns the amounts and what is left.

    A whole run that fits is given at once (prefix sums); the loop only turns where the head runs out. A
    remainder under every minimum left is not wasted where it can be helped: the first entry skipped gets
    its minimum, part of it taken from the last entry served (which keeps its own minimum).
    """
    cumulative = np.cumsum(want)
    if not len(want) or cumulative[-1] <= head + EPS:
        return want.copy(), max(head - float(cumulative[-1]) if len(want) else head, 0.0)
    give = np.zeros(len(want))
    start = 0
    skipped = -1
    while head > EPS:
        k = int(np.searchsorted(cumulative, head + EPS, side="right"))
        give[start : start + k] = want[start : start + k]
        if k:
            head -= float(cumulative[k - 1])
        j = start + k
        if j >= len(want):
            break
        if head >= lo[j] - EPS:  # the first that does not fit takes what is left
            give[j] = head
            return give, 0.0
        skipped = j if skipped < 0 else skipped
        # Skip to the next entry whose minimum fits what is left.
        fits = np.flatnonzero(lo[j + 1 :] <= head + EPS)
        if not len(fits):
            break
        start = j + 1 + int(fits[0])
        cumulative = np.cumsum(want[start:])
    if head > EPS and skipped >= 0:
        served = np.flatnonzero(give > EPS)
        if len(served):
            last = served[-1]
            lack = lo[skipped] - head
            if give[last] - lack >= lo[last] - EPS and give[last] - lack > EPS and want[skipped] >= lo[skipped]:
                give[last] -= lack
                give[skipped] = lo[skipped]
                head = 0.0
    return give, max(head, 0.0)


def _serve(want: np.ndarray, must: np.ndarray, lo: np.ndarray, head: float) -> tuple[np.ndarray, float]:
    """``must`` first (in order, each at least its minimum where it charges at all), then the rest of
    ``want`` in order."""
    if must.max(initial=0.0) <= EPS:
        return fill_in_order(want, lo, head)
    first = np.where(must > EPS, np.maximum(must, np.minimum(lo, want)), 0.0)
    give, head = fill_in_order(first, lo, head)
    more, head = fill_in_order(np.maximum(want - give, 0.0), np.where(give > 0, 0.0, lo), head)
    return give + more, head


def fair_targets(net: SegmentNetwork, tau: int, after: np.ndarray) -> np.ndarray:
    """(n,) kWh each EV should get before ``τ``: the congested capacity shared so that the least final
    share of request is as high as possible (an EV below the common level is at what it can take)."""
    request = net.problem.energy_kwh
    most = np.minimum(np.maximum(request - after, 0.0), net.cap_from[0] - after)
    live = most > EPS
    if not live.any():
        return np.zeros(len(request))
    scale = np.maximum(request, EPS)
    level = max_level(
        after[live] / scale[live], (after[live] + most[live]) / scale[live], scale[live], float(net.site[:tau].sum())
    )
    if not np.isfinite(level):
        return np.where(live, most, 0.0)
    return np.where(live, np.clip(level * request - after, 0.0, most), 0.0)


def _congested(net: SegmentNetwork, tau: int, after: np.ndarray, x: np.ndarray) -> None:
    """Segments before ``τ`` (see the module docstring); writes ``x`` (S, n) kWh in place.

    Works on columns sorted by departure (the serving order), so that a segment's EVs are served in one pass:
    those that must charge now to still reach their target first, then the others.
    """
    request = net.problem.energy_kwh
    short = request > after + EPS
    target = fair_targets(net, tau, after)
    # Every EV still there at τ has the same deadline here: among those, the least time to spare first.
    order = _by_departure(net, tau, net.cap_from[0] - after - target)
    need = target[order]
    beyond = (np.where(short, request - after, 0.0) - target)[order]  # allowed over the target
    request_o = request[order]
    scale = np.maximum(request_o, EPS)
    # Per segment, each EV's most, minimum, and what it can still take before τ after the segment: one
    # gather per segment instead of three.
    later = net.cap_from[1 : tau + 1] - after[None, :]
    rows = np.stack([net.cap[:tau, order], net.minimum[:tau, order], later[:, order]], axis=1)
    present = rows[:, 0] > EPS
    needy = need > EPS
    out = np.zeros((tau, len(order)))
    for s in range(tau):
        head = float(net.site[s])
        who = np.flatnonzero(present[s] & needy)
        if len(who):
            c, lo, lat = rows[s][:, who]
            left = need[who]
            want = np.minimum(c, left)
            low = want < lo
            if low.any():  # a last piece under the minimum is rounded up where the request allows
                want = np.where(low & (left + beyond[who] >= lo) & (c >= lo), lo, want)
            must = left - lat > EPS
            if must.any():  # who must charge now to still reach its target goes first
                rank = np.argsort(~must, kind="stable")
                who, lo, left, want = who[rank], lo[rank], left[rank], want[rank]
            give, head = fill_in_order(want, lo, head)
            out[s, who] = give
            over = give - left
            if (over > EPS).any():  # a piece rounded up: over the target, within the request
                beyond[who] -= np.maximum(over, 0.0)
            need[who] = np.maximum(-over, 0.0)
            needy[who] = need[who] > EPS
        if head > EPS:  # targets no schedule can reach leave room: the lowest served share first
            _beyond_targets(head, rows[s], present[s], out[s], need, beyond, request_o, scale)
            needy &= need > EPS
    x[:tau, order] = out


def _beyond_targets(
    head: float,
    rows: np.ndarray,
    present: np.ndarray,
    out: np.ndarray,
    need: np.ndarray,
    beyond: np.ndarray,
    request: np.ndarray,
    scale: np.ndarray,
) -> float:
    """Room a segment has left after the targets: to the EVs present that may still take more (up to their
    request), the lowest served share first; ``out`` (the segment's row), ``need`` and ``beyond`` are
    updated in place. Returns the room left."""
    cap, lo = rows[0], rows[1]
    who = np.flatnonzero(present & (need + beyond > EPS) & (cap - out > EPS))
    if not len(who):
        return head
    room = np.minimum(cap[who] - out[who], need[who] + beyond[who])
    floor = np.where(out[who] > 0, 0.0, lo[who])
    share = (request[who] - need[who] - beyond[who]) / scale[who]
    rank = np.argsort(share, kind="stable")
    who, room, floor = who[rank], room[rank], floor[rank]
    extra, head = fill_in_order(room, floor, head)
    out[who] += extra
    toward = np.minimum(extra, need[who])
    need[who] -= toward
    beyond[who] -= extra - toward
    return head


def _free(net: SegmentNetwork, tau: int, after: np.ndarray, x: np.ndarray) -> None:
    """Segments from ``τ`` on (see the module docstring); writes ``x`` in place. Front-loading everyone at
    once (every EV at its maximum from the start until served) is tried first; from a segment it would
    overflow on, segment by segment, until a segment has room left, and then at once again."""
    request = net.problem.energy_kwh
    short = request > after + EPS
    remaining = np.where(short, np.inf, request)  # the short ones never stop
    later = net.cap_from[1:]
    order = _by_departure(net, net.n_segments, net.cap_from[tau] - np.minimum(remaining, net.cap_from[tau]))
    minimum, present = net.minimum, net.cap > EPS
    s = tau
    while s < net.n_segments:
        s = _front_load(net, s, remaining, x)
        if s >= net.n_segments:
            return
        while s < net.n_segments:  # this segment would overflow: serve it in order
            head = float(net.site[s])
            forced = np.flatnonzero(short & present[s])
            if len(forced):
                x[s, forced], head = fill_in_order(net.cap[s, forced], minimum[s, forced], head)
            who = order[present[s, order] & ~short[order] & (remaining[order] > EPS)]
            if len(who):
                want = np.minimum(net.cap[s, who], remaining[who])
                if want.sum() <= head + EPS:
                    give, head = want, head - float(want.sum())
                else:
                    must = np.clip(remaining[who] - later[s, who], 0.0, want)
                    give, head = _serve(want, must, minimum[s, who], head)
                x[s, who] = give
                remaining[who] -= give
            s += 1
            if head > EPS:
                break


def _front_load(net: SegmentNetwork, start: int, remaining: np.ndarray, x: np.ndarray) -> int:
    """Every EV at its maximum from segment ``start`` until it has ``remaining``, written into ``x`` up to
    the first segment where that would overflow the site (returned; ``S`` if none). ``remaining`` is
    lowered by what was written."""
    cap = net.cap[start:]
    before = np.cumsum(cap, axis=0) - cap
    trial = np.clip(remaining[None, :] - before, 0.0, cap)
    over = trial.sum(axis=1) > net.site[start:] + EPS
    stop = int(np.argmax(over)) if over.any() else len(over)
    x[start : start + stop] = trial[:stop]
    remaining -= trial[:stop].sum(axis=0)
    return start + stop


def _by_departure(net: SegmentNetwork, deadline: int, spare: np.ndarray) -> np.ndarray:
    """EV indices in serving order: the earliest to leave first (a departure from ``deadline`` on counts as
    ``deadline``), then the least to spare (kWh it could take beyond what it needs), then the earliest to
    arrive."""
    present = net.cap > EPS
    last = np.minimum(net.n_segments - 1 - np.argmax(present[::-1], axis=0), deadline)
    first = np.argmax(present, axis=0)
    return np.lexsort((first, spare, last))


def _pieces_to_slots(net: SegmentNetwork, x: np.ndarray) -> np.ndarray:
    """Per-slot powers (n, T) in kW: each segment's kWh at one power over its slots. A piece under the EV's
    minimum charges at the minimum (or a little above) for as many whole slots as it fills, the turns of
    such pieces staggered over the segment, and the EVs charging there make room for them (:func:`_settle`);
    a piece smaller than one slot at the minimum is dropped."""
    problem, segments = net.problem, net.segments
    rate = x / segments.hours[:, None]
    floor_kw = net.frac * problem.min_kw[None, :]
    power = np.repeat(rate.T, segments.length, axis=1)
    low = (rate > EPS) & (rate < floor_kw * (1 - 1e-9))
    dt = problem.dt_h
    for s in np.flatnonzero(low.any(axis=1)).tolist():
        start, stop = int(segments.first[s]), int(segments.first[s + 1])
        offset = 0
        for i in np.flatnonzero(low[s]).tolist():
            slots = int(np.floor(x[s, i] / (floor_kw[s, i] * dt) + 1e-9))
            power[i, start:stop] = 0.0
            if slots:
                first = start + min(offset, stop - start - slots)
                power[i, first : first + slots] = x[s, i] / (slots * dt)
                offset = (offset + slots) % (stop - start)
        _settle(problem, power, start, stop, ~low[s])
    return power


def _settle(problem: Problem, power: np.ndarray, start: int, stop: int, flexible: np.ndarray) -> None:
    """Within slots ``start .. stop-1`` (identical but for the turns just placed), take what overloads a slot
    from the ``flexible`` EVs charging there (each keeping its minimum) and give it back to them in the
    other slots, in proportion to their room: each EV's energy and the segment's total stay the same. What
    cannot be placed this way is left for :func:`expand.fit_limits`."""
    limit = problem.site_kw[start:stop]
    block = power[:, start:stop]
    excess = np.maximum(block.sum(axis=0) - limit, 0.0)
    if excess.max(initial=0.0) <= EPS:
        return
    room = np.maximum(limit - block.sum(axis=0), 0.0)
    over = excess > EPS
    evs = np.flatnonzero(flexible & (block[:, over] > 0).all(axis=1))
    if not len(evs) or room.sum() <= EPS:
        return
    lo = problem.lo[evs, start]
    margin = np.maximum(block[evs][:, over].min(axis=1) - lo, 0.0)
    headroom = np.maximum(problem.cap[evs, start] - block[evs][:, ~over].max(axis=1, initial=0.0), 0.0)
    weight = np.minimum(margin, headroom * (~over).sum() / over.sum())
    if weight.sum() <= EPS:
        return
    cut = np.minimum(excess[over].max() / weight.sum(), 1.0)
    taken = np.outer(weight * cut, excess[over] / excess[over].max())  # (evs, over slots)
    total = taken.sum(axis=1)
    spread = np.outer(total, room[~over] / room[~over].sum())  # (evs, other slots), within each slot's room
    rows = block[evs]
    rows[:, over] -= taken
    rows[:, ~over] += np.minimum(spread, headroom[:, None])
    power[evs, start:stop] = rows


def _no_crumbs(net: SegmentNetwork, x: np.ndarray) -> None:
    """Raise an EV's last piece that is under its minimum to the minimum, taking what it lacks from the EV's
    earlier pieces (latest first, each keeping its own minimum). Where the last segment is full, an EV
    charging there makes the room and gets the same energy back in the earlier segment (an exchange that
    keeps every segment's total). Pieces left under the minimum charge in fewer slots (:func:`_pieces_to_slots`)."""
    charging = x > EPS
    if not charging.any():
        return
    last = net.n_segments - 1 - np.argmax(charging[::-1], axis=0)
    ev = np.arange(x.shape[1])
    evs = np.flatnonzero(charging.any(axis=0) & (x[last, ev] < net.minimum[last, ev] - EPS))
    spare = net.site - x.sum(axis=1)
    minimum, cap = net.minimum, net.cap
    for i in evs.tolist():
        s = int(last[i])
        lack = minimum[s, i] - x[s, i]
        earlier = np.flatnonzero(x[:s, i] > EPS)[::-1]
        give = np.maximum(x[earlier, i] - minimum[earlier, i], 0.0)
        if give.sum() < lack - EPS:
            continue
        if spare[s] >= lack - EPS:
            taken = np.clip(lack - (np.cumsum(give) - give), 0.0, give)
            x[earlier, i] -= taken
            spare[earlier] += taken
            x[s, i] += lack
            spare[s] -= lack
            continue
        # An exchange with a partner k: k gives ``lack`` in s and takes it in an earlier segment p of EV i.
        for p in earlier[give >= lack - EPS].tolist():
            partner = np.flatnonzero(
                (x[s] - lack >= minimum[s] - EPS)
                & (x[s] - lack > EPS)
                & (cap[p] - x[p] >= lack - EPS)
                & (x[p] + lack >= minimum[p] - EPS)
            )
            partner = partner[partner != i]
            if len(partner):
                k = int(partner[0])
                x[s, k] -= lack
                x[p, k] += lack
                x[p, i] -= lack
                x[s, i] += lack
                break


def cut_schedule(net: SegmentNetwork) -> tuple[np.ndarray, float]:
    """Per-slot powers (n, T) in kW built along the best prefix cut, and that cut's bound (kWh)."""
    tau, bound = net.best_prefix()
    after = np.minimum(net.problem.energy_kwh, net.cap_from[tau])
    x = np.zeros((net.n_segments, net.problem.n_evs))
    _congested(net, tau, net.cap_from[tau], x)
    _free(net, tau, after, x)
    if x.sum() < bound * (1 - AUGMENT_ABOVE):
        augment(net, x)
    _no_crumbs(net, x)
    return _pieces_to_slots(net, x), bound
