"""The page's layout: on a phone (390 x 844) nothing makes the page scroll sideways.

Each test has its own customer and flight, so they share the server with test_page.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.helpers import require_a_browser

require_a_browser()

from playwright.sync_api import expect  # noqa: E402

from tests.browser.helpers import (  # noqa: E402
    assert_no_sideways_scroll,
    book,
    choose_flight,
    sign_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def assert_scrolls_in_its_own_box(page: Any, selector: str) -> None:
    """What is wider than the phone (the flights table, the seat map, a state machine)
    scrolls inside its box, which itself fits the screen."""
    fits, wide = page.locator(selector).first.evaluate(
        "box => [box.getBoundingClientRect().right <= document.documentElement.clientWidth,"
        " box.scrollWidth > box.clientWidth]")
    assert fits, f"{selector} sticks out of the screen"
    assert wide, f"{selector} is not wider than its box: nothing to test"


def test_signed_out_the_page_fits_a_phone(phone: Any, screenshot: Any) -> None:
    """GIVEN a visitor on a phone (390 x 844) WHEN the page loads and a seat of SA502 is
    chosen THEN the page is no wider than the screen: the fault menus stack, the sign-in
    box is one column, and the seat map scrolls inside its own box."""
    expect(phone.get_by_test_id("sign-in")).to_be_visible()
    assert_no_sideways_scroll(phone)

    choose_flight(phone, "SA502")
    phone.locator("[data-seat='24E']").click()
    expect(phone.get_by_test_id("chosen-seat")).to_have_text("24E")

    assert_no_sideways_scroll(phone)
    assert_scrolls_in_its_own_box(phone, ".seatmap-wrap")
    phone.evaluate("window.scrollTo(0, 0)")
    screenshot(phone, "07-phone-signed-out", full_page=False)


def test_signed_in_with_a_saga_the_page_fits_a_phone(phone: Any, screenshot: Any) -> None:
    """GIVEN FF0006 signed in on a phone (390 x 844)
    WHEN a seat on SA502 is booked with 500 points and confirmed, then another booked with
    AwardMiles and RefundPayment failing for good
    THEN with the boarding pass, and with the failed saga's outcome, compensations and
    history on the page, it is no wider than the screen; the state machine scrolls
    inside its own box."""
    sign_in(phone, "FF0006")
    assert_no_sideways_scroll(phone)
    choose_flight(phone, "SA502")
    phone.get_by_test_id("any-seat-ECONOMY").click()
    phone.get_by_test_id("points").fill("500")

    book(phone)

    expect(phone.get_by_test_id("booking-status")).to_have_text("CONFIRMED")
    expect(phone.get_by_test_id("boarding-pass")).to_be_visible()
    assert_no_sideways_scroll(phone)
    assert_scrolls_in_its_own_box(phone, "[data-testid='diagram-booking'] .machine-wrap")
    phone.get_by_test_id("boarding-pass").scroll_into_view_if_needed()
    screenshot(phone, "08-phone-confirmed", full_page=False)

    phone.get_by_test_id("fault-AwardMiles").select_option("permanent")
    phone.get_by_test_id("fault-RefundPayment").select_option("permanent")
    book(phone)

    expect(phone.get_by_test_id("booking-status")).to_have_text("NEEDS_ATTENTION")
    expect(phone.get_by_test_id("failure")).to_be_visible()
    expect(phone.get_by_test_id("timeline")).to_contain_text("execution failed")
    assert_no_sideways_scroll(phone)

