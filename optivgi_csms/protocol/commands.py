"""The version-neutral command interface: what the CSMS can ask of a connected station.

Callers (the API, smart charging, tests) hold a :class:`StationCommands` from the registry and never
branch on the OCPP version. Commands whose effect must be remembered (profiles, reservations) are
recorded here, around the version adapter's translation; the adapters only translate.

Every command returns the station's answer or raises a
:class:`~optivgi_csms.protocol.errors.CommandError`: not connected, timeout, CALLERROR, an invalid
answer, or a command the station's version does not have.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from optivgi_csms.domain.charging_profile import ChargingProfile, CompositeSchedule, ProfilePurpose, RateUnit
from optivgi_csms.domain.device_model import VariableRef, VariableResult
from optivgi_csms.domain.reservation import ReservationStatus
from optivgi_csms.protocol.errors import CommandError, CommandNotSupportedError, InvalidCommandError
from optivgi_csms.services import Services
from optivgi_csms.services.transactions import UnknownTransactionError


class ResetKind(StrEnum):
    """Soft: restart the software, after sessions end where the version allows. Hard: now."""

    SOFT = "Soft"
    HARD = "Hard"


class TriggerableMessage(StrEnum):
    """Messages a station can be asked to send now (names shared by 1.6 and 2.0.1 where they exist)."""

    BOOT_NOTIFICATION = "BootNotification"
    HEARTBEAT = "Heartbeat"
    METER_VALUES = "MeterValues"
    STATUS_NOTIFICATION = "StatusNotification"
    FIRMWARE_STATUS_NOTIFICATION = "FirmwareStatusNotification"
    DIAGNOSTICS_STATUS_NOTIFICATION = "DiagnosticsStatusNotification"  # 1.6 only
    LOG_STATUS_NOTIFICATION = "LogStatusNotification"  # 2.0.1 only
    TRANSACTION_EVENT = "TransactionEvent"  # 2.0.1 only


class ReportBase(StrEnum):
    """What a 2.0.1 GetBaseReport asks for."""

    CONFIGURATION_INVENTORY = "ConfigurationInventory"
    FULL_INVENTORY = "FullInventory"
    SUMMARY_INVENTORY = "SummaryInventory"


@dataclass(frozen=True)
class CommandAnswer:
    """A station's answer: its status word and the rest of the payload (snake_case keys)."""

    status: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        """Whether the station said ``Accepted``."""
        return self.status == "Accepted"


@dataclass(frozen=True)
class ConfigurationKey:
    """One configuration key (1.6) as the station reported it."""

    key: str
    value: str | None
    readonly: bool


@dataclass(frozen=True)
class ConfigurationAnswer:
    """The answer to GetConfiguration."""

    keys: tuple[ConfigurationKey, ...]
    unknown_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompositeScheduleAnswer:
    """The answer to GetCompositeSchedule."""

    status: str
    composite: CompositeSchedule | None = None


@dataclass(frozen=True)
class ReservationAnswer:
    """The answer to ReserveNow, with the reservation id the CSMS allocated."""

    reservation_id: int
    status: str

    @property
    def accepted(self) -> bool:
        """Whether the station holds the reservation."""
        return self.status == "Accepted"


