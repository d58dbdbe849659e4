"""``POST /api/v1/stations/{id}/commands/<name>``: each command reaches a real station of either version and its
answer comes back; an unknown station is 404, a disconnected one 409, a silent one 504, a CALLERROR 502, a
command the version lacks 400 naming the one to use, a bad body 422."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.test_stations import started_api
from tests.conftest import CsmsFactory
from tests.smart_charging.helpers import until
from tests.support.driver import VERSIONS, Driver, connect
from tests.support.stations import answer_call_error, connect_raw, next_call, wait_registered

COMMANDS = "/api/v1/stations/{}/commands/{}"


async def command(api: Api, station_id: str, name: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    """POST a command; returns the status code and the JSON answer."""
    response = await api.client.post(COMMANDS.format(station_id, name), json=body)
    return response.status_code, response.json()


async def accepted(api: Api, driver: Driver, name: str, body: Any = None) -> dict[str, Any]:
    """POST a command that must succeed; returns the answer's JSON."""
    code, answer = await command(api, driver.station_id, name, body)
    assert code == 200, (name, answer)
    assert (answer["station_id"], answer["ocpp_version"]) == (driver.station_id, driver.version)
    return answer


@pytest.mark.parametrize("version", VERSIONS)
async def test_each_command_reaches_the_station_and_its_answer_comes_back(api: Api, version: str) -> None:
    v201 = version == "2.0.1"
    async with connect(api.csms, "CS-1", version) as driver:
        await driver.boot()

        answer = await accepted(api, driver, "reset", {"kind": "Hard"})
        assert answer["status"] == "Accepted"
        assert driver.last("Reset") == {"type": "Immediate" if v201 else "Hard"}
        driver.answer("Reset", "Rejected")
        assert (await accepted(api, driver, "reset"))["status"] == "Rejected"  # no body: Soft
        assert driver.last("Reset") == {"type": "OnIdle" if v201 else "Soft"}

        assert (await accepted(api, driver, "change-availability", {"evse_id": 1, "operative": False}))[
            "status"
        ] == "Accepted"
        assert driver.last("ChangeAvailability") == (
            {"operational_status": "Inoperative", "evse": {"id": 1}}
            if v201
            else {"connector_id": 1, "type": "Inoperative"}
        )

        assert (await accepted(api, driver, "unlock", {"evse_id": 2}))["status"] == "Unlocked"
        assert driver.last("UnlockConnector") == ({"evse_id": 2, "connector_id": 1} if v201 else {"connector_id": 2})

        trigger = {"message": "StatusNotification", "evse_id": 1}
        assert (await accepted(api, driver, "trigger-message", trigger))["status"] == "Accepted"
        assert driver.last("TriggerMessage") == (
            {"requested_message": "StatusNotification", "evse": {"id": 1}}
            if v201
            else {"requested_message": "StatusNotification", "connector_id": 1}
        )

        assert (await accepted(api, driver, "clear-cache"))["status"] == "Accepted"
        assert driver.received().count("ClearCache") == 1

        started = await accepted(api, driver, "remote-start", {"id_tag": "TAG-1", "evse_id": 1})
        assert started["status"] == "Accepted"
        sent = driver.last("RemoteStart")
        if v201:
            assert sent["id_token"] == {"id_token": "TAG-1", "type": "Central"} and sent["evse_id"] == 1
            assert started["details"]["remote_start_id"] == sent["remote_start_id"]
        else:
            assert sent == {"id_tag": "TAG-1", "connector_id": 1}

        session = await driver.start("TAG-1", evse_id=1)
        stopped = await accepted(api, driver, "remote-stop", {"transaction_id": session.id})
        assert stopped["status"] == "Accepted"
        assert driver.last("RemoteStop") == {"transaction_id": session.ocpp_id}

        driver.station.composite_schedule = {
            "charging_rate_unit": "A",
            "duration": 3600,
            "charging_schedule_period": [{"start_period": 0, "limit": 16.0}, {"start_period": 900, "limit": 8.5}],
        }
        body = {"evse_id": 1, "duration_s": 3600, "unit": "A"}
        composite = await accepted(api, driver, "get-composite-schedule", body)
        assert composite["status"] == "Accepted"
        assert composite["composite"]["evse_id"] == 1 and composite["composite"]["start"] == "2026-03-02T08:00:00Z"
        schedule = composite["composite"]["schedule"]
        assert schedule["unit"] == "A" and [(p["start_s"], p["limit"]) for p in schedule["periods"]] == [
            (0, 16.0),
            (900, 8.5),
        ]
        driver.station.composite_schedule = None
        driver.answer("GetCompositeSchedule", "Rejected")
        refused = await accepted(api, driver, "get-composite-schedule", {"evse_id": 1, "duration_s": 60})
        assert (refused["status"], refused["composite"]) == ("Rejected", None)


