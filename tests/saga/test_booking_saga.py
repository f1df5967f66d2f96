"""The real statemachine.json executed by moto's Step Functions engine, with the
saga's Lambda handlers dispatched in process: the happy path, a permanent failure at
every step, business failures, transient failures absorbed by Retry, and timeouts."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib import api, booking_view, db, dead_letters, invariants, recovery, saga
from chalicelib.models import BASE_FARES, CURRENCY, miles_for
from chalicelib.vocabulary import FORWARD_STEP_NAMES, STEP_NAMES
from tests.saga.conftest import START_POINTS, compensation_names, execution, run, start, states_entered
from tests.support import balance, owner_of_booking, payment, seat, wait_for_status

FARE = BASE_FARES["ECONOMY"]
POINTS = 2_500  # 25.00 off


def assert_rolled_back(view: dict[str, Any]) -> None:
    """Seats, points, payments and miles are back where they started."""
    booking_id = view["booking_id"]
    if view["seat"]:
        sold = seat(view["flight_number"], view["seat"])
        assert sold["status"] == "AVAILABLE"
        assert "booking_id" not in sold
    assert balance("FF0001") == START_POINTS
    held = payment(booking_id)
    assert held is None or held["status"] in ("DECLINED", "VOIDED")  # nothing captured, no hold left
    assert view["payment"]["status"] in ("NONE", "VOIDED", "DECLINED")
    assert not dead_letters.open_letters(booking_id)
    assert view["ticket_number"] is None and view["boarding_pass"] is None


def test_happy_path_confirms_and_every_table_agrees(aws: Any) -> None:
    """GIVEN a booking with a loyalty account redeeming points
    WHEN the saga runs
    THEN it is CONFIRMED: seat BOOKED for it, fare minus discount authorised then captured
    after the tickets were issued, points debited and miles credited to the same balance,
    no compensation ran, in 9 state transitions (the Map and its one leg, the Choice after it)."""
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS, seat="12C", cabin=None)

    assert view["status"] == "CONFIRMED"
    assert [step["status"] for step in view["steps"]] == ["SUCCEEDED"] * 6
    assert view["compensations"] == []
    assert view["failed_step"] is None and view["error"] is None
    paid = FARE - POINTS
    assert view["amount_paid"] == paid
    assert view["payment"] == {"status": "CAPTURED", "amount": paid, "currency": CURRENCY}
    assert view["ticket_number"].startswith("176") and len(view["ticket_number"]) == 13
    assert view["boarding_pass"]["seat"] == "12C" and view["boarding_pass"]["boarding_group"] == 4
    sold = seat("SA101", "12C")
    assert sold["status"] == "BOOKED" and sold["booking_id"] == view["booking_id"]
    assert balance("FF0001") == START_POINTS - POINTS + miles_for(paid)
    assert execution(view["booking_id"])["status"] == "SUCCEEDED"
    assert states_entered(view["booking_id"]) == [
        "ReserveSeats", "ReserveSeatsLeg", "ReserveSeatsHeld", "RedeemPoints", "AuthorizePayment", "AwardMiles",
        "ConfirmBooking", "CapturePayment", "BookingConfirmed",
    ]
    captured = payment(view["booking_id"]) or {}
    assert (captured["status"], captured["amount"]) == ("CAPTURED", paid) and captured["capture_id"]
    assert captured["authorized_at"] < captured["captured_at"] and "card_token" not in captured
    assert invariants.check() == []


def test_without_points_the_choice_skips_redeem_points(aws: Any) -> None:
    """GIVEN no points to redeem WHEN the saga runs THEN RedeemPoints never runs."""
    view = run()
    assert view["status"] == "CONFIRMED"
    assert view["steps"][1] == {**view["steps"][1], "name": "RedeemPoints", "status": "SKIPPED"}
    assert "RedeemPoints" not in states_entered(view["booking_id"])
    assert view["payment"]["amount"] == FARE


# A permanent failure at each step: the steps before it are compensated, in reverse.
PERMANENT = {
    "ReserveSeats": [],
    "RedeemPoints": ["ReleaseSeats"],
    "AuthorizePayment": ["RefundPoints", "ReleaseSeats"],
    "AwardMiles": ["VoidPayment", "RefundPoints", "ReleaseSeats"],
    "ConfirmBooking": ["ReverseMiles", "VoidPayment", "RefundPoints", "ReleaseSeats"],
}


@pytest.mark.parametrize("failing_step", STEP_NAMES)
def test_permanent_failure_compensates_the_completed_steps_in_reverse(aws: Any, failing_step: str) -> None:
    """GIVEN a permanent failure injected at one step
    WHEN the saga runs
    THEN exactly the compensations of the steps before it ran, in reverse order, the
    booking is FAILED at that step and every table is back where it started."""
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS, simulate_failure={failing_step: "permanent"})

    assert view["status"] == "FAILED"
    assert view["failed_step"] == failing_step
    assert view["error"]["error"] == "SimulatedFailure"
    assert compensation_names(view) == PERMANENT[failing_step]
    assert all(entry["status"] == "COMPENSATED" for entry in view["compensations"])
    failed = next(step for step in view["steps"] if step["name"] == failing_step)
    assert failed["status"] == "FAILED" and failed["error"]["error"] == "SimulatedFailure"
    assert_rolled_back(view)
    described = execution(view["booking_id"])
    assert described["status"] == "FAILED" and described["error"] == "SimulatedFailure"


def test_declined_card_releases_seat_and_refunds_points(aws: Any) -> None:
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS, payment={"card_token": "tok_decline"})
    assert view["status"] == "FAILED" and view["failed_step"] == "AuthorizePayment"
    assert view["error"]["error"] == "PaymentDeclined"
    assert compensation_names(view) == ["RefundPoints", "ReleaseSeats"]
    assert view["payment"]["status"] == "DECLINED"
    assert_rolled_back(view)


def test_insufficient_points_fails_redeem_points(aws: Any) -> None:
    view = run(loyalty_id="FF0001", points_to_redeem=60_000, cabin="FIRST")
    assert view["status"] == "FAILED" and view["failed_step"] == "RedeemPoints"
    assert view["error"]["error"] == "InsufficientPoints"
    assert compensation_names(view) == ["ReleaseSeats"]
    assert_rolled_back(view)


def test_seat_taken_after_the_api_checked_fails_at_reserve_seats(aws: Any, monkeypatch: Any) -> None:
    """GIVEN a seat that another booking holds by the time ReserveSeats runs (the API's
    up-front 409 check passed earlier)
    WHEN the saga runs
    THEN ReserveSeats fails with SeatUnavailable, nothing is compensated, and the
    other booking's hold is untouched."""
    db.update("seats", db.seat_key("SA101", "4B"), "SET #s = :held, booking_id = :other, hold_expires_at = :far",
              names={"#s": "status"}, values={":held": "HELD", ":other": "someone-else", ":far": 2**40})
    monkeypatch.setattr(api, "check_bookable", lambda request, found: None)

    view = run(seat="4B", cabin=None)

    assert view["status"] == "FAILED" and view["failed_step"] == "ReserveSeats"
    assert view["error"]["error"] == "SeatUnavailable"
    assert compensation_names(view) == []
    assert seat("SA101", "4B")["booking_id"] == "someone-else"


