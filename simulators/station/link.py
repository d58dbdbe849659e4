"""The station's end of one websocket: requests to the CSMS, answers to its requests, and every way
the CSMS can get that wrong.

Mixed into the ``ocpp`` library's ``ChargePoint`` (before it in the bases) so that the library's
routing (``@on``/``@after`` handlers), message classes and schemas are kept, while its receive loop
and ``call()`` are replaced:

- an answer is matched to its request by id; an answer to nothing is counted, not silently dropped;
- a request waiting for an answer fails at once when the connection drops (the library's waits for
  its whole timeout), so the offline queue can keep the message for the next connection;
- a CALLERROR, a timeout and a schema-breaking answer are distinct errors for the caller;
- whatever the CSMS sends, the station answers or counts it and carries on: nothing here raises
  out of the receive loop except the connection closing;
- a request never overtakes the answer to a CALL being handled: a handler may change the station's
  state and queue messages (a RemoteStop queues the StopTransaction), and those go out after the
  CALLRESULT, as on a real station. Handlers therefore must never await a request themselves.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import NotSupportedError as OcppNotSupported
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, unpack, validate_payload
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)

# (direction, action): "sent"/"received" and the OCPP action, for the recorder's message counts.
MessageCounter = Callable[[str, str], None]
# A description of something the CSMS did against the protocol.
ViolationSink = Callable[[str], None]


class LinkError(Exception):
    """A request got no usable answer."""


class ConnectionLost(LinkError):
    """The connection closed before the answer came (the message may or may not have arrived)."""


class AnswerTimeout(LinkError):
    """The CSMS did not answer in time."""


class CallErrorAnswer(LinkError):
    """The CSMS answered with a CALLERROR."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"CALLERROR {code}: {description}")
        self.code = code


class InvalidAnswer(LinkError):
    """The CSMS's answer breaks the OCPP schema."""


class ClientLink:
    """Mixin for a station-side ``ChargePoint``: see the module docstring."""

    _ocpp_version: str
    _call_result: Any

    def __init__(
        self,
        station_id: str,
        connection: Any,
        *,
        call_timeout_s: float,
        count: MessageCounter,
        violation: ViolationSink,
    ) -> None:
        super().__init__(station_id, connection, response_timeout=call_timeout_s)  # type: ignore[call-arg]
        self._connection = connection
        self._pending: dict[str, asyncio.Future[CallResult | CallError]] = {}
        # Requests given up on (timed out, cancelled): a late answer to one is no violation.
        self._abandoned: deque[str] = deque(maxlen=64)
        self._request_lock = asyncio.Lock()
        # Held while a CALL from the CSMS is handled and answered (see the module docstring).
        self._handling = asyncio.Lock()
        self._closed = False
        self._count = count
        self._violation = violation

    # --- receiving -----------------------------------------------------------------------------

    async def serve(self) -> None:
        """Process frames until the connection closes."""
        try:
            async for raw in self._connection:
                await self.route_message(raw)
        except ConnectionClosed:
            pass
        finally:
            self.shut_down()

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Answer one frame: dispatch a CALL, deliver a CALLRESULT/CALLERROR to its waiting request."""
        try:
            message = unpack(raw_msg)
        except OCPPError as error:
            self._violation(f"unreadable frame ({error.description}): {str(raw_msg)[:200]}")
            return
        if isinstance(message, Call):
            await self._answer(message)
            return
        waiter = self._pending.pop(message.unique_id, None)
        if waiter is None or waiter.done():
            if message.unique_id in self._abandoned:
                log.info("late answer to request %s", message.unique_id)
            else:
                self._violation(f"an answer to no pending request (id {message.unique_id!r})")
            return
        waiter.set_result(message)

    async def _answer(self, call: Call) -> None:
        self._count("received", call.action)
        async with self._handling:
            try:
                # The library validates the request, runs the @on handler (a handler's own failure becomes
                # a CALLERROR there), validates and sends the answer, then runs the @after handler.
                await self._handle_call(call)  # type: ignore[attr-defined]
            except OCPPError as error:
                # The library swaps OCPP's two codes: an action that does not exist is NotImplemented
                # ("not known by the receiver"), one that exists but is not handled is NotSupported.
                if isinstance(error, OcppNotImplemented):  # an action we lack: our gap, not their fault
                    error = OcppNotSupported(details=error.details)
                else:
                    if isinstance(error, OcppNotSupported):
                        error = OcppNotImplemented(details=error.details)
                    self._violation(f"{call.action} refused: {error.code} {error.description} {error.details or ''}")
                await self._send(call.create_call_error(error).to_json())

    async def _send(self, message: str) -> None:
        try:
            await self._connection.send(message)
        except ConnectionClosed:
            self.shut_down()
            raise

    # --- requests ------------------------------------------------------------------------------

    async def request(self, payload: Any) -> Any:
        """Send a CALL built from an ``ocpp`` ``call`` dataclass and return its ``call_result`` dataclass.

        Raises :class:`ConnectionLost`, :class:`AnswerTimeout`, :class:`CallErrorAnswer` or
        :class:`InvalidAnswer`. A request that breaks the schema is a bug here and raises as such.
        """
        action = type(payload).__name__
        body = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
        call = Call(str(uuid.uuid4()), action, body)
        await validate_payload(call, self._ocpp_version)
        async with self._request_lock:
            async with self._handling:
                pass  # let an answer being written go first
            if self._closed:
                raise ConnectionLost("not connected")
            waiter: asyncio.Future[CallResult | CallError] = asyncio.get_running_loop().create_future()
            self._pending[call.unique_id] = waiter
            try:
                try:
                    await self._send(call.to_json())
                except ConnectionClosed:
                    raise ConnectionLost("the connection closed while sending") from None
                self._count("sent", action)
                async with asyncio.timeout(self._response_timeout):  # type: ignore[attr-defined]
                    answer = await waiter
            except TimeoutError:
                raise AnswerTimeout(f"no answer to {action} within {self._response_timeout:g} s") from None  # type: ignore[attr-defined]
            finally:
                # Still pending means no answer came: a timeout, or the caller was cancelled (a heartbeat
                # loop restarted by a new interval). Its answer may still arrive and is no violation.
                if self._pending.pop(call.unique_id, None) is not None:
                    self._abandoned.append(call.unique_id)
        if isinstance(answer, CallError):
            raise CallErrorAnswer(answer.error_code, answer.error_description)
        try:
            answer.action = action
            await validate_payload(answer, self._ocpp_version)
            return getattr(self._call_result, action)(**camel_to_snake_case(answer.payload))
        except (OCPPError, TypeError) as error:
            cause = error.details.get("cause", error.description) if isinstance(error, OCPPError) else str(error)
            raise InvalidAnswer(f"invalid answer to {action}: {cause}") from None

    # --- closing -------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection has ended."""
        return self._closed

    def shut_down(self) -> None:
        """Fail every request still waiting for an answer: the connection is gone."""
        self._closed = True
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(ConnectionLost("the connection closed before the answer"))
        # Their answers may still be on the wire while the socket closes: late, not a violation.
        self._abandoned.extend(self._pending)
        self._pending.clear()

    async def close(self) -> None:
        """Close the websocket."""
        self.shut_down()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that races the close.
            async with asyncio.timeout(2.0):
                await self._connection.close()
        except (TimeoutError, ConnectionClosed, OSError):
            log.debug("close handshake did not complete")
