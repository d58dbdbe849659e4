"""Handshake hardening over real connections: the connection cap, the back-off for addresses that fail to
authenticate, the handshake timeout, and a station id connecting again while connected."""

from __future__ import annotations

import asyncio
import contextlib
import time

import websockets
from sqlalchemy import select
from websockets.exceptions import InvalidStatus

from optivgi_csms.server.admission import FailureLimiter, source_key
from optivgi_csms.store.models import SecurityEvent
from tests.security.conftest import (
    PASSWORD,
    Pki,
    boots,
    client_context,
    connect_tls,
    handshake_error,
    wss_url,
)
from tests.support.stations import (
    RawStation,
    basic_auth,
    connect_raw,
    eventually,
    register,
    station_url,
    wait_registered,
)


async def status_of(url: str, **options) -> int:
    """The HTTP status a refused handshake got."""
    error = await handshake_error(url, **options)
    assert isinstance(error, InvalidStatus), repr(error)
    return error.response.status_code


# --- concurrent connections -----------------------------------------------------------------------


async def test_connections_above_the_limit_are_refused_with_503(make_csms) -> None:
    csms = await make_csms(max_connections=2)
    async with connect_raw(csms, "CP-1"), connect_raw(csms, "CP-2"):
        await wait_registered(csms, "CP-2")
        assert csms.ocpp.open_connections == 2
        error = await handshake_error(station_url(csms, "CP-3"))
        assert isinstance(error, InvalidStatus) and error.response.status_code == 503, repr(error)
        assert b"too many connections" in error.response.body

        # a station already connected may still reconnect: its new connection replaces the old one
        async with connect_raw(csms, "CP-1") as again:
            assert await boots(again)
            assert sorted(csms.registry.ids()) == ["CP-1", "CP-2"]

    # a slot is free again once its connection is gone
    await eventually(lambda: csms.ocpp.open_connections == 0, timeout=5)
    async with connect_raw(csms, "CP-3") as station:
        assert await boots(station)


async def test_refused_handshakes_do_not_keep_their_slot(make_csms) -> None:
    csms = await make_csms(max_connections=1, security_profile=1, auth_failure_limit=0)
    await register(csms, "CP-1", PASSWORD)
    for _ in range(3):
        url = station_url(csms, "CP-1")
        assert await status_of(url, additional_headers=basic_auth("CP-1", "wrong-password-123456")) == 401
    async with websockets.connect(
        station_url(csms, "CP-1"), subprotocols=["ocpp1.6"], additional_headers=basic_auth("CP-1", PASSWORD)
    ) as connection:
        assert await boots(RawStation(connection))


# --- failed authentications from one address ------------------------------------------------------


async def test_an_address_failing_to_authenticate_is_refused_for_a_while(make_csms) -> None:
    csms = await make_csms(security_profile=1, auth_failure_limit=3, auth_failure_window=30, auth_block=1.0)
    await register(csms, "CP-1", PASSWORD)
    url = station_url(csms, "CP-1")
    good, bad = basic_auth("CP-1", PASSWORD), basic_auth("CP-1", "not-the-password-1234")

    # successful handshakes are neither counted nor limited
    for _ in range(5):
        async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=good):
            pass
    assert [await status_of(url, additional_headers=bad) for _ in range(3)] == [401, 401, 401]
    blocked_at = time.monotonic()

    # now even the right password is refused, before it is checked, and told when to come back
    error = await handshake_error(url, additional_headers=good)
    assert isinstance(error, InvalidStatus) and error.response.status_code == 429, repr(error)
    assert error.response.headers["Retry-After"] == "1"
    assert await status_of(f"ws://127.0.0.1:{csms.ocpp.port}/CP-OTHER") == 429  # the address, not the station

    await asyncio.sleep(max(0.0, blocked_at + 1.1 - time.monotonic()))
    async with websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=good) as connection:
        assert await boots(RawStation(connection))


async def test_certificates_of_other_stations_count_as_failures(make_csms, pki: Pki) -> None:
    csms = await make_csms(**pki.settings(3), auth_failure_limit=2, auth_block=30)
    url = wss_url(csms, "CP-1")
    impostor = client_context(pki, pki.ca.issue("CP-2"))
    assert [await status_of(url, ssl=impostor) for _ in range(2)] == [403, 403]
    # Blocked: over TLS the connection is dropped before the TLS handshake, which would cost a key exchange.
    refused = await handshake_error(url, ssl=client_context(pki, pki.ca.issue("CP-1")))
    assert isinstance(refused, OSError | EOFError) and not isinstance(refused, InvalidStatus), repr(refused)


