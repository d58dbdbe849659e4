"""The dashboard is served by the API app: the page at ``/`` without a token, its files with the right content
types, nothing else from its folder."""

from __future__ import annotations

import re

from tests.api.conftest import Api


async def test_the_page_is_served_without_a_token(api: Api) -> None:
    response = await api.anonymous.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert "<title>optivgi-csms dashboard</title>" in page
    assert 'src="/dashboard/app.js"' in page and 'href="/dashboard/style.css"' in page
    # Only its own files and this server: a token in the page could not be sent elsewhere.
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    redirect = await api.anonymous.get("/dashboard", follow_redirects=False)
    assert (redirect.status_code, redirect.headers["location"]) == (308, "/")


async def test_every_form_field_has_a_label(api: Api) -> None:
    page = (await api.anonymous.get("/")).text
    fields = re.findall(r"<(?:input|select)[^>]*\bid=\"([^\"]+)\"", page)
    labels = set(re.findall(r"<label for=\"([^\"]+)\"", page))
    assert fields and set(fields) <= labels


async def test_the_script_and_style_sheet_are_served_with_their_content_types(api: Api) -> None:
    for name, content_type in (
        ("app.js", "text/javascript; charset=utf-8"),
        ("chart.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
    ):
        response = await api.anonymous.get(f"/dashboard/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == content_type
        assert response.headers["cache-control"] == "no-cache"
        assert len(response.content) > 1000
    script = (await api.anonymous.get("/dashboard/app.js")).text
    # The page's data comes from the token-protected API and the live event stream.
    assert '"/api/v1"' in script and "/events" in script and "Authorization" in script
    assert "innerHTML" not in script  # server data is shown as text, never parsed as HTML


async def test_nothing_else_is_served_from_the_dashboard_folder(api: Api) -> None:
    for path in (
        "/dashboard/index.html",
        "/dashboard/..%2f..%2fapp.py",
        "/dashboard/../api/app.py",
        "/dashboard/nothing.js",
        "/dashboard/" + "x" * 500,
    ):
        response = await api.anonymous.get(path)
        assert response.status_code == 404, path
        assert response.json()["detail"]


async def test_the_page_is_not_in_the_api_schema(api: Api) -> None:
    paths = (await api.anonymous.get("/openapi.json")).json()["paths"]
    assert "/" not in paths and not any(path.startswith("/dashboard") for path in paths)
    assert "/api/v1/events" in paths
