"""Shared builders for the scheduling tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from optivgi_csms.scheduling import EV, Site

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SLOT = timedelta(minutes=15)


def make_ev(
    ev_id: str,
    *,
    start: float = 0.0,
    end: float = 4.0,
    energy: float = 10.0,
    max_kw: float = 11.0,
    min_kw: float = 0.0,
    phases: int = 3,
    phase_map: tuple[str, ...] = (),
    active: bool = True,
) -> EV:
    """An EV present from slot ``start`` to slot ``end`` (slot units, fractions allowed) after NOW."""
    return EV(
        ev_id=ev_id,
        active=active,
        station_id=f"CP-{ev_id}",
        connector_id=1,
        min_power=min_kw,
        max_power=max_kw,
        arrival_time=NOW + start * SLOT,
        departure_time=NOW + end * SLOT,
        energy=energy,
        phases=phases,
        phase_map=phase_map,
    )


@pytest.fixture
def site() -> Site:
    """A 22 kW site without the minimum-current rule."""
    return Site(limit_kw=22.0, min_current_a=0.0)
