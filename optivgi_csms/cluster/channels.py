"""One Redis pub/sub connection per node, shared by every channel it listens on.

A node listens on its own channel (commands for its stations, answers to its commands) and on the channel of
each site it leads. Channels come and go as leadership moves; messages are handed to a synchronous handler
per channel, which must return at once (work is done in tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from optivgi_csms.logs import get_logger

log = get_logger(__name__)

#: After the pub/sub connection failed, read again this much later (the client reconnects and subscribes again).
RETRY_S = 0.5

Handler = Callable[[bytes], None]


class Channels:
    """Subscribes to channels and runs their handlers for each message."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._handlers: dict[str, Handler] = {}
        self._reader: asyncio.Task[None] | None = None

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler(data)`` for every message on ``channel`` from now on."""
        self._handlers[channel] = handler
        await self._pubsub.subscribe(channel)
        if self._reader is None:
            # Started after the first subscription: redis-py's reader needs a subscribed connection.
            self._reader = asyncio.create_task(self._read(), name="cluster-channels")

    async def unsubscribe(self, channel: str) -> None:
        """Stop listening on ``channel``."""
        self._handlers.pop(channel, None)
        with contextlib.suppress(RedisError):
            await self._pubsub.unsubscribe(channel)

    async def publish(self, channel: str, data: str) -> int:
        """Send ``data`` on ``channel``; returns how many nodes listen there (0: nobody received it)."""
        return int(await self._redis.publish(channel, data))

    async def close(self) -> None:
        """Stop reading and close the connection."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._handlers.clear()
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis unreachable: keep trying, the client resubscribes on reconnect
                log.warning("cluster channel read failed", error=repr(error))
                await asyncio.sleep(RETRY_S)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            handler = self._handlers.get(channel.decode() if isinstance(channel, bytes) else channel)
            if handler is None:
                continue
            try:
                handler(message["data"])
            except Exception:
                log.exception("cluster message handler failed", channel=channel)
