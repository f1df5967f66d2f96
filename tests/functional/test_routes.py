"""The HTTP API, route by route, through chalice.test.Client on the embedded stack.

Every test but the refused-request table gets a fresh stack with the demo data
(flights SA101..SA502, 162 free seats each; loyalty FF0001..FF0010 with 50,000 points).
Sagas run in the background; tests wait for a terminal status, they never sleep.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import clock, vocabulary
from chalicelib.models import BASE_FARES, CURRENCY, HOLD_SECONDS, all_seats
from chalicelib.vocabulary import FORWARD_STEP_NAMES
from tests.support import (
    TableWatch,
    balance,
    booking_body,
    changed_tables,
    entered_states,
    executions,
    hold_seat,
    items,
    post_json,
    refusal_stack,
    snapshot,
    wait_for_status,
    wait_until,
)

OPENING_POINTS = 50_000
FLIGHT_NUMBERS = [f"SA{n}" for n in (101, 102, 201, 202, 301, 302, 401, 402, 501, 502)]
ALL_FREE = {"FIRST": 12, "BUSINESS": 18, "ECONOMY": 132}
BOOKING_FIELDS = {
    "booking_id", "correlation_id", "status", "flight_number", "seat", "cabin", "passenger", "fare",
    "amount_paid", "payment", "steps", "compensations", "failed_step", "error", "ticket_number",
    "boarding_pass",
}
HAPPY_STATES = ["ReserveSeats", "ReserveSeatsLeg", "ReserveSeatsHeld", "RedeemPoints", "AuthorizePayment",
                "AwardMiles", "ConfirmBooking", "CapturePayment", "BookingConfirmed"]
CANCELLATION_STATES = ["RefundPayment", "ReverseMiles", "ShouldRefundPoints", "RefundPoints", "ReleaseSeats",
                       "ReleaseSeatsLegHeld", "ReleaseSeatsLeg", "RecordCancellation", "CancellationOutcome",
                       "BookingCancelled"]


# --- helpers -------------------------------------------------------------------------------
def get_json(client: Any, path: str) -> Any:
    response = client.http.get(path)
    assert response.status_code == 200, (path, response.status_code, response.body)
    return response.json_body


def book(client: Any, headers: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """POST /bookings, expect 202, return the response body."""
    response = post_json(client, "/bookings", booking_body(**overrides), headers)
    assert response.status_code == 202, response.body
    return dict(response.json_body)


def book_and_wait(client: Any, **overrides: Any) -> dict[str, Any]:
    """Book and return GET /bookings/{id} once the saga is over."""
    booking_id = book(client, **overrides)["booking_id"]
    wait_for_status(booking_id)
    return dict(get_json(client, f"/bookings/{booking_id}"))


def names(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["name"] for entry in entries]


def step_status(client: Any, booking_id: str, step: str) -> str:
    steps = get_json(client, f"/bookings/{booking_id}")["steps"]
    return str(next(entry["status"] for entry in steps if entry["name"] == step))


def seat_status(client: Any, flight_number: str, seat_id: str) -> str:
    seats = get_json(client, f"/flights/{flight_number}/seats")["seats"]
    return str(next(seat["status"] for seat in seats if seat["seat"] == seat_id))


def assert_refused(response: Any, status: int, mentions: str) -> None:
    """A refusal: the status, and a JSON body whose message says what is wrong."""
    assert response.status_code == status, (response.status_code, response.body)
    body = response.json_body
    assert isinstance(body, dict), response.body
    assert isinstance(body.get("message"), str) and body["message"].strip(), body
    assert mentions.lower() in body["message"].lower(), body


# --- GET /health, /flights, /flights/{n} ------------------------------------------------------
def test_health_flights_and_availability_follow_the_bookings(client: Any) -> None:
    """GIVEN the demo data with every seat free
    WHEN the catalogue is read, then a BUSINESS seat is booked by cabin, without points
    THEN /health is ok, every flight lists 162 free seats in the documented shape; the booking
    gets a generated correlation id, a BUSINESS seat and pays the full fare; and SA101 (only)
    then shows one BUSINESS seat fewer, in the list and in its details."""
    assert get_json(client, "/health") == {"status": "ok"}

    flights = get_json(client, "/flights")["flights"]
    assert sorted(flight["flight_number"] for flight in flights) == sorted(FLIGHT_NUMBERS)
    departures = [datetime.fromisoformat(flight["departure"]) for flight in flights]
    assert departures == sorted(departures)  # soonest first
    numbers = [flight["flight_number"] for flight in flights]
    assert numbers != sorted(numbers)  # the demo's numbers are not in departure order: the test tells them apart
    assert all(departure.tzinfo is not None for departure in departures)
    for flight in flights:
        assert set(flight) == {"flight_number", "origin", "destination", "departure", "seats_total",
                               "seats_available"}
        assert flight["origin"] != flight["destination"]
        assert (flight["seats_total"], flight["seats_available"]) == (162, 162)

    details = get_json(client, "/flights/SA101")
    assert details["availability"] == ALL_FREE
    assert (details["flight_number"], details["origin"], details["destination"]) == ("SA101", "SFO", "JFK")
    assert (details["seats_total"], details["seats_available"]) == (162, 162)

    accepted = book(client, cabin="BUSINESS")  # no loyalty account, no X-Correlation-Id
    assert accepted["correlation_id"] and accepted["correlation_id"] != accepted["booking_id"]
    wait_for_status(accepted["booking_id"])
    booking = get_json(client, f"/bookings/{accepted['booking_id']}")
    assert (booking["status"], booking["correlation_id"]) == ("CONFIRMED", accepted["correlation_id"])
    assert booking["cabin"] == "BUSINESS" and int(booking["seat"][:-1]) in (3, 4, 5)  # auto-assigned
    assert booking["fare"] == booking["amount_paid"] == BASE_FARES["BUSINESS"]  # no points: the full fare
    assert booking["payment"] == {"status": "CAPTURED", "amount": BASE_FARES["BUSINESS"], "currency": CURRENCY}
    assert {step["name"]: step["status"] for step in booking["steps"]} == {
        "ReserveSeats": "SUCCEEDED", "RedeemPoints": "SKIPPED", "AuthorizePayment": "SUCCEEDED",
        "AwardMiles": "SUCCEEDED", "ConfirmBooking": "SUCCEEDED", "CapturePayment": "SUCCEEDED"}

    details = get_json(client, "/flights/SA101")
    assert details["availability"] == {**ALL_FREE, "BUSINESS": 17}
    assert details["seats_available"] == 161
    flights = get_json(client, "/flights")["flights"]
    available = {flight["flight_number"]: flight["seats_available"] for flight in flights}
    assert available == {**dict.fromkeys(FLIGHT_NUMBERS, 162), "SA101": 161}


# --- GET /config -----------------------------------------------------------------------------
def test_config_serves_the_saga_vocabulary() -> None:
    """GIVEN the app on the "dev" stage (no AWS needed: nothing is read from a table)
    WHEN GET /config
    THEN it names the stage, whether faults can be injected, that it has no operator routes,
    the demo customers the page may sign in as (dev has them), and the saga's vocabulary
    exactly as chalicelib.vocabulary describes it (the demo page builds its menus from it)."""
    with Client(app_module.app) as plain:
        config = get_json(plain, "/config")
    demo = {"usernames": [f"FF{number:04d}" for number in range(1, 11)], "password": "Demo-Passw0rd"}
    assert config == {"stage": "dev", "fault_injection": True, "operator_routes": False,
                      "saga": vocabulary.describe(), "demo_sign_in": demo}
    saga = config["saga"]
    assert [step["name"] for step in saga["steps"]] == list(FORWARD_STEP_NAMES)
    assert [step["compensation"] for step in saga["steps"]][-1] is None  # CapturePayment: never compensated
    assert saga["failure_modes"] == ["permanent", "transient", "timeout", "hang"]
    assert set(saga["terminal_statuses"]) == {"CONFIRMED", "FAILED", "CANCELLED", "NEEDS_ATTENTION"}



@pytest.mark.parametrize(("stage", "operator_routes"), [("local", True), ("dev", False), ("prod", False)])
def test_config_says_whether_the_operator_routes_exist(stage: str, operator_routes: bool) -> None:
    """GIVEN the app on each stage of .chalice/config.json
    WHEN GET /config
    THEN operator_routes is true exactly where OPERATOR_ROUTES_ENABLED serves /admin (the
    local stage, where the page offers the operator's recover), and prod offers no demo sign-in."""
    with Client(app_module.app, stage_name=stage) as plain:
        config = get_json(plain, "/config")
    assert (config["stage"], config["operator_routes"]) == (stage, operator_routes)
    assert ("demo_sign_in" in config) == (stage != "prod")

# --- GET /flights/{n}/seats -------------------------------------------------------------------
def test_seat_map_filters_and_an_expired_hold_shows_available(client: Any) -> None:
    """GIVEN SA101 with seat 12A booked and seat 20C held by another booking
    WHEN the seat map is read with and without filters, then again 16 minutes later
    THEN it lists all 162 seats front to back, the filters select by status and cabin, and
    the expired hold on 20C shows AVAILABLE (and the seat can be booked again)."""
    seats = get_json(client, "/flights/SA101/seats")
    assert seats["flight_number"] == "SA101"
    assert len(seats["seats"]) == 162
    assert seats["seats"] == [{"seat": seat, "cabin": cabin, "status": "AVAILABLE"} for seat, cabin in all_seats()]
    assert seats["seats"][0]["seat"] == "1A" and seats["seats"][-1]["seat"] == "27F"
    for cabin, count in ALL_FREE.items():
        selected = get_json(client, f"/flights/SA101/seats?cabin={cabin}")["seats"]
        assert len(selected) == count and {seat["cabin"] for seat in selected} == {cabin}

    assert book_and_wait(client, seat="12A", cabin=None)["status"] == "CONFIRMED"
    hold_seat("SA101", "20C", "someone-else", HOLD_SECONDS)

    assert get_json(client, "/flights/SA101/seats?status=BOOKED")["seats"] == [
        {"seat": "12A", "cabin": "ECONOMY", "status": "BOOKED"}]
    assert get_json(client, "/flights/SA101/seats?status=HELD")["seats"] == [
        {"seat": "20C", "cabin": "ECONOMY", "status": "HELD"}]
    assert get_json(client, "/flights/SA101/seats?status=HELD&cabin=FIRST")["seats"] == []
    assert len(get_json(client, "/flights/SA101/seats?status=AVAILABLE")["seats"]) == 160
    assert len(get_json(client, "/flights/SA101/seats?status=AVAILABLE&cabin=ECONOMY")["seats"]) == 130
    assert get_json(client, "/flights/SA102/seats?status=BOOKED")["seats"] == []  # other flights untouched

    clock.advance(16 * 60)

    assert get_json(client, "/flights/SA101/seats?status=HELD")["seats"] == []
    assert seat_status(client, "SA101", "20C") == "AVAILABLE"
    assert get_json(client, "/flights/SA101")["availability"]["ECONOMY"] == 131
    retaken = book_and_wait(client, seat="20C", cabin=None)
    assert (retaken["status"], retaken["seat"]) == ("CONFIRMED", "20C")
    assert seat_status(client, "SA101", "20C") == "BOOKED"


# --- POST /bookings, GET /bookings/{id}, GET /loyalty/{id}, history: the happy path --------------
def test_booking_with_points_is_confirmed_paid_ticketed_and_audited(client: Any) -> None:
    """GIVEN FF0001 with 50,000 points
    WHEN seat 12A is booked redeeming 1,000 points, with an X-Correlation-Id
    THEN the POST answers 202 PENDING with a Location, the saga confirms it: ticket and
    boarding pass issued, 129.00 - 10.00 captured, miles for 119.00 credited, the seat BOOKED,
    and the history shows every state entered in order."""
    response = post_json(
        client, "/bookings",
        booking_body(seat="12A", cabin=None, loyalty_id="FF0001", points_to_redeem=1_000),
        {"X-Correlation-Id": "trace-abc.123"},
    )
    assert response.status_code == 202, response.body
    accepted = response.json_body
    booking_id = accepted["booking_id"]
    assert str(uuid.UUID(booking_id)) == booking_id
    assert accepted == {"booking_id": booking_id, "correlation_id": "trace-abc.123", "status": "PENDING"}
    assert response.headers["Location"] == f"bookings/{booking_id}"  # relative: see test_location_*

    wait_for_status(booking_id)
    booking = get_json(client, f"/bookings/{booking_id}")
    assert set(booking) >= BOOKING_FIELDS
    fare = BASE_FARES["ECONOMY"]
    paid = fare - 1_000  # 100 points = 100 cents off
    assert booking["status"] == "CONFIRMED"
    assert (booking["booking_id"], booking["correlation_id"]) == (booking_id, "trace-abc.123")
    assert (booking["flight_number"], booking["seat"], booking["cabin"]) == ("SA101", "12A", "ECONOMY")
    assert booking["passenger"] == {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
    assert (booking["fare"], booking["amount_paid"]) == (fare, paid)
    assert booking["payment"] == {"status": "CAPTURED", "amount": paid, "currency": CURRENCY}
    assert (booking["failed_step"], booking["error"], booking["compensations"]) == (None, None, [])
    assert names(booking["steps"]) == list(FORWARD_STEP_NAMES)
    for step in booking["steps"]:
        assert step["status"] == "SUCCEEDED", step
        assert "error" not in step
        assert datetime.fromisoformat(step["started_at"]) <= datetime.fromisoformat(step["finished_at"])
    ticket = booking["ticket_number"]
    assert isinstance(ticket, str) and len(ticket) == 13 and ticket.isdigit()
    boarding_pass = booking["boarding_pass"]
    assert boarding_pass["ticket_number"] == ticket
    assert (boarding_pass["seat"], boarding_pass["flight_number"], boarding_pass["booking_id"]) == (
        "12A", "SA101", booking_id)
    assert boarding_pass["passenger"] == "LOVELACE/ADA"
    assert seat_status(client, "SA101", "12A") == "BOOKED"

    account = get_json(client, "/loyalty/FF0001")
    miles = paid // 100
    assert account["loyalty_id"] == "FF0001"
    assert account["points_balance"] == OPENING_POINTS - 1_000 + miles
    assert [(entry["booking_id"], entry["kind"], entry["points"]) for entry in account["ledger"]] == [
        (booking_id, "REDEEM", -1_000), (booking_id, "AWARD", miles)]
    assert all(datetime.fromisoformat(entry["at"]) for entry in account["ledger"])
    assert balance("FF0002") == OPENING_POINTS  # another customer's account: untouched, and not shown
    assert client.http.get("/loyalty/FF0002").status_code == 404

    history = get_json(client, f"/bookings/{booking_id}/history")
    assert (history["booking_id"], history["correlation_id"]) == (booking_id, "trace-abc.123")
    assert [(run["kind"], run["status"]) for run in history["executions"]] == [("booking", "SUCCEEDED")]
    events = history["executions"][0]["events"]
    assert all({"type", "state"} <= set(event) for event in events)
    assert entered_states(events) == HAPPY_STATES
    assert not [event for event in events if "error" in event]


# --- Idempotency-Key ---------------------------------------------------------------------------
def test_repeated_idempotency_key_returns_the_same_booking_and_starts_nothing(client: Any) -> None:
    """GIVEN a booking made with Idempotency-Key k-1
    WHEN the same body is sent again with k-1, at once and after the saga is over
    THEN both repeats answer 202 with the same booking id (flagged as replayed), and there is
    still one booking, one idempotency record, one payment and one execution."""
    body = booking_body(cabin="BUSINESS", loyalty_id="FF0001", points_to_redeem=500)
    headers = {"Idempotency-Key": "k-1"}
    first = post_json(client, "/bookings", body, headers)
    assert first.status_code == 202, first.body
    booking_id = first.json_body["booking_id"]

    again = post_json(client, "/bookings", body, headers)
    assert again.status_code == 202, again.body
    assert again.json_body["booking_id"] == booking_id
    assert again.json_body["correlation_id"] == first.json_body["correlation_id"]
    assert again.headers["Location"] == f"bookings/{booking_id}"
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers

    assert wait_for_status(booking_id)["status"] == "CONFIRMED"
    late = post_json(client, "/bookings", body, headers)
    assert late.status_code == 202, late.body
    assert (late.json_body["booking_id"], late.json_body["status"]) == (booking_id, "CONFIRMED")

    assert [item["booking_id"] for item in items("bookings")] == [booking_id]
    assert len(items("idempotency")) == 1
    assert len(items("payments")) == 1
    assert [execution["name"] for execution in executions()] == [booking_id]
    assert get_json(client, "/loyalty/FF0001")["points_balance"] == OPENING_POINTS - 500 + (45_900 - 500) // 100


def test_repeated_idempotency_key_for_a_named_seat_returns_the_same_booking(client: Any) -> None:
    """GIVEN a booking of seat 14B with Idempotency-Key k-seat that is CONFIRMED
    WHEN the client retries the same body with the same key (e.g. its first response was lost)
    THEN it gets 202 with the same booking id, and nothing new is written or started."""
    body = booking_body(seat="14B", cabin=None)
    headers = {"Idempotency-Key": "k-seat"}
    first = post_json(client, "/bookings", body, headers)
    assert first.status_code == 202, first.body
    booking_id = first.json_body["booking_id"]
    assert wait_for_status(booking_id)["status"] == "CONFIRMED"
    before = snapshot()

    retry = post_json(client, "/bookings", body, headers)

    assert changed_tables(before, snapshot()) == []
    assert retry.status_code == 202, retry.body
    assert retry.json_body["booking_id"] == booking_id
    assert len(executions()) == 1


# --- The saga's failure, seen through the API ----------------------------------------------------
def test_failed_charge_is_compensated_in_reverse_order_and_audited(client: Any) -> None:
    """GIVEN two bookings whose AuthorizePayment fails permanently, one redeeming 500 points of FF0001
    WHEN their sagas are over
    THEN both are FAILED at AuthorizePayment with SimulatedFailure, without ticket or payment; the
    seat is released (and the points refunded first), and the history shows the task's error and cause."""
    fail = {"AuthorizePayment": "permanent"}
    plain_id = book(client, simulate_failure=fail)["booking_id"]
    points_id = book(client, simulate_failure=fail, loyalty_id="FF0001", points_to_redeem=500)["booking_id"]
    wait_for_status(plain_id)
    wait_for_status(points_id)

    for booking_id, compensations in ((plain_id, ["ReleaseSeats"]), (points_id, ["RefundPoints", "ReleaseSeats"])):
        booking = get_json(client, f"/bookings/{booking_id}")
        assert set(booking) >= BOOKING_FIELDS
        assert booking["status"] == "FAILED"
        assert booking["failed_step"] == "AuthorizePayment"
        assert booking["error"]["error"] == "SimulatedFailure"
        assert "AuthorizePayment" in booking["error"]["cause"]
        assert names(booking["compensations"]) == compensations
        assert {entry["status"] for entry in booking["compensations"]} == {"COMPENSATED"}
        assert (booking["ticket_number"], booking["boarding_pass"]) == (None, None)
        assert booking["payment"] == {"status": "NONE", "amount": 0, "currency": CURRENCY}
        assert booking["amount_paid"] == 0
        steps = {step["name"]: step for step in booking["steps"]}
        assert steps["AuthorizePayment"]["status"] == "FAILED"
        assert steps["AuthorizePayment"]["error"]["error"] == "SimulatedFailure"
        assert steps["AwardMiles"]["status"] == steps["ConfirmBooking"]["status"] == "NOT_STARTED"
        assert seat_status(client, "SA101", booking["seat"]) == "AVAILABLE"

    account = get_json(client, "/loyalty/FF0001")
    assert account["points_balance"] == OPENING_POINTS
    assert [(entry["kind"], entry["points"]) for entry in account["ledger"]] == [("REDEEM", -500), ("REFUND", 500)]
    assert get_json(client, "/flights/SA101")["availability"] == ALL_FREE

    history = get_json(client, f"/bookings/{points_id}/history")
    [run] = history["executions"]
    assert (run["kind"], run["status"]) == ("booking", "FAILED")
    assert entered_states(run["events"]) == [
        "ReserveSeats", "ReserveSeatsLeg", "ReserveSeatsHeld", "RedeemPoints", "AuthorizePayment",
        "ShouldRefundPoints", "RefundPoints", "ReleaseSeats", "ReleaseSeatsLegHeld", "ReleaseSeatsLeg", "RecordFailure",
        "BookingFailed"]
    failure = next(event for event in run["events"] if "error" in event)
    assert failure["state"] == "AuthorizePayment" and failure["type"].endswith("Failed")
    assert failure["error"] == "SimulatedFailure"
    assert "failed on purpose" in failure["cause"]


# --- POST /bookings/{id}/cancel -----------------------------------------------------------------
def test_cancelling_a_confirmed_booking_undoes_every_step(client: Any) -> None:
    """GIVEN a CONFIRMED booking of 7D that redeemed 2,000 points of FF0001 and earned miles
    WHEN it is cancelled
    THEN the cancel answers 202 CANCELLING, and the booking becomes CANCELLED: payment refunded,
    miles reversed, points refunded, seat free, in that order, and a cancellation execution is recorded."""
    booking = book_and_wait(client, seat="7D", cabin=None, loyalty_id="FF0001", points_to_redeem=2_000)
    assert booking["status"] == "CONFIRMED"
    booking_id = booking["booking_id"]
    paid = BASE_FARES["ECONOMY"] - 2_000
    assert get_json(client, "/loyalty/FF0001")["points_balance"] == OPENING_POINTS - 2_000 + paid // 100

    response = client.http.post(f"/bookings/{booking_id}/cancel")

    assert response.status_code == 202, response.body
    assert response.json_body == {"booking_id": booking_id, "correlation_id": booking["correlation_id"],
                                  "status": "CANCELLING"}
    assert response.headers["Location"] == f"../{booking_id}"  # from …/bookings/<id>/cancel
    assert wait_for_status(booking_id)["status"] == "CANCELLED"
    cancelled = get_json(client, f"/bookings/{booking_id}")
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["payment"] == {"status": "REFUNDED", "amount": paid, "currency": CURRENCY}
    assert cancelled["amount_paid"] == 0
    assert names(cancelled["compensations"]) == ["RefundPayment", "ReverseMiles", "RefundPoints", "ReleaseSeats"]
    assert {entry["status"] for entry in cancelled["compensations"]} == {"COMPENSATED"}
    assert (cancelled["ticket_number"], cancelled["boarding_pass"], cancelled["failed_step"]) == (None, None, None)
    assert seat_status(client, "SA101", "7D") == "AVAILABLE"
    account = get_json(client, "/loyalty/FF0001")
    assert account["points_balance"] == OPENING_POINTS
    assert [entry["kind"] for entry in account["ledger"]] == ["REDEEM", "AWARD", "REVERSE", "REFUND"]

    history = get_json(client, f"/bookings/{booking_id}/history")
    assert [(run["kind"], run["status"]) for run in history["executions"]] == [
        ("booking", "SUCCEEDED"), ("cancellation", "SUCCEEDED")]
    assert entered_states(history["executions"][0]["events"]) == HAPPY_STATES
    assert entered_states(history["executions"][1]["events"]) == CANCELLATION_STATES


def test_only_a_confirmed_booking_can_be_cancelled(client: Any) -> None:
    """GIVEN a CANCELLED, a FAILED and a PENDING booking (its AwardMiles is hanging)
    WHEN each is cancelled
    THEN each answers 409, its status is unchanged and no cancellation execution starts."""
    pending_id = book(client, simulate_failure={"AwardMiles": "timeout"})["booking_id"]  # hangs ~2 s
    wait_until(lambda: step_status(client, pending_id, "AwardMiles") == "RUNNING", "AwardMiles to hang")
    refused_pending = client.http.post(f"/bookings/{pending_id}/cancel")
    still_pending = get_json(client, f"/bookings/{pending_id}")["status"]
    cancelled_id = book_and_wait(client)["booking_id"]
    assert client.http.post(f"/bookings/{cancelled_id}/cancel").status_code == 202
    assert wait_for_status(cancelled_id)["status"] == "CANCELLED"
    failed_id = book_and_wait(client, simulate_failure={"AuthorizePayment": "permanent"})["booking_id"]

    assert_refused(refused_pending, 409, "PENDING")
    assert still_pending == "PENDING"
    for booking_id, status in ((cancelled_id, "CANCELLED"), (failed_id, "FAILED")):
        response = client.http.post(f"/bookings/{booking_id}/cancel")
        assert_refused(response, 409, status)
        assert get_json(client, f"/bookings/{booking_id}")["status"] == status

    assert [execution["name"] for execution in executions("cancellation")] == [f"{cancelled_id}-cancel"]
    assert wait_for_status(pending_id)["status"] == "CONFIRMED"  # the refused cancel did not disturb it


# --- Location: relative to the request, so right under any path prefix --------------------------
# Where clients reach the app: no prefix (chalice local), API Gateway's stage path, a custom
# domain's base path. The app sees its own routes only, whichever it is.
ORIGIN = "https://abc123.execute-api.us-east-1.amazonaws.com"
PREFIXES = ("", "/api", "/airline/v1")


def resolved(prefix: str, sent_path: str, location: str) -> str:
    """The URL a client reads from ``location`` (RFC 9110, 10.2.2: a relative reference
    resolves against the target URI) for a request it sent to ``prefix + sent_path``."""
    return urljoin(f"{ORIGIN}{prefix}{sent_path}", location)


def test_a_location_resolves_to_the_booking_under_any_path_prefix(client: Any) -> None:
    """GIVEN the app reached under no prefix, under the stage path /api and under a
    custom domain's base path (the app sees the same request in each)
    WHEN a booking is POSTed to /bookings and another to /bookings/ (API Gateway and
    chalice local route both), and each is cancelled once confirmed, by /cancel and /cancel/
    THEN every Location, resolved against the URL the request was sent to, is that
    booking's URL under the same prefix, and following it answers that booking."""
    for sent in ("/bookings", "/bookings/"):
        response = post_json(client, sent, booking_body(cabin="FIRST"))
        assert response.status_code == 202, response.body
        booking_id = response.json_body["booking_id"]
        for prefix in PREFIXES:
            assert resolved(prefix, sent, response.headers["Location"]) == f"{ORIGIN}{prefix}/bookings/{booking_id}"
        followed = urlsplit(resolved("", sent, response.headers["Location"])).path
        assert get_json(client, followed)["booking_id"] == booking_id
        assert wait_for_status(booking_id)["status"] == "CONFIRMED"

        cancel = f"/bookings/{booking_id}/cancel" + ("/" if sent.endswith("/") else "")
        cancelled = client.http.post(cancel)
        assert cancelled.status_code == 202, cancelled.body
        for prefix in PREFIXES:
            assert resolved(prefix, cancel, cancelled.headers["Location"]) == f"{ORIGIN}{prefix}/bookings/{booking_id}"
        assert get_json(client, urlsplit(resolved("", cancel, cancelled.headers["Location"])).path)[
            "booking_id"] == booking_id
        assert wait_for_status(booking_id)["status"] == "CANCELLED"


def api_gateway_event(method: str, stage_path: str, route: str, *, claims: dict[str, str],
                      path_parameters: dict[str, str] | None = None, body: Any = None) -> dict[str, Any]:
    """A REST API proxy event as API Gateway sends it for ``stage_path`` (the path the
    client sent, the stage in front: ``/api/bookings``) routed to ``route``."""
    host = urlsplit(ORIGIN).netloc
    headers = {"Host": host, "Content-Type": "application/json", "Accept": "application/json"}
    return {
        "resource": route, "path": stage_path.removeprefix("/api"), "httpMethod": method,
        "headers": headers, "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters, "stageVariables": None,
        "requestContext": {
            "resourcePath": route, "httpMethod": method, "path": stage_path, "stage": "api",
            "domainName": host, "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "203.0.113.7"},
            "authorizer": {"claims": claims},
        },
        "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
    }


def test_behind_api_gateway_the_location_stays_under_the_stage_path(anonymous_client: Any) -> None:
    """GIVEN the app's Lambda handler invoked as API Gateway invokes it under the stage
    "api" (requestContext.path /api/bookings, the Cognito authorizer's claims of FF0001)
    WHEN a booking is POSTed, and cancelled once confirmed
    THEN each 202's Location, resolved against the URL the client sent, stays under /api/:
    it is the booking's URL there (a root-relative /bookings/<id> is outside the stage,
    where API Gateway answers 403)."""
    from chalice.local import LambdaContext

    from local.auth import as_api_gateway_claims, verified_claims
    from tests.support import id_token

    claims = as_api_gateway_claims(verified_claims(id_token(anonymous_client)))
    context = LambdaContext("api_handler", 256)
    created = app_module.app(api_gateway_event("POST", "/api/bookings", "/bookings", claims=claims,
                                               body=booking_body(cabin="BUSINESS")), context)
    assert created["statusCode"] == 202, created
    booking_id = json.loads(created["body"])["booking_id"]
    assert resolved("", "/api/bookings", created["headers"]["Location"]) == f"{ORIGIN}/api/bookings/{booking_id}"
    assert wait_for_status(booking_id)["status"] == "CONFIRMED"

    stage_path = f"/api/bookings/{booking_id}/cancel"
    cancelled = app_module.app(api_gateway_event("POST", stage_path, "/bookings/{booking_id}/cancel", claims=claims,
                                                 path_parameters={"booking_id": booking_id}), context)
    assert cancelled["statusCode"] == 202, cancelled
    assert resolved("", stage_path, cancelled["headers"]["Location"]) == f"{ORIGIN}/api/bookings/{booking_id}"
    assert wait_for_status(booking_id)["status"] == "CANCELLED"


# --- Refusals that need their own data -------------------------------------------------------------
def test_taken_seat_and_reused_idempotency_key_are_conflicts(client: Any) -> None:
    """GIVEN seat 12A CONFIRMED for a booking made with Idempotency-Key k-2
    WHEN 12A is booked again, and k-2 is reused with a different body
    THEN both answer 409 with a message, and no table changes."""
    first = post_json(client, "/bookings", booking_body(seat="12A", cabin=None), {"Idempotency-Key": "k-2"})
    assert first.status_code == 202, first.body
    assert wait_for_status(first.json_body["booking_id"])["status"] == "CONFIRMED"
    before = snapshot()

    taken = post_json(client, "/bookings", booking_body(seat="12A", cabin=None))
    reused = post_json(client, "/bookings", booking_body(seat="12B", cabin=None), {"Idempotency-Key": "k-2"})

    assert changed_tables(before, snapshot()) == []
    assert_refused(taken, 409, "12A")
    assert_refused(reused, 409, "Idempotency-Key")
    assert len(executions()) == 1


def test_simulate_failure_is_refused_where_the_stage_forbids_it(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    """GIVEN a stage with FAULT_INJECTION_ENABLED=false
    WHEN a booking asks for simulate_failure
    THEN it is refused 400 and nothing is written, while the same booking without it is accepted.

    chalice.test.Client applies its stage's environment_variables to every request, and the
    `client` fixture's "dev" stage turns fault injection on again; so the requests go through
    the "prod" stage, whose config also sets FAULT_INJECTION_ENABLED=false."""
    monkeypatch.setenv("FAULT_INJECTION_ENABLED", "false")
    with Client(app_module.app, stage_name="prod") as prod:
        before = snapshot()
        signed_in = {"Authorization": f"Bearer {client.http.token}"}
        refused = post_json(prod, "/bookings", booking_body(simulate_failure={"AuthorizePayment": "permanent"}),
                            signed_in)
        assert changed_tables(before, snapshot()) == []
        assert_refused(refused, 400, "simulate_failure")

        accepted = post_json(prod, "/bookings", booking_body(), signed_in)
        assert accepted.status_code == 202, accepted.body
    assert wait_for_status(accepted.json_body["booking_id"])["status"] == "CONFIRMED"


# --- The refusal table: one stack for all, each request proven to change nothing ------------------
@pytest.fixture(scope="class")
def stack() -> Iterator[tuple[Any, TableWatch]]:
    """An embedded stack shared by the refusals: each asserts it wrote nothing."""
    with refusal_stack() as shared:
        yield shared


SEAT_OR_CABIN = 'give a seat (e.g. "12A") or a cabin to auto-assign one'


def _passenger(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in
            {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", **fields}.items()
            if value is not None}


BAD_BODIES = [
    # (body: a raw string, or overrides of the valid booking_body(); the message mentions)
    pytest.param('{"flight_number": "SA101",', "JSON", id="malformed-json"),
    pytest.param("", "JSON body", id="empty-body"),
    pytest.param('["SA101"]', "object", id="body-is-a-list"),
    pytest.param('"SA101"', "object", id="body-is-a-string"),
    pytest.param({"flight_number": None}, "flight_number", id="missing-flight_number"),
    pytest.param({"passenger": None}, "passenger", id="missing-passenger"),
    pytest.param({"passenger": _passenger(first_name=None)}, "first_name", id="missing-first_name"),
    pytest.param({"passenger": _passenger(last_name=None)}, "last_name", id="missing-last_name"),
    pytest.param({"payment": None}, "payment", id="missing-payment"),
    pytest.param({"payment": {}}, "card_token", id="missing-card_token"),
    pytest.param({"flight_number": 101}, "flight_number", id="flight_number-not-a-string"),
    pytest.param({"flight_number": "sa-101"}, "flight_number", id="flight_number-badly-formed"),
    pytest.param({"passenger": "Ada Lovelace"}, "passenger", id="passenger-not-an-object"),
    pytest.param({"passenger": _passenger(first_name=42)}, "first_name", id="first_name-not-a-string"),
    pytest.param({"payment": "tok_visa"}, "payment", id="payment-not-an-object"),
    pytest.param({"payment": {"card_token": 4242}}, "card_token", id="card_token-not-a-string"),
    pytest.param({"seat": 12, "cabin": None}, "seat", id="seat-not-a-string"),
    pytest.param({"cabin": ["ECONOMY"]}, "cabin", id="cabin-not-a-string"),
    pytest.param({"loyalty_id": 1}, "loyalty_id", id="loyalty_id-not-a-string"),
    pytest.param({"simulate_failure": ["AuthorizePayment"]}, "simulate_failure", id="simulate_failure-not-an-object"),
    pytest.param({"coupon": "FREE"}, "coupon", id="unknown-top-level-field"),
    pytest.param({"seat": "99Z", "cabin": None}, "99Z", id="seat-99Z"),
    pytest.param({"seat": "0A", "cabin": None}, "0A", id="seat-0A"),
    pytest.param({"seat": "12G", "cabin": None}, "12G", id="seat-12G"),
    pytest.param({"seat": "12a", "cabin": None}, "12a", id="seat-lowercase"),
    pytest.param({"cabin": None}, "seat", id="neither-seat-nor-cabin"),
    pytest.param({"seat": "1A", "cabin": "ECONOMY"}, "FIRST", id="seat-and-cabin-disagree"),
    pytest.param({"cabin": "PREMIUM"}, "cabin", id="unknown-cabin"),
    pytest.param({"loyalty_id": "FF0001", "points_to_redeem": -100}, "negative", id="negative-points"),
    pytest.param({"loyalty_id": "FF0001", "points_to_redeem": 1.5}, "whole number", id="fractional-points"),
    pytest.param({"loyalty_id": "FF0001", "points_to_redeem": "100"}, "whole number", id="points-as-string"),
    pytest.param({"loyalty_id": "FF0001", "points_to_redeem": True}, "whole number", id="points-as-boolean"),
    pytest.param({"points_to_redeem": 100}, "loyalty_id", id="points-without-loyalty_id"),
    pytest.param({"simulate_failure": {"ChargeCard": "permanent"}}, "ChargeCard", id="simulate-unknown-step"),
    pytest.param({"simulate_failure": {"AuthorizePayment": "sometimes"}}, "mode", id="simulate-unknown-mode"),
    pytest.param({"payment": {"card_token": "tok_visa", "card_number": "4242424242424242"}}, "card",
                 id="payment-with-card_number"),
    pytest.param({"payment": {"card_token": "4242 4242 4242 4242"}}, "card number", id="card_token-is-a-pan"),
    pytest.param({"passenger": _passenger(email="ada.example.com")}, "email", id="bad-email"),
    # Issue 12's reproductions: each answered 500 or a wrong 409 before.
    pytest.param({"loyalty_id": "FF0001", "points_to_redeem": 10**38}, "at most", id="points-10-to-the-38"),
    pytest.param('{"flight_number": "SA101", "cabin": "ECONOMY", "payment": {"card_token": "tok_visa"}, '
                 '"passenger": {"first_name": "\\ud800", "last_name": "Lovelace"}}', "first_name",
                 id="first_name-lone-surrogate"),
    pytest.param("[" * 1000 + "]" * 1000, "deep", id="nested-1000-deep"),
    pytest.param({"seat": "01A", "cabin": None}, "01A", id="seat-01A-is-not-1A"),
]


class TestRefusedRequests:
    """Requests the API must refuse before any write: each compares every table afterwards
    with the tables as they were before it (the demo data, then the previous refusal's)."""

    @pytest.mark.parametrize(("body", "mentions"), BAD_BODIES)
    def test_bad_booking_body_is_refused_400_and_writes_nothing(
        self, stack: tuple[Any, TableWatch], body: Any, mentions: str,
    ) -> None:
        """GIVEN the demo data
        WHEN POST /bookings gets an invalid body
        THEN 400 with a message naming the problem, and no table changed."""
        client, tables = stack
        raw = body if isinstance(body, str) else json.dumps(booking_body(**body))
        response = post_json(client, "/bookings", raw)
        changed = tables.changed()
        assert_refused(response, 400, mentions)
        assert changed == []
        assert response.json_body.get("error") == "InvalidRequest"

    def test_a_body_with_only_a_flight_number_names_every_missing_field(self, stack: tuple[Any, TableWatch]) -> None:
        """GIVEN the demo data
        WHEN POST /bookings gets only {"flight_number": "SA101"}
        THEN one 400 names passenger, payment and seat in `errors`, `field` is the first, the
        message names each, and no table changed."""
        client, tables = stack
        response = post_json(client, "/bookings", {"flight_number": "SA101"})
        changed = tables.changed()
        assert response.status_code == 400, response.body
        assert response.json_body == {
            "error": "InvalidRequest",
            "message": "3 fields are invalid: passenger is required; payment is required; "
                       f"{SEAT_OR_CABIN}",
            "field": "passenger",
            "errors": [
                {"field": "passenger", "message": "passenger is required"},
                {"field": "payment", "message": "payment is required"},
                {"field": "seat", "message": SEAT_OR_CABIN},
            ],
        }
        assert changed == []

    def test_every_invalid_field_and_header_is_reported_at_once(self, stack: tuple[Any, TableWatch]) -> None:
        """GIVEN a body with an unknown field, a bad flight number, a passenger without a first
        name and with a bad email, a PAN-shaped card token, and a malformed Idempotency-Key
        WHEN it is posted
        THEN one 400 lists each of them, nested fields by their path, and no table changed."""
        client, tables = stack
        body = booking_body(coupon="FREE", flight_number="sa-101",
                            passenger={"last_name": "Lovelace", "email": "ada.example.com"},
                            payment={"card_token": "4242 4242 4242 4242"})
        response = post_json(client, "/bookings", body, {"Idempotency-Key": "has spaces"})
        changed = tables.changed()
        assert_refused(response, 400, "6 fields are invalid")
        assert response.json_body["field"] == "coupon"
        assert response.json_body["errors"] == [
            {"field": "coupon", "message": "unknown field: coupon"},
            {"field": "flight_number", "message": "flight_number must be letters and digits, e.g. SA101"},
            {"field": "passenger.first_name", "message": "passenger.first_name is required"},
            {"field": "passenger.email", "message": "passenger.email is not an email address"},
            {"field": "payment.card_token",
             "message": "payment.card_token looks like a card number; send a token from the payment provider"},
            {"field": "Idempotency-Key", "message": "Idempotency-Key must be 1-128 letters, digits or . _ : -"},
        ]
        assert changed == []

    @pytest.mark.parametrize(("overrides", "errors"), [
        pytest.param({"seat": "1Z", "cabin": "ECONOMY"},
                     [{"field": "seat", "message": "seat 1Z does not exist on this aircraft (rows 1-27, seats A-F)"}],
                     id="bad-seat-no-cabin-disagreement"),
        pytest.param({"loyalty_id": "ff 1", "points_to_redeem": 100},
                     [{"field": "loyalty_id", "message": "loyalty_id must be letters and digits, e.g. FF0001"}],
                     id="bad-loyalty_id-no-points-rule"),
    ])
    def test_a_dependent_check_is_not_reported_when_its_premise_is_invalid(
        self, stack: tuple[Any, TableWatch], overrides: dict[str, Any], errors: list[dict[str, str]],
    ) -> None:
        """GIVEN a seat not on the aircraft with a cabin, or points with a malformed loyalty_id
        WHEN it is posted
        THEN only the invalid premise is reported (not "seat is in ..., not ...", not "points
        need a loyalty_id"), and no table changed."""
        client, tables = stack
        response = post_json(client, "/bookings", booking_body(**overrides))
        changed = tables.changed()
        assert_refused(response, 400, errors[0]["message"])
        assert (response.json_body["field"], response.json_body["errors"]) == (errors[0]["field"], errors)
        assert changed == []

    @pytest.mark.parametrize(("headers", "mentions"), [
        pytest.param({"X-Correlation-Id": "not a valid id"}, "X-Correlation-Id", id="bad-correlation-id"),
        pytest.param({"Idempotency-Key": "has spaces"}, "Idempotency-Key", id="bad-idempotency-key"),
        pytest.param({"Idempotency-Key": "k" * 129}, "Idempotency-Key", id="idempotency-key-too-long"),
    ])
    def test_bad_booking_headers_are_refused_400_and_write_nothing(
        self, stack: tuple[Any, TableWatch], headers: dict[str, str], mentions: str,
    ) -> None:
        """GIVEN a valid body
        WHEN its X-Correlation-Id or Idempotency-Key is malformed
        THEN 400 naming the header, and no table changed."""
        client, tables = stack
        response = post_json(client, "/bookings", booking_body(), headers)
        changed = tables.changed()
        assert_refused(response, 400, mentions)
        assert changed == []

    @pytest.mark.parametrize(("overrides", "mentions"), [
        pytest.param({"flight_number": "XX999"}, "XX999", id="unknown-flight"),
    ])
    def test_booking_for_something_unknown_is_refused_404_and_writes_nothing(
        self, stack: tuple[Any, TableWatch], overrides: dict[str, Any], mentions: str,
    ) -> None:
        """GIVEN a well-formed body
        WHEN it names a flight or a loyalty account that does not exist
        THEN 404 naming it, and no table changed."""
        client, tables = stack
        response = post_json(client, "/bookings", booking_body(**overrides))
        changed = tables.changed()
        assert_refused(response, 404, mentions)
        assert changed == []

    @pytest.mark.parametrize(("path", "status", "mentions"), [
        pytest.param("/flights/XX999", 404, "XX999", id="unknown-flight"),
        pytest.param("/assets/a" + "b" * 5000 + ".js", 404, "asset", id="asset-name-5000-characters"),
        pytest.param("/flights/XX999/seats", 404, "XX999", id="seats-of-unknown-flight"),
        pytest.param("/flights/SA101/seats?status=FREE", 400, "status", id="unknown-status-filter"),
        pytest.param("/flights/SA101/seats?status=available", 400, "status", id="lowercase-status-filter"),
        pytest.param("/flights/SA101/seats?cabin=PREMIUM", 400, "cabin", id="unknown-cabin-filter"),
        pytest.param(f"/bookings/{uuid.UUID(int=1)}", 404, str(uuid.UUID(int=1)), id="unknown-booking"),
        pytest.param("/bookings/not-a-booking-id", 400, "booking", id="malformed-booking-id"),
        pytest.param(f"/bookings/{uuid.UUID(int=2)}/history", 404, str(uuid.UUID(int=2)), id="history-unknown"),
        pytest.param("/bookings/not-a-booking-id/history", 400, "booking", id="history-malformed-id"),
        pytest.param("/loyalty/FF9999", 404, "FF9999", id="unknown-loyalty-account"),
    ])
    def test_read_of_something_unknown_or_malformed_is_refused(
        self, stack: tuple[Any, TableWatch], path: str, status: int, mentions: str,
    ) -> None:
        """GIVEN the demo data
        WHEN a GET names an unknown flight, booking or account, or a bad filter or id
        THEN 404 or 400 with a message naming it."""
        client, _ = stack
        assert_refused(client.http.get(path), status, mentions)

    def test_both_bad_seat_filters_are_reported(self, stack: tuple[Any, TableWatch]) -> None:
        """GIVEN the demo data WHEN the seat map is asked with a bad status and a bad cabin
        THEN one 400 lists both."""
        client, _ = stack
        response = client.http.get("/flights/SA101/seats?status=FREE&cabin=PREMIUM")
        assert_refused(response, 400, "2 fields are invalid")
        assert response.json_body["errors"] == [
            {"field": "status", "message": "status must be one of AVAILABLE, HELD, BOOKED"},
            {"field": "cabin", "message": "cabin must be one of FIRST, BUSINESS, ECONOMY"},
        ]

    @pytest.mark.parametrize(("booking_id", "status"), [
        pytest.param(str(uuid.UUID(int=3)), 404, id="unknown-booking"),
        pytest.param("not-a-booking-id", 400, id="malformed-booking-id"),
    ])
    def test_cancel_of_unknown_or_malformed_booking_is_refused_and_writes_nothing(
        self, stack: tuple[Any, TableWatch], booking_id: str, status: int,
    ) -> None:
        """GIVEN no such booking
        WHEN it is cancelled
        THEN 404 (400 for a malformed id), no table changed and no cancellation started."""
        client, tables = stack
        response = client.http.post(f"/bookings/{booking_id}/cancel")
        changed = tables.changed()
        assert_refused(response, status, "booking")
        assert changed == []
        assert executions("cancellation") == []


def test_every_response_carries_a_correlation_id_and_the_booking_keeps_it(client: Any) -> None:
    """GIVEN a request without X-Correlation-Id WHEN it is answered THEN the response
    names the id its log lines carried, and a booking it created is stored under it."""
    refused = client.http.get("/flights/NOPE")
    assert refused.status_code == 404 and refused.headers["X-Correlation-Id"]
    response = post_json(client, "/bookings", booking_body())
    assert response.status_code == 202
    assert response.headers["X-Correlation-Id"] == response.json_body["correlation_id"]
    given = client.http.get("/health", headers={"X-Correlation-Id": "trace-42"})
    assert given.headers["X-Correlation-Id"] == "trace-42"
