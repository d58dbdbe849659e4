"""Fixtures for the security tests: a PKI generated per test, and stations connecting over real sockets."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from optivgi_csms.server.app import Csms
from tests.security.pki import Authority, Issued
from tests.support.stations import RawStation, basic_auth, wait_registered

PASSWORD = "correct-horse-battery-1"
BOOT = {"chargePointVendor": "optivgi", "chargePointModel": "test"}


class Pki:
    """The CSMS's CA and server certificate, plus a foreign CA no station should be trusted by."""

    def __init__(self, folder: Path) -> None:
        self.ca = Authority(folder / "ca")
        self.server = self.ca.issue("127.0.0.1", server=True)
        self.foreign = Authority(folder / "foreign", "Foreign CA")

    def settings(self, profile: int) -> dict[str, Any]:
        """The setting overrides of a CSMS on ``profile`` with this PKI's certificates."""
        return {
            "security_profile": profile,
            "tls_cert": self.server.cert,
            "tls_key": self.server.key,
            "tls_ca": self.ca.cert,
        }


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A fresh CA and server certificate in the test's temporary folder."""
    return Pki(tmp_path / "pki")


def client_context(pki: Pki, client: Issued | None = None) -> ssl.SSLContext:
    """A station's TLS context: trusts the CSMS's CA, presents ``client`` when given."""
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return context


def wss_url(csms: Csms, station_id: str) -> str:
    """The secure websocket URL of ``station_id`` on a running CSMS."""
    assert csms.ocpp.scheme == "wss"
    return f"wss://127.0.0.1:{csms.ocpp.port}/{station_id}"


@contextlib.asynccontextmanager
async def connect_tls(
    csms: Csms, station_id: str, context: ssl.SSLContext, *, password: str | None = None, **options: Any
) -> AsyncIterator[RawStation]:
    """A raw 1.6 station connected over TLS, once the CSMS has registered its connection."""
    headers = basic_auth(station_id, password) if password is not None else None
    async with websockets.connect(
        wss_url(csms, station_id), ssl=context, subprotocols=["ocpp1.6"], additional_headers=headers, **options
    ) as connection:
        await wait_registered(csms, station_id)
        yield RawStation(connection)


async def boots(station: RawStation) -> bool:
    """Whether the station's BootNotification is answered Accepted: OCPP works over the connection."""
    reply = await station.call("BootNotification", BOOT)
    return reply[0] == 3 and reply[2]["status"] == "Accepted"


async def handshake_error(url: str, **options: Any) -> BaseException:
    """The error of a websocket handshake the server must refuse (an HTTP status, or a TLS failure)."""
    options.setdefault("subprotocols", ["ocpp1.6"])
    try:
        async with websockets.connect(url, open_timeout=5, **options) as connection:
            raise AssertionError(f"the handshake succeeded: {connection.response.status_code}")
    except AssertionError:
        raise
    except Exception as error:
        return error