async def test_configuration_on_a_16_station_and_variables_on_a_201_station(api: Api) -> None:
    async with connect(api.csms, "CS-16", "1.6") as old, connect(api.csms, "CS-201", "2.0.1") as new:
        read = await accepted(api, old, "get-configuration", {"keys": ["HeartbeatInterval", "NoSuchKey"]})
        assert read["keys"] == [{"key": "HeartbeatInterval", "value": "300", "readonly": False}]
        assert read["unknown_keys"] == ["NoSuchKey"]
        every = await accepted(api, old, "get-configuration")
        assert {key["key"] for key in every["keys"]} == {"HeartbeatInterval", "ChargeProfileMaxStackLevel"}
        changed = await accepted(api, old, "change-configuration", {"key": "HeartbeatInterval", "value": "60"})
        assert changed["status"] == "Accepted"
        assert old.last("ChangeConfiguration") == {"key": "HeartbeatInterval", "value": "60"}

        wanted = [
            {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"},
            {"component": "OCPPCommCtrlr", "variable": "Nope", "attribute": "Target"},
            {"component": "Nowhere", "variable": "X", "evse_id": 1, "connector_id": 1},
        ]
        values = await accepted(api, new, "get-variables", {"variables": wanted})
        assert [(r["component"], r["variable"], r["status"], r["value"]) for r in values["results"]] == [
            ("OCPPCommCtrlr", "HeartbeatInterval", "Accepted", "300"),
            ("OCPPCommCtrlr", "Nope", "UnknownVariable", None),
            ("Nowhere", "X", "UnknownComponent", None),
        ]
        assert (values["results"][1]["attribute"], values["results"][2]["evse_id"]) == ("Target", 1)
        assert new.last("GetVariables")["get_variable_data"][2]["component"] == {
            "name": "Nowhere",
            "evse": {"id": 1, "connector_id": 1},
        }
        to_set = [
            {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "60"},
            {"component": "SmartChargingCtrlr", "variable": "ProfileStackLevel", "value": "3"},
        ]
        set_answer = await accepted(api, new, "set-variables", {"variables": to_set})
        assert [r["status"] for r in set_answer["results"]] == ["Accepted", "Rejected"]
        assert new.station.variables[("OCPPCommCtrlr", "HeartbeatInterval")] == "60"
        stored = await api.csms.services.device_model.variables("CS-201", "OCPPCommCtrlr")
        assert [(row.variable, row.value) for row in stored] == [("HeartbeatInterval", "60")]

        # Each version asked for the other's command: a 400 naming the endpoint to use.
        for station_id, name, body, instead in (
            ("CS-201", "get-configuration", {}, "get-variables"),
            ("CS-201", "change-configuration", {"key": "K", "value": "v"}, "set-variables"),
            ("CS-16", "get-variables", {"variables": wanted[:1]}, "get-configuration"),
            ("CS-16", "set-variables", {"variables": to_set[:1]}, "change-configuration"),
        ):
            code, answer = await command(api, station_id, name, body)
            assert code == 400, (station_id, name, answer)
            assert answer["detail"].endswith(f"use POST /api/v1/stations/{station_id}/commands/{instead}"), answer
        assert "ChangeConfiguration" not in new.received() and "GetVariables" not in old.received()


async def test_a_command_the_version_lacks_is_a_400_saying_why(api: Api) -> None:
    async with connect(api.csms, "CS-16", "1.6") as old, connect(api.csms, "CS-201", "2.0.1"):
        code, answer = await command(api, "CS-16", "trigger-message", {"message": "LogStatusNotification"})
        assert (code, answer["detail"]) == (400, "OCPP 1.6 cannot trigger LogStatusNotification")
        code, answer = await command(api, "CS-201", "trigger-message", {"message": "DiagnosticsStatusNotification"})
        assert (code, answer["detail"]) == (400, "OCPP 2.0.1 cannot trigger DiagnosticsStatusNotification")
        code, answer = await command(api, "CS-16", "unlock", {"evse_id": 1, "connector_id": 2})
        assert code == 400 and "connector 1" in answer["detail"]
        code, answer = await command(api, "CS-16", "remote-start", {"id_tag": "T" * 21})
        assert (code, answer["detail"]) == (422, "id_tag: at most 20 characters for an OCPP 1.6 station")
        assert old.station.received == []
        # 2.0.1 id tokens may be longer.
        code, answer = await command(api, "CS-201", "remote-start", {"id_tag": "T" * 36})
        assert (code, answer["status"]) == (200, "Accepted")


async def test_unknown_disconnected_and_missing_transaction(api: Api) -> None:
    code, answer = await command(api, "CS-NEVER", "reset")
    assert (code, answer["detail"]) == (404, "no station 'CS-NEVER'")

    assert (await api.client.put("/api/v1/stations/CS-REG", json={})).status_code == 201
    code, answer = await command(api, "CS-REG", "clear-cache")
    assert (code, answer["detail"], answer["status"]) == (409, "station CS-REG is not connected", "NotConnected")

    async with connect(api.csms, "CS-1", "1.6") as driver:
        code, answer = await command(api, "CS-1", "remote-stop", {"transaction_id": 12345})
        assert (code, answer["detail"]) == (404, "station CS-1 has no transaction 12345")
        assert driver.received() == []

    await until(lambda: not api.csms.registry.is_connected("CS-1"), what="CS-1 gone")
    code, answer = await command(api, "CS-1", "reset")
    assert code == 409 and answer["status"] == "NotConnected"


async def test_a_silent_station_is_a_504_and_a_callerror_a_502(make_csms: CsmsFactory) -> None:
    async with started_api(make_csms, call_timeout=0.5) as api, connect_raw(api.csms, "CS-MUTE") as raw:
        await wait_registered(api.csms, "CS-MUTE")
        code, answer = await command(api, "CS-MUTE", "reset", {"kind": "Soft"})
        assert (code, answer["status"]) == (504, "Timeout")
        assert answer["detail"] == "station CS-MUTE did not answer Reset within 0.5 s"

        # The station answers the next CALL with a CALLERROR: the API says what it said.
        posted = asyncio.create_task(command(api, "CS-MUTE", "clear-cache"))
        call = await next_call(raw)
        while call[2] != "ClearCache":  # skip the Reset the station never answered
            call = await next_call(raw)
        await answer_call_error(raw, call, "NotSupported", "no cache here")
        code, answer = await posted
        assert (code, answer["error_code"]) == (502, "NotSupported")
        assert "no cache here" in answer["detail"]


async def test_bad_bodies_are_a_422_naming_the_field(api: Api) -> None:
    async with connect(api.csms, "CS-1", "2.0.1") as driver:
        cases: list[tuple[str, Any, str]] = [
            ("reset", {"kind": "Medium"}, "kind: "),
            ("reset", [1], "body: "),
            ("change-availability", {"evse_id": 1}, "operative: "),
            ("change-availability", {"evse_id": -1, "operative": True}, "evse_id: "),
            ("change-availability", {"evse_id": 2**40, "operative": True}, "evse_id: "),
            ("unlock", {"evse_id": 0}, "evse_id: "),
            ("unlock", {"evse_id": 1, "connector_id": 0}, "connector_id: "),
            ("trigger-message", {"message": "Nonsense"}, "message: "),
            ("trigger-message", {}, "message: "),
            ("remote-start", {"id_tag": ""}, "id_tag: "),
            ("remote-start", {"id_tag": "T" * 37}, "id_tag: "),
            ("remote-start", {"id_tag": "T", "evse_id": "one"}, "evse_id: "),
            ("remote-stop", {"transaction_id": 0}, "transaction_id: "),
            ("remote-stop", {"transaction_id": 2**64}, "transaction_id: "),
            ("remote-stop", None, "body: "),
            ("get-configuration", {"keys": ["k" * 51]}, "keys.0: "),
            ("get-configuration", {"keys": "HeartbeatInterval"}, "keys: "),
            ("change-configuration", {"key": "", "value": "1"}, "key: "),
            ("change-configuration", {"key": "K", "value": "v" * 501}, "value: "),
            ("change-configuration", {"key": "K\n", "value": "v"}, "key: "),
            ("remote-start", {"id_tag": "TAG\u0000"}, "id_tag: "),
            (
                "set-variables",
                {"variables": [{"component": "C", "variable": "V", "value": "\u0000"}]},
                "variables.0.value: ",
            ),
            ("get-variables", {"variables": []}, "variables: "),
            ("get-variables", {"variables": [{"component": "C"}]}, "variables.0.variable: "),
            ("get-variables", {"variables": [{"component": "C", "variable": "V", "connector_id": 1}]}, "variables.0: "),
            (
                "get-variables",
                {"variables": [{"component": "C", "variable": "V", "attribute": "Maybe"}]},
                "variables.0.attribute: ",
            ),
            ("set-variables", {"variables": [{"component": "C", "variable": "V"}]}, "variables.0.value: "),
            (
                "set-variables",
                {"variables": [{"component": "C", "variable": "V", "value": "1"}] * 2},
                "variables: ",
            ),
            ("get-composite-schedule", {"evse_id": 1, "duration_s": 0}, "duration_s: "),
            ("get-composite-schedule", {"evse_id": 1, "duration_s": 60, "unit": "kW"}, "unit: "),
            ("get-composite-schedule", {"duration_s": 60}, "evse_id: "),
        ]
        for name, body, prefix in cases:
            code, answer = await command(api, "CS-1", name, body)
            assert code == 422, (name, body, answer)
            assert answer["detail"].startswith(prefix), (name, body, answer)
        assert driver.station.received == []  # nothing invalid reached the station

        for path in ("/api/v1/stations/bad%20id/commands/reset", "/api/v1/stations/" + "x" * 49 + "/commands/reset"):
            response = await api.client.post(path, json={})
            assert response.status_code == 422 and response.json()["detail"].startswith("station_id: ")
        response = await api.client.post("/api/v1/stations/CS-1/commands/reset", content=b"{not json")
        assert response.status_code == 422
        assert (await api.client.post("/api/v1/stations/CS-1/commands/self-destruct", json={})).status_code == 404
        assert (await api.anonymous.post("/api/v1/stations/CS-1/commands/reset", json={})).status_code == 401
        assert driver.station.received == []
