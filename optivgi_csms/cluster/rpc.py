"""Commands between nodes: a call to a station on another node, run there on its local session.

The caller publishes ``{"type": "call", ...}`` on the owning node's channel and waits for
``{"type": "reply", ...}`` on its own. The owner runs the :class:`StationCommands` method on its session
(recording profiles and reservations as on one node) and replies with the answer, or with the
:class:`CommandError` raised, which the caller raises again with the same class and message. A publish
that no node receives (the owner is gone) or a reply that does not come within the station's
``call_timeout`` plus :data:`REPLY_MARGIN_S` means the station cannot be reached: :class:`StationNotConnectedError`,
as on one node.

Only the methods in :data:`METHODS` may be called; arguments and answers cross through :mod:`.codec`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from optivgi_csms.cluster import codec
from optivgi_csms.cluster.channels import Channels
from optivgi_csms.cluster.keys import Keys
from optivgi_csms.logs import get_logger
from optivgi_csms.protocol.commands import StationCommands
from optivgi_csms.protocol.errors import CommandError, StationNotConnectedError

log = get_logger(__name__)

#: The owner may take ``call_timeout`` for the station's answer, and a little more for its database work.
REPLY_MARGIN_S = 5.0
#: The :class:`StationCommands` methods another node may call (the whole public command interface).
METHODS = frozenset(
    {
        "reset",
        "change_availability",
        "get_configuration",
        "change_configuration",
        "unlock_connector",
        "trigger_message",
        "clear_cache",
        "get_composite_schedule",
        "get_base_report",
        "get_variables",
        "set_variables",
        "get_charging_profiles",
        "remote_start",
        "remote_stop",
        "set_charging_profile",
        "clear_charging_profile",
        "reserve_now",
        "send_stored_reservation",
        "cancel_reservation",
    }
)

#: A station's local session on this node, or None.
LocalSession = Callable[[str], StationCommands | None]
#: Called with (station id, the claim's value) when the station connected on another node.
MovedHandler = Callable[[str, str], Awaitable[None]]


class NodeLink:
    """This node's end of the command channel: sends calls, answers them, and passes on "moved" notices."""

    def __init__(
        self, channels: Channels, keys: Keys, node_id: str, *, local: LocalSession, reply_timeout_s: float
    ) -> None:
        self._channels = channels
        self._keys = keys
        self.node_id = node_id
        self._local = local
        self.reply_timeout_s = reply_timeout_s
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.on_moved: MovedHandler | None = None

    async def start(self) -> None:
        """Listen on this node's channel."""
        await self._channels.subscribe(self._keys.node_channel(self.node_id), self._received)

    async def close(self) -> None:
        """Stop answering; calls still waiting for a reply fail as not connected."""
        await self._channels.unsubscribe(self._keys.node_channel(self.node_id))
        for task in list(self._tasks):
            task.cancel()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(StationNotConnectedError("the CSMS node is stopping"))
        self._pending.clear()

    # --- calling --------------------------------------------------------------------------------------------

    async def call(
        self, node_id: str, station_id: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, str]:
        """Run ``method`` on ``station_id``'s session on ``node_id``; returns the answer and the station's OCPP
        version, or raises the :class:`CommandError` the owner raised."""
        if method not in METHODS:
            raise CommandError(f"{method} cannot be sent to another node")
        call_id = secrets.token_hex(8)
        message = {
            "type": "call",
            "id": call_id,
            "from": self.node_id,
            "station": station_id,
            "method": method,
            "args": codec.encode(list(args)),
            "kwargs": codec.encode(kwargs),
        }
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            try:
                received = await self._channels.publish(self._keys.node_channel(node_id), json.dumps(message))
            except RedisError as error:
                raise StationNotConnectedError(f"station {station_id} cannot be reached: {error}") from None
            if received == 0:
                # Nobody listens on the owner's channel: the node is gone and its lease not yet expired.
                raise StationNotConnectedError(f"station {station_id} is not connected (its node {node_id} is gone)")
            try:
                async with asyncio.timeout(self.reply_timeout_s):
                    reply = await future
            except TimeoutError:
                raise StationNotConnectedError(
                    f"station {station_id} is not connected (its node {node_id} did not answer)"
                ) from None
        finally:
            self._pending.pop(call_id, None)
        if "error" in reply:
            raise codec.decode_error(reply["error"])
        return codec.decode(reply["result"]), str(reply.get("version", ""))

    async def notify_moved(self, node_id: str, station_id: str, claim: str) -> None:
        """Tell ``node_id`` that its connection of ``station_id`` was replaced by one here."""
        message = {"type": "moved", "station": station_id, "claim": claim, "from": self.node_id}
        try:
            await self._channels.publish(self._keys.node_channel(node_id), json.dumps(message))
        except RedisError as error:
            log.warning("cannot tell the previous node of a reconnection", station_id=station_id, error=repr(error))

    # --- answering ------------------------------------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            kind = message["type"]
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable cluster message dropped")
            return
        if kind == "reply":
            future = self._pending.get(message.get("id"))
            if future is not None and not future.done():
                future.set_result(message)
        elif kind == "call":
            self._spawn(self._answer(message))
        elif kind == "moved" and self.on_moved is not None:
            self._spawn(self.on_moved(str(message["station"]), str(message["claim"])))

    async def _answer(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"type": "reply", "id": message.get("id")}
        station_id = str(message.get("station"))
        session = self._local(station_id)
        try:
            method = message.get("method")
            if method not in METHODS:
                raise CommandError(f"{method!r} is not a command")
            if session is None:
                raise StationNotConnectedError(f"station {station_id} is not connected")
            args, kwargs = codec.decode(message["args"]), codec.decode(message["kwargs"])
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise CommandError("malformed command")
            reply["version"] = session.ocpp_version
            reply["result"] = codec.encode(await getattr(session, method)(*args, **kwargs))
        except CommandError as error:
            reply["error"] = codec.encode(error)
        except codec.CodecError as error:
            log.warning("command from another node refused", station_id=station_id, error=str(error))
            reply["error"] = codec.encode(CommandError(f"malformed command: {error}"))
        except Exception as error:
            log.exception("command from another node failed", station_id=station_id, method=message.get("method"))
            reply["error"] = codec.encode(CommandError(f"the station's CSMS node failed: {error.__class__.__name__}"))
        try:
            await self._channels.publish(self._keys.node_channel(str(message.get("from"))), json.dumps(reply))
        except RedisError as error:
            log.warning("cannot send the answer to another node", station_id=station_id, error=repr(error))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