@pytest.mark.parametrize("failing_step", FORWARD_STEP_NAMES)
def test_transient_failure_is_absorbed_by_retry(aws: Any, failing_step: str) -> None:
    """GIVEN a step that fails its first attempt only WHEN the saga runs THEN Retry
    runs it again, the booking is CONFIRMED and nothing was compensated."""
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS, simulate_failure={failing_step: "transient"})
    assert view["status"] == "CONFIRMED"
    assert view["compensations"] == []
    retried = next(step for step in view["steps"] if step["name"] == failing_step)
    assert retried["status"] == "SUCCEEDED" and retried["attempts"] == 2
    assert balance("FF0001") == START_POINTS - POINTS + miles_for(FARE - POINTS)


# A timeout may leave the step's effect behind: its own compensation runs too.
TIMEOUT = {step: [compensation, *PERMANENT[step]] for step, compensation in (
    ("ReserveSeats", "ReleaseSeats"), ("RedeemPoints", "RefundPoints"), ("AuthorizePayment", "VoidPayment"),
    ("AwardMiles", "ReverseMiles"), ("ConfirmBooking", "CancelBooking"),
)}


# The pivot is not here: a timeout there is resolved by asking, never undone (below).
@pytest.mark.parametrize("failing_step", [name for name in STEP_NAMES if name != "ConfirmBooking"])
def test_timeout_compensates_the_timed_out_step_too(short_timeout: Any, failing_step: str) -> None:
    """GIVEN a step that does its work and then hangs past its TimeoutSeconds
    WHEN the saga runs
    THEN States.Timeout is caught, the step's own compensation undoes its effect, then
    the earlier steps are compensated, and every table is back where it started."""
    short_timeout(failing_step)
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS, simulate_failure={failing_step: "timeout"})

    assert view["status"] == "FAILED"
    assert view["failed_step"] == failing_step
    assert view["error"]["error"] == "States.Timeout"
    assert compensation_names(view) == TIMEOUT[failing_step]
    assert_rolled_back(view)
    if failing_step == "AuthorizePayment":  # authorised, then released: nothing was captured
        assert view["payment"] == {"status": "VOIDED", "amount": FARE - POINTS, "currency": CURRENCY}
    assert execution(view["booking_id"])["error"] == "Timeout"
    timed_out = next(step for step in view["steps"] if step["name"] == failing_step)
    # The pivot is retried on a timeout before it is compensated; the others are not.
    assert timed_out["attempts"] == (3 if failing_step == "ConfirmBooking" else 1)


