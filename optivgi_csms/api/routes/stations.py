"""``/api/v1/stations``: the stations the CSMS knows, their state, registration, password and site.

A station is known once it connected or an operator registered it. Registering, unregistering and setting a
password do what ``optivgi-csms station add/remove`` does (the same service functions); the next handshake of
the station sees the change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, Field, field_validator

from optivgi_csms.api.deps import CsmsDep
from optivgi_csms.api.errors import NotFoundError
from optivgi_csms.domain.station import STATION_ID_PATTERN, STATION_ID_RULE
from optivgi_csms.security.passwords import MAX_LENGTH, MIN_LENGTH, PasswordPolicyError, check_policy
from optivgi_csms.services.sites import UnknownSiteError
from optivgi_csms.services.stations import StationView, UnknownStationError
from optivgi_csms.store.models import ChargingProfileRecord, Connector

router = APIRouter(tags=["stations"])

#: A station id in a path, checked by the rule the OCPP handshake applies (422 otherwise).
StationId = Annotated[
    str,
    Path(
        pattern=f"^{STATION_ID_PATTERN.pattern}$",
        description=f"the station's id: {STATION_ID_RULE}",
        examples=["CS-1"],
    ),
]

# No control characters: PostgreSQL text cannot hold NUL, and such an id can only be a mistake.
SITE_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
SiteId = Annotated[
    str,
    Field(min_length=1, max_length=48, pattern=SITE_ID_PATTERN, description="a site id (`default`: the default site)"),
]


# --- response models ---------------------------------------------------------------------------------


class ConnectorOut(BaseModel):
    """The current state of one EVSE/connector, as the station last reported it (EVSE 0 is the station)."""

    evse_id: int = Field(description="the EVSE (OCPP 1.6: the connector id)")
    connector_id: int = Field(description="the connector on the EVSE (always 1 for OCPP 1.6, 0 for EVSE 0)")
    status: str = Field(description="e.g. Available, Occupied, Charging, Faulted, Unavailable")
    error_code: str | None = Field(description="OCPP 1.6 errorCode (NoError when fine); 2.0.1 reports none")
    info: str | None
    vendor_id: str | None
    vendor_error_code: str | None
    status_at: datetime | None = Field(description="the station's time of the status")
    updated_at: datetime = Field(description="when the CSMS received it")

    @classmethod
    def of(cls, row: Connector) -> ConnectorOut:
        """From the connector's row."""
        return cls(
            evse_id=row.evse_id,
            connector_id=row.connector_id,
            status=row.status,
            error_code=row.error_code,
            info=row.info,
            vendor_id=row.vendor_id,
            vendor_error_code=row.vendor_error_code,
            status_at=row.status_at,
            updated_at=row.updated_at,
        )


class StationOut(BaseModel):
    """A station: what it said at its last boot, its registration and connection, its connectors."""

    id: str
    ocpp_version: str | None = Field(description="`1.6` or `2.0.1` (its last connection); null if it never connected")
    vendor: str | None
    model: str | None
    firmware_version: str | None
    serial_number: str | None
    charge_box_serial_number: str | None = Field(description="OCPP 1.6 only")
    registered: bool = Field(description="registered by an operator (a station may connect unregistered)")
    password_set: bool = Field(description="whether it has a Basic-auth password (security profile 1)")
    site_id: str = Field(description="the site it belongs to")
    connected: bool = Field(description="connected to this CSMS now")
    connected_since: datetime | None = Field(description="start of the current connection (null when not connected)")
    last_connected_at: datetime | None
    last_disconnected_at: datetime | None
    last_boot_at: datetime | None
    last_heartbeat_at: datetime | None
    last_seen_at: datetime | None = Field(description="the latest of its connection, boot, heartbeat, disconnection")
    boot_status: str | None = Field(description="the answer to its last BootNotification")
    boot_reason: str | None = Field(description="OCPP 2.0.1 only")
    created_at: datetime = Field(description="when the CSMS first knew it")
    connectors: list[ConnectorOut]


class ProfileAnswerOut(BaseModel):
    """A charging profile the CSMS sent to the station, with the station's answer."""

    id: int = Field(description="the record's id")
    evse_id: int
    profile_id: int
    stack_level: int
    purpose: str
    kind: str
    transaction_id: int | None = Field(description="the CSMS's transaction id, for Tx profiles")
    status: str | None = Field(
        description="the answer: Accepted, Rejected; or Timeout, NotConnected, CallError:<code>; null while waiting"
    )
    sent_at: datetime
    answered_at: datetime | None
    cleared_at: datetime | None
    profile: dict[str, Any] = Field(description="the profile as sent (version-neutral form)")

    @classmethod
    def of(cls, row: ChargingProfileRecord) -> ProfileAnswerOut:
        """From the profile's record."""
        return cls(
            id=row.id,
            evse_id=row.evse_id,
            profile_id=row.profile_id,
            stack_level=row.stack_level,
            purpose=row.purpose,
            kind=row.kind,
            transaction_id=row.transaction_id,
            status=row.status,
            sent_at=row.sent_at,
            answered_at=row.answered_at,
            cleared_at=row.cleared_at,
            profile=row.profile,
        )


