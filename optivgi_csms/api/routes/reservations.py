"""``/api/v1/reservations``: reserve an EVSE for an id tag over a time window, list, read, cancel.

A reservation is stored at once and planned by smart charging as an EV still to come; ReserveNow goes to
the station when the window begins (at once for a window open now, and then the answer is the
reservation's ``status``: Accepted, or the station's refusal — Occupied, Rejected, Faulted, Unavailable).
A later window, or a station not connected, stays ``Scheduled`` until then. Cancelling sends
CancelReservation when the station holds the reservation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from optivgi_csms.api.deps import CsmsDep
from optivgi_csms.api.errors import ApiError, ConflictError, NotFoundError
from optivgi_csms.api.schemas.text import PRINTABLE_ASCII, STATION_ID, STATION_ID_RULE
from optivgi_csms.api.schemas.times import ApiTime
from optivgi_csms.domain.reservation import ACTIVE_STATUSES, ReservationStatus
from optivgi_csms.domain.time import utc_now
from optivgi_csms.services.reservation_manager import ReservationStateError
from optivgi_csms.services.reservations import (
    ReservationConflictError,
    UnknownReservationError,
    UnknownStationError,
)
from optivgi_csms.store.models import Reservation

router = APIRouter(prefix="/reservations", tags=["reservations"])

MAX_ID = 2**31 - 1
#: EVSE ids are small; a bound keeps absurd ones out of the database and the station's schema.
MAX_EVSE_ID = 1000
MAX_ENERGY_KWH = 1000.0

ReservationId = Annotated[int, Path(ge=1, le=MAX_ID, description="the reservation's id (its reservationId)")]
Tag = Annotated[
    str,
    Field(
        min_length=1,
        max_length=36,
        pattern=PRINTABLE_ASCII,
        description="printable ASCII; at most 20 characters for an OCPP 1.6 station, 36 for 2.0.1",
    ),
]


class ReservationOut(BaseModel):
    """A reservation and where it stands."""

    id: int = Field(description="its reservationId, as the station sees it")
    station_id: str
    evse_id: int = Field(description="the EVSE (OCPP 1.6: the connector); 0 is any")
    id_tag: str
    parent_id_tag: str | None
    starts_at: datetime | None = Field(description="when the window begins (ReserveNow is sent then)")
    expires_at: datetime = Field(description="when the window ends (the station's expiry)")
    energy_kwh: float | None = Field(description="energy the EV is planned to want (null: the site's default)")
    status: ReservationStatus = Field(
        description="Scheduled (not sent yet), Requested (sent, no answer yet), the station's answer (Accepted, "
        "Occupied, Rejected, Faulted, Unavailable), Cancelled, Used, Expired or Failed"
    )
    active: bool = Field(description="still holding (or about to hold) the place: planned as an EV to come")
    transaction_id: int | None = Field(description="the session that used it")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Reservation) -> ReservationOut:
        """From the reservation's row."""
        try:
            status_ = ReservationStatus(row.status)
        except ValueError:  # a word written before these statuses were fixed: it holds nothing now
            status_ = ReservationStatus.FAILED
        return cls(
            id=row.id,
            station_id=row.station_id,
            evse_id=row.evse_id,
            id_tag=row.id_tag,
            parent_id_tag=row.parent_id_tag,
            starts_at=row.starts_at,
            expires_at=row.expires_at,
            energy_kwh=row.energy_kwh,
            status=status_,
            active=status_ in ACTIVE_STATUSES and row.transaction_id is None and row.expires_at > utc_now(),
            transaction_id=row.transaction_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ReservationCreate(BaseModel):
    """Reserve an EVSE for an id tag from ``starts_at`` (default now) until ``expires_at``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    station_id: str = Field(pattern=STATION_ID, description=STATION_ID_RULE)
    evse_id: int = Field(ge=0, le=MAX_EVSE_ID, description="the EVSE (OCPP 1.6: the connector); 0 is any")
    id_tag: Tag
    parent_id_tag: Tag | None = None
    starts_at: ApiTime | None = Field(default=None, description="ISO 8601 with a zone; default now")
    expires_at: ApiTime = Field(description="ISO 8601 with a zone; after starts_at and in the future")
    energy_kwh: float | None = Field(
        default=None, gt=0, le=MAX_ENERGY_KWH, description="energy the EV will want, kWh (default: the site's)"
    )

    @model_validator(mode="after")
    def _window(self) -> ReservationCreate:
        if self.starts_at is not None and self.expires_at <= self.starts_at:
            raise ValueError("expires_at must be after starts_at")
        return self


def _unprocessable(detail: str) -> ApiError:
    return ApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


async def _row(csms: CsmsDep, reservation_id: int) -> Reservation:
    row = await csms.reservations.get(reservation_id)
    if row is None:
        raise NotFoundError(f"no reservation {reservation_id}")
    return row


@router.post("", response_model=ReservationOut, status_code=status.HTTP_201_CREATED, responses={404: {}, 409: {}})
async def create_reservation(body: ReservationCreate, csms: CsmsDep, response: Response) -> ReservationOut:
    """Reserve; for a window open now the answer comes after the station's, and ``status`` is it.

    404 for a station the CSMS does not know; 409 when the EVSE is reserved for part of the window; 422 for
    a window that has ended or an id tag the station's OCPP version cannot carry."""
    now = utc_now()
    starts_at = body.starts_at or now
    if body.expires_at <= now:
        raise _unprocessable("expires_at: must be in the future")
    try:
        reservation_id = await csms.reservations.reserve(
            body.station_id,
            body.evse_id,
            body.id_tag,
            starts_at,
            body.expires_at,
            energy_kwh=body.energy_kwh,
            parent_id_tag=body.parent_id_tag,
        )
    except UnknownStationError:
        raise NotFoundError(f"no station {body.station_id!r}") from None
    except ReservationConflictError as error:
        raise ConflictError(str(error)) from None
    except ValueError as error:
        # The manager's own checks: the window, and tag lengths per the station's OCPP version.
        message = str(error)
        field = "parent_id_tag" if "parent id tag" in message else "id_tag" if "id tag" in message else "expires_at"
        raise _unprocessable(f"{field}: {message}") from None
    response.headers["Location"] = f"/api/v1/reservations/{reservation_id}"
    return ReservationOut.of(await _row(csms, reservation_id))


@router.get("", response_model=list[ReservationOut])
async def list_reservations(
    csms: CsmsDep,
    response: Response,
    station_id: Annotated[str | None, Query(pattern=STATION_ID, description="only this station's")] = None,
    status_: Annotated[ReservationStatus | None, Query(alias="status", description="only in this status")] = None,
    active: Annotated[
        bool | None, Query(description="true: only those still holding a place; false: only those that are over")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[ReservationOut]:
    """Reservations, newest first; the ``X-Total-Count`` header says how many match in all."""
    rows, total = await csms.services.reservations.list(
        station_id=station_id, status=status_, active=active, limit=limit, offset=offset
    )
    response.headers["X-Total-Count"] = str(total)
    return [ReservationOut.of(row) for row in rows]


@router.get("/{reservation_id}", response_model=ReservationOut, responses={404: {}})
async def get_reservation(reservation_id: ReservationId, csms: CsmsDep) -> ReservationOut:
    """One reservation."""
    return ReservationOut.of(await _row(csms, reservation_id))


@router.post("/{reservation_id}/cancel", response_model=ReservationOut, responses={404: {}, 409: {}, 502: {}, 504: {}})
async def cancel_reservation(reservation_id: ReservationId, csms: CsmsDep) -> ReservationOut:
    """Cancel: a reservation the station holds gets CancelReservation; one not sent yet is just withdrawn.

    Cancelling a cancelled reservation changes nothing. 409 when it is over (used, expired, refused) or its
    station, holding it, is not connected; 504 when the station does not answer (it stays as it was)."""
    try:
        await csms.reservations.cancel(reservation_id)
    except UnknownReservationError:
        raise NotFoundError(f"no reservation {reservation_id}") from None
    except ReservationStateError as error:
        raise ConflictError(str(error)) from None
    return ReservationOut.of(await _row(csms, reservation_id))
