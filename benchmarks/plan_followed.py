"""How closely the EVs charged as the CSMS planned: the CSMS's cycle records against the simulator's meters.

Each recorded cycle that lists its EVs gives every session's planned power for the slot under way
(``power_now_kw``); that plan holds until the next such cycle. An EV's sample at scenario time ``t`` is
compared with the plan in force one reaction earlier (the station applies a new limit a moment after it
accepts it, and the EV then follows). Over all sessions:

- ``followed``: the energy drawn within the plan, as a share of the energy planned (1.0: every EV drew all
  it was planned to, 0.5: half of the planned energy was not drawn — the EV was full, slower than planned,
  or its profile had not reached it);
- ``beyond``: the energy drawn above the plan, as a share of the energy drawn (0: no EV drew more than it
  was planned to).
"""

from __future__ import annotations

import bisect
import itertools
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simulators.recorder import PowerSample

Place = tuple[str, int]


@dataclass(frozen=True)
class PlanFollowed:
    """Planned and drawn energy over a run (kWh, the scenario's units) and the two shares above."""

    planned_kwh: float
    drawn_kwh: float
    within_kwh: float
    beyond_kwh: float

    @property
    def followed(self) -> float:
        return self.within_kwh / self.planned_kwh if self.planned_kwh > 0 else 1.0

    @property
    def beyond(self) -> float:
        return self.beyond_kwh / self.drawn_kwh if self.drawn_kwh > 0 else 0.0


def read_plans(database: Path) -> list[tuple[datetime, dict[Place, float]]]:
    """(wall start, planned kW per active session's station and EVSE) of every cycle that lists its EVs."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT started_at, evs FROM scheduling_cycles ORDER BY started_at, id").fetchall()
    plans = []
    for started_at, evs in rows:
        lines = json.loads(evs or "[]")
        if not lines:
            continue  # a quiet cycle (a tick that sent nothing): the plan before it still holds
        moment = datetime.fromisoformat(str(started_at).replace(" ", "T"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # the CSMS stores UTC
        powers = {
            (str(line["station_id"]), int(line["evse_id"])): float(line.get("power_now_kw") or 0.0)
            for line in lines
            if line.get("active") and line.get("transaction_id") is not None
        }
        plans.append((moment, powers))
    return plans


def plan_followed(
    samples: Iterable[PowerSample],
    plans: list[tuple[datetime, dict[Place, float]]],
    *,
    clock_start_wall: datetime,
    scenario_start: datetime,
    time_scale: float,
    reaction_wall_s: float,
) -> PlanFollowed:
    """Compare each EV's samples with the plan in force one reaction before each sample."""
    # The plans' wall times on the scenario's clock.
    starts = [scenario_start + (moment - clock_start_wall) * time_scale for moment, _ in plans]
    reaction = timedelta(seconds=reaction_wall_s * time_scale)
    by_place: dict[Place, list[PowerSample]] = defaultdict(list)
    for sample in samples:
        by_place[(sample.station_id, sample.evse_id)].append(sample)
    planned = drawn = within = beyond = 0.0
    for place, series in by_place.items():
        series.sort(key=lambda sample: sample.sim_time)
        for sample, following in itertools.pairwise(series):
            if sample.ev_id is None:
                continue
            hours = (following.sim_time - sample.sim_time).total_seconds() / 3600.0
            index = bisect.bisect_right(starts, sample.sim_time - reaction) - 1
            if index < 0:
                continue
            plan_kw = plans[index][1].get(place, 0.0)
            planned += plan_kw * hours
            drawn += sample.power_kw * hours
            within += min(sample.power_kw, plan_kw) * hours
            beyond += max(sample.power_kw - plan_kw, 0.0) * hours
    return PlanFollowed(round(planned, 1), round(drawn, 1), round(within, 1), round(beyond, 1))
