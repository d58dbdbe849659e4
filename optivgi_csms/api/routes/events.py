"""Live events: ``GET /api/v1/events`` (server-sent events) and ``WS /api/v1/events/ws``.

Both carry the same JSON objects, one per event: ``{"type": "meter.value", "at": "...Z", ...}`` (see
:mod:`optivgi_csms.api.live.payloads` for the types). The stream starts with a ``ready`` message, sends a
heartbeat when nothing happened for ``heartbeat`` seconds (an SSE comment, or ``{"type": "heartbeat"}`` on
the websocket) so proxies keep it open, says ``dropped`` with a count when the client fell more than
``buffer`` events behind (the oldest are lost, never the CSMS slowed), and ``closing`` with a reason when the
server stops or the token is revoked.

Authentication: the SSE endpoint takes the bearer token like every endpoint (``Authorization`` header; the
dashboard reads it with ``fetch``). A browser cannot set headers on a websocket, so the websocket takes the
token either in the ``Authorization`` header of its handshake or as its first message, ``{"token": "..."}``,
within 10 seconds; never in the URL (URLs end up in proxy logs). A missing, wrong or revoked token closes it
with code 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator
from starlette.types import Receive, Scope, Send

from optivgi_csms.api.auth import Authenticated
from optivgi_csms.api.live.payloads import FAMILIES, TYPE_NAMES, parse_types
from optivgi_csms.api.live.registry import LiveEvents, live_events
from optivgi_csms.api.live.subscription import DEFAULT_CAPACITY, Subscription
from optivgi_csms.domain.time import format_timestamp, utc_now
from optivgi_csms.services.api_tokens import ApiTokenService

router = APIRouter(tags=["events"])
#: The websocket authenticates itself (a browser cannot send the header the other routes require).
ws_router = APIRouter(tags=["events"])

DEFAULT_HEARTBEAT_S = 15.0
#: How often a stream checks that its token is still valid (a revoked token ends the stream).
TOKEN_RECHECK_S = 60.0
#: How long a websocket client has to send its token.
WS_AUTH_TIMEOUT_S = 10.0
WS_UNAUTHORIZED = 4401


def _check_types(value: str | None) -> str | None:
    parse_types(value)  # raises a ValueError naming the unknown entry: answered 422 for the field "types"
    return value


TypesQuery = Annotated[
    str | None,
    Query(
        max_length=1000,
        description=(
            "Comma-separated event types or families to receive (all when absent). Types: "
            + ", ".join(TYPE_NAMES)
            + ". Families: "
            + ", ".join(FAMILIES)
            + "."
        ),
        examples=["meter.value,transaction", "station,connector"],
    ),
    AfterValidator(_check_types),
]
HeartbeatQuery = Annotated[
    float, Query(ge=1, le=300, description="Seconds of silence after which a heartbeat is sent (1-300).")
]
BufferQuery = Annotated[
    int,
    Query(
        ge=10,
        le=10_000,
        description="Events kept for a client that reads slowly; beyond that the oldest are dropped (and counted).",
    ),
]


def _ready(subscription: Subscription, heartbeat: float) -> dict[str, Any]:
    return {
        "type": "ready",
        "at": format_timestamp(utc_now()),
        "types": sorted(subscription.types) if subscription.types is not None else list(TYPE_NAMES),
        "heartbeat_s": heartbeat,
        "buffer": subscription.capacity,
    }


def _closing(reason: str) -> dict[str, Any]:
    return {"type": "closing", "at": format_timestamp(utc_now()), "reason": reason}


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def sse_frame(message: dict[str, Any]) -> str:
    """One server-sent event: its type as the SSE event name, the JSON object as its data."""
    return f"event: {message['type']}\ndata: {_dumps(message)}\n\n"


class _TokenCheck:
    """Re-checks a stream's token every :data:`TOKEN_RECHECK_S`: a revoked token ends the stream."""

    def __init__(self, tokens: ApiTokenService, secret: str) -> None:
        self._tokens = tokens
        self._secret = secret
        self._next = asyncio.get_running_loop().time() + TOKEN_RECHECK_S

    async def still_valid(self) -> bool:
        loop = asyncio.get_running_loop()
        if loop.time() < self._next:
            return True
        self._next = loop.time() + TOKEN_RECHECK_S
        return await self._tokens.verify(self._secret) is not None


class EventStreamResponse(StreamingResponse):
    """A streaming response that frees its subscription however the stream ends (the client leaving
    cancels the stream wherever it waits, possibly between two events of the generator)."""

    def __init__(self, content: AsyncIterator[str], registry: LiveEvents, subscription: Subscription) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._registry = registry
        self._subscription = subscription
        self._content = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._registry.release(self._subscription)
            with contextlib.suppress(Exception):
                await self._content.aclose()  # type: ignore[attr-defined]


