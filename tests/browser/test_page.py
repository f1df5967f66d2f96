"""The demo page in a real browser: sign in, book, fail and compensate, cancel, bad input.

Each test uses its own flight, so they share one `chalice local` and stay independent.
The `page` fixture is signed in as FF0001 (through the sign-in box); `visitor` is not.
Screenshots of the states land in docs/screenshots/ (committed; see its README).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.helpers import require_a_browser

require_a_browser()

from playwright.sync_api import expect  # noqa: E402

from chalicelib.customers import DEMO_PASSWORD, DEMO_USERNAMES  # noqa: E402
from tests.browser.helpers import (  # noqa: E402
    CUSTOMER,
    TOKEN_KEY,
    book,
    choose_flight,
    settled_as,
    sign_in,
    state,
    stored_token,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_diagram_is_drawn_from_the_served_definitions(page: Any, server: str) -> None:
    import json
    import urllib.request

    # The route needs the customer's token: the one the page holds.
    request = urllib.request.Request(f"{server}/statemachines",
                                     headers={"Authorization": f"Bearer {stored_token(page)}"})
    with urllib.request.urlopen(request) as response:
        machines = json.load(response)
    choose_flight(page, "SA102")
    page.get_by_test_id("any-seat-ECONOMY").click()
    # Without the pre-filled account: FF0001's 50,000 points stay for the boarding-pass test.
    page.get_by_test_id("loyalty-id").fill("")
    book(page)
    drawn = page.locator("[data-testid='diagram-booking'] [data-state]")
    names = sorted(drawn.evaluate_all("nodes => nodes.map(n => n.dataset.state)"))
    assert names == sorted(machines["booking"]["definition"]["States"])


def test_book_a_seat_and_get_a_boarding_pass(page: Any, screenshot: Any) -> None:
    choose_flight(page, "SA101")
    page.locator("[data-seat='12A']").click()
    expect(page.locator("[data-seat='12A']")).to_have_attribute("data-selected", "true")
    page.get_by_test_id("loyalty-id").fill("FF0001")
    expect(page.get_by_test_id("loyalty-balance")).to_contain_text("50,000")
    page.get_by_test_id("points").fill("2500")
    expect(page.get_by_test_id("amount-due")).to_have_text("$104.00")
    screenshot(page, "01-choose-seat")

    book(page)

    expect(page.get_by_test_id("booking-status")).to_have_text("CONFIRMED")
    expect(page.get_by_test_id("boarding-pass")).to_be_visible()
    expect(page.get_by_test_id("bp-seat")).to_have_text("12A")
    expect(page.get_by_test_id("bp-passenger")).to_have_text("LOVELACE/ADA")
    expect(page.get_by_test_id("correlation-id")).not_to_be_empty()
    for step in ("ReserveSeats", "RedeemPoints", "AuthorizePayment", "AwardMiles", "ConfirmBooking", "CapturePayment"):
        expect(state(page, "booking", step)).to_have_attribute("data-status", "succeeded")
    expect(page.locator("[data-testid=outcome] .facts")).to_contain_text("captured")  # settled after the capture
    expect(state(page, "booking", "BookingConfirmed")).to_have_attribute("data-status", "succeeded")
    expect(state(page, "booking", "ReleaseSeats")).to_have_attribute("data-status", "skipped")
    expect(page.locator("[data-seat='12A']")).to_have_attribute("data-status", "booked")
    expect(page.get_by_test_id("timeline")).to_contain_text("execution succeeded")
    # The balance shown is re-read after the saga: 50,000 - 2,500 redeemed + miles earned.
    expect(page.get_by_test_id("points-balance")).not_to_have_text("50,000")
    screenshot(page, "02-confirmed-boarding-pass")


def test_a_failed_charge_is_compensated_and_the_seat_is_free_again(page: Any, screenshot: Any) -> None:
    choose_flight(page, "SA201")
    page.locator("[data-seat='3D']").click()
    expect(page.get_by_test_id("faults")).to_be_visible()
    page.get_by_test_id("fault-AuthorizePayment").select_option("permanent")

    book(page)

    expect(page.get_by_test_id("booking-status")).to_have_text("FAILED")
    expect(state(page, "booking", "ReserveSeats")).to_have_attribute("data-status", "succeeded")
    expect(state(page, "booking", "AuthorizePayment")).to_have_attribute("data-status", "failed")
    expect(state(page, "booking", "ReleaseSeats")).to_have_attribute("data-status", "compensated")
    expect(state(page, "booking", "AwardMiles")).to_have_attribute("data-status", "skipped")
    expect(page.get_by_test_id("failed-step")).to_have_text("AuthorizePayment")
    expect(page.get_by_test_id("failed-error")).to_have_text("SimulatedFailure")
    expect(page.locator("[data-compensation='ReleaseSeats']")).to_have_attribute("data-status", "compensated")
    # The map was re-read after the saga: the released seat is free again.
    expect(page.locator("[data-seat='3D']")).to_have_attribute("data-status", "free")
    screenshot(page, "03-failed-compensated")


def test_a_transient_failure_is_retried(page: Any) -> None:
    choose_flight(page, "SA202")
    page.get_by_test_id("any-seat-FIRST").click()
    page.get_by_test_id("fault-AwardMiles").select_option("transient")

    book(page)

    expect(page.get_by_test_id("booking-status")).to_have_text("CONFIRMED")
    expect(state(page, "booking", "AwardMiles")).to_have_attribute("data-status", "retried")
    expect(state(page, "booking", "AwardMiles")).to_have_attribute("data-attempts", "2")
    expect(page.get_by_test_id("timeline")).to_contain_text("retry · attempt 2")


def test_cancel_a_confirmed_booking(page: Any, screenshot: Any) -> None:
    choose_flight(page, "SA301")
    page.locator("[data-seat='1F']").click()
    booking_id = book(page)
    expect(page.get_by_test_id("booking-status")).to_have_text("CONFIRMED")

    page.get_by_test_id("cancel-booking").click()
    expect(page.get_by_test_id("diagram-cancellation")).to_be_visible()
    settled_as(page, "CANCELLED")

    expect(page.get_by_test_id("booking-status")).to_have_text("CANCELLED")
    for step in ("RefundPayment", "ReverseMiles", "ReleaseSeats"):
        expect(state(page, "cancellation", step)).to_have_attribute("data-status", "compensated")
    expect(state(page, "cancellation", "RefundPoints")).to_have_attribute("data-status", "skipped")
    expect(state(page, "cancellation", "BookingCancelled")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("timeline-cancellation")).to_be_visible()
    expect(page.locator("[data-seat='1F']")).to_have_attribute("data-status", "free")
    screenshot(page, "04-cancelled")

    # The same booking, looked up by id on a fresh load, shows the same outcome.
    page.get_by_test_id("lookup-id").fill(booking_id)
    page.get_by_test_id("lookup-submit").click()
    expect(page.get_by_test_id("booking-status")).to_have_text("CANCELLED")


def test_a_fault_only_a_cancellation_runs_waits_for_the_cancel(page: Any) -> None:
    """GIVEN seat 25A on SA202 chosen with RefundPayment's menu armed (transient)
    WHEN it is booked THEN the booking does not send it (its saga never runs RefundPayment)
    and confirms; WHEN it is cancelled THEN the cancellation sends it: RefundPayment
    compensates on its second attempt and the booking is CANCELLED."""
    choose_flight(page, "SA202")
    page.locator("[data-seat='25A']").click()
    page.get_by_test_id("loyalty-id").fill("")
    page.get_by_test_id("fault-RefundPayment").select_option("transient")

    book(page)

    expect(page.get_by_test_id("booking-status")).to_have_text("CONFIRMED")
    page.get_by_test_id("cancel-booking").click()
    settled_as(page, "CANCELLED")
    expect(state(page, "cancellation", "RefundPayment")).to_have_attribute("data-status", "compensated")
    expect(state(page, "cancellation", "RefundPayment")).to_have_attribute("data-attempts", "2")
    expect(page.locator("[data-testid=outcome]")).to_contain_text("refunded")


def test_a_bad_form_shows_the_message_next_to_the_field(page: Any, screenshot: Any) -> None:
    choose_flight(page, "SA302")
    page.get_by_test_id("any-seat-BUSINESS").click()
    page.get_by_test_id("first-name").fill("")
    # The page pre-fills the customer's own account at sign-in; clear it after that.
    expect(page.get_by_test_id("loyalty-id")).to_have_value("FF0001")
    page.get_by_test_id("loyalty-id").fill("")
    page.get_by_test_id("points").fill("1000")

    page.get_by_test_id("book").click()

    expect(page.get_by_test_id("error-passenger.first_name")).to_contain_text("first name")
    expect(page.get_by_test_id("error-loyalty_id")).to_contain_text("loyalty account")
    expect(page.get_by_test_id("first-name")).to_have_class("invalid")
    expect(page.get_by_test_id("saga")).to_be_hidden()
    # Clearing the field scheduled a loyalty lookup 300 ms later; it once wiped the
    # message Book had just shown. Outwait it: the message stays.
    page.wait_for_timeout(600)
    expect(page.get_by_test_id("error-loyalty_id")).to_contain_text("loyalty account")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "05-form-errors")

    # Fixing the field clears its message.
    page.get_by_test_id("first-name").fill("Grace")
    expect(page.get_by_test_id("error-passenger.first_name")).to_be_empty()


def test_every_field_the_server_refuses_is_shown_next_to_it(page: Any) -> None:
    """GIVEN names too long for the API (the page's own checks do not count characters)
    WHEN the form is submitted
    THEN the 400 lists both fields, each message shows at its field, and no saga starts."""
    choose_flight(page, "SA402")
    page.get_by_test_id("any-seat-ECONOMY").click()
    page.get_by_test_id("first-name").fill("A" * 101)
    page.get_by_test_id("last-name").fill("L" * 101)

    page.get_by_test_id("book").click()

    expect(page.get_by_test_id("error-passenger.first_name")).to_have_text(
        "passenger.first_name must be at most 100 characters")
    expect(page.get_by_test_id("error-passenger.last_name")).to_have_text(
        "passenger.last_name must be at most 100 characters")
    expect(page.get_by_test_id("first-name")).to_have_class("invalid")
    expect(page.get_by_test_id("last-name")).to_have_class("invalid")
    expect(page.get_by_test_id("book-error")).to_be_empty()
    expect(page.get_by_test_id("saga")).to_be_hidden()


def test_the_fault_menus_come_from_the_served_vocabulary(page: Any, server: str) -> None:
    """GIVEN the vocabulary GET /config serves
    THEN the page offers a fault menu for each step and each compensation: the steps in
    order, then the compensation of each step in step order (CapturePayment, after the
    pivot, has none), then the one only a cancellation runs (RefundPayment); each with the
    failure modes, and no name of its own."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{server}/config") as response:
        saga = json.load(response)["saga"]
    menus = page.locator("select[data-step]")
    names = menus.evaluate_all("nodes => nodes.map(n => n.dataset.step)")
    undoing = [step["compensation"] for step in saga["steps"] if step["compensation"]]
    cancellation_only = [name for name in saga["cancellation_steps"] if name not in undoing]
    assert cancellation_only == ["RefundPayment"]
    assert names == [step["name"] for step in saga["steps"]] + undoing + cancellation_only
    modes = page.get_by_test_id("fault-ReserveSeats").locator("option").evaluate_all("nodes => nodes.map(n => n.value)")
    assert modes == ["", *saga["failure_modes"]]


