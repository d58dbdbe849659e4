"""The TLS handshake of each station connection, run by the CSMS itself rather than inside asyncio's server.

asyncio's own TLS server fails a handshake silently (no client certificate, one from a foreign CA, an old
TLS version, a client that never finishes): nothing the CSMS sees, so nothing it can count. Here the server
listens on plain TCP and each accepted connection is upgraded with :meth:`asyncio.loop.start_tls` by a
:class:`TlsGate`, which knows the peer's address. A failed or timed-out handshake counts against that
address like a wrong password, and an address already blocked is dropped before its handshake costs the
CSMS a key exchange.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection

from optivgi_csms.logs import get_logger
from optivgi_csms.server.admission import FailureLimiter

log = get_logger(__name__)


class TlsGate:
    """Upgrades accepted TCP connections to TLS, counting failed handshakes per source address."""

    def __init__(self, context: ssl.SSLContext, timeout_s: float, failures: FailureLimiter) -> None:
        self.context = context
        self.timeout_s = timeout_s
        self.failures = failures
        self._handshakes: set[asyncio.Task[None]] = set()
        self._closed = False

    def connection_factory(self) -> Callable[..., ServerConnection]:
        """What websockets' ``serve(create_connection=...)`` takes: connections that pass this gate first."""
        gate = self

        class GatedConnection(ServerConnection):
            """A websockets server connection whose transport is handed over only once TLS is up.

            The TLS layer may deliver the client's first bytes (its HTTP upgrade, sent with its last handshake
            message), its EOF or the connection's loss before the handshake's waiter resumes: those are held
            and replayed in order once the connection is made."""

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self._early: list[tuple[str, Any]] | None = []
                gate.admit(self, transport)

            def tls_ready(self, transport: asyncio.BaseTransport) -> None:
                super().connection_made(transport)
                early, self._early = self._early or [], None
                for event, value in early:
                    getattr(super(), event)(*value)

            def data_received(self, data: bytes) -> None:
                if self._early is not None:
                    self._early.append(("data_received", (data,)))
                else:
                    super().data_received(data)

            def eof_received(self) -> None:
                if self._early is not None:
                    self._early.append(("eof_received", ()))
                    return None
                return super().eof_received()

            def connection_lost(self, exc: Exception | None) -> None:
                if self._early is not None:
                    self._early.append(("connection_lost", (exc,)))
                else:
                    super().connection_lost(exc)

        return GatedConnection

    def admit(self, connection: Any, transport: asyncio.BaseTransport) -> None:
        """Start the TLS handshake of a new TCP connection, or drop it if its address is blocked or the
        server is closing."""
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else "unknown"
        if self._closed or self.failures.blocked_for(address) > 0:
            # Debug only: a client hammering from a blocked address would otherwise write the log.
            log.debug("connection dropped before TLS", remote=address, closing=self._closed)
            transport.abort()
            return
        # Until start_tls takes the transport over, the ClientHello must stay in the socket, not reach the
        # websockets protocol as if it were HTTP.
        transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self._handshake(connection, transport, address))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, connection: Any, transport: asyncio.Transport, address: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                transport, connection, self.context, server_side=True, ssl_handshake_timeout=self.timeout_s
            )
        except asyncio.CancelledError:
            transport.abort()
            raise
        except (OSError, TimeoutError, EOFError) as error:
            # start_tls has closed the transport; ssl.SSLError is an OSError.
            transport.abort()
            block_s = self.failures.failed(address)
            log.info("TLS handshake failed", remote=address, reason=_reason(error))
            if block_s:
                log.warning("address blocked after repeated failed TLS handshakes", remote=address, block_s=block_s)
            return
        if tls is None:  # the peer went away as the handshake ended
            return
        connection.tls_ready(tls)

    def stop(self) -> None:
        """Drop every handshake under way and accept no more (the server is shutting down)."""
        self._closed = True
        for task in list(self._handshakes):
            task.cancel()


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError):
        return error.reason or str(error)
    if isinstance(error, TimeoutError):
        return "handshake timed out"
    return type(error).__name__ + (f": {error}" if str(error) else "")
