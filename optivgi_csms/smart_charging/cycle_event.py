"""The domain event of a finished scheduling cycle: what ran, why, and the limits it sent and how they were
answered (for the live event stream; the full record is the ``scheduling_cycles`` row)."""

from __future__ import annotations

import math

from optivgi_csms.domain.charging_profile import ChargingProfile, RateUnit
from optivgi_csms.services.events import LimitSent, SchedulingCycleFinished
from optivgi_csms.smart_charging.cycle import CycleReport
from optivgi_csms.smart_charging.evs import DEFAULT_PHASES
from optivgi_csms.smart_charging.limits import connection_limits_kw
from optivgi_csms.smart_charging.translation import Sent


def cycle_finished(report: CycleReport) -> SchedulingCycleFinished:
    """The event of a cycle whose profiles have all been answered (after :func:`.cycle.finish`)."""
    row, inputs = report.row, report.inputs
    limit_kw: float | None = None
    limits: tuple[LimitSent, ...] = ()
    if inputs is not None:
        (now_limit,) = connection_limits_kw(inputs.config, [inputs.timing.wall_now], math.inf)
        limit_kw = None if math.isinf(now_limit) else float(now_limit)
        limits = tuple(_limit_sent(sent, inputs.config.voltage_v) for sent in inputs.sent)
    planned = report.plan.total_kw if report.plan is not None else []
    return SchedulingCycleFinished(
        site_id=row.site_id,
        started_at=row.started_at,
        trigger=tuple(sorted((str(kind), int(count)) for kind, count in row.trigger.items())),
        algorithm=row.algorithm,
        status=row.status,
        limit_kw=limit_kw,
        planned_kw=round(planned[0], 3) if planned else None,
        limits=limits,
        error=row.error,
    )


def _limit_sent(sent: Sent, voltage_v: float) -> LimitSent:
    """One delivery; ``sent.future`` is done once the cycle is finished."""
    future = sent.future
    outcome = future.result() if future.done() and not future.cancelled() and future.exception() is None else None
    profile = outcome.profile if outcome is not None and outcome.profile is not None else sent.profile
    return LimitSent(
        station_id=sent.station_id,
        evse_id=sent.evse_id,
        transaction_id=sent.entry.transaction_id if sent.entry is not None else None,
        kind=sent.kind,
        limit=profile.schedule.periods[0].limit,
        unit=profile.schedule.unit.value,
        limit_kw=round(first_limit_kw(profile, voltage_v), 3),
        status=outcome.status if outcome is not None else "Pending",
    )


def first_limit_kw(profile: ChargingProfile, voltage_v: float) -> float:
    """A profile's first limit in kW (a current limit at the site's voltage, on its phases or three)."""
    period = profile.schedule.periods[0]
    if profile.schedule.unit is RateUnit.WATT:
        return period.limit / 1000.0
    return period.limit * voltage_v * (period.number_phases or DEFAULT_PHASES) / 1000.0
