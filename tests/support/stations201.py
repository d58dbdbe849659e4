"""A 2.0.1 test station built from the ``ocpp`` library's ``ocpp.v201.ChargePoint``, talking to the CSMS over a real
websocket; the 2.0.1 counterpart of :class:`tests.support.stations.Station16`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result
from ocpp.v201.enums import Action

from optivgi_csms.server.app import Csms
from tests.support.stations import basic_auth, station_url, wait_registered

# A device-model attribute as the station keys it: (component, variable).
Attribute = tuple[str, str]


class Station201(ChargePoint201):
    """A 2.0.1 station that answers every CSMS command and remembers what it was asked.

    ``answers`` overrides the status of a command by action name (default ``Accepted``; ``Unlocked`` for
    UnlockConnector); ``received`` lists ``(action, payload)`` in arrival order, payloads in snake_case.
    GetVariables and SetVariables are answered from ``variables`` (``readonly`` ones refuse to be set);
    GetCompositeSchedule from ``composite_schedule``; RequestStartTransaction carries
    ``started_transaction_id`` when it is set (the station had already started a session, e.g. on plug-in).
    """

    def __init__(self, station_id: str, connection: Any) -> None:
        super().__init__(station_id, connection, response_timeout=5)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, Any] = {}
        self.variables: dict[Attribute, str] = {
            ("OCPPCommCtrlr", "HeartbeatInterval"): "300",
            ("SmartChargingCtrlr", "Enabled"): "true",
            ("SmartChargingCtrlr", "ProfileStackLevel"): "8",
        }
        self.readonly: set[Attribute] = {("SmartChargingCtrlr", "ProfileStackLevel")}
        # The composite schedule's rate unit and periods (chargingSchedulePeriod, snake_case), or None.
        self.composite_schedule: dict[str, Any] | None = None
        self.started_transaction_id: str | None = None

    def _got(self, action: str, payload: dict[str, Any], default: str = "Accepted") -> str:
        self.received.append((action, payload))
        return self.answers.get(action, default)

    def last(self, action: str) -> dict[str, Any]:
        """The payload of the last command named ``action``."""
        for name, payload in reversed(self.received):
            if name == action:
                return payload
        raise AssertionError(f"no {action} received; got {[name for name, _ in self.received]}")

    def _variable_status(self, component: str, variable: str) -> str:
        if (component, variable) in self.variables:
            return "Accepted"
        known = {name for name, _ in self.variables}
        return "UnknownVariable" if component in known else "UnknownComponent"

    @on(Action.request_start_transaction)
    def request_start(self, **payload: Any) -> Any:
        return call_result.RequestStartTransaction(
            status=self._got("RequestStartTransaction", payload), transaction_id=self.started_transaction_id
        )

    @on(Action.request_stop_transaction)
    def request_stop(self, **payload: Any) -> Any:
        return call_result.RequestStopTransaction(status=self._got("RequestStopTransaction", payload))

    @on(Action.reset)
    def reset(self, **payload: Any) -> Any:
        return call_result.Reset(status=self._got("Reset", payload))

    @on(Action.change_availability)
    def change_availability(self, **payload: Any) -> Any:
        return call_result.ChangeAvailability(status=self._got("ChangeAvailability", payload))

    @on(Action.get_variables)
    def get_variables(self, **payload: Any) -> Any:
        self._got("GetVariables", payload)
        results = []
        for entry in payload["get_variable_data"]:
            component, variable = entry["component"]["name"], entry["variable"]["name"]
            status = self._variable_status(component, variable)
            result = {
                "attribute_status": status,
                "component": entry["component"],
                "variable": entry["variable"],
                "attribute_type": entry.get("attribute_type", "Actual"),
            }
            if status == "Accepted":
                result["attribute_value"] = self.variables[(component, variable)]
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.set_variables)
    def set_variables(self, **payload: Any) -> Any:
        self._got("SetVariables", payload)
        results = []
        for entry in payload["set_variable_data"]:
            key = (entry["component"]["name"], entry["variable"]["name"])
            status = self._variable_status(*key)
            if status == "Accepted" and key in self.readonly:
                status = "Rejected"
            if status == "Accepted":
                self.variables[key] = entry["attribute_value"]
            results.append(
                {
                    "attribute_status": status,
                    "component": entry["component"],
                    "variable": entry["variable"],
                    "attribute_type": entry.get("attribute_type", "Actual"),
                }
            )
        return call_result.SetVariables(set_variable_result=results)

    @on(Action.get_base_report)
    def get_base_report(self, **payload: Any) -> Any:
        return call_result.GetBaseReport(status=self._got("GetBaseReport", payload))

    @on(Action.unlock_connector)
    def unlock_connector(self, **payload: Any) -> Any:
        return call_result.UnlockConnector(status=self._got("UnlockConnector", payload, "Unlocked"))

    @on(Action.trigger_message)
    def trigger_message(self, **payload: Any) -> Any:
        return call_result.TriggerMessage(status=self._got("TriggerMessage", payload))

    @on(Action.clear_cache)
    def clear_cache(self, **payload: Any) -> Any:
        return call_result.ClearCache(status=self._got("ClearCache", payload))

    @on(Action.set_charging_profile)
    def set_charging_profile(self, **payload: Any) -> Any:
        return call_result.SetChargingProfile(status=self._got("SetChargingProfile", payload))

    @on(Action.clear_charging_profile)
    def clear_charging_profile(self, **payload: Any) -> Any:
        return call_result.ClearChargingProfile(status=self._got("ClearChargingProfile", payload))

    @on(Action.get_charging_profiles)
    def get_charging_profiles(self, **payload: Any) -> Any:
        return call_result.GetChargingProfiles(status=self._got("GetChargingProfiles", payload))

    @on(Action.get_composite_schedule)
    def get_composite_schedule(self, **payload: Any) -> Any:
        status = self._got("GetCompositeSchedule", payload)
        schedule = None
        if self.composite_schedule is not None:
            schedule = {
                "evse_id": payload["evse_id"],
                "duration": payload["duration"],
                "schedule_start": "2026-03-02T08:00:00Z",
                **self.composite_schedule,
            }
        return call_result.GetCompositeSchedule(status=status, schedule=schedule)

    @on(Action.reserve_now)
    def reserve_now(self, **payload: Any) -> Any:
        return call_result.ReserveNow(status=self._got("ReserveNow", payload))

    @on(Action.cancel_reservation)
    def cancel_reservation(self, **payload: Any) -> Any:
        return call_result.CancelReservation(status=self._got("CancelReservation", payload))


@contextlib.asynccontextmanager
async def connect201(
    csms: Csms, station_id: str, *, password: str | None = None, prefix: str = ""
) -> AsyncIterator[Station201]:
    """A running :class:`Station201` connected to ``csms`` (offering only ``ocpp2.0.1``)."""
    headers = basic_auth(station_id, password) if password is not None else None
    async with websockets.connect(
        station_url(csms, station_id, prefix), subprotocols=["ocpp2.0.1"], additional_headers=headers
    ) as connection:
        station = Station201(station_id, connection)
        task = asyncio.create_task(station.start())
        await wait_registered(csms, station_id)
        try:
            yield station
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task
