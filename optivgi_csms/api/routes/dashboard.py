"""The operator dashboard: ``/`` serves the page, ``/dashboard/<file>`` its script and style sheet.

The page and its files need no token (they hold no data); the page asks the operator for a token once and
sends it with every data call. Only the files shipped in ``optivgi_csms/api/dashboard`` are served, by
name, so no path can reach anything else.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from optivgi_csms.api.errors import NotFoundError

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "dashboard"
#: The files the page loads, with their content types.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
#: The page loads only its own files and talks only to this server: an injected script could not send
#: the token anywhere else.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A new version of the CSMS must not run with the previous version's script.
    "Cache-Control": "no-cache",
}


@router.get("/")
async def dashboard_page() -> FileResponse:
    """The dashboard (HTML)."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/dashboard", response_class=RedirectResponse)
async def dashboard_redirect() -> RedirectResponse:
    """``/dashboard`` is the page at ``/``."""
    return RedirectResponse("/", status_code=308)


@router.get("/dashboard/{name}")
async def dashboard_asset(name: str) -> FileResponse:
    """One of the page's files."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundError(f"no dashboard file {name[:80]!r}")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)
