"""``optivgi-csms station``: register stations and their passwords, list them, unregister them.

Works on the same database as a running server (SQLite WAL or PostgreSQL), so it can be used while
the server runs: the next handshake of a station sees the change.
"""

from __future__ import annotations

import argparse
import sys

from optivgi_csms.cli import CommandError
from optivgi_csms.cli.common import add_database_flags, current_database, run_async, settings_from
from optivgi_csms.domain.station import STATION_ID_RULE, is_valid_station_id
from optivgi_csms.domain.time import format_timestamp
from optivgi_csms.security.passwords import PasswordPolicyError, check_policy, hash_password
from optivgi_csms.services.stations import list_stations, register_station, unregister_station
from optivgi_csms.store.models import Station


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``station add``, ``station list`` and ``station remove``."""
    parser = commands.add_parser("station", help="manage registered charging stations")
    actions = parser.add_subparsers(dest="station_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="register a station (or update its password)")
    add.add_argument("station_id", metavar="ID", help="the id the station uses in its URL")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password", help="its Basic-auth password for security profile 1 (16-40 characters)")
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(handler=run_add)

    listing = actions.add_parser("list", help="list registered stations")
    listing.add_argument("--all", action="store_true", help="also list stations that connected unregistered")
    listing.set_defaults(handler=run_list)

    remove = actions.add_parser("remove", help="unregister a station (its history is kept)")
    remove.add_argument("station_id", metavar="ID")
    remove.set_defaults(handler=run_remove)

    for action in (add, listing, remove):
        add_database_flags(action)


def _password(args: argparse.Namespace) -> str | None:
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else args.password
    if password is None:
        return None
    try:
        check_policy(password)
    except PasswordPolicyError as error:
        raise CommandError(str(error)) from None
    return password


def run_add(args: argparse.Namespace) -> int:
    """Register a station, optionally with a password."""
    if not is_valid_station_id(args.station_id):
        raise CommandError(f"invalid station id {args.station_id!r}: a station id is {STATION_ID_RULE}")
    password = _password(args)
    settings = settings_from(args)
    password_hash = hash_password(password) if password is not None else None

    async def main() -> bool:
        async with current_database(settings) as database:
            return await register_station(database, args.station_id, password_hash=password_hash)

    created = run_async(main)
    what = "registered" if created else "updated"
    suffix = " with a password" if password_hash else ""
    print(f"station {args.station_id} {what}{suffix}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print the stations as a table."""
    settings = settings_from(args)

    async def main() -> list[Station]:
        async with current_database(settings) as database:
            views = await list_stations(database, registered=None if args.all else True)
            return [view.station for view in views]

    stations = run_async(main)
    if not stations:
        print("no stations" if args.all else "no registered stations (use --all to see every station that connected)")
        return 0
    header = ("ID", "REGISTERED", "PASSWORD", "OCPP", "VENDOR", "MODEL", "LAST CONNECTED")
    rows = [
        (
            station.id,
            "yes" if station.registered else "no",
            "set" if station.password_hash else "-",
            station.ocpp_version or "-",
            station.vendor or "-",
            station.model or "-",
            format_timestamp(station.last_connected_at) if station.last_connected_at else "never",
        )
        for station in stations
    ]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """Unregister a station and forget its password; its sessions and meter values stay."""
    settings = settings_from(args)

    async def main() -> bool:
        async with current_database(settings) as database:
            return await unregister_station(database, args.station_id)

    if not run_async(main):
        raise CommandError(f"no registered station {args.station_id!r}")
    print(f"station {args.station_id} unregistered (its transactions and meter values are kept)")
    return 0