def test_an_api_error_is_shown_next_to_the_field_it_names(page: Any) -> None:
    # The page renders whatever 4xx body the API sends: {"error", "message", "field"}.
    body = '{"error": "Conflict", "message": "seat 4A on SA401 is already taken", "field": "seat"}'
    page.route("**/bookings", lambda route: route.fulfill(status=409, content_type="application/json", body=body)
               if route.request.method == "POST" else route.continue_())
    choose_flight(page, "SA401")
    page.locator("[data-seat='4A']").click()

    page.get_by_test_id("book").click()

    expect(page.get_by_test_id("error-seat")).to_have_text("seat 4A on SA401 is already taken")
    expect(page.get_by_test_id("saga")).to_be_hidden()


def test_an_unknown_loyalty_account_is_reported_at_its_field(page: Any) -> None:
    page.get_by_test_id("loyalty-id").fill("FF9999")
    expect(page.get_by_test_id("error-loyalty_id")).to_contain_text("FF9999")
    expect(page.get_by_test_id("loyalty-balance")).to_be_empty()


# --- Signing in -----------------------------------------------------------------------------
def test_signing_in_fills_in_the_customers_own_loyalty_account(visitor: Any) -> None:
    """GIVEN a stage with demo customers WHEN the first visit's sign-in box is used
    THEN it offers the demo customers, and once signed in (as FF0003 here) the loyalty
    field holds that customer's account with its balance."""
    expect(visitor.get_by_test_id("sign-in-username")).to_have_value(DEMO_USERNAMES[0])
    expect(visitor.get_by_test_id("sign-in-password")).to_have_value(DEMO_PASSWORD)
    offered = visitor.locator("#demo-usernames option").evaluate_all("nodes => nodes.map(n => n.value)")
    assert offered == list(DEMO_USERNAMES)
    expect(visitor.get_by_test_id("signed-in")).to_be_hidden()

    sign_in(visitor, DEMO_USERNAMES[2])

    expect(visitor.get_by_test_id("signed-in")).to_contain_text(f"Signed in as {DEMO_USERNAMES[2]}")
    expect(visitor.get_by_test_id("sign-in")).to_be_hidden()
    expect(visitor.get_by_test_id("loyalty-id")).to_have_value(DEMO_USERNAMES[2])
    expect(visitor.get_by_test_id("loyalty-balance")).to_contain_text("50,000")
    expect(visitor.get_by_test_id("book")).to_have_text("Book")


