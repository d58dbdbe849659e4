"""The device model a 2.0.1 station reports (NotifyReport) and what GetVariables/SetVariables learn."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.domain.device_model import ReportedVariable, VariableRef, VariableResult
from optivgi_csms.domain.time import utc_now
from optivgi_csms.store.database import Database
from optivgi_csms.store.models import DeviceVariable

Key = tuple[str, str, int, int, str, str, str]


def _key(ref: VariableRef) -> Key:
    return (
        ref.component,
        ref.component_instance or "",
        -1 if ref.evse_id is None else ref.evse_id,
        -1 if ref.connector_id is None else ref.connector_id,
        ref.variable,
        ref.variable_instance or "",
        ref.attribute,
    )


def _row_key(row: DeviceVariable) -> Key:
    return _key(
        VariableRef(
            row.component,
            row.variable,
            row.component_instance,
            row.variable_instance,
            row.evse_id,
            row.connector_id,
            row.attribute_type,
        )
    )


def ref_of(row: DeviceVariable) -> VariableRef:
    """The reference of a stored attribute."""
    return VariableRef(
        row.component,
        row.variable,
        row.component_instance,
        row.variable_instance,
        row.evse_id,
        row.connector_id,
        row.attribute_type,
    )


class DeviceModelService:
    """Keeps one row per reported attribute of each station's device model, current with every report."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def reported(self, station_id: str, variables: Iterable[ReportedVariable]) -> None:
        """Upsert the attributes of a NotifyReport part."""
        updates = {_key(item.ref): item for item in variables}

        async def op(session: AsyncSession) -> None:
            rows = await self._rows(session, station_id)
            now = utc_now()
            for key, item in updates.items():
                row = rows.get(key) or self._new_row(session, station_id, item.ref)
                row.value = item.value
                row.mutability = item.mutability
                row.persistent = item.persistent
                row.constant = item.constant
                row.data_type = item.data_type
                row.unit = item.unit
                row.min_limit = item.min_limit
                row.max_limit = item.max_limit
                row.values_list = item.values_list
                row.updated_at = now

        if updates:
            await self._database.write(op)

    async def learned(
        self, station_id: str, results: Iterable[VariableResult], *, values: dict[VariableRef, str]
    ) -> None:
        """Store the values a GetVariables read or a SetVariables applied (accepted results only).

        ``values`` holds the values that were set, for SetVariables answers, which do not echo them.
        """
        accepted = {_key(result.ref): result for result in results if result.accepted}

        async def op(session: AsyncSession) -> None:
            rows = await self._rows(session, station_id)
            now = utc_now()
            for key, result in accepted.items():
                value = result.value if result.value is not None else values.get(result.ref)
                if value is None:
                    continue
                row = rows.get(key) or self._new_row(session, station_id, result.ref)
                row.value = value
                row.updated_at = now

        if accepted:
            await self._database.write(op)

    async def variables(self, station_id: str, component: str | None = None) -> list[DeviceVariable]:
        """The stored attributes of a station (of one component, when given)."""
        async with self._database.read() as session:
            query = select(DeviceVariable).where(DeviceVariable.station_id == station_id)
            if component is not None:
                query = query.where(DeviceVariable.component == component)
            return list(await session.scalars(query.order_by(DeviceVariable.component, DeviceVariable.variable)))

    @staticmethod
    async def _rows(session: AsyncSession, station_id: str) -> dict[Key, DeviceVariable]:
        rows = await session.scalars(select(DeviceVariable).where(DeviceVariable.station_id == station_id))
        return {_row_key(row): row for row in rows}

    @staticmethod
    def _new_row(session: AsyncSession, station_id: str, ref: VariableRef) -> DeviceVariable:
        fields: dict[str, Any] = {
            "station_id": station_id,
            "component": ref.component,
            "component_instance": ref.component_instance,
            "evse_id": ref.evse_id,
            "connector_id": ref.connector_id,
            "variable": ref.variable,
            "variable_instance": ref.variable_instance,
            "attribute_type": ref.attribute,
        }
        row = DeviceVariable(**fields)
        session.add(row)
        return row
