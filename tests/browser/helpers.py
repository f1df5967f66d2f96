"""What the browser tests do on the page more than once: sign in, read the held token,
choose a flight, book and wait for the saga."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib.customers import DEMO_PASSWORD, DEMO_USERNAMES
from tests.browser.proxy import PrefixProxy

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def require_a_browser() -> None:
    """At the top of a test module: skip it, with the reason, without Chromium or Playwright."""
    import pytest

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


#: The first demo customer, who owns loyalty account FF0001: the `page` fixture's.
CUSTOMER = DEMO_USERNAMES[0]
#: Where api.js keeps the ID token (its TOKEN_KEY).
TOKEN_KEY = "saga-air.id-token"


def sign_in(page: Any, username: str = CUSTOMER, password: str = DEMO_PASSWORD) -> None:
    """Through the page's sign-in box, as a customer would; returns once the page shows
    the customer signed in (their profile and the state machines are loaded by then)."""
    from playwright.sync_api import expect

    page.get_by_test_id("sign-in-username").fill(username)
    page.get_by_test_id("sign-in-password").fill(password)
    page.get_by_test_id("sign-in-submit").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(username)
    page.wait_for_selector("body[data-signed-in='true']")


def stored_token(page: Any) -> str | None:
    token = page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})")
    return str(token) if token is not None else None


#: How long a saga may take to settle on the page (polls, compensations, retries).
SAGA_TIMEOUT = 30_000


def choose_flight(page: Any, flight: str) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id(f"flight-{flight}").click()
    expect(page.get_by_test_id("flight-summary")).to_contain_text(flight)
    expect(page.locator("[data-seat='27F']")).to_be_visible()


def book(page: Any) -> str:
    """Click Book and wait until the page has settled on the booking's outcome; its id."""
    from playwright.sync_api import expect

    shown = page.get_by_test_id("booking-id")
    before = shown.inner_text() if shown.is_visible() else ""  # a booking made before on this page
    page.get_by_test_id("book").click()
    expect(page.get_by_test_id("saga")).to_be_visible()
    page.wait_for_function("before => { const id = document.querySelector('[data-testid=booking-id]').textContent;"
                           " return Boolean(id) && id !== before; }", arg=before)
    booking_id = shown.inner_text()
    page.wait_for_function(f"document.body.dataset.sagaSettled === '{booking_id}'", timeout=SAGA_TIMEOUT)
    return str(booking_id)


def settled_as(page: Any, status: str) -> None:
    """Wait until the page has settled on the tracked booking with ``status`` (after a
    cancel, say: the booking was settled CONFIRMED before)."""
    page.wait_for_function(
        "status => document.body.dataset.sagaSettled"
        " && document.querySelector('[data-testid=booking-status]').textContent === status",
        arg=status, timeout=SAGA_TIMEOUT)


def state(page: Any, machine: str, name: str) -> Any:
    """A state of a drawn state machine (its data-status says how it ran)."""
    return page.locator(f"[data-testid='diagram-{machine}'] [data-state='{name}']")


#: The desktop the screenshots are taken at, and a phone (an iPhone 12-15's CSS pixels).
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@contextlib.contextmanager
def opened(browser: Any, url: str, viewport: dict[str, int] = DESKTOP,
           requested: list[str] | None = None) -> Iterator[Any]:
    """A fresh page on ``url``, loaded and signed out; JavaScript errors fail the test.
    ``requested``: a list that gets the URL of every request the page makes, from the first."""
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if requested is not None:
        page.on("request", lambda request: requested.append(request.url))
    page.goto(url)
    page.wait_for_selector("body[data-ready='true']")
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@dataclass
class Mounted:
    """The demo opened under the proxy's prefix: the page, the proxy, and the URL of
    every request the page made."""

    page: Any
    proxy: PrefixProxy
    requested: list[str]

    def outside(self) -> list[str]:
        """Every request that left the prefix: as the browser sent it, and as the proxy saw it."""
        return ([url for url in self.requested if not url.startswith(self.proxy.url)]
                + [f"{method} {path}" for method, path in self.proxy.outside()])


# Names the elements that stick out past the viewport's right edge, outside any box that
# scrolls or clips them: what makes the page itself scroll sideways.
_WIDER_THAN_THE_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  const inScrollBox = (node) => {
    for (let up = node.parentElement; up; up = up.parentElement) {
      if (/(auto|scroll|hidden|clip)/.test(getComputedStyle(up).overflowX)) return true;
    }
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter((node) => node.getBoundingClientRect().right > width + 0.5 && !inScrollBox(node))
    .slice(0, 10)
    .map((node) => `${node.tagName.toLowerCase()}${node.id ? "#" + node.id : ""}.${[...node.classList].join(".")}`
      + ` right=${Math.round(node.getBoundingClientRect().right)}`);
}"""


def assert_no_sideways_scroll(page: Any) -> None:
    """The page is no wider than its viewport (only boxes of their own may scroll sideways)."""
    width = page.evaluate("document.scrollingElement.scrollWidth")
    viewport = page.viewport_size["width"]
    assert width <= viewport, (f"the page is {width}px wide in a {viewport}px viewport, past its edge: "
                               f"{page.evaluate(_WIDER_THAN_THE_SCREEN)}")


def assert_in_viewport(locator: Any) -> None:
    """Every element of ``locator`` lies wholly inside the viewport as the page is scrolled now."""
    page = locator.page
    size = page.viewport_size
    assert locator.count() > 0, locator
    for index in range(locator.count()):
        box = locator.nth(index).bounding_box()
        assert box is not None, (locator, index)
        inside = (box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size["width"]
                  and box["y"] + box["height"] <= size["height"])
        assert inside, f"{locator.nth(index).inner_text()!r} at {box} is outside the {size} viewport"
