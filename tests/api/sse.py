"""A server-sent-events reader for tests: messages of a streaming httpx response, parsed as a browser would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SseMessage:
    """One server-sent event (``data`` parsed as JSON), or a comment line (``comment`` set)."""

    event: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    comment: str | None = None


class SseReader:
    """Reads ``response`` message by message."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def message(self, timeout: float = 5.0) -> SseMessage:
        """The next event or comment (a comment is returned alone, as proxies would see it)."""
        async with asyncio.timeout(timeout):
            current = SseMessage()
            data: list[str] = []
            while True:
                line = await anext(self._lines)
                if line == "":
                    if data or current.event:
                        current.data = json.loads("\n".join(data)) if data else {}
                        return current
                    continue
                if line.startswith(":"):
                    return SseMessage(comment=line[1:].strip())
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    current.event = value
                elif name == "data":
                    data.append(value)

    async def event(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event's JSON (comments skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.message(timeout)
                if message.comment is None:
                    assert message.event == message.data["type"], message
                    return message.data

    async def until(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next event of type ``kind`` (others skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.event(timeout)
                if event["type"] == kind:
                    return event

    async def collect(self, kinds: Collection[str], count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next ``count`` events whose type is one of ``kinds``, in the order they came."""
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while len(found) < count:
                event = await self.event(timeout)
                if event["type"] in kinds:
                    found.append(event)
        return found


@contextlib.asynccontextmanager
async def open_stream(client: httpx.AsyncClient, query: str = "", **kwargs: Any) -> AsyncIterator[SseReader]:
    """``GET /api/v1/events`` streamed; the first message (``ready``) is already read and checked."""
    async with client.stream("GET", f"/api/v1/events{query}", **kwargs) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        reader = SseReader(response)
        ready = await reader.event()
        assert ready["type"] == "ready"
        yield reader
