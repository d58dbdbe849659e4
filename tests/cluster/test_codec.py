"""The codec between nodes: every argument and answer of every command crosses unchanged, nothing else crosses."""

from __future__ import annotations

import inspect
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from optivgi_csms.cluster import codec
from optivgi_csms.cluster.rpc import METHODS
from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    CompositeSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    RecurrencyKind,
    SchedulePeriod,
)
from optivgi_csms.domain.device_model import VariableRef, VariableResult
from optivgi_csms.protocol.commands import (
    CommandAnswer,
    CompositeScheduleAnswer,
    ConfigurationAnswer,
    ConfigurationKey,
    ReportBase,
    ReservationAnswer,
    ResetKind,
    StationCommands,
    TriggerableMessage,
)
from optivgi_csms.protocol.errors import (
    CallErrorResponse,
    CommandError,
    CommandNotSupportedError,
    CommandTimeoutError,
    InvalidAnswerError,
    InvalidCommandError,
    StationNotConnectedError,
)
from optivgi_csms.services import events
from optivgi_csms.smart_charging.evs import UncontrolledLoad
from optivgi_csms.smart_charging.plan import EvPlan, SitePlan

NOW = datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=UTC)
REF = VariableRef("SmartChargingCtrlr", "Entries", variable_instance="ChargingProfiles", evse_id=1, connector_id=2)
SCHEDULE = ChargingSchedule(
    unit=RateUnit.AMPERE,
    periods=(SchedulePeriod(0, 16.04), SchedulePeriod(900, 6.0, number_phases=1, phase_to_use=2)),
    start=NOW,
    duration_s=3600,
    min_rate=6.0,
    id=7,
)
PROFILE = ChargingProfile(
    id=41,
    stack_level=2,
    purpose=ProfilePurpose.TX,
    kind=ProfileKind.ABSOLUTE,
    schedule=SCHEDULE,
    valid_from=NOW,
    valid_to=NOW + timedelta(hours=2),
    transaction_id=12,
)
RECURRING = ChargingProfile(
    id=3,
    stack_level=0,
    purpose=ProfilePurpose.TX_DEFAULT,
    kind=ProfileKind.RECURRING,
    recurrency=RecurrencyKind.DAILY,
    schedule=ChargingSchedule(unit=RateUnit.WATT, periods=(SchedulePeriod(0, 11000.0),)),
)
ANSWER = CommandAnswer("Accepted", {"status_info": {"reason_code": "ok", "n": [1, 2.5, None, True]}})