async def test_failed_tls_handshakes_count_and_a_blocked_address_gets_no_handshake(make_csms, pki: Pki) -> None:
    csms = await make_csms(**pki.settings(3), auth_failure_limit=3, auth_failure_window=30, auth_block=1.5)
    url = wss_url(csms, "CP-1")
    good = client_context(pki, pki.ca.issue("CP-1"))
    async with connect_tls(csms, "CP-1", good) as station:  # successful handshakes are not counted
        assert await boots(station)
    # no client certificate, one from a foreign CA, a plain client: each fails in the TLS handshake
    for options in (
        {"ssl": client_context(pki)},
        {"ssl": client_context(pki, pki.foreign.issue("CP-1"))},
        {"uri": f"ws://127.0.0.1:{csms.ocpp.port}/CP-1"},
    ):
        error = await handshake_error(options.pop("uri", url), **options)
        assert not isinstance(error, InvalidStatus), repr(error)
    blocked_at = time.monotonic()

    # the address is now blocked: even a good certificate's connection is dropped before TLS starts
    refused = await handshake_error(url, ssl=good)
    assert isinstance(refused, OSError | EOFError) and not isinstance(refused, InvalidStatus), repr(refused)
    assert csms.registry.ids() == []

    await asyncio.sleep(max(0.0, blocked_at + 1.6 - time.monotonic()))
    async with connect_tls(csms, "CP-1", good) as station:
        assert await boots(station)


def test_each_block_of_the_same_address_lasts_twice_as_long_up_to_the_cap() -> None:
    now = [1000.0]
    limiter = FailureLimiter(limit=2, window_s=10, block_s=5, max_block_s=30, clock=lambda: now[0])

    def fail(times: int) -> float:
        return [limiter.failed("192.0.2.7") for _ in range(times)][-1]

    assert fail(1) == 0 and limiter.blocked_for("192.0.2.7") == 0
    now[0] += 11  # the first failure left the window
    assert fail(1) == 0
    assert fail(1) == 5 and limiter.blocked_for("192.0.2.7") == 5
    assert limiter.blocked_for("192.0.2.8") == 0  # other addresses are not affected
    blocks = []
    for _ in range(4):
        now[0] += limiter.blocked_for("192.0.2.7")
        blocks.append(fail(2))
    assert blocks == [10, 20, 30, 30]
    now[0] += 30 + 31  # the block is over and the address stayed quiet longer than the longest block
    assert fail(2) == 5


def test_ipv6_addresses_are_limited_by_their_64_prefix() -> None:
    assert source_key("2001:db8:1:2::a") == source_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert source_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert source_key("192.0.2.1") == "192.0.2.1"


# --- handshake timeout ----------------------------------------------------------------------------


async def test_a_connection_that_never_finishes_its_handshake_is_dropped(make_csms, pki: Pki) -> None:
    for overrides in ({}, pki.settings(2)):  # the websocket handshake, and the TLS one before it
        csms = await make_csms(handshake_timeout=0.5, **overrides)
        reader, writer = await asyncio.open_connection("127.0.0.1", csms.ocpp.port)
        started = time.monotonic()
        try:
            # the server gives up and closes: an HTTP 408/nothing for plain, an abort for TLS
            with contextlib.suppress(ConnectionError):
                while await asyncio.wait_for(reader.read(1024), 5):
                    pass
            assert 0.4 < time.monotonic() - started < 4
        finally:
            writer.close()


# --- a station id connecting again while connected ------------------------------------------------


async def test_a_second_connection_of_a_station_replaces_the_first_and_is_recorded(make_csms, pki: Pki) -> None:
    csms = await make_csms(**pki.settings(3))
    context = client_context(pki, pki.ca.issue("CP-1"))
    async with connect_tls(csms, "CP-1", context) as first:
        assert await boots(first)
        old = csms.registry.get("CP-1")
        first_port = first.connection.local_address[1]
        async with websockets.connect(wss_url(csms, "CP-1"), ssl=context, subprotocols=["ocpp1.6"]) as second:
            await asyncio.wait_for(first.connection.wait_closed(), 5)
            assert first.connection.close_code == 1000
            assert first.connection.close_reason == "replaced by a new connection of the same station"
            await eventually(lambda: csms.registry.get("CP-1") is not old)
            assert await boots(RawStation(second))
            second_port = second.local_address[1]

    async def events() -> list[SecurityEvent]:
        async with csms.database.read() as session:
            return list(await session.scalars(select(SecurityEvent)))

    rows = await events()
    assert [(row.station_id, row.type) for row in rows] == [("CP-1", "ConnectionReplaced")]
    assert rows[0].tech_info == (f"connection from 127.0.0.1:{first_port} replaced by one from 127.0.0.1:{second_port}")
