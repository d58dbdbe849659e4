"""A TCP proxy on 127.0.0.1 that a test can cut and restore: a database outage as the CSMS sees it.

The shared PostgreSQL server of the test machine must keep running for everyone else, so the outage is made
between our process and it: :meth:`TcpProxy.cut` closes every connection through the proxy (the CSMS's pooled
connections die mid-use, as when the server restarts) and stops listening (new connections are refused, as
when it is down); :meth:`TcpProxy.restore` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port`` until cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0  # accepted in all, for the test's figures

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same one after a cut)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, not a polite close: the peer learns on its next read or write
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writers.clear()

    async def restore(self) -> None:
        """Accept connections again on the same port."""
        await self.start()

    async def close(self) -> None:
        """Stop for good."""
        await self.cut()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            try:
                server_reader, server_writer = await asyncio.open_connection(*self.target)
            except OSError:
                client_writer.transport.abort()
                return
            self._writers.update((client_writer, server_writer))
            await asyncio.gather(
                _pipe(client_reader, server_writer), _pipe(server_reader, client_writer), return_exceptions=True
            )
            for writer in (client_writer, server_writer):
                self._writers.discard(writer)
                writer.transport.abort()
        finally:
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
