"""Alembic environment: runs on a connection handed over by optivgi_csms.store.migrate, or on its own
(``alembic upgrade head`` from the repository root, using DATABASE_URL or alembic.ini)."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from optivgi_csms.config import load_settings
from optivgi_csms.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: object) -> None:
    context.configure(target_metadata=target_metadata, render_as_batch=True, compare_type=True, **kwargs)


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_settings(environ=os.environ).effective_database_url


def run_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    from optivgi_csms.store.database import Database

    database = Database(url)
    try:
        async with database.write_engine.begin() as connection:
            await connection.run_sync(_run_on)
    finally:
        await database.close()


def run_online() -> None:
    """Migrate the given connection, or open one from the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_async(_url()))


if context.is_offline_mode():
    run_offline()
else:
    run_online()
