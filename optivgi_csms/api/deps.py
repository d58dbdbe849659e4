"""Dependencies shared by the routers: the running CSMS and its services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from optivgi_csms.services import Services

if TYPE_CHECKING:
    from optivgi_csms.server.app import Csms


def get_csms(request: Request) -> Csms:
    """The CSMS this app belongs to (set by :func:`optivgi_csms.api.app.create_app`)."""
    return request.app.state.csms  # type: ignore[no-any-return]


def get_services(request: Request) -> Services:
    """The CSMS's services."""
    return request.app.state.csms.services  # type: ignore[no-any-return]


CsmsDep = Annotated["Csms", Depends(get_csms)]
ServicesDep = Annotated[Services, Depends(get_services)]
