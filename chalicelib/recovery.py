"""What an operator (or the scheduled sweeper) does when a saga could not finish by
itself: re-run the compensations that failed, and clean up after expired holds.

Both call the same compensation functions the saga's Lambdas call, through the same
step runner, so the step log and the idempotency guarantees are the same: re-running a
compensation that already succeeded changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib import bookings, clock, db, invariants, loyalty, payments, saga, seats, steps
from chalicelib.errors import Conflict, InvalidRequest
from chalicelib.logs import bound, logger
from chalicelib.models import COMPENSATION_OF, FORWARD_STEPS, StepInput

COMPENSATION_FUNCTIONS: dict[str, Callable[[StepInput], dict[str, Any]]] = {
    "CancelBooking": bookings.cancel_booking,
    "ReverseMiles": loyalty.reverse_miles,
    "RefundPayment": payments.refund_payment,
    "RefundPoints": loyalty.refund_points,
    "ReleaseSeat": seats.release_seat,
}
# Reverse order of the forward steps: the order the saga compensates in.
COMPENSATION_ORDER = [COMPENSATION_OF[step] for step in reversed(FORWARD_STEPS)]


def _event(booking: dict[str, Any]) -> dict[str, Any]:
    """A step event rebuilt from the booking record. No simulate_failure: the operator
    re-runs for real (the outage being simulated is over)."""
    return {**bookings.cancellation_input(booking), "simulate_failure": {}}


def _run_compensations(booking: dict[str, Any], names: list[str]) -> dict[str, str]:
    """Run ``names`` in saga order; returns the error of each one that failed again."""
    failures = {}
    event = _event(booking)
    for name in COMPENSATION_ORDER:
        if name not in names:
            continue
        try:
            steps.run(name, COMPENSATION_FUNCTIONS[name], event)
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"
    return failures


def outstanding_compensations(booking: dict[str, Any]) -> list[str]:
    log = bookings.step_log(booking["booking_id"])["compensations"]
    return [name for name in COMPENSATION_ORDER if log.get(name, {}).get("status") == "FAILED"]


def recover(booking_id: str) -> dict[str, Any]:
    """Re-run the outstanding compensations of a NEEDS_ATTENTION booking; on success it
    becomes FAILED (or CANCELLED when a cancellation was interrupted)."""
    booking = bookings.get_booking(booking_id)
    with bound(booking_id=booking_id, correlation_id=booking["correlation_id"], step="Recover"):
        if booking["status"] != "NEEDS_ATTENTION":
            raise Conflict(f"only a NEEDS_ATTENTION booking can be recovered; this one is {booking['status']}")
        names = outstanding_compensations(booking)
        failures = _run_compensations(booking, names)
        if failures:
            logger.error("recovery incomplete", extra={"failures": failures})
            return {"booking_id": booking_id, "status": "NEEDS_ATTENTION", "rerun": names, "still_failing": failures}
        final = "CANCELLED" if booking.get("attention_origin") == "cancellation" else "FAILED"
        db.update(
            "bookings", db.booking_key(booking_id),
            "SET #status = :final, recovered_at = :now, updated_at = :now",
            condition="#status = :attention", names={"#status": "status"},
            values={":final": final, ":attention": "NEEDS_ATTENTION", ":now": clock.now_iso()},
        )
        _resolve_dead_letters(booking_id)
        logger.info("booking recovered", extra={"status": final, "rerun": names})
        return {"booking_id": booking_id, "status": final, "rerun": names, "still_failing": {}}


def _resolve_dead_letters(booking_id: str) -> None:
    letters = db.query("dead_letters", KeyConditionExpression="booking_id = :id",
                       ExpressionAttributeValues={":id": booking_id})
    for letter in letters:
        db.update("dead_letters", db.dead_letter_key(booking_id, *letter["entry"].split("#", 1)),
                  "SET #state = :resolved, resolved_at = :now", names={"#state": "state"},
                  values={":resolved": "RESOLVED", ":now": clock.now_iso()})


def open_dead_letters() -> list[dict[str, Any]]:
    return [letter for letter in db.scan("dead_letters") if letter.get("state") == "OPEN"]


# --- The hold sweeper -------------------------------------------------------------------
def _release_expired(seat: dict[str, Any], now: int) -> bool:
    try:
        db.update(
            "seats", db.seat_key(seat["flight_number"], seat["seat"]),
            "SET #status = :available REMOVE booking_id, hold_expires_at, held_at",
            condition="#status = :held AND booking_id = :booking AND hold_expires_at <= :now",
            names={"#status": "status"},
            values={":available": "AVAILABLE", ":held": "HELD", ":booking": seat["booking_id"], ":now": now},
        )
    except db.ConditionFailed:
        return False  # confirmed, released or re-held meanwhile
    return True


def fail_stale_booking(booking: dict[str, Any], reason: str) -> None:
    """A PENDING booking whose saga is gone: undo whatever it did, then FAILED."""
    log = bookings.step_log(booking["booking_id"])["steps"]
    running = [name for name in FORWARD_STEPS if log.get(name, {}).get("status") == "RUNNING"]
    with bound(booking_id=booking["booking_id"], correlation_id=booking["correlation_id"], step="Sweeper"):
        failures = _run_compensations(booking, COMPENSATION_ORDER)
        status = "NEEDS_ATTENTION" if failures else "FAILED"
        db.update(
            "bookings", db.booking_key(booking["booking_id"]),
            "SET #status = :status, failed_step = :step, #error = :error, attention_origin = :origin, "
            "updated_at = :now",
            condition="#status = :pending",
            names={"#status": "status", "#error": "error"},
            values={":status": status, ":step": running[-1] if running else None, ":pending": "PENDING",
                    ":error": {"error": "HoldExpired", "cause": reason}, ":origin": "booking",
                    ":now": clock.now_iso()},
        )
        logger.warning("stale booking failed", extra={"status": status, "reason": reason})


def sweep_expired_holds(now: int | None = None) -> dict[str, int]:
    """Release every expired hold; fail the bookings that held them if their saga is
    no longer running (a running saga fails by itself at ConfirmBooking)."""
    now = clock.now_epoch() if now is None else now
    expired = list(db.scan(
        "seats",
        FilterExpression="#status = :held AND hold_expires_at <= :now",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":held": "HELD", ":now": now},
    ))
    released = failed = 0
    for seat in expired:
        if not _release_expired(seat, now):
            continue
        released += 1
        booking = db.get("bookings", db.booking_key(seat["booking_id"]))
        if booking and booking["status"] == "PENDING" and not saga.is_running(booking["booking_id"]):
            try:
                fail_stale_booking(booking, f"the hold on {seat['seat']} expired and its saga is no longer running")
                failed += 1
            except db.ConditionFailed:
                pass  # it finished meanwhile
    logger.info("hold sweep", extra={"expired": len(expired), "released": released, "bookings_failed": failed})
    return {"expired": len(expired), "released": released, "bookings_failed": failed}


# --- The operator's entry point --------------------------------------------------------
OPERATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "recover": lambda event: recover(str(event.get("booking_id", ""))),
    "dead_letters": lambda event: {"dead_letters": open_dead_letters()},
    "invariants": lambda event: invariants.report(),
    "sweep": lambda event: sweep_expired_holds(),
}


def operate(event: dict[str, Any]) -> Any:
    """``{"action": "recover", "booking_id": ...}`` and friends: what the `operator`
    Lambda (deployed) and the /admin routes (local) do."""
    action = event.get("action")
    if action not in OPERATIONS:
        raise InvalidRequest(f"action must be one of {', '.join(OPERATIONS)}", field="action")
    return OPERATIONS[str(action)](event)
