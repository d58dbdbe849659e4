"""The FastAPI app of one CSMS: ``/api/v1/...`` (bearer token), ``/openapi.json``, ``/docs``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.routing import Match

from optivgi_csms import __version__
from optivgi_csms.api.auth import credentials_problem, require_token
from optivgi_csms.api.errors import ERROR_RESPONSES, ApiError, install_error_handlers
from optivgi_csms.api.routes import (
    commands,
    dashboard,
    events,
    health,
    id_tags,
    metrics,
    reservations,
    security_events,
    session,
    sites,
    stations,
    transactions,
)

if TYPE_CHECKING:
    from optivgi_csms.server.app import Csms

API_PREFIX = "/api/v1"


def create_app(csms: Csms) -> FastAPI:
    """The app serving ``csms``: every router under ``/api/v1``, all but health behind a bearer token."""
    app = FastAPI(
        title="optivgi-csms",
        version=__version__,
        summary="Operator API of an OCPP 1.6J / 2.0.1 CSMS with smart charging",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.csms = csms

    public = APIRouter(prefix=API_PREFIX)
    public.include_router(health.router)
    public.include_router(events.ws_router)  # checks its own token: browsers cannot send the header
    app.include_router(public)

    protected = APIRouter(prefix=API_PREFIX, dependencies=[Depends(require_token)], responses=ERROR_RESPONSES)
    # Routers of the resources are included here, one line each.
    protected.include_router(session.router)
    protected.include_router(stations.router)
    protected.include_router(commands.router)
    protected.include_router(transactions.router)
    protected.include_router(id_tags.router)
    protected.include_router(reservations.router)
    protected.include_router(sites.router)
    protected.include_router(security_events.router)
    protected.include_router(events.router)
    app.include_router(protected)

    async def credentials_first(request: Request) -> ApiError | None:
        # Only the routes behind the token: the others' bad input is judged as it is.
        if any(route.matches(request.scope)[0] is Match.FULL for route in protected.routes):
            return await credentials_problem(request)
        return None

    install_error_handlers(app, auth_check=credentials_first)
    app.include_router(metrics.router, responses=ERROR_RESPONSES)  # /metrics, outside /api/v1 where Prometheus looks
    app.include_router(dashboard.router)  # the page at / (no token: its data calls carry one)
    return app
