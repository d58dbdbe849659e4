"""``GET /api/v1/token``: who am I — the caller's token (the dashboard checks a pasted token with it)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from optivgi_csms.api.auth import Authenticated

router = APIRouter(tags=["auth"])


class TokenOut(BaseModel):
    """The caller's token, never its secret."""

    name: str
    scope: str
    created_at: datetime


@router.get("/token", response_model=TokenOut)
async def current_token(token: Authenticated) -> TokenOut:
    """The token this request was made with."""
    return TokenOut(name=token.name, scope=token.scope, created_at=token.created_at)