def test_a_hang_before_the_charge_is_timed_out_and_nothing_was_charged(short_timeout: Any) -> None:
    """GIVEN AuthorizePayment hangs before its call reaches the gateway, past its TimeoutSeconds
    WHEN the saga runs
    THEN it is recorded TIMED_OUT (not left RUNNING), VoidPayment finds no authorisation and
    leaves its tombstone, the earlier steps are undone, and every table is back."""
    short_timeout("AuthorizePayment")
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS, simulate_failure={"AuthorizePayment": "hang"})

    assert view["status"] == "FAILED" and view["failed_step"] == "AuthorizePayment"
    assert view["error"]["error"] == "States.Timeout"
    charge = next(step for step in view["steps"] if step["name"] == "AuthorizePayment")
    assert charge["status"] == "TIMED_OUT" and charge["attempts"] == 1
    assert compensation_names(view) == TIMEOUT["AuthorizePayment"]
    assert view["payment"] == {"status": "NONE", "amount": 0, "currency": CURRENCY}
    assert payment(view["booking_id"])["status"] == "VOIDED"  # type: ignore[index]
    assert_rolled_back(view)


def test_a_confirmation_that_answers_late_once_is_retried_not_undone(short_timeout: Any, monkeypatch: Any) -> None:
    """GIVEN ConfirmBooking commits but its first answer comes after TimeoutSeconds
    WHEN Step Functions retries it
    THEN the retry finds the commit and returns it: CONFIRMED, nothing compensated."""
    from chalicelib import steps

    short_timeout("ConfirmBooking")
    original = steps.injected_mode
    confirm_attempts: list[str] = []

    def first_answer_late(step: Any, task: Any) -> str | None:
        if task.name == "ConfirmBooking":
            confirm_attempts.append(task.name)
            if len(confirm_attempts) == 1:
                return "timeout"
        return original(step, task)

    monkeypatch.setattr(steps, "injected_mode", first_answer_late)

    view = run()

    assert view["status"] == "CONFIRMED" and view["compensations"] == []
    confirm = next(step for step in view["steps"] if step["name"] == "ConfirmBooking")
    assert confirm["attempts"] == 2
    assert seat("SA101", view["seat"])["status"] == "BOOKED"


def _statuses_while_running(booking_id: str, until: set[str]) -> list[str]:
    """Every distinct status the booking shows, polled as a customer would, until one of ``until``."""
    shown: list[str] = []
    while not shown or shown[-1] not in until:
        status = str(booking_view.view(booking_id)["status"])
        if not shown or shown[-1] != status:
            shown.append(status)
        time.sleep(0.02)
    return shown


