"""Reliability: seat contention, hold expiry and the sweeper, operator recovery of
failed compensations, and the invariant checker (which must also catch real damage)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import app as app_module
from chalicelib import (
    api,
    booking_view,
    clock,
    db,
    dead_letters,
    invariants,
    payments,
    recovery,
    validation,
)
from chalicelib.errors import Conflict
from chalicelib.models import HOLD_SECONDS, execution_input, leg_event
from tests.saga.conftest import START_POINTS, compensation_names, execution, run
from tests.support import balance, booking_body, customer, owner_of, owner_of_booking, payment, seat, wait_for_status

SCHEDULED_EVENT = {
    "version": "0", "id": "sweep", "detail-type": "Scheduled Event", "source": "aws.events",
    "account": "123456789012", "time": "2026-11-23T00:00:00Z", "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"], "detail": {},
}


def start_or_refused(**overrides: Any) -> str | None:
    """POST /bookings as the domain sees it: a booking id, or None when refused (409)."""
    try:
        sent = booking_body(**overrides)
        body, _ = api.start_booking(json.dumps(sent), {}, owner_of(sent))
    except Conflict:
        return None
    return str(body["booking_id"])


def settle(booking_ids: list[str]) -> list[dict[str, Any]]:
    views = [wait_for_status(booking_id, timeout=120) for booking_id in booking_ids]
    for booking_id in booking_ids:
        execution(booking_id, timeout=60)
    return [booking_view.view(view["booking_id"]) for view in views]


def test_concurrent_buyers_of_one_seat_make_exactly_one_sale(aws: Any) -> None:
    """GIVEN 12 passengers asking for seat 1A at the same moment
    THEN exactly one booking is CONFIRMED; every other one is refused up front (409)
    or FAILED at ReserveSeats with SeatUnavailable, with nothing left to compensate."""
    with ThreadPoolExecutor(max_workers=12) as pool:
        started = list(pool.map(lambda _: start_or_refused(seat="1A", cabin=None), range(12)))
    views = settle([booking_id for booking_id in started if booking_id])

    confirmed = [view for view in views if view["status"] == "CONFIRMED"]
    assert len(confirmed) == 1
    assert all(view["status"] == "FAILED" and view["error"]["error"] == "SeatUnavailable"
               for view in views if view is not confirmed[0])
    sold = seat("SA101", "1A")
    assert sold["status"] == "BOOKED" and sold["booking_id"] == confirmed[0]["booking_id"]
    assert invariants.check() == []


def test_auto_assign_moves_on_under_contention_and_fails_cleanly_when_full(aws: Any) -> None:
    """GIVEN 16 concurrent bookings for 'any seat in FIRST' (12 seats)
    THEN 12 are CONFIRMED on 12 different FIRST seats and 4 fail with CabinFull."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        started = list(pool.map(lambda _: start_or_refused(cabin="FIRST"), range(16)))
    views = settle([booking_id for booking_id in started if booking_id])

    confirmed = [view for view in views if view["status"] == "CONFIRMED"]
    failed = [view for view in views if view["status"] == "FAILED"]
    assert len(confirmed) == 12 and len(failed) == 4
    assert len({view["seat"] for view in confirmed}) == 12
    assert {view["error"]["error"] for view in failed} == {"CabinFull"}
    assert all(view["compensations"] == [] for view in failed)
    assert [item["status"] for item in db.query(
        "seats", KeyConditionExpression="flight_number = :f", ExpressionAttributeValues={":f": "SA101"},
    ) if item["cabin"] == "FIRST"] == ["BOOKED"] * 12
    assert invariants.check() == []


def _hold_without_saga(seat_id: str) -> dict[str, Any]:
    """A booking whose saga died right after ReserveSeats (no execution to finish it)."""
    request = validation.parse_booking_request(booking_body(seat=seat_id, cabin=None), fault_injection_allowed=True)
    booking, _ = api.open_booking(request, customer=customer(), correlation_id="stale", idempotency_key=None)
    event = execution_input(booking, request)
    app_module.reserve_seats(leg_event(event, 0), None)
    return event


def test_an_expired_hold_can_be_taken_by_another_booking(aws: Any) -> None:
    """GIVEN a hold older than 15 minutes WHEN another booking asks for that seat THEN it
    gets it, and the first booking's confirmation fails with SeatHoldLost."""
    stale = _hold_without_saga("5C")
    assert seat("SA101", "5C")["status"] == "HELD"
    clock.advance(HOLD_SECONDS + 1)

    view = run(seat="5C", cabin=None)

    assert view["status"] == "CONFIRMED" and seat("SA101", "5C")["booking_id"] == view["booking_id"]
    try:
        app_module.confirm_booking(stale, None)
    except Exception as exc:
        assert type(exc).__name__ == "SeatHoldLost"
    else:
        raise AssertionError("a lost hold must not be confirmed")