def test_a_wrong_password_is_refused_next_to_the_password_field(visitor: Any) -> None:
    visitor.get_by_test_id("sign-in-password").fill("not-the-password")
    visitor.get_by_test_id("sign-in-submit").click()

    expect(visitor.get_by_test_id("error-password")).to_have_text("wrong username or password")
    expect(visitor.get_by_test_id("sign-in-password")).to_have_class("invalid")
    expect(visitor.get_by_test_id("signed-in")).to_be_hidden()
    expect(visitor.get_by_test_id("sign-in")).to_be_visible()
    expect(visitor.get_by_test_id("book")).to_have_text("Sign in to book")
    assert stored_token(visitor) is None

    # Typing the password again clears the refusal; the right one signs in.
    visitor.get_by_test_id("sign-in-password").fill(DEMO_PASSWORD)
    expect(visitor.get_by_test_id("error-password")).to_be_empty()
    sign_in(visitor)


def test_a_visitor_sees_flights_and_seats_and_is_asked_to_sign_in_to_book(visitor: Any, screenshot: Any) -> None:
    """GIVEN a visitor who has not signed in THEN flights and seat maps show, and Book,
    the lookup and the balance ask for the sign-in without sending a request that needs
    a token; nothing the page calls answers 401."""
    from urllib.parse import urlsplit

    sent: list[tuple[str, str]] = []
    refused: list[str] = []
    visitor.on("request", lambda request: sent.append((request.method, urlsplit(request.url).path)))
    visitor.on("response", lambda response: refused.append(response.url) if response.status == 401 else None)
    visitor.reload()  # so the page's first requests are seen too
    visitor.wait_for_selector("body[data-ready='true']")
    expect(visitor.get_by_test_id("sign-in")).to_be_visible()

    choose_flight(visitor, "SA501")
    visitor.locator("[data-seat='20C']").click()
    expect(visitor.locator("[data-seat='20C']")).to_have_attribute("data-selected", "true")
    expect(visitor.get_by_test_id("amount-due")).to_have_text("$129.00")
    expect(visitor.get_by_test_id("book")).to_have_text("Sign in to book")

    visitor.get_by_test_id("book").click()

    expect(visitor.get_by_test_id("book-error")).to_contain_text("Sign in to book")
    expect(visitor.get_by_test_id("sign-in-submit")).to_be_focused()
    expect(visitor.get_by_test_id("saga")).to_be_hidden()
    screenshot(visitor, "06-signed-out")

    visitor.get_by_test_id("lookup-id").fill("3f0c2a8e-1b2c-4d5e-8f90-123456789abc")
    visitor.get_by_test_id("lookup-submit").click()
    expect(visitor.get_by_test_id("error-booking_id")).to_contain_text("Sign in")
    visitor.get_by_test_id("loyalty-id").fill(CUSTOMER)
    expect(visitor.get_by_test_id("loyalty-balance")).to_have_text("Sign in to see the balance.")

    visitor.wait_for_timeout(500)  # past the balance lookup's debounce
    assert ("POST", "/bookings") not in sent
    assert not [path for _, path in sent if path.startswith(("/bookings", "/loyalty", "/statemachines", "/me"))]
    assert ("GET", "/flights/SA501/seats") in sent
    assert refused == []

    # Signing in when asked keeps the seat chosen; Book books again.
    sign_in(visitor)
    expect(visitor.locator("[data-seat='20C']")).to_have_attribute("data-selected", "true")
    expect(visitor.get_by_test_id("book")).to_have_text("Book")
    expect(visitor.get_by_test_id("book-error")).to_be_empty()