def test_a_confirmation_that_committed_then_timed_out_stays_confirmed(short_timeout: Any) -> None:
    """Issue 12, part 2. GIVEN ConfirmBooking commits, then hangs past its TimeoutSeconds on
    every attempt
    THEN the saga resolves the unknown outcome by asking: the confirmation committed, so it
    stands. The booking shows CONFIRMED and stays CONFIRMED (it went back to PENDING and
    ended FAILED before), with its ticket, its seat sold and its money kept."""
    short_timeout("ConfirmBooking")
    booking_id = start(loyalty_id="FF0001", points_to_redeem=POINTS, simulate_failure={"ConfirmBooking": "timeout"})

    shown = _statuses_while_running(booking_id, {"CONFIRMED", "FAILED", "NEEDS_ATTENTION"})
    assert execution(booking_id, timeout=60)["status"] == "SUCCEEDED"
    view = booking_view.view(booking_id)

    assert shown == ["PENDING", "CONFIRMED"] and view["status"] == "CONFIRMED", shown
    assert view["ticket_number"] and seat("SA101", view["seat"])["status"] == "BOOKED"
    assert view["payment"] == {"status": "CAPTURED", "amount": FARE - POINTS, "currency": CURRENCY}
    assert [(entry["name"], entry["result"]["confirmed"]) for entry in view["compensations"]] == \
        [("CancelBooking", True)]


def test_a_confirmation_that_hung_before_committing_fails_without_ever_showing_confirmed(
    short_timeout: Any,
) -> None:
    """Issue 12, part 2. GIVEN ConfirmBooking hangs before it commits, on every attempt
    THEN the saga asks, finds nothing committed, bars a late confirmation, compensates the
    earlier steps, and the booking ends FAILED without ever having been shown CONFIRMED."""
    short_timeout("ConfirmBooking")
    booking_id = start(loyalty_id="FF0001", points_to_redeem=POINTS, simulate_failure={"ConfirmBooking": "hang"})

    shown = _statuses_while_running(booking_id, {"CONFIRMED", "FAILED", "NEEDS_ATTENTION"})
    view = booking_view.view(booking_id)

    assert shown == ["PENDING", "FAILED"], shown
    assert compensation_names(view) == TIMEOUT["ConfirmBooking"]
    assert view["compensations"][0]["result"]["confirmed"] is False
    assert_rolled_back(view)


def test_a_cancel_while_confirmed_is_never_undone_by_the_booking_saga(short_timeout: Any) -> None:
    """Issue 12, part 2. GIVEN ConfirmBooking commits and then times out, and the customer
    cancels while the booking shows CONFIRMED
    THEN the cancellation runs and the booking ends CANCELLED; the booking saga, resolving
    its pivot, does not take it back to PENDING or FAILED (it went CANCELLED -> FAILED before)."""
    short_timeout("ConfirmBooking")
    booking_id = start(simulate_failure={"ConfirmBooking": "timeout"})
    wait_for_status(booking_id, {"CONFIRMED"})
    api.cancel_booking(booking_id, None, owner_of_booking(booking_id))

    assert wait_for_status(booking_id, {"CANCELLED", "FAILED", "NEEDS_ATTENTION"})["status"] == "CANCELLED"
    execution(booking_id, timeout=60)
    execution(booking_id, "cancellation", timeout=60)
    assert booking_view.view(booking_id)["status"] == "CANCELLED"
    assert invariants.check() == []


def test_the_card_token_never_travels_through_the_state_machine(aws: Any) -> None:
    """Issue 12, part 4. GIVEN a booking paid with a token WHEN its saga confirms it
    THEN neither the execution's input nor any event of its history holds the token
    (state machines log both): AuthorizePayment reads it from the payments service's own
    record, which drops it once the card is charged."""
    view = run(payment={"card_token": "tok_visa_carried_nowhere"})

    assert view["status"] == "CONFIRMED"
    described = execution(view["booking_id"])
    history = json.dumps(saga.raw_history(described["executionArn"]), default=str)
    assert "tok_visa_carried_nowhere" not in described["input"] + history
    assert "card_token" not in payment(view["booking_id"])  # type: ignore[operator]