class StationCommands(ABC):
    """Commands to one connected station, the same for every OCPP version."""

    station_id: str
    services: Services

    @property
    @abstractmethod
    def ocpp_version(self) -> str:
        """The OCPP version the station speaks (``1.6`` or ``2.0.1``)."""

    # --- plain commands: the adapter translates, nothing to record ------------------------------

    @abstractmethod
    async def reset(self, kind: ResetKind = ResetKind.SOFT) -> CommandAnswer:
        """Restart the station."""

    @abstractmethod
    async def change_availability(self, evse_id: int, operative: bool) -> CommandAnswer:
        """Make an EVSE (0: the whole station) operative or inoperative."""

    async def get_configuration(self, keys: Sequence[str] = ()) -> ConfigurationAnswer:
        """Read 1.6 configuration keys (all of them when ``keys`` is empty)."""
        raise self._lacks("GetConfiguration", "get_variables")

    async def change_configuration(self, key: str, value: str) -> CommandAnswer:
        """Set one 1.6 configuration key."""
        raise self._lacks("ChangeConfiguration", "set_variables")

    @abstractmethod
    async def unlock_connector(self, evse_id: int, connector_id: int = 1) -> CommandAnswer:
        """Release the cable on a connector."""

    @abstractmethod
    async def trigger_message(self, message: TriggerableMessage, evse_id: int | None = None) -> CommandAnswer:
        """Ask the station to send ``message`` now."""

    @abstractmethod
    async def clear_cache(self) -> CommandAnswer:
        """Empty the station's authorization cache."""

    @abstractmethod
    async def get_composite_schedule(
        self, evse_id: int, duration_s: int, unit: RateUnit | None = None
    ) -> CompositeScheduleAnswer:
        """The schedule the station will apply on ``evse_id`` for the next ``duration_s`` seconds."""

    async def get_base_report(self, report: ReportBase = ReportBase.FULL_INVENTORY) -> CommandAnswer:
        """Ask a 2.0.1 station to report its device model (it answers with NotifyReport messages, which are
        stored); the answer's details carry the ``request_id`` those messages will quote."""
        raise self._lacks("GetBaseReport", "get_configuration")

    def _lacks(self, action: str, instead: str) -> CommandNotSupportedError:
        return CommandNotSupportedError(f"OCPP {self.ocpp_version} has no {action} (use {instead})")

    # --- commands with a record: shared here, translated by ``_send_*`` -----------------------

    async def get_variables(self, refs: Sequence[VariableRef]) -> list[VariableResult]:
        """Read device-model variables (2.0.1); the values read are stored in the device model."""
        results = await self._send_get_variables(refs)
        await self.services.device_model.learned(self.station_id, results, values={})
        return results

    async def set_variables(self, values: Mapping[VariableRef, str]) -> list[VariableResult]:
        """Set device-model variables (2.0.1); the values accepted are stored in the device model."""
        results = await self._send_set_variables(values)
        await self.services.device_model.learned(self.station_id, results, values=dict(values))
        return results

    async def get_charging_profiles(
        self,
        *,
        evse_id: int | None = None,
        purpose: ProfilePurpose | None = None,
        stack_level: int | None = None,
        profile_ids: Sequence[int] = (),
    ) -> CommandAnswer:
        """Ask a 2.0.1 station which profiles it has installed (it reports them with ReportChargingProfiles,
        which are stored); the answer's details carry the ``request_id`` those reports will quote."""
        return await self._send_get_charging_profiles(new_request_id(), evse_id, purpose, stack_level, profile_ids)

    async def remote_start(
        self,
        id_tag: str,
        *,
        evse_id: int | None = None,
        charging_profile: ChargingProfile | None = None,
        id_token_type: str | None = None,
    ) -> CommandAnswer:
        """Ask the station to start a session for ``id_tag``, optionally under a Tx profile (then recorded
        with the station's answer to the start). ``id_token_type`` is the 2.0.1 token type (default
        ``Central``: a token the CSMS issued); 1.6 has none."""
        if charging_profile is None:
            return await self._send_remote_start(id_tag, id_token_type, evse_id, None)
        if charging_profile.purpose is not ProfilePurpose.TX or charging_profile.transaction_id is not None:
            raise InvalidCommandError("a profile sent with a remote start must be a Tx profile without a transaction")
        return await self._recorded(
            evse_id or 0,
            charging_profile,
            lambda: self._send_remote_start(id_tag, id_token_type, evse_id, charging_profile),
        )

    async def remote_stop(self, transaction_id: int) -> CommandAnswer:
        """Ask the station to stop the CSMS's transaction ``transaction_id``."""
        try:
            ocpp_id = await self.services.transactions.ocpp_id(self.station_id, transaction_id)
        except UnknownTransactionError as error:
            raise InvalidCommandError(str(error)) from None
        return await self._send_remote_stop(ocpp_id)

    async def set_charging_profile(self, evse_id: int, profile: ChargingProfile) -> CommandAnswer:
        """Install ``profile`` on ``evse_id`` (0: the whole station); the profile and answer are recorded."""
        if profile.purpose is ProfilePurpose.STATION_MAX and evse_id != 0:
            raise InvalidCommandError("a station-maximum profile applies to EVSE 0 only")
        if profile.purpose is ProfilePurpose.EXTERNAL_CONSTRAINTS:
            raise InvalidCommandError("external-constraint profiles are set by local energy managers, not by the CSMS")
        transaction_ref = None
        if profile.transaction_id is not None:
            try:
                transaction_ref = await self.services.transactions.ocpp_id(self.station_id, profile.transaction_id)
            except UnknownTransactionError as error:
                raise InvalidCommandError(str(error)) from None
        return await self._recorded(
            evse_id, profile, lambda: self._send_set_charging_profile(evse_id, profile, transaction_ref)
        )

    async def _recorded(
        self, evse_id: int, profile: ChargingProfile, send: Callable[[], Awaitable[CommandAnswer]]
    ) -> CommandAnswer:
        """Record ``profile`` as sent, send it, and record the station's answer (or why there was none)."""
        record_id = await self.services.charging_profiles.sent(self.station_id, evse_id, profile)
        try:
            answer = await send()
        except CommandError as error:
            await self.services.charging_profiles.answered(record_id, error.status_word)
            raise
        await self.services.charging_profiles.answered(record_id, answer.status)
        return answer

    async def clear_charging_profile(
        self,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: ProfilePurpose | None = None,
        stack_level: int | None = None,
    ) -> CommandAnswer:
        """Remove the profiles matching every given filter (all of them when none is given)."""
        answer = await self._send_clear_charging_profile(profile_id, evse_id, purpose, stack_level)
        if answer.accepted:
            await self.services.charging_profiles.cleared(
                self.station_id, profile_id=profile_id, evse_id=evse_id, purpose=purpose, stack_level=stack_level
            )
        return answer

    async def reserve_now(
        self,
        evse_id: int,
        id_tag: str,
        expires_at: datetime,
        *,
        parent_id_tag: str | None = None,
        id_token_type: str | None = None,
    ) -> ReservationAnswer:
        """Reserve ``evse_id`` (0: any) for ``id_tag`` until ``expires_at``; the reservation is recorded."""
        if expires_at.tzinfo is None:
            raise InvalidCommandError("the reservation's expiry must carry a time zone")
        reservation_id = await self.services.reservations.create(
            self.station_id, evse_id, id_tag, expires_at, parent_id_tag
        )
        try:
            answer = await self._send_reserve_now(
                reservation_id, evse_id, id_tag, id_token_type, expires_at, parent_id_tag
            )
        except CommandError:
            await self.services.reservations.set_status(reservation_id, ReservationStatus.FAILED)
            raise
        await self.services.reservations.set_status(reservation_id, answer.status)
        return ReservationAnswer(reservation_id, answer.status)

    async def send_stored_reservation(
        self,
        reservation_id: int,
        evse_id: int,
        id_tag: str,
        expires_at: datetime,
        *,
        parent_id_tag: str | None = None,
        id_token_type: str | None = None,
    ) -> CommandAnswer:
        """Send ReserveNow for a reservation the caller has stored and will record (a window reserved ahead
        of time keeps its id when it is finally sent); :meth:`reserve_now` stores and records by itself."""
        if expires_at.tzinfo is None:
            raise InvalidCommandError("the reservation's expiry must carry a time zone")
        return await self._send_reserve_now(reservation_id, evse_id, id_tag, id_token_type, expires_at, parent_id_tag)

    async def cancel_reservation(self, reservation_id: int) -> CommandAnswer:
        """Cancel a reservation; the row is marked cancelled when the station accepts."""
        answer = await self._send_cancel_reservation(reservation_id)
        if answer.accepted:
            # Only this station's row: an id sent to the wrong station (which may accept ids it does not
            # hold) must not cancel another station's reservation, which that station still holds.
            await self.services.reservations.station_update(
                self.station_id, reservation_id, ReservationStatus.CANCELLED.value
            )
        return answer

    # --- translations each version adapter provides ------------------------------------------

    @abstractmethod
    async def _send_remote_start(
        self, id_tag: str, id_token_type: str | None, evse_id: int | None, charging_profile: ChargingProfile | None
    ) -> CommandAnswer: ...

    @abstractmethod
    async def _send_remote_stop(self, ocpp_transaction_id: int | str) -> CommandAnswer: ...

    @abstractmethod
    async def _send_set_charging_profile(
        self, evse_id: int, profile: ChargingProfile, ocpp_transaction_id: int | str | None
    ) -> CommandAnswer: ...

    @abstractmethod
    async def _send_clear_charging_profile(
        self, profile_id: int | None, evse_id: int | None, purpose: ProfilePurpose | None, stack_level: int | None
    ) -> CommandAnswer: ...

    @abstractmethod
    async def _send_reserve_now(
        self,
        reservation_id: int,
        evse_id: int,
        id_tag: str,
        id_token_type: str | None,
        expires_at: datetime,
        parent_id_tag: str | None,
    ) -> CommandAnswer: ...

    @abstractmethod
    async def _send_cancel_reservation(self, reservation_id: int) -> CommandAnswer: ...

    async def _send_get_variables(self, refs: Sequence[VariableRef]) -> list[VariableResult]:
        raise self._lacks("GetVariables", "get_configuration")

    async def _send_set_variables(self, values: Mapping[VariableRef, str]) -> list[VariableResult]:
        raise self._lacks("SetVariables", "change_configuration")

    async def _send_get_charging_profiles(
        self,
        request_id: int,
        evse_id: int | None,
        purpose: ProfilePurpose | None,
        stack_level: int | None,
        profile_ids: Sequence[int],
    ) -> CommandAnswer:
        raise self._lacks("GetChargingProfiles", "get_composite_schedule")


def new_request_id() -> int:
    """A request id for commands whose answers arrive later in separate messages (reports)."""
    return secrets.randbelow(2**31 - 2) + 1
