"""The database goes away under a running CSMS, and comes back.

PostgreSQL: the shared server keeps running for everyone else; the CSMS reaches it through
:class:`~tests.faults.proxy.TcpProxy`, which the test cuts (every connection reset, new ones refused) and
restores, a real outage as the CSMS sees it. SQLite: another connection holds the write lock.

What must hold: while nothing can be stored, nothing is acknowledged (StartTransaction, MeterValues,
TransactionEvent get CALLERROR InternalError once the retry budget is spent, so stations send them again);
the websockets stay up; Heartbeat is still answered; when the database is back the CSMS uses it again
without a restart; and every message a station was told was taken is stored exactly once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from optivgi_csms.server.app import Csms
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import MeterValue, Transaction, TransactionEventRecord
from simulators.site import SiteOptions, SiteRun
from tests.conftest import PostgresDatabases, settings_for
from tests.e2e_sim.harness import TIME_SCALE, ev, scenario, station, until
from tests.faults.acks import AckLog, SampleKey, reconnect_quickly, sample_key
from tests.faults.proxy import TcpProxy
from tests.support.stations import RawStation, connect_raw

#: The CSMS's retry budget in these tests (s): short, so an outage longer than it fits in a test.
RETRY_S = 2.0
#: How long the outage lasts (s): longer than the budget, so some messages are refused and retried.
OUTAGE_S = 5.0
NOW = "2026-03-02T08:00:00Z"
TRANSACTION_MESSAGES = ("StartTransaction", "StopTransaction", "MeterValues", "TransactionEvent")


def meter_values(transaction_id: int, minute: int, wh: int) -> dict[str, Any]:
    """A 1.6 MeterValues payload with one energy register sample."""
    sample = {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [{"timestamp": f"2026-03-02T08:{minute:02d}:00Z", "sampledValue": [sample]}],
    }


async def timed_call(raw: RawStation, action: str, payload: dict[str, Any], message_id: str) -> tuple[list[Any], float]:
    """A CALL's reply and how long it took (s)."""
    started = time.monotonic()
    reply = await raw.call(action, payload, message_id)
    return reply, time.monotonic() - started


async def boot(raw: RawStation) -> None:
    """Boot a raw 1.6 station."""
    reply = await raw.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}, "b1")
    assert reply[2]["status"] == "Accepted", reply