def test_sign_out_drops_the_token_and_a_reload_stays_signed_out(page: Any, server: str) -> None:
    token = stored_token(page)
    assert token
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    # A reload keeps the customer signed in: the token is in sessionStorage.
    expect(page.get_by_test_id("signed-in-as")).to_have_text(CUSTOMER)
    expect(page.get_by_test_id("loyalty-id")).to_have_value(CUSTOMER)

    page.get_by_test_id("sign-out").click()

    expect(page.get_by_test_id("sign-in")).to_be_visible()
    expect(page.get_by_test_id("signed-in")).to_be_hidden()
    assert token not in page.evaluate("Object.values(sessionStorage)")
    assert stored_token(page) is None
    expect(page.get_by_test_id("loyalty-id")).to_have_value("")
    expect(page.get_by_test_id("book")).to_have_text("Sign in to book")

    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    expect(page.get_by_test_id("sign-in")).to_be_visible()
    expect(page.get_by_test_id("signed-in")).to_be_hidden()
    expect(page.get_by_test_id("sign-in-message")).to_be_hidden()


def test_a_token_the_server_refuses_brings_back_the_sign_in_box(visitor: Any) -> None:
    """GIVEN a held token the server does not accept WHEN the page loads THEN it is
    signed out, says why, drops the token, and still shows the flights."""
    visitor.evaluate("key => sessionStorage.setItem(key, 'not-a-token')", TOKEN_KEY)
    visitor.reload()
    visitor.wait_for_selector("body[data-ready='true']")

    expect(visitor.get_by_test_id("sign-in")).to_be_visible()
    expect(visitor.get_by_test_id("sign-in-message")).to_contain_text("Sign in again")
    expect(visitor.get_by_test_id("signed-in")).to_be_hidden()
    expect(visitor.get_by_test_id("global-error")).to_be_hidden()
    expect(visitor.get_by_test_id("flight-SA101")).to_be_visible()
    assert stored_token(visitor) is None

    sign_in(visitor)
    expect(visitor.get_by_test_id("sign-in-message")).to_be_hidden()


