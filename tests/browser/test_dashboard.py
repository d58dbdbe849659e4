"""The dashboard in a real browser: an operator signs in with a token, sees the stations and sessions of the
site, a station appearing and a session's power changing live on the chart, sets the site limit and makes a
reservation; at 1280x800 and at a phone's width. A screenshot is saved (to ``docs/dashboard.png`` as well when
``OPTIVGI_SAVE_SCREENSHOT=1``).

Headless Debian Chromium through chromedriver (see ``tests/browser/browser.py``); skipped, saying why, where
they are not installed.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from optivgi_csms.domain.time import format_timestamp
from tests.browser.browser import page_errors, set_viewport, start_browser, unavailable
from tests.conftest import CsmsFactory
from tests.smart_charging.helpers import station as smart_station
from tests.smart_charging.helpers import until
from tests.support.driver import Driver, Sample, Session

SKIP_REASON = unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


def ago(minutes: float) -> str:
    """An OCPP timestamp ``minutes`` before now."""
    return format_timestamp(datetime.now(UTC) - timedelta(minutes=minutes))


async def charge(driver: Driver, session: Session, steps: list[tuple[int, float]]) -> None:
    """Meter values of a session: from each ``(minutes ago, kW)`` step on, that power every 5 minutes until
    the next step, and an energy register that follows it (1000 Wh at the start)."""
    register = 1000.0
    moments = [*steps, (0, steps[-1][1])]
    for (start, kw), (end, _) in itertools.pairwise(moments):
        for minute in range(start, end, -5):
            register += kw * 1000 * 5 / 60
            samples = [
                Sample(round(kw * 1000), "Power.Active.Import", "W"),
                Sample(round(register), "Energy.Active.Import.Register", "Wh"),
            ]
            await driver.meter(session, ago(minute), samples)


async def in_browser(function: Callable[..., Any], *args: Any) -> Any:
    """Run a (blocking) Selenium call off the event loop, which keeps serving the page meanwhile."""
    return await asyncio.to_thread(function, *args)


async def wait_for(browser: Any, script: str, what: str, timeout: float = 10.0) -> Any:
    """Wait until ``script`` (a JavaScript expression) is truthy in the page; returns its value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await in_browser(browser.execute_script, f"return ({script});")
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            shot = await in_browser(browser.get_screenshot_as_base64)
            raise AssertionError(f"{what}: not seen within {timeout} s (page screenshot, base64: {shot[:80]}...)")
        await asyncio.sleep(0.1)


def text(selector: str) -> str:
    """A script expression: the text of the first element matching ``selector`` ('' when none)."""
    return f"(document.querySelector({selector!r}) || {{}}).textContent || ''"