class StationDetailOut(StationOut):
    """A station with everything the CSMS knows about it: its boot details, smart-charging capabilities and
    the last charging profiles it was sent."""

    iccid: str | None
    imsi: str | None
    meter_type: str | None
    meter_serial_number: str | None
    firmware_status: str | None = Field(description="the last FirmwareStatusNotification")
    diagnostics_status: str | None = Field(description="the last DiagnosticsStatusNotification (1.6)")
    log_status: str | None = Field(description="the last LogStatusNotification (2.0.1)")
    capabilities: dict[str, Any] | None = Field(
        description="smart-charging capabilities read after boot (units, stack levels, periods); null until read"
    )
    smart_charging_note: str | None = Field(description="why smart charging does not control it, when it does not")
    charging_profiles: list[ProfileAnswerOut] = Field(description="the last profiles sent, newest first")


class PasswordOut(BaseModel):
    """Whether the station now has a password (the password itself is never returned)."""

    id: str
    password_set: bool


class SiteOut(BaseModel):
    """The site a station now belongs to."""

    id: str
    site_id: str


# --- request models ----------------------------------------------------------------------------------


def _checked_password(password: str | None) -> str | None:
    # The rules of `station add` (OCPP's 16-40 printable ASCII), as a validation error naming the field.
    if password is not None:
        try:
            check_policy(password)
        except PasswordPolicyError as error:
            raise ValueError(str(error)) from None
    return password


class StationIn(BaseModel):
    """Register a station (or update its registration)."""

    password: str | None = Field(
        default=None,
        description=f"its Basic-auth password for security profile 1 ({MIN_LENGTH}-{MAX_LENGTH} printable ASCII "
        "characters); omitted: keep the stored one; null: clear it",
    )
    site_id: SiteId | None = Field(default=None, description="assign it to this site (omitted: leave it)")

    @field_validator("password")
    @classmethod
    def _password_policy(cls, value: str | None) -> str | None:
        return _checked_password(value)


class PasswordIn(BaseModel):
    """Set or clear a station's Basic-auth password."""

    password: str | None = Field(
        description=f"{MIN_LENGTH}-{MAX_LENGTH} printable ASCII characters; null clears it (the station can then "
        "no longer connect under security profile 1)"
    )

    @field_validator("password")
    @classmethod
    def _password_policy(cls, value: str | None) -> str | None:
        return _checked_password(value)


class SiteIn(BaseModel):
    """Move a station to a site."""

    site_id: SiteId


# --- routes ------------------------------------------------------------------------------------------


def _last_seen(view: StationView) -> datetime | None:
    station = view.station
    moments = [
        moment
        for moment in (
            station.last_connected_at,
            station.last_boot_at,
            station.last_heartbeat_at,
            station.last_disconnected_at,
        )
        if moment is not None
    ]
    return max(moments, default=None)


def _fields(view: StationView, connected: bool) -> dict[str, Any]:
    station = view.station
    return {
        "id": station.id,
        "ocpp_version": station.ocpp_version,
        "vendor": station.vendor,
        "model": station.model,
        "firmware_version": station.firmware_version,
        "serial_number": station.serial_number,
        "charge_box_serial_number": station.charge_box_serial_number,
        "registered": bool(station.registered),
        "password_set": bool(station.password_hash),
        "site_id": view.site_id,
        "connected": connected,
        "connected_since": station.last_connected_at if connected else None,
        "last_connected_at": station.last_connected_at,
        "last_disconnected_at": station.last_disconnected_at,
        "last_boot_at": station.last_boot_at,
        "last_heartbeat_at": station.last_heartbeat_at,
        "last_seen_at": _last_seen(view),
        "boot_status": station.boot_status,
        "boot_reason": station.boot_reason,
        "created_at": station.created_at,
        "connectors": [ConnectorOut.of(row) for row in view.connectors],
    }


async def _detail(csms: CsmsDep, station_id: str, profiles: int) -> StationDetailOut:
    try:
        view = await csms.services.stations.get(station_id)
    except UnknownStationError:
        raise NotFoundError(f"no station {station_id!r}") from None
    records = await csms.services.stations.recent_profiles(station_id, profiles) if profiles else []
    station = view.station
    await csms.registry.refresh([station_id])  # a cluster node asks which node holds it
    return StationDetailOut(
        **_fields(view, csms.registry.is_connected(station_id)),
        iccid=station.iccid,
        imsi=station.imsi,
        meter_type=station.meter_type,
        meter_serial_number=station.meter_serial_number,
        firmware_status=station.firmware_status,
        diagnostics_status=station.diagnostics_status,
        log_status=station.log_status,
        capabilities=station.capabilities,
        smart_charging_note=station.smart_charging_note,
        charging_profiles=[ProfileAnswerOut.of(record) for record in records],
    )


