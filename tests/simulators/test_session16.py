"""The one-session simulator completes a session against the CSMS, and the CSMS stores it."""

from __future__ import annotations

from sqlalchemy import func, select

from optivgi_csms.store.models import MeterValue, Transaction
from simulators.session16 import run_session
from tests.support.stations import station_url


async def test_session_against_the_csms(csms) -> None:
    assert await run_session(station_url(csms, "SIM-1", prefix="ocpp"), "TAG", minutes=3, power_kw=6.0, password=None)
    async with csms.database.read() as session:
        transaction = await session.scalar(select(Transaction))
        samples = await session.scalar(select(func.count()).select_from(MeterValue))
    assert transaction.station_id == "SIM-1" and transaction.energy_wh == 300
    assert samples == 6


async def test_session_stops_when_the_tag_is_refused(make_csms) -> None:
    csms = await make_csms(unknown_id_tags="reject")
    assert not await run_session(station_url(csms, "SIM-2"), "NOBODY", minutes=1, power_kw=6.0, password=None)
