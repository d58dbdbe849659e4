"""The measurements the end-to-end tests rely on, checked on made-up samples (no CSMS, no stations)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from simulators.recorder import PowerSample
from tests.e2e_sim.harness import REACTION_WALL_S, TIME_SCALE, SitePower, at


def sample(
    wall_s: float, station_id: str, kw: float, ev_id: str | None = "ev", offered: float | None = None
) -> PowerSample:
    return PowerSample(at(wall_s), station_id, 1, ev_id, kw, offered, 0.0, None)


def test_site_power_adds_each_evses_latest_sample() -> None:
    power = SitePower([sample(0, "A", 5.0), sample(0.1, "B", 7.0), sample(1, "A", 6.0), sample(1.1, "B", 0.0)])
    assert power.kw == [5.0, 12.0, 13.0, 6.0]
    assert power.peak_kw() == 13.0 and power.peak_kw(at(1.05)) == 6.0


def test_episodes_over_the_limit_last_until_the_site_is_back_under() -> None:
    power = SitePower(
        [
            sample(0, "A", 10.0),
            sample(1, "A", 12.5),  # over from 1 s ...
            sample(2, "A", 13.0),
            sample(3, "A", 9.0),  # ... to 3 s
            sample(4, "A", 10.04),  # within the noise margin
            sample(5, "A", 11.0),  # over until the end of the samples
            sample(6, "A", 11.0),
        ]
    )
    first, last = power.over(10.0)
    assert first.start == at(1) and first.end == at(3) and first.peak_kw == 13.0
    assert first.wall_s == pytest.approx(2.0)
    assert last.start == at(5) and last.end == at(6)


def test_means_are_per_evse_time_averages_summed() -> None:
    samples = [sample(t / 2, "A", 4.0, "a", offered=6.0) for t in range(8)]
    samples += [sample(t / 4, "B", 2.0 if t < 8 else 0.0, "b") for t in range(16)]
    power = SitePower(samples)
    assert power.mean_kw(at(0), at(4)) == pytest.approx(4.0 + 1.0)
    assert power.mean_kw(at(0), at(2), ["b"]) == pytest.approx(2.0)
    assert power.mean_offer_kw("a", at(0), at(4)) == 6.0
    assert len(power.ev_samples("a", at(1), at(2))) == 2


def test_the_reaction_tolerance_is_an_apply_delay_and_a_slot() -> None:
    # 1 s apply delay + a 2 s slot + a 0.5 s sampling step, which is 7 scenario minutes at 120x.
    assert REACTION_WALL_S == 3.5  # exact in binary
    assert at(REACTION_WALL_S) - at(0) == timedelta(seconds=3.5 * TIME_SCALE)
