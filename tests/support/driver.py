"""A version-neutral test driver: one scenario, written once, played by a 1.6 or a 2.0.1 station.

:func:`connect` opens a :class:`tests.support.stations.Station16` or a
:class:`tests.support.stations201.Station201` and wraps it in a :class:`Driver` whose steps (boot, heartbeat,
status, authorize, start, meter values, stop) send each version's own messages: a 1.6 StartTransaction /
MeterValues / StopTransaction is a 2.0.1 TransactionEvent Started / Updated / Ended. Every step raises
the station's CALLERROR instead of hiding it. What the station received for a command can be read by a
neutral command name (``RemoteStart`` is 1.6 RemoteStartTransaction and 2.0.1 RequestStartTransaction).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from sqlalchemy import select

from optivgi_csms.server.app import Csms
from optivgi_csms.store.models import Transaction
from tests.support.stations import Station16, connect16
from tests.support.stations201 import Station201, connect201

VERSIONS = ("1.6", "2.0.1")

# Commands whose action name differs between the versions, by neutral name.
ACTIONS = {
    "RemoteStart": {"1.6": "RemoteStartTransaction", "2.0.1": "RequestStartTransaction"},
    "RemoteStop": {"1.6": "RemoteStopTransaction", "2.0.1": "RequestStopTransaction"},
}
NEUTRAL = {action: name for name, by_version in ACTIONS.items() for action in by_version.values()}

# 2.0.1 reports one "Occupied" where 1.6 says what the connector is doing; a driver sends 1.6 "Preparing".
STATUS_16 = {"Occupied": "Preparing"}


def subprotocol(version: str) -> str:
    """The websocket subprotocol of an OCPP version."""
    return "ocpp" + version


@dataclass(frozen=True)
class Sample:
    """A sampled value, rendered as a 1.6 string or a 2.0.1 number with a ``unitOfMeasure``."""

    value: int | float
    measurand: str | None = None
    unit: str | None = None
    phase: str | None = None
    context: str | None = None

    def v16(self) -> dict[str, Any]:
        """The 1.6 ``sampledValue`` entry."""
        entry: dict[str, Any] = {"value": str(self.value)}
        for key, value in (
            ("measurand", self.measurand),
            ("unit", self.unit),
            ("phase", self.phase),
            ("context", self.context),
        ):
            if value is not None:
                entry[key] = value
        return entry

    def v201(self) -> dict[str, Any]:
        """The 2.0.1 ``sampledValue`` entry."""
        entry: dict[str, Any] = {"value": self.value}
        for key, value in (("measurand", self.measurand), ("phase", self.phase), ("context", self.context)):
            if value is not None:
                entry[key] = value
        if self.unit is not None:
            entry["unit_of_measure"] = {"unit": self.unit}
        return entry


@dataclass(frozen=True)
class Verdict:
    """The CSMS's verdict on an id tag, in either version's words."""

    status: str
    parent_id_tag: str | None = None
    expiry: str | None = None

    @classmethod
    def of(cls, info: dict[str, Any] | None) -> Verdict | None:
        """From a 1.6 ``idTagInfo`` or a 2.0.1 ``idTokenInfo`` (snake_case keys)."""
        if info is None:
            return None
        group = info.get("group_id_token") or {}
        return cls(
            status=info["status"],
            parent_id_tag=info.get("parent_id_tag", group.get("id_token")),
            expiry=info.get("expiry_date", info.get("cache_expiry_date_time")),
        )


@dataclass
class Session:
    """A transaction as the station knows it (``ocpp_id``) and as the CSMS stores it (``id``)."""

    ocpp_id: int | str
    id: int
    evse_id: int
    verdict: Verdict | None
    seq_no: int = field(default=0)


class Driver:
    """One station of either version, driven through version-neutral steps."""

    def __init__(self, csms: Csms, version: str, station: Station16 | Station201) -> None:
        self.csms = csms
        self.version = version
        self.station = station
        self.station_id: str = station.id

    @property
    def v201(self) -> bool:
        """Whether the station speaks 2.0.1."""
        return self.version == "2.0.1"

    async def call(self, payload: Any) -> Any:
        """Send a message of the station's version; a CALLERROR is raised as the library's exception."""
        return await self.station.call(payload, suppress=False)

    # --- messages from the station --------------------------------------------------------------

    async def boot(
        self,
        vendor: str = "VendorX",
        model: str = "M1",
        *,
        serial_number: str | None = None,
        firmware_version: str | None = None,
    ) -> Any:
        """BootNotification; the answer has ``status``, ``interval`` and ``current_time`` in both versions."""
        if self.v201:
            station = {"vendor_name": vendor, "model": model}
            if serial_number is not None:
                station["serial_number"] = serial_number
            if firmware_version is not None:
                station["firmware_version"] = firmware_version
            return await self.call(call201.BootNotification(charging_station=station, reason="PowerUp"))
        return await self.call(
            call16.BootNotification(
                charge_point_vendor=vendor,
                charge_point_model=model,
                charge_point_serial_number=serial_number,
                firmware_version=firmware_version,
            )
        )

    async def heartbeat(self) -> str:
        """Heartbeat; returns the CSMS's time."""
        call = call201.Heartbeat() if self.v201 else call16.Heartbeat()
        return (await self.call(call)).current_time

    async def status(self, evse_id: int, status: str, timestamp: str = "2026-03-02T07:59:00Z") -> str:
        """StatusNotification of EVSE ``evse_id`` (connector 1; 0 is the station) in 2.0.1 status words;
        returns the word actually sent (1.6 says ``Preparing`` for ``Occupied``)."""
        if self.v201:
            await self.call(
                call201.StatusNotification(
                    timestamp=timestamp,
                    connector_status=status,
                    evse_id=evse_id,
                    connector_id=1 if evse_id > 0 else 0,
                )
            )
            return status
        sent = STATUS_16.get(status, status)
        await self.call(
            call16.StatusNotification(connector_id=evse_id, error_code="NoError", status=sent, timestamp=timestamp)
        )
        return sent

    async def authorize(self, id_tag: str) -> Verdict:
        """Authorize; returns the verdict."""
        if self.v201:
            result = await self.call(call201.Authorize(id_token={"id_token": id_tag, "type": "ISO14443"}))
            return Verdict.of(result.id_token_info)  # type: ignore[return-value]
        return Verdict.of((await self.call(call16.Authorize(id_tag=id_tag))).id_tag_info)  # type: ignore[return-value]

    async def start(
        self,
        id_tag: str = "TAG-1",
        *,
        evse_id: int = 1,
        meter_start_wh: int = 0,
        timestamp: str = "2026-03-02T08:00:00Z",
        reservation_id: int | None = None,
        remote_start_id: int | None = None,
        transaction_id: str | None = None,
    ) -> Session:
        """Start a session: 1.6 StartTransaction, or a 2.0.1 TransactionEvent Started whose meter value is
        the register at the start (``transaction_id`` names it; a fresh UUID by default)."""
        if not self.v201:
            result = await self.call(
                call16.StartTransaction(
                    connector_id=evse_id,
                    id_tag=id_tag,
                    meter_start=meter_start_wh,
                    timestamp=timestamp,
                    reservation_id=reservation_id,
                )
            )
            return Session(result.transaction_id, result.transaction_id, evse_id, Verdict.of(result.id_tag_info))
        ocpp_id = transaction_id or str(uuid.uuid4())
        info: dict[str, Any] = {"transaction_id": ocpp_id, "charging_state": "Charging"}
        if remote_start_id is not None:
            info["remote_start_id"] = remote_start_id
        result = await self.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp=timestamp,
                trigger_reason="RemoteStart" if remote_start_id is not None else "Authorized",
                seq_no=0,
                transaction_info=info,
                evse={"id": evse_id, "connector_id": 1},
                id_token={"id_token": id_tag, "type": "ISO14443"},
                reservation_id=reservation_id,
                meter_value=[
                    {
                        "timestamp": timestamp,
                        "sampled_value": [Sample(meter_start_wh, context="Transaction.Begin").v201()],
                    }
                ],
            )
        )
        return Session(ocpp_id, await self.csms_transaction_id(ocpp_id), evse_id, Verdict.of(result.id_token_info))

    async def meter(self, session: Session, timestamp: str, samples: Sequence[Sample]) -> None:
        """Meter values during a session: 1.6 MeterValues, or a 2.0.1 TransactionEvent Updated."""
        if not self.v201:
            await self.call(
                call16.MeterValues(
                    connector_id=session.evse_id,
                    transaction_id=session.ocpp_id,
                    meter_value=[{"timestamp": timestamp, "sampled_value": [sample.v16() for sample in samples]}],
                )
            )
            return
        session.seq_no += 1
        await self.call(
            call201.TransactionEvent(
                event_type="Updated",
                timestamp=timestamp,
                trigger_reason="MeterValuePeriodic",
                seq_no=session.seq_no,
                transaction_info={"transaction_id": session.ocpp_id},
                meter_value=[{"timestamp": timestamp, "sampled_value": [sample.v201() for sample in samples]}],
            )
        )

    async def stop(
        self,
        session: Session,
        *,
        meter_stop_wh: int,
        timestamp: str = "2026-03-02T09:00:00Z",
        reason: str | None = None,
        id_tag: str | None = None,
    ) -> Verdict | None:
        """End a session, with the register at the end as a ``Transaction.End`` sample: 1.6 StopTransaction,
        or a 2.0.1 TransactionEvent Ended. Returns the verdict on ``id_tag`` when one was given."""
        end = Sample(meter_stop_wh, context="Transaction.End")
        if not self.v201:
            result = await self.call(
                call16.StopTransaction(
                    meter_stop=meter_stop_wh,
                    timestamp=timestamp,
                    transaction_id=session.ocpp_id,
                    reason=reason,
                    id_tag=id_tag,
                    transaction_data=[{"timestamp": timestamp, "sampled_value": [end.v16()]}],
                )
            )
            return Verdict.of(result.id_tag_info)
        session.seq_no += 1
        info: dict[str, Any] = {"transaction_id": session.ocpp_id, "charging_state": "Idle"}
        if reason is not None:
            info["stopped_reason"] = reason
        result = await self.call(
            call201.TransactionEvent(
                event_type="Ended",
                timestamp=timestamp,
                trigger_reason="StopAuthorized" if id_tag is not None else "EVDeparted",
                seq_no=session.seq_no,
                transaction_info=info,
                id_token={"id_token": id_tag, "type": "ISO14443"} if id_tag is not None else None,
                meter_value=[{"timestamp": timestamp, "sampled_value": [end.v201()]}],
            )
        )
        return Verdict.of(result.id_token_info)

    async def csms_transaction_id(self, ocpp_id: int | str) -> int:
        """The CSMS's id of the station's transaction ``ocpp_id`` (1.6: the same integer)."""
        if isinstance(ocpp_id, int):
            return ocpp_id
        async with self.csms.database.read() as session:
            found = await session.scalar(
                select(Transaction.id).where(
                    Transaction.station_id == self.station_id, Transaction.ocpp_transaction_id == ocpp_id
                )
            )
        assert found is not None, f"no transaction {ocpp_id} stored for {self.station_id}"
        return found

    # --- commands the station received ----------------------------------------------------------

    def action(self, command: str) -> str:
        """The station's action name of a neutral command name (most are the same in both versions)."""
        return ACTIONS.get(command, {}).get(self.version, command)

    def received(self) -> list[str]:
        """The neutral names of the commands the station received, in order."""
        return [NEUTRAL.get(action, action) for action, _ in self.station.received]

    def last(self, command: str) -> dict[str, Any]:
        """The payload (snake_case) of the last ``command`` the station received."""
        return self.station.last(self.action(command))

    def answer(self, command: str, status: str) -> None:
        """Make the station answer ``command`` with ``status`` from now on."""
        self.station.answers[self.action(command)] = status

    def remote_start_id(self) -> int | None:
        """The ``remoteStartId`` of the last remote start (2.0.1; 1.6 has none)."""
        return self.last("RemoteStart").get("remote_start_id")


@contextlib.asynccontextmanager
async def connect(
    csms: Csms, station_id: str, version: str, *, password: str | None = None, prefix: str = ""
) -> AsyncIterator[Driver]:
    """A :class:`Driver` over a running station of ``version`` connected to ``csms``."""
    opener = connect201 if version == "2.0.1" else connect16
    async with opener(csms, station_id, password=password, prefix=prefix) as station:
        yield Driver(csms, version, station)
