"""Shared fixtures: a migrated database on each backend, a running CSMS on a loopback port.

Every database-backed test runs on SQLite and, when ``OPTIVGI_TEST_POSTGRES_URL`` is set, on
PostgreSQL as well (each test gets a fresh database cloned from a migrated template).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from optivgi_csms.config import Settings, normalise_database_url
from optivgi_csms.server.app import Csms
from optivgi_csms.store import migrate
from optivgi_csms.store.database import Database

T = TypeVar("T")

POSTGRES_URL = os.environ.get("OPTIVGI_TEST_POSTGRES_URL", "")
NO_POSTGRES = (
    "OPTIVGI_TEST_POSTGRES_URL is not set: PostgreSQL cases skipped (.ci/run sets it when PostgreSQL is reachable)"
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running event loop
    (session fixtures may be first requested by an async fixture)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _migrate(url: str) -> None:
    async def run() -> None:
        database = Database(url)
        try:
            await migrate.upgrade(database)
        finally:
            await database.close()

    run_sync(run())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating once is much faster than per test)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    _migrate(f"sqlite+aiosqlite:///{path}")
    return path


class PostgresDatabases:
    """Creates throw-away PostgreSQL databases cloned from one migrated template."""

    def __init__(self, url: str) -> None:
        self.url = normalise_database_url(url)
        self.template = f"optivgi_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def _admin(self, *statements: str) -> None:
        import asyncpg
        from sqlalchemy.engine import make_url

        plain = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(plain)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    def url_of(self, name: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def create_template(self) -> None:
        run_sync(self._admin(f'CREATE DATABASE "{self.template}"'))
        _migrate(self.url_of(self.template))

    async def clone(self) -> str:
        name = f"optivgi_t_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    async def drop(self, name: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_template(self) -> None:
        run_sync(self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    """The PostgreSQL database factory (skips when no PostgreSQL is configured)."""
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    databases = PostgresDatabases(POSTGRES_URL)
    databases.create_template()
    yield databases
    databases.drop_template()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> AsyncIterator[str]:
    """The URL of a fresh, migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "csms.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    postgres: PostgresDatabases = request.getfixturevalue("postgres")
    name = await postgres.clone()
    try:
        yield postgres.url_of(name)
    finally:
        await postgres.drop(name)


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Settings for a CSMS on a free loopback port with short timeouts."""
    base = Settings(
        host="127.0.0.1",
        port=0,
        api=False,  # API tests switch it on (tests/api/conftest.py); the others need no HTTP server
        api_port=0,
        database_url=database_url,
        call_timeout=5.0,
        ping_interval=0,
        profile_raise_delay=0.3,  # the simulated test stations apply a limit 0.2 s after accepting it
    )
    return replace(base, **overrides)


CsmsFactory = Callable[..., Awaitable[Csms]]


@pytest.fixture
async def make_csms(database_url: str) -> AsyncIterator[CsmsFactory]:
    """Start CSMS instances with setting overrides; all are stopped at the end of the test."""
    running: list[Csms] = []

    async def start(**overrides: Any) -> Csms:
        csms = Csms(settings_for(database_url, **overrides))
        await csms.start()
        running.append(csms)
        return csms

    yield start
    for csms in reversed(running):
        await csms.stop()


@pytest.fixture
async def csms(make_csms: CsmsFactory) -> Csms:
    """A running CSMS with default settings on a fresh database."""
    return await make_csms()
