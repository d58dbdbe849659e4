"""EVs that draw less than offered: their cap comes down toward what they draw, and the difference goes
to the others at the next cycle.

Real EVs often take less than the profile allows (tapering near full, an on-board charger smaller than
the station, a single-phase car on three phases). Left alone, the plan would hold that power for them
and leave it unused. A cap is set a little above the measured draw (never below the minimum charging
power, so an EV that stopped drawing keeps its pilot and is not cycled off and on), and lifted only on
evidence: the EV used everything the cap allows (it may have been ramping up; if not, the next readings
cap it again). The cap is what the EV has shown it takes, so it outlives pauses the plan imposes.

An EV that draws nothing although offered at least its minimum (it says SuspendedEV, or its meter shows
it) has suspended itself, usually because it is full. It keeps a pilot at the minimum, but its
reservation in the site's budget is released (:attr:`DrawCap.idle`): the plan counts it as 0 and gives
the room to the others. If it draws again, the next reading (or its Charging status) counts it again; the
site is then over by at most that minimum for one reading, within the reaction tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: A gap smaller than this (kW), or than :data:`GAP_SHARE` of the offer, is normal meter noise.
MIN_GAP_KW = 1.0
GAP_SHARE = 0.15
#: The cap leaves this much above the draw: at least HEADROOM_KW, or HEADROOM_SHARE of the draw.
HEADROOM_KW = 0.5
HEADROOM_SHARE = 0.1
#: An EV drawing this share of its offer uses all of it.
SATURATED_SHARE = 0.95
#: An EV drawing less than this (kW) although offered its minimum draws nothing: it suspended itself.
IDLE_KW = 0.1
#: The reason of an idle cap (an EV that suspended itself).
SUSPENDED_REASON = "suspended by the EV"


@dataclass(frozen=True, slots=True)
class DrawCap:
    """An EV's maximum power lowered to what it was seen drawing."""

    kw: float
    since: datetime
    reason: str
    #: The EV draws nothing (it suspended itself): it keeps a pilot at ``kw`` but the plan counts it as 0.
    idle: bool = False


class Deviations:
    """The caps of EVs that draw less than offered, by transaction."""

    def __init__(self) -> None:
        self._caps: dict[int, DrawCap] = {}

    def cap_kw(self, transaction_id: int) -> float | None:
        """The EV's lowered maximum (kW), if it has one."""
        cap = self._caps.get(transaction_id)
        return cap.kw if cap is not None else None

    def get(self, transaction_id: int) -> DrawCap | None:
        """The EV's cap, if it has one."""
        return self._caps.get(transaction_id)

    def observe(self, transaction_id: int, measured_kw: float, offered_kw: float, min_kw: float, at: datetime) -> bool:
        """Compare a reading with the lowest offer in force while the EV had time to follow it; returns True
        when the EV's cap changed (plan again)."""
        if offered_kw <= 0 or offered_kw < min_kw * SATURATED_SHARE:
            return False  # paused by the plan, or offered less than it charges at: nothing to learn
        held = self._caps.get(transaction_id)
        if held is not None and held.idle:
            if measured_kw < IDLE_KW:
                return False
            # It draws again: count it again, at what it shows it takes (lifted further on evidence).
            cap = max(measured_kw + max(HEADROOM_KW, HEADROOM_SHARE * measured_kw), min_kw)
            self._caps[transaction_id] = DrawCap(cap, at, f"drew {measured_kw:.2f} kW again after suspending")
            return True
        if measured_kw >= offered_kw * SATURATED_SHARE:
            if held is not None and offered_kw >= held.kw * SATURATED_SHARE:
                del self._caps[transaction_id]  # it takes all the cap allows: let it show what it can take
                return True
            return False
        if measured_kw < IDLE_KW:
            return self.suspended(transaction_id, min_kw, at)  # offered enough to charge, it takes nothing
        gap = offered_kw - measured_kw
        if gap <= max(MIN_GAP_KW, GAP_SHARE * offered_kw):
            return False
        cap = max(measured_kw + max(HEADROOM_KW, HEADROOM_SHARE * measured_kw), min_kw)
        if held is not None and cap >= held.kw * SATURATED_SHARE:
            return False  # the cap in force already fits this draw
        self._caps[transaction_id] = DrawCap(cap, at, f"drew {measured_kw:.2f} kW of {offered_kw:.2f} kW offered")
        return True

    def suspended(self, transaction_id: int, min_kw: float, at: datetime) -> bool:
        """The EV stopped drawing (SuspendedEV): a pilot at the minimum, counted as 0; True when that is a change."""
        held = self._caps.get(transaction_id)
        if held is not None and held.idle:
            return False
        self._caps[transaction_id] = DrawCap(min_kw, at, SUSPENDED_REASON, idle=True)
        return True

    def resumed(self, transaction_id: int) -> bool:
        """The EV draws again (Charging): count it again; True when it was idle.

        A cap learned from its draw stays: a Charging status after a pause the plan imposed says nothing
        about how much the EV takes."""
        held = self._caps.get(transaction_id)
        if held is None or not held.idle:
            return False
        del self._caps[transaction_id]
        return True

    def forget(self, transaction_id: int) -> None:
        """The session ended."""
        self._caps.pop(transaction_id, None)
