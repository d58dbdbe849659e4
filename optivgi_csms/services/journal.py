"""The OCPP message journal: the last N raw frames in the database, for debugging a station."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.time import utc_now
from optivgi_csms.logs import get_logger
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import JournalEntry

log = get_logger(__name__)


class MessageJournal:
    """Buffers frames in memory and writes them once a second, pruning to ``size`` rows.

    The journal is a debugging aid, not a record: it never delays a station's answer, and when
    the database falls behind the oldest buffered frames are dropped.
    """

    def __init__(self, database: Database, size: int, *, flush_interval_s: float = 1.0) -> None:
        self._database = database
        self.size = size
        self._flush_interval_s = flush_interval_s
        self._buffer: deque[dict[str, object]] = deque(maxlen=max(size, 1) * 2)
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """Whether frames are kept at all."""
        return self.size > 0

    def record(self, station_id: str, direction: str, message: str | bytes) -> None:
        """Buffer one frame (``direction``: ``in`` from the station, ``out`` to it)."""
        if not self.enabled:
            return
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        # Hostile frames may carry NUL or lone surrogates, which PostgreSQL text cannot hold:
        # keep them visible as escapes rather than failing the whole flush.
        text = text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
        self._buffer.append({"station_id": station_id, "direction": direction, "message": text, "at": utc_now()})

    def start(self) -> None:
        """Start the periodic flush (only when enabled)."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="ocpp-journal")

    async def close(self) -> None:
        """Stop and write what is buffered."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Write the buffered frames now and prune the table to ``size`` rows."""
        if not self._buffer:
            return
        rows = list(self._buffer)
        self._buffer.clear()
        size = self.size

        async def op(session: AsyncSession) -> None:
            await session.execute(insert(JournalEntry), rows)
            newest = await session.scalar(select(func.max(JournalEntry.id)))
            if newest is not None:
                await session.execute(delete(JournalEntry).where(JournalEntry.id <= newest - size))

        await self._database.write(op)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval_s)
            try:
                await self.flush()
            except Exception as error:  # the journal must never take the server down
                log.warning("journal flush failed", error=repr(error))
