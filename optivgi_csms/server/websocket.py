"""The OCPP websocket server: the handshake (station id, subprotocol, credentials) and each connection's life.

Everything that can be refused is refused before any OCPP traffic. Under security profiles 2 and 3 the
server listens with TLS only (TLS 1.2 or newer; see :mod:`optivgi_csms.server.tls`), and under profile 3
the TLS handshake itself refuses a station without a client certificate from the configured CA; the
handshake is run by :class:`~optivgi_csms.server.tls_gate.TlsGate`, so a failed one counts against the
address and a blocked address is closed before it. Then the HTTP handshake, with a status and a one-line
reason: an address blocked after too many failed authentications (429), a path that names no valid
station id (400), no supported OCPP subprotocol offered (400), too many connections open (503), missing
or wrong Basic-auth credentials under profiles 1 and 2 (401), a client certificate issued to another
station under profile 3 (403).

Shutdown is in two steps: :meth:`OcppServer.drain` stops accepting (new connections are refused, a
handshake under way gets 503) and lets each connection finish the CALL in hand; :meth:`OcppServer.close`
then closes every connection with 1001 (going away).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.headers import parse_authorization_basic
from websockets.http11 import Request, Response

from optivgi_csms.config import Settings
from optivgi_csms.domain.station import STATION_ID_RULE, is_valid_station_id
from optivgi_csms.domain.time import utc_now
from optivgi_csms.logs import get_logger
from optivgi_csms.metrics import CsmsMetrics
from optivgi_csms.protocol.session import OcppSession
from optivgi_csms.protocol.v16 import ChargePoint16
from optivgi_csms.protocol.v201 import ChargePoint201
from optivgi_csms.server.admission import ConnectionSlots, FailureLimiter
from optivgi_csms.server.registry import REPLACED_CODE, REPLACED_REASON, StationRegistry
from optivgi_csms.server.tls import MUTUAL_TLS_PROFILE, certificate_common_names, server_ssl_context
from optivgi_csms.server.tls_gate import TlsGate
from optivgi_csms.services import Services

# Subprotocols in order of preference (the newest version wins when a station offers both), with
# the adapter that speaks each.
ADAPTERS: dict[str, type[OcppSession]] = {"ocpp2.0.1": ChargePoint201, "ocpp1.6": ChargePoint16}

#: The close reason stations get when the CSMS shuts down (with close code 1001, going away).
SHUTDOWN_REASON = "CSMS shutting down"
#: How long closing waits for the stations' close frames and the connections' last writes.
CLOSE_WAIT_S = 10.0
#: The security event recorded when a station's connection is replaced by a newer one of the same id.
CONNECTION_REPLACED_EVENT = "ConnectionReplaced"

log = get_logger(__name__)


def station_id_from_path(path: str, prefix: str) -> str | None:
    """The station id in ``/<id>`` or ``/<prefix>/<id>``, or None when the path names none validly."""
    route = urlsplit(path).path.strip("/")
    if prefix and route.startswith(prefix + "/"):
        route = route[len(prefix) + 1 :]
    # "/ocpp/" names no station: an empty id behind the prefix, not a station called "ocpp".
    if not route or "/" in route or route == prefix:
        return None
    station_id = unquote(route)
    return station_id if is_valid_station_id(station_id) else None


def offered_subprotocols(headers: Headers) -> list[str]:
    """The subprotocols a client offers, in its order."""
    return [
        item.strip()
        for header in headers.get_all("Sec-WebSocket-Protocol")
        for item in header.split(",")
        if item.strip()
    ]


#: Connections the kernel holds for us before they are accepted.
LISTEN_BACKLOG = 4096


class OcppServer:
    """Accepts station connections and runs one OCPP session per connection."""

    def __init__(
        self, settings: Settings, services: Services, registry: StationRegistry, metrics: CsmsMetrics | None = None
    ) -> None:
        self._settings = settings
        self._services = services
        self._registry = registry
        self._metrics = metrics if metrics is not None else CsmsMetrics()
        self._server: Server | None = None
        self._draining = False
        self._ssl: ssl.SSLContext | None = None
        self._ssl_ready = False
        self._gate: TlsGate | None = None
        self._slots = ConnectionSlots(settings.max_connections)
        self._failures = FailureLimiter(
            settings.auth_failure_limit, settings.auth_failure_window, settings.auth_block, settings.auth_block_max
        )
        # Where each live session connected from, for the log line and security event of a replacement.
        self._peers: dict[OcppSession, str] = {}

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        assert self._server is not None, "server not started"
        return self._server.sockets[0].getsockname()[1]

    @property
    def open_connections(self) -> int:
        """Connections counted against ``max_connections``: admitted by the handshake and not yet closed."""
        return len(self._slots)

    @property
    def scheme(self) -> str:
        """``wss`` when the server listens with TLS (security profiles 2 and 3), else ``ws``."""
        return "wss" if self.prepare_tls() is not None else "ws"

    def prepare_tls(self) -> ssl.SSLContext | None:
        """Build (once) the SSL context of the configured security profile; None below profile 2.

        Raises :class:`~optivgi_csms.config.ConfigError` naming the setting when the certificates do not
        allow it, so a bad configuration stops start-up before anything listens.
        """
        if not self._ssl_ready:
            self._ssl = server_ssl_context(self._settings)
            self._ssl_ready = True
        return self._ssl

    async def start(self) -> None:
        """Bind and start accepting connections (with TLS only, from security profile 2 on)."""
        settings = self._settings
        context = self.prepare_tls()
        # The TLS handshake is run by the gate, not by asyncio's server, so its failures are counted (see
        # :mod:`optivgi_csms.server.tls_gate`), within the same time bound as the websocket handshake.
        tls_options: dict[str, Any] = {}
        if context is not None:
            self._gate = TlsGate(context, settings.handshake_timeout, self._failures)
            tls_options["create_connection"] = self._gate.connection_factory()
        self._server = await serve(
            self._connection,
            settings.host,
            settings.port,
            open_timeout=settings.handshake_timeout,
            **tls_options,
            subprotocols=list(ADAPTERS),  # type: ignore[arg-type]
            process_request=self._check_handshake,
            ping_interval=settings.ping_interval or None,
            ping_timeout=settings.ping_timeout or None,
            max_size=settings.max_frame_size,
            # Per-message deflate costs ~100 KiB per connection and OCPP frames are small.
            compression=None,
            server_header="optivgi-csms",
            # After a restart every station reconnects at once: a deeper accept queue than asyncio's 100 lets a
            # storm of thousands wait in the kernel instead of timing out (the kernel caps it at somaxconn).
            backlog=LISTEN_BACKLOG,
            # Several processes of a cluster on one host: the kernel spreads new connections among them.
            reuse_port=settings.reuse_port or None,
        )

    def stop_accepting(self) -> None:
        """Refuse new connections and let no connection take a new CALL (the first step of a shutdown)."""
        if self._server is None:
            return
        self._draining = True
        # Closing the listening socket refuses new connections; websockets answers 503 to a handshake
        # that was under way, since the server no longer serves.
        self._server.server.close()
        if self._gate is not None:
            self._gate.stop()
        for session in self._registry.sessions():
            session.drain()

    async def drain(self, grace_s: float) -> bool:
        """Stop accepting connections and wait (up to ``grace_s`` seconds) for every CALL in hand to be answered.

        Connections stay open: answers to the CSMS's own requests still arrive, new CALLs go unanswered
        (see :meth:`OcppSession.drain`). Returns whether every connection finished in time.
        """
        if self._server is None:
            return True
        self.stop_accepting()
        busy = [asyncio.create_task(session.wait_idle()) for session in self._registry.sessions()]
        if not busy:
            return True
        _, pending = await asyncio.wait(busy, timeout=max(grace_s, 0.0))
        for task in pending:
            task.cancel()
        if pending:
            log.warning("shutdown grace over: closing connections with calls still in hand", busy=len(pending))
        return not pending

    async def close(self, reason: str = SHUTDOWN_REASON) -> None:
        """Stop accepting, close every connection with 1001 (going away) and wait for their sessions to end."""
        if self._server is None:
            return
        self._draining = True
        self._server.server.close()
        if self._gate is not None:
            self._gate.stop()
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                # Each session closes its own socket, so the station reads why; anything else still open
                # (a connection not yet registered) is closed by the server with 1001 and no reason.
                closing = [session.close(reason, code=1001) for session in self._registry.sessions()]
                await asyncio.gather(*closing, return_exceptions=True)
                self._server.close(close_connections=True)
                await self._server.wait_closed()
        except TimeoutError:
            log.warning("connections still open after closing", wait_s=CLOSE_WAIT_S)

    async def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        remote = _remote(connection)
        blocked_s = self._failures.blocked_for(remote)
        if blocked_s > 0:
            # Refused before anything else, and before any password hash is computed: guessing costs nothing.
            # Logged at debug only: a guessing client would otherwise fill the log at its own pace.
            response = self._refuse(
                connection,
                HTTPStatus.TOO_MANY_REQUESTS,
                "too many failed authentications from this address",
                level="debug",
            )
            response.headers["Retry-After"] = str(math.ceil(blocked_s))
            return response
        station_id = station_id_from_path(request.path, self._settings.path_prefix)
        if station_id is None:
            prefix = f" or /{self._settings.path_prefix}/<station id>" if self._settings.path_prefix else ""
            return self._refuse(
                connection,
                HTTPStatus.BAD_REQUEST,
                f"connect to /<station id>{prefix}; a station id is {STATION_ID_RULE}",
                path=request.path,
            )
        offered = offered_subprotocols(request.headers)
        if not any(protocol in ADAPTERS for protocol in offered):
            what = f"offered {', '.join(offered)}" if offered else "offered no subprotocol"
            return self._refuse(
                connection,
                HTTPStatus.BAD_REQUEST,
                f"unsupported OCPP version: the client {what}; this server speaks {', '.join(ADAPTERS)} "
                "(send it in Sec-WebSocket-Protocol)",
                station_id=station_id,
            )
        # A station reconnecting over a connection not yet seen dead still holds a slot: it may replace it.
        if self._slots.full and not self._registry.is_connected(station_id):
            return self._refuse(
                connection,
                HTTPStatus.SERVICE_UNAVAILABLE,
                "too many connections: try again later",
                station_id=station_id,
            )
        self._slots.hold(connection)
        profile = self._settings.security_profile
        if profile >= MUTUAL_TLS_PROFILE:
            return self._check_certificate(connection, station_id)
        if profile >= 1:
            return await self._check_password(connection, request, station_id)
        return None

    def _check_certificate(self, connection: ServerConnection, station_id: str) -> Response | None:
        # The TLS handshake verified the certificate against tls_ca; what is left is whose it is.
        names = certificate_common_names(connection.transport.get_extra_info("peercert"))
        if names != [station_id]:
            shown = ", ".join(names) or "none"
            return self._failed(
                connection,
                HTTPStatus.FORBIDDEN,
                f"the client certificate's common name ({shown}) is not the station id",
                station_id=station_id,
            )
        return None

    async def _check_password(self, connection: ServerConnection, request: Request, station_id: str) -> Response | None:
        header = request.headers.get("Authorization")
        if header is None:
            return self._unauthorized(
                connection,
                station_id,
                f"HTTP Basic credentials required (security profile {self._settings.security_profile})",
            )
        try:
            username, password = parse_authorization_basic(header)
        except InvalidHeader:
            return self._unauthorized(
                connection, station_id, "malformed Authorization header: expected Basic credentials"
            )
        # A station id may contain ':', which ends a Basic-auth user name (RFC 7617), so the header's
        # own split can cut the id short; the user name must be the whole id, so split right after it.
        credentials = f"{username}:{password}"
        if not credentials.startswith(station_id + ":"):
            return self._unauthorized(connection, station_id, "the Basic-auth user name must be the station id")
        password = credentials[len(station_id) + 1 :]
        if not await self._services.stations.authenticate(station_id, password):
            return self._unauthorized(connection, station_id, "wrong password or unknown station")
        return None

    def _unauthorized(self, connection: ServerConnection, station_id: str, reason: str) -> Response:
        response = self._failed(connection, HTTPStatus.UNAUTHORIZED, reason, station_id=station_id)
        response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
        return response

    def _failed(self, connection: ServerConnection, status: HTTPStatus, reason: str, **context: Any) -> Response:
        """Refuse a failed authentication, and count it against the client's address."""
        response = self._refuse(connection, status, reason, **context)
        remote = _remote(connection)
        block_s = self._failures.failed(remote)
        if block_s:
            log.warning("address blocked after repeated failed authentications", remote=remote, block_s=block_s)
        return response

    @staticmethod
    def _refuse(
        connection: ServerConnection, status: HTTPStatus, reason: str, level: str = "warning", **context: Any
    ) -> Response:
        getattr(log, level)(
            "handshake refused", status=int(status), reason=reason, remote=_remote(connection), **context
        )
        return connection.respond(status, reason + "\n")

    async def _connection(self, connection: ServerConnection) -> None:
        assert connection.request is not None and connection.subprotocol is not None
        station_id = station_id_from_path(connection.request.path, self._settings.path_prefix)
        assert station_id is not None  # checked in the handshake
        adapter = ADAPTERS[connection.subprotocol]
        structlog.contextvars.bind_contextvars(station_id=station_id)
        session = adapter(
            station_id,
            connection,
            services=self._services,
            call_timeout=self._settings.call_timeout,
            metrics=self._metrics.ocpp(adapter.dialect),
        )
        try:
            session.admitted = await self._services.stations.connected(station_id, adapter.dialect.version)
        except Exception:
            log.exception("cannot record the connection: closing it")
            await connection.close(code=1011, reason="CSMS storage unavailable")
            return
        remote = _peer(connection)
        self._peers[session] = remote
        replaced = await self._registry.attach(session)
        if self._draining:
            session.drain()  # its handshake completed as the shutdown began: it takes no CALL either
        log.info("station connected", ocpp=adapter.dialect.version, remote=connection.remote_address[0])
        if replaced is not None:
            await self._record_replacement(station_id, self._peers.get(replaced, "unknown"), remote)
        try:
            await session.run()
        finally:
            self._peers.pop(session, None)
            self._registry.detach(session)
            # A connection replaced by a reconnect ends while its successor is live: the station has
            # not gone away, so its row must not say it did.
            if not self._registry.is_connected(station_id):
                with contextlib.suppress(Exception):
                    await self._services.stations.disconnected(station_id)
            log.info("station disconnected", code=connection.close_code, reason=connection.close_reason)

    async def _record_replacement(self, station_id: str, old: str, new: str) -> None:
        """Tell the operator that a station id connected while already connected: a reboot, a dead link
        noticed late, or two devices (or an impostor) sharing an id, which keep replacing each other."""
        info = f"connection from {old} replaced by one from {new}"
        log.warning(
            "station connected again: its previous connection is closed",
            previous=old,
            remote=new,
            close_code=REPLACED_CODE,
            close_reason=REPLACED_REASON,
        )
        try:
            await self._services.station_events.security_event(station_id, CONNECTION_REPLACED_EVENT, utc_now(), info)
        except Exception as error:  # the connection is served all the same: the log line has it
            log.warning("cannot record the replaced connection", error=repr(error))


def _remote(connection: ServerConnection) -> str:
    """The client's IP address."""
    return str(connection.remote_address[0]) if connection.remote_address else "unknown"


def _peer(connection: ServerConnection) -> str:
    """The client's address and port, as shown to operators."""
    if not connection.remote_address:
        return "unknown"
    host, port = connection.remote_address[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
