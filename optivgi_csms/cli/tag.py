"""``optivgi-csms tag``: the id tags (RFID cards, app tokens) that may charge.

The rules (length, status, expiry) are :class:`~optivgi_csms.services.id_tags.IdTagService`'s, the same
the API's ``/api/v1/id-tags`` applies.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from optivgi_csms.cli import CommandError
from optivgi_csms.cli.common import add_database_flags, current_database, run_async, settings_from
from optivgi_csms.domain.authorization import AuthorizationStatus
from optivgi_csms.domain.time import format_timestamp, parse_timestamp
from optivgi_csms.services.id_tags import IdTagError, IdTagInfo, IdTagService, UnknownIdTagError, check_tag

T = TypeVar("T")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``tag add``, ``tag list``, ``tag block``, ``tag unblock`` and ``tag expire``."""
    parser = commands.add_parser("tag", help="manage id tags")
    actions = parser.add_subparsers(dest="tag_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="allow a tag to charge (or update it)")
    add.add_argument("id_tag", metavar="TAG")
    add.add_argument("--expires", metavar="TIME", help="ISO 8601 expiry, e.g. 2027-01-01T00:00:00Z")
    add.add_argument("--parent", metavar="TAG", help="parent (group) tag")
    add.add_argument("--note", help="free text, e.g. the holder's name")
    add.set_defaults(handler=run_add)
    listing = actions.add_parser("list", help="list tags")
    listing.set_defaults(handler=run_list)
    block = actions.add_parser("block", help="refuse a tag from now on")
    block.add_argument("id_tag", metavar="TAG")
    block.set_defaults(handler=run_status, status=AuthorizationStatus.BLOCKED)
    unblock = actions.add_parser("unblock", help="accept a blocked tag again")
    unblock.add_argument("id_tag", metavar="TAG")
    unblock.set_defaults(handler=run_status, status=AuthorizationStatus.ACCEPTED)
    expire = actions.add_parser("expire", help="make a tag expire now (or at --at)")
    expire.add_argument("id_tag", metavar="TAG")
    expire.add_argument("--at", metavar="TIME", help="ISO 8601 expiry instead of now")
    expire.set_defaults(handler=run_expire)
    for action in (add, listing, block, unblock, expire):
        add_database_flags(action)


def _time(flag: str, text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_timestamp(text)
    except ValueError:
        raise CommandError(f"invalid {flag} {text!r}: give an ISO 8601 time") from None


def _with_tags(args: argparse.Namespace, work: Callable[[IdTagService], Awaitable[T]]) -> T:
    """Run ``work`` against the configured database; the service's refusals become one-line errors."""
    settings = settings_from(args)

    async def main() -> T:
        async with current_database(settings) as database:
            return await work(IdTagService(database))

    try:
        return run_async(main)
    except (IdTagError, UnknownIdTagError) as error:
        raise CommandError(str(error).removeprefix("id_tag: ")) from None


def _check(tag: str | None) -> None:
    if tag is None:
        return
    try:
        check_tag(tag)
    except IdTagError as error:
        raise CommandError(str(error).removeprefix("id_tag: ")) from None


def run_add(args: argparse.Namespace) -> int:
    """Create or update a tag as Accepted."""
    _check(args.id_tag)
    _check(args.parent)
    expires = _time("--expires", args.expires)
    info = _with_tags(
        args, lambda tags: tags.put(args.id_tag, expiry_date=expires, parent_id_tag=args.parent, note=args.note)
    )
    print(f"tag {info.id_tag} accepted" + (f" until {format_timestamp(expires)}" if expires else ""))
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print every tag, with the verdict a station gets for it now."""

    async def every(tags: IdTagService) -> list[IdTagInfo]:
        return (await tags.list())[0]

    found = _with_tags(args, every)
    if not found:
        print("no tags")
    for tag in found:
        expiry = format_timestamp(tag.expiry_date) if tag.expiry_date else "-"
        print(
            f"{tag.id_tag:20}  {tag.status.value:8}  expires {expiry:24}  "
            f"parent {tag.parent_id_tag or '-':20}  {tag.note or ''}"
        )
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Block or unblock an existing tag."""
    _with_tags(args, lambda tags: tags.set_status(args.id_tag, args.status))
    print(f"tag {args.id_tag} {args.status.value.lower()}")
    return 0


def run_expire(args: argparse.Namespace) -> int:
    """Set an existing tag's expiry to now (or ``--at``)."""
    at = _time("--at", args.at)
    info = _with_tags(args, lambda tags: tags.expire(args.id_tag, at))
    assert info.expiry_date is not None
    print(f"tag {info.id_tag} expires {format_timestamp(info.expiry_date)}")
    return 0
