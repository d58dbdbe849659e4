"""Every command both OCPP versions have, through the version-neutral interface (``csms.registry.get(id)``),
against 1.6 and 2.0.1 stations over real websockets: what each version's station receives, what the caller
gets back (the same for both), what the database remembers, and each way a command can fail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

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
from optivgi_csms.domain.device_model import VariableRef
from optivgi_csms.protocol.commands import (
    CommandAnswer,
    CompositeScheduleAnswer,
    ReportBase,
    ReservationAnswer,
    ResetKind,
    StationCommands,
    TriggerableMessage,
)
from optivgi_csms.protocol.errors import (
    CallErrorResponse,
    CommandNotSupportedError,
    CommandTimeoutError,
    InvalidAnswerError,
    InvalidCommandError,
    StationNotConnectedError,
)
from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import ChargingProfileRecord, Reservation, Transaction
from tests.support.driver import connect, subprotocol
from tests.support.stations import answer_call, answer_call_error, connect_raw, eventually, next_call, wait_connected

START = datetime(2026, 3, 2, 8, tzinfo=UTC)
EXPIRES = datetime(2030, 1, 1, 12, tzinfo=UTC)


def tx_default(profile_id: int = 1, *, stack_level: int = 0) -> ChargingProfile:
    """An absolute TxDefault profile whose limits have more than one decimal (the wire allows one)."""
    return ChargingProfile(
        id=profile_id,
        stack_level=stack_level,
        purpose=ProfilePurpose.TX_DEFAULT,
        kind=ProfileKind.ABSOLUTE,
        schedule=ChargingSchedule(
            unit=RateUnit.AMPERE,
            periods=(SchedulePeriod(0, 10.66), SchedulePeriod(1800, 6.04, number_phases=1)),
            start=START,
            duration_s=3600,
        ),
    )


def tx_profile(profile_id: int = 5, transaction_id: int | None = None) -> ChargingProfile:
    """A relative Tx profile in watts."""
    return ChargingProfile(
        id=profile_id,
        stack_level=1,
        purpose=ProfilePurpose.TX,
        kind=ProfileKind.RELATIVE,
        transaction_id=transaction_id,
        schedule=ChargingSchedule(
            unit=RateUnit.WATT, periods=(SchedulePeriod(0, 7400.0, number_phases=3), SchedulePeriod(600, 3680.0))
        ),
    )


def station_max(profile_id: int = 9) -> ChargingProfile:
    return ChargingProfile(
        id=profile_id,
        stack_level=0,
        purpose=ProfilePurpose.STATION_MAX,
        kind=ProfileKind.ABSOLUTE,
        schedule=ChargingSchedule(unit=RateUnit.AMPERE, periods=(SchedulePeriod(0, 32.0),), start=START),
    )


async def profile_records(csms: Csms) -> list[ChargingProfileRecord]:
    async with csms.database.read() as session:
        return list(await session.scalars(select(ChargingProfileRecord).order_by(ChargingProfileRecord.id)))


async def reservations(csms: Csms) -> list[Reservation]:
    async with csms.database.read() as session:
        return list(await session.scalars(select(Reservation).order_by(Reservation.id)))


def by_version(version: str, v16: Any, v201: Any) -> Any:
    """What a scenario expects of a station of ``version``."""
    return v201 if version == "2.0.1" else v16


# --- plain commands -------------------------------------------------------------------------------


async def test_reset_availability_and_clear_cache(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        assert commands.ocpp_version == ocpp_version

        answer = await commands.reset(ResetKind.HARD)
        assert station.last("Reset") == {"type": by_version(ocpp_version, "Hard", "Immediate")}
        assert answer == CommandAnswer("Accepted") and answer.accepted

        station.answer("Reset", "Rejected")
        answer = await commands.reset()  # soft: 2.0.1 waits for sessions to end
        assert station.last("Reset") == {"type": by_version(ocpp_version, "Soft", "OnIdle")}
        assert answer.status == "Rejected" and not answer.accepted

        station.answer("ChangeAvailability", "Scheduled")
        answer = await commands.change_availability(2, operative=False)
        assert station.last("ChangeAvailability") == by_version(
            ocpp_version,
            {"connector_id": 2, "type": "Inoperative"},
            {"operational_status": "Inoperative", "evse": {"id": 2}},
        )
        assert answer.status == "Scheduled"
        await commands.change_availability(0, operative=True)  # the whole station
        assert station.last("ChangeAvailability") == by_version(
            ocpp_version, {"connector_id": 0, "type": "Operative"}, {"operational_status": "Operative"}
        )

        assert (await commands.clear_cache()).accepted
        assert station.last("ClearCache") == {}
        assert station.received() == ["Reset", "Reset", "ChangeAvailability", "ChangeAvailability", "ClearCache"]


async def test_unlock_connector_and_trigger_message(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")

        answer = await commands.unlock_connector(2)
        assert station.last("UnlockConnector") == by_version(
            ocpp_version, {"connector_id": 2}, {"evse_id": 2, "connector_id": 1}
        )
        assert answer.status == "Unlocked"
        station.answer("UnlockConnector", "UnlockFailed")
        assert (await commands.unlock_connector(1)).status == "UnlockFailed"

        answer = await commands.trigger_message(TriggerableMessage.STATUS_NOTIFICATION, evse_id=1)
        assert station.last("TriggerMessage") == by_version(
            ocpp_version,
            {"requested_message": "StatusNotification", "connector_id": 1},
            {"requested_message": "StatusNotification", "evse": {"id": 1}},
        )
        assert answer.accepted
        # each version's own status report: 1.6 diagnostics, 2.0.1 log upload
        own = by_version(
            ocpp_version,
            TriggerableMessage.DIAGNOSTICS_STATUS_NOTIFICATION,
            TriggerableMessage.LOG_STATUS_NOTIFICATION,
        )
        station.answer("TriggerMessage", "Rejected")
        answer = await commands.trigger_message(own)
        assert station.last("TriggerMessage") == {"requested_message": own.value}
        assert answer.status == "Rejected"


async def test_arguments_no_version_allows_are_refused_before_sending(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        with pytest.raises(CommandNotSupportedError, match="SignChargePointCertificate"):
            await commands.trigger_message("SignChargePointCertificate")  # type: ignore[arg-type]
        with pytest.raises(InvalidCommandError, match="Tx profile"):
            await commands.remote_start("TAG-1", evse_id=1, charging_profile=tx_default())
        with pytest.raises(InvalidCommandError, match="Tx profile without a transaction"):
            await commands.remote_start("TAG-1", evse_id=1, charging_profile=tx_profile(5, transaction_id=1))
        with pytest.raises(InvalidCommandError, match="EVSE 0"):
            await commands.set_charging_profile(1, station_max())
        external = ChargingProfile(
            id=4,
            stack_level=0,
            purpose=ProfilePurpose.EXTERNAL_CONSTRAINTS,
            kind=ProfileKind.ABSOLUTE,
            schedule=ChargingSchedule(unit=RateUnit.AMPERE, periods=(SchedulePeriod(0, 16.0),), start=START),
        )
        with pytest.raises(InvalidCommandError, match="external-constraint"):
            await commands.set_charging_profile(0, external)
        assert station.received() == []
    assert await profile_records(csms) == []


async def test_commands_the_version_lacks_are_refused_clearly(csms, ocpp_version: str) -> None:
    ref = VariableRef("OCPPCommCtrlr", "HeartbeatInterval")
    lacking: list[tuple[Callable[[StationCommands], Awaitable[Any]], str]] = by_version(
        ocpp_version,
        [
            (lambda c: c.get_variables([ref]), r"^OCPP 1\.6 has no GetVariables \(use get_configuration\)$"),
            (lambda c: c.set_variables({ref: "60"}), r"^OCPP 1\.6 has no SetVariables \(use change_configuration\)$"),
            (lambda c: c.get_base_report(ReportBase.FULL_INVENTORY), r"^OCPP 1\.6 has no GetBaseReport"),
            (lambda c: c.get_charging_profiles(evse_id=1), r"^OCPP 1\.6 has no GetChargingProfiles"),
            (
                lambda c: c.trigger_message(TriggerableMessage.LOG_STATUS_NOTIFICATION),
                r"^OCPP 1\.6 cannot trigger LogStatusNotification$",
            ),
            (
                lambda c: c.trigger_message(TriggerableMessage.TRANSACTION_EVENT),
                r"^OCPP 1\.6 cannot trigger TransactionEvent$",
            ),
        ],
        [
            (lambda c: c.get_configuration(), r"^OCPP 2\.0\.1 has no GetConfiguration \(use get_variables\)$"),
            (
                lambda c: c.change_configuration("HeartbeatInterval", "60"),
                r"^OCPP 2\.0\.1 has no ChangeConfiguration \(use set_variables\)$",
            ),
            (
                lambda c: c.trigger_message(TriggerableMessage.DIAGNOSTICS_STATUS_NOTIFICATION),
                r"^OCPP 2\.0\.1 cannot trigger DiagnosticsStatusNotification$",
            ),
        ],
    )
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        for command, message in lacking:
            with pytest.raises(CommandNotSupportedError, match=message):
                await command(commands)
        assert station.received() == []  # refused before anything was sent
        assert (await commands.clear_cache()).accepted  # and the connection is still fine


# --- remote start and stop ------------------------------------------------------------------------


async def test_remote_start(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        answer = await commands.remote_start("TAG-1", evse_id=1)
        assert answer.accepted
        if station.v201:
            # the id the station's TransactionEvents will quote; the token is one the CSMS issued
            remote_start_id = answer.details["remote_start_id"]
            assert station.last("RemoteStart") == {
                "id_token": {"id_token": "TAG-1", "type": "Central"},
                "remote_start_id": remote_start_id,
                "evse_id": 1,
            }
        else:
            assert station.last("RemoteStart") == {"id_tag": "TAG-1", "connector_id": 1}
            assert answer == CommandAnswer("Accepted")

        station.answer("RemoteStart", "Rejected")
        answer = await commands.remote_start("TAG-2")
        assert answer.status == "Rejected"
        # no EVSE named: the station picks one
        if station.v201:
            assert station.last("RemoteStart") == {
                "id_token": {"id_token": "TAG-2", "type": "Central"},
                "remote_start_id": answer.details["remote_start_id"],
            }
            assert answer.details["remote_start_id"] != remote_start_id
        else:
            assert station.last("RemoteStart") == {"id_tag": "TAG-2"}
        assert station.received() == ["RemoteStart", "RemoteStart"]


async def test_remote_start_with_a_tx_profile(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        answer = await commands.remote_start("TAG-1", evse_id=2, charging_profile=tx_profile(7))
        assert answer.accepted
        # no transaction id in the profile: the transaction does not exist yet
        if station.v201:
            assert station.last("RemoteStart") == {
                "id_token": {"id_token": "TAG-1", "type": "Central"},
                "remote_start_id": answer.details["remote_start_id"],
                "evse_id": 2,
                "charging_profile": {
                    "id": 7,
                    "stack_level": 1,
                    "charging_profile_purpose": "TxProfile",
                    "charging_profile_kind": "Relative",
                    "charging_schedule": [
                        {
                            "id": 7,
                            "charging_rate_unit": "W",
                            "charging_schedule_period": [
                                {"start_period": 0, "limit": 7400.0, "number_phases": 3},
                                {"start_period": 600, "limit": 3680.0},
                            ],
                        }
                    ],
                },
            }
        else:
            assert station.last("RemoteStart") == {
                "id_tag": "TAG-1",
                "connector_id": 2,
                "charging_profile": {
                    "charging_profile_id": 7,
                    "stack_level": 1,
                    "charging_profile_purpose": "TxProfile",
                    "charging_profile_kind": "Relative",
                    "charging_schedule": {
                        "charging_rate_unit": "W",
                        "charging_schedule_period": [
                            {"start_period": 0, "limit": 7400.0, "number_phases": 3},
                            {"start_period": 600, "limit": 3680.0},
                        ],
                    },
                },
            }
    # The profile rode inside the start: it is recorded like any profile sent, with the answer to the start.
    async with csms.database.read() as session:
        record = await session.scalar(select(ChargingProfileRecord))
    assert (record.evse_id, record.profile_id, record.purpose, record.status) == (2, 7, "Tx", "Accepted")
    assert record.transaction_id is None
    assert ChargingProfile.from_dict(record.profile) == tx_profile(7)


async def test_remote_stop_names_the_stations_transaction(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station, connect(csms, "CP-2", ocpp_version) as other:
        session = await station.start()
        others_session = await other.start()
        commands = await wait_connected(csms, "CP-1")

        answer = await commands.remote_stop(session.id)  # the CSMS's id, whatever the station calls it
        # 1.6: the same integer; 2.0.1: the station's own string id
        assert station.last("RemoteStop") == {"transaction_id": session.ocpp_id}
        assert isinstance(session.ocpp_id, by_version(ocpp_version, int, str))
        assert answer.accepted

        with pytest.raises(InvalidCommandError, match="no transaction"):
            await commands.remote_stop(session.id + 1000)
        with pytest.raises(InvalidCommandError, match="no transaction"):
            await commands.remote_stop(others_session.id)  # another station's session
        assert station.received() == ["RemoteStop"]
        assert other.received() == []


# --- charging profiles ----------------------------------------------------------------------------


async def test_set_charging_profile_is_sent_in_the_stations_version_and_recorded(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        answer = await commands.set_charging_profile(1, tx_default(3, stack_level=2))
        assert answer.accepted
        # limits rounded to the one decimal OCPP allows (the 1.6 station's library reads decimals exactly,
        # so Decimal("10.7") means the frame said 10.7, not 10.66 or 10.700000001)
        periods = [
            {"start_period": 0, "limit": by_version(ocpp_version, Decimal("10.7"), 10.7)},
            {"start_period": 1800, "limit": 6.0, "number_phases": 1},
        ]
        if station.v201:
            assert station.last("SetChargingProfile") == {
                "evse_id": 1,
                "charging_profile": {
                    "id": 3,
                    "stack_level": 2,
                    "charging_profile_purpose": "TxDefaultProfile",
                    "charging_profile_kind": "Absolute",
                    "charging_schedule": [
                        {
                            "id": 3,
                            "charging_rate_unit": "A",
                            "duration": 3600,
                            "start_schedule": "2026-03-02T08:00:00.000Z",
                            "charging_schedule_period": periods,
                        }
                    ],
                },
            }
        else:
            assert station.last("SetChargingProfile") == {
                "connector_id": 1,
                "cs_charging_profiles": {
                    "charging_profile_id": 3,
                    "stack_level": 2,
                    "charging_profile_purpose": "TxDefaultProfile",
                    "charging_profile_kind": "Absolute",
                    "charging_schedule": {
                        "charging_rate_unit": "A",
                        "duration": 3600,
                        "start_schedule": "2026-03-02T08:00:00.000Z",
                        "charging_schedule_period": periods,
                    },
                },
            }

        station.answer("SetChargingProfile", "Rejected")
        answer = await commands.set_charging_profile(0, station_max(9))
        assert answer.status == "Rejected"
        sent = station.last("SetChargingProfile")
        if station.v201:
            assert sent["evse_id"] == 0
            assert sent["charging_profile"]["charging_profile_purpose"] == "ChargingStationMaxProfile"
        else:
            assert sent["connector_id"] == 0
            assert sent["cs_charging_profiles"]["charging_profile_purpose"] == "ChargePointMaxProfile"

    accepted, rejected = await profile_records(csms)
    assert (accepted.station_id, accepted.evse_id, accepted.profile_id, accepted.stack_level) == ("CP-1", 1, 3, 2)
    assert (accepted.purpose, accepted.kind, accepted.status) == ("TxDefault", "Absolute", "Accepted")
    assert accepted.answered_at is not None and accepted.answered_at >= accepted.sent_at
    assert accepted.cleared_at is None and accepted.transaction_id is None
    assert accepted.profile["schedule"]["unit"] == "A"
    # Stored as the station got it: one decimal.
    assert [(p["start_s"], p["limit"]) for p in accepted.profile["schedule"]["periods"]] == [(0, 10.7), (1800, 6.0)]
    assert (rejected.evse_id, rejected.profile_id, rejected.purpose, rejected.status) == (
        0,
        9,
        "StationMax",
        "Rejected",
    )
    assert ChargingProfile.from_dict(rejected.profile) == station_max(9)


async def test_every_field_of_a_profile_reaches_the_station(csms, ocpp_version: str) -> None:
    recurring = ChargingProfile(
        id=21,
        stack_level=3,
        purpose=ProfilePurpose.TX_DEFAULT,
        kind=ProfileKind.RECURRING,
        recurrency=RecurrencyKind.DAILY,
        valid_from=START,
        valid_to=EXPIRES,
        schedule=ChargingSchedule(
            unit=RateUnit.WATT,
            periods=(SchedulePeriod(0, 11000.0), SchedulePeriod(3600, 4200.0, number_phases=1)),
            start=START,
            duration_s=86400,
            min_rate=1380.0,
        ),
    )
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        assert (await commands.set_charging_profile(1, recurring)).accepted
        sent = station.last("SetChargingProfile")
    common = {
        "stack_level": 3,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Recurring",
        "recurrency_kind": "Daily",
        "valid_from": "2026-03-02T08:00:00.000Z",
        "valid_to": "2030-01-01T12:00:00.000Z",
    }
    schedule = {
        "charging_rate_unit": "W",
        "duration": 86400,
        "start_schedule": "2026-03-02T08:00:00.000Z",
        "min_charging_rate": by_version(ocpp_version, Decimal("1380.0"), 1380.0),
        "charging_schedule_period": [
            {"start_period": 0, "limit": by_version(ocpp_version, Decimal("11000.0"), 11000.0)},
            {"start_period": 3600, "limit": by_version(ocpp_version, Decimal("4200.0"), 4200.0), "number_phases": 1},
        ],
    }
    assert sent == by_version(
        ocpp_version,
        {
            "connector_id": 1,
            "cs_charging_profiles": {"charging_profile_id": 21, **common, "charging_schedule": schedule},
        },
        {"evse_id": 1, "charging_profile": {"id": 21, **common, "charging_schedule": [{"id": 21, **schedule}]}},
    )
    (record,) = await profile_records(csms)
    assert ChargingProfile.from_dict(record.profile) == recurring
    assert (record.valid_from, record.valid_to, record.kind) == (START, EXPIRES, "Recurring")


async def test_set_charging_profile_for_a_transaction(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        session = await station.start(evse_id=2)
        commands = await wait_connected(csms, "CP-1")
        answer = await commands.set_charging_profile(2, tx_profile(5, session.id))
        assert answer.accepted
        sent = station.last("SetChargingProfile")
        body = sent[by_version(ocpp_version, "cs_charging_profiles", "charging_profile")]
        assert sent[by_version(ocpp_version, "connector_id", "evse_id")] == 2
        assert body["charging_profile_purpose"] == "TxProfile"
        assert body["transaction_id"] == session.ocpp_id  # the id the station knows

        with pytest.raises(InvalidCommandError, match="no transaction"):
            await commands.set_charging_profile(2, tx_profile(6, session.id + 1000))
        assert station.received().count("SetChargingProfile") == 1

    (record,) = await profile_records(csms)
    assert (record.profile_id, record.purpose, record.transaction_id, record.status) == (
        5,
        "Tx",
        session.id,
        "Accepted",
    )


async def test_clear_charging_profile_marks_the_matching_accepted_profiles(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        await commands.set_charging_profile(1, tx_default(1))
        await commands.set_charging_profile(2, tx_default(2))
        station.answer("SetChargingProfile", "Rejected")
        await commands.set_charging_profile(1, tx_default(1, stack_level=5))

        station.answer("ClearChargingProfile", "Unknown")
        answer = await commands.clear_charging_profile(profile_id=1)
        assert answer.status == "Unknown"
        assert [record.cleared_at for record in await profile_records(csms)] == [None, None, None]

        station.answer("ClearChargingProfile", "Accepted")
        answer = await commands.clear_charging_profile(profile_id=1)
        assert answer.accepted
        assert station.last("ClearChargingProfile") == by_version(ocpp_version, {"id": 1}, {"charging_profile_id": 1})
        first, second, rejected = await profile_records(csms)
        assert first.cleared_at is not None and first.cleared_at >= first.answered_at
        assert second.cleared_at is None
        assert rejected.cleared_at is None  # the station never held it

        await commands.clear_charging_profile(evse_id=2, purpose=ProfilePurpose.TX_DEFAULT, stack_level=0)
        criteria = {"charging_profile_purpose": "TxDefaultProfile", "stack_level": 0}
        assert station.last("ClearChargingProfile") == by_version(
            ocpp_version,
            {"connector_id": 2, **criteria},
            {"charging_profile_criteria": {"evse_id": 2, **criteria}},
        )
        first_again, second, rejected = await profile_records(csms)
        assert second.cleared_at is not None
        assert first_again.cleared_at == first.cleared_at  # cleared once, not touched again

        await commands.clear_charging_profile()
        assert station.last("ClearChargingProfile") == {}


async def test_get_composite_schedule_is_parsed_into_the_domain(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        station.station.composite_schedule = {
            "charging_rate_unit": "A",
            "duration": 3600,
            "charging_schedule_period": [
                {"start_period": 0, "limit": 16.0, "number_phases": 3},
                {"start_period": 900, "limit": 8.5},
            ],
        }
        answer = await commands.get_composite_schedule(1, 3600, RateUnit.AMPERE)
        assert station.last("GetCompositeSchedule") == {
            by_version(ocpp_version, "connector_id", "evse_id"): 1,
            "duration": 3600,
            "charging_rate_unit": "A",
        }
        assert answer == CompositeScheduleAnswer(
            status="Accepted",
            composite=CompositeSchedule(
                evse_id=1,
                start=START,
                schedule=ChargingSchedule(
                    unit=RateUnit.AMPERE,
                    periods=(SchedulePeriod(0, 16.0, 3), SchedulePeriod(900, 8.5)),
                    duration_s=3600,
                ),
            ),
        )

        station.station.composite_schedule = None
        station.answer("GetCompositeSchedule", "Rejected")
        answer = await commands.get_composite_schedule(2, 600)
        assert station.last("GetCompositeSchedule") == {
            by_version(ocpp_version, "connector_id", "evse_id"): 2,
            "duration": 600,
        }
        assert answer == CompositeScheduleAnswer(status="Rejected", composite=None)


# --- reservations ---------------------------------------------------------------------------------


async def test_reservation_is_requested_then_accepted_then_cancelled(csms, ocpp_version: str) -> None:
    async with connect_raw(csms, "CP-1", subprotocol=subprotocol(ocpp_version)) as raw:
        commands = await wait_connected(csms, "CP-1")
        reserving = asyncio.create_task(commands.reserve_now(1, "TAG-1", EXPIRES, parent_id_tag="GROUP-1"))
        frame = await next_call(raw)
        assert frame[2] == "ReserveNow"
        (row,) = await reservations(csms)
        # the CSMS allocated the id and recorded the request before the station answered
        assert frame[3] == by_version(
            ocpp_version,
            {
                "connectorId": 1,
                "expiryDate": "2030-01-01T12:00:00.000Z",
                "idTag": "TAG-1",
                "parentIdTag": "GROUP-1",
                "reservationId": row.id,
            },
            {
                "id": row.id,
                "expiryDateTime": "2030-01-01T12:00:00.000Z",
                "idToken": {"idToken": "TAG-1", "type": "Central"},
                "evseId": 1,
                "groupIdToken": {"idToken": "GROUP-1", "type": "Central"},
            },
        )
        assert (row.station_id, row.evse_id, row.id_tag, row.parent_id_tag) == ("CP-1", 1, "TAG-1", "GROUP-1")
        assert (row.status, row.expires_at) == ("Requested", EXPIRES)

        await answer_call(raw, frame, {"status": "Accepted"})
        answer = await reserving
        assert answer == ReservationAnswer(row.id, "Accepted") and answer.accepted
        assert [r.status for r in await reservations(csms)] == ["Accepted"]

        cancelling = asyncio.create_task(commands.cancel_reservation(row.id))
        frame = await next_call(raw)
        assert (frame[2], frame[3]) == ("CancelReservation", {"reservationId": row.id})
        await answer_call(raw, frame, {"status": "Accepted"})
        assert (await cancelling).accepted
        assert [r.status for r in await reservations(csms)] == ["Cancelled"]


async def test_reservation_rows_follow_the_stations_answers(csms, ocpp_version: str) -> None:
    id_key = by_version(ocpp_version, "reservation_id", "id")
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        first = await commands.reserve_now(0, "TAG-1", EXPIRES)  # any EVSE
        sent = station.last("ReserveNow")
        assert sent[id_key] == first.reservation_id
        if station.v201:
            assert "evse_id" not in sent
        else:
            assert sent["connector_id"] == 0

        station.answer("ReserveNow", "Occupied")
        second = await commands.reserve_now(1, "TAG-2", EXPIRES)
        assert second.status == "Occupied" and not second.accepted
        assert station.last("ReserveNow")[id_key] == second.reservation_id != first.reservation_id

        station.answer("CancelReservation", "Rejected")
        assert (await commands.cancel_reservation(first.reservation_id)).status == "Rejected"

        with pytest.raises(InvalidCommandError, match="time zone"):
            await commands.reserve_now(1, "TAG-3", datetime(2030, 1, 1, 12))
        assert station.received().count("ReserveNow") == 2

    rows = await reservations(csms)
    assert [(r.id, r.status) for r in rows] == [(first.reservation_id, "Accepted"), (second.reservation_id, "Occupied")]


async def test_cancelling_another_stations_reservation_leaves_it_alone(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-1", ocpp_version) as station, connect(csms, "CP-2", ocpp_version):
        reservation = await csms.registry.get("CP-2").reserve_now(1, "TAG-1", EXPIRES)
        # an operator cancels on the wrong station, which (wrongly) says it did
        answer = await csms.registry.get("CP-1").cancel_reservation(reservation.reservation_id)
        assert answer.accepted and station.received() == ["CancelReservation"]
    # CP-2 still holds its reservation: its row must say so
    assert [(row.station_id, row.status) for row in await reservations(csms)] == [("CP-2", "Accepted")]


async def test_a_reservation_is_used_by_the_session_that_names_it(csms, ocpp_version: str) -> None:
    async with connect(csms, "CP-V", ocpp_version) as station:
        reservation = await csms.registry.get("CP-V").reserve_now(1, "TAG-R", datetime.now(UTC) + timedelta(hours=1))
        assert reservation.accepted
        session = await station.start("TAG-R", reservation_id=reservation.reservation_id)
    async with csms.database.read() as db:
        row = await db.get(Reservation, reservation.reservation_id)
        transaction = await db.get(Transaction, session.id)
    assert (row.status, row.transaction_id) == ("Used", session.id)
    assert transaction.reservation_id == reservation.reservation_id


# --- failures -------------------------------------------------------------------------------------


async def test_station_not_connected(csms, ocpp_version: str) -> None:
    with pytest.raises(StationNotConnectedError):
        csms.registry.get("CP-NEVER")
    async with connect(csms, "CP-1", ocpp_version) as station:
        commands = await wait_connected(csms, "CP-1")
        assert (await commands.clear_cache()).accepted
    await eventually(lambda: not csms.registry.is_connected("CP-1"))
    with pytest.raises(StationNotConnectedError):
        csms.registry.get("CP-1")
    # a handle kept from before the disconnect fails clearly too, and the attempt is recorded
    with pytest.raises(StationNotConnectedError):
        await commands.reset()
    with pytest.raises(StationNotConnectedError):
        await commands.set_charging_profile(1, tx_default())
    with pytest.raises(StationNotConnectedError):
        await commands.reserve_now(1, "TAG-1", EXPIRES)
    assert station.received() == ["ClearCache"]
    assert [record.status for record in await profile_records(csms)] == ["NotConnected"]
    assert [row.status for row in await reservations(csms)] == ["Failed"]


async def test_timeout_then_the_station_still_answers_later_commands(make_csms, ocpp_version: str) -> None:
    csms = await make_csms(call_timeout=0.5)
    async with connect_raw(csms, "CP-1", subprotocol=subprotocol(ocpp_version)) as raw:
        commands = await wait_connected(csms, "CP-1")
        began = time.monotonic()
        with pytest.raises(CommandTimeoutError, match=r"SetChargingProfile within 0\.5 s"):
            await commands.set_charging_profile(1, tx_default())
        assert 0.45 <= time.monotonic() - began < 2
        (record,) = await profile_records(csms)
        assert record.status == "Timeout" and record.answered_at is not None

        ignored = await next_call(raw)
        resetting = asyncio.create_task(commands.reset())
        frame = await next_call(raw)
        assert frame[2] == "Reset"
        # the late answer to the timed-out call must not be taken for the answer to the reset
        await answer_call(raw, ignored, {"status": "Rejected"})
        await answer_call(raw, frame, {"status": "Accepted"})
        assert (await resetting).accepted


async def test_callerror_answers(csms, ocpp_version: str) -> None:
    async with connect_raw(csms, "CP-1", subprotocol=subprotocol(ocpp_version)) as raw:
        commands = await wait_connected(csms, "CP-1")

        setting = asyncio.create_task(commands.set_charging_profile(1, tx_default()))
        await answer_call_error(raw, await next_call(raw), "NotImplemented", "no smart charging here")
        with pytest.raises(CallErrorResponse) as caught:
            await setting
        assert (caught.value.code, caught.value.description) == ("NotImplemented", "no smart charging here")

        reserving = asyncio.create_task(commands.reserve_now(1, "TAG-1", EXPIRES))
        await answer_call_error(raw, await next_call(raw), "InternalError")
        with pytest.raises(CallErrorResponse) as caught:
            await reserving
        assert caught.value.code == "InternalError"

        resetting = asyncio.create_task(commands.reset())
        await answer_call_error(raw, await next_call(raw), "SecurityError")
        with pytest.raises(CallErrorResponse, match="SecurityError"):
            await resetting

    assert [record.status for record in await profile_records(csms)] == ["CallError:NotImplemented"]
    assert [row.status for row in await reservations(csms)] == ["Failed"]


async def test_schema_breaking_answers(csms, ocpp_version: str) -> None:
    async with connect_raw(csms, "CP-1", subprotocol=subprotocol(ocpp_version)) as raw:
        commands = await wait_connected(csms, "CP-1")

        async def answered_with(command: Any, payload: dict[str, Any]) -> None:
            task = asyncio.create_task(command)
            await answer_call(raw, await next_call(raw), payload)
            with pytest.raises(InvalidAnswerError):
                await task

        await answered_with(commands.reset(), {"status": "Maybe"})
        if ocpp_version == "2.0.1":
            await answered_with(
                commands.get_variables([VariableRef("OCPPCommCtrlr", "HeartbeatInterval")]),
                {"getVariableResult": [{"attributeStatus": "Accepted", "component": {"name": "OCPPCommCtrlr"}}]},
            )
        else:
            await answered_with(commands.get_configuration(), {"configurationKey": [{"key": "HeartbeatInterval"}]})
        await answered_with(commands.set_charging_profile(1, tx_default()), {})
        await answered_with(commands.reserve_now(1, "TAG-1", EXPIRES), {"status": "accepted"})

        # the connection survives: a proper answer still works
        clearing = asyncio.create_task(commands.clear_cache())
        await answer_call(raw, await next_call(raw), {"status": "Accepted"})
        assert (await clearing).accepted

    assert [record.status for record in await profile_records(csms)] == ["InvalidAnswer"]
    assert [row.status for row in await reservations(csms)] == ["Failed"]


async def test_disconnect_fails_waiting_and_queued_commands_at_once(make_csms, ocpp_version: str) -> None:
    csms = await make_csms(call_timeout=10)
    async with connect_raw(csms, "CP-1", subprotocol=subprotocol(ocpp_version)) as raw:
        commands = await wait_connected(csms, "CP-1")
        in_flight = asyncio.create_task(commands.set_charging_profile(1, tx_default()))
        queued = asyncio.create_task(commands.reserve_now(1, "TAG-1", EXPIRES))
        assert (await next_call(raw))[2] == "SetChargingProfile"
        for _ in range(200):  # the queued reservation is recorded, then waits for its turn
            if await reservations(csms):
                break
            await asyncio.sleep(0.01)
        began = time.monotonic()
        await raw.connection.close()
    for task in (in_flight, queued):
        with pytest.raises(StationNotConnectedError):
            await asyncio.wait_for(task, 2)
    assert time.monotonic() - began < 2  # far below the 10 s call timeout
    assert [record.status for record in await profile_records(csms)] == ["NotConnected"]
    assert [row.status for row in await reservations(csms)] == ["Failed"]


async def test_concurrent_commands_are_queued_and_answered_in_order(csms, ocpp_version: str) -> None:
    async with connect_raw(csms, "CP-1", subprotocol=subprotocol(ocpp_version)) as raw:
        commands = await wait_connected(csms, "CP-1")
        tags = [f"TAG-{index}" for index in range(8)]
        tasks = [asyncio.create_task(commands.remote_start(tag)) for tag in tags]

        seen = []
        for _ in tags:
            frame = await next_call(raw)
            assert frame[2] == by_version(ocpp_version, "RemoteStartTransaction", "RequestStartTransaction")
            tag = frame[3]["idToken"]["idToken"] if ocpp_version == "2.0.1" else frame[3]["idTag"]
            seen.append(tag)
            # OCPP allows one CALL in flight: nothing else may arrive before this one is answered
            assert await raw.no_reply(0.03)
            status = "Accepted" if int(tag.removeprefix("TAG-")) % 2 == 0 else "Rejected"
            await answer_call(raw, frame, {"status": status})

        answers = await asyncio.gather(*tasks)
        assert seen == tags
        assert [answer.status for answer in answers] == ["Accepted", "Rejected"] * 4


async def test_commands_to_two_stations_do_not_wait_for_each_other(csms, ocpp_version: str) -> None:
    async with (
        connect_raw(csms, "CP-SLOW", subprotocol=subprotocol(ocpp_version)) as slow,
        connect(csms, "CP-FAST", ocpp_version) as fast,
    ):
        slow_commands = await wait_connected(csms, "CP-SLOW")
        fast_commands = await wait_connected(csms, "CP-FAST")
        waiting = asyncio.create_task(slow_commands.reset())
        frame = await next_call(slow)
        assert (await asyncio.wait_for(fast_commands.reset(), 2)).accepted
        assert fast.last("Reset") == {"type": by_version(ocpp_version, "Soft", "OnIdle")}
        await answer_call(slow, frame, {"status": "Accepted"})
        assert (await waiting).accepted
