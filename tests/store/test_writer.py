"""The group-commit writer: many writers share commits, results come after the commit, one failure
fails only its caller."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import IdTag
from optivgi_csms.store.writer import WriterClosedError


@pytest.fixture
async def database(database_url: str):
    database = Database(database_url)
    database.start()
    yield database
    await database.close()


def add_tag(name: str):
    async def op(session: AsyncSession) -> str:
        session.add(IdTag(id_tag=name, status="Accepted", created_at=utc_now()))
        await session.flush()
        return name

    return op


async def count_tags(database: Database) -> int:
    async with database.read() as session:
        return await session.scalar(select(func.count()).select_from(IdTag))


async def test_concurrent_writes_share_commits_and_are_visible_when_answered(database: Database) -> None:
    async def write_and_check(name: str) -> bool:
        await database.write(add_tag(name))
        # Committed before the caller hears back: a fresh session sees it.
        async with database.read() as session:
            return await session.get(IdTag, name) is not None

    results = await asyncio.gather(*(write_and_check(f"T{i}") for i in range(200)))
    assert all(results)
    assert await count_tags(database) == 200
    stats = database.writer.stats
    assert stats.operations == 200
    assert stats.batches < 200  # batched, not one commit per write


async def test_a_failing_write_fails_alone(database: Database) -> None:
    async def broken(session: AsyncSession) -> None:
        raise ValueError("bad data")

    outcomes = await asyncio.gather(
        database.write(add_tag("A")),
        database.write(broken),
        database.write(add_tag("B")),
        database.write(add_tag("A")),  # duplicate key: fails at flush
        return_exceptions=True,
    )
    assert outcomes[0] == "A" and outcomes[2] == "B"
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[3], Exception)
    assert await count_tags(database) == 2


async def test_close_finishes_queued_writes_then_refuses(database_url: str) -> None:
    database = Database(database_url)
    database.start()
    pending = [asyncio.ensure_future(database.write(add_tag(f"Q{i}"))) for i in range(50)]
    await asyncio.sleep(0)
    await database.close()
    assert [task.result() for task in pending] == [f"Q{i}" for i in range(50)]
    with pytest.raises(WriterClosedError):
        await database.write(add_tag("late"))
    reopened = Database(database_url)
    try:
        assert await count_tags(reopened) == 50
    finally:
        await reopened.close()
