"""A station connected to another node, behind the same :class:`StationCommands` interface as a local one.

Every command is sent whole to the node holding the station's websocket and run there on its session, so
the records a command keeps (profiles sent, reservations, device-model values) are written exactly as on
one node, once. Which node that is is looked up at each call: a station that reconnected elsewhere is
followed, and one that nobody holds raises :class:`StationNotConnectedError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from optivgi_csms.domain.charging_profile import ChargingProfile, ProfilePurpose, RateUnit
from optivgi_csms.domain.device_model import VariableRef, VariableResult
from optivgi_csms.protocol.commands import (
    CommandAnswer,
    CompositeScheduleAnswer,
    ConfigurationAnswer,
    ReportBase,
    ReservationAnswer,
    ResetKind,
    StationCommands,
    TriggerableMessage,
)

#: Sends (station id, method, args, kwargs) to the station's node; returns the answer and its OCPP version.
Route = Callable[[str, str, tuple[Any, ...], dict[str, Any]], Awaitable[tuple[Any, str]]]


class RemoteStation(StationCommands):
    """Commands to a station whose websocket is on another node of the cluster."""

    def __init__(self, station_id: str, route: Route, ocpp_version: str = "") -> None:
        self.station_id = station_id
        self._route = route
        self._version = ocpp_version

    @property
    def ocpp_version(self) -> str:
        """The station's OCPP version as its node last said (empty before anything was heard)."""
        return self._version

    @ocpp_version.setter
    def ocpp_version(self, version: str) -> None:
        self._version = version

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result, version = await self._route(self.station_id, method, args, kwargs)
        if version:
            self._version = version
        return result

    # --- the public commands, each sent whole to the owning node ------------------------------------------

    async def reset(self, kind: ResetKind = ResetKind.SOFT) -> CommandAnswer:
        return await self._call("reset", kind)

    async def change_availability(self, evse_id: int, operative: bool) -> CommandAnswer:
        return await self._call("change_availability", evse_id, operative)

    async def get_configuration(self, keys: Sequence[str] = ()) -> ConfigurationAnswer:
        return await self._call("get_configuration", tuple(keys))

    async def change_configuration(self, key: str, value: str) -> CommandAnswer:
        return await self._call("change_configuration", key, value)

    async def unlock_connector(self, evse_id: int, connector_id: int = 1) -> CommandAnswer:
        return await self._call("unlock_connector", evse_id, connector_id)

    async def trigger_message(self, message: TriggerableMessage, evse_id: int | None = None) -> CommandAnswer:
        return await self._call("trigger_message", message, evse_id)

    async def clear_cache(self) -> CommandAnswer:
        return await self._call("clear_cache")

    async def get_composite_schedule(
        self, evse_id: int, duration_s: int, unit: RateUnit | None = None
    ) -> CompositeScheduleAnswer:
        return await self._call("get_composite_schedule", evse_id, duration_s, unit)

    async def get_base_report(self, report: ReportBase = ReportBase.FULL_INVENTORY) -> CommandAnswer:
        return await self._call("get_base_report", report)

    async def get_variables(self, refs: Sequence[VariableRef]) -> list[VariableResult]:
        return await self._call("get_variables", list(refs))

    async def set_variables(self, values: Mapping[VariableRef, str]) -> list[VariableResult]:
        return await self._call("set_variables", dict(values))

    async def get_charging_profiles(
        self,
        *,
        evse_id: int | None = None,
        purpose: ProfilePurpose | None = None,
        stack_level: int | None = None,
        profile_ids: Sequence[int] = (),
    ) -> CommandAnswer:
        return await self._call(
            "get_charging_profiles",
            evse_id=evse_id,
            purpose=purpose,
            stack_level=stack_level,
            profile_ids=tuple(profile_ids),
        )

    async def remote_start(
        self,
        id_tag: str,
        *,
        evse_id: int | None = None,
        charging_profile: ChargingProfile | None = None,
        id_token_type: str | None = None,
    ) -> CommandAnswer:
        return await self._call(
            "remote_start", id_tag, evse_id=evse_id, charging_profile=charging_profile, id_token_type=id_token_type
        )

    async def remote_stop(self, transaction_id: int) -> CommandAnswer:
        return await self._call("remote_stop", transaction_id)

    async def set_charging_profile(self, evse_id: int, profile: ChargingProfile) -> CommandAnswer:
        return await self._call("set_charging_profile", evse_id, profile)

    async def clear_charging_profile(
        self,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: ProfilePurpose | None = None,
        stack_level: int | None = None,
    ) -> CommandAnswer:
        return await self._call(
            "clear_charging_profile", profile_id=profile_id, evse_id=evse_id, purpose=purpose, stack_level=stack_level
        )

    async def reserve_now(
        self,
        evse_id: int,
        id_tag: str,
        expires_at: datetime,
        *,
        parent_id_tag: str | None = None,
        id_token_type: str | None = None,
    ) -> ReservationAnswer:
        return await self._call(
            "reserve_now", evse_id, id_tag, expires_at, parent_id_tag=parent_id_tag, id_token_type=id_token_type
        )

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
        return await self._call(
            "send_stored_reservation",
            reservation_id,
            evse_id,
            id_tag,
            expires_at,
            parent_id_tag=parent_id_tag,
            id_token_type=id_token_type,
        )

    async def cancel_reservation(self, reservation_id: int) -> CommandAnswer:
        return await self._call("cancel_reservation", reservation_id)

    # --- the version translations run on the owning node, never here ----------------------------------------

    def _remote_only(self) -> NotImplementedError:
        return NotImplementedError("a remote station's commands are translated on its own node")

    async def _send_remote_start(
        self, id_tag: str, id_token_type: str | None, evse_id: int | None, charging_profile: ChargingProfile | None
    ) -> CommandAnswer:
        raise self._remote_only()

    async def _send_remote_stop(self, ocpp_transaction_id: int | str) -> CommandAnswer:
        raise self._remote_only()

    async def _send_set_charging_profile(
        self, evse_id: int, profile: ChargingProfile, ocpp_transaction_id: int | str | None
    ) -> CommandAnswer:
        raise self._remote_only()

    async def _send_clear_charging_profile(
        self, profile_id: int | None, evse_id: int | None, purpose: ProfilePurpose | None, stack_level: int | None
    ) -> CommandAnswer:
        raise self._remote_only()

    async def _send_reserve_now(
        self,
        reservation_id: int,
        evse_id: int,
        id_tag: str,
        id_token_type: str | None,
        expires_at: datetime,
        parent_id_tag: str | None,
    ) -> CommandAnswer:
        raise self._remote_only()

    async def _send_cancel_reservation(self, reservation_id: int) -> CommandAnswer:
        raise self._remote_only()
