"""The database: engines, read sessions and the group-commit writer, for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from optivgi_csms.store.writer import DEFAULT_RETRY_S, GroupCommitWriter, WriteOp

T = TypeVar("T")

#: Seconds to wait for a new PostgreSQL connection before the attempt counts as failed (asyncpg waits 60 s).
CONNECT_TIMEOUT_S = 5.0
#: Seconds one write try waits for SQLite's write lock held by another process before trying again.
SQLITE_WRITE_BUSY_S = 1.0


class Database:
    """Open a database by URL; ``read()`` for queries, ``write(op)`` for changes.

    SQLite gets WAL mode (readers never block the writer), full fsync on commit (an acknowledged
    message survives a power cut), foreign keys, and a dedicated write connection that takes the
    write lock at BEGIN (``BEGIN IMMEDIATE``), so a second process such as ``station add`` waits
    for its turn instead of failing with "database is locked".

    The database may go away (PostgreSQL restarted, the network cut) or be locked by another process: writes
    are retried for ``retry_s`` (see :mod:`optivgi_csms.store.writer`), pooled PostgreSQL connections are
    checked before use (``pool_pre_ping``), so the first query after an outage reconnects instead of failing
    on a dead socket, and a connection attempt gives up after :data:`CONNECT_TIMEOUT_S`.
    """

    def __init__(self, url: str, *, echo: bool = False, retry_s: float = DEFAULT_RETRY_S) -> None:
        self.url: URL = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            database = self.url.database or ""
            if database in ("", ":memory:") or database.startswith("file:"):
                raise ValueError("SQLite needs a database file path (an in-memory database cannot be shared)")
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self.engine = self._sqlite_engine(echo, begin="BEGIN", busy_ms=30_000)
            # The writer waits for another process's write lock a little at a time, so its retry budget
            # (not SQLite's busy timeout) bounds how long a station waits for its answer.
            busy_ms = int(min(SQLITE_WRITE_BUSY_S, retry_s) * 1000)
            self.write_engine = self._sqlite_engine(echo, begin="BEGIN IMMEDIATE", pool_size=1, busy_ms=busy_ms)
        else:
            self.engine = create_async_engine(
                self.url,
                echo=echo,
                pool_pre_ping=True,
                pool_size=10,
                connect_args={"timeout": CONNECT_TIMEOUT_S} if self.url.get_driver_name() == "asyncpg" else {},
            )
            self.write_engine = self.engine
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.writer = GroupCommitWriter(async_sessionmaker(self.write_engine, expire_on_commit=False), retry_s=retry_s)

    def _sqlite_engine(self, echo: bool, *, begin: str, busy_ms: int, pool_size: int = 5) -> AsyncEngine:
        engine = create_async_engine(
            self.url, echo=echo, pool_size=pool_size, max_overflow=0, connect_args={"timeout": busy_ms / 1000}
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take over transaction control from the driver so BEGIN is ours (and transactional DDL works).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in (
                "journal_mode=WAL",
                "synchronous=FULL",
                "foreign_keys=ON",
                f"busy_timeout={busy_ms}",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)

        return engine

    def start(self) -> None:
        """Start the writer; call once from the running event loop."""
        self.writer.start()

    def read(self) -> AsyncSession:
        """A session for queries: ``async with database.read() as session: ...``."""
        return self.sessions()

    async def write(self, op: WriteOp[T], *, appends_only: bool = False) -> T:
        """Run ``op(session)`` in the next group commit and return its result after the commit
        (``appends_only``: see :meth:`GroupCommitWriter.run`)."""
        return await self.writer.run(op, appends_only=appends_only)

    async def close(self) -> None:
        """Finish queued writes and release every connection."""
        await self.writer.close()
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
