"""EV charging needs (ISO 15118 via OCPP 2.0.1 NotifyEVChargingNeeds): stored for the scheduler."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.charging_needs import ChargingNeeds
from optivgi_csms.domain.time import utc_now
from optivgi_csms.services.events import ChargingNeedsReceived, EventBus
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import ChargingNeedsRecord, Transaction


class ChargingNeedsService:
    """Stores what EVs ask for and decides the answer.

    The answer follows OCPP 2.0.1 K15: ``Accepted`` promises a charging schedule soon, ``Rejected``
    says none will come. Until smart charging computes schedules for a site the honest answer is
    ``Rejected``; the needs are stored either way.
    """

    def __init__(self, database: Database, bus: EventBus, *, schedules_available: bool = False) -> None:
        self._database = database
        self._bus = bus
        self.schedules_available = schedules_available

    async def record(self, needs: ChargingNeeds) -> str:
        """Store ``needs`` (linked to the session open on the EVSE, if any); returns the answer status."""
        status = "Accepted" if self.schedules_available else "Rejected"

        async def op(session: AsyncSession) -> int | None:
            transaction_id = await session.scalar(
                select(Transaction.id)
                .where(
                    Transaction.station_id == needs.station_id,
                    Transaction.evse_id == needs.evse_id,
                    Transaction.stopped_at.is_(None),
                )
                .order_by(Transaction.started_at.desc())
                .limit(1)
            )
            session.add(
                ChargingNeedsRecord(
                    station_id=needs.station_id,
                    evse_id=needs.evse_id,
                    transaction_id=transaction_id,
                    requested_energy_transfer=needs.requested_energy_transfer,
                    departure_time=needs.departure_time,
                    energy_amount_wh=needs.energy_amount_wh,
                    ev_min_current_a=needs.ev_min_current_a,
                    ev_max_current_a=needs.ev_max_current_a,
                    ev_max_voltage_v=needs.ev_max_voltage_v,
                    ev_max_power_w=needs.ev_max_power_w,
                    state_of_charge=needs.state_of_charge,
                    ev_energy_capacity_wh=needs.ev_energy_capacity_wh,
                    max_schedule_tuples=needs.max_schedule_tuples,
                    raw=needs.raw,
                    status=status,
                    received_at=utc_now(),
                )
            )
            return transaction_id

        transaction_id = await self._database.write(op)
        self._bus.publish(ChargingNeedsReceived(needs.station_id, needs.evse_id, transaction_id))
        return status