async def _sse(subscription: Subscription, heartbeat: float, check: _TokenCheck) -> AsyncIterator[str]:
    yield "retry: 3000\n" + sse_frame(_ready(subscription, heartbeat))
    while True:
        batch = await subscription.next_batch(heartbeat)
        if subscription.closed:
            yield sse_frame(_closing(subscription.closing_reason or "closed"))
            return
        # A comment line: ignored by SSE clients, enough for proxies to see the stream alive.
        yield "".join(map(sse_frame, batch)) if batch else f": heartbeat {format_timestamp(utc_now())}\n\n"
        if not await check.still_valid():
            yield sse_frame(_closing("token revoked"))
            return


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A stream of server-sent events: `event: <type>` and `data: <JSON object>` per event.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def events(
    request: Request,
    token: Authenticated,
    types: TypesQuery = None,
    heartbeat: HeartbeatQuery = DEFAULT_HEARTBEAT_S,
    buffer: BufferQuery = DEFAULT_CAPACITY,
) -> EventStreamResponse:
    """Live events as server-sent events (`text/event-stream`) until the client leaves.

    Messages: `ready` first, then the events (`station.connected`, `connector.status`, `transaction.started`,
    `meter.value`, `cycle.finished`, `reservation.status`...), `dropped` with a `count` when the client fell
    more than `buffer` events behind, `closing` when the server stops or the token is revoked; a comment line
    every `heartbeat` seconds of silence."""
    del token  # required (and checked) by the router; the stream re-checks the secret itself
    secret = request.headers.get("authorization", "").partition(" ")[2].strip()
    registry = live_events(request.app)
    subscription = registry.subscribe(parse_types(types), buffer)
    check = _TokenCheck(request.app.state.csms.services.api_tokens, secret)
    return EventStreamResponse(_sse(subscription, heartbeat, check), registry, subscription)


async def _ws_secret(websocket: WebSocket) -> str | None:
    """The token from the handshake's Authorization header, or from the first message ``{"token": ...}``."""
    scheme, _, secret = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return secret.strip()
    try:
        async with asyncio.timeout(WS_AUTH_TIMEOUT_S):
            first = await websocket.receive_text()
    except (TimeoutError, KeyError):  # KeyError: a binary frame has no "text"
        return None
    try:
        message = json.loads(first)
    except ValueError:
        return None
    token = message.get("token") if isinstance(message, dict) else None
    return token if isinstance(token, str) and token else None


@ws_router.websocket("/events/ws", name="events_ws")
async def events_ws(
    websocket: WebSocket,
    types: TypesQuery = None,
    heartbeat: HeartbeatQuery = DEFAULT_HEARTBEAT_S,
    buffer: BufferQuery = DEFAULT_CAPACITY,
) -> None:
    """Live events over a websocket: one JSON text message per event (the same objects as `GET /events`).

    Send the token in the handshake's `Authorization: Bearer` header or as the first message
    `{"token": "..."}` (within 10 s); a missing or wrong token closes with code 4401."""
    await websocket.accept()
    tokens: ApiTokenService = websocket.app.state.csms.services.api_tokens
    try:
        secret = await _ws_secret(websocket)
    except WebSocketDisconnect:
        return
    if secret is None or await tokens.verify(secret) is None:
        await websocket.close(WS_UNAUTHORIZED, "missing, invalid or revoked token")
        return
    registry = live_events(websocket.app)
    subscription = registry.subscribe(parse_types(types), buffer)
    reader = asyncio.create_task(_read_until_gone(websocket, subscription), name="events-ws-reader")
    check = _TokenCheck(tokens, secret)
    try:
        await websocket.send_text(_dumps(_ready(subscription, heartbeat)))
        while True:
            batch = await subscription.next_batch(heartbeat)
            if subscription.closed:
                break
            for message in batch or [{"type": "heartbeat", "at": format_timestamp(utc_now())}]:
                await websocket.send_text(_dumps(message))
            if not await check.still_valid():
                await websocket.send_text(_dumps(_closing("token revoked")))
                await websocket.close(WS_UNAUTHORIZED, "token revoked")
                return
        if subscription.closing_reason != "client left":
            await websocket.send_text(_dumps(_closing(subscription.closing_reason or "closed")))
            await websocket.close(1001, subscription.closing_reason or "closed")
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass  # the client left while we were sending
    finally:
        registry.release(subscription)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _read_until_gone(websocket: WebSocket, subscription: Subscription) -> None:
    """Read (and ignore) what the client sends, so its leaving is noticed at once and ends the stream."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    subscription.close("client left")
