"""Authorization of id tags: the verdict on a tag, from the id_tags table and the unknown-tag policy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.authorization import Authorization, AuthorizationStatus
from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import IdTag


def verdict(tag: IdTag | None, *, accept_unknown: bool, now: datetime) -> Authorization:
    """The authorization for a tag row (or no row): status, expiry and parent tag."""
    if tag is None:
        return Authorization(AuthorizationStatus.ACCEPTED if accept_unknown else AuthorizationStatus.INVALID)
    try:
        status = AuthorizationStatus(tag.status)
    except ValueError:
        status = AuthorizationStatus.INVALID
    if status is AuthorizationStatus.ACCEPTED and tag.expiry_date is not None and tag.expiry_date <= now:
        status = AuthorizationStatus.EXPIRED
    return Authorization(status, expiry_date=tag.expiry_date, parent_id_tag=tag.parent_id_tag)


class AuthorizationService:
    """Answers Authorize requests and judges the tags that start and stop sessions."""

    def __init__(self, database: Database, *, accept_unknown: bool) -> None:
        self._database = database
        self.accept_unknown = accept_unknown

    async def authorize(self, id_tag: str) -> Authorization:
        """The verdict on ``id_tag`` now."""
        async with self._database.read() as session:
            return await self.authorize_in(session, id_tag)

    async def authorize_in(self, session: AsyncSession, id_tag: str) -> Authorization:
        """The verdict on ``id_tag``, read through an open session (inside a write)."""
        tag = await session.get(IdTag, id_tag)
        return verdict(tag, accept_unknown=self.accept_unknown, now=utc_now())
