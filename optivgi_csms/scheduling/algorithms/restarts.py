"""Fewer restarts: filling an EV's pauses by moves that change no EV's energy, no bill and no slot's load.

An optimal schedule often pauses an EV and starts it again (a simplex vertex charges some EVs in runs with
holes; some EVs wake badly after a pause, OCPP notes). Many schedules share every optimised number, so each
pause of an EV ``a`` (slots ``G`` between two slots where it charges) is filled, where one of two moves
allows it, with ``a`` charging at its minimum (or a tenth of its maximum where no minimum applies):

* **shift**: ``a`` takes that energy from its own charging slots (above its minimum, latest first, never
  from a slot cheaper than the pause) where the site and its phases have room in the pause and the peak
  does not rise. ``a``'s energy is the same; the bill cannot rise; every limit holds (only room is used).
* **slide**: the run of charging before the pause moves later to end where the next run begins, or the run
  after it moves earlier, power for power, where the site and its phases have room, the peak does not
  rise and the bill does not either (a run of slots no cheaper than the one it replaces).
* **exchange** (a *circulation*): an EV ``b`` on the same phases charging through the pause (above its
  minimum by as much) gives way there, and gets the same energy back in slots where ``a`` charges above its
  minimum and ``b`` charges below its maximum. Every slot's total on every constraint, every EV's energy
  and the bill (the same slots, the same kWh) stay exactly as they were, and ``b`` gains no pause.

Pauses are taken shortest first, a few passes over them.
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.metrics import ON_KW
from optivgi_csms.scheduling.problem import Problem

#: Slack for comparisons of powers with limits (kW or A).
SLACK = 1e-9
#: Partners examined per pause (the first that can, in order of how much they can give).
PARTNERS = 48


class _State:
    """The schedule being smoothed and what each move needs to know about it."""

    def __init__(self, problem: Problem, power: np.ndarray) -> None:
        self.problem = problem
        self.power = power
        self.cap, self.lo = problem.cap, problem.lo
        self.coef = problem.slot_coef
        self.room = problem.slot_limits - self.coef.T @ power
        self.load = power.sum(axis=0)
        self.peak = float(self.load.max(initial=0.0))
        self.price = problem.price if problem.price is not None else np.zeros(problem.n_slots)
        _, group = np.unique(np.round(problem.phase_coef, 9), axis=0, return_inverse=True)
        group = np.asarray(group).ravel()
        #: The EVs on the same phases as each EV (exchanges keep every phase's load).
        self.mates = [np.flatnonzero(group == g) for g in range(int(group.max(initial=-1)) + 1)]
        self.group = group
        # The least power that counts as charging in a pause: the minimum, or a tenth of the maximum.
        self.fill = np.maximum(self.lo, 0.1 * self.cap)

    def surplus(self, ev: int | np.ndarray) -> np.ndarray:
        """What each EV could give up in each slot and keep charging (0 where it does not charge)."""
        power = self.power[ev]
        return np.where(power > ON_KW, np.maximum(power - self.lo[ev], 0.0), 0.0)


def fewer_restarts(problem: Problem, power: np.ndarray, *, passes: int = 2) -> np.ndarray:
    """``power`` (n, T) kW with pauses filled (module docstring); a new array."""
    state = _State(problem, power.copy())
    for _ in range(passes):
        changed = 0
        for ev, start, stop in _pauses(state.power):
            if not _fillable(state, ev, start, stop):
                continue
            if _shift(state, ev, start, stop) or _slide(state, ev, start, stop) or _exchange(state, ev, start, stop):
                changed += 1
        if not changed:
            break
    return state.power


def _pauses(power: np.ndarray) -> list[tuple[int, int, int]]:
    """Every pause ``(ev, first slot, end)``: slots without charging between two with, shortest first."""
    on = power > ON_KW
    rises = on[:, 1:] & ~on[:, :-1]  # charging again at t+1 after not at t
    ev, t = np.nonzero(rises)
    out = []
    for i, end in zip(ev.tolist(), (t + 1).tolist(), strict=True):
        before = np.flatnonzero(on[i, :end])
        if len(before):
            out.append((i, int(before[-1]) + 1, end))
    out.sort(key=lambda pause: pause[2] - pause[1])
    return out


def _fillable(state: _State, ev: int, start: int, stop: int) -> bool:
    """Still a pause (an earlier move may have changed it), and the EV can charge at its fill power in every
    slot of it (its window, its maximum)."""
    row = state.power[ev]
    if (row[start:stop] > ON_KW).any() or row[start - 1] <= ON_KW or row[stop] <= ON_KW:
        return False
    fill = state.fill[ev, start:stop]
    return bool((fill > ON_KW).all() and (state.cap[ev, start:stop] >= fill - SLACK).all())


def _take(available: np.ndarray, amount: float) -> np.ndarray | None:
    """How much to take from each slot, latest first, to make ``amount`` (None if there is not enough)."""
    if available.sum() < amount - SLACK:
        return None
    reverse = available[::-1]
    taken = np.clip(amount - (np.cumsum(reverse) - reverse), 0.0, reverse)
    return taken[::-1]


def _shift(state: _State, ev: int, start: int, stop: int) -> bool:
    """The shift move; True if made."""
    gap = slice(start, stop)
    fill = state.fill[ev, gap]
    coef = state.coef[ev]
    if (state.room[:, gap] < coef[:, None] * fill[None, :] - SLACK).any():
        return False
    if (state.load[gap] + fill > state.peak + SLACK).any():
        return False
    available = state.surplus(ev)
    available[gap] = 0.0
    available[state.price < state.price[gap].max() - 1e-12] = 0.0
    taken = _take(available, float(fill.sum()))
    if taken is None:
        return False
    state.power[ev] -= taken
    state.power[ev, gap] = fill
    change = -taken
    change[gap] += fill
    state.room -= coef[:, None] * change[None, :]
    state.load += change
    return True


def _slide(state: _State, ev: int, start: int, stop: int) -> bool:
    """The slide move (the later run earlier first: charging early); True if made."""
    row = state.power[ev]
    shift = stop - start
    off_after = np.flatnonzero(row[stop:] <= ON_KW)
    run_end = stop + int(off_after[0]) if len(off_after) else len(row)
    off_before = np.flatnonzero(row[:start] <= ON_KW)
    run_start = int(off_before[-1]) + 1 if len(off_before) else 0
    # (first slot of the moved span, the span's new values): the run after moved back, or the run before on.
    for first, new in (
        (start, np.concatenate([row[stop:run_end], np.zeros(shift)])),
        (run_start, np.concatenate([np.zeros(shift), row[run_start:start]])),
    ):
        span = slice(first, first + len(new))
        delta = new - row[span]
        on = new > ON_KW
        if (on & ((new > state.cap[ev, span] + SLACK) | (new < state.lo[ev, span] - SLACK))).any():
            continue
        if float(state.price[span] @ delta) > 1e-12 or (state.load[span] + delta > state.peak + SLACK).any():
            continue
        change = state.coef[ev][:, None] * delta[None, :]
        if (state.room[:, span] < change - SLACK).any():
            continue
        row[span] = new
        state.room[:, span] -= change
        state.load[span] += delta
        return True
    return False


def _headroom(state: _State, evs: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, len(slots)) what each EV could take more in each of ``slots`` without a new pause: below its
    maximum where it charges, or in the slot just before or after its charging; and the least it must take
    there (its minimum where it would start, else 0)."""
    rows = state.power[evs]
    last = rows.shape[1] - 1
    power = rows[:, slots]
    here = power > ON_KW
    beside = (rows[:, np.minimum(slots + 1, last)] > ON_KW) | (rows[:, np.maximum(slots - 1, 0)] > ON_KW)
    cap, lo = state.cap[evs][:, slots], state.lo[evs][:, slots]
    edge = ~here & beside & (cap >= np.maximum(lo, ON_KW))
    room = np.where(here, np.maximum(cap - power, 0.0), np.where(edge, cap, 0.0))
    return room, np.where(edge, np.maximum(lo, 0.1 * cap), 0.0)