def test_failed_compensation_goes_on_and_needs_attention(aws: Any) -> None:
    """GIVEN AwardMiles fails and VoidPayment fails even after its retries
    WHEN the saga compensates
    THEN RefundPoints and ReleaseSeats still run, the booking is NEEDS_ATTENTION and a
    dead letter records the compensation and its error."""
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS,
               simulate_failure={"AwardMiles": "permanent", "VoidPayment": "permanent"})

    assert view["status"] == "NEEDS_ATTENTION"
    assert compensation_names(view) == ["VoidPayment", "RefundPoints", "ReleaseSeats"]
    assert [entry["status"] for entry in view["compensations"]] == ["FAILED", "COMPENSATED", "COMPENSATED"]
    assert view["compensations"][0]["attempts"] == 6  # the first try + MaxAttempts 5 retries
    assert view["needs_attention"] == {"failed_step": "AwardMiles", "failed_compensations": ["VoidPayment"]}
    letters = list(db.scan("dead_letters"))
    assert [(letter["booking_id"], letter["compensation"], letter["error"]) for letter in letters] == [
        (view["booking_id"], "VoidPayment", "SimulatedFailure")]
    assert payment(view["booking_id"])["status"] == "AUTHORIZED"  # type: ignore[index]
    assert [violation.rule for violation in invariants.check()] == ["authorization-not-released"]
    assert execution(view["booking_id"])["status"] == "FAILED"


# --- After the pivot: the capture ---------------------------------------------------------------
def _capture_failed_on_record(view: dict[str, Any], error: str) -> None:
    """CONFIRMED with its ticket and its seat sold, nothing compensated, the payment
    CAPTURE_FAILED with the amount still held, one open dead letter for CapturePayment, and
    the invariant checker content (it is told)."""
    booking_id = view["booking_id"]
    assert view["status"] == "CONFIRMED" and view["ticket_number"] and view["boarding_pass"]
    assert seat("SA101", view["seat"])["status"] == "BOOKED"
    assert view["compensations"] == []
    assert view["payment"] == {"status": "CAPTURE_FAILED", "amount": FARE - POINTS, "currency": CURRENCY}
    assert view["amount_paid"] == 0
    held = payment(booking_id) or {}
    assert held["status"] == "CAPTURE_FAILED" and held["capture_error"]["error"] == error
    assert [(letter["compensation"], letter["error"]) for letter in dead_letters.open_letters()] == [
        ("CapturePayment", error)]
    assert balance("FF0001") == START_POINTS - POINTS + miles_for(FARE - POINTS)  # the miles stand
    assert execution(booking_id)["status"] == "SUCCEEDED"
    assert states_entered(booking_id)[-3:] == ["CapturePayment", "RecordCaptureFailure", "BookingConfirmed"]
    assert invariants.check() == []


def test_a_capture_that_fails_leaves_the_booking_confirmed_and_recover_captures(aws: Any) -> None:
    """GIVEN CapturePayment fails for good, after the tickets are issued
    WHEN the saga runs
    THEN nothing is compensated: the booking stays CONFIRMED with its ticket, the payment is
    CAPTURE_FAILED, a dead letter asks for the operator; the operator's recover captures it,
    resolves the letter, and every table agrees."""
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS, simulate_failure={"CapturePayment": "permanent"})

    _capture_failed_on_record(view, "SimulatedFailure")
    capture = next(step for step in view["steps"] if step["name"] == "CapturePayment")
    assert capture["status"] == "FAILED" and capture["attempts"] == 1  # a permanent error is not retried

    result = recovery.recover(view["booking_id"])

    assert result == {"booking_id": view["booking_id"], "status": "CONFIRMED", "rerun": ["CapturePayment"],
                      "still_failing": {}}
    after = booking_view.view(view["booking_id"])
    assert after["status"] == "CONFIRMED"
    assert after["payment"] == {"status": "CAPTURED", "amount": FARE - POINTS, "currency": CURRENCY}
    assert after["amount_paid"] == FARE - POINTS
    assert dead_letters.open_letters() == [] and invariants.check() == []