async def test_an_operator_watches_the_site_live_and_operates_it(
    make_csms: CsmsFactory, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the page does not depend on the database: SQLite is enough")
    csms = await make_csms(api=True)
    assert csms.api is not None
    _, token = await csms.services.api_tokens.create("operator")
    await csms.services.sites.update("default", limit_kw=22.0, resolution_s=300, horizon_s=4 * 3600)
    base = f"http://127.0.0.1:{csms.api.port}"
    browser = await in_browser(start_browser, tmp_path / "profile")
    await in_browser(set_viewport, browser, 1280, 800)
    try:
        async with (
            smart_station(csms, "CS-1", "1.6") as cs1,
            smart_station(csms, "CS-2", "2.0.1") as cs2,
            httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client,
        ):
            await cs1.status(1, "Charging", timestamp=ago(50))
            first = await cs1.start("TAG-ALICE", meter_start_wh=1000, timestamp=ago(50))
            await charge(cs1, first, [(50, 11.0), (30, 9.5), (15, 7.2)])
            await cs2.status(1, "Occupied", timestamp=ago(25))
            second = await cs2.start("TAG-BOB", meter_start_wh=1000, timestamp=ago(25))
            await charge(cs2, second, [(25, 7.4), (10, 11.0)])
            departure = format_timestamp(datetime.now(UTC) + timedelta(hours=3))
            for session, kwh in ((first, 30.0), (second, 18.0)):
                response = await client.put(
                    f"/api/v1/transactions/{session.id}/needs", json={"energy_kwh": kwh, "departure_at": departure}
                )
                assert response.status_code == 200, response.text
            await until(lambda: csms.smart_charging.plan("default") is not None, timeout=10, what="a plan")

            # Signing in: the token is asked once and checked.
            await in_browser(browser.get, base + "/")
            await wait_for(browser, "!document.querySelector('#login').hidden", "the sign-in form")
            field = await in_browser(browser.find_element, "css selector", "#token")
            await in_browser(field.send_keys, "ovc_not-a-token")
            await in_browser(field.submit)
            await wait_for(browser, f"{text('#login-error')}.includes('not valid')", "a refused token")
            await in_browser(field.send_keys, token)
            await in_browser(field.submit)
            await wait_for(browser, f"{text('#who')} === 'Signed in as operator'", "signed in")

            # The stations and their connectors, the sessions with energy delivered against wanted.
            await wait_for(browser, f"{text('#live')} === 'Live'", "the live event stream")
            await wait_for(
                browser, "document.querySelectorAll('#stations tr[data-station]').length === 2", "2 stations"
            )
            row = await in_browser(browser.execute_script, f"return {text('#stations tr[data-station=CS-1]')};")
            assert "Connected" in row and "1: Charging" in row
            await wait_for(
                browser, "document.querySelectorAll('#sessions tr[data-transaction]').length === 2", "sessions"
            )
            first_row = text(f'#sessions tr[data-transaction="{first.id}"]')
            session_row = await in_browser(browser.execute_script, f"return {first_row};")
            assert "TAG-ALICE" in session_row and "of 30.0 kWh" in session_row and "7.2 kW" in session_row

            # The chart: the last hour rebuilt from the sessions' meter values, the limit, the plan ahead.
            await wait_for(browser, f"{text('#power-now')} === '18.2 kW'", "the site's power now (7.2 + 11.0 kW)")
            await wait_for(browser, f"{text('#limit-now')} === '22.0 kW'", "the site's limit")
            await wait_for(browser, "document.querySelector('#plan-line')", "the plan ahead on the chart")
            assert await in_browser(browser.execute_script, "return document.querySelector('#limit-line') !== null;")
            points = int(await wait_for(browser, "document.querySelector('#power-line')?.dataset.points", "power"))
            assert points >= 10

            # Live: a station appears, a session's power changes, and the page follows without a reload.
            async with smart_station(csms, "CS-3", "1.6") as cs3:
                await wait_for(browser, "document.querySelector('#stations tr[data-station=CS-3]')", "CS-3 appearing")
                await cs3.status(1, "Available", timestamp=ago(0))
                await wait_for(browser, f"{text('#stations tr[data-station=CS-3]')}.includes('1: Available')", "status")
                await cs2.meter(second, ago(0), [Sample(3700, "Power.Active.Import", "W")])
                await wait_for(browser, f"{text('#power-now')} === '10.9 kW'", "the new power on the chart")
                second_power = text(f'#sessions tr[data-transaction="{second.id}"] .power')
                await wait_for(browser, f"{second_power}.startsWith('3.7 kW')", "the session's new power")

                # The forms: the site limit, and a reservation on the new station.
                limit = await in_browser(browser.find_element, "css selector", "#limit-kw")
                await in_browser(limit.clear)
                await in_browser(limit.send_keys, "30")
                await in_browser(limit.submit)
                await wait_for(browser, f"{text('#limit-form .message')} === 'Limit set to 30.0 kW.'", "limit set")
                assert (await csms.services.sites.get("default")).limit_kw == 30.0
                await in_browser(browser.execute_script, "document.querySelector('#res-station').value = 'CS-3';")
                tag = await in_browser(browser.find_element, "css selector", "#res-tag")
                await in_browser(tag.send_keys, "TAG-CAROL")
                await in_browser(tag.submit)
                await wait_for(browser, f"{text('#reservation-form .message')}.includes('on CS-3 / 1')", "reserved")
                assert "Accepted" in await in_browser(
                    browser.execute_script, f"return {text('#reservation-form .message')};"
                )
                await wait_for(browser, f"{text('#events')}.includes('reservation')", "the reservation's event")
                await wait_for(browser, f"{text('#limit-now')} === '30.0 kW'", "the new limit on the chart")

                await asyncio.sleep(0.5)  # the chart redraws at most every 0.4 s
                shot = tmp_path / "dashboard.png"
                assert await in_browser(browser.save_screenshot, str(shot))
                assert shot.stat().st_size > 20_000
                if os.environ.get("OPTIVGI_SAVE_SCREENSHOT") == "1":
                    DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
                    DOCS_SCREENSHOT.write_bytes(shot.read_bytes())

            # At a phone's width nothing runs off the side of the page.
            await in_browser(lambda: set_viewport(browser, 390, 844, mobile=True))
            await asyncio.sleep(0.5)
            overflow = await in_browser(
                browser.execute_script, "return document.documentElement.scrollWidth - window.innerWidth;"
            )
            assert overflow <= 1
            assert await in_browser(browser.save_screenshot, str(tmp_path / "dashboard-phone.png"))
            # No script error all along; the only failed load is the wrong token's 401.
            assert await in_browser(lambda: page_errors(browser, allowed=("/api/v1/token - Failed to load",))) == []
    finally:
        await in_browser(browser.quit)