async def _assign(csms: CsmsDep, station_id: str, site_id: str) -> None:
    try:
        await csms.services.sites.assign(station_id, site_id)
    except UnknownSiteError:
        raise NotFoundError(f"no site {site_id!r}") from None
    except LookupError:  # after UnknownSiteError, its subclass: the station is the one missing
        raise NotFoundError(f"no station {station_id!r}") from None


@router.get("/stations", response_model=list[StationOut])
async def list_stations(
    csms: CsmsDep,
    registered: Annotated[bool | None, Query(description="only registered (true) or unregistered (false)")] = None,
    connected: Annotated[bool | None, Query(description="only connected (true) or disconnected (false)")] = None,
    site_id: Annotated[
        str | None, Query(min_length=1, max_length=48, pattern=SITE_ID_PATTERN, description="only this site's")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[StationOut]:
    """Every station the CSMS knows, by id: connection, boot details and connectors' current status."""
    online = await csms.registry.connected_ids()  # on a cluster node, every node's
    views = await csms.services.stations.views(
        registered=registered,
        site_id=site_id,
        ids=online if connected is True else None,
        exclude_ids=online if connected is False else None,
        limit=limit,
        offset=offset,
    )
    connected_now = set(online)
    return [StationOut(**_fields(view, view.station.id in connected_now)) for view in views]


@router.get("/stations/{station_id}", response_model=StationDetailOut, responses={404: {"description": "unknown"}})
async def get_station(
    csms: CsmsDep,
    station_id: StationId,
    profiles: Annotated[int, Query(ge=0, le=100, description="how many of the last charging profiles to show")] = 10,
) -> StationDetailOut:
    """One station: everything in the list, plus capabilities read at boot, the smart-charging note and the last
    charging profiles sent with the station's answers."""
    return await _detail(csms, station_id, profiles)


@router.put(
    "/stations/{station_id}",
    response_model=StationDetailOut,
    responses={201: {"model": StationDetailOut, "description": "registered"}, 404: {"description": "unknown site"}},
)
async def register_station(
    csms: CsmsDep, station_id: StationId, body: StationIn, response: Response
) -> StationDetailOut:
    """Register a station (201 when the CSMS did not know it, 200 when it updates it), optionally with its
    Basic-auth password and its site. With ``boot_policy = registered`` only registered stations are accepted."""
    if body.site_id is not None:
        # An unknown site is refused before anything is written.
        try:
            await csms.services.sites.get(body.site_id)
        except UnknownSiteError:
            raise NotFoundError(f"no site {body.site_id!r}") from None
    created = await csms.services.stations.register(station_id, password=body.password)
    if "password" in body.model_fields_set and body.password is None:
        await csms.services.stations.set_password(station_id, None)
    if body.site_id is not None:
        await _assign(csms, station_id, body.site_id)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return await _detail(csms, station_id, 10)


@router.delete(
    "/stations/{station_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "no registered station with this id"}},
)
async def unregister_station(csms: CsmsDep, station_id: StationId) -> Response:
    """Unregister a station and forget its password; its transactions, meter values and history are kept (a
    connected station stays connected; under ``boot_policy = registered`` its next boot is rejected)."""
    if not await csms.services.stations.unregister(station_id):
        raise NotFoundError(f"no registered station {station_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/stations/{station_id}/password", response_model=PasswordOut, responses={404: {"description": "unknown"}})
async def set_password(csms: CsmsDep, station_id: StationId, body: PasswordIn) -> PasswordOut:
    """Set or clear a known station's Basic-auth password (stored hashed, never returned); its next handshake
    under security profile 1 needs the new one."""
    if not await csms.services.stations.set_password(station_id, body.password):
        raise NotFoundError(f"no station {station_id!r}")
    return PasswordOut(id=station_id, password_set=body.password is not None)


@router.put("/stations/{station_id}/site", response_model=SiteOut, responses={404: {"description": "unknown"}})
async def assign_site(csms: CsmsDep, station_id: StationId, body: SiteIn) -> SiteOut:
    """Move a station to a site; both its old and its new site plan again."""
    if not await csms.services.stations.exists(station_id):
        raise NotFoundError(f"no station {station_id!r}")
    await _assign(csms, station_id, body.site_id)
    return SiteOut(id=station_id, site_id=body.site_id)
