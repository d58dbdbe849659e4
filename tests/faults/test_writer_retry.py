"""Which errors the writer retries, and for how long (the outage tests show it end to end)."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.store.database import Database
from optivgi_csms.store.errors import DatabaseUnavailableError, is_transient


def test_lock_and_disconnect_errors_are_transient_constraint_errors_are_not() -> None:
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert is_transient(locked)
    assert is_transient(ConnectionRefusedError(111, "Connect call failed"))
    invalidated = OperationalError(
        "SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True
    )
    assert is_transient(invalidated)
    assert not is_transient(IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")))
    assert not is_transient(ValueError("bad data"))
    # A value SQLite cannot bind is a bug, not an outage: retrying it would hold every write up for the budget.
    unbindable = InterfaceError(
        "INSERT", {}, sqlite3.InterfaceError("Error binding parameter 1: type 'dict' is not supported")
    )
    assert not is_transient(unbindable)


@pytest.fixture
async def database(database_url: str):
    database = Database(database_url, retry_s=1.0)
    database.start()
    yield database
    await database.close()


async def test_a_transient_failure_is_retried_until_it_passes(database: Database) -> None:
    tries = 0

    async def flaky(_session: AsyncSession) -> str:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
        return "stored"

    assert await database.write(flaky) == "stored"
    assert tries == 3 and database.writer.stats.retries == 2


async def test_a_lasting_outage_fails_after_the_budget_and_the_writer_carries_on(database: Database) -> None:
    async def down(_session: AsyncSession) -> None:
        raise ConnectionRefusedError(111, "Connect call failed")

    async def fine(_session: AsyncSession) -> str:
        return "ok"

    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError):
        await database.write(down)
    assert 0.9 <= time.monotonic() - started < 3.0
    assert database.writer.stats.unavailable == 1
    # Nothing is wedged: the next write goes through at once.
    assert await asyncio.wait_for(database.write(fine), 1.0) == "ok"