def test_sweeper_releases_expired_holds_and_fails_stale_bookings(aws: Any) -> None:
    """GIVEN a fresh hold and an expired one whose saga is gone
    WHEN the sweeper runs
    THEN only the expired hold is released, and its booking is FAILED (HoldExpired)
    with ReleaseSeats recorded; the invariant checker is satisfied afterwards."""
    stale = _hold_without_saga("6A")
    clock.advance(HOLD_SECONDS + 1)
    fresh = _hold_without_saga("6B")

    result = app_module.sweep_expired_holds(SCHEDULED_EVENT, None)

    assert result == {"expired": 1, "released": 1, "bookings_failed": 1}
    assert seat("SA101", "6A")["status"] == "AVAILABLE" and seat("SA101", "6B")["status"] == "HELD"
    view = booking_view.view(stale["booking_id"])
    assert view["status"] == "FAILED" and view["error"]["error"] == "HoldExpired"
    assert "ReleaseSeats" in compensation_names(view)
    assert booking_view.view(fresh["booking_id"])["status"] == "PENDING"


def test_operator_recovery_reruns_the_failed_compensation(aws: Any, client: Any) -> None:
    """GIVEN a booking left NEEDS_ATTENTION because VoidPayment failed for good
    WHEN an operator calls the recover route
    THEN VoidPayment runs again (idempotently), the hold is released, the booking is
    FAILED, the dead letter is resolved and the invariants hold."""
    view = run(loyalty_id="FF0001", points_to_redeem=1_000,
               simulate_failure={"AwardMiles": "permanent", "VoidPayment": "permanent"})
    assert view["status"] == "NEEDS_ATTENTION"
    assert [violation.rule for violation in invariants.check()] == ["authorization-not-released"]
    assert len(client.http.get("/admin/dead-letters").json_body["dead_letters"]) == 1

    response = client.http.post(f"/admin/bookings/{view['booking_id']}/recover")

    assert response.status_code == 200
    assert response.json_body == {"booking_id": view["booking_id"], "status": "FAILED",
                                  "rerun": ["VoidPayment"], "still_failing": {}}
    after = booking_view.view(view["booking_id"])
    assert after["status"] == "FAILED" and after["failed_step"] == "AwardMiles"
    assert payment(view["booking_id"])["status"] == "VOIDED"  # type: ignore[index]
    assert balance("FF0001") == START_POINTS
    assert client.http.get("/admin/dead-letters").json_body["dead_letters"] == []
    assert client.http.get("/admin/invariants").json_body == {"violations": [], "count": 0}
    assert client.http.post(f"/admin/bookings/{view['booking_id']}/recover").status_code == 409


def test_recovery_never_closes_a_booking_while_money_is_still_taken(short_timeout: Any) -> None:
    """Issue 12, part 1. GIVEN AwardMiles fails for good and VoidPayment hangs before it
    reaches the payment service, past its TimeoutSeconds, on every attempt
    WHEN the saga ends NEEDS_ATTENTION
    THEN no step-log entry is left RUNNING (VoidPayment is TIMED_OUT), the checker sees
    the card still held, and recovery re-runs VoidPayment, which never finished
    (not only compensations marked FAILED): the hold is released, the booking FAILED, its
    dead letter resolved, and its tables check clean."""
    short_timeout("VoidPayment")
    view = run(simulate_failure={"AwardMiles": "permanent", "VoidPayment": "hang"})
    booking_id = view["booking_id"]

    assert view["status"] == "NEEDS_ATTENTION"
    void = next(entry for entry in view["compensations"] if entry["name"] == "VoidPayment")
    assert void["status"] == "TIMED_OUT" and void["attempts"] == 6, void
    assert view["needs_attention"]["failed_compensations"] == ["VoidPayment"]
    assert payment(booking_id)["status"] == "AUTHORIZED"  # type: ignore[index]
    assert [violation.rule for violation in invariants.check()] == ["authorization-not-released"]

    result = recovery.recover(booking_id)

    assert result == {"booking_id": booking_id, "status": "FAILED", "rerun": ["VoidPayment"], "still_failing": {}}
    assert payment(booking_id)["status"] == "VOIDED"  # type: ignore[index]
    assert dead_letters.open_letters() == []
    assert invariants.check() == []