def test_a_session_that_ends_while_booking_asks_to_sign_in_again(page: Any) -> None:
    """GIVEN a signed-in customer whose token the server stops accepting (its 401 is
    played by the route) WHEN they book THEN nothing is tracked, the sign-in box is back
    with the server's reason, and the token is gone."""
    body = '{"error": "Unauthorized", "message": "the token has expired"}'
    page.route("**/bookings", lambda route: route.fulfill(status=401, content_type="application/json", body=body)
               if route.request.method == "POST" else route.continue_())
    choose_flight(page, "SA502")
    page.get_by_test_id("any-seat-ECONOMY").click()

    page.get_by_test_id("book").click()

    expect(page.get_by_test_id("sign-in")).to_be_visible()
    expect(page.get_by_test_id("sign-in-message")).to_contain_text("the token has expired")
    expect(page.get_by_test_id("book-error")).to_have_text("Not booked: sign in again, then book.")
    expect(page.get_by_test_id("book")).to_have_text("Sign in to book")
    expect(page.get_by_test_id("signed-in")).to_be_hidden()
    expect(page.get_by_test_id("saga")).to_be_hidden()
    assert stored_token(page) is None


def test_without_demo_customers_the_sign_in_box_starts_empty(visitor: Any) -> None:
    """GIVEN a /config without demo_sign_in (as on prod) THEN the box offers no one and
    pre-fills nothing; signing in empty asks for both fields and sends nothing."""
    def without_demo(route: Any) -> None:
        response = route.fetch()
        settings = response.json()
        settings.pop("demo_sign_in", None)
        route.fulfill(response=response, json=settings)

    visitor.route("**/config", without_demo)
    visitor.reload()
    visitor.wait_for_selector("body[data-ready='true']")
    sign_ins: list[str] = []
    visitor.on("request", lambda request: sign_ins.append(request.url) if "/auth/sign-in" in request.url else None)

    expect(visitor.get_by_test_id("sign-in-username")).to_have_value("")
    expect(visitor.get_by_test_id("sign-in-password")).to_have_value("")
    expect(visitor.get_by_test_id("sign-in-demo")).to_be_hidden()
    assert visitor.locator("#demo-usernames option").count() == 0

    visitor.get_by_test_id("sign-in-submit").click()

    expect(visitor.get_by_test_id("error-username")).to_contain_text("username")
    expect(visitor.get_by_test_id("error-password")).to_contain_text("password")
    assert sign_ins == []
