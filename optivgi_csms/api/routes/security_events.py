"""``/api/v1/security-events``: the SecurityEventNotifications stations sent (OCPP 2.0.1, and 1.6 stations with
the security extension), all of them or one station's; a read token is enough.

The type is the station's own word (the specification's list, e.g. ``InvalidCsmsCertificate``,
``TamperDetectionActivated``, ``StartupOfTheDevice``, or a vendor's), so it is filtered as given, not checked
against a list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from optivgi_csms.api.deps import CsmsDep
from optivgi_csms.api.errors import ApiError, NotFoundError
from optivgi_csms.api.routes.stations import StationId
from optivgi_csms.api.schemas.text import PRINTABLE_ASCII, STATION_ID
from optivgi_csms.api.schemas.times import ApiTime
from optivgi_csms.services.station_events import SecurityEventFilter
from optivgi_csms.services.stations import UnknownStationError
from optivgi_csms.store.models import SecurityEvent

router = APIRouter(tags=["security events"])


class SecurityEventOut(BaseModel):
    """One SecurityEventNotification as the station sent it."""

    id: int = Field(description="the CSMS's id of the record")
    station_id: str
    type: str = Field(description="e.g. InvalidCsmsCertificate, TamperDetectionActivated, StartupOfTheDevice")
    timestamp: datetime = Field(description="when it happened, by the station's clock")
    tech_info: str | None = Field(description="the station's technical detail, if it gave one")
    received_at: datetime = Field(description="when the CSMS received it")

    @classmethod
    def of(cls, row: SecurityEvent) -> SecurityEventOut:
        """From the stored event."""
        return cls(
            id=row.id,
            station_id=row.station_id,
            type=row.type,
            timestamp=row.timestamp,
            tech_info=row.tech_info,
            received_at=row.received_at,
        )


TypeQuery = Annotated[
    str | None,
    Query(max_length=50, pattern=PRINTABLE_ASCII, description="only events of this type, e.g. StartupOfTheDevice"),
]
SinceQuery = Annotated[ApiTime | None, Query(description="at or after, by the station's clock (ISO 8601 with a zone)")]
UntilQuery = Annotated[ApiTime | None, Query(description="before, by the station's clock (ISO 8601 with a zone)")]
LimitQuery = Annotated[int, Query(ge=1, le=1000)]
OffsetQuery = Annotated[int, Query(ge=0, le=10**9)]


async def _page(
    csms: CsmsDep, response: Response, where: SecurityEventFilter, limit: int, offset: int
) -> list[SecurityEventOut]:
    if where.since is not None and where.until is not None and where.until <= where.since:
        raise ApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, "until: must be after since")
    rows, total = await csms.services.station_events.security_events(where, limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(total)
    return [SecurityEventOut.of(row) for row in rows]


@router.get("/security-events", response_model=list[SecurityEventOut])
async def list_security_events(
    csms: CsmsDep,
    response: Response,
    station_id: Annotated[str | None, Query(pattern=STATION_ID, description="only this station's")] = None,
    type: TypeQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> list[SecurityEventOut]:
    """Security events of every station, newest first (by the station's time); ``X-Total-Count`` says how many
    match in all."""
    where = SecurityEventFilter(station_id=station_id, type=type, since=since, until=until)
    return await _page(csms, response, where, limit, offset)


@router.get(
    "/stations/{station_id}/security-events",
    response_model=list[SecurityEventOut],
    responses={404: {"description": "unknown station"}},
)
async def list_station_security_events(
    csms: CsmsDep,
    response: Response,
    station_id: StationId,
    type: TypeQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> list[SecurityEventOut]:
    """One station's security events, newest first; 404 for a station the CSMS has never heard of."""
    try:
        await csms.services.stations.get(station_id)
    except UnknownStationError:
        raise NotFoundError(f"no station {station_id!r}") from None
    where = SecurityEventFilter(station_id=station_id, type=type, since=since, until=until)
    return await _page(csms, response, where, limit, offset)