def _exchange(state: _State, ev: int, start: int, stop: int) -> bool:
    """The exchange move; True if made."""
    gap = slice(start, stop)
    fill = state.fill[ev, gap]
    need = float(fill.sum())
    # Where a can give back: slots where it charges above its minimum (outside the pause).
    give = state.surplus(ev)
    give[gap] = 0.0
    slots = np.flatnonzero(give > SLACK)
    if give[slots].sum() < need - SLACK:
        return False
    give = give[slots]
    mates = state.mates[state.group[ev]]
    # Partners charging through the pause with enough above their minimum: first by the pause's first
    # slot alone (cheap on large sites), then through all of it.
    first = state.power[mates, start]
    ahead = first - state.lo[mates, start] - fill[0]
    keep = (first > ON_KW) & (ahead >= -SLACK) & (mates != ev)
    mates, ahead = mates[keep], ahead[keep]
    if len(mates) > 4 * PARTNERS:
        mates = mates[np.argpartition(-ahead, 4 * PARTNERS)[: 4 * PARTNERS]]
    if not len(mates):
        return False
    within = state.power[mates, gap]
    margin = within - state.lo[mates, gap] - fill[None, :]
    able = (within > ON_KW).all(axis=1) & (margin >= -SLACK).all(axis=1)
    mates = mates[able]
    if not len(mates):
        return False
    mates = mates[np.argsort(-margin[able].min(axis=1), kind="stable")[:PARTNERS]]
    room, least = _headroom(state, mates, slots)
    swap = np.minimum(give[None, :], room)
    swap[swap < least] = 0.0  # a partner starting in a slot next to its run takes at least its minimum there
    for k in np.flatnonzero(swap.sum(axis=1) >= need - SLACK).tolist():
        taken = _take_keeping(swap[k], least[k], need)
        if taken is not None:
            _apply(state, ev, int(mates[k]), slots, taken, start, stop)
            return True
    return _exchange_per_slot(state, ev, start, stop, mates, slots, give, room, least)


