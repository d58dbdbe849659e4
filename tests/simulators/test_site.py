"""Site runs: the EV schedule on the scenario clock (with stand-in stations), and a small mixed fleet
against the real CSMS on loopback."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from simulators.clock import SimClock
from simulators.ev import EVModel
from simulators.recorder import PowerSample, Recorder
from simulators.scenario import StationSpec, parse_sim_scenario
from simulators.site import SiteOptions, SiteRun, assign_versions, ev_spec, physics_tick_s, speaks_iso15118

START = "2026-03-02T08:00:00Z"


def at(hhmm: str) -> str:
    return f"2026-03-02T{hhmm}:00Z"


def scenario(evs: list[dict[str, Any]], **extra: Any) -> Any:
    return parse_sim_scenario(
        {
            "format": 1,
            "now": START,
            "resolution_s": 900,
            "horizon_s": 4 * 3600,
            "site": {"limit_kw": 30},
            "evs": evs,
            **extra,
        }
    )


def ev(ev_id: str, station: str, arrival: str, departure: str, *, connector: int = 1, **extra: Any) -> dict:
    return {
        "id": ev_id,
        "station_id": station,
        "connector_id": connector,
        "arrival": at(arrival),
        "departure": at(departure),
        "energy_kwh": 5.0,
        "max_kw": 11.0,
        "active": arrival <= "08:00",
        **extra,
    }


class FakeStation:
    """Connects at once and gives every EV what it can take (32 A), sampling each tick; logs the calls."""

    log: ClassVar[list[tuple[float, str, str, int, str | None]]] = []

    def __init__(self, config: Any, clock: SimClock, recorder: Recorder) -> None:
        self.config, self.clock, self.recorder = config, clock, recorder
        self.evs: dict[int, EVModel] = {}
        self.stopped = asyncio.Event()

    def _log(self, action: str, evse_id: int, ev_id: str | None = None) -> None:
        self.log.append((self.clock.sim_now().timestamp(), self.config.station_id, action, evse_id, ev_id))

    async def run(self) -> None:
        self.recorder.connection(self.config.station_id, True)
        last = time.monotonic()
        while not self.stopped.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            seconds, last = self.clock.sim_seconds(now - last), now
            for evse_id, model in self.evs.items():
                amps = model.draw_a(32.0, 230.0)
                model.advance(amps, 230.0, seconds)
                power = model.power_kw(amps, 230.0)
                self.recorder.sample(
                    PowerSample(
                        self.clock.sim_now(), self.config.station_id, evse_id, model.spec.ev_id, power, None, 0, None
                    )
                )
        self.recorder.connection(self.config.station_id, False)

    async def stop(self) -> None:
        self.stopped.set()

    async def plug_in(self, evse_id: int, ev: EVModel, id_tag: str) -> None:
        self._log("plug_in", evse_id, ev.spec.ev_id)
        self.evs[evse_id] = ev

    async def unplug(self, evse_id: int) -> None:
        model = self.evs.pop(evse_id)
        self._log("unplug", evse_id, model.spec.ev_id)


@pytest.fixture
def fake_log() -> list:
    FakeStation.log = []
    return FakeStation.log


def test_versions_spread_evenly_and_keep_what_the_scenario_says() -> None:
    stations = (*(StationSpec(f"S{k}") for k in range(6)), StationSpec("X", ocpp_version="1.6"))
    half = assign_versions(stations, 0.5)
    assert [half[f"S{k}"] for k in range(6)] == ["1.6", "2.0.1"] * 3
    assert half["X"] == "1.6"
    assert set(assign_versions(stations, 1.0).values()) == {"2.0.1", "1.6"}  # X stays 1.6
    assert set(assign_versions(stations[:6], 0.0).values()) == {"1.6"}
    assert list(assign_versions(stations[:4], 0.25).values()).count("2.0.1") == 1


def test_physics_step_is_about_a_scenario_minute() -> None:
    assert physics_tick_s(1) == 1.0 and physics_tick_s(300) == pytest.approx(0.2) and physics_tick_s(1e6) == 0.1


async def test_evs_arrive_leave_and_queue_on_the_scenario_clock(fake_log: list) -> None:
    site = scenario(
        [
            ev("first", "S1", "08:00", "09:00"),
            ev("second", "S1", "08:30", "10:00"),  # the connector is busy until 09:00
            ev("other", "S2", "08:30", "09:30", connector=2),
            ev("gone", "S2", "07:00", "07:30"),  # left before the scenario starts
        ]
    )
    run = SiteRun(site, SiteOptions(url="ws://unused", time_scale=3 * 3600), station_factory=FakeStation)
    info = await asyncio.wait_for(run.run(), 10)
    assert info.stopped == "scenario over"
    assert info.connected == {"S1", "S2"}
    hours = {(sid, action, ev_id): (t - site.start.timestamp()) / 3600 for t, sid, action, _, ev_id in fake_log}
    assert hours[("S1", "plug_in", "first")] == pytest.approx(0, abs=0.1)
    assert hours[("S1", "unplug", "first")] == pytest.approx(1, abs=0.1)
    assert hours[("S1", "plug_in", "second")] == pytest.approx(1, abs=0.1)
    assert hours[("S2", "plug_in", "other")] == pytest.approx(0.5, abs=0.1)
    assert [entry[2:4] for entry in fake_log if entry[1] == "S2"] == [("plug_in", 2), ("unplug", 2)]
    sessions = run.recorder.sessions
    assert info.notes["second"] == ["plugged in late, at 09:00: first was still there"]
    assert info.notes["gone"] == ["not plugged in: it left before the start"]
    assert sessions["gone"].plugged_at is None
    for ev_id in ("first", "second", "other"):
        assert sessions[ev_id].delivered_kwh == pytest.approx(5.0)  # 11 kW for an hour, capped at what it asked
        assert sessions[ev_id].unplugged_at is not None


async def test_the_site_settles_before_the_scenario_clock_starts(fake_log: list) -> None:
    """With ``settle_s`` the stations are on line that long before the first EV plugs in (a real site's
    stations have their fail-safe profiles long before the morning); without it the clock starts at once."""
    site = scenario([ev("early", "S1", "07:00", "09:00")])
    options = SiteOptions(url="ws://unused", time_scale=3 * 3600, duration_s=0.8, settle_s=0.5)
    run = SiteRun(site, options, station_factory=FakeStation)
    task = asyncio.create_task(run.run())
    await asyncio.sleep(0.3)
    assert run.recorder.connected == {"S1"}
    assert not run.started and fake_log == []  # connected, settling: no EV yet
    await asyncio.wait_for(run.clock_started.wait(), 2)
    assert run.wall_elapsed_s() >= 0.5
    await asyncio.wait_for(task, 5)
    assert [entry[2] for entry in fake_log] == ["plug_in", "unplug"]
    assert SiteOptions(url="ws://unused").settle_s == 0.0  # tests and library users start at once


async def test_duration_ends_the_run_and_unplugs_every_ev(fake_log: list) -> None:
    site = scenario([ev("a", "S1", "08:00", "11:00"), ev("b", "S1", "08:00", "11:00", connector=2)])
    run = SiteRun(site, SiteOptions(url="ws://unused", time_scale=60, duration_s=0.3), station_factory=FakeStation)
    started = time.monotonic()
    info = await run.run()
    assert time.monotonic() - started < 2
    assert info.stopped == "duration"
    assert sorted(action for _, _, action, _, _ in fake_log) == ["plug_in", "plug_in", "unplug", "unplug"]
    assert all(record.unplugged_at is not None for record in run.recorder.sessions.values())
    assert info.sim_end < site.end


class Unreachable(FakeStation):
    """Never connects (a CSMS that is down); plug-in fails the way a station without its CSMS might."""

    async def run(self) -> None:
        await self.stopped.wait()

    async def plug_in(self, evse_id: int, ev: EVModel, id_tag: str) -> None:
        raise ConnectionError("CSMS unreachable")


async def test_a_csms_that_is_down_delays_the_start_a_little_and_is_reported(fake_log: list) -> None:
    site = scenario([ev("a", "S1", "08:00", "08:30")])
    options = SiteOptions(url="ws://unused", time_scale=3600, connect_timeout_s=0.2)
    run = SiteRun(site, options, station_factory=Unreachable)
    info = await asyncio.wait_for(run.run(), 5)
    assert info.stopped == "scenario over" and info.connected == frozenset()
    assert "plug-in failed" in info.notes["a"][0]
    assert run.recorder.protocol_errors and "CSMS unreachable" in run.recorder.protocol_errors[0]["description"]


async def test_live_progress_figures(fake_log: list) -> None:
    from rich.console import Console

    from simulators.progress import LatestSamples, LiveProgress, render, site_status

    site = scenario([ev("a", "S1", "08:00", "09:00"), ev("b", "S2", "09:00", "10:00"), ev("c", "S2", "10:00", "10:30")])
    run = SiteRun(site, SiteOptions(url="ws://unused", time_scale=3 * 3600, share_201=0.5), station_factory=FakeStation)
    latest = LatestSamples(run.recorder)
    before = site_status(run, latest)
    assert (before.connected, before.stations, before.evs_waiting, before.done_share) == (0, 2, 3, 0.0)
    task = asyncio.create_task(run.run())
    await asyncio.wait_for(run.clock_started.wait(), 5)
    await asyncio.sleep(run.clock.wall_seconds_until(site.start + timedelta(hours=1, minutes=15)))
    # 09:15: "a" has left, "b" charges (it is full at 09:27), "c" comes at 10:00
    during = site_status(run, latest)
    assert during.connected == 2 and during.connected_by_version == {"1.6": (1, 1), "2.0.1": (1, 1)}
    assert (during.evs_charging, during.evs_plugged, during.evs_left, during.evs_waiting) == (1, 1, 1, 1)
    assert during.power_kw == pytest.approx(11.0) and during.limit_kw == 30
    assert during.delivered_kwh > 5 and during.requested_kwh == 15
    console = Console(record=True, width=120, force_terminal=False)
    console.print(render(during, "test"))
    text = console.export_text()
    assert "2 of 2 connected (1/1 OCPP 1.6, 1/1 OCPP 2.0.1)" in text and "11.0 kW of 30.0 kW limit" in text
    await LiveProgress(run, Console(file=io.StringIO(), force_terminal=True)).follow(task)
    assert task.done() and site_status(run, latest).evs_left == 3


FLEET = {
    "format": 1,
    "name": "fleet-4",
    "now": START,
    "resolution_s": 900,
    "horizon_s": 2 * 3600,
    "site": {"limit_kw": 20},
    "stations": [
        {"id": "SIM-A", "ocpp_version": "1.6", "evse_count": 2},
        {"id": "SIM-B", "ocpp_version": "2.0.1", "evse_count": 2},
        {"id": "SIM-C", "ocpp_version": "1.6", "phases": 1},
        {"id": "SIM-D", "ocpp_version": "2.0.1"},
    ],
    "evs": [
        ev("e1", "SIM-A", "07:30", "09:30", energy_kwh=4.0),
        ev("e2", "SIM-A", "08:15", "10:00", connector=2, energy_kwh=6.0, max_kw=7.4, phases=1),
        ev("e3", "SIM-B", "08:00", "08:50", energy_kwh=20.0),  # leaves before it is full
        ev("e4", "SIM-B", "09:00", "10:00", energy_kwh=3.0),  # the same connector after e3
        ev("e5", "SIM-C", "08:20", "09:40", energy_kwh=5.0, max_kw=7.4, phases=1),
        ev("e6", "SIM-D", "08:30", "09:45", connector=1, energy_kwh=8.0, battery_kwh=40.0, draw_factor=0.8),
    ],
}


@pytest.mark.slow
async def test_a_mixed_fleet_against_the_csms(csms) -> None:
    """4 stations of both versions and 6 EVs, two of them in turn on one connector, two hours in two seconds."""
    from sqlalchemy import select

    from optivgi_csms.store.models import Transaction
    from simulators.report import build_report

    site = parse_sim_scenario(FLEET)
    options = SiteOptions(url=f"ws://127.0.0.1:{csms.ocpp.port}/ocpp", time_scale=3600, meter_interval_s=0.2)
    run = SiteRun(site, options)
    info = await asyncio.wait_for(run.run(), 30)
    assert info.stopped == "scenario over" and info.connected == {"SIM-A", "SIM-B", "SIM-C", "SIM-D"}

    report = build_report(run.recorder, info)
    assert report["stations"]["by_version"] == {"1.6": 2, "2.0.1": 2}
    assert report["protocol_errors"]["count"] == 0, report["protocol_errors"]
    rows = {row["id"]: row for row in report["evs"]}
    for row in rows.values():
        assert row["delivered_kwh"] > 0, row
        assert row["delivered_kwh"] <= row["requested_kwh"] + 1e-6, row
        assert row["unplugged_at"] is not None and row["transaction_id"] is not None, row
    assert rows["e1"]["status"] == rows["e4"]["status"] == rows["e5"]["status"] == "served"
    assert rows["e3"]["status"] == "partly served"  # 50 minutes at 11 kW is less than 20 kWh
    assert report["totals"]["peak_site_kw"] > 20  # no smart charging yet: every EV at its maximum
    assert report["messages"]["by_action"]["StartTransaction"]["sent"] == 3
    assert report["messages"]["by_action"]["TransactionEvent"]["sent"] >= 6

    async with csms.database.read() as session:
        transactions = (await session.scalars(select(Transaction))).all()
    assert len(transactions) == 6 and all(tx.stopped_at is not None for tx in transactions)
    by_id = {str(tx.id) if tx.ocpp_transaction_id is None else tx.ocpp_transaction_id: tx for tx in transactions}
    for ev_id, row in rows.items():
        tx = by_id[row["transaction_id"]]
        assert (tx.station_id, tx.evse_id) == (row["station_id"], row["evse_id"]), ev_id
        assert (tx.meter_stop_wh - tx.meter_start_wh) / 1000 == pytest.approx(row["delivered_kwh"], abs=0.002), ev_id


def test_station_configs_follow_the_scenario_and_the_options() -> None:
    site = parse_sim_scenario(
        FLEET | {"stations": [*FLEET["stations"][:3], {"id": "SIM-D", "password": "own-password-123"}]}
    )
    configs = {}

    def capture(config, clock, recorder):
        configs[config.station_id] = config
        return FakeStation(config, clock, recorder)

    options = SiteOptions(url="ws://csms/ocpp", time_scale=300, share_201=1.0, password="p" * 16, meter_interval_s=5)
    SiteRun(site, options, station_factory=capture)
    a, c, d = configs["SIM-A"], configs["SIM-C"], configs["SIM-D"]
    assert (a.ocpp_version, a.evse_count, a.password, a.meter_interval_s, a.url) == (
        "1.6",
        2,
        "p" * 16,
        5,
        "ws://csms/ocpp",
    )
    assert a.endpoint == "ws://csms/ocpp/SIM-A" and a.tick_s == pytest.approx(0.2)
    assert c.phases == 1
    assert (d.ocpp_version, d.password) == ("2.0.1", "own-password-123")  # open version: the share decides


def test_a_one_phase_ev_is_metered_on_the_site_phase_its_station_is_wired_to() -> None:
    """The scenario's ``phase_map`` says which site phase a one-phase EV loads; its meter names that phase."""
    from simulators.station.metering import MeterReading, meter_value_v16

    reading = MeterReading(datetime(2026, 3, 2, 8, tzinfo=UTC), 100.0, 31.5, 32.0, 1, 230.0, 0.5, ("L3",))
    values = meter_value_v16(reading, ["Current.Import", "Voltage"], "Sample.Periodic")["sampled_value"]
    assert [(v["measurand"], v["phase"]) for v in values] == [("Current.Import", "L3"), ("Voltage", "L3-N")]
    unnamed = MeterReading(datetime(2026, 3, 2, 8, tzinfo=UTC), 100.0, 16.0, 32.0, 3, 230.0, 0.5)
    values = meter_value_v16(unnamed, ["Current.Import"], "Sample.Periodic")["sampled_value"]
    assert [v["phase"] for v in values] == ["L1", "L2", "L3"]
    sim_ev = scenario([ev("a", "S1", "08:00", "09:00", max_kw=7.4, phases=1, phase_map=["L2"])]).evs[0]
    assert ev_spec(sim_ev).phase_map == ("L2",)


def test_which_evs_speak_iso15118_and_what_they_know_of_their_departure() -> None:
    says, silent = scenario([ev("a", "S1", "08:00", "09:00", iso15118=True), ev("b", "S2", "08:10", "09:30")]).evs
    assert [speaks_iso15118(e, "scenario") for e in (says, silent)] == [True, False]
    assert [speaks_iso15118(e, "all") for e in (says, silent)] == [True, True]
    assert [speaks_iso15118(e, "none") for e in (says, silent)] == [False, False]
    assert ev_spec(says).iso15118 and not ev_spec(says, iso15118=False).iso15118
    assert ev_spec(silent, iso15118=True).departure == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # scenario time
    with pytest.raises(ValueError, match="iso15118: must be one of scenario, all, none, got 'some'"):
        SiteOptions(url="ws://csms/ocpp", iso15118="some")
