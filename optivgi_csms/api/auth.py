"""Bearer-token authentication and scopes: ``Authorization: Bearer <token>`` on every endpoint but health.

Tokens are created with ``optivgi-csms token create NAME [--scope read|operator]`` and stored hashed
(:mod:`optivgi_csms.services.api_tokens`). The scope a request needs follows from its HTTP method, here and
nowhere else: GET (and HEAD, OPTIONS) needs ``read``, every other method ``operator``. So a route added
under the protected routers is operator-only for writing without anyone having to remember it, and
``tests/api/test_scopes.py`` walks every route to keep it so.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from optivgi_csms.api.errors import ApiError
from optivgi_csms.services.api_tokens import OPERATOR, READ, TokenInfo, allows

_bearer = HTTPBearer(auto_error=False, description="a token from `optivgi-csms token create NAME`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
#: Methods that only look; anything else may change something and needs an operator token.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def scope_needed(method: str) -> str:
    """The scope a request with HTTP ``method`` needs: ``read`` to look, ``operator`` for anything else."""
    return READ if method.upper() in READ_METHODS else OPERATOR


async def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> TokenInfo:
    """The caller's token, or 401 (no or malformed header, unknown or revoked token), or 403 (a live token
    whose scope does not cover the request: a read token on anything but GET)."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiError(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token (Authorization: Bearer <token>)", headers=_CHALLENGE
        )
    info = await request.app.state.csms.services.api_tokens.verify(credentials.credentials)
    if info is None:
        raise ApiError(status.HTTP_401_UNAUTHORIZED, "invalid or revoked token", headers=_CHALLENGE)
    needed = scope_needed(request.method)
    if not allows(info.scope, needed):
        # 403, not 401: the token is fine, another one would not be (the client should not retry with it).
        raise ApiError(
            status.HTTP_403_FORBIDDEN,
            f"{request.method} needs a token with scope {needed!r}; this token's scope is {info.scope!r}",
            scope_needed=needed,
            scope=info.scope,
        )
    return info


Authenticated = Annotated[TokenInfo, Depends(require_token)]


async def credentials_problem(request: Request) -> ApiError | None:
    """The 401/403 :func:`require_token` gives this request, or None when its credentials are good."""
    try:
        await require_token(request, await _bearer(request))
    except ApiError as failure:
        return failure
    return None
