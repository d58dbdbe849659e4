"""One station's OCPP connection: the receive loop, the answer to every frame, and outgoing requests.

This is the part both versions share. It keeps the ``ocpp`` library's ``ChargePoint`` routing (the
``@on``/``@after`` handlers of the version adapters) and its message classes and schemas, and
replaces the library's receive loop and ``call()`` so that:

- every malformed or invalid frame gets the right CALLERROR and the connection stays up;
- a handler that fails answers ``InternalError`` instead of killing the connection;
- results for calls never made are dropped instead of queueing forever;
- a command waiting for an answer fails at once when the connection drops, not after its timeout;
- a station's CALLERROR, a timeout and a schema-breaking answer are distinct errors for the caller;
- every frame is counted and every CALL's handling timed in the CSMS's metrics;
- at shutdown a draining connection finishes the CALL in hand but takes no new one (the station sends it
  again to the next CSMS), while answers to the CSMS's own requests are still delivered.

Requests to one station are serialised by a FIFO lock (OCPP allows one CALL in flight): they queue,
they are never rejected because another one is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from typing import Any, ClassVar

from ocpp.charge_point import remove_nones, serialize_as_dict
from ocpp.exceptions import InternalError, NotImplementedError, NotSupportedError, OCPPError, SecurityError
from ocpp.messages import Call, CallError, CallResult, MessageType
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from optivgi_csms.logs import get_logger
from optivgi_csms.metrics import CsmsMetrics, OcppMetrics
from optivgi_csms.protocol import rpc
from optivgi_csms.protocol.casing import snake_key, to_camel, to_snake
from optivgi_csms.protocol.errors import (
    CallErrorResponse,
    CommandTimeoutError,
    InvalidAnswerError,
    InvalidCommandError,
    StationNotConnectedError,
)
from optivgi_csms.services import Services

# Fields whose value is the station's own data, not OCPP structure: handlers get it as sent. The
# library renames every key it finds from camelCase to snake_case, which would rewrite a vendor's
# JSON (2.0.1 DataTransfer ``data`` may be any JSON value; ``{"maxPowerW": 1}`` became ``{"max_powerw": 1}``).
OPAQUE_FIELDS: dict[str, tuple[str, ...]] = {"DataTransfer": ("data",)}


def _arguments(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A CALL's payload as handler keyword arguments: snake_case names, opaque values untouched."""
    opaque = OPAQUE_FIELDS.get(action, ())
    arguments: dict[str, Any] = {}
    for key, value in payload.items():
        # An opaque field (vendor data, any JSON) keeps its keys, and is not walked at all.
        arguments[snake_key(key)] = value if key in opaque else to_snake(value)
    return arguments


def _find_routes(cls: type) -> dict[str, dict[str, Any]]:
    """A class's ``@on``/``@after`` handlers by action, as the library's route map has them but with plain
    functions (called with the session as first argument)."""
    routes: dict[str, dict[str, Any]] = {}
    for name in dir(cls):
        function = getattr(cls, name, None)
        for option in ("_on_action", "_after_action"):
            action = getattr(function, option, None)
            if action is None:
                continue
            entry = routes.setdefault(str(action), {})
            entry[option] = function
            if option == "_on_action":
                entry["_skip_schema_validation"] = getattr(function, "_skip_schema_validation", False)
    return routes


