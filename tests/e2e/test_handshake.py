"""The websocket handshake and a connection's life, for stations of both OCPP versions: which paths name a
station, subprotocol negotiation, security profile 1 (HTTP Basic auth), the boot policy, and a station
reconnecting over its old connection."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import websockets
from ocpp.exceptions import SecurityError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.exceptions import InvalidStatus

from optivgi_csms.domain.station import STATION_ID_RULE
from optivgi_csms.protocol.errors import StationNotConnectedError
from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import Connector, MeterValue, Station, Transaction
from tests.support.driver import Driver, connect, subprotocol
from tests.support.stations import basic_auth, connect_unresponsive, eventually, register, wait_connected

PASSWORD = "correct-horse-battery-1"


def url(csms: Csms, path: str) -> str:
    return f"ws://127.0.0.1:{csms.ocpp.port}{path}"


async def refusal(address: str, **options: Any) -> Any:
    """The HTTP response of a handshake the server must refuse."""
    options.setdefault("subprotocols", ["ocpp1.6"])
    with pytest.raises(InvalidStatus) as caught:
        async with websockets.connect(address, **options):
            pass
    return caught.value.response


async def stations(csms: Csms) -> dict[str, Station]:
    async with csms.database.read() as session:
        return {station.id: station for station in await session.scalars(select(Station))}


async def boot(station: Driver) -> str:
    return (await station.boot()).status


# --- paths ----------------------------------------------------------------------------------------


async def test_station_id_from_the_path(make_csms, ocpp_version: str) -> None:
    default = await make_csms()
    async with connect(default, "CP-1", ocpp_version) as station:
        assert await boot(station) == "Accepted"
    async with connect(default, "CP-2", ocpp_version, prefix="ocpp") as station:
        assert await boot(station) == "Accepted"
        commands = await wait_connected(default, "CP-2")
        assert (commands.station_id, commands.ocpp_version) == ("CP-2", ocpp_version)
    async with websockets.connect(url(default, "/ocpp/CP%2A3%40site?x=1"), subprotocols=[subprotocol(ocpp_version)]):
        commands = await wait_connected(default, "CP*3@site")  # percent-decoded; the query is ignored
        assert commands.station_id == "CP*3@site"
    assert set(await stations(default)) == {"CP-1", "CP-2", "CP*3@site"}

    custom = await make_csms(path_prefix="csms/v1")
    async with connect(custom, "CP-4", ocpp_version, prefix="csms/v1") as station:
        assert await boot(station) == "Accepted"
    async with connect(custom, "CP-5", ocpp_version) as station:  # /<id> works with any prefix
        assert await boot(station) == "Accepted"
    # the default prefix is not special any more
    response = await refusal(url(custom, "/ocpp/CP-6"), subprotocols=[subprotocol(ocpp_version)])
    assert response.status_code == 400
    assert b"connect to /<station id> or /csms/v1/<station id>" in response.body


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/ocpp/a/b",  # nested below the prefix
        "/site/CP-1",  # an unknown prefix
        "/a%2Fb",  # an encoded slash
        "/bad%20id",  # a space
        "/CP-%C3%A9",  # a non-ASCII character
        "/" + "x" * 49,  # too long
        "/ocpp/",  # the prefix alone: an empty id, not a station called "ocpp"
        "/ocpp",
    ],
)
async def test_paths_that_name_no_valid_station_are_refused(csms, ocpp_version: str, path: str) -> None:
    response = await refusal(url(csms, path), subprotocols=[subprotocol(ocpp_version)])
    assert response.status_code == 400
    assert b"connect to /<station id> or /ocpp/<station id>" in response.body
    assert STATION_ID_RULE.encode() in response.body
    assert await stations(csms) == {}
    assert csms.registry.ids() == []


# --- subprotocols ---------------------------------------------------------------------------------


async def test_a_handshake_without_a_subprotocol_is_refused(csms) -> None:
    response = await refusal(url(csms, "/CP-1"), subprotocols=None)
    assert response.status_code == 400
    assert b"offered no subprotocol" in response.body and b"ocpp1.6" in response.body
    assert await stations(csms) == {}


async def test_an_unsupported_version_is_refused_clearly(csms) -> None:
    response = await refusal(url(csms, "/CP-1"), subprotocols=["ocpp2.1", "ocpp1.5"])
    assert response.status_code == 400
    assert b"unsupported OCPP version" in response.body
    assert b"offered ocpp2.1, ocpp1.5" in response.body and b"speaks ocpp2.0.1, ocpp1.6" in response.body
    assert await stations(csms) == {}


@pytest.mark.parametrize(
    ("offered", "negotiated"),
    [
        (["ocpp1.6"], "1.6"),
        (["ocpp2.0.1"], "2.0.1"),
        (["ocpp1.6", "ocpp2.0.1"], "2.0.1"),  # the newest version both speak wins
        (["ocpp2.1", "ocpp1.6"], "1.6"),
    ],
)
async def test_the_version_is_negotiated(csms, offered: list[str], negotiated: str) -> None:
    async with websockets.connect(url(csms, "/CP-1"), subprotocols=offered) as connection:
        assert connection.subprotocol == "ocpp" + negotiated
        assert (await wait_connected(csms, "CP-1")).ocpp_version == negotiated
    assert (await stations(csms))["CP-1"].ocpp_version == negotiated


# --- security profile 1 ---------------------------------------------------------------------------


async def test_security_profile_1_accepts_the_right_password(make_csms, ocpp_version: str) -> None:
    csms = await make_csms(security_profile=1)
    await register(csms, "CP-1", PASSWORD)
    async with connect(csms, "CP-1", ocpp_version, password=PASSWORD) as station:
        assert await boot(station) == "Accepted"
    assert (await stations(csms))["CP-1"].last_connected_at is not None

    # OCPP allows ':' in a station id, where a Basic-auth user name (RFC 7617) ends: the id still works
    await register(csms, "site:CP-7", "pass:word:with:colons")
    async with connect(csms, "site:CP-7", ocpp_version, password="pass:word:with:colons") as station:
        assert await boot(station) == "Accepted"


async def test_security_profile_1_refuses_bad_credentials_before_any_ocpp(make_csms, ocpp_version: str) -> None:
    csms = await make_csms(security_profile=1)
    await register(csms, "CP-1", PASSWORD)
    await register(csms, "CP-NOPW")  # registered, but no password set
    before = await stations(csms)

    cases = {
        "/CP-1": [
            (None, b"credentials required"),
            (basic_auth("CP-1", PASSWORD + "x"), b"wrong password"),
            (basic_auth("CP-1", ""), b"wrong password"),
            (basic_auth("CP-2", PASSWORD), b"user name must be the station id"),
            ({"Authorization": "Basic not*base64!"}, b"malformed Authorization header"),
            ({"Authorization": f"Bearer {PASSWORD}"}, b"malformed Authorization header"),
        ],
        "/CP-UNKNOWN": [(basic_auth("CP-UNKNOWN", PASSWORD), b"wrong password or unknown station")],
        "/CP-NOPW": [(basic_auth("CP-NOPW", PASSWORD), b"wrong password or unknown station")],
    }
    for path, attempts in cases.items():
        for headers, reason in attempts:
            response = await refusal(
                url(csms, path), additional_headers=headers, subprotocols=[subprotocol(ocpp_version)]
            )
            assert response.status_code == 401, (path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Basic ")
            assert reason in response.body, (path, headers, response.body)

    after = await stations(csms)
    assert set(after) == {"CP-1", "CP-NOPW"}  # no row for the unknown station
    assert all(after[name].last_connected_at is None for name in after)
    assert [(s.id, s.password_hash, s.ocpp_version) for s in after.values()] == [
        (s.id, s.password_hash, s.ocpp_version) for s in before.values()
    ]
    assert csms.registry.ids() == []


async def test_security_profile_0_is_the_default(csms, ocpp_version: str) -> None:
    await register(csms, "CP-1", PASSWORD)
    async with connect(csms, "CP-1", ocpp_version) as station:  # no credentials asked
        assert await boot(station) == "Accepted"


# --- boot policy ----------------------------------------------------------------------------------


async def test_boot_policy_registered(make_csms, ocpp_version: str) -> None:
    csms = await make_csms(boot_policy="registered")
    await register(csms, "CP-REG")
    async with connect(csms, "CP-REG", ocpp_version) as station:
        assert await boot(station) == "Accepted"
        assert await station.heartbeat()

    async with connect(csms, "CP-NEW", ocpp_version) as station:
        assert await boot(station) == "Rejected"
        with pytest.raises(SecurityError):
            await station.heartbeat()
        with pytest.raises(SecurityError):
            await station.status(1, "Available")
        with pytest.raises(SecurityError):
            await station.authorize("TAG-1")
        row = (await stations(csms))["CP-NEW"]
        assert (row.registered, row.boot_status, row.last_heartbeat_at) == (False, "Rejected", None)
        assert row.ocpp_version == ocpp_version

        # once an operator registers it, its next boot is accepted and it may talk again
        async def registered(session: AsyncSession) -> None:
            (await session.get(Station, "CP-NEW")).registered = True

        await csms.database.write(registered)
        assert await boot(station) == "Accepted"
        assert await station.heartbeat()
    assert (await stations(csms))["CP-NEW"].last_heartbeat_at is not None
    async with csms.database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Connector)) == 0  # the refused status


async def test_an_unregistered_station_cannot_skip_the_boot(make_csms, ocpp_version: str) -> None:
    # Stations reconnecting after a network drop often send no BootNotification: an unregistered
    # one must still not get anything stored under the "registered" policy (its very first frame is refused).
    csms = await make_csms(boot_policy="registered")
    async with connect(csms, "CP-SNEAK", ocpp_version) as station:
        with pytest.raises(SecurityError):
            await station.start("T")
    async with csms.database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Transaction)) == 0
        assert await session.scalar(select(func.count()).select_from(MeterValue)) == 0

    async def registered(session: AsyncSession) -> None:
        (await session.get(Station, "CP-SNEAK")).registered = True

    await csms.database.write(registered)
    async with connect(csms, "CP-SNEAK", ocpp_version) as station:  # registered: admitted even before it boots
        assert await station.heartbeat()


# --- reconnection ---------------------------------------------------------------------------------


async def test_reconnect_replaces_the_old_connection(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as first:
        old = await wait_connected(csms, "CP-1")
        async with connect(csms, "CP-1", ocpp_version) as second:
            connection = first.station._connection
            await asyncio.wait_for(connection.wait_closed(), 2)
            assert connection.close_code == 1000
            assert "replaced" in connection.close_reason
            await eventually(lambda: old.closed)  # the old session has finished its cleanup

            new = csms.registry.get("CP-1")
            assert new is not old and csms.registry.ids() == ["CP-1"]
            assert (await new.reset()).accepted
            assert second.received() == ["Reset"]
            assert first.received() == []
            with pytest.raises(StationNotConnectedError):
                await old.reset()  # a handle kept from the old connection fails clearly
            assert await boot(second) == "Accepted"

            row = (await stations(csms))["CP-1"]
            # the old connection's end must not mark the station, which is still connected, as gone
            assert row.last_disconnected_at is None or row.last_disconnected_at < row.last_connected_at
    # once the station has really gone, its row says so
    for _ in range(200):
        row = (await stations(csms))["CP-1"]
        if row.last_disconnected_at is not None:
            break
        await asyncio.sleep(0.01)
    assert row.last_disconnected_at is not None and row.last_disconnected_at > row.last_connected_at


async def test_reconnect_over_a_dead_connection_is_served_at_once(csms, ocpp_version: str) -> None:
    async with connect_unresponsive(csms, "CP-1"):  # a dead 1.6 link; the station may come back in either version
        old = await wait_connected(csms, "CP-1")
        began = time.monotonic()
        async with connect(csms, "CP-1", ocpp_version) as fresh:
            # a station whose old link died silently must not wait for the old close handshake to time out
            assert await asyncio.wait_for(boot(fresh), 3) == "Accepted"
            assert time.monotonic() - began < 1.5
            assert csms.registry.get("CP-1") is not old


async def test_a_station_upgraded_to_201_replaces_its_16_connection(csms) -> None:
    # A firmware update often changes the OCPP version: the station comes back on the same id in 2.0.1.
    async with connect(csms, "CP-1", "1.6") as old:
        assert await boot(old) == "Accepted"
        session = await old.start("TAG-1")
        async with connect(csms, "CP-1", "2.0.1") as new:
            await asyncio.wait_for(old.station._connection.wait_closed(), 2)
            commands = csms.registry.get("CP-1")
            assert commands.ocpp_version == "2.0.1"
            assert (await commands.reset()).accepted
            assert new.last("Reset") == {"type": "OnIdle"}  # 2.0.1 words now
            assert await boot(new) == "Accepted"
            upgraded = await new.start("TAG-2", timestamp="2026-03-02T09:00:00Z")
            assert (await csms.registry.get("CP-1").remote_stop(upgraded.id)).accepted
            assert new.last("RemoteStop") == {"transaction_id": upgraded.ocpp_id}
            assert (await stations(csms))["CP-1"].ocpp_version == "2.0.1"
    async with csms.database.read() as db:
        rows = (await db.scalars(select(Transaction).order_by(Transaction.id))).all()
    # the 1.6 session and the 2.0.1 one are the same station's, in the same table
    assert [(row.id, row.station_id, row.ocpp_transaction_id) for row in rows] == [
        (session.id, "CP-1", None),
        (upgraded.id, "CP-1", upgraded.ocpp_id),
    ]
