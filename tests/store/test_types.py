"""UTCDateTime: every time stored as UTC, on both backends, whatever the conversion remembers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from optivgi_csms.store.database import Database
from optivgi_csms.store.models import IdTag
from optivgi_csms.store.types import UTCDateTime

PARIS = timezone(timedelta(hours=1))


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.asyncpg.dialect()], ids=["sqlite", "postgresql"])
def test_remembered_conversions_equal_fresh_ones_for_every_value(dialect: Dialect) -> None:
    remembered = UTCDateTime()._cached_bind_processor(dialect)
    assert remembered is not None
    values = [datetime(2026, 11, 25, 10, minute, tzinfo=PARIS) for minute in range(5)]
    # Rows alternate between a few objects, repeat some, and bring equal but distinct ones.
    sequence = [values[0], values[1], values[0], values[1], values[2], values[0], values[3], values[3], values[4]]
    sequence += [datetime(2026, 11, 25, 10, 0, tzinfo=PARIS), None]
    for value in sequence:
        fresh = UTCDateTime()._cached_bind_processor(dialect)
        assert fresh is not None
        assert remembered(value) == fresh(value)
    with pytest.raises(ValueError, match="naive datetime"):
        remembered(datetime(2026, 11, 25, 10, 0))


async def test_times_in_any_zone_come_back_as_the_same_instant_in_utc(database_url: str) -> None:
    database = Database(database_url)
    database.start()
    try:
        stamps = {f"T{hour}": datetime(2026, 11, 25, hour, 30, tzinfo=PARIS) for hour in range(6)}

        async def add(session) -> None:  # type: ignore[no-untyped-def]
            for name, stamp in stamps.items():
                session.add(IdTag(id_tag=name, status="Accepted", created_at=stamp, expiry_date=stamps["T0"]))

        await database.write(add)
        async with database.read() as session:
            rows = {tag.id_tag: tag for tag in await session.scalars(select(IdTag))}
        for name, stamp in stamps.items():
            assert rows[name].created_at == stamp and rows[name].created_at.tzinfo == UTC
            assert rows[name].expiry_date == stamps["T0"]
    finally:
        await database.close()
