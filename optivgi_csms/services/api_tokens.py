"""Bearer tokens of the operator API: created once (shown once), stored as their SHA-256, checked per request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import ApiToken

#: Tokens start with this, so a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX = "ovc_"
#: ``read``: look only (GET requests and the live event stream); ``operator``: everything.
OPERATOR = "operator"
READ = "read"
SCOPES = (OPERATOR, READ)
MAX_NAME_LENGTH = 64
#: ``last_used_at`` is written at most this often per token: a request must not cost a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenNameError(ValueError):
    """A token name is empty, too long, or already taken."""


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token (never the token itself)."""

    id: int
    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def allows(scope: str, needed: str) -> bool:
    """Whether a token of ``scope`` may do what needs ``needed``: operator may do all, read only read.

    An unknown scope (a row written by hand) allows nothing, so a typo never grants more than meant."""
    return scope == OPERATOR or (scope == READ and needed == READ)


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.scope, row.created_at, row.last_used_at, row.revoked_at)


class ApiTokenService:
    """Creates, lists, revokes and verifies API tokens."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(self, name: str, scope: str = OPERATOR) -> tuple[TokenInfo, str]:
        """A new token named ``name``: its info and the secret, which is never stored or shown again."""
        name = name.strip()
        if not 0 < len(name) <= MAX_NAME_LENGTH or not name.isprintable():
            raise TokenNameError(f"invalid token name {name!r}: 1 to {MAX_NAME_LENGTH} printable characters")
        if scope not in SCOPES:
            raise TokenNameError(f"invalid scope {scope!r}: one of {', '.join(SCOPES)}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)

        async def op(session: AsyncSession) -> TokenInfo | None:
            taken = await session.scalar(select(ApiToken.id).where(ApiToken.name == name))
            if taken is not None:
                return None
            row = ApiToken(name=name, token_hash=hash_token(secret), scope=scope, created_at=utc_now())
            session.add(row)
            await session.flush()
            return _info(row)

        info = await self._database.write(op)
        if info is None:
            raise TokenNameError(f"a token named {name!r} exists already: revoke it first or choose another name")
        return info, secret

    async def list(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first."""
        async with self._database.read() as session:
            rows = await session.scalars(select(ApiToken).order_by(ApiToken.id))
            return [_info(row) for row in rows]

    async def revoke(self, name: str) -> bool:
        """Revoke the token named ``name``; False if there is no such token. Revoking twice changes nothing."""

        async def op(session: AsyncSession) -> bool:
            row = await session.scalar(select(ApiToken).where(ApiToken.name == name))
            if row is None:
                return False
            if row.revoked_at is None:
                row.revoked_at = utc_now()
            return True

        return await self._database.write(op)

    async def verify(self, token: str) -> TokenInfo | None:
        """The token's info if it is a live token, else None.

        Looked up by its hash (an index lookup, so no timing difference between wrong tokens to exploit)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        digest = hash_token(token)
        async with self._database.read() as session:
            row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
            if row is None or row.revoked_at is not None or not secrets.compare_digest(row.token_hash, digest):
                return None
            info = _info(row)
        now = utc_now()
        if info.last_used_at is None or now - info.last_used_at >= LAST_USED_RESOLUTION:

            async def touch(session: AsyncSession) -> None:
                fresh = await session.get(ApiToken, info.id)
                if fresh is not None:
                    fresh.last_used_at = now

            await self._database.write(touch)
        return info