def _exchange_per_slot(
    state: _State,
    ev: int,
    start: int,
    stop: int,
    mates: np.ndarray,
    slots: np.ndarray,
    give: np.ndarray,
    room: np.ndarray,
    least: np.ndarray,
) -> bool:
    """The exchange with a partner per slot of the pause (each given back separately); all or nothing."""
    give, room, least = give.copy(), room.copy(), least.copy()
    moves = []
    for t in range(start, stop):
        fill = float(state.fill[ev, t])
        can = state.power[mates, t] - fill >= state.lo[mates, t] - SLACK
        swap = np.minimum(give[None, :], room)
        swap[swap < least] = 0.0
        for k in np.flatnonzero(can & (swap.sum(axis=1) >= fill - SLACK)).tolist():
            taken = _take_keeping(swap[k], least[k], fill)
            if taken is not None:
                moves.append((t, k, taken))
                give -= taken
                room[k] -= taken
                least[k] = np.where(taken > 0, 0.0, least[k])
                break
        else:
            return False
    for t, k, taken in moves:
        _apply(state, ev, int(mates[k]), slots, taken, t, t + 1)
    return True


def _apply(state: _State, ev: int, mate: int, slots: np.ndarray, taken: np.ndarray, start: int, stop: int) -> None:
    """``ev`` charges at its fill power in ``start .. stop-1`` instead of ``mate``, and gives ``mate`` the
    same energy back in ``slots``."""
    fill = state.fill[ev, start:stop]
    state.power[ev, slots] -= taken
    state.power[mate, slots] += taken
    state.power[ev, start:stop] = fill
    state.power[mate, start:stop] -= fill


def _take_keeping(available: np.ndarray, least: np.ndarray, amount: float) -> np.ndarray | None:
    """:func:`_take`, but a slot with a positive ``least`` gives 0 or at least that much."""
    taken = _take(available, amount)
    if taken is None:
        return None
    short = (taken > 0) & (taken < least - SLACK)
    if not short.any():
        return taken
    # The one partly used slot is at the earliest end of what was taken: drop it and take more from the
    # slots after it only if that still makes the amount; else give up.
    taken[short] = 0.0
    rest = amount - taken.sum()
    spare = np.where(least > 0, 0.0, available - taken)
    extra = _take(spare, rest)
    return None if extra is None else taken + extra
