"""``/api/v1/transactions``: charging sessions — list with filters, one with its meter values and the needs
it is planned with, and setting a session's departure time and energy (which re-plans its site).

Energies are kWh, powers kW or as the station reported them (each sample keeps its unit). A session's
``needs`` say where its departure and energy target come from: ``ev`` (the EV's ISO 15118
NotifyEVChargingNeeds, which always wins), ``session`` (set here with ``PUT .../needs``) or ``site`` (the
site's ``default_dwell_s`` and ``default_energy_kwh``) — the words the plan and the cycles use too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from optivgi_csms.api.deps import CsmsDep
from optivgi_csms.api.errors import ApiError, ConflictError, NotFoundError
from optivgi_csms.api.schemas.text import PRINTABLE_ASCII, STATION_ID
from optivgi_csms.api.schemas.times import ApiTime
from optivgi_csms.domain.time import utc_now
from optivgi_csms.services.transaction_history import (
    CHART_MEASURANDS,
    NeedsInForce,
    TransactionFilter,
    TransactionHistory,
    TransactionState,
    TransactionSummary,
)
from optivgi_csms.services.transactions import TransactionClosedError, UnknownTransactionError
from optivgi_csms.store.models import MeterValue

if TYPE_CHECKING:
    from optivgi_csms.server.app import Csms

router = APIRouter(prefix="/transactions", tags=["transactions"])

#: Transaction ids are 32-bit in the database; a larger one cannot exist (404 would need a query that fails).
MAX_ID = 2**31 - 1
#: The most energy a session may be asked to take (a 1 MWh truck battery is already generous).
MAX_ENERGY_KWH = 1000.0
#: The furthest ahead a departure may be set.
MAX_DEPARTURE_AHEAD = timedelta(days=31)

TransactionId = Annotated[int, Path(ge=1, le=MAX_ID, description="the CSMS's transaction id")]


# --- models ----------------------------------------------------------------------------------------------


class TransactionOut(BaseModel):
    """A charging session as the CSMS recorded it."""

    id: int = Field(description="the CSMS's id (OCPP 1.6: the transactionId the station uses)")
    station_id: str
    evse_id: int = Field(description="the EVSE (OCPP 1.6: the connector)")
    connector_id: int
    ocpp_transaction_id: str | None = Field(description="OCPP 2.0.1: the station's own transaction id")
    id_tag: str | None
    authorization_status: str | None = Field(description="the verdict on the id tag when it started")
    reservation_id: int | None
    state: TransactionState
    charging_state: str | None = Field(description="OCPP 2.0.1: Charging, EVConnected, SuspendedEV, ...")
    started_at: datetime
    stopped_at: datetime | None
    stop_reason: str | None
    meter_start_wh: float | None
    meter_stop_wh: float | None
    energy_kwh: float | None = Field(
        description="energy delivered so far (the final figure once closed); null before any meter reading"
    )
    departure_at: datetime | None = Field(description="the departure set for the session (PUT .../needs)")
    energy_target_kwh: float | None = Field(description="the energy set for the session (PUT .../needs)")
    uncontrolled_reason: str | None = Field(description="why smart charging does not steer it, when it does not")

    @classmethod
    def of(cls, summary: TransactionSummary) -> TransactionOut:
        """From a stored session."""
        row = summary.row
        return cls(
            id=row.id,
            station_id=row.station_id,
            evse_id=row.evse_id,
            connector_id=row.connector_id,
            ocpp_transaction_id=row.ocpp_transaction_id,
            id_tag=row.id_tag,
            authorization_status=row.authorization_status,
            reservation_id=row.reservation_id,
            state=TransactionState.OPEN if row.stopped_at is None else TransactionState.CLOSED,
            charging_state=row.charging_state,
            started_at=row.started_at,
            stopped_at=row.stopped_at,
            stop_reason=row.stop_reason,
            meter_start_wh=row.meter_start_wh,
            meter_stop_wh=row.meter_stop_wh,
            energy_kwh=round(summary.energy_wh / 1000.0, 6) if summary.energy_wh is not None else None,
            departure_at=row.departure_at,
            energy_target_kwh=row.energy_target_kwh,
            uncontrolled_reason=row.uncontrolled_reason,
        )


class NeedsOut(BaseModel):
    """The departure and energy the scheduler plans the session with, and where each came from."""

    departure_at: datetime
    departure_source: str = Field(description="ev (ISO 15118 needs), session (set through the API) or site")
    energy_kwh: float = Field(description="the energy target")
    energy_source: str = Field(description="ev (ISO 15118 needs), session (set through the API) or site")
    energy_remaining_kwh: float = Field(description="the target less what was delivered since it was given")
    ev_needs_at: datetime | None = Field(description="when the EV last told its needs (null: never)")

    @classmethod
    def of(cls, needs: NeedsInForce) -> NeedsOut:
        """From the needs in force."""
        return cls(
            departure_at=needs.departure_at,
            departure_source=needs.departure_source,
            energy_kwh=round(needs.energy_kwh, 6),
            energy_source=needs.energy_source,
            energy_remaining_kwh=round(needs.energy_remaining_kwh, 6),
            ev_needs_at=needs.ev_needs_at,
        )


class PlannedOut(BaseModel):
    """What the site's current plan gives the session."""

    computed_at: datetime
    power_now_kw: float = Field(description="the plan's power in its first slot")
    planned_kwh: float = Field(description="energy the plan gives it over the horizon")
    departure: datetime = Field(description="the departure planned with (rounded up to a slot's end)")
    capped: str | None = Field(description="why its maximum is lowered (it draws less than offered), if it is")


