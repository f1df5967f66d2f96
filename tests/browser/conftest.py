"""Fixtures of the browser tests: `chalice local` as a subprocess, Debian's Chromium via Playwright.

The whole module is skipped, with the reason, when Chromium or Playwright is missing;
CI installs both (see docs/screenshots/README.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import PHONE, Mounted, opened, sign_in
from tests.browser.proxy import PrefixProxy
from tests.support import local_server

PROJECT_DIR = Path(__file__).resolve().parents[2]
# The committed screenshots are refreshed on purpose (UPDATE_SCREENSHOTS=1), not by
# every test run, which would leave the work tree dirty after `make test`.
SCREENSHOTS = PROJECT_DIR / ("docs" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "build") / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`chalice local --stage local` on a free port, with no AWS_* variable; always stopped."""
    yield from local_server(tmp_path_factory)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def visitor(browser: Any, server: str) -> Iterator[Any]:
    """A fresh page on the demo, loaded and signed out; JavaScript errors fail the test."""
    with opened(browser, f"{server}/") as page:
        yield page


@pytest.fixture
def page(visitor: Any) -> Any:
    """The demo signed in through its sign-in box as the first demo customer (FF0001)."""
    sign_in(visitor)
    return visitor


@pytest.fixture
def phone(browser: Any, server: str) -> Iterator[Any]:
    """A fresh page on the demo in a phone's viewport (390 x 844), signed out."""
    with opened(browser, f"{server}/", PHONE) as page:
        yield page


@pytest.fixture(scope="session")
def proxy(server: str) -> Iterator[PrefixProxy]:
    """The local server mounted under /api/ by a reverse proxy, as API Gateway serves the
    app under its stage path."""
    with PrefixProxy(server, "/api") as mounted:
        yield mounted


@pytest.fixture
def prefixed(browser: Any, proxy: PrefixProxy) -> Iterator[Mounted]:
    """The demo opened at the proxy's /api/, signed out. What the proxy saw before the
    test is forgotten, so ``outside()`` is this test's."""
    proxy.forget()
    requested: list[str] = []
    with opened(browser, proxy.url, requested=requested) as page:
        yield Mounted(page, proxy, requested)


@pytest.fixture
def screenshot() -> Any:
    """Save a screenshot to docs/screenshots/<name>.png: the full page, or the viewport
    as it is scrolled now (``full_page=False``)."""

    def save(page: Any, name: str, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.wait_for_timeout(150)  # let the last paint settle (CSS transitions)
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    return save
