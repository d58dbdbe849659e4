"""Id tags an operator manages (the CLI's ``tag`` commands and the API's ``/id-tags``): one set of rules for both.

A tag's stored status is what the operator set (Accepted or Blocked); what a station hears for it is the
verdict now (:func:`optivgi_csms.services.authorization.verdict`), which turns an Accepted tag whose expiry
date has passed into Expired. Listing by status filters on that verdict, so an expired tag is found as
Expired whatever its stored status says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.authorization import AuthorizationStatus
from optivgi_csms.domain.time import utc_now
from optivgi_csms.services.authorization import verdict
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import IdTag

#: OCPP 1.6 idTag is CiString20 (2.0.1 allows 36): a tag longer than 20 could not be sent to a 1.6 station.
MAX_TAG_LENGTH = 20
MAX_NOTE_LENGTH = 255


class IdTagError(ValueError):
    """A tag, parent tag, note or date that cannot be stored; the message names the field."""


class UnknownIdTagError(LookupError):
    """No such id tag."""


class IdTagExistsError(ValueError):
    """Creating a tag that exists already."""


class IdTagChanges(TypedDict, total=False):
    """The fields of a tag an operator may change after creating it (None clears one)."""

    expiry_date: datetime | None
    parent_id_tag: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class IdTagInfo:
    """An id tag as an operator sees it: what was set and the verdict a station gets for it now."""

    id_tag: str
    stored_status: str
    status: AuthorizationStatus
    expiry_date: datetime | None
    parent_id_tag: str | None
    note: str | None
    created_at: datetime | None


def check_tag(id_tag: str, field: str = "id_tag") -> None:
    """Raise :class:`IdTagError` unless ``id_tag`` is 1 to 20 printable ASCII characters (OCPP's CiString)."""
    if not 0 < len(id_tag) <= MAX_TAG_LENGTH or not (id_tag.isascii() and id_tag.isprintable()):
        raise IdTagError(f"{field}: invalid tag {id_tag!r}: 1 to {MAX_TAG_LENGTH} printable ASCII characters")


def _check_fields(parent_id_tag: str | None, note: str | None, expiry_date: datetime | None) -> None:
    if parent_id_tag is not None:
        check_tag(parent_id_tag, "parent_id_tag")
    if note is not None and len(note) > MAX_NOTE_LENGTH:
        raise IdTagError(f"note: at most {MAX_NOTE_LENGTH} characters")
    if expiry_date is not None and expiry_date.tzinfo is None:
        raise IdTagError("expiry_date: must carry a time zone")


def _info(tag: IdTag, now: datetime) -> IdTagInfo:
    return IdTagInfo(
        id_tag=tag.id_tag,
        stored_status=tag.status,
        status=verdict(tag, accept_unknown=False, now=now).status,
        expiry_date=tag.expiry_date,
        parent_id_tag=tag.parent_id_tag,
        note=tag.note,
        created_at=tag.created_at,
    )


def _has_status(status: AuthorizationStatus, now: datetime) -> ColumnElement[bool]:
    """SQL for "the verdict on this row now is ``status``" (the same rule as :func:`verdict`)."""
    expired = and_(IdTag.expiry_date.is_not(None), IdTag.expiry_date <= now)
    accepted = IdTag.status == AuthorizationStatus.ACCEPTED.value
    if status is AuthorizationStatus.ACCEPTED:
        return and_(accepted, ~expired)
    if status is AuthorizationStatus.EXPIRED:
        return or_(IdTag.status == status.value, and_(accepted, expired))
    if status is AuthorizationStatus.INVALID:
        known = [value.value for value in AuthorizationStatus if value is not AuthorizationStatus.INVALID]
        return IdTag.status.not_in(known)
    return IdTag.status == status.value


class IdTagService:
    """Creates, lists, blocks, unblocks and expires id tags."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(
        self,
        id_tag: str,
        *,
        expiry_date: datetime | None = None,
        parent_id_tag: str | None = None,
        note: str | None = None,
    ) -> IdTagInfo:
        """A new Accepted tag; raises :class:`IdTagExistsError` when it exists, :class:`IdTagError` when bad."""
        check_tag(id_tag)
        _check_fields(parent_id_tag, note, expiry_date)

        async def op(session: AsyncSession) -> IdTagInfo | None:
            if await session.get(IdTag, id_tag) is not None:
                return None
            now = utc_now()
            tag = IdTag(
                id_tag=id_tag,
                status=AuthorizationStatus.ACCEPTED.value,
                expiry_date=expiry_date,
                parent_id_tag=parent_id_tag,
                note=note,
                created_at=now,
            )
            session.add(tag)
            return _info(tag, now)

        created = await self._database.write(op)
        if created is None:
            raise IdTagExistsError(f"id tag {id_tag!r} exists already")
        return created

    async def put(
        self,
        id_tag: str,
        *,
        expiry_date: datetime | None = None,
        parent_id_tag: str | None = None,
        note: str | None = None,
    ) -> IdTagInfo:
        """Create the tag or make it Accepted with exactly these fields (the CLI's ``tag add``)."""
        check_tag(id_tag)
        _check_fields(parent_id_tag, note, expiry_date)

        async def op(session: AsyncSession) -> IdTagInfo:
            now = utc_now()
            tag = await session.get(IdTag, id_tag)
            if tag is None:
                tag = IdTag(id_tag=id_tag, created_at=now)
                session.add(tag)
            tag.status = AuthorizationStatus.ACCEPTED.value
            tag.expiry_date = expiry_date
            tag.parent_id_tag = parent_id_tag
            tag.note = note
            return _info(tag, now)

        return await self._database.write(op)

    async def update(self, id_tag: str, changes: IdTagChanges) -> IdTagInfo:
        """Change some of a tag's fields (None clears one); raises :class:`UnknownIdTagError` and
        :class:`IdTagError`."""
        _check_fields(changes.get("parent_id_tag"), changes.get("note"), changes.get("expiry_date"))

        async def op(session: AsyncSession) -> IdTagInfo | None:
            tag = await session.get(IdTag, id_tag)
            if tag is None:
                return None
            if "expiry_date" in changes:
                tag.expiry_date = changes["expiry_date"]
            if "parent_id_tag" in changes:
                tag.parent_id_tag = changes["parent_id_tag"]
            if "note" in changes:
                tag.note = changes["note"]
            return _info(tag, utc_now())

        return self._found(id_tag, await self._database.write(op))

    async def set_status(self, id_tag: str, status: AuthorizationStatus) -> IdTagInfo:
        """Block (``Blocked``) or unblock (``Accepted``) a tag; raises :class:`UnknownIdTagError`."""

        async def op(session: AsyncSession) -> IdTagInfo | None:
            tag = await session.get(IdTag, id_tag)
            if tag is None:
                return None
            tag.status = status.value
            return _info(tag, utc_now())

        return self._found(id_tag, await self._database.write(op))

    async def expire(self, id_tag: str, at: datetime | None = None) -> IdTagInfo:
        """Make the tag expire ``at`` (now when None); raises :class:`UnknownIdTagError`."""
        moment = at if at is not None else utc_now()
        return await self.update(id_tag, {"expiry_date": moment})

    async def get(self, id_tag: str) -> IdTagInfo:
        """One tag; raises :class:`UnknownIdTagError`."""
        async with self._database.read() as session:
            tag = await session.get(IdTag, id_tag)
            return self._found(id_tag, _info(tag, utc_now()) if tag is not None else None)

    async def list(
        self, *, status: AuthorizationStatus | None = None, limit: int | None = None, offset: int = 0
    ) -> tuple[list[IdTagInfo], int]:
        """Tags in id order (of ``status`` now, when given), and how many match in all."""
        now = utc_now()
        where = [_has_status(status, now)] if status is not None else []
        async with self._database.read() as session:
            total = await session.scalar(select(func.count()).select_from(IdTag).where(*where))
            rows = await session.scalars(select(IdTag).where(*where).order_by(IdTag.id_tag).offset(offset).limit(limit))
            return [_info(tag, now) for tag in rows], int(total or 0)

    @staticmethod
    def _found(id_tag: str, info: IdTagInfo | None) -> IdTagInfo:
        if info is None:
            raise UnknownIdTagError(f"no id tag {id_tag!r}")
        return info
