"""Run the Alembic migrations in ``migrations/`` from our own code (``db upgrade``, ``serve``, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from optivgi_csms.store.database import Database

_PACKAGE = Path(__file__).resolve().parent.parent


def migrations_path() -> Path:
    """The migration scripts: inside the installed wheel, or ``migrations/`` of a source checkout."""
    for candidate in (_PACKAGE / "_migrations", _PACKAGE.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the Alembic migrations folder is missing from this installation")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration pointing at our migrations (and at ``url``, when given)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands relative to the code."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        """True when no migration is pending."""
        return self.current == self.head


async def schema_status(database: Database) -> SchemaStatus:
    """Read the database's revision and compare it with the code's head."""

    def current(sync_connection: Any) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()

    async with database.engine.connect() as connection:
        revision = await connection.run_sync(current)
    return SchemaStatus(current=revision, head=head_revision())


async def upgrade(database: Database, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction."""
    await _run(database, lambda config: command.upgrade(config, revision))


async def downgrade(database: Database, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` empties the schema)."""
    await _run(database, lambda config: command.downgrade(config, revision))


class MigrationIntegrityError(RuntimeError):
    """A migration would leave rows whose foreign keys point nowhere; it was rolled back."""


async def _run(database: Database, action: Any) -> None:
    def run(sync_connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_connection
        action(config)
        if database.is_sqlite:
            broken = sync_connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise MigrationIntegrityError(f"migration would break {len(broken)} foreign key(s): {broken[:3]}")

    async with database.write_engine.connect() as connection:
        if database.is_sqlite:
            # SQLite alters a table by copying it and dropping the original, which with foreign keys
            # on would be refused (or cascade) for every referencing row. The switch only works outside
            # a transaction; integrity is checked before commit instead (above).
            raw = await connection.get_raw_connection()
            await raw.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            async with connection.begin():
                await connection.run_sync(run)
        finally:
            if database.is_sqlite:
                raw = await connection.get_raw_connection()
                await raw.driver_connection.execute("PRAGMA foreign_keys=ON")
