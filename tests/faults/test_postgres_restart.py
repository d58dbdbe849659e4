"""PostgreSQL itself is stopped under a running CSMS and started again.

The shared server goes down for everyone, so this test runs alone: it is marked ``restarts_postgres``,
which ``make test`` leaves out of its parallel run and runs afterwards by itself. It needs to control the
server (``pg_ctlcluster``, as root, on the cluster behind ``OPTIVGI_TEST_POSTGRES_URL``) and says why it is
skipped when it cannot.

What must hold, as in the proxy outage of ``test_database_outage.py`` but with the real server stopping
(its connections closed by the server's shutdown, new ones refused while it is down): nothing is
acknowledged that is not stored, the station's websocket stays up and Heartbeat is answered, and once the
server is back the same CSMS stores again, each message a station was told was taken exactly once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import MeterValue, Transaction
from tests.conftest import PostgresDatabases, settings_for
from tests.e2e_sim.harness import until
from tests.faults.test_database_outage import boot, meter_values, timed_call
from tests.support.stations import connect_raw

#: The CSMS's retry budget here (s): shorter than the time the server is down.
RETRY_S = 2.0
NOW = "2026-03-02T08:00:00Z"


def _cluster_for(port: int) -> tuple[str, str] | None:
    """The (version, name) of the local cluster listening on ``port``, from ``pg_lsclusters``."""
    if shutil.which("pg_lsclusters") is None:
        return None
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == str(port):
            return fields[0], fields[1]
    return None


def _ctl(cluster: tuple[str, str], action: str) -> None:
    subprocess.run(["pg_ctlcluster", *cluster, action, *(["-m", "fast"] if action == "stop" else [])], check=True)


def _ready(port: int) -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)], check=False).returncode == 0


@pytest.fixture
def controlled_postgres(postgres: PostgresDatabases) -> Any:
    """The cluster behind the test database, when this process may stop and start it."""
    url = make_url(postgres.url)
    if url.host not in ("127.0.0.1", "localhost") or os.geteuid() != 0:
        pytest.skip("stopping PostgreSQL needs root on the machine that runs it (pg_ctlcluster)")
    cluster = _cluster_for(url.port or 5432)
    if cluster is None or shutil.which("pg_ctlcluster") is None:
        pytest.skip(f"no pg_ctlcluster cluster listens on port {url.port or 5432}")
    yield cluster, url.port or 5432
    if not _ready(url.port or 5432):  # never leave the machine's database down, whatever failed
        _ctl(cluster, "start")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.restarts_postgres
async def test_postgres_stopped_and_started_loses_and_doubles_nothing(
    postgres: PostgresDatabases, controlled_postgres: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, port = controlled_postgres
    name = await postgres.clone()
    csms = Csms(settings_for(postgres.url_of(name), database_retry=RETRY_S, log_level="warning"))
    await csms.start()
    try:
        async with connect_raw(csms, "PGR16") as raw:
            await boot(raw)
            started = await raw.call(
                "StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 0, "timestamp": NOW}, "s1"
            )
            transaction_id = started[2]["transactionId"]
            taken = await raw.call("MeterValues", meter_values(transaction_id, 1, 1000), "m1")
            assert taken[0] == 3, taken

            await asyncio.to_thread(_ctl, cluster, "stop")
            stopped_at = time.monotonic()
            heartbeat, heartbeat_s = await timed_call(raw, "Heartbeat", {}, "h1")
            # Answered with the time even though its record cannot be written (it waits for that at most 2 s).
            assert heartbeat[0] == 3 and heartbeat_s < 3.0, (heartbeat, heartbeat_s)
            refused, refused_s = await timed_call(raw, "MeterValues", meter_values(transaction_id, 2, 2000), "m2")
            assert refused[0] == 4 and refused[2] == "InternalError", refused  # not acknowledged ...
            assert RETRY_S - 0.5 <= refused_s <= RETRY_S + 3.0, refused_s  # ... after the retry budget
            # An outage, not a bug: the operator's log says so in a line, with no traceback per message.
            log = capsys.readouterr().out
            assert "call refused for now" in log and "Traceback" not in log and "handler failed" not in log
            await until(lambda: time.monotonic() - stopped_at >= RETRY_S + 1.0, timeout_s=10)

            await asyncio.to_thread(_ctl, cluster, "start")
            await until(lambda: _ready(port), timeout_s=30)
            restarted_at = time.monotonic()
            # The station sends the refused reading again, and once more as if its answer were lost.
            retried, retried_s = await timed_call(raw, "MeterValues", meter_values(transaction_id, 2, 2000), "m3")
            assert retried[0] == 3, retried
            again = await raw.call("MeterValues", meter_values(transaction_id, 2, 2000), "m4")
            assert again[0] == 3, again
            stopped = await raw.call(
                "StopTransaction",
                {"transactionId": transaction_id, "meterStop": 2500, "timestamp": "2026-03-02T08:03:00Z"},
                "t1",
            )
            assert stopped[0] == 3, stopped
            recovery_s = time.monotonic() - restarted_at
        async with csms.database.read() as session:
            readings = list(
                await session.scalars(
                    select(MeterValue.value_numeric)
                    .where(MeterValue.transaction_id == transaction_id)
                    .order_by(MeterValue.timestamp)
                )
            )
            transactions = int(await session.scalar(select(func.count()).select_from(Transaction)) or 0)
            row = await session.get(Transaction, transaction_id)
        assert readings == [1000.0, 2000.0]  # each acknowledged reading once, the refused one after its retry
        assert transactions == 1 and row is not None and row.meter_stop_wh == 2500
        print(f"PostgreSQL restart: stored again {retried_s:.2f} s after it was ready, recovery {recovery_s:.2f} s")
    finally:
        await csms.stop()
        if _ready(port):
            await postgres.drop(name)
