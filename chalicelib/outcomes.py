"""How a saga ended, recorded by its last task: RecordFailure (the booking saga's
compensations have run), RecordCaptureFailure (the booking is confirmed, its capture
failed after its retries) and RecordCancellation (the cancellation saga's compensations
have run). A compensation that failed after its retries is dead-lettered and the booking
becomes NEEDS_ATTENTION instead of FAILED or CANCELLED; a capture that did is
dead-lettered and the booking stays CONFIRMED.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import booking_record, dead_letters, observability, payments, step_log
from chalicelib.errors import ConditionFailed
from chalicelib.logs import logger
from chalicelib.models import StepInput
from chalicelib.vocabulary import (
    AUTHORIZE_PAYMENT,
    CAPTURE_PAYMENT,
    RECORD_CANCELLATION,
    RECORD_CAPTURE_FAILURE,
    RECORD_FAILURE,
    STEP_NAMES,
    TASKS,
    BookingStatus,
    PaymentStatus,
    entry_name,
    is_compensation,
    split_entry,
    task_name,
)

# What this service's Lambdas do to which table: their IAM roles (deploy/resources.py).
TABLE_ACCESS = {
    RECORD_FAILURE: {"bookings": ("UpdateItem",), "step_log": ("UpdateItem",), "dead_letters": ("PutItem",),
                     "payments": ("UpdateItem",)},
    RECORD_CAPTURE_FAILURE: {"payments": ("GetItem", "UpdateItem"), "bookings": ("UpdateItem",),
                             "step_log": ("UpdateItem",), "dead_letters": ("PutItem",)},
    RECORD_CANCELLATION: {"bookings": ("UpdateItem",), "dead_letters": ("PutItem",)},
}


def readable_cause(cause: Any) -> str:
    """A Lambda error's Cause is its error payload as JSON; keep the message."""
    try:
        payload = json.loads(cause)
    except (TypeError, ValueError):
        return str(cause or "")[:4000]
    if isinstance(payload, dict) and "errorMessage" in payload:
        return str(payload["errorMessage"])[:4000]
    return str(cause)[:4000]


def _error_of(caught: dict[str, Any], default: str = "") -> dict[str, str]:
    """A Catch's ``{"Error", "Cause"}`` as this project records an error."""
    return {"error": str(caught.get("Error", default)), "cause": readable_cause(caught.get("Cause"))}


def _entries(step: StepInput, name: str) -> list[str]:
    """The step-log entries an error concerns: its own, or, for a per-leg task's Map that
    failed as a whole, every leg's."""
    task = TASKS.get(task_name(name))
    if task is not None and task.per_leg and split_entry(name)[1] is None:
        return [entry_name(task, leg) for leg in range(len(step.legs) or 1)]
    return [name]


def _record_ended_tasks(step: StepInput, *, except_for: str | None = None) -> None:
    """No step-log entry stays RUNNING, or is missing, once the execution ends: each task
    whose error the execution carries (a timeout, a crash) and that did not record its own
    failure is recorded TIMED_OUT or FAILED."""
    for name, caught in step.errors.items():
        if task_name(name) != except_for and task_name(name) in TASKS:
            error = _error_of(caught)
            for entry in _entries(step, name):
                step_log.mark_ended(step.booking_id, entry, error["error"], error["cause"])


def _failure(step: StepInput) -> tuple[str | None, list[str]]:
    """The forward step the booking failed at, and the entries of its errors: the step's
    own (a Map that failed as a whole) first, then its legs in order."""
    for name in STEP_NAMES:
        failed = sorted((entry for entry in step.errors if task_name(entry) == name),
                        key=lambda entry: -1 if split_entry(entry)[1] is None else split_entry(entry)[1] or 0)
        if failed:
            return name, failed
    return None, []


def _failed_compensations(step: StepInput) -> dict[str, dict[str, Any]]:
    return {name: error for name, error in step.errors.items() if is_compensation(name)}


def _dead_letter_failed_compensations(step: StepInput) -> None:
    """Dead-letter every compensation whose error the execution carries."""
    for compensation, caught in _failed_compensations(step).items():
        dead_letters.record(step.booking_id, compensation, **_error_of(caught),
                            correlation_id=step.correlation_id, flight_number=step.flight_number)


