"""The demo page behind a path prefix, as API Gateway serves it (``https://…/api/``).

A reverse proxy (tests/browser/proxy.py) mounts the local server under /api/ and answers
403 anywhere else, as API Gateway does outside its stage. Every test asserts that no
request left the prefix, as the browser sent them and as the proxy saw them. Each test
has its own customer and flight, so they share the server with test_page.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import pytest

from tests.browser.helpers import require_a_browser

require_a_browser()

from playwright.sync_api import expect  # noqa: E402

from tests.browser.helpers import (  # noqa: E402
    SAGA_TIMEOUT,
    Mounted,
    book,
    choose_flight,
    opened,
    sign_in,
    state,
    stored_token,
)
from tests.browser.proxy import PrefixProxy  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

A_BOOKING = "3f0c2a8e-1b2c-4d5e-8f90-123456789abc"


def fetch_with_token(page: Any, url: str) -> list[Any]:
    """GET ``url`` from the page with the token it holds: [status, booking_id]."""
    return list(page.evaluate(
        """async ([url, token]) => {
             const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
             return [response.status, (await response.json()).booking_id];
           }""", [url, stored_token(page)]))


def test_opened_without_its_trailing_slash_the_page_stays_under_the_prefix(browser: Any, proxy: PrefixProxy) -> None:
    """GIVEN a link to a booking on the page as …/api#booking=<id>, without the slash
    (API Gateway serves its root resource there too)
    WHEN it is opened
    THEN the address gains its slash and keeps the booking, the stylesheet and the scripts
    come from …/api/assets/, the flights are listed, the page asks to sign in to see the
    booking, and no request left /api/ (not even the browser's preload of the assets);
    api.js refuses a root-relative path."""
    proxy.forget()
    requested: list[str] = []
    with opened(browser, f"{proxy.origin}/api#booking={A_BOOKING}", requested=requested) as page:
        assert page.url == f"{proxy.url}#booking={A_BOOKING}"
        expect(page.get_by_test_id("flight-SA101")).to_be_visible()
        expect(page.get_by_test_id("sign-in-message")).to_contain_text(A_BOOKING)
        assert page.evaluate("getComputedStyle(document.body).fontSize") == "14px"  # app.css applied
        assert page.evaluate("document.querySelector('link[rel=icon]').href") == f"{proxy.url}assets/favicon.svg"
        mounted = Mounted(page, proxy, [url for url in requested if url != f"{proxy.origin}/api"])
        assert f"{proxy.url}assets/app.css" in requested and f"{proxy.url}config" in requested
        # api.js refuses a root-relative path before it is sent: it would leave the prefix.
        refused = page.evaluate("""async () => {
            const { api } = await import("./assets/api.js");
            try { await api("/flights"); return "sent"; } catch (exc) { return exc.message; }
          }""")
        assert "relative to the page" in refused
        assert mounted.outside() == []


def test_sign_in_book_and_cancel_behind_the_prefix(prefixed: Mounted) -> None:
    """GIVEN the page at …/api/
    WHEN a wrong password is tried, then FF0004 signs in, books seat 9C on SA401 with 1,000
    points, follows the booking's Location, cancels it and reloads the page
    THEN the refusal shows at the password field; the booking is CONFIRMED with its boarding
    pass; the Location of the POST and of the cancel, resolved against the request's URL,
    is the booking under /api/ and answers it; the booking ends CANCELLED, and after the
    reload the customer is still signed in and sees it; no request left /api/."""
    page, proxy = prefixed.page, prefixed.proxy
    page.get_by_test_id("sign-in-username").fill("FF0004")
    page.get_by_test_id("sign-in-password").fill("not-the-password")
    page.get_by_test_id("sign-in-submit").click()
    expect(page.get_by_test_id("error-password")).to_have_text("wrong username or password")
    sign_in(page, "FF0004")
    expect(page.get_by_test_id("loyalty-balance")).to_contain_text("50,000")
    choose_flight(page, "SA401")
    page.locator("[data-seat='9C']").click()
    page.get_by_test_id("points").fill("1000")

    with page.expect_response(lambda answer: answer.request.method == "POST"
                              and answer.url == f"{proxy.url}bookings") as created:
        booking_id = book(page)

    expect(page.get_by_test_id("booking-status")).to_have_text("CONFIRMED")
    expect(page.get_by_test_id("bp-seat")).to_have_text("9C")
    expect(state(page, "booking", "RedeemPoints")).to_have_attribute("data-status", "succeeded")
    location = urljoin(created.value.url, created.value.headers["location"])
    assert location == f"{proxy.url}bookings/{booking_id}"
    assert fetch_with_token(page, location) == [200, booking_id]

    with page.expect_response(lambda answer: answer.url.endswith("/cancel")) as cancelled:
        page.get_by_test_id("cancel-booking").click()
    assert urljoin(cancelled.value.url, cancelled.value.headers["location"]) == location
    page.wait_for_function(
        "document.querySelector('[data-testid=booking-status]').textContent === 'CANCELLED'", timeout=SAGA_TIMEOUT)
    expect(page.locator("[data-seat='9C']")).to_have_attribute("data-status", "free")

    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert page.url == f"{proxy.url}#booking={booking_id}"
    expect(page.get_by_test_id("signed-in-as")).to_have_text("FF0004")
    expect(page.get_by_test_id("booking-status")).to_have_text("CANCELLED")
    assert ("POST", f"/api/bookings/{booking_id}/cancel") in proxy.seen
    assert prefixed.outside() == []


def test_a_failed_booking_is_compensated_behind_the_prefix(prefixed: Mounted) -> None:
    """GIVEN the page at …/api/, signed in as FF0008
    WHEN seat 10A on SA402 is booked with AuthorizePayment failing for good
    THEN the booking is FAILED at AuthorizePayment, ReleaseSeats compensated and the seat free
    again on the map; no request left /api/."""
    page = prefixed.page
    sign_in(page, "FF0008")
    choose_flight(page, "SA402")
    page.locator("[data-seat='10A']").click()
    page.get_by_test_id("fault-AuthorizePayment").select_option("permanent")

    book(page)

    expect(page.get_by_test_id("booking-status")).to_have_text("FAILED")
    expect(page.get_by_test_id("failed-step")).to_have_text("AuthorizePayment")
    expect(state(page, "booking", "ReleaseSeats")).to_have_attribute("data-status", "compensated")
    expect(page.locator("[data-compensation='ReleaseSeats']")).to_have_attribute("data-status", "compensated")
    expect(page.locator("[data-seat='10A']")).to_have_attribute("data-status", "free")
    assert prefixed.outside() == []