#: Each public command: sample positional and keyword arguments, and a sample of each answer it may return.
CASES: dict[str, tuple[tuple[Any, ...], dict[str, Any], list[Any]]] = {
    "reset": ((ResetKind.HARD,), {}, [ANSWER, CommandAnswer("Rejected")]),
    "change_availability": ((0, False), {}, [CommandAnswer("Scheduled")]),
    "get_configuration": (
        (("HeartbeatInterval", "ChargeProfileMaxStackLevel"),),
        {},
        [ConfigurationAnswer((ConfigurationKey("HeartbeatInterval", "300", False), ConfigurationKey("X", None, True)))],
    ),
    "change_configuration": (("HeartbeatInterval", "60"), {}, [CommandAnswer("RebootRequired")]),
    "unlock_connector": ((1, 2), {}, [CommandAnswer("Unlocked")]),
    "trigger_message": ((TriggerableMessage.STATUS_NOTIFICATION, None), {}, [ANSWER]),
    "clear_cache": ((), {}, [ANSWER]),
    "get_composite_schedule": (
        (1, 3600, RateUnit.WATT),
        {},
        [
            CompositeScheduleAnswer("Accepted", CompositeSchedule(1, NOW, SCHEDULE)),
            CompositeScheduleAnswer("Rejected"),
        ],
    ),
    "get_base_report": ((ReportBase.SUMMARY_INVENTORY,), {}, [CommandAnswer("Accepted", {"request_id": 99})]),
    "get_variables": (
        ([REF, VariableRef("SmartChargingCtrlr", "Enabled")],),
        {},
        [[VariableResult(REF, "Accepted", "8"), VariableResult(REF, "UnknownVariable", reason="nope")]],
    ),
    "set_variables": (({REF: "8", VariableRef("X", "Y"): ""},), {}, [[VariableResult(REF, "Rejected")]]),
    "get_charging_profiles": (
        (),
        {"evse_id": 1, "purpose": ProfilePurpose.TX_DEFAULT, "stack_level": 0, "profile_ids": (3, 4)},
        [CommandAnswer("Accepted", {"request_id": 5})],
    ),
    "remote_start": (
        ("TAG-1",),
        {"evse_id": 1, "charging_profile": replace(PROFILE, transaction_id=None), "id_token_type": "Central"},
        [CommandAnswer("Accepted", {"remote_start_id": 17})],
    ),
    "remote_stop": ((12,), {}, [ANSWER]),
    "set_charging_profile": ((1, PROFILE), {}, [ANSWER, CommandAnswer("Rejected")]),
    "clear_charging_profile": (
        (),
        {"profile_id": 41, "evse_id": None, "purpose": ProfilePurpose.TX, "stack_level": 2},
        [CommandAnswer("Unknown")],
    ),
    "reserve_now": (
        (0, "TAG-2", NOW + timedelta(minutes=30)),
        {"parent_id_tag": "PARENT", "id_token_type": None},
        [ReservationAnswer(8, "Accepted"), ReservationAnswer(9, "Occupied")],
    ),
    "send_stored_reservation": (
        (8, 1, "TAG-2", datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=2)))),
        {"parent_id_tag": None, "id_token_type": "ISO14443"},
        [CommandAnswer("Accepted")],
    ),
    "cancel_reservation": ((8,), {}, [CommandAnswer("Rejected")]),
}


def through_the_wire(value: Any) -> Any:
    """What the other node decodes from what this one sends."""
    return codec.loads(codec.dumps(value))