# --- PostgreSQL: the connection cut ------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
async def test_postgres_outage_is_refused_not_acknowledged_and_nothing_is_lost(postgres: PostgresDatabases) -> None:
    name = await postgres.clone()
    direct = make_url(postgres.url_of(name))
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
    await proxy.start()
    through_proxy = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    csms = Csms(settings_for(through_proxy, database_retry=RETRY_S, log_level="warning"))
    await csms.start()
    acks = AckLog()
    stations = [("P16", "1.6"), ("P201", "2.0.1")]
    site = scenario(
        "outage", 100.0, [station(s, v) for s, v in stations], [ev(f"ev-{s}", s, 0, 14) for s, _ in stations]
    )
    options = SiteOptions(url=f"ws://127.0.0.1:{csms.ocpp.port}/ocpp", time_scale=TIME_SCALE, meter_interval_s=0.25)
    # Stations retry a refused transaction message every half second, as often as it takes (OCPP's
    # TransactionMessageAttempts; the default 3 would give up during a long outage).
    run = SiteRun(
        site,
        options,
        station_factory=acks.factory(reconnect_quickly, message_attempts=1000, message_retry_interval=0.5),
    )
    figures: dict[str, float] = {}
    try:
        runner = asyncio.create_task(run.run())
        await asyncio.wait_for(run.clock_started.wait(), 20)
        async with connect_raw(csms, "RAW16") as raw:
            await boot(raw)
            started = await raw.call(
                "StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 0, "timestamp": NOW}, "s1"
            )
            transaction_id = started[2]["transactionId"]
            await asyncio.sleep(2.0)  # sessions running, samples flowing

            await proxy.cut()
            cut_at = time.monotonic()
            heartbeat, heartbeat_s = await timed_call(raw, "Heartbeat", {}, "h1")
            refused, refused_s = await timed_call(raw, "MeterValues", meter_values(transaction_id, 1, 1000), "m1")
            start2 = {"connectorId": 1, "idTag": "T2", "meterStart": 0, "timestamp": "2026-03-02T09:00:00Z"}
            refused_start, _ = await timed_call(raw, "StartTransaction", start2, "s2")
            await until(lambda: time.monotonic() - cut_at >= OUTAGE_S, timeout_s=OUTAGE_S + 5)
            await proxy.restore()
            restored_at = time.monotonic()
            # The station sends the refused messages again: taken now, each stored once.
            retried, retried_s = await timed_call(raw, "MeterValues", meter_values(transaction_id, 1, 1000), "m2")
            again, _ = await timed_call(raw, "MeterValues", meter_values(transaction_id, 1, 1000), "m3")
            started2 = await raw.call("StartTransaction", start2, "s3")
            figures["raw_recovery_s"] = retried_s
        await until(
            lambda: (
                {a.station_id for a in acks.acks if a.at > restored_at and a.action in TRANSACTION_MESSAGES}
                == {s for s, _ in stations}
            ),
            timeout_s=20,
        )
        figures["stations_recovery_s"] = (
            max(
                min(
                    a.at
                    for a in acks.acks
                    if a.station_id == s and a.at > restored_at and a.action in TRANSACTION_MESSAGES
                )
                for s, _ in stations
            )
            - restored_at
        )
        info = await asyncio.wait_for(runner, 60)
    finally:
        await csms.stop()
        await proxy.close()

    # While the database was unreachable: Heartbeat answered, transaction messages refused, not acknowledged.
    assert heartbeat[0] == 3 and "currentTime" in heartbeat[2], heartbeat
    assert heartbeat_s < RETRY_S + 1.0
    assert refused[0] == 4 and refused[2] == "InternalError", refused
    assert RETRY_S - 0.5 <= refused_s <= RETRY_S + 3.0, refused_s
    assert refused_start[0] == 4 and refused_start[2] == "InternalError", refused_start
    during = [a for a in acks.acks if cut_at + 0.5 < a.at < restored_at and a.action in TRANSACTION_MESSAGES]
    assert not during, during[:3]
    refusals = [e for e in run.recorder.protocol_errors if "InternalError" in e["description"]]
    assert refusals, "the simulated stations were never refused: the outage did not reach them"
    # Afterwards: accepted again, without a restart, and the websockets never dropped.
    assert retried == [3, "m2", {}] and again == [3, "m3", {}]
    assert started2[0] == 3 and started2[2]["idTagInfo"]["status"] == "Accepted"
    assert info.stopped == "scenario over", info
    assert {s: acks.stations[s].connection.connects for s, _ in stations} == {s: 1 for s, _ in stations}
    assert not [e for e in run.recorder.messages if e.startswith("dropped:")], run.recorder.messages

    database = Database(direct.render_as_string(hide_password=False))
    try:
        lost, doubled, stored_total = await compare_samples(database, acks)
        async with database.read() as session:
            raw_samples = await session.scalar(
                select(func.count()).select_from(MeterValue).where(MeterValue.station_id == "RAW16")
            )
            raw_starts = await session.scalar(
                select(func.count()).select_from(Transaction).where(Transaction.station_id == "RAW16")
            )
            events = Counter(
                await session.execute(select(TransactionEventRecord.transaction_id, TransactionEventRecord.seq_no))
            )
    finally:
        await database.close()
        await postgres.drop(name)
    assert not lost and not doubled, (lost, doubled)
    assert raw_samples == 1 and raw_starts == 2
    assert all(n == 1 for n in events.values())
    acked_samples = sum(acks.samples().values())
    print(
        f"\noutage[postgresql]: {OUTAGE_S:.0f} s cut, retry budget {RETRY_S:.0f} s; Heartbeat answered in"
        f" {heartbeat_s:.2f} s, MeterValues refused after {refused_s:.2f} s; {len(refusals)} InternalError"
        f" refusals to the simulated stations; acknowledged {len(acks.acks)} CALLs, {acked_samples} samples"
        f" / {stored_total} stored, lost {len(lost)}, duplicates {len(doubled)}; first transaction message"
        f" taken {figures['raw_recovery_s']:.2f} s after the database returned, every station's within"
        f" {figures['stations_recovery_s']:.2f} s"
    )


