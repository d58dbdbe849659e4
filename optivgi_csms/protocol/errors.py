"""Errors: the OCPP error codes the ``ocpp`` library lacks, and the failures of CSMS-initiated commands."""

from __future__ import annotations

from typing import Any

from ocpp.exceptions import OCPPError


class RpcFrameworkError(OCPPError):
    """2.0.1: the frame is not a valid RPC message (e.g. its message id cannot be read)."""

    code = "RpcFrameworkError"
    default_description = "Content of the call is not a valid RPC request"


class MessageTypeNotSupportedError(OCPPError):
    """2.0.1: the message type number is not 2, 3 or 4."""

    code = "MessageTypeNotSupported"
    default_description = "A message with a message type number that is not supported was received"


class CommandError(Exception):
    """A command to a station did not produce an answer to act on."""

    #: A short word stored beside records of the command (e.g. a charging profile's status).
    status_word = "Error"


class StationNotConnectedError(CommandError):
    """The station has no open connection to this CSMS (or lost it while the command waited)."""

    status_word = "NotConnected"


class CommandTimeoutError(CommandError):
    """The station did not answer in time."""

    status_word = "Timeout"


class CommandNotSupportedError(CommandError):
    """The command, or one of its arguments, does not exist in the station's OCPP version."""

    status_word = "NotSupported"


class InvalidCommandError(CommandError, ValueError):
    """The command's arguments would make a message that breaks the OCPP schema."""

    status_word = "Invalid"


class CallErrorResponse(CommandError):
    """The station answered with a CALLERROR."""

    def __init__(self, code: str, description: str, details: Any) -> None:
        super().__init__(f"station answered CALLERROR {code}: {description}")
        self.code = code
        self.description = description
        self.details = details

    @property
    def status_word(self) -> str:  # type: ignore[override]
        return f"CallError:{self.code}"


class InvalidAnswerError(CommandError):
    """The station's answer breaks the OCPP schema."""

    status_word = "InvalidAnswer"
