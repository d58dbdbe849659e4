"""Security profiles 2 (TLS + Basic auth) and 3 (mutual TLS) over real TLS connections to a real CSMS.

Every refusal happens before any OCPP message: either the TLS handshake fails (no client certificate,
one from a foreign CA, a plain or TLS 1.1 client) or the HTTP handshake is answered with a status.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import warnings
from pathlib import Path

import pytest
from sqlalchemy import select
from websockets.exceptions import InvalidStatus

from optivgi_csms.server.app import StartupError
from optivgi_csms.store.models import Station
from tests.security.conftest import (
    PASSWORD,
    Pki,
    boots,
    client_context,
    connect_tls,
    handshake_error,
    wss_url,
)
from tests.support.stations import basic_auth, register


async def station_ids(csms) -> set[str]:
    async with csms.database.read() as session:
        return set(await session.scalars(select(Station.id)))


# --- profile 2: TLS with a server certificate, Basic auth ------------------------------------------


async def test_profile_2_serves_a_station_with_the_right_password_over_tls(make_csms, pki: Pki) -> None:
    csms = await make_csms(**pki.settings(2))
    await register(csms, "CP-1", PASSWORD)
    async with connect_tls(csms, "CP-1", client_context(pki), password=PASSWORD) as station:
        assert station.connection.transport.get_extra_info("ssl_object").version() in {"TLSv1.2", "TLSv1.3"}
        assert await boots(station)
    # profile 2 needs no client certificate and no CA: the server certificate and key are enough
    csms2 = await make_csms(**{**pki.settings(2), "tls_ca": None})
    async with connect_tls(csms2, "CP-1", client_context(pki), password=PASSWORD) as station:
        assert await boots(station)


async def test_profile_2_refuses_a_wrong_or_missing_password(make_csms, pki: Pki) -> None:
    csms = await make_csms(**pki.settings(2))
    await register(csms, "CP-1", PASSWORD)
    for headers, reason in [
        (basic_auth("CP-1", PASSWORD + "x"), b"wrong password"),
        (None, b"credentials required (security profile 2)"),
        (basic_auth("CP-2", PASSWORD), b"user name must be the station id"),
    ]:
        error = await handshake_error(wss_url(csms, "CP-1"), ssl=client_context(pki), additional_headers=headers)
        assert isinstance(error, InvalidStatus), error
        assert error.response.status_code == 401
        assert reason in error.response.body
    assert csms.registry.ids() == []
    assert await station_ids(csms) == {"CP-1"}  # nothing recorded for a refused connection


async def test_a_plain_ws_client_is_refused_when_tls_is_required(make_csms, pki: Pki) -> None:
    for profile in (2, 3):
        csms = await make_csms(**pki.settings(profile))  # both on the same database
        if profile == 2:
            await register(csms, "CP-1", PASSWORD)
        # the server listens with TLS only: a plain HTTP upgrade is no TLS ClientHello and gets no answer
        error = await handshake_error(
            f"ws://127.0.0.1:{csms.ocpp.port}/CP-1", additional_headers=basic_auth("CP-1", PASSWORD)
        )
        assert not isinstance(error, InvalidStatus), error
        assert csms.registry.ids() == []


async def test_a_tls_1_1_client_is_refused(make_csms, pki: Pki) -> None:
    csms = await make_csms(**pki.settings(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that is the point
        old = client_context(pki)
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # this OpenSSL would not even offer TLS 1.1 otherwise

    # The client can speak TLS 1.1: a server that allows it completes the handshake...
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    permissive.load_cert_chain(pki.server.cert, pki.server.key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        permissive.minimum_version = ssl.TLSVersion.TLSv1
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")

    async def hello(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    control = await asyncio.start_server(hello, "127.0.0.1", 0, ssl=permissive)
    async with control:
        _, writer = await asyncio.open_connection("127.0.0.1", control.sockets[0].getsockname()[1], ssl=old)
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.1"
        writer.close()

    # ...the CSMS does not
    error = await handshake_error(wss_url(csms, "CP-1"), ssl=old, additional_headers=basic_auth("CP-1", PASSWORD))
    assert isinstance(error, ssl.SSLError | ConnectionError | EOFError), repr(error)
    assert csms.registry.ids() == []


# --- profile 3: mutual TLS ------------------------------------------------------------------------


async def test_profile_3_serves_a_station_with_its_own_certificate(make_csms, pki: Pki) -> None:
    csms = await make_csms(**pki.settings(3))
    async with connect_tls(csms, "CP-1", client_context(pki, pki.ca.issue("CP-1"))) as station:  # no password
        assert await boots(station)
    assert "CP-1" in await station_ids(csms)


async def test_profile_3_refuses_stations_without_their_own_certificate(make_csms, pki: Pki) -> None:
    csms = await make_csms(**pki.settings(3))
    url = wss_url(csms, "CP-1")

    # no client certificate, even with a good password; one signed by a foreign CA: the TLS handshake fails
    for context in (client_context(pki), client_context(pki, pki.foreign.issue("CP-1"))):
        error = await handshake_error(url, ssl=context, additional_headers=basic_auth("CP-1", PASSWORD))
        assert not isinstance(error, InvalidStatus), error

    # a good certificate of another station: refused by the HTTP handshake, naming the mismatch
    error = await handshake_error(url, ssl=client_context(pki, pki.ca.issue("CP-2")))
    assert isinstance(error, InvalidStatus), error
    assert error.response.status_code == 403
    assert b"common name (CP-2) is not the station id" in error.response.body

    assert csms.registry.ids() == []
    assert await station_ids(csms) == set()


# --- configuration --------------------------------------------------------------------------------


def _bad_configurations(pki: Pki, tmp_path: Path) -> list[tuple[dict, str]]:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    other_key = pki.ca.issue("other", server=True).key
    return [
        ({"security_profile": 2, "tls_cert": None}, "setting 'tls_cert' is required with security_profile 2"),
        ({"security_profile": 2, "tls_key": None}, "setting 'tls_key' is required with security_profile 2"),
        ({"security_profile": 3, "tls_ca": None}, "setting 'tls_ca' is required with security_profile 3"),
        ({"security_profile": 2, "tls_cert": tmp_path / "missing.pem"}, "setting 'tls_cert': cannot read"),
        ({"security_profile": 2, "tls_key": tmp_path}, "setting 'tls_key': cannot read"),
        ({"security_profile": 2, "tls_key": other_key}, "setting 'tls_cert':"),
        ({"security_profile": 2, "tls_cert": not_pem}, "setting 'tls_cert':"),
        ({"security_profile": 3, "tls_ca": not_pem}, "setting 'tls_ca':"),
    ]


async def test_a_bad_tls_configuration_stops_start_up_naming_the_setting(make_csms, pki: Pki, tmp_path: Path) -> None:
    for overrides, expected in _bad_configurations(pki, tmp_path):
        with pytest.raises(StartupError) as caught:
            await make_csms(**{**pki.settings(2), **overrides})
        message = str(caught.value)
        assert expected in message, (overrides, message)
        assert "\n" not in message


async def test_serve_refuses_to_start_on_a_profile_it_cannot_enforce(pki: Pki, tmp_path: Path) -> None:
    command = [
        *(sys.executable, "-m", "optivgi_csms", "serve", "--host", "127.0.0.1", "--port", "0", "--api", "false"),
        *("--data-dir", str(tmp_path), "--security-profile", "3"),
        *("--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key)),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={"PATH": "/usr/bin:/bin"}
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert stderr.decode().strip().splitlines() == [
        "optivgi-csms serve: error: setting 'tls_ca' is required with security_profile 3: "
        "the CA that signs the stations' client certificates"
    ]
