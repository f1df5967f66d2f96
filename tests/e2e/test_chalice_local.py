"""`chalice local --stage local` as a user runs it (`make run`), driven over real HTTP.

The server gets an environment without a single AWS_* variable (no credentials, no
region, no profile) and without the variables the test session set for itself: the
stage config and the embedded backend must provide everything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib import vocabulary
from chalicelib.models import BASE_FARES
from chalicelib.vocabulary import TERMINAL_STATUSES
from tests.support import local_server

pytestmark = pytest.mark.e2e

OPENING_POINTS = 50_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`chalice local --stage local` on a free port, with no AWS_* variable; always stopped."""
    yield from local_server(tmp_path_factory)


def _get(base: str, path: str) -> Any:
    response = requests.get(f"{base}{path}", timeout=10)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def _book(base: str, **overrides: Any) -> str:
    body = {
        "flight_number": "SA101",
        "passenger": {"first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com"},
        "payment": {"card_token": "tok_visa"},
        **overrides,
    }
    response = requests.post(f"{base}/bookings", json=body, timeout=10)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "PENDING"
    assert response.headers["Location"] == f"/bookings/{accepted['booking_id']}"
    return str(accepted["booking_id"])


def _wait(base: str, booking_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        booking = _get(base, f"/bookings/{booking_id}")
        if booking["status"] in TERMINAL_STATUSES:
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
    assert _get(server, "/config") == {"stage": "local", "fault_injection": True, "saga": vocabulary.describe()}
    assert _get(server, "/flights/SA101")["availability"] == {"FIRST": 12, "BUSINESS": 18, "ECONOMY": 132}

    confirmed_id = _book(server, seat="2C")
    failed_id = _book(server, cabin="BUSINESS", loyalty_id="FF0005", points_to_redeem=900,
                      simulate_failure={"ConfirmBooking": "permanent"})
    cancelled_id = _book(server, cabin="ECONOMY", loyalty_id="FF0006", points_to_redeem=300)

    confirmed = _wait(server, confirmed_id)
    assert confirmed["status"] == "CONFIRMED", confirmed
    assert (confirmed["seat"], confirmed["cabin"]) == ("2C", "FIRST")
    assert confirmed["payment"] == {"status": "CAPTURED", "amount": BASE_FARES["FIRST"]}
    assert confirmed["ticket_number"] and confirmed["boarding_pass"]["seat"] == "2C"
    assert confirmed["failed_step"] is None and confirmed["compensations"] == []
    assert _seat_status(server, "2C") == "BOOKED"

    failed = _wait(server, failed_id)
    assert failed["status"] == "FAILED", failed
    assert failed["failed_step"] == "ConfirmBooking"
    assert failed["error"]["error"] == "SimulatedFailure"
    assert _names(failed["compensations"]) == ["ReverseMiles", "RefundPayment", "RefundPoints", "ReleaseSeat"]
    assert {entry["status"] for entry in failed["compensations"]} == {"COMPENSATED"}
    assert failed["payment"] == {"status": "REFUNDED", "amount": BASE_FARES["BUSINESS"] - 900}
    assert failed["ticket_number"] is None
    assert _seat_status(server, failed["seat"]) == "AVAILABLE"
    assert _get(server, "/loyalty/FF0005")["points_balance"] == OPENING_POINTS

    assert _wait(server, cancelled_id)["status"] == "CONFIRMED"
    response = requests.post(f"{server}/bookings/{cancelled_id}/cancel", timeout=10)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "CANCELLING"
    cancelled = _wait(server, cancelled_id)
    assert cancelled["status"] == "CANCELLED", cancelled
    assert _names(cancelled["compensations"]) == ["RefundPayment", "ReverseMiles", "RefundPoints", "ReleaseSeat"]
    assert cancelled["payment"] == {"status": "REFUNDED", "amount": BASE_FARES["ECONOMY"] - 300}
    assert _seat_status(server, cancelled["seat"]) == "AVAILABLE"
    account = _get(server, "/loyalty/FF0006")
    assert account["points_balance"] == OPENING_POINTS
    assert [entry["kind"] for entry in account["ledger"]] == ["REDEEM", "AWARD", "REVERSE", "REFUND"]

    history = _get(server, f"/bookings/{cancelled_id}/history")
    assert [(run["kind"], run["status"]) for run in history["executions"]] == [
        ("booking", "SUCCEEDED"), ("cancellation", "SUCCEEDED")]
    assert _get(server, "/flights/SA101")["availability"] == {"FIRST": 11, "BUSINESS": 18, "ECONOMY": 132}
