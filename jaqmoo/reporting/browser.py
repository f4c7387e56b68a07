"""Headless Chromium for the report's browser tests, benchmark and screenshot (Selenium).

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``; other paths through ``JAQMOO_CHROMIUM`` / ``JAQMOO_CHROMEDRIVER``)
and ``selenium`` (the ``test`` extra). :func:`missing` says what is absent, so that tests can
skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError


def _binary(env: str, names: tuple[str, ...]) -> str | None:
    if os.environ.get(env):
        return os.environ[env] if Path(os.environ[env]).is_file() else None
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_paths() -> tuple[str | None, str | None]:
    """(chromium binary, chromedriver binary), None where not found."""
    return (_binary("JAQMOO_CHROMIUM", ("chromium", "chromium-browser")),
            _binary("JAQMOO_CHROMEDRIVER", ("chromedriver",)))


def missing() -> str:
    """Why headless Chromium cannot be driven here ('' when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    browser, driver = chromium_paths()
    if browser is None or driver is None:
        return "chromium / chromedriver not found (apt-get install -y chromium chromium-driver)"
    return ""


def start_chromium(width: int = 1300, height: int = 1000, download_dir: str | Path | None = None) -> Any:
    """A headless Chromium WebDriver that records the console (``driver.get_log('browser')``)."""
    why = missing()
    if why:
        raise JaqmooError(f"headless Chromium is not available: {why}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-swiftshader",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if download_dir is not None:
        opts.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                               "download.prompt_for_download": False})
    drv = webdriver.Chrome(service=Service(driver), options=opts)
    if download_dir is not None:
        drv.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return drv


def load_report(driver: Any, path: str | Path, timeout: float = 120.0) -> float:
    """Open a report and wait until every plot is drawn; returns the load time in seconds
    (navigation start to the page's ready mark, ``performance.now()``)."""
    driver.get(Path(path).resolve().as_uri())
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready = driver.execute_script("return window.__jaqmooReady || null")
        if ready:
            return float(ready) / 1000.0
        fatal = driver.execute_script("var f = document.getElementById('fatal'); return f && !f.hidden ? f.textContent : ''")
        if fatal:
            raise JaqmooError(f"{path}: {fatal}")
        time.sleep(0.05)
    raise JaqmooError(f"{path}: the report did not finish drawing within {timeout:.0f} s")


def console_errors(driver: Any) -> list[str]:
    """Console messages of level SEVERE since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
