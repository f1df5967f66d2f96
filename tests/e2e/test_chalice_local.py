"""`chalice local --stage local` as a user runs it (`make run`), driven over real HTTP.

The server gets an environment without a single AWS_* variable (no credentials, no
region, no profile) and without the variables the test session set for itself: the
stage config and the embedded backend must provide everything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from chalicelib import vocabulary
from chalicelib.models import BASE_FARES, CURRENCY
from tests.support import local_server, settled

pytestmark = pytest.mark.e2e

OPENING_POINTS = 50_000
DEMO_PASSWORD = "Demo-Passw0rd"  # the README's


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`chalice local --stage local` on a free port, with no AWS_* variable; always stopped."""
    yield from local_server(tmp_path_factory)


def _get(base: str, path: str, customer: requests.Session | None = None) -> Any:
    response = (customer or requests).get(f"{base}{path}", timeout=10)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def _signed_in(base: str, username: str) -> requests.Session:
    """A session of the demo customer ``username``, signed in as the README shows."""
    response = requests.post(f"{base}/auth/sign-in", json={"username": username, "password": DEMO_PASSWORD},
                             timeout=10)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert set(tokens) >= {"id_token", "access_token", "expires_in"}
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {tokens['id_token']}"
    return session


def _book(base: str, customer: requests.Session, **overrides: Any) -> str:
    body = {
        "flight_number": "SA101",
        "passenger": {"first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com"},
        "payment": {"card_token": "tok_visa"},
        **overrides,
    }
    response = customer.post(f"{base}/bookings", json=body, timeout=10)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "PENDING"
    # Relative to the request's URL (RFC 9110), so it stays under a stage path or proxy prefix.
    assert urljoin(response.url, response.headers["Location"]) == f"{base}/bookings/{accepted['booking_id']}"
    return str(accepted["booking_id"])


