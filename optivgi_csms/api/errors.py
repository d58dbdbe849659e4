"""Every failure the API can answer, as JSON ``{"detail": "...", ...}`` with the right status.

Bad input is 422 naming the field; a missing, invalid or revoked token 401, a token whose scope does not allow
the request 403; an unknown resource 404; a station that is not connected 409; a station
that does not answer in time 504; a station's CALLERROR or a command its OCPP version lacks 502/400 with what
it said. Nothing a client sends produces a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from optivgi_csms.logs import get_logger
from optivgi_csms.protocol.errors import (
    CallErrorResponse,
    CommandError,
    CommandNotSupportedError,
    CommandTimeoutError,
    InvalidCommandError,
    StationNotConnectedError,
)

log = get_logger(__name__)


class ApiError(Exception):
    """A failure with a status code and a message for the client; raise it from a route."""

    def __init__(self, status_code: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers
        self.extra = extra


class NotFoundError(ApiError):
    """404: no such station, transaction, tag, reservation or site."""

    def __init__(self, detail: str) -> None:
        super().__init__(status.HTTP_404_NOT_FOUND, detail)


class ConflictError(ApiError):
    """409: the request is valid but the resource's state refuses it."""

    def __init__(self, detail: str) -> None:
        super().__init__(status.HTTP_409_CONFLICT, detail)


class ErrorOut(BaseModel):
    """A failure: what went wrong, in one line (some add fields, e.g. a station's ``status`` or ``error_code``)."""

    detail: str


class ScopeErrorOut(ErrorOut):
    """A live token whose scope does not cover the request."""

    scope_needed: str = Field(description="`operator`: every method but GET needs it")
    scope: str = Field(description="the token's scope, e.g. `read`")


class FieldProblem(BaseModel):
    """One field that failed validation."""

    field: str = Field(description="the field, e.g. `limit_kw`, `since` or `limit_schedule.0.start`")
    message: str
    type: str | None = Field(default=None, description="pydantic's error type, e.g. `greater_than_equal`")


class ValidationErrorOut(BaseModel):
    """Bad input: ``detail`` names the first bad field, ``errors`` lists every one."""

    detail: str = Field(description="`field: message` of the first problem")
    errors: list[FieldProblem] = Field(default_factory=list)


#: The failures every protected operation may answer, documented once in the OpenAPI schema (FastAPI's own
#: 422 entry describes its default body, not the one :func:`_on_validation_error` sends).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "a body that is not JSON (or not UTF-8)"},
    401: {"model": ErrorOut, "description": "missing, invalid or revoked bearer token"},
    403: {"model": ScopeErrorOut, "description": "the token's scope does not allow it (a read token on a change)"},
    422: {"model": ValidationErrorOut, "description": "bad input: the message names the field"},
}


def field_name(location: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "limit_kw")`` -> ``limit_kw``; ``("query", "since")`` -> ``since``; nested -> ``a.0.b``."""
    parts = [str(part) for part in location]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "field": field_name(error.get("loc", ())),
            "message": str(error.get("msg", "invalid")),
            "type": error.get("type"),
        }
        for error in errors
    ]


async def _on_validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = _validation_errors(list(error.errors()))
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": f"{first['field']}: {first['message']}", "errors": problems},
    )


async def _on_api_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(
        status_code=error.status_code, content={"detail": error.detail, **error.extra}, headers=error.headers
    )


async def _on_http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    return JSONResponse(
        status_code=error.status_code, content={"detail": error.detail}, headers=getattr(error, "headers", None)
    )


async def _on_command_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CommandError)
    if isinstance(error, StationNotConnectedError):
        code, extra = status.HTTP_409_CONFLICT, {}
    elif isinstance(error, CommandTimeoutError):
        code, extra = status.HTTP_504_GATEWAY_TIMEOUT, {}
    elif isinstance(error, CommandNotSupportedError | InvalidCommandError):
        code, extra = status.HTTP_400_BAD_REQUEST, {}
    elif isinstance(error, CallErrorResponse):
        code, extra = status.HTTP_502_BAD_GATEWAY, {"error_code": error.code}
    else:  # an answer the CSMS could not read
        code, extra = status.HTTP_502_BAD_GATEWAY, {}
    return JSONResponse(status_code=code, content={"detail": str(error), "status": error.status_word, **extra})


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    # A bug, not bad input: logged with its traceback so it gets fixed, answered without internals.
    log.exception("API request failed", method=request.method, path=request.url.path, error=repr(error))
    return JSONResponse(status_code=500, content={"detail": "internal error; see the CSMS log"})


#: The 401/403 a request's credentials earn on its route, or None when they are good (or not needed).
AuthCheck = Callable[[Request], Awaitable[ApiError | None]]


def install_error_handlers(app: FastAPI, auth_check: AuthCheck | None = None) -> None:
    """Register the handlers above on ``app``. With ``auth_check``, a request whose input is bad is judged
    on its credentials first: FastAPI reads the body before it runs dependencies, and a client without a
    valid token should learn that it must authenticate, not what the route expects."""

    async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
        if auth_check is not None and (failure := await auth_check(request)) is not None:
            return await _on_api_error(request, failure)
        return await _on_validation_error(request, error)

    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(CommandError, _on_command_error)
    app.add_exception_handler(Exception, _on_unexpected)
