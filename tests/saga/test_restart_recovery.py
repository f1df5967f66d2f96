"""Sagas whose execution is gone: what recovery.finish_lost_sagas does with the bookings
they left in flight. The embedded stack calls it when it starts on the state of an
earlier run (Step Functions executions do not survive a restart; local/persistence.py).

Each booking here is left exactly as a killed server leaves one: its steps ran through
their Lambda handlers up to some point, the step that was running when the process died
is RUNNING in the step log, and no execution exists.
"""

from __future__ import annotations

from typing import Any

import pytest

import app as app_module
from chalicelib import api, booking_record, booking_view, dead_letters, invariants, recovery, step_log, validation
from chalicelib.models import CURRENCY, cancellation_input, execution_input
from chalicelib.vocabulary import (
    AUTHORIZE_PAYMENT,
    AWARD_MILES,
    CANCELLATION_STEPS,
    CAPTURE_PAYMENT,
    CONFIRM_BOOKING,
    REDEEM_POINTS,
    RESERVE_SEATS,
    REVERSE_MILES,
    VOID_PAYMENT,
    BookingStatus,
    PaymentStatus,
    SeatStatus,
    Step,
    StepStatus,
)
from tests.saga.conftest import START_POINTS, compensation_names, run, start
from tests.support import balance, booking_body, customer, owner_of_booking, payment, seat, wait_until

REASON = "the server restarted"


def _lost_after(steps: tuple[Step, ...], running: str | None, **overrides: Any) -> str:
    """A booking whose saga ran ``steps`` and died while ``running`` was running."""
    body = booking_body(**overrides)
    request = validation.parse_booking_request(body, fault_injection_allowed=True)
    booking, _ = api.open_booking(request, customer=customer(body.get("loyalty_id") or "FF0001"),
                                  correlation_id="lost", idempotency_key=None)
    event = execution_input(booking, request)
    for step in steps:
        event[step.result_key] = getattr(app_module, step.function)(event, None)
    if running:
        step_log.begin(booking["booking_id"], running, announce=True)
    return str(booking["booking_id"])


def _statuses(entries: list[dict[str, Any]]) -> set[str]:
    return {entry["status"] for entry in entries}


def test_a_booking_lost_before_its_pivot_is_compensated(aws: Any) -> None:
    """GIVEN a booking whose saga held the seat, redeemed points, authorised the card and
    awarded miles, and died inside ConfirmBooking (before it committed)
    WHEN the lost sagas are finished
    THEN it is compensated as the saga would have: FAILED at ConfirmBooking with
    ExecutionLost, no step left RUNNING, the hold on the card released, the points and miles back,
    the seat free, and the invariant checker, whole or scoped, finds nothing."""
    booking_id = _lost_after((RESERVE_SEATS, REDEEM_POINTS, AUTHORIZE_PAYMENT, AWARD_MILES), CONFIRM_BOOKING.name,
                             loyalty_id="FF0001", points_to_redeem=1_000)
    held = booking_record.get(booking_id)["seat"]
    assert payment(booking_id)["status"] == PaymentStatus.AUTHORIZED  # type: ignore[index]
    assert seat("SA101", held)["status"] == SeatStatus.HELD and balance("FF0001") != START_POINTS
    assert "stuck-without-execution" in {violation.rule for violation in invariants.check()}

    assert recovery.finish_lost_sagas(REASON) == {BookingStatus.FAILED: [booking_id]}

    view = booking_view.view(booking_id)
    assert (view["status"], view["failed_step"]) == (BookingStatus.FAILED, CONFIRM_BOOKING.name)
    assert view["error"] == {"error": recovery.EXECUTION_LOST, "cause": REASON}
    assert StepStatus.RUNNING not in _statuses(view["steps"])
    assert _statuses(view["compensations"]) == {StepStatus.COMPENSATED}
    assert payment(booking_id)["status"] == PaymentStatus.VOIDED  # type: ignore[index]
    assert balance("FF0001") == START_POINTS
    assert seat("SA101", held)["status"] == SeatStatus.AVAILABLE
    assert invariants.check() == [] and invariants.check(booking_id) == []


def test_a_booking_lost_before_its_saga_started_fails_and_keeps_no_card_token(aws: Any) -> None:
    """GIVEN a booking written by POST /bookings whose execution never started (the server
    died between the two) WHEN the lost sagas are finished THEN it is FAILED, nothing was
    charged, and its payment request no longer holds the card token."""
    booking_id = _lost_after((), None)
    assert payment(booking_id)["status"] == PaymentStatus.REQUESTED  # type: ignore[index]

    assert recovery.finish_lost_sagas(REASON) == {BookingStatus.FAILED: [booking_id]}

    assert booking_view.view(booking_id)["payment"] == {"status": PaymentStatus.NONE, "amount": 0, "currency": CURRENCY}
    assert "card_token" not in payment(booking_id)  # type: ignore[operator]
    assert invariants.check() == []


