"""What every sub-command shares: settings from flags/env/file, logging, and an open, current database."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from alembic.util import CommandError as AlembicCommandError
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from optivgi_csms.cli import CommandError
from optivgi_csms.config import ConfigError, Settings, add_setting_flags, load_settings
from optivgi_csms.logs import configure_logging
from optivgi_csms.store import migrate
from optivgi_csms.store.database import Database

T = TypeVar("T")

DATABASE_SETTINGS = ("database_url", "data_dir", "log_format", "log_level")


def add_database_flags(parser: argparse.ArgumentParser) -> None:
    """``--config`` plus the flags that choose the database and the log format."""
    add_setting_flags(parser, DATABASE_SETTINGS)


def settings_from(args: argparse.Namespace) -> Settings:
    """Validated settings for this invocation, with logging configured; bad values become CommandError."""
    try:
        settings = load_settings(args)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


def open_database(settings: Settings) -> Database:
    """A :class:`Database` for the configured URL; a bad URL becomes CommandError."""
    try:
        return Database(settings.effective_database_url)
    except (ArgumentError, ValueError) as error:
        raise CommandError(f"invalid value for setting 'database_url': {error}") from None


@asynccontextmanager
async def current_database(settings: Settings) -> AsyncIterator[Database]:
    """An open database whose schema is up to date (else CommandError naming ``db upgrade``)."""
    database = open_database(settings)
    try:
        try:
            status = await migrate.schema_status(database)
        except Exception as error:
            raise CommandError(f"cannot open the database: {error}") from None
        if not status.up_to_date:
            raise CommandError(
                f"the database schema is at revision {status.current or 'none (empty database)'}, "
                f"this version needs {status.head}: run `optivgi-csms db upgrade` first"
            )
        database.start()
        yield database
    finally:
        await database.close()


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine function on a fresh event loop; database failures become one-line CommandErrors."""
    try:
        return asyncio.run(main())  # type: ignore[arg-type]
    except AlembicCommandError as error:
        raise CommandError(str(error)) from None
    except (OSError, SQLAlchemyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CommandError(f"database error: {first_line}") from None
