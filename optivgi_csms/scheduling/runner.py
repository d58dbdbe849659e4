"""One scheduling cycle: for each station group, read EVs and limits, calculate, send profiles.

``scm_runner`` keeps Opti-VGI's name and order of calls; unlike Opti-VGI, resolution and horizon are
parameters, a failing group does not stop the others, and the groups may be passed in (Opti-VGI read them
from the ``STATION_GROUPS`` environment variable, which is still the default).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from optivgi_csms.scheduling.algorithm import DEFAULT_HORIZON, DEFAULT_RESOLUTION, Algorithm, ScheduleResult
from optivgi_csms.scheduling.site import Site
from optivgi_csms.scheduling.translation import AsyncTranslation, PeakPowerDemand, Translation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CycleOptions:
    """How a cycle discretises time: slot length and horizon."""

    resolution: timedelta = DEFAULT_RESOLUTION
    horizon: timedelta = DEFAULT_HORIZON


#: 15-minute slots over 24 hours.
DEFAULT_OPTIONS = CycleOptions()


def groups_from_env() -> list[str]:
    """Station groups from ``STATION_GROUPS`` (comma separated), as Opti-VGI reads them."""
    return [g.strip() for g in os.environ.get("STATION_GROUPS", "").split(",") if g.strip()]


def slot_start(moment: datetime, resolution: timedelta) -> datetime:
    """``moment`` rounded down to the resolution grid (aligned to the epoch), so that successive cycles
    agree on slot boundaries."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return moment - ((moment - epoch) % resolution)


def _make(
    algorithm_cls: type[Algorithm], evs: list, demand: PeakPowerDemand, now: datetime, options: CycleOptions
) -> Algorithm:
    horizon = options.horizon if isinstance(demand, Site) else None
    return algorithm_cls(evs, demand, now, resolution=options.resolution, horizon=horizon)


def scm_runner(
    translation: Translation,
    algorithm_cls: type[Algorithm],
    groups: Iterable[str] | None = None,
    *,
    now: datetime | None = None,
    options: CycleOptions = DEFAULT_OPTIONS,
) -> dict[str, ScheduleResult | Exception]:
    """Run one cycle for every group; returns each group's result (or the error that stopped it)."""
    now = slot_start(now or datetime.now(UTC), options.resolution)
    results: dict[str, ScheduleResult | Exception] = {}
    for group in groups_from_env() if groups is None else groups:
        try:
            evs, voltage = translation.get_evs(group)
            demand = translation.get_peak_power_demand(group, now, voltage)
            algorithm = _make(algorithm_cls, evs, demand, now, options)
            results[group] = algorithm.calculate()
            translation.send_power_to_evs(algorithm.get_charging_profiles())
        except Exception as error:  # one group's failure must not stop the others
            log.exception("scheduling cycle failed for group %s", group)
            results[group] = error
    return results


async def scm_runner_async(
    translation: AsyncTranslation,
    algorithm_cls: type[Algorithm],
    groups: Iterable[str],
    *,
    now: datetime | None = None,
    options: CycleOptions = DEFAULT_OPTIONS,
    executor: Executor | None = None,
) -> dict[str, ScheduleResult | Exception]:
    """The same cycle for an asyncio system: reads and sends on the loop, calculates in ``executor`` (the
    default thread pool if ``None``) so the event loop never blocks on the solver."""
    loop = asyncio.get_running_loop()
    now = slot_start(now or datetime.now(UTC), options.resolution)
    results: dict[str, ScheduleResult | Exception] = {}
    for group in groups:
        try:
            evs, voltage = await translation.get_evs(group)
            demand = await translation.get_peak_power_demand(group, now, voltage)
            algorithm = _make(algorithm_cls, evs, demand, now, options)
            results[group] = await loop.run_in_executor(executor, algorithm.calculate)
            await translation.send_power_to_evs(algorithm.get_charging_profiles())
        except Exception as error:  # one group's failure must not stop the others
            log.exception("scheduling cycle failed for group %s", group)
            results[group] = error
    return results