@pytest.mark.parametrize("died_in", [None, REVERSE_MILES.name], ids=["before-its-first-step", "in-ReverseMiles"])
def test_a_lost_cancellation_is_finished(aws: Any, died_in: str | None) -> None:
    """GIVEN a confirmed booking the customer cancelled, whose cancellation saga died
    before its first compensation, or after RefundPayment inside ReverseMiles
    WHEN the lost sagas are finished
    THEN the cancellation goes forward, not back: every compensation of the cancellation
    ran, in the cancellation's order (the money back first), and the booking is
    CANCELLED, money refunded, points and miles back, seat free, invariants clean."""
    view = run(loyalty_id="FF0002", points_to_redeem=500)
    booking_id = view["booking_id"]
    booking = booking_record.begin_cancellation(booking_id, owner_of_booking(booking_id).id)
    if died_in:
        event = cancellation_input(booking)
        event[CANCELLATION_STEPS[0].result_key] = app_module.refund_payment(event, None)
        step_log.begin(booking_id, died_in, announce=True)

    assert recovery.finish_lost_sagas(REASON) == {BookingStatus.CANCELLED: [booking_id]}

    after = booking_view.view(booking_id)
    assert after["status"] == BookingStatus.CANCELLED
    assert compensation_names(after) == [compensation.name for compensation in CANCELLATION_STEPS]
    assert _statuses(after["compensations"]) == {StepStatus.COMPENSATED}
    assert payment(booking_id)["status"] == PaymentStatus.REFUNDED  # type: ignore[index]
    assert balance("FF0002") == START_POINTS
    assert seat("SA101", view["seat"])["status"] == SeatStatus.AVAILABLE
    assert invariants.check() == []


def test_a_saga_still_running_is_left_to_finish(aws: Any) -> None:
    """GIVEN a booking whose execution is running (AwardMiles takes 2 s) WHEN the lost
    sagas are finished THEN it is left alone, and its saga confirms it."""
    booking_id = start(simulate_failure={AWARD_MILES.name: "timeout"})
    wait_until(lambda: step_log.read(booking_id)[step_log.STEPS].get(AWARD_MILES.name), "AwardMiles to start")

    assert recovery.finish_lost_sagas(REASON) == {}

    assert booking_record.get(booking_id)["status"] == BookingStatus.PENDING
    wait_until(lambda: booking_record.get(booking_id)["status"] == BookingStatus.CONFIRMED, "the confirmation")


def test_a_compensation_that_fails_during_recovery_is_dead_lettered(aws: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN a lost booking that authorised the card, and a payment service that fails while
    the lost sagas are finished
    WHEN they are
    THEN the booking is NEEDS_ATTENTION with VoidPayment dead-lettered (as RecordFailure
    would), and once the service is back the operator's recovery releases the hold and closes it."""
    booking_id = _lost_after((RESERVE_SEATS, AUTHORIZE_PAYMENT), AWARD_MILES.name)

    def outage(step: Any) -> Any:
        raise ConnectionError("the payment gateway is down")

    with monkeypatch.context() as patched:
        patched.setattr("chalicelib.payments.void_payment", outage)
        assert recovery.finish_lost_sagas(REASON) == {BookingStatus.NEEDS_ATTENTION: [booking_id]}
    letters = dead_letters.open_letters()
    assert [(letter["booking_id"], letter["compensation"], letter["error"]) for letter in letters] == [
        (booking_id, VOID_PAYMENT.name, "ConnectionError")]

    assert recovery.recover(booking_id)["status"] == BookingStatus.FAILED
    assert payment(booking_id)["status"] == PaymentStatus.VOIDED  # type: ignore[index]
    assert dead_letters.open_letters() == [] and invariants.check() == []


def test_a_booking_lost_between_its_pivot_and_its_capture_is_captured(aws: Any) -> None:
    """GIVEN a booking confirmed (tickets issued) whose saga died inside CapturePayment
    WHEN the lost sagas are finished
    THEN it goes forward, never back: the payment is captured, the booking stays CONFIRMED,
    and the invariant checker (which reported the missing capture) finds nothing."""
    booking_id = _lost_after((RESERVE_SEATS, AUTHORIZE_PAYMENT, AWARD_MILES, CONFIRM_BOOKING), CAPTURE_PAYMENT.name)
    assert booking_record.get(booking_id)["status"] == BookingStatus.CONFIRMED
    assert "confirmed-without-capture" in {violation.rule for violation in invariants.check()}

    assert recovery.finish_lost_sagas(REASON) == {BookingStatus.CONFIRMED: [booking_id]}

    view = booking_view.view(booking_id)
    assert view["status"] == BookingStatus.CONFIRMED and view["payment"]["status"] == PaymentStatus.CAPTURED
    assert {entry["name"]: entry["status"] for entry in view["steps"]}[CAPTURE_PAYMENT.name] == StepStatus.SUCCEEDED
    assert view["compensations"] == [] and invariants.check() == []
