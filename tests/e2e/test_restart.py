"""Issue 13, point 5: `chalice local` killed with SIGKILL and started again on the same
state directory, as `make run` keeps it (local/persistence.py).

The first server takes bookings that end (confirmed; confirmed then cancelled), four
that are mid-saga when it dies (one authorised and awarded miles, one holding a seat and
points, one confirmed and not yet captured, one half-cancelled), and a stream of new
bookings that is still arriving. Then
SIGKILL: no handler runs, nothing is flushed. The second server must show everything the
first acknowledged, and must have finished the sagas the kill cut short.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.models import BASE_FARES, CURRENCY
from chalicelib.vocabulary import (
    AUTHORIZE_PAYMENT,
    AWARD_MILES,
    CAPTURE_PAYMENT,
    IN_FLIGHT_STATUSES,
    REFUND_PAYMENT,
    REVERSE_MILES,
    TERMINAL_STATUSES,
    BookingStatus,
    PaymentStatus,
    SeatStatus,
    StepStatus,
)
from local.server import LocalServer, chalice_local
from tests.support import settled

pytestmark = pytest.mark.e2e

DEMO_PASSWORD = "Demo-Passw0rd"  # the README's
OPENING_POINTS = 50_000
IN_FLIGHT_TIMEOUT = 8.0  # every task's TimeoutSeconds is 10 s: the kill must come before


class Customer:
    """A demo customer signed in to one server, over HTTP as the page does it."""

    def __init__(self, base: str, username: str, token: str | None = None) -> None:
        self.base, self.username = base, username
        if token is None:
            answer = requests.post(f"{base}/auth/sign-in", json={"username": username, "password": DEMO_PASSWORD},
                                   timeout=10)
            assert answer.status_code == 200, answer.text
            token = str(answer.json()["id_token"])
        self.token = token
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def on(self, server: LocalServer) -> Customer:
        """The same token, sent to another server."""
        return Customer(server.url, self.username, self.token)

    def get(self, path: str, status: int = 200) -> Any:
        answer = self.session.get(f"{self.base}{path}", timeout=10)
        assert answer.status_code == status, (path, answer.status_code, answer.text)
        return answer.json()

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.post(f"{self.base}{path}", json=body, headers=headers or {}, timeout=10)

    def book(self, body: dict[str, Any], key: str | None = None) -> str:
        answer = self.post("/bookings", body, {"Idempotency-Key": key} if key else None)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["booking_id"])

    def booking(self, booking_id: str) -> dict[str, Any]:
        return dict(self.get(f"/bookings/{booking_id}"))

    def until(self, booking_id: str, ready: Callable[[dict[str, Any]], bool], what: str,
              timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            booking = self.booking(booking_id)
            if ready(booking):
                return booking
            assert time.monotonic() < deadline, f"{booking_id}: still not {what} after {timeout} s: {booking}"
            time.sleep(0.05)

    def terminal(self, booking_id: str) -> dict[str, Any]:
        """Once its saga is over (a CONFIRMED booking: captured too)."""
        return self.until(booking_id, settled, "terminal")

    def running(self, booking_id: str, task: str, statuses: frozenset[str] = IN_FLIGHT_STATUSES) -> dict[str, Any]:
        """Once ``task`` has begun while the booking is in ``statuses`` (in flight; CONFIRMED
        for a step after the pivot): a hang shows RUNNING; a timeout (its work done, then
        hanging) shows its outcome, committed with the work, and the saga waits on it for a
        while either way."""
        begun = {StepStatus.RUNNING, StepStatus.SUCCEEDED, StepStatus.COMPENSATED}

        def started(booking: dict[str, Any]) -> bool:
            entries = booking["steps"] + booking["compensations"]
            return booking["status"] in statuses and any(
                entry["name"] == task and entry["status"] in begun for entry in entries)
        return self.until(booking_id, started, f"running {task}", timeout=IN_FLIGHT_TIMEOUT)

    def account(self) -> dict[str, Any]:
        return dict(self.get(f"/loyalty/{self.username}"))


def _body(**fields: Any) -> dict[str, Any]:
    return {"flight_number": "SA101", "passenger": {"first_name": "Kay", "last_name": "Nine"},
            "payment": {"card_token": "tok_visa"}, **fields}


def _public(base: str, path: str) -> Any:
    answer = requests.get(f"{base}{path}", timeout=10)
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def _ledger(account: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in account["ledger"]]


def _flood(base: str, acknowledged: list[str], stop: threading.Event) -> None:
    """Book on SA102 as fast as the server answers, until it stops answering; keep the ids
    it acknowledged with a 202."""
    customers = [Customer(base, username) for username in ("FF0006", "FF0007", "FF0008")]
    cabins = ("ECONOMY", "BUSINESS", "ECONOMY", "FIRST")
    number = 0
    while not stop.is_set():
        customer = customers[number % len(customers)]
        body = _body(flight_number="SA102", cabin=cabins[number % len(cabins)], loyalty_id=customer.username,
                     points_to_redeem=100 * (number % 3))
        try:
            answer = customer.post("/bookings", body)
        except requests.RequestException:
            return  # killed
        if answer.status_code == 202:
            acknowledged.append(str(answer.json()["booking_id"]))
        number += 1


def test_state_survives_kill_9_and_the_sagas_it_cut_short_are_finished(tmp_path: Path) -> None:
    """GIVEN `chalice local` on a state directory, with a confirmed booking (Idempotency-Key
    trip-1, points redeemed), one confirmed and cancelled, one authorised whose AwardMiles
    hangs, one holding a seat and points whose AuthorizePayment hangs, one confirmed whose
    CapturePayment hangs, one whose cancellation refunded the money and hangs in
    ReverseMiles, and new bookings still arriving
    WHEN the server is killed with SIGKILL and started again on the same directory
    THEN every booking it acknowledged is there; the ended ones, their seats, ledgers and
    payments exactly as before; the four cut short are terminal, the compensated ones with
    nothing held or charged (FAILED, FAILED, CANCELLED), the confirmed one captured
    (forward: never compensated after the pivot); the invariant checker and the dead letters are
    empty; trip-1 replayed returns the original booking; FF0001 still owns it, with a new
    sign-in or the token from before; and its history answers without an execution."""
    state = tmp_path / "state"
    with chalice_local(tmp_path / "before.log", state_dir=state) as first:
        ada, barbara, carl, dana, eve = (Customer(first.url, f"FF000{number}") for number in range(1, 6))
        ian = Customer(first.url, "FF0009")
        trip = _body(seat="2A", loyalty_id="FF0001", points_to_redeem=1_000)
        confirmed = ada.book(trip, key="trip-1")
        assert ada.terminal(confirmed)["status"] == BookingStatus.CONFIRMED
        cancelled = barbara.book(_body(cabin="ECONOMY", loyalty_id="FF0002", points_to_redeem=200))
        assert barbara.terminal(cancelled)["status"] == BookingStatus.CONFIRMED
        assert barbara.post(f"/bookings/{cancelled}/cancel", {}).status_code == 202
        assert barbara.terminal(cancelled)["status"] == BookingStatus.CANCELLED

        charged = carl.book(_body(cabin="ECONOMY", loyalty_id="FF0003", points_to_redeem=500,
                                  simulate_failure={AWARD_MILES.name: "timeout"}))
        holding = dana.book(_body(cabin="BUSINESS", loyalty_id="FF0004", points_to_redeem=700,
                                  simulate_failure={AUTHORIZE_PAYMENT.name: "hang"}))
        uncaptured = ian.book(_body(cabin="ECONOMY", loyalty_id="FF0009",
                                    simulate_failure={CAPTURE_PAYMENT.name: "hang"}))
        cancelling = eve.book(_body(cabin="FIRST", loyalty_id="FF0005", points_to_redeem=300))
        assert eve.terminal(cancelling)["status"] == BookingStatus.CONFIRMED
        assert eve.post(f"/bookings/{cancelling}/cancel",
                        {"simulate_failure": {REVERSE_MILES.name: "hang"}}).status_code == 202
        acknowledged: list[str] = []
        stop = threading.Event()
        flood = threading.Thread(target=_flood, args=(first.url, acknowledged, stop), daemon=True)
        flood.start()

        # Cut short: money authorised and miles awarded, AwardMiles still running.
        assert carl.running(charged, AWARD_MILES.name)["payment"]["status"] == PaymentStatus.AUTHORIZED
        assert _ledger(carl.account()) == ["REDEEM", "AWARD"]
        # A seat and points held, AuthorizePayment still running.
        seat_held = dana.running(holding, AUTHORIZE_PAYMENT.name)["seat"]
        assert _ledger(dana.account()) == ["REDEEM"]
        # Past the pivot: ticketed, the money held, CapturePayment still running.
        pivoted = ian.running(uncaptured, CAPTURE_PAYMENT.name, frozenset({BookingStatus.CONFIRMED}))
        assert pivoted["payment"]["status"] == PaymentStatus.AUTHORIZED and pivoted["ticket_number"], pivoted
        # Half cancelled: refunded, ReverseMiles still running.
        half = eve.running(cancelling, REVERSE_MILES.name)
        assert half["status"] == BookingStatus.CANCELLING and half["payment"]["status"] == PaymentStatus.REFUNDED
        before = {booking_id: customer.booking(booking_id)
                  for customer, booking_id in ((ada, confirmed), (barbara, cancelled))}
        accounts = {customer.username: customer.account() for customer in (ada, barbara)}
        time.sleep(0.5)  # into the stream of new bookings
        for customer, booking_id in ((carl, charged), (dana, holding), (eve, cancelling)):
            assert customer.booking(booking_id)["status"] in (BookingStatus.PENDING, BookingStatus.CANCELLING)
        assert ian.booking(uncaptured)["payment"]["status"] == PaymentStatus.AUTHORIZED

        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        stop.set()
        flood.join(timeout=15)
    assert first.process.returncode == -signal.SIGKILL
    assert acknowledged, "no booking of the stream was acknowledged before the kill"

    with chalice_local(tmp_path / "after.log", state_dir=state) as second:
        ada_before = ada.on(second)  # the token issued by the first server
        ada, barbara, carl, dana, eve = (Customer(second.url, f"FF000{number}") for number in range(1, 6))
        ian = Customer(second.url, "FF0009")

        # What ended is exactly as it was: bookings, payments, seats, ledgers.
        for customer, booking_id in ((ada, confirmed), (barbara, cancelled)):
            assert customer.booking(booking_id) == before[booking_id]
        assert before[confirmed]["payment"] == {"status": PaymentStatus.CAPTURED,
                                                "amount": BASE_FARES["FIRST"] - 1_000, "currency": CURRENCY}
        assert ada.account() == accounts["FF0001"] and barbara.account() == accounts["FF0002"]
        assert ada_before.booking(confirmed) == before[confirmed]

        # What was cut short is terminal, with nothing held or charged.
        lost = carl.booking(charged)
        assert (lost["status"], lost["failed_step"]) == (BookingStatus.FAILED, AWARD_MILES.name), lost
        assert lost["payment"] == {"status": PaymentStatus.VOIDED, "amount": BASE_FARES["ECONOMY"] - 500,
                                   "currency": CURRENCY}
        assert (carl.account()["points_balance"], _ledger(carl.account())) == (
            OPENING_POINTS, ["REDEEM", "AWARD", "REVERSE", "REFUND"])
        lost = dana.booking(holding)
        assert (lost["status"], lost["failed_step"]) == (BookingStatus.FAILED, AUTHORIZE_PAYMENT.name), lost
        assert lost["payment"] == {"status": PaymentStatus.NONE, "amount": 0, "currency": CURRENCY}
        assert (dana.account()["points_balance"], _ledger(dana.account())) == (OPENING_POINTS, ["REDEEM", "REFUND"])
        finished = eve.booking(cancelling)
        assert finished["status"] == BookingStatus.CANCELLED, finished
        assert [entry["name"] for entry in finished["compensations"]][:2] == [REFUND_PAYMENT.name, REVERSE_MILES.name]
        assert {entry["status"] for entry in finished["compensations"]} == {StepStatus.COMPENSATED}
        assert finished["payment"]["status"] == PaymentStatus.REFUNDED
        assert eve.account()["points_balance"] == OPENING_POINTS
        captured = ian.booking(uncaptured)
        assert (captured["status"], captured["seat"]) == (BookingStatus.CONFIRMED, pivoted["seat"]), captured
        assert captured["payment"] == {"status": PaymentStatus.CAPTURED, "amount": BASE_FARES["ECONOMY"],
                                       "currency": CURRENCY}
        capture = next(step for step in captured["steps"] if step["name"] == CAPTURE_PAYMENT.name)
        assert capture["status"] == StepStatus.SUCCEEDED, capture

        # Every booking the stream had acknowledged is there, and has ended.
        owners = {customer.username: customer for customer in (Customer(second.url, f"FF000{n}") for n in (6, 7, 8))}
        for booking_id in acknowledged:
            views = [customer.session.get(f"{second.url}/bookings/{booking_id}", timeout=10)
                     for customer in owners.values()]
            found = [view.json() for view in views if view.status_code == 200]
            assert len(found) == 1, f"acknowledged booking {booking_id} is gone"
            assert found[0]["status"] in TERMINAL_STATUSES, found[0]

        # Seats: the sold one still sold, nothing held anywhere.
        for flight in ("SA101", "SA102"):
            seats = _public(second.url, f"/flights/{flight}/seats")["seats"]
            assert [seat["seat"] for seat in seats if seat["status"] == SeatStatus.HELD] == [], flight
        sa101 = {seat["seat"]: seat["status"] for seat in _public(second.url, "/flights/SA101/seats")["seats"]}
        assert sorted(seat for seat, status in sa101.items() if status == SeatStatus.BOOKED) == sorted(
            ["2A", pivoted["seat"]])
        assert sa101[seat_held] == SeatStatus.AVAILABLE
        assert _public(second.url, "/flights/SA101")["availability"] == {"FIRST": 11, "BUSINESS": 18, "ECONOMY": 131}
        assert _public(second.url, "/admin/invariants") == {"violations": [], "count": 0}
        assert _public(second.url, "/admin/dead-letters") == {"dead_letters": []}

        # The Idempotency-Key, the owner, the history.
        replay = ada.post("/bookings", trip, {"Idempotency-Key": "trip-1"})
        assert replay.status_code == 202 and replay.json()["booking_id"] == confirmed, replay.text
        assert replay.headers.get("Idempotent-Replayed") == "true"
        barbara.get(f"/bookings/{confirmed}", status=404)
        assert carl.get(f"/bookings/{charged}/history")["executions"] == []
        assert ada.get(f"/bookings/{confirmed}/history")["executions"] == []
    assert "in-flight bookings finished" in second.output(), second.output()[-3000:]
