"""Meter values: every sampled value stored once, linked to its transaction when there is one."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.meter import SampledValue, energy_register_wh
from optivgi_csms.domain.station import EvseRef
from optivgi_csms.domain.time import utc_now
from optivgi_csms.services.events import EventBus, MeterReading
from optivgi_csms.store.appends import append_later
from optivgi_csms.store.database import Database
from optivgi_csms.store.insert_once import insert_once
from optivgi_csms.store.models import MeterValue, Transaction


async def insert_samples(
    session: AsyncSession,
    station_id: str,
    where: EvseRef,
    samples: Iterable[SampledValue],
    *,
    transaction_id: int | None,
    ocpp_transaction_ref: str | None = None,
    received_at: datetime | None = None,
) -> None:
    """Insert samples; a sample already stored (a station's retransmission) is skipped, not duplicated."""
    rows = sample_rows(
        station_id,
        where,
        samples,
        transaction_id=transaction_id,
        ocpp_transaction_ref=ocpp_transaction_ref,
        received_at=received_at,
    )
    await insert_once(session, MeterValue, rows)


def sample_rows(
    station_id: str,
    where: EvseRef,
    samples: Iterable[SampledValue],
    *,
    transaction_id: int | None,
    ocpp_transaction_ref: str | None = None,
    received_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """The ``meter_values`` rows of samples."""
    received_at = received_at or utc_now()
    return [
        {
            "station_id": station_id,
            "evse_id": where.evse_id,
            "connector_id": where.connector_id,
            "transaction_id": transaction_id,
            "ocpp_transaction_ref": ocpp_transaction_ref,
            "timestamp": sample.timestamp,
            "measurand": sample.measurand,
            "phase": sample.phase,
            "unit": sample.unit,
            "context": sample.context,
            "location": sample.location,
            "format": sample.format,
            "value": sample.value,
            "value_numeric": sample.numeric,
            "signed_data": sample.signed_data,
            "received_at": received_at,
        }
        for sample in samples
    ]


async def find_transaction(session: AsyncSession, station_id: str, transaction_id: int) -> Transaction | None:
    """The station's transaction with this id, or None (unknown, or another station's)."""
    transaction = await session.get(Transaction, transaction_id)
    if transaction is None or transaction.station_id != station_id:
        return None
    return transaction


_POWER_FACTORS = {"w": 0.001, "kw": 1.0}


def meter_readings(
    station_id: str, evse_id: int, transaction_id: int | None, samples: Iterable[SampledValue]
) -> list[MeterReading]:
    """Summarise samples into one reading per timestamp: power (kW), energy register (Wh), per-phase
    current (A) and state of charge, whichever the station reported."""
    by_time: dict[datetime, list[SampledValue]] = {}
    for sample in samples:
        by_time.setdefault(sample.timestamp, []).append(sample)
    readings = []
    for timestamp, group in sorted(by_time.items()):
        power_total: float | None = None
        power_phases = 0.0
        currents: list[float] = []
        phases: list[str] = []
        energy_wh: float | None = None
        soc: float | None = None
        for sample in group:
            number = sample.numeric
            if number is None:
                continue
            if sample.measurand == "Power.Active.Import":
                factor = _POWER_FACTORS.get((sample.unit or "W").lower())
                if factor is None:
                    continue
                if sample.phase is None:
                    power_total = number * factor
                else:
                    power_phases += number * factor
            elif sample.measurand == "Current.Import" and sample.phase is not None:
                currents.append(number)
                phases.append(sample.phase.split("-")[0])  # "L1" of "L1-N"
            elif sample.measurand == "SoC":
                soc = number
            else:
                energy_wh = energy_register_wh(sample) if energy_wh is None else energy_wh
        power_kw = power_total if power_total is not None else (power_phases or None)
        if power_kw is None and energy_wh is None and not currents and soc is None:
            continue
        readings.append(
            MeterReading(
                station_id=station_id,
                evse_id=evse_id,
                transaction_id=transaction_id,
                timestamp=timestamp,
                power_kw=power_kw,
                energy_wh=energy_wh,
                current_a=tuple(currents),
                soc=soc,
                current_phases=tuple(phases),
            )
        )
    return readings


#: Transactions remembered per service (station id and transaction id → known): enough for every
#: session under way at a large site, small in memory.
KNOWN_TRANSACTIONS = 50_000


class MeterValueService:
    """Stores MeterValues messages and publishes what they say."""

    def __init__(self, database: Database, bus: EventBus) -> None:
        self._database = database
        self._bus = bus
        # A transaction's station never changes and transactions are never deleted, so a lookup that found
        # the station's transaction holds for good: later MeterValues of the session skip the query.
        self._known: OrderedDict[tuple[str, int], None] = OrderedDict()

    async def _transaction_id(self, session: AsyncSession, station_id: str, transaction_ref: int) -> int | None:
        if (station_id, transaction_ref) in self._known:
            return transaction_ref
        transaction = await find_transaction(session, station_id, transaction_ref)
        return transaction.id if transaction is not None else None

    def _remember(self, station_id: str, transaction_id: int) -> None:
        """Note a transaction found by a committed write (a batch rolled back could have seen one that is not)."""
        key = (station_id, transaction_id)
        self._known[key] = None
        self._known.move_to_end(key)
        if len(self._known) > KNOWN_TRANSACTIONS:
            self._known.popitem(last=False)

    async def record(
        self, station_id: str, where: EvseRef, samples: list[SampledValue], *, transaction_ref: int | None
    ) -> None:
        """Store samples reported for ``where``, linked to the transaction the station names if we know it.

        Samples naming a transaction we do not know are kept with the station's reference, never dropped.
        """

        async def op(session: AsyncSession) -> int | None:
            transaction_id = (
                await self._transaction_id(session, station_id, transaction_ref)
                if transaction_ref is not None
                else None
            )
            rows = sample_rows(
                station_id,
                where,
                samples,
                transaction_id=transaction_id,
                ocpp_transaction_ref=None
                if transaction_id is not None or transaction_ref is None
                else str(transaction_ref),
            )
            # Inserted with the batch's other MeterValues in one statement (store/appends.py).
            append_later(session, MeterValue, rows)
            return transaction_id

        transaction_id = await self._database.write(op, appends_only=True)
        if transaction_id is not None:
            self._remember(station_id, transaction_id)
        for reading in meter_readings(station_id, where.evse_id, transaction_id, samples):
            self._bus.publish(reading)
