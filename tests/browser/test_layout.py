"""The page's layout: on a phone (390 x 844) nothing makes the page scroll sideways, and on
the desktop (1440 x 900) the compensations a failed saga ran are in view with its panel.

Each test has its own customer and flight, so they share the server with test_page.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.helpers import require_a_browser

require_a_browser()

from playwright.sync_api import expect  # noqa: E402

from tests.browser.helpers import (  # noqa: E402
    assert_in_viewport,
    assert_no_sideways_scroll,
    book,
    choose_flight,
    sign_in,
    state,
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
    AwardMiles and VoidPayment failing for good
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
    phone.get_by_test_id("fault-VoidPayment").select_option("permanent")
    book(phone)

    expect(phone.get_by_test_id("booking-status")).to_have_text("NEEDS_ATTENTION")
    expect(phone.get_by_test_id("failure")).to_be_visible()
    expect(phone.get_by_test_id("timeline")).to_contain_text("execution failed")
    assert_no_sideways_scroll(phone)


def test_the_compensations_that_ran_are_in_view_with_the_saga_panel(visitor: Any, screenshot: Any) -> None:
    """GIVEN FF0009 signed in on the desktop (1440 x 900)
    WHEN a seat on SA302 is booked redeeming 500 points with ConfirmBooking refusing for
    good (the last step: the four before it are compensated, in reverse)
    THEN once the saga panel is scrolled into view, as Book does, each compensation that
    ran is inside the viewport with its status, in the order they ran, above the diagram:
    no scrolling past the fold to see what the saga undid."""
    sign_in(visitor, "FF0009")
    choose_flight(visitor, "SA302")
    visitor.locator("[data-seat='8B']").click()
    visitor.get_by_test_id("points").fill("500")
    visitor.get_by_test_id("fault-ConfirmBooking").select_option("permanent")

    book(visitor)

    expect(visitor.get_by_test_id("booking-status")).to_have_text("FAILED")
    expect(state(visitor, "booking", "ConfirmBooking")).to_have_attribute("data-status", "failed")
    visitor.get_by_test_id("saga").evaluate("panel => panel.scrollIntoView({ block: 'start' })")
    summary = visitor.locator("[data-testid='compensation-summary'] [data-summary]")
    ran = visitor.locator("[data-testid='compensations'] [data-compensation]")
    assert summary.evaluate_all("chips => chips.map(chip => chip.dataset.summary)") == ran.evaluate_all(
        "rows => rows.map(row => row.dataset.compensation)")
    assert summary.count() == 4
    assert set(summary.evaluate_all("chips => chips.map(chip => chip.dataset.status)")) == {"compensated"}
    assert_in_viewport(summary)
    assert_in_viewport(visitor.get_by_test_id("booking-status"))
    screenshot(visitor, "09-compensations-in-view", full_page=False)
