"""Commands only OCPP 2.0.1 has, and 2.0.1 arguments on common commands, through the version-neutral interface
against a 2.0.1 station over real websockets: the device model (GetVariables, SetVariables, GetBaseReport),
GetChargingProfiles, and the remote start id that ties a RequestStartTransaction to the session it starts.
The commands both versions have are in ``test_commands.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ocpp.v201 import call
from sqlalchemy import select

from optivgi_csms.domain.charging_profile import ProfilePurpose
from optivgi_csms.domain.device_model import VariableRef, VariableResult
from optivgi_csms.protocol.commands import ReportBase, TriggerableMessage
from optivgi_csms.protocol.errors import InvalidCommandError
from optivgi_csms.server.app import Csms
from optivgi_csms.services.device_model import ref_of
from optivgi_csms.store.models import (
    DeviceVariable,
    ReportedChargingProfile,
    Transaction,
    TransactionEventRecord,
)
from tests.support.driver import connect
from tests.support.stations import wait_connected

HEARTBEAT = VariableRef("OCPPCommCtrlr", "HeartbeatInterval")
ENABLED = VariableRef("SmartChargingCtrlr", "Enabled")
STACK_LEVEL = VariableRef("SmartChargingCtrlr", "ProfileStackLevel")
EVSE_POWER = VariableRef("EVSE", "Power", evse_id=1, attribute="MaxSet")
NO_VARIABLE = VariableRef("OCPPCommCtrlr", "NoSuchVariable")
NO_COMPONENT = VariableRef("NoSuchCtrlr", "Enabled")


async def device_model(csms: Csms, station_id: str) -> dict[VariableRef, str | None]:
    async with csms.database.read() as session:
        rows = await session.scalars(select(DeviceVariable).where(DeviceVariable.station_id == station_id))
        return {ref_of(row): row.value for row in rows}


async def test_get_variables_reads_and_stores_what_was_read(csms) -> None:
    async with connect(csms, "CP-1", "2.0.1") as station:
        station.station.variables[("EVSE", "Power")] = "22000"
        commands = await wait_connected(csms, "CP-1")

        results = await commands.get_variables([HEARTBEAT, EVSE_POWER, STACK_LEVEL, NO_VARIABLE, NO_COMPONENT])
        assert station.last("GetVariables") == {
            "get_variable_data": [
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "attribute_type": "Actual",
                },
                {
                    "component": {"name": "EVSE", "evse": {"id": 1}},
                    "variable": {"name": "Power"},
                    "attribute_type": "MaxSet",
                },
                {
                    "component": {"name": "SmartChargingCtrlr"},
                    "variable": {"name": "ProfileStackLevel"},
                    "attribute_type": "Actual",
                },
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "NoSuchVariable"},
                    "attribute_type": "Actual",
                },
                {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "Enabled"}, "attribute_type": "Actual"},
            ]
        }
        assert results == [
            VariableResult(HEARTBEAT, "Accepted", "300"),
            VariableResult(EVSE_POWER, "Accepted", "22000"),
            VariableResult(STACK_LEVEL, "Accepted", "8"),
            VariableResult(NO_VARIABLE, "UnknownVariable"),
            VariableResult(NO_COMPONENT, "UnknownComponent"),
        ]

        with pytest.raises(InvalidCommandError, match="at least one variable"):
            await commands.get_variables([])
        assert station.received().count("GetVariables") == 1

    # what was read is remembered; what the station does not know is not invented
    assert await device_model(csms, "CP-1") == {HEARTBEAT: "300", EVSE_POWER: "22000", STACK_LEVEL: "8"}


async def test_set_variables_stores_only_the_accepted_values(csms) -> None:
    async with connect(csms, "CP-1", "2.0.1") as station:
        commands = await wait_connected(csms, "CP-1")
        await commands.get_variables([STACK_LEVEL])  # known to the CSMS as 8

        results = await commands.set_variables({HEARTBEAT: "60", STACK_LEVEL: "4", NO_VARIABLE: "1"})
        assert station.last("SetVariables") == {
            "set_variable_data": [
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "attribute_type": "Actual",
                    "attribute_value": "60",
                },
                {
                    "component": {"name": "SmartChargingCtrlr"},
                    "variable": {"name": "ProfileStackLevel"},
                    "attribute_type": "Actual",
                    "attribute_value": "4",
                },
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "NoSuchVariable"},
                    "attribute_type": "Actual",
                    "attribute_value": "1",
                },
            ]
        }
        assert [(result.ref, result.status) for result in results] == [
            (HEARTBEAT, "Accepted"),
            (STACK_LEVEL, "Rejected"),  # read-only on this station
            (NO_VARIABLE, "UnknownVariable"),
        ]
        assert station.station.variables[("OCPPCommCtrlr", "HeartbeatInterval")] == "60"

        with pytest.raises(InvalidCommandError, match="at least one variable"):
            await commands.set_variables({})

        # a read after the set agrees with what the CSMS stored
        assert await commands.get_variables([HEARTBEAT]) == [VariableResult(HEARTBEAT, "Accepted", "60")]

    # the accepted value is stored (SetVariables answers do not echo it); the rejected one changed nothing
    assert await device_model(csms, "CP-1") == {HEARTBEAT: "60", STACK_LEVEL: "8"}


async def test_get_base_report_carries_the_request_id_its_reports_quote(csms) -> None:
    async with connect(csms, "CP-1", "2.0.1") as station:
        commands = await wait_connected(csms, "CP-1")
        answer = await commands.get_base_report(ReportBase.CONFIGURATION_INVENTORY)
        assert answer.accepted
        request_id = answer.details["request_id"]
        assert isinstance(request_id, int) and request_id > 0
        assert station.last("GetBaseReport") == {"request_id": request_id, "report_base": "ConfigurationInventory"}

        station.answer("GetBaseReport", "NotSupported")
        answer = await commands.get_base_report()
        assert answer.status == "NotSupported" and not answer.accepted
        assert station.last("GetBaseReport") == {
            "request_id": answer.details["request_id"],
            "report_base": "FullInventory",
        }
        assert answer.details["request_id"] != request_id

        # the station reports under the first request's id, and the CSMS keeps what it reported
        await station.call(
            call.NotifyReport(
                request_id=request_id,
                generated_at="2026-03-02T08:00:00Z",
                seq_no=0,
                report_data=[
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                        "variable_attribute": [{"type": "Actual", "value": "300", "mutability": "ReadWrite"}],
                        "variable_characteristics": {"data_type": "integer", "supports_monitoring": False},
                    }
                ],
            )
        )
    async with csms.database.read() as session:
        (row,) = (await session.scalars(select(DeviceVariable))).all()
    assert (ref_of(row), row.value, row.mutability, row.data_type) == (HEARTBEAT, "300", "ReadWrite", "integer")


async def test_get_charging_profiles_carries_the_request_id_its_reports_quote(csms) -> None:
    async with connect(csms, "CP-1", "2.0.1") as station:
        commands = await wait_connected(csms, "CP-1")
        answer = await commands.get_charging_profiles(
            evse_id=1, purpose=ProfilePurpose.TX_DEFAULT, stack_level=0, profile_ids=[3, 4]
        )
        assert answer.accepted
        request_id = answer.details["request_id"]
        assert station.last("GetChargingProfiles") == {
            "request_id": request_id,
            "evse_id": 1,
            "charging_profile": {
                "charging_profile_purpose": "TxDefaultProfile",
                "stack_level": 0,
                "charging_profile_id": [3, 4],
            },
        }

        station.answer("GetChargingProfiles", "NoProfiles")
        answer = await commands.get_charging_profiles()  # every profile on every EVSE
        assert answer.status == "NoProfiles"
        assert station.last("GetChargingProfiles") == {
            "request_id": answer.details["request_id"],
            "charging_profile": {},
        }

        await station.call(
            call.ReportChargingProfiles(
                request_id=request_id,
                charging_limit_source="CSO",
                evse_id=1,
                charging_profile=[
                    {
                        "id": 3,
                        "stack_level": 0,
                        "charging_profile_purpose": "TxDefaultProfile",
                        "charging_profile_kind": "Absolute",
                        "charging_schedule": [
                            {
                                "id": 1,
                                "start_schedule": "2026-03-02T08:00:00Z",
                                "charging_rate_unit": "A",
                                "charging_schedule_period": [{"start_period": 0, "limit": 16.0}],
                            }
                        ],
                    }
                ],
            )
        )
    async with csms.database.read() as session:
        (row,) = (await session.scalars(select(ReportedChargingProfile))).all()
    assert (row.station_id, row.request_id, row.evse_id, row.source) == ("CP-1", request_id, 1, "CSO")
    assert (row.profile["id"], row.profile["purpose"], row.profile["schedule"]["periods"][0]["limit"]) == (
        3,
        "TxDefault",
        16.0,
    )


async def test_a_remote_start_id_ties_the_request_to_the_session_it_starts(csms) -> None:
    async with connect(csms, "CP-1", "2.0.1") as station:
        commands = await wait_connected(csms, "CP-1")
        answer = await commands.remote_start("TAG-1", evse_id=1)
        remote_start_id = answer.details["remote_start_id"]
        assert station.remote_start_id() == remote_start_id

        # the station starts the session and quotes the id in its TransactionEvents
        session = await station.start("TAG-1", remote_start_id=remote_start_id, transaction_id="TX-REMOTE-1")
        other = await station.start("TAG-2", evse_id=2, timestamp="2026-03-02T08:05:00Z")
    async with csms.database.read() as db:
        transaction = await db.get(Transaction, session.id)
        local = await db.get(Transaction, other.id)
        event = await db.scalar(
            select(TransactionEventRecord).where(TransactionEventRecord.transaction_id == session.id)
        )
    assert (transaction.ocpp_transaction_id, transaction.remote_start_id) == ("TX-REMOTE-1", remote_start_id)
    assert (transaction.id_tag, transaction.id_token_type, transaction.evse_id) == ("TAG-1", "ISO14443", 1)
    assert (event.trigger_reason, event.remote_start_id) == ("RemoteStart", remote_start_id)
    assert local.remote_start_id is None  # started at the station, not by the CSMS


async def test_remote_start_token_type_and_the_stations_transaction_id(csms) -> None:
    async with connect(csms, "CP-1", "2.0.1") as station:
        commands = await wait_connected(csms, "CP-1")
        # a station that had already started a session (cable plugged in first) names it in its answer
        station.station.started_transaction_id = "TX-PLUGGED"
        answer = await commands.remote_start("04A2B3C4", evse_id=1, id_token_type="ISO14443")
        assert answer.accepted and answer.details["transaction_id"] == "TX-PLUGGED"
        assert station.last("RemoteStart")["id_token"] == {"id_token": "04A2B3C4", "type": "ISO14443"}


async def test_arguments_only_201_has(csms) -> None:
    async with connect(csms, "CP-1", "2.0.1") as station:
        commands = await wait_connected(csms, "CP-1")
        # an EVSE with several connectors: 2.0.1 names the connector
        assert (await commands.unlock_connector(1, connector_id=2)).status == "Unlocked"
        assert station.last("UnlockConnector") == {"evse_id": 1, "connector_id": 2}

        assert (await commands.trigger_message(TriggerableMessage.TRANSACTION_EVENT, evse_id=1)).accepted
        assert station.last("TriggerMessage") == {"requested_message": "TransactionEvent", "evse": {"id": 1}}

        reservation = await commands.reserve_now(
            2, "04A2B3C4", datetime(2030, 1, 1, 12, tzinfo=UTC), id_token_type="ISO14443"
        )
        assert reservation.accepted
        assert station.last("ReserveNow")["id_token"] == {"id_token": "04A2B3C4", "type": "ISO14443"}
        assert station.last("ReserveNow")["evse_id"] == 2
