"""Group commit: every write of the CSMS goes through one writer that batches them into transactions.

A handler hands the writer an operation (an async function of a session) and awaits its result; the
writer runs every operation queued meanwhile in one transaction and resolves each caller only after
the commit. So an OCPP answer is sent only for committed data, and a thousand stations' meter values
cost one commit, not a thousand. While one batch commits the next one gathers: no timer delays a
write. One failing operation does not fail its neighbours: the batch is rolled back and replayed
one operation per transaction.

When the database is unreachable or locked (:func:`~optivgi_csms.store.errors.is_transient`), the batch is
tried again with a growing pause, each operation for at most ``retry_s`` from when it was queued; then its
caller gets :class:`~optivgi_csms.store.errors.DatabaseUnavailableError`. So a short outage costs the stations
a delay, not an error, and a long one an ``InternalError`` they retry: never an answer for data not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from optivgi_csms.logs import get_logger
from optivgi_csms.store.appends import insert_appended
from optivgi_csms.store.errors import DatabaseUnavailableError, is_transient

T = TypeVar("T")
WriteOp = Callable[[AsyncSession], Awaitable[T]]

log = get_logger(__name__)

#: How long (s) a write keeps being retried while the database is unreachable or locked, by default. Well
#: under the 30 s or more stations wait for an answer, so they hear InternalError rather than time out.
DEFAULT_RETRY_S = 10.0
#: The first pause between tries (s), doubled after each failed try up to :data:`RETRY_PAUSE_MAX_S`.
RETRY_PAUSE_S = 0.1
RETRY_PAUSE_MAX_S = 1.0


class WriterClosedError(RuntimeError):
    """The writer is shut down; nothing more can be written."""


@dataclass(slots=True)
class _Job:
    op: WriteOp[Any]
    future: asyncio.Future[Any]
    # Loop time after which a database that is still unreachable fails this write instead of retrying it.
    deadline: float
    # The operation only appends rows (see store/appends.py): rows queued before it need not be inserted first.
    appends_only: bool = False


@dataclass(slots=True)
class WriterStats:
    """Counters for benchmarks and diagnostics."""

    batches: int = 0
    operations: int = 0
    replays: int = 0
    # Tries repeated because the database was unreachable or locked, and writes given up on for that.
    retries: int = 0
    unavailable: int = 0


class GroupCommitWriter:
    """Runs write operations in batched transactions, one batch at a time."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        max_batch: int = 500,
        max_pending: int = 20_000,
        retry_s: float = DEFAULT_RETRY_S,
    ) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self.retry_s = retry_s
        # Bounded: when the database cannot keep up, callers wait (and stations' sockets with them)
        # instead of the queue growing without limit.
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=max_pending)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.stats = WriterStats()

    def start(self) -> None:
        """Start the writer task on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="db-writer")

    async def run(self, op: WriteOp[T], *, appends_only: bool = False) -> T:
        """Run ``op`` in the next batch; returns its result once the batch is committed.

        ``appends_only``: ``op`` reads nothing that other operations append, and may queue its own rows with
        :func:`~optivgi_csms.store.appends.append_later` (inserted with its neighbours' in one statement)."""
        if self._closed or self._task is None:
            raise WriterClosedError("the database writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        await self._queue.put(_Job(op, future, loop.time() + self.retry_s, appends_only))
        return await future

    async def close(self) -> None:
        """Finish every queued operation, then stop."""
        if self._task is None or self._closed:
            return
        self._closed = True
        await self._queue.put(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            await self._commit(batch)

    async def _commit(self, batch: list[_Job]) -> None:
        try:
            done = await self._execute_retrying(batch)
        except _Failed as failed:
            remaining = failed.jobs
            if len(remaining) == 1:
                _settle(remaining[0], error=failed.error)
                return
            # Someone's operation failed (or the commit did): replay one by one so only the
            # culprit fails.
            self.stats.replays += 1
            for job in remaining:
                try:
                    single = await self._execute_retrying([job])
                except _Failed as single_failed:
                    _settle(job, error=single_failed.error)
                else:
                    for settled_job, result in single:
                        _settle(settled_job, result=result)
            return
        for job, result in done:
            _settle(job, result=result)

    async def _execute_retrying(self, batch: list[_Job]) -> list[tuple[_Job, Any]]:
        """Run the batch, again while the database is unreachable or locked; returns each committed job with
        its result. A job whose deadline passed meanwhile is failed with :class:`DatabaseUnavailableError`
        and left out of the next try. An error that is not transient raises :class:`_Failed` with the jobs
        still unsettled."""
        loop = asyncio.get_running_loop()
        pause = RETRY_PAUSE_S
        jobs = list(batch)
        while jobs:
            try:
                results = await self._execute(jobs)
            except Exception as error:
                if not is_transient(error):
                    raise _Failed(jobs, error) from error
                now = loop.time()
                expired = [job for job in jobs if job.deadline <= now]
                if expired:
                    self.stats.unavailable += len(expired)
                    log.error(
                        "database unavailable: writes given up",
                        writes=len(expired),
                        retry_s=self.retry_s,
                        error=_brief(error),
                    )
                    unavailable = DatabaseUnavailableError(f"the database stayed unavailable: {_brief(error)}")
                    for job in expired:
                        _settle(job, error=unavailable)
                    jobs = [job for job in jobs if job.deadline > now]
                    if not jobs:
                        break
                elif pause == RETRY_PAUSE_S:
                    log.warning("database unavailable: retrying writes", writes=len(jobs), error=_brief(error))
                self.stats.retries += 1
                await asyncio.sleep(min(pause, max(min(job.deadline for job in jobs) - now, 0.0)))
                pause = min(pause * 2, RETRY_PAUSE_MAX_S)
                continue
            return list(zip(jobs, results, strict=True))
        return []

    async def _execute(self, batch: list[_Job]) -> list[Any]:
        results = []
        async with self._sessions() as session, session.begin():
            for job in batch:
                if not job.appends_only:
                    await insert_appended(session)  # this operation may read what earlier ones appended
                results.append(await job.op(session))
            await insert_appended(session)
        self.stats.batches += 1
        self.stats.operations += len(batch)
        return results


class _Failed(Exception):
    """A batch failed for a reason retrying cannot cure; ``jobs`` are the ones not yet settled."""

    def __init__(self, jobs: list[_Job], error: Exception) -> None:
        super().__init__(repr(error))
        self.jobs = jobs
        self.error = error


def _brief(error: BaseException) -> str:
    """An error in one line (SQLAlchemy's messages carry the whole statement and a link)."""
    text = str(getattr(error, "orig", None) or error).splitlines()[0] if str(error) else type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]


def _settle(job: _Job, *, result: Any = None, error: BaseException | None = None) -> None:
    if job.future.done():
        # The caller went away (its connection closed); the write happened regardless.
        if error is not None:
            log.warning("write failed after its caller left", error=repr(error))
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)
