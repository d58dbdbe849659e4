"""``optivgi-csms db``: create, upgrade and inspect the database schema."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from optivgi_csms.cli.common import add_database_flags, open_database, run_async, settings_from
from optivgi_csms.store import migrate
from optivgi_csms.store.database import Database


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``db upgrade``, ``db downgrade`` and ``db status``."""
    parser = commands.add_parser("db", help="manage the database schema")
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="apply pending migrations (creates the database if needed)")
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    downgrade = actions.add_parser("downgrade", help="revert migrations down to a revision ('base' empties it)")
    downgrade.add_argument("revision", help="target revision, or 'base'")
    status = actions.add_parser("status", help="show the schema revision and whether it is current")
    for action, handler in ((upgrade, run_upgrade), (downgrade, run_downgrade), (status, run_status)):
        add_database_flags(action)
        action.set_defaults(handler=handler)


def _apply(args: argparse.Namespace, change: Callable[[Database], Awaitable[None]] | None) -> migrate.SchemaStatus:
    """Run ``change`` (if any) on the configured database and return where its schema ends up."""
    database = open_database(settings_from(args))

    async def main() -> migrate.SchemaStatus:
        try:
            if change is not None:
                await change(database)
            return await migrate.schema_status(database)
        finally:
            await database.close()

    return run_async(main)


def run_upgrade(args: argparse.Namespace) -> int:
    """Migrate up to the requested revision."""
    status = _apply(args, lambda database: migrate.upgrade(database, args.revision))
    print(f"database at revision {status.current} (head {status.head})")
    return 0


def run_downgrade(args: argparse.Namespace) -> int:
    """Migrate down to the requested revision."""
    status = _apply(args, lambda database: migrate.downgrade(database, args.revision))
    print(f"database at revision {status.current or 'base (empty)'} (head {status.head})")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print the revision; exit 1 when migrations are pending."""
    status = _apply(args, None)
    state = "up to date" if status.up_to_date else "migrations pending: run `optivgi-csms db upgrade`"
    print(f"revision {status.current or 'none'}, head {status.head}: {state}")
    return 0 if status.up_to_date else 1
