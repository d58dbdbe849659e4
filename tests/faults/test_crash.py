"""SIGKILL to a real ``optivgi-csms serve`` under load, then a restart on the same port and database.

Four simulated stations (two of each OCPP version, one EV each, meter values every quarter second) charge
under a site limit. Mid-run the server is killed with SIGKILL (no shutdown, no flush) and started again;
the stations reconnect by themselves and deliver what they queued meanwhile. Then the database is held
against what the stations were told:

- every CALL the CSMS answered with a CALLRESULT (the stations' own record) is in the database exactly once:
  sessions by their start, 2.0.1 events by (transaction, seqNo), samples by (station, time, measurand, phase);
- the sessions open at the kill continue: same transaction, samples sent after the restart attach to it, and
  its stop after the restart closes it with the energy the station's meter says;
- smart charging resumes: a recorded cycle within one ``scheduling_interval`` of the stations reconnecting.

The figures of the run are printed (``-s``) for docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import MeterValue, SchedulingCycle, Transaction, TransactionEventRecord
from simulators.site import SiteOptions, SiteRun
from tests.conftest import BACKENDS, PostgresDatabases
from tests.e2e_sim.harness import TIME_SCALE, ev, scenario, station, until
from tests.faults.acks import AckLog, SampleKey, as_utc, reconnect_quickly, sample_key
from tests.faults.serve import ServeProcess, upgrade

pytestmark = pytest.mark.slow

LIMIT_KW = 40.0
#: Scenario seconds between cycles when nothing happens: 4 wall seconds at the harness's time scale.
SCHEDULING_INTERVAL_S = 4 * TIME_SCALE
#: The wall second of the run at which the server is killed, and when the EVs leave.
KILL_AT_S = 5.0
LEAVE_AT_S = 16.0
STATIONS = [("K16A", "1.6"), ("K16B", "1.6"), ("K201A", "2.0.1"), ("K201B", "2.0.1")]


@pytest.fixture(params=BACKENDS)
async def served_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database for the server process: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}"
        upgrade(tmp_path, url)
        yield url
        return
    postgres: PostgresDatabases = request.getfixturevalue("postgres")
    name = await postgres.clone()
    try:
        yield postgres.url_of(name)
    finally:
        await postgres.drop(name)


async def test_sigkill_mid_run_loses_and_doubles_nothing_and_sessions_continue(served_url: str, tmp_path: Path) -> None:
    server = ServeProcess(
        tmp_path,
        served_url,
        *("--site-limit-kw", str(LIMIT_KW), "--time-scale", str(TIME_SCALE)),
        *("--scheduling-interval", str(SCHEDULING_INTERVAL_S), "--profile-raise-delay", "0.3"),
    )
    acks = AckLog()
    site = scenario(
        "crash",
        LIMIT_KW,
        [station(station_id, version) for station_id, version in STATIONS],
        [ev(f"ev-{station_id}", station_id, 0, LEAVE_AT_S, max_kw=22.0) for station_id, _ in STATIONS],
    )
    options = SiteOptions(
        url=f"ws://127.0.0.1:{server.port}/ocpp", time_scale=TIME_SCALE, meter_interval_s=0.25, connect_timeout_s=10
    )
    run = SiteRun(site, options, station_factory=acks.factory(reconnect_quickly, message_retry_interval=0.5))
    figures: dict[str, float] = {}
    try:
        await server.start()
        runner = asyncio.create_task(run.run())
        await asyncio.wait_for(run.clock_started.wait(), 20)
        clock_started = time.monotonic()
        # Load first: every station has sessions going and samples acknowledged before the kill.
        await until(lambda: time.monotonic() - clock_started >= KILL_AT_S, timeout_s=KILL_AT_S + 5)
        assert {a.station_id for a in acks.of("MeterValues") + acks.of("TransactionEvent")} == {s for s, _ in STATIONS}
        killed_at = server.kill()
        acked_before_kill = len(acks.acks)
        figures["restart_s"] = await server.start()
        restarted_at = time.monotonic()
        # Every station back: each has a CALL answered by the new process.
        await until(
            lambda: {a.station_id for a in acks.acks if a.at > restarted_at} == {s for s, _ in STATIONS}, timeout_s=20
        )
        reconnected_at = time.monotonic()
        figures["reconnected_s"] = reconnected_at - killed_at
        info = await asyncio.wait_for(runner, 60)
    finally:
        server.stop()
    assert info.stopped == "scenario over", info
    assert not [e for e in run.recorder.messages if e.startswith("dropped:")], run.recorder.messages

    database = Database(served_url)
    try:
        async with database.read() as session:
            transactions = list(await session.scalars(select(Transaction)))
            samples = list(
                await session.execute(
                    select(
                        MeterValue.station_id,
                        MeterValue.timestamp,
                        MeterValue.measurand,
                        MeterValue.phase,
                        MeterValue.transaction_id,
                    )
                )
            )
            events = list(
                await session.execute(select(TransactionEventRecord.transaction_id, TransactionEventRecord.seq_no))
            )
            cycles = list(
                await session.scalars(select(SchedulingCycle.started_at).order_by(SchedulingCycle.started_at))
            )
    finally:
        await database.close()

    # --- every acknowledged sample stored exactly once ---------------------------------------------------
    acked_samples = acks.samples()
    stored: Counter[SampleKey] = Counter(
        sample_key(row[0], row[1], {"measurand": row[2], "phase": row[3]}) for row in samples
    )
    lost = {key: n for key, n in acked_samples.items() if stored[key] < n}
    doubled = {key: stored[key] for key, n in acked_samples.items() if stored[key] > n}
    assert not lost, f"{len(lost)} acknowledged samples missing, e.g. {list(lost)[:3]}"
    assert not doubled, f"{len(doubled)} samples stored more than once, e.g. {list(doubled.items())[:3]}"

    # --- sessions: each acknowledged start is one row; each acknowledged event one row --------------------
    by_v16_start = Counter(
        (t.station_id, t.evse_id, round(as_utc(t.started_at).timestamp(), 3))
        for t in transactions
        if t.ocpp_transaction_id is None
    )
    by_v201_id = {(t.station_id, t.ocpp_transaction_id): t for t in transactions if t.ocpp_transaction_id is not None}
    by_id = {t.id: t for t in transactions}
    for start in acks.of("StartTransaction"):
        key = (start.station_id, start.payload["connectorId"], round(as_utc(start.payload["timestamp"]).timestamp(), 3))
        assert by_v16_start[key] == 1, key
        assert start.answer.transaction_id in by_id
    stored_events = Counter(events)
    acked_events = {
        (a.station_id, a.payload["transactionInfo"]["transactionId"], a.payload["seqNo"])
        for a in acks.of("TransactionEvent")
    }
    for station_id, ocpp_id, seq_no in acked_events:
        row = by_v201_id[(station_id, ocpp_id)]
        assert stored_events[(row.id, seq_no)] == 1, (station_id, ocpp_id, seq_no)
    assert len(transactions) == len(STATIONS), [(t.station_id, t.ocpp_transaction_id) for t in transactions]

    # --- the sessions open at the kill continued and closed with the right energy --------------------------
    kill_wall = as_utc_now_minus(time.monotonic() - killed_at)
    for station_id, version in STATIONS:
        if version == "1.6":
            (start,) = [a for a in acks.of("StartTransaction") if a.station_id == station_id]
            (stop,) = [a for a in acks.of("StopTransaction") if a.station_id == station_id]
            assert start.at < killed_at < restarted_at < stop.at
            row = by_id[start.answer.transaction_id]
            assert stop.payload["transactionId"] == row.id
            assert row.meter_stop_wh == stop.payload["meterStop"]
            assert row.energy_wh == stop.payload["meterStop"] - start.payload["meterStart"]
        else:
            started = [
                a
                for a in acks.of("TransactionEvent")
                if a.station_id == station_id and a.payload["eventType"] == "Started"
            ]
            ended = [
                a
                for a in acks.of("TransactionEvent")
                if a.station_id == station_id and a.payload["eventType"] == "Ended"
            ]
            assert len(started) == 1 and len(ended) == 1
            assert started[0].at < killed_at < restarted_at < ended[0].at
            row = by_v201_id[(station_id, started[0].payload["transactionInfo"]["transactionId"])]
            register = [
                float(s["value"])
                for mv in ended[0].payload.get("meterValue", [])
                for s in mv["sampledValue"]
                if (s.get("measurand") or "Energy.Active.Import.Register") == "Energy.Active.Import.Register"
                and not s.get("phase")
            ]
            assert row.stopped_at is not None and register and row.meter_stop_wh == pytest.approx(register[-1])
        later = [s for s in samples if s[0] == station_id and as_utc(s[1]) > kill_wall and s[4] == row.id]
        assert later, f"{station_id}: no sample after the restart attached to transaction {row.id}"

    # --- smart charging resumed within one scheduling interval -------------------------------------------------
    reconnected_wall = as_utc_now_minus(time.monotonic() - reconnected_at)
    interval_wall_s = SCHEDULING_INTERVAL_S / TIME_SCALE
    after = [as_utc(c) for c in cycles if as_utc(c) >= reconnected_wall]
    assert after and (after[0] - reconnected_wall).total_seconds() <= interval_wall_s, (reconnected_wall, cycles[-5:])
    figures["first_cycle_after_reconnect_s"] = (after[0] - reconnected_wall).total_seconds()

    print(
        f"\ncrash[{served_url.split(':')[0]}]: acknowledged {len(acks.acks)} CALLs"
        f" ({acked_before_kill} before the kill),"
        f" {sum(acked_samples.values())} samples acknowledged / {sum(stored[k] for k in acked_samples)} stored,"
        f" lost {len(lost)}, duplicates {len(doubled)}, transactions {len(transactions)};"
        f" restart {figures['restart_s']:.2f} s, all stations back {figures['reconnected_s']:.2f} s after the kill,"
        f" first cycle {figures['first_cycle_after_reconnect_s']:.2f} s after that"
    )


def as_utc_now_minus(seconds: float) -> datetime:
    """The wall time (UTC) ``seconds`` ago: maps the test's monotonic moments onto the database's clock."""
    return utc_now() - timedelta(seconds=seconds)
