"""The operator's recover on the page: a NEEDS_ATTENTION booking on a stage with operator
routes (the local stage: GET /config says operator_routes) offers Recover, which calls
POST admin/bookings/{id}/recover and shows what it re-ran and the booking's new status.

Run behind the /api/ prefix (tests/browser/proxy.py), so the operator's route is reached
by a relative URL too. Its customer and flight are its own.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.browser.helpers import require_a_browser

require_a_browser()

from playwright.sync_api import expect  # noqa: E402

from tests.browser.helpers import SAGA_TIMEOUT, Mounted, book, choose_flight, sign_in, state  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def without_operator_routes(route: Any) -> None:
    """GET /config as a deployed stage answers it: no operator routes."""
    response = route.fetch()
    route.fulfill(response=response, json={**response.json(), "operator_routes": False})


def test_recover_makes_a_booking_that_needs_attention_failed(prefixed: Mounted, server: str, screenshot: Any) -> None:
    """GIVEN FF0005 signed in at …/api/, seat 15B on SA501 booked redeeming 1,000 points with
    AwardMiles and VoidPayment failing for good: VoidPayment's retries run out, the
    amount stays authorised on the card and the booking ends NEEDS_ATTENTION
    WHEN the page is loaded on a stage without operator routes THEN it offers no Recover
    WHEN it is loaded on the local stage and Recover is clicked
    THEN the page shows that VoidPayment was re-run and the booking is FAILED, with
    VoidPayment compensated and the hold on the card released; Recover is gone, the points are
    back, the operator's invariant check finds nothing about the booking, its seat or its
    account, and no request left /api/."""
    page = prefixed.page
    sign_in(page, "FF0005")
    choose_flight(page, "SA501")
    page.locator("[data-seat='15B']").click()
    page.get_by_test_id("points").fill("1000")
    page.get_by_test_id("fault-AwardMiles").select_option("permanent")
    page.get_by_test_id("fault-VoidPayment").select_option("permanent")

    booking_id = book(page)

    expect(page.get_by_test_id("booking-status")).to_have_text("NEEDS_ATTENTION")
    summary = page.get_by_test_id("compensation-summary")
    expect(summary.locator("[data-summary='VoidPayment']")).to_have_attribute("data-status", "failed")
    expect(page.get_by_test_id("failure")).to_contain_text("Dead-lettered for an operator: VoidPayment")
    expect(page.get_by_test_id("booking-seat")).to_contain_text("15B")
    expect(page.locator("[data-testid=outcome] .facts")).to_contain_text("authorized")  # still held on the card

    page.route("**/config", without_operator_routes)
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    page.wait_for_function("document.body.dataset.sagaSettled")
    expect(page.get_by_test_id("booking-status")).to_have_text("NEEDS_ATTENTION")
    expect(page.get_by_test_id("recover")).to_have_count(0)
    page.unroute("**/config")
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    page.wait_for_function("document.body.dataset.sagaSettled")
    expect(page.get_by_test_id("recover")).to_be_visible()
    page.get_by_test_id("saga").evaluate("panel => panel.scrollIntoView({ block: 'start' })")
    screenshot(page, "10-needs-attention-recover", full_page=False)

    with page.expect_response(lambda answer: answer.url.endswith("/recover")) as recovered:
        page.get_by_test_id("recover").click()

    assert recovered.value.status == 200
    assert recovered.value.json() == {"booking_id": booking_id, "status": "FAILED", "rerun": ["VoidPayment"],
                                      "still_failing": {}}
    assert recovered.value.request.headers.get("authorization") is None  # an operator's call, not the customer's
    expect(page.get_by_test_id("booking-status")).to_have_text("FAILED", timeout=SAGA_TIMEOUT)
    expect(page.get_by_test_id("recovery")).to_contain_text("Recovered by the operator")
    expect(page.get_by_test_id("recovery-rerun")).to_have_text("VoidPayment")
    expect(page.get_by_test_id("recovery-status")).to_have_text("FAILED")
    expect(summary.locator("[data-summary='VoidPayment']")).to_have_attribute("data-status", "compensated")
    expect(page.get_by_test_id("recover")).to_have_count(0)
    expect(page.get_by_test_id("failure")).to_contain_text("everything undone")
    expect(page.locator("[data-testid=outcome] .facts")).to_contain_text("voided")
    expect(page.get_by_test_id("points-balance")).to_have_text("50,000")
    screenshot(page, "11-recovered", full_page=False)
    # Other tests leave their own NEEDS_ATTENTION bookings: only this booking's subjects count.
    with urllib.request.urlopen(f"{server}/admin/invariants") as response:
        violations = json.load(response)["violations"]
    assert [v for v in violations if v["subject"] in {booking_id, "SA501/15B", "FF0005"}] == [], violations
    assert prefixed.outside() == []


def test_recover_captures_a_confirmed_booking_whose_capture_failed(prefixed: Mounted) -> None:
    """GIVEN FF0007 signed in at …/api/, seat 16C on SA501 booked with CapturePayment failing
    for good (after the pivot: nothing is compensated)
    THEN the booking is CONFIRMED with its boarding pass, CapturePayment failed, the payment
    is CAPTURE_FAILED (still authorised) and the page offers Recover
    WHEN Recover is clicked THEN it re-ran CapturePayment and the booking stays CONFIRMED,
    now captured; Recover is gone, and no request left /api/."""
    page = prefixed.page
    sign_in(page, "FF0007")
    choose_flight(page, "SA501")
    page.locator("[data-seat='16C']").click()
    page.get_by_test_id("fault-CapturePayment").select_option("permanent")

    booking_id = book(page)

    expect(page.get_by_test_id("booking-status")).to_have_text("CONFIRMED")
    expect(page.get_by_test_id("bp-seat")).to_have_text("16C")
    expect(state(page, "booking", "CapturePayment")).to_have_attribute("data-status", "failed")
    expect(state(page, "booking", "RecordCaptureFailure")).to_have_attribute("data-status", "succeeded")
    expect(page.locator("[data-testid=outcome] .facts")).to_contain_text("capture_failed")
    expect(page.get_by_test_id("recover")).to_be_visible()

    with page.expect_response(lambda answer: answer.url.endswith("/recover")) as recovered:
        page.get_by_test_id("recover").click()

    assert recovered.value.status == 200
    assert recovered.value.json() == {"booking_id": booking_id, "status": "CONFIRMED", "rerun": ["CapturePayment"],
                                      "still_failing": {}}
    expect(page.get_by_test_id("recovery")).to_contain_text("Recovered by the operator")
    expect(page.get_by_test_id("recovery-status")).to_have_text("CONFIRMED")
    expect(page.locator("[data-testid=outcome] .facts")).to_contain_text("captured", timeout=SAGA_TIMEOUT)
    expect(page.get_by_test_id("recover")).to_have_count(0)
    expect(page.get_by_test_id("booking-status")).to_have_text("CONFIRMED")
    assert prefixed.outside() == []
