"""A failure while handling one station's messages never reaches another station.

The failure is made real and lasting: a trigger in the database (as a DBA's check might) rejects every
meter value of one station, so each of its MeterValues fails inside the handler, in the shared group-commit
writer, in the same batches as everyone else's writes. That station must get CALLERROR InternalError and keep
its connection; the others must notice nothing: no error, every sample they were told was taken stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from optivgi_csms.server.app import Csms
from optivgi_csms.store.database import Database
from simulators.site import SiteOptions, SiteRun
from tests.e2e_sim.harness import TIME_SCALE, ev, scenario, station, until
from tests.faults.acks import AckLog
from tests.faults.test_database_outage import compare_samples

pytestmark = pytest.mark.slow

BAD = "BAD16"
GOOD = [("GOOD16", "1.6"), ("GOOD201", "2.0.1")]

SQLITE_TRIGGER = f"""
CREATE TRIGGER reject_one_station BEFORE INSERT ON meter_values WHEN NEW.station_id = '{BAD}'
BEGIN SELECT RAISE(ABORT, 'meter value refused by a test trigger'); END
"""
POSTGRES_TRIGGER = [
    f"""
    CREATE FUNCTION reject_one_station() RETURNS trigger AS $$
    BEGIN
        IF NEW.station_id = '{BAD}' THEN RAISE EXCEPTION 'meter value refused by a test trigger'; END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    "CREATE TRIGGER reject_one_station BEFORE INSERT ON meter_values"
    " FOR EACH ROW EXECUTE FUNCTION reject_one_station()",
]


async def install_trigger(database_url: str) -> None:
    """Make every meter value of :data:`BAD` fail to insert."""
    database = Database(database_url)
    try:
        async with database.write_engine.begin() as connection:
            statements = [SQLITE_TRIGGER] if database.is_sqlite else POSTGRES_TRIGGER
            for statement in statements:
                await connection.exec_driver_sql(statement)
    finally:
        await database.close()


async def test_one_stations_failing_handler_does_not_touch_the_others(database_url: str, make_csms: Any) -> None:
    await install_trigger(database_url)
    csms: Csms = await make_csms(log_level="warning")
    acks = AckLog()
    stations = [(BAD, "1.6"), *GOOD]
    site = scenario(
        "isolation", 100.0, [station(s, v) for s, v in stations], [ev(f"ev-{s}", s, 0, 6) for s, _ in stations]
    )
    options = SiteOptions(url=f"ws://127.0.0.1:{csms.ocpp.port}/ocpp", time_scale=TIME_SCALE, meter_interval_s=0.25)
    run = SiteRun(site, options, station_factory=acks.factory(message_attempts=2, message_retry_interval=0.2))
    runner = asyncio.create_task(run.run())

    def refused() -> list[dict[str, Any]]:
        return [
            e for e in run.recorder.protocol_errors if e["station_id"] == BAD and "InternalError" in e["description"]
        ]

    await until(lambda: len(refused()) >= 2, timeout_s=20)
    # Refused, not dropped: it is checked below that the station never had to reconnect (whether it is still
    # connected now depends on how far the scenario got on a loaded machine).
    info = await asyncio.wait_for(runner, 40)
    assert info.stopped == "scenario over", info

    assert all("MeterValues" in e["description"] or "StopTransaction" in e["description"] for e in refused()), refused()
    assert acks.stations[BAD].connection.connects == 1
    others = [e for e in run.recorder.protocol_errors if e["station_id"] != BAD]
    assert not others, others
    for station_id, _ in GOOD:
        samples = [
            a for a in acks.acks if a.station_id == station_id and a.action in ("MeterValues", "TransactionEvent")
        ]
        assert len(samples) >= 2, (station_id, len(samples))  # their samples kept flowing
    lost, doubled, stored = await compare_samples(csms.database, acks)
    assert not lost and not doubled, (lost, doubled)
    print(
        f"\nisolation[{csms.database.url.get_backend_name()}]: {BAD} refused {len(refused())} times with InternalError"
        f" and stayed connected; the others: {sum(acks.samples().values())} samples acknowledged / {stored} stored,"
        f" 0 errors; writer replays (a batch split to isolate the failing write) {csms.database.writer.stats.replays}"
    )
