"""Migrations: empty -> head -> empty on every backend, and the models match what they create."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from optivgi_csms.store import migrate
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import Base
from tests.conftest import BACKENDS

TABLES = {
    "api_tokens",
    "stations",
    "connectors",
    "status_notifications",
    "id_tags",
    "transactions",
    "meter_values",
    "reservations",
    "charging_profiles",
    "data_transfers",
    "ocpp_journal",
    "transaction_events",
    "ev_charging_needs",
    "device_variables",
    "charging_limits",
    "reported_charging_profiles",
    "security_events",
    "device_events",
    "sites",
    "scheduling_cycles",
}


@pytest.fixture(params=BACKENDS)
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
        yield database
        await database.close()
        return
    postgres = request.getfixturevalue("postgres")
    name = f"optivgi_empty_{tmp_path.name[-20:].replace('-', '_').lower()}"
    await postgres._admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
    database = Database(postgres.url_of(name))
    try:
        yield database
    finally:
        await database.close()
        await postgres.drop(name)


async def tables(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names())) - {"alembic_version"}


async def test_upgrade_from_empty_to_head_and_back(empty_database: Database) -> None:
    assert (await migrate.schema_status(empty_database)).current is None
    await migrate.upgrade(empty_database)
    status = await migrate.schema_status(empty_database)
    assert status.up_to_date and status.current == migrate.head_revision()
    assert await tables(empty_database) == TABLES

    await migrate.downgrade(empty_database, "base")
    assert (await migrate.schema_status(empty_database)).current is None
    assert await tables(empty_database) == set()

    await migrate.upgrade(empty_database)  # and up again: downgrade left nothing behind
    assert (await migrate.schema_status(empty_database)).up_to_date


@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
async def test_models_match_the_migrations(empty_database: Database) -> None:
    await migrate.upgrade(empty_database)

    def differences(sync_connection):
        context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with empty_database.engine.connect() as connection:
        diff = await connection.run_sync(differences)
    assert diff == []


SEED = [
    "INSERT INTO stations (id, registered, created_at) VALUES ('CP-1', true, '2026-03-02 08:00:00')",
    "INSERT INTO id_tags (id_tag, status, created_at) VALUES ('TAG', 'Accepted', '2026-03-02 08:00:00')",
    "INSERT INTO transactions (id, station_id, evse_id, connector_id, id_tag, meter_start_wh, started_at,"
    " meter_stop_wh, stopped_at, created_at, updated_at) VALUES (7, 'CP-1', 1, 1, 'TAG', 100,"
    " '2026-03-02 08:00:00', 5100, '2026-03-02 09:00:00', '2026-03-02 08:00:00', '2026-03-02 09:00:00')",
    "INSERT INTO meter_values (station_id, evse_id, connector_id, transaction_id, timestamp, measurand, context,"
    " location, format, value, value_numeric, received_at) VALUES ('CP-1', 1, 1, 7, '2026-03-02 08:30:00',"
    " 'Energy.Active.Import.Register', 'Sample.Periodic', 'Outlet', 'Raw', '2600', 2600, '2026-03-02 08:30:00')",
    "INSERT INTO reservations (id, station_id, evse_id, id_tag, expires_at, status, transaction_id, created_at,"
    " updated_at) VALUES (3, 'CP-1', 1, 'TAG', '2026-03-02 09:00:00', 'Used', 7, '2026-03-02 07:00:00',"
    " '2026-03-02 08:00:00')",
    "INSERT INTO charging_profiles (station_id, evse_id, profile_id, stack_level, purpose, kind, transaction_id,"
    " profile, status, sent_at) VALUES ('CP-1', 1, 1, 0, 'Tx', 'Relative', 7, '{}', 'Accepted',"
    " '2026-03-02 08:01:00')",
]
COUNTED = ("stations", "id_tags", "transactions", "meter_values", "reservations", "charging_profiles")


async def row_counts(database: Database) -> dict[str, int]:
    async with database.engine.connect() as connection:
        return {
            table: (await connection.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one() for table in COUNTED
        }


async def test_stored_data_survives_every_upgrade_and_downgrade(empty_database: Database) -> None:
    first = "0001"
    await migrate.upgrade(empty_database, first)
    async with empty_database.write_engine.begin() as connection:
        for statement in SEED:
            await connection.exec_driver_sql(statement)
    before = await row_counts(empty_database)
    assert set(before.values()) == {1}

    await migrate.upgrade(empty_database)
    assert await row_counts(empty_database) == before
    async with empty_database.engine.connect() as connection:
        energy = await connection.exec_driver_sql("SELECT meter_stop_wh - meter_start_wh FROM transactions")
        assert energy.scalar_one() == 5000
    await migrate.downgrade(empty_database, first)
    assert await row_counts(empty_database) == before
    await migrate.upgrade(empty_database)
    assert await row_counts(empty_database) == before
