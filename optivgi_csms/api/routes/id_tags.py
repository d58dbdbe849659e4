"""``/api/v1/id-tags``: the RFID cards and app tokens that may charge — create, list, block, unblock, expire.

The rules are the CLI's (``optivgi-csms tag``), from the same service: a tag is 1 to 20 printable characters
(OCPP 1.6 CiString20, so every station can carry it). Creating is ``POST`` and answers 409 for a tag that
exists; ``PATCH`` changes an existing tag's expiry, parent or note. A tag's ``status`` is the verdict a
station gets for it now (an Accepted tag past its expiry date is Expired).
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from optivgi_csms.api.deps import ServicesDep
from optivgi_csms.api.errors import ApiError, ConflictError, NotFoundError
from optivgi_csms.api.schemas.text import PRINTABLE_ASCII, FreeText
from optivgi_csms.api.schemas.times import ApiTime
from optivgi_csms.domain.authorization import AuthorizationStatus
from optivgi_csms.services.id_tags import (
    MAX_NOTE_LENGTH,
    MAX_TAG_LENGTH,
    IdTagChanges,
    IdTagError,
    IdTagExistsError,
    IdTagInfo,
    UnknownIdTagError,
)

router = APIRouter(prefix="/id-tags", tags=["id tags"])

_TAG_RULE = f"1 to {MAX_TAG_LENGTH} printable ASCII characters (OCPP 1.6 CiString20)"

TagPath = Annotated[
    str, Path(min_length=1, max_length=MAX_TAG_LENGTH, pattern=PRINTABLE_ASCII, description=f"the tag: {_TAG_RULE}")
]
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG_LENGTH, pattern=PRINTABLE_ASCII, description=_TAG_RULE)]
Note = Annotated[FreeText, Field(max_length=MAX_NOTE_LENGTH, description="free text, e.g. the holder's name")]


class IdTagOut(BaseModel):
    """An id tag and the verdict a station gets for it now."""

    id_tag: str
    status: AuthorizationStatus = Field(
        description="what an Authorize gets now: Accepted, Blocked, Expired (past its expiry date) or Invalid"
    )
    blocked: bool = Field(description="blocked by an operator (unblock to accept it again)")
    expiry_date: datetime | None = Field(description="when it stops being accepted (null: never)")
    parent_id_tag: str | None = Field(description="its group tag")
    note: str | None
    created_at: datetime | None

    @classmethod
    def of(cls, info: IdTagInfo) -> IdTagOut:
        """From the service's view of a tag."""
        return cls(
            id_tag=info.id_tag,
            status=info.status,
            blocked=info.stored_status == AuthorizationStatus.BLOCKED.value,
            expiry_date=info.expiry_date,
            parent_id_tag=info.parent_id_tag,
            note=info.note,
            created_at=info.created_at,
        )


class IdTagCreate(BaseModel):
    """A new tag, accepted from now on (until ``expiry_date``, when given)."""

    model_config = ConfigDict(extra="forbid")

    id_tag: Tag
    expiry_date: ApiTime | None = Field(default=None, description="ISO 8601 with a zone; null: never")
    parent_id_tag: Tag | None = None
    note: Note | None = None


class IdTagPatch(BaseModel):
    """Fields to change; a field left out stays as it is, a null clears it."""

    model_config = ConfigDict(extra="forbid")

    expiry_date: ApiTime | None = None
    parent_id_tag: Tag | None = None
    note: Note | None = None


class ExpireRequest(BaseModel):
    """When the tag expires: now when ``at`` is left out."""

    model_config = ConfigDict(extra="forbid")

    at: ApiTime | None = Field(default=None, description="ISO 8601 with a zone; default now")


async def _call(work: Awaitable[IdTagInfo]) -> IdTagInfo:
    """Await a service call, turning its refusals into 404/409/422."""
    try:
        return await work
    except UnknownIdTagError as error:
        raise NotFoundError(str(error)) from None
    except IdTagExistsError as error:
        raise ConflictError(str(error)) from None
    except IdTagError as error:
        raise ApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None


@router.post("", response_model=IdTagOut, status_code=status.HTTP_201_CREATED, responses={409: {}})
async def create_id_tag(body: IdTagCreate, services: ServicesDep, response: Response) -> IdTagOut:
    """Create a tag (Accepted). 409 when it exists: change it with PATCH, block or expire it instead."""
    info = await _call(
        services.id_tags.create(
            body.id_tag, expiry_date=body.expiry_date, parent_id_tag=body.parent_id_tag, note=body.note
        )
    )
    response.headers["Location"] = f"/api/v1/id-tags/{quote(info.id_tag, safe='')}"
    return IdTagOut.of(info)


@router.get("", response_model=list[IdTagOut])
async def list_id_tags(
    services: ServicesDep,
    response: Response,
    status_: Annotated[
        AuthorizationStatus | None, Query(alias="status", description="only tags whose verdict now is this")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[IdTagOut]:
    """Tags in id order; the ``X-Total-Count`` header says how many match in all."""
    found, total = await services.id_tags.list(status=status_, limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(total)
    return [IdTagOut.of(info) for info in found]


@router.get("/{id_tag}", response_model=IdTagOut, responses={404: {}})
async def get_id_tag(id_tag: TagPath, services: ServicesDep) -> IdTagOut:
    """One tag."""
    return IdTagOut.of(await _call(services.id_tags.get(id_tag)))


@router.patch("/{id_tag}", response_model=IdTagOut, responses={404: {}})
async def update_id_tag(id_tag: TagPath, body: IdTagPatch, services: ServicesDep) -> IdTagOut:
    """Change a tag's expiry date, parent tag or note."""
    changes: IdTagChanges = body.model_dump(exclude_unset=True)  # type: ignore[assignment]
    return IdTagOut.of(await _call(services.id_tags.update(id_tag, changes)))


@router.post("/{id_tag}/block", response_model=IdTagOut, responses={404: {}})
async def block_id_tag(id_tag: TagPath, services: ServicesDep) -> IdTagOut:
    """Refuse the tag from now on (stations hear Blocked at its next Authorize or session start)."""
    return IdTagOut.of(await _call(services.id_tags.set_status(id_tag, AuthorizationStatus.BLOCKED)))


@router.post("/{id_tag}/unblock", response_model=IdTagOut, responses={404: {}})
async def unblock_id_tag(id_tag: TagPath, services: ServicesDep) -> IdTagOut:
    """Accept a blocked tag again (until its expiry date, if it has one)."""
    return IdTagOut.of(await _call(services.id_tags.set_status(id_tag, AuthorizationStatus.ACCEPTED)))


@router.post("/{id_tag}/expire", response_model=IdTagOut, responses={404: {}})
async def expire_id_tag(id_tag: TagPath, services: ServicesDep, body: ExpireRequest | None = None) -> IdTagOut:
    """Set the tag's expiry date: now (no body), or ``at``. From then on stations hear Expired."""
    at = body.at if body is not None else None
    return IdTagOut.of(await _call(services.id_tags.expire(id_tag, at)))
