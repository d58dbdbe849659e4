"""Headless Debian Chromium driven by Selenium, for tests that look at the dashboard as an operator would.

Only the system's browser and driver are used (``/usr/bin/chromium``, ``/usr/bin/chromedriver``; ``.ci/run``
installs Debian's ``chromium`` and ``chromium-driver``); nothing is downloaded. Selenium is synchronous: tests
call it in a thread (:func:`asyncio.to_thread`) so the CSMS, in the test's event loop, keeps serving the page.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("OPTIVGI_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("OPTIVGI_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
    "--lang=en-GB",
)


def unavailable() -> str | None:
    """Why no browser test can run here (None: it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists() and shutil.which(path.name) is None:
            return f"{path} is missing: install Debian's {package} (apt-get install chromium chromium-driver)"
    return None


def start_browser(profile_dir: Path, width: int = 1280, height: int = 800) -> Any:
    """A headless Chromium with a fresh profile in ``profile_dir`` (Selenium's ``WebDriver``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Selenium Manager must not look for (or download) a browser or a driver: both are given.
    os.environ.setdefault("SE_OFFLINE", "true")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, for page_errors()
    driver_path = CHROMEDRIVER if CHROMEDRIVER.exists() else Path(shutil.which("chromedriver") or CHROMEDRIVER)
    browser = webdriver.Chrome(service=Service(str(driver_path)), options=options)
    browser.set_page_load_timeout(20)
    return browser


def set_viewport(browser: Any, width: int, height: int, *, mobile: bool = False) -> None:
    """Make the page's viewport exactly ``width`` x ``height`` CSS pixels (a headless window's size includes
    its frame); ``mobile`` as a phone's browser lays pages out."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def page_errors(browser: Any, *, allowed: tuple[str, ...] = ()) -> list[str]:
    """Errors the page's console showed since the last call (script errors, failed loads), less those
    containing one of ``allowed``."""
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and not any(text in entry["message"] for text in allowed)
    ]
