"""``GET /metrics``: the CSMS's Prometheus series in the text format, behind the same bearer token as the API.

It sits outside ``/api/v1`` where Prometheus looks by default; scrape it with the token in a file::

    scrape_configs:
      - job_name: optivgi-csms
        authorization:
          credentials_file: /etc/prometheus/optivgi.token   # from `optivgi-csms token create prometheus`
        static_configs:
          - targets: ["csms:8080"]
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from optivgi_csms.api.auth import require_token
from optivgi_csms.api.deps import CsmsDep
from optivgi_csms.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"], dependencies=[Depends(require_token)])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4"}},
)
async def metrics(csms: CsmsDep) -> Response:
    """Connected stations by OCPP version, OCPP messages and CALLERRORs by action, handler latency, scheduling
    cycle time and triggers, site power and limit."""
    return Response(content=csms.metrics.render(), media_type=CONTENT_TYPE)