def test_a_capture_that_hangs_is_retried_then_recorded_and_recovered(short_timeout: Any) -> None:
    """GIVEN CapturePayment hangs past its TimeoutSeconds before reaching the gateway, on every
    attempt
    THEN it is retried on the timeout, then recorded TIMED_OUT with the payment CAPTURE_FAILED
    and a dead letter; the booking stays CONFIRMED; recover captures."""
    short_timeout("CapturePayment")
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS, simulate_failure={"CapturePayment": "hang"})

    _capture_failed_on_record(view, "States.Timeout")
    capture = next(step for step in view["steps"] if step["name"] == "CapturePayment")
    assert capture["status"] == "TIMED_OUT" and capture["attempts"] == 3  # the first try + 2 timeout retries
    assert recovery.recover(view["booking_id"])["still_failing"] == {}
    assert payment(view["booking_id"])["status"] == "CAPTURED"  # type: ignore[index]
    assert invariants.check() == []


def test_a_capture_that_timed_out_after_capturing_is_not_reported_failed(short_timeout: Any) -> None:
    """GIVEN CapturePayment captures, then outlasts its TimeoutSeconds, on every attempt
    THEN its retries find the capture made (once, at the gateway's idempotency key), and
    RecordCaptureFailure, finding the money CAPTURED, records nothing: no dead letter."""
    short_timeout("CapturePayment")
    view = run(simulate_failure={"CapturePayment": "timeout"})

    assert view["status"] == "CONFIRMED"
    assert view["payment"] == {"status": "CAPTURED", "amount": FARE, "currency": CURRENCY}
    assert dead_letters.open_letters() == [] and view["compensations"] == []
    assert states_entered(view["booking_id"])[-2:] == ["RecordCaptureFailure", "BookingConfirmed"]
    assert invariants.check() == []


def test_an_authorisation_that_lapsed_before_the_capture_is_written_off_never_silently(
    aws: Any, monkeypatch: Any,
) -> None:
    """GIVEN authorisations that lapse at once (AUTHORIZATION_HOLD_SECONDS=0)
    WHEN the saga reaches CapturePayment
    THEN the capture is refused (AuthorizationExpired, not retried), the booking stays
    CONFIRMED with the payment CAPTURE_FAILED and a dead letter; the operator's recover cannot
    capture it either, so it records the amount as lost revenue on the payment and in the
    resolved letter: the booking stays CONFIRMED, the customer is not charged."""
    monkeypatch.setenv("AUTHORIZATION_HOLD_SECONDS", "0")
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS)
    _capture_failed_on_record(view, "AuthorizationExpired")

    result = recovery.recover(view["booking_id"])

    assert (result["status"], result["written_off"], result["still_failing"]) == ("CONFIRMED", FARE - POINTS, {})
    lost = payment(view["booking_id"]) or {}
    assert (lost["status"], lost["lost_revenue"]) == ("CAPTURE_FAILED", FARE - POINTS) and lost["written_off_at"]
    (letter,) = db.query("dead_letters", KeyConditionExpression="booking_id = :id",
                         ExpressionAttributeValues={":id": view["booking_id"]})
    assert letter["state"] == "RESOLVED" and "lost revenue" in letter["resolution"]
    assert invariants.check() == []
    with pytest.raises(Exception, match="CONFIRMED"):
        recovery.recover(view["booking_id"])  # written off: nothing left to recover


def test_cancelling_a_booking_whose_capture_failed_releases_the_hold(aws: Any) -> None:
    """GIVEN a CONFIRMED booking whose capture failed (CAPTURE_FAILED, dead-lettered)
    WHEN the customer cancels it
    THEN RefundPayment releases the authorisation (nothing was captured, nothing refunded),
    the capture's dead letter is resolved, and the booking is CANCELLED with every table back."""
    view = run(loyalty_id="FF0001", points_to_redeem=POINTS, simulate_failure={"CapturePayment": "permanent"})
    api.cancel_booking(view["booking_id"], None, owner_of_booking(view["booking_id"]))
    cancelled = wait_for_status(view["booking_id"], {"CANCELLED", "NEEDS_ATTENTION"})

    assert cancelled["status"] == "CANCELLED"
    assert compensation_names(cancelled) == ["RefundPayment", "ReverseMiles", "RefundPoints", "ReleaseSeats"]
    assert cancelled["compensations"][0]["result"]["voided"] == FARE - POINTS
    assert cancelled["payment"] == {"status": "VOIDED", "amount": FARE - POINTS, "currency": CURRENCY}
    assert seat("SA101", view["seat"])["status"] == "AVAILABLE" and balance("FF0001") == START_POINTS
    assert dead_letters.open_letters() == [] and invariants.check() == []
