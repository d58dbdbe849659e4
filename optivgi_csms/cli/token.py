"""``optivgi-csms token``: bearer tokens for the operator API (``Authorization: Bearer <token>``)."""

from __future__ import annotations

import argparse

from optivgi_csms.cli import CommandError
from optivgi_csms.cli.common import add_database_flags, current_database, run_async, settings_from
from optivgi_csms.domain.time import format_timestamp
from optivgi_csms.services.api_tokens import OPERATOR, SCOPES, ApiTokenService, TokenInfo, TokenNameError


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``token create``, ``token list`` and ``token revoke``."""
    parser = commands.add_parser("token", help="manage operator API tokens")
    actions = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a token and print it (it is shown only this once)")
    create.add_argument("name", metavar="NAME", help="who or what uses it, e.g. 'dashboard' or 'prometheus'")
    create.add_argument(
        "--scope",
        choices=SCOPES,
        default=OPERATOR,
        help="operator (default): everything; read: GET requests and the live events only (others answer 403)",
    )
    create.set_defaults(handler=run_create)
    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    listing.set_defaults(handler=run_list)
    revoke = actions.add_parser("revoke", help="revoke a token: it stops working at once")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=run_revoke)
    for action in (create, listing, revoke):
        add_database_flags(action)


def run_create(args: argparse.Namespace) -> int:
    """Create a token and print its secret on stdout (alone, so scripts can capture it)."""
    settings = settings_from(args)

    async def main() -> str:
        async with current_database(settings) as database:
            try:
                _, secret = await ApiTokenService(database).create(args.name, args.scope)
            except TokenNameError as error:
                raise CommandError(str(error)) from None
            return secret

    print(run_async(main))
    return 0


def _line(info: TokenInfo) -> str:
    used = format_timestamp(info.last_used_at) if info.last_used_at else "never"
    state = f"revoked {format_timestamp(info.revoked_at)}" if info.revoked_at else "active"
    return f"{info.name:<24} {info.scope:<9} created {format_timestamp(info.created_at)}  used {used}  {state}"


def run_list(args: argparse.Namespace) -> int:
    """Print one line per token."""
    settings = settings_from(args)

    async def main() -> list[TokenInfo]:
        async with current_database(settings) as database:
            return await ApiTokenService(database).list()

    tokens = run_async(main)
    for info in tokens:
        print(_line(info))
    if not tokens:
        print("no tokens: create one with `optivgi-csms token create NAME`")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    """Revoke a token by name."""
    settings = settings_from(args)

    async def main() -> bool:
        async with current_database(settings) as database:
            return await ApiTokenService(database).revoke(args.name)

    if not run_async(main):
        raise CommandError(f"no token named {args.name!r}")
    print(f"token {args.name} revoked")
    return 0