async def compare_samples(database: Database, acks: AckLog) -> tuple[dict[SampleKey, int], dict[SampleKey, int], int]:
    """Acknowledged samples missing from the database, and stored more often than acknowledged."""
    async with database.read() as session:
        rows = await session.execute(
            select(MeterValue.station_id, MeterValue.timestamp, MeterValue.measurand, MeterValue.phase)
        )
        stored = Counter(sample_key(r[0], r[1], {"measurand": r[2], "phase": r[3]}) for r in rows)
    acked = acks.samples()
    lost = {key: n for key, n in acked.items() if stored[key] < n}
    doubled = {key: stored[key] for key, n in acked.items() if stored[key] > n}
    return lost, doubled, sum(stored[key] for key in acked)


# --- SQLite: the write lock held by another process ----------------------------------------------------------


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Hold SQLite's write lock from another connection (as a second process would) until the block ends."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=10)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


@pytest.mark.slow
async def test_sqlite_lock_is_waited_out_within_the_budget_then_refused(tmp_path: Path, sqlite_template: Path) -> None:
    import shutil

    path = tmp_path / "csms.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    csms = Csms(settings_for(url, database_retry=RETRY_S, log_level="warning"))
    await csms.start()
    try:
        async with connect_raw(csms, "LOCK16") as raw:
            await boot(raw)
            started = await raw.call(
                "StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 0, "timestamp": NOW}, "s1"
            )
            transaction_id = started[2]["transactionId"]

            # A lock shorter than the budget: the write waits for it and is acknowledged once committed.
            with write_lock(path):
                send = asyncio.create_task(timed_call(raw, "MeterValues", meter_values(transaction_id, 1, 1000), "m1"))
                await asyncio.sleep(1.0)
                assert not send.done()
            short, short_s = await send

            # A lock longer than the budget: refused with InternalError after the budget, Heartbeat still answered.
            with write_lock(path):
                refused, refused_s = await timed_call(raw, "MeterValues", meter_values(transaction_id, 2, 2000), "m2")
                heartbeat, heartbeat_s = await timed_call(raw, "Heartbeat", {}, "h1")
            # The connection stayed up: the station sends the refused message again, and it is taken once.
            retried = await raw.call("MeterValues", meter_values(transaction_id, 2, 2000), "m3")
            retried_again = await raw.call("MeterValues", meter_values(transaction_id, 2, 2000), "m4")
        async with csms.database.read() as session:
            values = sorted(await session.scalars(select(MeterValue.value).where(MeterValue.station_id == "LOCK16")))
    finally:
        await csms.stop()
    assert short == [3, "m1", {}] and 1.0 <= short_s < RETRY_S + 1.0, (short, short_s)
    assert refused[0] == 4 and refused[1] == "m2" and refused[2] == "InternalError", refused
    assert RETRY_S - 0.5 <= refused_s <= RETRY_S + 2.0, refused_s
    assert heartbeat[0] == 3 and "currentTime" in heartbeat[2] and heartbeat_s < RETRY_S + 1.0, heartbeat
    assert retried == [3, "m3", {}] and retried_again == [3, "m4", {}]
    assert values == ["1000", "2000"]  # acknowledged ones, each once; the refused one only when sent again
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    print(
        f"\nlock[sqlite]: budget {RETRY_S:.0f} s; a 1 s lock waited out, answered after {short_s:.2f} s; a longer lock"
        f" refused with InternalError after {refused_s:.2f} s, Heartbeat answered in {heartbeat_s:.2f} s under it;"
        f" stored {len(values)} of 2 samples acknowledged, integrity ok"
    )
