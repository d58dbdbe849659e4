"""uvicorn serving the API app inside the CSMS's event loop (one process, one loop, shared services)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import uvicorn

from optivgi_csms.api.app import create_app
from optivgi_csms.api.live.registry import close_live_events
from optivgi_csms.logs import get_logger

if TYPE_CHECKING:
    from optivgi_csms.server.app import Csms

log = get_logger(__name__)


class ApiServer:
    """Serves the operator API of ``csms`` on ``host:port``; ``port`` is the bound one after :meth:`start`."""

    def __init__(self, csms: Csms, host: str, port: int, *, reuse_port: bool = False) -> None:
        self.host = host
        self.port = port
        #: Share the port with the other processes of a cluster on this host (SO_REUSEPORT).
        self.reuse_port = reuse_port
        self._csms = csms
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        #: The app served (built here so tests can walk its routes).
        self.app = create_app(csms)

    async def start(self) -> None:
        """Bind (so a taken port fails here, as an ``OSError``) and start serving; uvicorn installs no signal
        handlers this way (the CSMS owns SIGINT/SIGTERM)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family, reuse_port=self.reuse_port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level="warning",
            server_header=False,
            date_header=False,
            # The dashboard's live event stream stays open; closing must not wait for it.
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._socket = sock
        try:
            # startup/shutdown rather than serve(): serve() polls for its exit every 0.1 s, which every stop
            # would wait for; the once-a-second date header it maintains is switched off instead.
            config.load()
            self._server.lifespan = config.lifespan_class(config)
            await self._server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        if not self._server.started:
            sock.close()
            raise OSError(f"the API server could not start on {self.host}:{self.port}")

    async def stop(self) -> None:
        """Stop accepting, finish requests in flight (bounded by ``timeout_graceful_shutdown``), close."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.should_exit = True
        close_live_events(server.config.app)  # event streams never end by themselves: end them now
        try:
            await server.shutdown(sockets=[self._socket] if self._socket is not None else None)
        except Exception as error:  # never let the API block the OCPP server's shutdown
            log.warning("API server stopped with an error", error=repr(error))
        finally:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