def record_failure(step: StepInput) -> dict[str, Any]:
    """The compensations have run: mark the booking FAILED (or NEEDS_ATTENTION when a
    compensation failed) with the failed step and its error."""
    failed_step, failed_entries = _failure(step)
    error = _error_of(step.errors.get(failed_entries[0], {}) if failed_entries else {}, default="Unknown")
    status = BookingStatus.NEEDS_ATTENTION if _failed_compensations(step) else BookingStatus.FAILED
    for failed in failed_entries:
        caught = _error_of(step.errors[failed])
        whole = failed in _entries(step, failed)
        for entry in _entries(step, failed):
            # The saga's verdict, whatever the step's own entry says (a late success
            # included); over every leg of a Map that failed as a whole, only where a leg
            # said nothing itself.
            step_log.mark_ended(step.booking_id, entry, caught["error"], caught["cause"], only_if_unfinished=not whole)
    _record_ended_tasks(step, except_for=failed_step)
    try:
        updated = booking_record.mark_failed(step.booking_id, status, failed_step=failed_step, error=error)
    except ConditionFailed as exc:
        if not _already(exc, status):
            return _moved_on(exc, failed_step, error)
        updated = exc.item or {}
    _dead_letter_failed_compensations(step)
    if not step.result_of(AUTHORIZE_PAYMENT):  # (after an authorisation the request is decided)
        payments.withdraw_request(step.booking_id)  # failed before AuthorizePayment: no token is kept
    logger.info("booking failed", extra={"status": status, "failed_step": failed_step, "error": error["error"]})
    observability.booking_failed(failed_step or "unknown", observability.milliseconds_since(updated.get("created_at")))
    return _outcome(status, failed_step, error)


def _outcome(status: str | None, failed_step: str | None, error: dict[str, str]) -> dict[str, Any]:
    # The Fail state reports this error; names starting "States." are reserved there.
    return {"status": status, "failed_step": failed_step, **error, "fail_error": error["error"].removeprefix("States.")}


def _already(exc: ConditionFailed, status: BookingStatus) -> bool:
    """A replay of this very write (the Lambda ran twice): finish its work."""
    return (exc.item or {}).get("status") == status


def _moved_on(exc: ConditionFailed, failed_step: str | None, error: dict[str, str]) -> dict[str, Any]:
    """The booking left PENDING without this saga (a confirmation that committed and was
    then cancelled, say): a late writer overwrites nothing."""
    current = (exc.item or {}).get("status")
    logger.warning("booking already moved on; not overwritten", extra={"status": current})
    return _outcome(current, failed_step, error)


def record_capture_failure(step: StepInput) -> dict[str, Any]:
    """CapturePayment failed after its retries, after the pivot: the booking stays CONFIRMED
    with its tickets (the customer is not at fault). The payment becomes CAPTURE_FAILED and
    a dead letter asks an operator to recover (capture again); nothing is compensated. A
    capture that landed after all (it timed out after its work), or an authorisation a
    cancellation released meanwhile, leaves nothing to record."""
    error = _error_of(step.errors.get(CAPTURE_PAYMENT.name, {}), default="Unknown")
    step_log.mark_ended(step.booking_id, CAPTURE_PAYMENT.name, error["error"], error["cause"])
    if not payments.mark_capture_failed(step.booking_id, error):
        logger.warning("capture failure not recorded: the payment moved on")
        return {"status": None, **error}
    dead_letters.record(step.booking_id, CAPTURE_PAYMENT.name, **error, correlation_id=step.correlation_id,
                        flight_number=step.flight_number)
    observability.capture_failed()
    return {"status": PaymentStatus.CAPTURE_FAILED, **error}


def record_cancellation(step: StepInput) -> dict[str, Any]:
    _record_ended_tasks(step)
    status = BookingStatus.NEEDS_ATTENTION if _failed_compensations(step) else BookingStatus.CANCELLED
    try:
        booking_record.mark_cancelled(step.booking_id, status)
    except ConditionFailed as exc:
        if not _already(exc, status):
            raise
    _dead_letter_failed_compensations(step)
    logger.info("booking cancelled", extra={"status": status})
    if status == BookingStatus.CANCELLED:
        observability.booking_cancelled()
    return {"status": status}
