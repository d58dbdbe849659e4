"""``/api/v1/sites``: what smart charging must respect at each site, its current plan, and its cycles.

A site's settings — connection limit (constant and/or a step schedule), current per phase, prices, voltage,
session defaults, algorithm, slot length and horizon — change with ``PUT`` (all of them) or ``PATCH`` (some).
A change is stored and published at once; the site plans again within a moment, and the stations get new
profiles from that cycle. ``GET .../plan`` is the plan per EV and slot; ``GET .../cycles`` the recorded
cycles with their inputs, decisions and the stations' answers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from optivgi_csms.api.deps import CsmsDep
from optivgi_csms.api.errors import ApiError, ConflictError, NotFoundError
from optivgi_csms.api.schemas.sites import (
    CycleOut,
    PlanOut,
    SiteCreate,
    SiteOut,
    SitePatch,
    SiteSettings,
    config_from,
)
from optivgi_csms.api.schemas.text import PRINTABLE_ASCII
from optivgi_csms.domain.site import SiteConfig
from optivgi_csms.services.sites import SiteExistsError, UnknownSiteError

router = APIRouter(prefix="/sites", tags=["sites"])

SiteId = Annotated[
    str,
    Path(
        min_length=1, max_length=48, pattern=PRINTABLE_ASCII, description="the site's id (`default`: the default site)"
    ),
]


def _unprocessable(error: ValueError) -> ApiError:
    # SiteConfig's own checks name the field first ("resolution_s must be ..."): pass them on as they are.
    return ApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error))


async def _site(csms: CsmsDep, site_id: str) -> SiteConfig:
    try:
        return await csms.services.sites.get(site_id)
    except UnknownSiteError:
        raise NotFoundError(f"no site {site_id!r}") from None


async def _out(csms: CsmsDep, config: SiteConfig) -> SiteOut:
    return SiteOut.of(config, await csms.services.sites.stations_of(config.id))


@router.get("", response_model=list[SiteOut])
async def list_sites(csms: CsmsDep) -> list[SiteOut]:
    """Every site with its settings and stations."""
    return [await _out(csms, config) for config in await csms.services.sites.all()]


@router.post("", response_model=SiteOut, status_code=status.HTTP_201_CREATED, responses={409: {}})
async def create_site(body: SiteCreate, csms: CsmsDep, response: Response) -> SiteOut:
    """Add a site (409 when its id is taken). Assign stations to it from ``/stations``."""
    try:
        config = await csms.services.sites.create(config_from(body.id, body))
    except SiteExistsError as error:
        raise ConflictError(str(error)) from None
    except ValueError as error:
        raise _unprocessable(error) from None
    response.headers["Location"] = f"/api/v1/sites/{config.id}"
    return await _out(csms, config)


@router.get("/{site_id}", response_model=SiteOut, responses={404: {}})
async def get_site(site_id: SiteId, csms: CsmsDep) -> SiteOut:
    """A site's settings and stations."""
    return await _out(csms, await _site(csms, site_id))


@router.put("/{site_id}", response_model=SiteOut, responses={404: {}})
async def replace_site(site_id: SiteId, body: SiteSettings, csms: CsmsDep) -> SiteOut:
    """Replace every setting of a site (a setting left out takes its default: no limit, no prices, ...)."""
    await _site(csms, site_id)
    try:
        config = config_from(site_id, body)
    except ValueError as error:
        raise _unprocessable(error) from None
    return await _out(csms, await csms.services.sites.save(config))


@router.patch("/{site_id}", response_model=SiteOut, responses={404: {}})
async def update_site(site_id: SiteId, body: SitePatch, csms: CsmsDep) -> SiteOut:
    """Change some settings; the others stay. ``"limit_kw": null`` removes the constant limit."""
    await _site(csms, site_id)
    try:
        changes = body.changes()
        config = await csms.services.sites.update(site_id, **changes)
    except UnknownSiteError:
        raise NotFoundError(f"no site {site_id!r}") from None
    except ValueError as error:
        raise _unprocessable(error) from None
    return await _out(csms, config)


@router.get("/{site_id}/plan", response_model=PlanOut, responses={404: {}})
async def get_plan(
    site_id: SiteId,
    csms: CsmsDep,
    slots: Annotated[int | None, Query(ge=1, le=2000, description="only the first this many slots")] = None,
) -> PlanOut:
    """The site's current plan: slot start times, the limit and the site's total in each slot, and each
    EV's power per slot. ``available`` is false before the first cycle or while the site has nothing to
    plan (no limit and no prices)."""
    config = await _site(csms, site_id)
    return PlanOut.of(site_id, csms.smart_charging.plan(site_id), config, slots)


@router.get("/{site_id}/cycles", response_model=list[CycleOut], responses={404: {}})
async def list_cycles(
    site_id: SiteId,
    csms: CsmsDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[CycleOut]:
    """The site's recorded scheduling cycles, newest first; ``X-Total-Count`` says how many in all.

    Each has what triggered it, the algorithm and its status, solve and cycle time, a summary of its
    inputs and outcome (limits, energy asked and planned, shortfalls, uncontrolled load, fail-safe
    answers) and one line per EV (its needs and their sources, its planned energy and power now, and the
    station's answer to its profile). A periodic cycle that changed nothing lists no EVs."""
    try:
        rows, total = await csms.services.sites.cycles(site_id, limit=limit, offset=offset)
    except UnknownSiteError:
        raise NotFoundError(f"no site {site_id!r}") from None
    response.headers["X-Total-Count"] = str(total)
    return [CycleOut.of(row) for row in rows]
