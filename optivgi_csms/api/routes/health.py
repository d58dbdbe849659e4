"""``GET /api/v1/health``: is the CSMS up, and can it reach its database. No token needed."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from optivgi_csms import __version__
from optivgi_csms.api.deps import CsmsDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The CSMS's state in brief."""

    status: str
    version: str
    database: str
    stations_connected: int


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(csms: CsmsDep) -> JSONResponse:
    """200 when the database answers, 503 when it does not (for load balancers and container health checks)."""
    try:
        async with csms.database.read() as session:
            await session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as error:  # any failure to reach the database is what this endpoint reports
        database = f"unreachable: {type(error).__name__}"
    body = Health(
        status="ok" if database == "ok" else "degraded",
        version=__version__,
        database=database,
        stations_connected=len(csms.registry),
    )
    code = status.HTTP_200_OK if database == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(status_code=code, content=body.model_dump())