class OcppSession:
    """Mixin for a version adapter (listed before the library's ``ChargePoint`` in its bases)."""

    dialect: ClassVar[rpc.Dialect]
    #: The adapter's handlers by action, found once per class (see :func:`_find_routes`).
    _routes: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(
        self,
        station_id: str,
        connection: ServerConnection,
        *,
        services: Services,
        call_timeout: float = 30.0,
        metrics: OcppMetrics | None = None,
    ) -> None:
        # The library's ChargePoint.__init__ is not called: its route map is built per connection by trying
        # every handler name of every version on the object (measured: 5% of a boot storm's CPU), and its
        # queues and locks serve the receive loop and call() this class replaces. What it set that is still
        # read is set here; the routes are found once per class (:func:`_find_routes`).
        self.id = station_id
        self._response_timeout = call_timeout
        self.station_id = station_id
        self.services = services
        self.log = get_logger("optivgi_csms.ocpp", station_id=station_id, ocpp=self.dialect.version)
        self._connection: ServerConnection = connection
        self._pending: dict[str, asyncio.Future[CallResult | CallError]] = {}
        self._request_lock = asyncio.Lock()
        self._after_tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        # A session made outside a CSMS counts into a registry of its own, so the receive loop never
        # has to ask whether it is measured.
        self._metrics = metrics if metrics is not None else CsmsMetrics().ocpp(self.dialect)
        # Set while no frame is being handled; a draining session handles no new CALL.
        self._idle = asyncio.Event()
        self._idle.set()
        self._draining = False
        # Whether the CSMS accepts this station: under the "registered" boot policy an unknown
        # station starts refused, and a BootNotification answer sets it either way. A refused
        # station may only boot; everything else gets SecurityError and stores nothing.
        self.admitted = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._routes = _find_routes(cls)

    # --- receiving ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Process frames until the connection closes."""
        try:
            async for raw in self._connection:
                self._idle.clear()
                try:
                    await self.route_message(raw)
                finally:
                    self._idle.set()
        except ConnectionClosed:
            pass
        finally:
            self._shut_down()

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Answer one frame: dispatch a CALL, deliver a CALLRESULT/CALLERROR to its waiting request."""
        received = time.perf_counter()
        self.services.journal.record(self.station_id, "in", raw_msg)
        try:
            message = rpc.parse_frame(raw_msg, self.dialect)
        except rpc.FrameError as problem:
            self._metrics.invalid_frame()
            self.log.info("bad frame", error=problem.error.code, detail=problem.error.details.get("cause"))
            if problem.reply:
                await self._send_error(problem.unique_id, problem.error, None)
            return
        if isinstance(message, Call):
            series = self._metrics.call(message.action)
            series.received.inc()
            if self._draining:
                # Unanswered on purpose: a station resends an unanswered message after reconnecting, while
                # an answer or a CALLERROR would tell it the message was dealt with.
                self.log.info("not handled: the CSMS is shutting down", action=message.action)
                return
            await self._handle_call(message)
            series.latency.observe(time.perf_counter() - received)
            return
        self._metrics.answer_received()
        waiter = self._pending.pop(message.unique_id, None)
        if waiter is None or waiter.done():
            self.log.info("dropped an answer to no pending request", message_id=message.unique_id)
            return
        waiter.set_result(message)

    async def _handle_call(self, call: Call) -> None:
        handlers = self._routes.get(call.action, {})
        handler = handlers.get("_on_action")
        if handler is None:
            known = call.action in self.dialect.actions
            error: OCPPError = (
                NotSupportedError(details={"cause": f"{call.action} is not handled by this CSMS"})
                if known
                else NotImplementedError(
                    details={"cause": f"{call.action!r} is not an OCPP {self.dialect.version} action"}
                )
            )
            await self._send_error(call.unique_id, error, call.action)
            return
        if not self.admitted and call.action != "BootNotification":
            await self._send_error(
                call.unique_id,
                SecurityError(details={"cause": "this station is not accepted: it must boot and be accepted first"}),
                call.action,
            )
            return
        try:
            if not handlers.get("_skip_schema_validation", False):
                rpc.validate(MessageType.Call, call.action, call.payload, self.dialect)
            arguments = _arguments(call.action, call.payload)
            response = handler(self, **arguments)
            if inspect.isawaitable(response):
                response = await response
            payload = to_camel(remove_nones(serialize_as_dict(response)))
        except OCPPError as error:
            self.log.info("call refused", action=call.action, error=error.code, detail=error.details.get("cause"))
            await self._send_error(call.unique_id, error, call.action)
            return
        except Exception as error:
            if getattr(error, "transient", False):
                # An outage the station rides out by sending the message again: one line, not a traceback.
                self.log.warning("call refused for now", action=call.action, error=str(error)[:200])
            else:
                self.log.exception("handler failed", action=call.action)
            await self._send_error(
                call.unique_id, InternalError(details={"cause": f"{call.action} could not be processed"}), call.action
            )
            return
        try:
            rpc.validate(MessageType.CallResult, call.action, payload, self.dialect)
        except OCPPError as error:
            # Our own answer breaks the schema: a bug here, not the station's fault.
            self.log.error("answer breaks the schema", action=call.action, detail=error.details.get("cause"))
            await self._send_error(
                call.unique_id, InternalError(details={"cause": "the CSMS built an invalid answer"}), call.action
            )
            return
        await self._send(CallResult(call.unique_id, payload).to_json())
        after = handlers.get("_after_action")
        if after is not None:
            self._start_after(after, arguments)

    def _start_after(self, after: Any, arguments: dict[str, Any]) -> None:
        # After-handlers may call the station, which waits for this loop to read the answer:
        # they run as tasks, never inline. The answer is already sent, so a failure is only logged.
        try:
            result = after(self, **arguments)
        except Exception:
            self.log.exception("after-handler failed")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._after_tasks.add(task)
            task.add_done_callback(self._after_done)

    def _after_done(self, task: asyncio.Task[Any]) -> None:
        self._after_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("after-handler failed", error=repr(task.exception()))

    async def _send_error(self, unique_id: str, error: OCPPError, action: str | None) -> None:
        self._metrics.error_sent(action, error.code)
        frame = CallError(unique_id, error.code, error.description, error.details or {})
        await self._send(frame.to_json())

    async def _send(self, message: str) -> None:
        self.services.journal.record(self.station_id, "out", message)
        with contextlib.suppress(ConnectionClosed):
            await self._connection.send(message)

    # --- requests to the station -------------------------------------------------------------

    async def request(self, payload: Any) -> Any:
        """Send a CALL built from an ``ocpp`` ``call`` dataclass and return the ``call_result`` dataclass.

        Raises :class:`InvalidCommandError` before sending a schema-breaking request, and
        :class:`StationNotConnectedError`, :class:`CommandTimeoutError`, :class:`CallErrorResponse`
        or :class:`InvalidAnswerError` for the ways an answer can fail to come.
        """
        action = payload.__class__.__name__
        body = remove_nones(to_camel(serialize_as_dict(payload)))
        try:
            rpc.validate(MessageType.Call, action, body, self.dialect)
        except OCPPError as error:
            raise InvalidCommandError(f"{action} would break the OCPP schema: {error.details.get('cause')}") from None
        async with self._request_lock:
            if self._closed:
                raise StationNotConnectedError(f"station {self.station_id} is not connected")
            call = Call(str(uuid.uuid4()), action, body)
            waiter: asyncio.Future[CallResult | CallError] = asyncio.get_running_loop().create_future()
            self._pending[call.unique_id] = waiter
            try:
                await self._send(call.to_json())
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                # races the answer, leaving the caller hung.
                async with asyncio.timeout(self._response_timeout):  # type: ignore[attr-defined]
                    answer = await waiter
            except TimeoutError:
                raise CommandTimeoutError(
                    f"station {self.station_id} did not answer {action} within {self._response_timeout:g} s"  # type: ignore[attr-defined]
                ) from None
            finally:
                self._pending.pop(call.unique_id, None)
        if isinstance(answer, CallError):
            raise CallErrorResponse(answer.error_code, answer.error_description, answer.error_details)
        try:
            rpc.validate(MessageType.CallResult, action, answer.payload, self.dialect)
            return getattr(self._call_result, action)(**to_snake(answer.payload))  # type: ignore[attr-defined]
        except (OCPPError, TypeError) as error:
            cause = error.details.get("cause") if isinstance(error, OCPPError) else str(error)
            raise InvalidAnswerError(
                f"station {self.station_id} answered {action} with an invalid payload: {cause}"
            ) from None

    # --- closing -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection has ended."""
        return self._closed

    async def close(self, reason: str = "", code: int = 1000) -> None:
        """Close the websocket (e.g. when the same station connects again; 1001 when the CSMS goes away).

        Commands waiting on this connection fail at once, not after the close handshake, which
        lasts the whole close timeout when the peer's link died silently.
        """
        self._shut_down()
        await self._connection.close(code=code, reason=reason[:120])

    def drain(self) -> None:
        """Shutdown: finish the frame in hand, handle no new CALL (answers to requests still arrive)."""
        self._draining = True

    async def wait_idle(self) -> None:
        """Return once no frame is being handled."""
        await self._idle.wait()

    def _shut_down(self) -> None:
        self._closed = True
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(StationNotConnectedError(f"station {self.station_id} disconnected"))
        self._pending.clear()
        for task in list(self._after_tasks):
            task.cancel()
