"""What an operator (or the scheduled sweeper) does when a saga could not finish by
itself: re-run the compensations that failed, capture again a confirmed booking's
payment whose capture failed, and clean up after expired holds.

Both call the same compensation functions the saga's Lambdas call, through the same
step runner, so the step log and the idempotency guarantees are the same: re-running a
compensation that already succeeded changes nothing. Every write goes through the
module that owns the record (seats, booking_record, dead_letters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib import booking_record, clock, dead_letters, invariants, payments, saga, seats, step_log, steps
from chalicelib.errors import AuthorizationExpired, ConditionFailed, Conflict, InvalidRequest
from chalicelib.logs import bound, logger
from chalicelib.models import cancellation_input, leg_event
from chalicelib.vocabulary import (
    CANCELLATION_STEPS,
    CAPTURE_PAYMENT,
    COMPENSATION_ORDER,
    NOTHING_HAPPENED,
    STEP_NAMES,
    STEP_OF_COMPENSATION,
    BookingStatus,
    Compensation,
    PaymentStatus,
    SagaKind,
    StepStatus,
    domain_function,
    entry_name,
    split_entry,
    task_name,
)


def _invocations(booking: dict[str, Any], compensation: Compensation) -> list[tuple[str, dict[str, Any]]]:
    """Each invocation of ``compensation`` the booking's saga makes, by its step-log entry:
    one, or one per leg (what the Map's iterations get)."""
    event = cancellation_input(booking)
    if compensation.per_leg:
        return [(entry_name(compensation, leg), leg_event(event, leg)) for leg in range(len(event["legs"]))]
    return [(compensation.name, event)]


def _run_compensations(booking: dict[str, Any], names: list[str]) -> dict[str, str]:
    """Run ``names`` (compensations, or one leg's: ``ReleaseSeats#1``) in saga order; returns
    the error of each one that failed again. No simulate_failure: the operator re-runs for
    real (the outage being simulated is over)."""
    failures = {}
    for compensation in _chain_of(booking):
        for entry, event in _invocations(booking, compensation):
            if entry not in names and compensation.name not in names:
                continue
            try:
                steps.run(compensation, domain_function(compensation), event)
            except Exception as exc:
                failures[entry] = f"{type(exc).__name__}: {exc}"
    return failures


def _interrupted_cancellation(booking: dict[str, Any]) -> bool:
    """A cancellation that did not finish by itself: one that left the booking
    NEEDS_ATTENTION, or one whose saga is gone while the booking is CANCELLING."""
    return (booking.get("attention_origin") == SagaKind.CANCELLATION
            or booking["status"] == BookingStatus.CANCELLING)


def _chain_of(booking: dict[str, Any]) -> tuple[Compensation, ...]:
    """The compensations the saga that left the booking runs, in its order."""
    return CANCELLATION_STEPS if _interrupted_cancellation(booking) else COMPENSATION_ORDER


def _may_have_acted(entry: dict[str, Any] | None) -> bool:
    """A forward step acted unless it never started or failed with an error that proves
    it changed nothing (a timeout proves nothing)."""
    if entry is None:
        return False
    error = (entry.get("error") or {}).get("error")
    return not (entry.get("status") == StepStatus.FAILED and error in NOTHING_HAPPENED)


def outstanding_compensations(booking: dict[str, Any]) -> list[str]:
    """Every compensation whose step may have acted and that did not finish: FAILED,
    TIMED_OUT, still RUNNING, or never started. Not only those marked FAILED: a
    compensation that hung is as unfinished as one that failed."""
    log = step_log.read(booking["booking_id"])
    outstanding = []
    for compensation in _chain_of(booking):
        step = STEP_OF_COMPENSATION[compensation.name]
        for entry, _ in _invocations(booking, compensation):
            acted = _may_have_acted(log[step_log.STEPS].get(entry_name(step, split_entry(entry)[1])))
            if acted and log[step_log.COMPENSATIONS].get(entry, {}).get("status") != StepStatus.COMPENSATED:
                outstanding.append(entry)
    return outstanding


def _capture_failed(booking: dict[str, Any]) -> bool:
    """A confirmed booking whose capture failed after its retries (and was not written off)."""
    payment = payments.get_payment(booking["booking_id"])
    return (booking["status"] == BookingStatus.CONFIRMED
            and (payment or {}).get("status") == PaymentStatus.CAPTURE_FAILED and not payments.written_off(payment))


def recover_capture(booking: dict[str, Any]) -> dict[str, Any]:
    """Capture again the payment of a CONFIRMED booking whose capture failed; never
    compensated, the booking stays CONFIRMED either way. Captured: the dead letter is
    resolved. The authorisation lapsed: it cannot be captured, nor re-authorised (the card
    token is gone with its saga), so the amount is written off as lost revenue, on the
    payment record and in the resolved dead letter. Any other failure: the letter stays open."""
    booking_id = booking["booking_id"]
    rerun = [CAPTURE_PAYMENT.name]
    try:
        steps.run(CAPTURE_PAYMENT, domain_function(CAPTURE_PAYMENT), cancellation_input(booking))
    except AuthorizationExpired as exc:
        lost = payments.write_off(booking_id, str(exc))
        dead_letters.resolve(booking_id, task=CAPTURE_PAYMENT.name,
                             resolution=f"written off as lost revenue ({lost} minor units): {exc}")
        return {"booking_id": booking_id, "status": booking["status"], "rerun": rerun, "still_failing": {},
                "written_off": lost}
    except Exception as exc:
        logger.error("capture still failing", extra={"error": type(exc).__name__})
        return {"booking_id": booking_id, "status": booking["status"], "rerun": rerun,
                "still_failing": {CAPTURE_PAYMENT.name: f"{type(exc).__name__}: {exc}"}, "violations": []}
    dead_letters.resolve(booking_id, task=CAPTURE_PAYMENT.name, resolution="captured by the operator's recover")
    logger.info("capture recovered")
    return {"booking_id": booking_id, "status": booking["status"], "rerun": rerun, "still_failing": {}}


def recover(booking_id: str) -> dict[str, Any]:
    """Re-run the outstanding compensations of a NEEDS_ATTENTION booking. It becomes
    FAILED (or CANCELLED when a cancellation was interrupted), and its dead letters are
    resolved, only when every one succeeded and the invariant checker, scoped to the
    booking, finds nothing. A CONFIRMED booking whose capture failed is captured again
    instead (``recover_capture``)."""
    booking = booking_record.get(booking_id)
    with bound(booking_id=booking_id, correlation_id=booking["correlation_id"], step="Recover"):
        if booking["status"] == BookingStatus.CONFIRMED and _capture_failed(booking):
            return recover_capture(booking)
        if booking["status"] != BookingStatus.NEEDS_ATTENTION:
            raise Conflict("only a NEEDS_ATTENTION booking, or a CONFIRMED one whose capture failed, can be "
                           f"recovered; this one is {booking['status']}")
        names = outstanding_compensations(booking)
        failures = _run_compensations(booking, names)
        # Closed only when its tables say nothing is left behind: money, seat, points.
        violations = [] if failures else invariants.report(booking_id)["violations"]
        if failures or violations:
            logger.error("recovery incomplete", extra={"failures": failures, "violations": violations})
            return {"booking_id": booking_id, "status": BookingStatus.NEEDS_ATTENTION, "rerun": names,
                    "still_failing": failures, "violations": violations}
        final = BookingStatus.CANCELLED if _interrupted_cancellation(booking) else BookingStatus.FAILED
        booking_record.mark_recovered(booking_id, final)
        dead_letters.resolve(booking_id)
        logger.info("booking recovered", extra={"status": final, "rerun": names})
        return {"booking_id": booking_id, "status": final, "rerun": names, "still_failing": {}}


def _dead_letter(booking: dict[str, Any], failures: dict[str, str]) -> None:
    """What RecordFailure and RecordCancellation do for a compensation that failed: an
    operator finds it in the dead letters."""
    for compensation, failure in failures.items():
        error, _, cause = failure.partition(": ")
        dead_letters.record(booking["booking_id"], compensation, error=error, cause=cause,
                            correlation_id=booking["correlation_id"], flight_number=booking["flight_number"])


# --- Sagas that are gone: the hold sweeper, a restart of the embedded stack --------------------
HOLD_EXPIRED = "HoldExpired"
EXECUTION_LOST = "ExecutionLost"


def fail_stale_booking(booking: dict[str, Any], reason: str, *, error: str = HOLD_EXPIRED) -> None:
    """A PENDING booking whose saga is gone: undo whatever it did, then FAILED (or
    NEEDS_ATTENTION, dead-lettered, when a compensation fails). Not resumed: its hold
    may have lapsed, and a step that was running may or may not have acted, which the
    compensations (no-ops where there is nothing to undo) settle either way."""
    log = step_log.read(booking["booking_id"])[step_log.STEPS]
    running = [entry for entry, item in log.items()
               if task_name(entry) in STEP_NAMES and item.get("status") == StepStatus.RUNNING]
    # Where the saga was: the step still RUNNING, else the furthest step with an entry
    # (a step's outcome is written when it ends, so the one it died in may have none).
    entered = {task_name(entry) for entry in running or log}
    reached = [name for name in STEP_NAMES if name in entered]
    with bound(booking_id=booking["booking_id"], correlation_id=booking["correlation_id"], step="Sweeper"):
        for name in running:  # its execution has ended: no step-log entry stays RUNNING
            step_log.mark_ended(booking["booking_id"], name, error, reason)
        failures = _run_compensations(booking, [compensation.name for compensation in _chain_of(booking)])
        status = BookingStatus.NEEDS_ATTENTION if failures else BookingStatus.FAILED
        booking_record.mark_failed(
            booking["booking_id"], status, failed_step=reached[-1] if reached else None,
            error={"error": error, "cause": reason},
        )
        _dead_letter(booking, failures)
        logger.warning("stale booking failed", extra={"status": status, "reason": reason})


def finish_cancellation(booking: dict[str, Any], reason: str) -> None:
    """A CANCELLING booking whose cancellation saga is gone: finish it. The customer asked
    to cancel a confirmed booking, so it goes forward, not back: every compensation of the
    cancellation runs (one that already ran changes nothing), then CANCELLED, or
    NEEDS_ATTENTION with a dead letter for each that failed."""
    with bound(booking_id=booking["booking_id"], correlation_id=booking["correlation_id"], step="Sweeper"):
        failures = _run_compensations(booking, [compensation.name for compensation in CANCELLATION_STEPS])
        status = BookingStatus.NEEDS_ATTENTION if failures else BookingStatus.CANCELLED
        booking_record.mark_cancelled(booking["booking_id"], status)
        _dead_letter(booking, failures)
        logger.warning("interrupted cancellation finished", extra={"status": status, "reason": reason})


def finish_capture(booking: dict[str, Any], reason: str) -> None:
    """A CONFIRMED booking whose saga is gone between its pivot and its capture: capture, as
    the saga would have (forward, never compensated); a capture that fails is recorded as
    RecordCaptureFailure records one, CAPTURE_FAILED with a dead letter for the operator."""
    booking_id = booking["booking_id"]
    with bound(booking_id=booking_id, correlation_id=booking["correlation_id"], step="Sweeper"):
        try:
            steps.run(CAPTURE_PAYMENT, domain_function(CAPTURE_PAYMENT), cancellation_input(booking))
        except Exception as exc:
            error = {"error": type(exc).__name__, "cause": f"{exc} ({reason})"}
            if payments.mark_capture_failed(booking_id, error):
                dead_letters.record(booking_id, CAPTURE_PAYMENT.name, **error,
                                    correlation_id=booking["correlation_id"], flight_number=booking["flight_number"])
        logger.warning("lost capture finished", extra={"reason": reason})


def finish_lost_sagas(reason: str) -> dict[str, list[str]]:
    """Every booking in flight (PENDING, CANCELLING) with no running execution, driven to
    a terminal state: PENDING compensated (``fail_stale_booking``), CANCELLING finished
    (``finish_cancellation``); and every CONFIRMED one whose saga died before its capture,
    captured (``finish_capture``). The embedded stack runs this when it starts on the
    state of an earlier run, whose executions did not survive it. Returns booking ids by
    the status each ended in (a capture finished: CONFIRMED)."""
    finished: dict[str, list[str]] = {}
    for booking_id in payments.authorized_ones():
        booking = booking_record.find(booking_id)
        if (booking and booking["status"] == BookingStatus.CONFIRMED
                and not saga.is_running(booking_id, SagaKind.BOOKING)):
            finish_capture(booking, reason)
            finished.setdefault(BookingStatus.CONFIRMED, []).append(booking_id)
    for booking in booking_record.in_flight():
        booking_id = booking["booking_id"]
        if any(saga.is_running(booking_id, kind) for kind in SagaKind):
            continue
        try:
            if booking["status"] == BookingStatus.CANCELLING:
                finish_cancellation(booking, reason)
            else:
                fail_stale_booking(booking, reason, error=EXECUTION_LOST)
        except ConditionFailed:
            continue  # it finished meanwhile
        finished.setdefault(booking_record.get(booking_id)["status"], []).append(booking_id)
    return finished


def sweep_expired_holds(now: int | None = None) -> dict[str, int]:
    """Release every expired hold; fail the bookings that held them if their saga is
    no longer running (a running saga fails by itself at ConfirmBooking)."""
    now = clock.now_epoch() if now is None else now
    expired = seats.expired_holds(now)
    released = failed = 0
    for seat in expired:
        if not seats.release_expired_hold(seat, now):
            continue
        released += 1
        booking = booking_record.find(seat["booking_id"])
        if booking and booking["status"] == BookingStatus.PENDING and not saga.is_running(booking["booking_id"]):
            try:
                fail_stale_booking(booking, f"the hold on {seat['seat']} expired and its saga is no longer running")
                failed += 1
            except ConditionFailed:
                pass  # it finished meanwhile
    logger.info("hold sweep", extra={"expired": len(expired), "released": released, "bookings_failed": failed})
    return {"expired": len(expired), "released": released, "bookings_failed": failed}


# --- The operator's entry point --------------------------------------------------------
OPERATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "recover": lambda event: recover(str(event.get("booking_id", ""))),
    "dead_letters": lambda event: {"dead_letters": [dead_letters.shown(letter)
                                                    for letter in dead_letters.open_letters()]},
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