class SampleOut(BaseModel):
    """One sampled value as the station reported it."""

    timestamp: datetime
    measurand: str
    phase: str | None
    value: float | None = Field(description="the number, in ``unit`` (null: signed or not a number)")
    raw: str = Field(description="the value as sent")
    unit: str | None
    context: str
    location: str

    @classmethod
    def of(cls, row: MeterValue) -> SampleOut:
        """From a stored sample."""
        return cls(
            timestamp=row.timestamp,
            measurand=row.measurand,
            phase=row.phase,
            value=row.value_numeric,
            raw=row.value,
            unit=row.unit,
            context=row.context,
            location=row.location,
        )


class TransactionDetail(TransactionOut):
    """A session with its needs, its place in the plan and its latest energy and power samples."""

    needs: NeedsOut
    plan: PlannedOut | None = Field(description="null when the site's current plan does not include it")
    meter_values: list[SampleOut] = Field(
        description="the last `samples` energy-register and power samples, oldest first"
    )
    meter_values_total: int = Field(description="how many such samples the session has in all")


class NeedsRequest(BaseModel):
    """What the session needs; give one or both. The EV's own ISO 15118 needs, when it sends them, win."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    departure_at: ApiTime | None = Field(
        default=None, description="when the EV leaves: ISO 8601 with a zone, in the future (at most 31 days ahead)"
    )
    energy_kwh: float | None = Field(
        default=None, gt=0, le=MAX_ENERGY_KWH, description="energy the EV wants in this session, kWh"
    )

    @model_validator(mode="after")
    def _something(self) -> NeedsRequest:
        if self.departure_at is None and self.energy_kwh is None:
            raise ValueError("give departure_at, energy_kwh or both")
        return self


# --- helpers ------------------------------------------------------------------------------------------------


async def _summary(history: TransactionHistory, transaction_id: int) -> TransactionSummary:
    summary = await history.get(transaction_id)
    if summary is None:
        raise NotFoundError(f"no transaction {transaction_id}")
    return summary


async def _detail(
    csms: Csms, history: TransactionHistory, summary: TransactionSummary, samples: int
) -> TransactionDetail:
    site_id = await csms.services.sites.site_of(summary.row.station_id)
    site = await csms.services.sites.get(site_id)
    dwell = csms.smart_charging.scale.duration(site.default_dwell_s)
    needs = await history.needs_in_force(summary, site, dwell)
    rows, total = await history.samples(summary.row.id, measurands=CHART_MEASURANDS, limit=samples, newest=True)
    planned = None
    plan = csms.smart_charging.plan(site_id)
    entry = plan.of_transaction(summary.row.id) if plan is not None else None
    if plan is not None and entry is not None:
        planned = PlannedOut(
            computed_at=plan.computed_at,
            power_now_kw=round(entry.power_kw[0], 3) if entry.power_kw else 0.0,
            planned_kwh=round(entry.planned_kwh, 4),
            departure=entry.departure,
            capped=entry.capped,
        )
    return TransactionDetail(
        **TransactionOut.of(summary).model_dump(),
        needs=NeedsOut.of(needs),
        plan=planned,
        meter_values=[SampleOut.of(row) for row in rows],
        meter_values_total=total,
    )


# --- routes -------------------------------------------------------------------------------------------------


@router.get("", response_model=list[TransactionOut])
async def list_transactions(
    csms: CsmsDep,
    response: Response,
    station_id: Annotated[str | None, Query(pattern=STATION_ID, description="only this station's")] = None,
    id_tag: Annotated[
        str | None, Query(max_length=36, pattern=PRINTABLE_ASCII, description="only sessions started with this tag")
    ] = None,
    since: Annotated[ApiTime | None, Query(description="started at or after (ISO 8601 with a zone)")] = None,
    until: Annotated[ApiTime | None, Query(description="started before (ISO 8601 with a zone)")] = None,
    state: Annotated[TransactionState | None, Query(description="open (still charging) or closed")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[TransactionOut]:
    """Sessions, newest start first; the ``X-Total-Count`` header says how many match in all."""
    if since is not None and until is not None and until <= since:
        raise ApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, "until: must be after since")
    where = TransactionFilter(station_id=station_id, id_tag=id_tag, since=since, until=until, state=state)
    found, total = await TransactionHistory(csms.database).list(where, limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(total)
    return [TransactionOut.of(summary) for summary in found]


@router.get("/{transaction_id}", response_model=TransactionDetail, responses={404: {}})
async def get_transaction(
    transaction_id: TransactionId,
    csms: CsmsDep,
    samples: Annotated[
        int, Query(ge=0, le=5000, description="how many of the latest energy and power samples to include")
    ] = 200,
) -> TransactionDetail:
    """One session: energy so far, the needs it is planned with, its plan, and its latest meter samples
    (all of them, page by page, from ``/meter-values``)."""
    history = TransactionHistory(csms.database)
    return await _detail(csms, history, await _summary(history, transaction_id), samples)


@router.get("/{transaction_id}/meter-values", response_model=list[SampleOut], responses={404: {}})
async def list_meter_values(
    transaction_id: TransactionId,
    csms: CsmsDep,
    response: Response,
    measurand: Annotated[
        str | None,
        Query(max_length=64, pattern=PRINTABLE_ASCII, description="only this measurand, e.g. Power.Active.Import"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[SampleOut]:
    """Every sample of the session in time order, page by page; ``X-Total-Count`` says how many in all."""
    history = TransactionHistory(csms.database)
    await _summary(history, transaction_id)
    rows, total = await history.samples(
        transaction_id, measurands=[measurand] if measurand is not None else None, limit=limit, offset=offset
    )
    response.headers["X-Total-Count"] = str(total)
    return [SampleOut.of(row) for row in rows]


@router.put("/{transaction_id}/needs", response_model=TransactionDetail, responses={404: {}, 409: {}})
async def set_needs(transaction_id: TransactionId, body: NeedsRequest, csms: CsmsDep) -> TransactionDetail:
    """Set when the session's EV leaves and how much energy it wants; its site plans again at once.

    409 for a session that has ended; 422 for a departure in the past (or more than 31 days ahead) or an
    energy that is not above 0 and at most 1000 kWh. The answer shows the needs now in force: an EV that
    told its own needs (ISO 15118) keeps them."""
    now = utc_now()
    if body.departure_at is not None and body.departure_at <= now:
        raise ApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, "departure_at: must be in the future")
    if body.departure_at is not None and body.departure_at > now + MAX_DEPARTURE_AHEAD:
        raise ApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, "departure_at: at most 31 days ahead")
    try:
        await csms.services.transactions.set_needs(
            transaction_id, departure_at=body.departure_at, energy_kwh=body.energy_kwh
        )
    except UnknownTransactionError:
        raise NotFoundError(f"no transaction {transaction_id}") from None
    except TransactionClosedError as error:
        raise ConflictError(f"{error}: its needs can no longer change") from None
    history = TransactionHistory(csms.database)
    return await _detail(csms, history, await _summary(history, transaction_id), samples=0)