def test_every_public_command_is_covered_and_routable() -> None:
    public = {
        name
        for name, member in inspect.getmembers(StationCommands, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    # A command added to the interface must be routable between nodes and get a case here.
    assert public == METHODS == set(CASES)


@pytest.mark.parametrize("method", sorted(CASES))
def test_arguments_and_answers_cross_unchanged(method: str) -> None:
    args, kwargs, answers = CASES[method]
    signature = inspect.signature(getattr(StationCommands, method))
    signature.bind(None, *args, **kwargs)  # the samples are a valid call of the method
    assert through_the_wire(list(args)) == list(args)
    assert through_the_wire(kwargs) == kwargs
    for answer in answers:
        back = through_the_wire(answer)
        assert back == answer
        assert type(back) is type(answer)
    # Types survive exactly, not only equality: a tuple stays a tuple, an enum its enum, a time its zone.
    for sent, received in zip(args, through_the_wire(list(args)), strict=True):
        assert type(received) is type(sent)
        if isinstance(sent, datetime):
            assert received.utcoffset() == sent.utcoffset()


def test_a_profile_keeps_every_field_and_its_extra() -> None:
    profile = replace(PROFILE, extra={"vendor": [1]})
    back = through_the_wire(profile)
    assert back.to_dict() == profile.to_dict() and back.extra == {"vendor": [1]}
    assert type(back.schedule.periods) is tuple and back.schedule.periods[1].phase_to_use == 2


@pytest.mark.parametrize(
    "error",
    [
        CommandError("something"),
        StationNotConnectedError("station X is not connected"),
        CommandTimeoutError("no answer in 5 s"),
        CommandNotSupportedError("OCPP 2.0.1 has no GetConfiguration (use get_variables)"),
        InvalidCommandError("a station-maximum profile applies to EVSE 0 only"),
        CallErrorResponse("NotImplemented", "no such thing", {"x": 1}),
        InvalidAnswerError("answer breaks the schema"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_command_errors_are_raised_again_with_their_class_and_message(error: CommandError) -> None:
    back = through_the_wire(error)
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert back.status_word == error.status_word
    if isinstance(error, CallErrorResponse):
        assert (back.code, back.description, back.details) == ("NotImplemented", "no such thing", {"x": 1})


def test_the_events_smart_charging_consumes_cross_unchanged() -> None:
    samples = [
        events.StationConnected("CS-1", True),
        events.StationBooted("CS-1", False),
        events.StationDisconnected("CS-1"),
        events.TransactionStarted("CS-1", 5, 1, "TAG", NOW),
        events.TransactionUpdated("CS-1", 5, 1, "Charging", "MeterValuePeriodic"),
        events.TransactionEnded("CS-1", 5, 1, "Local", 1234.5, NOW),
        events.MeterReading("CS-1", 1, 5, NOW, 7.2, 1000.0, (16.0, 15.5, 0.0), 55.0, ("L1", "L2", "L3")),
        events.ConnectorStatusChanged("CS-1", 1, 1, "SuspendedEV"),
        events.ReservationChanged("CS-1", 3, "Accepted"),
        events.ChargingNeedsReceived("CS-1", 1, None),
        events.SiteChanged("default"),
        events.SessionNeedsChanged("CS-1", 5),
    ]
    for event in samples:
        assert through_the_wire(event) == event


def test_a_site_plan_crosses_unchanged() -> None:
    ev = EvPlan(
        ev_id="tx-5",
        station_id="CS-1",
        evse_id=1,
        transaction_id=5,
        reservation_id=None,
        active=True,
        arrival=NOW,
        departure=NOW + timedelta(hours=3),
        requested_kwh=20.0,
        planned_kwh=14.5,
        max_kw=11.0,
        phases=3,
        power_kw=(11.0, 7.25, 0.0),
        energy_source="site",
        departure_source="ev",
        capped="draws less than offered",
    )
    plan = SitePlan(
        site_id="default",
        computed_at=NOW,
        algorithm="lp",
        status="optimal",
        start=NOW,
        resolution=timedelta(minutes=15),
        limit_kw=(22.0, 22.0, 20.5),
        evs=(ev,),
        uncontrolled=(UncontrolledLoad("CS-2", 1, 3.7, 1, NOW + timedelta(hours=1), "no smart charging", 6),),
        notes=("a note",),
    )
    back = through_the_wire(plan)
    assert back == plan and back.resolution == timedelta(minutes=15) and back.total_kw == plan.total_kw


@pytest.mark.parametrize(
    "wire",
    [
        {"$": "obj", "t": "Settings", "v": {}},  # a dataclass outside the allow-list
        {"$": "obj", "t": "CommandAnswer", "v": {"status": "Accepted", "__class__": "x"}},  # a field it lacks
        {"$": "enum", "t": "Signals", "v": 9},
        {"$": "enum", "t": "ResetKind", "v": "Reboot"},  # not a member
        {"$": "error", "t": "SystemExit", "message": "bye"},
        {"$": "pickle", "v": "gASVAAAA"},
        {"$": "datetime", "v": 12},
        {"$": "map", "v": [[[1], 2]]},  # an unhashable key
        {"status": "Accepted"},  # an untagged object
    ],
)
def test_anything_outside_the_allow_list_is_refused(wire: Any) -> None:
    with pytest.raises(codec.CodecError):
        codec.loads(json.dumps(wire))


def test_values_outside_the_allow_list_are_not_sent() -> None:
    class Secret:
        pass

    for value in (Secret(), {1, 2}, b"bytes", RateUnit, object()):
        with pytest.raises(codec.CodecError):
            codec.dumps(value)
