"""DataTransfer: vendor-specific messages, stored in both directions."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.database import Database
from optivgi_csms.store.insert_once import insert_once
from optivgi_csms.store.models import DataTransferRecord


class DataTransferService:
    """Stores every DataTransfer and decides the answer to incoming ones."""

    def __init__(self, database: Database, *, known_vendors: Iterable[str]) -> None:
        self._database = database
        self._known_vendors = frozenset(known_vendors)

    async def incoming(self, station_id: str, vendor_id: str, message_id: str | None, data: str | None) -> str:
        """Store a station's DataTransfer; returns ``Accepted`` for configured vendors, else ``UnknownVendorId``."""
        status = "Accepted" if vendor_id in self._known_vendors else "UnknownVendorId"
        await self.record(station_id, "in", vendor_id, message_id, data, status)
        return status

    async def record(
        self, station_id: str, direction: str, vendor_id: str, message_id: str | None, data: str | None, status: str
    ) -> None:
        """Store one DataTransfer (``direction`` is ``in`` or ``out``)."""

        # Taken once, outside the operation: a replay of it after a lost commit acknowledgement finds the
        # row it stored (the key is station, direction, vendor and this time) instead of storing it twice.
        received_at = utc_now()
        row = {
            "station_id": station_id,
            "direction": direction,
            "vendor_id": vendor_id,
            "message_id": message_id,
            "data": data,
            "status": status,
            "received_at": received_at,
        }

        async def op(session: AsyncSession) -> None:
            await insert_once(session, DataTransferRecord, [row])

        await self._database.write(op)
