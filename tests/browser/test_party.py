"""A party over several legs on the demo page: passengers added, a second flight picked
after the first, seats chosen per passenger on one leg and assigned on the other; and a
failure injected on one leg, the legs that held released.

Its flights (SA302 → SA301, SA201 → SA202) are test_page's too: the seats chosen here are
ones no other test chooses, and the failed booking leaves none held."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.helpers import require_a_browser

require_a_browser()

from playwright.sync_api import expect  # noqa: E402

from tests.browser.helpers import book, choose_flight, state  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARTY = [("Grace", "Hopper"), ("Alan", "Turing")]  # after the form's own first passenger


def add_party(page: Any) -> None:
    for index, (first, last) in enumerate(PARTY, start=1):
        page.get_by_test_id("add-passenger").click()
        page.get_by_test_id(f"first-name-{index}").fill(first)
        page.get_by_test_id(f"last-name-{index}").fill(last)
    expect(page.get_by_test_id("party-count")).to_have_text(f"{len(PARTY) + 1} passengers")


def test_a_party_of_three_over_two_legs_books_and_confirms(page: Any, screenshot: Any) -> None:
    choose_flight(page, "SA302")
    page.get_by_test_id("loyalty-id").fill("")
    add_party(page)
    page.get_by_test_id("add-leg").click()
    # The return leaves from where the first flight lands, after it.
    expect(page.get_by_test_id("leg-flight-1")).to_have_value("SA301")
    outbound = page.get_by_test_id("seatmap")
    back = page.get_by_test_id("seatmap-1")
    expect(back.locator("[data-seat='27F']")).to_be_visible()
    # One passenger per click on the outbound map; the return's seats are assigned.
    for passenger, seat in enumerate(("22A", "22B", "22C")):
        outbound.locator(f"[data-seat='{seat}']").click()
        expect(outbound.locator(f"[data-seat='{seat}']")).to_have_attribute("data-passenger", str(passenger))
    expect(page.get_by_test_id("pick-1-2")).to_contain_text("assigned")
    expect(page.get_by_test_id("fare")).to_have_text("$774.00")  # $129 x 3 passengers x 2 flights
    screenshot(page, "12-party-choose-seats")

    book(page)

    expect(page.get_by_test_id("booking-status")).to_have_text("CONFIRMED")
    tickets = page.get_by_test_id("tickets")
    expect(tickets).to_be_visible()
    for index in range(3):
        expect(page.get_by_test_id(f"ticket-number-{index}")).not_to_have_text("—")
    expect(page.get_by_test_id("ticket-seat-1-0")).to_have_text("22B")
    expect(page.get_by_test_id("booking-passengers")).to_contain_text("Grace Hopper")
    # Both maps re-read after the saga: the party's 6 seats booked, 3 on each.
    for seatmap in (outbound, back):
        mine = seatmap.locator(".seat.mine")
        expect(mine).to_have_count(3)
        for index in range(3):
            expect(mine.nth(index)).to_have_attribute("data-status", "booked")
    for seat in ("22A", "22B", "22C"):
        expect(outbound.locator(f"[data-seat='{seat}']")).to_have_attribute("data-status", "booked")
    expect(page.get_by_test_id("map-leg-booking-0-ReserveSeats")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("map-leg-booking-1-ReserveSeats")).to_have_attribute("data-status", "succeeded")
    screenshot(page, "13-party-confirmed")


def test_a_failure_on_one_leg_releases_the_legs_that_held(page: Any, screenshot: Any) -> None:
    choose_flight(page, "SA201")
    page.get_by_test_id("loyalty-id").fill("")
    add_party(page)
    page.get_by_test_id("add-leg").click()
    expect(page.get_by_test_id("leg-flight-1")).to_have_value("SA202")
    page.get_by_test_id("any-seat-ECONOMY").click()
    page.get_by_test_id("fault-ReserveSeats").select_option("permanent")
    page.get_by_test_id("fault-leg-ReserveSeats").select_option("1")

    book(page)

    expect(page.get_by_test_id("booking-status")).to_have_text("FAILED")
    expect(page.get_by_test_id("failed-step")).to_have_text("ReserveSeats")
    expect(state(page, "booking", "ReserveSeats")).to_have_attribute("data-status", "failed")
    expect(state(page, "booking", "ReleaseSeats")).to_have_attribute("data-status", "compensated")
    legs = page.get_by_test_id("map-legs-booking")
    expect(legs).to_be_visible()
    expect(page.get_by_test_id("map-leg-booking-0-ReserveSeats")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("map-leg-booking-0-ReserveSeats")).to_contain_text("held")
    expect(page.get_by_test_id("map-leg-booking-0-ReleaseSeats")).to_have_attribute("data-status", "compensated")
    expect(page.get_by_test_id("map-leg-booking-0-ReleaseSeats")).to_contain_text("released")
    expect(page.get_by_test_id("map-leg-booking-1-ReserveSeats")).to_have_attribute("data-status", "failed")
    expect(page.get_by_test_id("map-leg-booking-1-ReleaseSeats")).to_have_attribute("data-status", "not-run")
    # The diagram's Map states carry a dot per leg: held, failed, released.
    for machine_state, leg, status in (("ReserveSeats", 0, "succeeded"), ("ReserveSeats", 1, "failed"),
                                       ("ReleaseSeats", 0, "compensated")):
        expect(page.get_by_test_id(f"leg-dot-booking-{machine_state}-{leg}")).to_have_attribute("data-status", status)
    expect(page.get_by_test_id("leg-dot-booking-ReleaseSeats-1")).to_have_count(0)
    # Nothing of the party is left held on either map.
    expect(page.get_by_test_id("seatmap").locator(".seat.held")).to_have_count(0)
    expect(page.get_by_test_id("seatmap-1").locator(".seat.held")).to_have_count(0)
    screenshot(page, "14-party-leg-failed")