def test_recovery_keeps_the_dead_letter_while_the_booking_does_not_check_clean(aws: Any, monkeypatch: Any) -> None:
    """GIVEN a NEEDS_ATTENTION booking whose card is still held, and a VoidPayment
    that reports success without releasing (a broken gateway adapter)
    WHEN an operator recovers it
    THEN it stays NEEDS_ATTENTION with the violation named, and its dead letter stays open."""
    view = run(simulate_failure={"AwardMiles": "permanent", "VoidPayment": "permanent"})
    monkeypatch.setattr(payments, "void_payment", lambda step: {"voided": 0, "detail": "pretends"})

    result = recovery.recover(view["booking_id"])

    assert result["status"] == "NEEDS_ATTENTION"
    assert [violation["rule"] for violation in result["violations"]] == ["authorization-not-released"]
    assert booking_view.view(view["booking_id"])["status"] == "NEEDS_ATTENTION"
    assert [letter["compensation"] for letter in dead_letters.open_letters()] == ["VoidPayment"]


def test_interrupted_cancellation_recovers_to_cancelled(aws: Any) -> None:
    """GIVEN a cancellation whose ReleaseSeats fails for good
    THEN the refunds still happened, the booking is NEEDS_ATTENTION, and recovery ends
    it CANCELLED with the seat free."""
    view = run(seat="20F", cabin=None)
    api.cancel_booking(view["booking_id"], json.dumps({"simulate_failure": {"ReleaseSeats": "permanent"}}),
                       owner_of_booking(view["booking_id"]))
    assert wait_for_status(view["booking_id"], {"NEEDS_ATTENTION"})["payment"]["status"] == "REFUNDED"
    assert execution(view["booking_id"], "cancellation")["status"] == "FAILED"
    assert seat("SA101", "20F")["status"] == "BOOKED"

    assert recovery.recover(view["booking_id"])["status"] == "CANCELLED"
    assert seat("SA101", "20F")["status"] == "AVAILABLE"
    assert invariants.check() == []


def test_invariant_checker_reports_planted_damage(aws: Any) -> None:
    """GIVEN tables damaged on purpose WHEN the checker runs THEN each damage is reported."""
    confirmed = run(seat="15A", cabin=None)
    db.update("seats", db.seat_key("SA101", "16A"), "SET #s = :booked, booking_id = :ghost",
              names={"#s": "status"}, values={":booked": "BOOKED", ":ghost": "ghost"})
    db.update("seats", db.seat_key("SA101", "15A"), "SET #s = :held", names={"#s": "status"},
              values={":held": "HELD"})
    db.update("loyalty", db.loyalty_account_key("FF0003"), "SET points_balance = :p", values={":p": 1})
    db.put("payments", {"booking_id": "orphan", "status": "CAPTURED", "amount": 100})
    db.update("bookings", db.booking_key(confirmed["booking_id"]), "SET payment = :seen",
              values={":seen": {"status": "NONE", "amount": 0}})  # money taken, shown as none
    request = validation.parse_booking_request(booking_body(), fault_injection_allowed=True)
    stuck, _ = api.open_booking(request, customer=customer(), correlation_id="stuck", idempotency_key=None)
    db.put("payments", {"booking_id": "held-orphan", "status": "AUTHORIZED", "amount": 100})
    # A confirmed booking whose capture failed with no dead letter to say so.
    unpaid = run(seat="17A", cabin=None, simulate_failure={"CapturePayment": "permanent"})
    dead_letters.resolve(unpaid["booking_id"])
    # An undone booking whose miles escaped their reversal (the balance moved with them).
    undone = run(seat="18A", cabin=None, loyalty_id="FF0004", simulate_failure={"AuthorizePayment": "permanent"})
    db.put("loyalty", {**db.ledger_key("FF0004", undone["booking_id"], "AWARD"), "booking_id": undone["booking_id"],
                       "kind": "AWARD", "points": 77, "at": "2026-12-03T00:00:00Z"})
    db.update("loyalty", db.loyalty_account_key("FF0004"), "SET points_balance = points_balance + :p",
              values={":p": 77})

    found = {(violation.rule, violation.subject) for violation in invariants.check()}

    assert found == {
        ("booked-seat-owner", "SA101/16A"),
        ("confirmed-seat-not-booked", confirmed["booking_id"]),
        ("loyalty-balance", "FF0003"),
        ("captured-not-refunded", "orphan"),
        ("stuck-without-execution", stuck["booking_id"]),
        ("card-token-kept", stuck["booking_id"]),  # its payment request outlives its (absent) saga
        ("payment-note-stale", confirmed["booking_id"]),
        ("authorization-not-released", "held-orphan"),
        ("confirmed-without-capture", unpaid["booking_id"]),
        ("loyalty-not-undone", undone["booking_id"]),
    }
