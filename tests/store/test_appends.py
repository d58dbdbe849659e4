"""Appends of one group commit go in together: one statement per table, still in order with other writes,
and a bad row fails only its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.appends import append_later
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import IdTag
from tests.store.test_writer import count_tags


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    database.start()
    yield database
    await database.close()


def append_tag(name: str, status: str | None = "Accepted"):
    async def op(session: AsyncSession) -> str:
        append_later(session, IdTag, [{"id_tag": name, "status": status, "created_at": utc_now()}])
        return name

    return op


async def tags_seen(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(IdTag)) or 0)


def count_inserts(db: Database) -> list[str]:
    statements: list[str] = []

    @event.listens_for(db.write_engine.sync_engine, "before_cursor_execute")
    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ID_TAGS"):
            statements.append(statement)

    return statements


async def test_appends_of_one_batch_are_one_statement_and_all_stored(database: Database) -> None:
    inserts = count_inserts(database)
    names = await asyncio.gather(*(database.write(append_tag(f"T{i}"), appends_only=True) for i in range(100)))
    assert names == [f"T{i}" for i in range(100)]
    assert await count_tags(database) == 100
    batches = database.writer.stats.batches
    assert len(inserts) == batches < 100  # one statement per batch, not one per write


async def test_a_write_that_reads_sees_the_rows_appended_before_it(database: Database) -> None:
    first = [database.write(append_tag(f"A{i}"), appends_only=True) for i in range(5)]
    last = database.write(append_tag("B"), appends_only=True)
    results = await asyncio.gather(*first, database.write(tags_seen), last)
    assert database.writer.stats.batches == 1  # all in one batch: the read ran between the appends
    assert results[5] == 5
    assert await count_tags(database) == 6


async def test_a_bad_appended_row_fails_only_its_caller(database: Database) -> None:
    outcomes = await asyncio.gather(
        database.write(append_tag("G1"), appends_only=True),
        database.write(append_tag("BAD", status=None), appends_only=True),  # NOT NULL breaks
        database.write(append_tag("G2"), appends_only=True),
        return_exceptions=True,
    )
    assert outcomes[0] == "G1" and outcomes[2] == "G2"
    assert isinstance(outcomes[1], Exception)
    assert await count_tags(database) == 2