def _wait(base: str, customer: requests.Session, booking_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        booking = _get(base, f"/bookings/{booking_id}", customer)
        if settled(booking):
            return dict(booking)
        assert time.monotonic() < deadline, f"booking still {booking['status']} after {timeout}s: {booking}"
        time.sleep(0.1)


def _seat_status(base: str, seat: str) -> str:
    seats = _get(base, "/flights/SA101/seats")["seats"]
    return str(next(item["status"] for item in seats if item["seat"] == seat))


def _names(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["name"] for entry in entries]


def test_bookings_confirm_fail_and_cancel_over_http(server: str) -> None:
    """GIVEN `chalice local --stage local` started with no AWS_* variable at all
    WHEN one booking goes through, one fails at ConfirmBooking after redeeming points,
    and one is confirmed and then cancelled
    THEN they end CONFIRMED, FAILED (compensated in reverse order) and CANCELLED, with
    payments, seats and loyalty balances to match."""
    assert _get(server, "/health") == {"status": "ok"}
    config = _get(server, "/config")
    assert (config["stage"], config["fault_injection"], config["saga"]) == ("local", True, vocabulary.describe())
    assert config["demo_sign_in"]["password"] == DEMO_PASSWORD
    assert _get(server, "/flights/SA101")["availability"] == {"FIRST": 12, "BUSINESS": 18, "ECONOMY": 132}
    ada, ff5, ff6 = (_signed_in(server, username) for username in ("FF0001", "FF0005", "FF0006"))

    confirmed_id = _book(server, ada, seat="2C")
    failed_id = _book(server, ff5, cabin="BUSINESS", loyalty_id="FF0005", points_to_redeem=900,
                      simulate_failure={"ConfirmBooking": "permanent"})
    cancelled_id = _book(server, ff6, cabin="ECONOMY", loyalty_id="FF0006", points_to_redeem=300)

    confirmed = _wait(server, ada, confirmed_id)
    assert confirmed["status"] == "CONFIRMED", confirmed
    assert (confirmed["seat"], confirmed["cabin"]) == ("2C", "FIRST")
    assert confirmed["payment"] == {"status": "CAPTURED", "amount": BASE_FARES["FIRST"], "currency": CURRENCY}
    assert confirmed["ticket_number"] and confirmed["boarding_pass"]["seat"] == "2C"
    assert confirmed["failed_step"] is None and confirmed["compensations"] == []
    assert _seat_status(server, "2C") == "BOOKED"

    failed = _wait(server, ff5, failed_id)
    assert failed["status"] == "FAILED", failed
    assert failed["failed_step"] == "ConfirmBooking"
    assert failed["error"]["error"] == "SimulatedFailure"
    assert _names(failed["compensations"]) == ["ReverseMiles", "VoidPayment", "RefundPoints", "ReleaseSeats"]
    assert {entry["status"] for entry in failed["compensations"]} == {"COMPENSATED"}
    assert failed["payment"] == {"status": "VOIDED", "amount": BASE_FARES["BUSINESS"] - 900, "currency": CURRENCY}
    assert failed["ticket_number"] is None
    assert _seat_status(server, failed["seat"]) == "AVAILABLE"
    assert _get(server, "/loyalty/FF0005", ff5)["points_balance"] == OPENING_POINTS

    assert _wait(server, ff6, cancelled_id)["status"] == "CONFIRMED"
    response = ff6.post(f"{server}/bookings/{cancelled_id}/cancel", timeout=10)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "CANCELLING"
    cancelled = _wait(server, ff6, cancelled_id)
    assert cancelled["status"] == "CANCELLED", cancelled
    assert _names(cancelled["compensations"]) == ["RefundPayment", "ReverseMiles", "RefundPoints", "ReleaseSeats"]
    assert cancelled["payment"] == {"status": "REFUNDED", "amount": BASE_FARES["ECONOMY"] - 300, "currency": CURRENCY}
    assert _seat_status(server, cancelled["seat"]) == "AVAILABLE"
    account = _get(server, "/loyalty/FF0006", ff6)
    assert account["points_balance"] == OPENING_POINTS
    assert [entry["kind"] for entry in account["ledger"]] == ["REDEEM", "AWARD", "REVERSE", "REFUND"]

    history = _get(server, f"/bookings/{cancelled_id}/history", ff6)
    assert [(run["kind"], run["status"]) for run in history["executions"]] == [
        ("booking", "SUCCEEDED"), ("cancellation", "SUCCEEDED")]
    assert _get(server, "/flights/SA101")["availability"] == {"FIRST": 11, "BUSINESS": 18, "ECONOMY": 132}


def test_the_server_checks_sign_in_as_api_gateway_would(server: str) -> None:
    """GIVEN the server a user runs, two demo customers signed in
    WHEN routes are called without a token, with a forged one, and across customers
    THEN the public routes answer anyone; every customer route answers 401 JSON without a
    valid token; another customer's booking and account are 404 and cancelling it changes
    nothing; wrong credentials are a 401 that says nothing of which part was wrong."""
    for public in ("/health", "/config", "/", "/assets/app.js", "/flights", "/flights/SA102",
                   "/flights/SA102/seats"):
        assert requests.get(f"{server}{public}", timeout=10).status_code == 200, public
    anonymous = requests.post(f"{server}/bookings", json={"flight_number": "SA102"}, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "Unauthorized"
    forged = requests.get(f"{server}/me", headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
                          timeout=10)
    assert forged.status_code == 401, forged.text
    wrong = requests.post(f"{server}/auth/sign-in", json={"username": "FF0002", "password": "Demo-Passw0rd!"},
                          timeout=10)
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "SignInFailed", "message": "wrong username or password"}

    owner, stranger = _signed_in(server, "FF0002"), _signed_in(server, "FF0003")
    assert _get(server, "/me", owner) == {"username": "FF0002", "loyalty_id": "FF0002"}
    booking_id = _book(server, owner, flight_number="SA102", cabin="ECONOMY", loyalty_id="FF0002")
    assert _wait(server, owner, booking_id)["status"] == "CONFIRMED"
    for path in (f"/bookings/{booking_id}", f"/bookings/{booking_id}/history", "/loyalty/FF0002"):
        assert stranger.get(f"{server}{path}", timeout=10).status_code == 404, path
    assert stranger.post(f"{server}/bookings/{booking_id}/cancel", timeout=10).status_code == 404
    assert _get(server, f"/bookings/{booking_id}", owner)["status"] == "CONFIRMED"
