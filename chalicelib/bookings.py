"""The bookings service: the booking record, which is also the saga's log.

It owns creating a booking (with its Idempotency-Key), the step log every saga Lambda
writes (RUNNING, then SUCCEEDED / COMPENSATED / FAILED), the forward step
ConfirmBooking and its compensation CancelBooking, and the terminal bookkeeping
(RecordFailure, RecordCancellation, dead letters for compensations that failed).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from chalicelib import clock, db, loyalty, observability, payments, seats
from chalicelib.errors import AlreadyCompensated, Conflict, NotFound, SeatHoldLost
from chalicelib.logs import logger
from chalicelib.models import (
    COMPENSATIONS,
    FORWARD_STEPS,
    BookingRequest,
    StepInput,
    boarding_group,
)

TICKET_PREFIX = "176"  # the airline's accounting code, the first three digits of a ticket
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
STEP_LOGS = ("steps", "compensations")
_STATUS = {"#status": "status"}


def new_booking_id() -> str:
    return str(uuid.uuid4())


def request_fingerprint(request: BookingRequest) -> str:
    """What an Idempotency-Key is bound to. The token is hashed in, never stored."""
    body = json.dumps({**request.canonical(), "card_token": request.card_token}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


# --- Creating a booking ---------------------------------------------------------------
def check_bookable(request: BookingRequest) -> None:
    """Refuse up front what would only fail later: unknown flight or account, taken seat."""
    seats.get_flight(request.flight_number)
    if request.loyalty_id and not loyalty.account_exists(request.loyalty_id):
        raise NotFound(f"loyalty account {request.loyalty_id} does not exist", field="loyalty_id")
    if request.seat and not seats.seat_is_takeable(request.flight_number, request.seat):
        raise Conflict(f"seat {request.seat} on {request.flight_number} is already taken", field="seat")


def create_booking(
    request: BookingRequest, *, correlation_id: str | None, idempotency_key: str | None,
) -> tuple[dict[str, Any], bool]:
    """Write a PENDING booking; returns (booking, created). A repeated Idempotency-Key
    with the same body returns the first booking and ``created=False``."""
    booking_id = new_booking_id()
    now = clock.now_iso()
    booking = {
        **db.booking_key(booking_id),
        "correlation_id": correlation_id or booking_id,
        "status": "PENDING",
        "flight_number": request.flight_number,
        "requested_seat": request.seat,
        "requested_cabin": request.requested_cabin,
        "cabin": request.requested_cabin,
        "passenger": {key: value for key, value in vars(request.passenger).items() if value is not None},
        "loyalty_id": request.loyalty_id,
        "points_to_redeem": request.points_to_redeem,
        "simulate_failure": request.simulate_failure,
        "created_at": now,
        "updated_at": now,
    }
    booking = {key: value for key, value in booking.items() if value is not None}
    operations: list[dict[str, Any]] = [{"Put": {
        "table": "bookings", "Item": booking, "ConditionExpression": "attribute_not_exists(booking_id)",
    }}]
    if idempotency_key:
        operations.append({"Put": {
            "table": "idempotency",
            "Item": {
                **db.idempotency_key(idempotency_key),
                "booking_id": booking_id,
                "fingerprint": request_fingerprint(request),
                "expires_at": clock.now_epoch() + IDEMPOTENCY_TTL_SECONDS,
            },
            "ConditionExpression": "attribute_not_exists(idempotency_key)",
        }})
    try:
        db.transact(operations)
    except db.ConditionFailed as exc:
        if idempotency_key and exc.failed[-1]:
            return _replay(request, idempotency_key, exc.items[-1]), False
        raise
    logger.info("booking created", extra={"booking_id": booking_id, "correlation_id": booking["correlation_id"]})
    return booking, True


def known_booking(request: BookingRequest, idempotency_key: str | None) -> dict[str, Any] | None:
    """The booking an Idempotency-Key already created (same body), else None; Conflict
    when the key was used with another body. Checked before anything else: the seat the
    first request asked for is, by now, rightly taken by that very booking."""
    if not idempotency_key:
        return None
    record = db.get("idempotency", db.idempotency_key(idempotency_key))
    return _replay(request, idempotency_key, record) if record else None


def _replay(request: BookingRequest, key: str, record: dict[str, Any] | None) -> dict[str, Any]:
    record = record or db.get("idempotency", db.idempotency_key(key)) or {}
    if record.get("fingerprint") != request_fingerprint(request):
        raise Conflict("this Idempotency-Key was used with a different request body", field="Idempotency-Key")
    return get_booking(record["booking_id"])


def execution_input(booking: dict[str, Any], request: BookingRequest) -> dict[str, Any]:
    """The state machine's input. The passenger stays out of it (and out of the
    execution history); ConfirmBooking reads it from the booking."""
    return {
        "booking_id": booking["booking_id"],
        "correlation_id": booking["correlation_id"],
        "flight_number": request.flight_number,
        "seat": request.seat,
        "cabin": request.requested_cabin,
        "loyalty_id": request.loyalty_id,
        "points_to_redeem": request.points_to_redeem,
        "payment": {"card_token": request.card_token},
        "simulate_failure": request.simulate_failure,
    }


def get_booking(booking_id: str) -> dict[str, Any]:
    booking = db.get("bookings", db.booking_key(booking_id))
    if booking is None:
        raise NotFound(f"booking {booking_id} does not exist", field="booking_id")
    return booking


def mark_not_started(booking_id: str, reason: str) -> None:
    """The execution could not be started: the booking must not stay PENDING forever."""
    db.update(
        "bookings", db.booking_key(booking_id),
        "SET #status = :failed, #error = :error, updated_at = :now",
        names={**_STATUS, "#error": "error"},
        values={":failed": "FAILED", ":error": {"error": "ExecutionNotStarted", "cause": reason},
                ":now": clock.now_iso()},
    )


# --- The step log ---------------------------------------------------------------------
_LOG_NAMES = {**_STATUS, "#error": "error"}


def mark_running(booking_id: str, log: str, name: str) -> int:
    """Record an attempt of a step; returns the attempt number (1 for the first)."""
    now = clock.now_iso()
    updated = db.update(
        "step_log",
        db.step_log_key(booking_id, log, name),
        "SET #status = :running, started_at = if_not_exists(started_at, :now), attempt_started_at = :now "
        "ADD attempts :one REMOVE finished_at, #error",
        names=_LOG_NAMES,
        values={":running": "RUNNING", ":now": now, ":one": 1},
        returning="UPDATED_NEW",  # just the attempt count
    )
    return int(updated["attempts"])


def mark_finished(booking_id: str, log: str, name: str, status: str, result: dict[str, Any]) -> bool:
    """Record success. Returns False when the saga already gave up on this attempt
    (it timed out and RecordFailure marked it FAILED): the late result is not kept."""
    try:
        db.update(
            "step_log",
            db.step_log_key(booking_id, log, name),
            "SET #status = :status, finished_at = :now, #result = :result",
            # RUNNING, or already this outcome (ConfirmBooking records its own atomically).
            condition="#status = :running OR #status = :status",
            names={**_STATUS, "#result": "result"},
            values={":status": status, ":now": clock.now_iso(), ":result": result, ":running": "RUNNING"},
            returning="NONE",
        )
    except db.ConditionFailed:
        logger.warning("step finished after the saga moved on; its result is not recorded")
        return False
    return True


def mark_failed(booking_id: str, log: str, name: str, error: str, cause: str) -> None:
    db.update(
        "step_log",
        db.step_log_key(booking_id, log, name),
        "SET #status = :failed, finished_at = :now, #error = :error",
        names=_LOG_NAMES,
        values={":failed": "FAILED", ":now": clock.now_iso(), ":error": {"error": error, "cause": cause}},
        returning="NONE",
    )


def step_log(booking_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"steps": {name: entry}, "compensations": {name: entry}}``, in one Query."""
    log: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in STEP_LOGS}
    for item in db.query("step_log", KeyConditionExpression="booking_id = :id",
                         ExpressionAttributeValues={":id": booking_id}):
        kind, name = item["entry"].split("#", 1)
        log.setdefault(kind, {})[name] = item
    return log


# --- ConfirmBooking / CancelBooking -------------------------------------------------------
def ticket_number(booking_id: str) -> str:
    """Derived from the booking id, so a replayed confirmation issues the same ticket."""
    digits = int(hashlib.sha256(booking_id.encode()).hexdigest(), 16) % 10**10
    return f"{TICKET_PREFIX}{digits:010d}"


def boarding_pass(booking: dict[str, Any], flight: dict[str, Any], ticket: str) -> dict[str, Any]:
    departure = datetime.fromisoformat(flight["departure"].replace("Z", "+00:00"))
    passenger = booking["passenger"]
    return {
        "passenger": f"{passenger['last_name'].upper()}/{passenger['first_name'].upper()}",
        "flight_number": flight["flight_number"],
        "origin": flight["origin"],
        "destination": flight["destination"],
        "departure": flight["departure"],
        "boarding_time": (departure - timedelta(minutes=40)).isoformat().replace("+00:00", "Z"),
        "seat": booking["seat"],
        "cabin": booking["cabin"],
        "boarding_group": boarding_group(booking["seat"]),
        "ticket_number": ticket,
        "booking_id": booking["booking_id"],
    }


def confirm_booking(step: StepInput) -> dict[str, Any]:
    """Turn the hold into a sale and issue the ticket and boarding pass, atomically."""
    booking = get_booking(step.booking_id)
    if booking["status"] == "CONFIRMED":
        return {"ticket_number": booking["ticket_number"], "boarding_pass": booking["boarding_pass"]}
    flight = seats.get_flight(step.flight_number)
    ticket = ticket_number(step.booking_id)
    card = boarding_pass(booking, flight, ticket)
    try:
        db.transact([
            {"Update": {
                "table": "seats",
                "Key": db.seat_key(step.flight_number, booking["seat"]),
                "UpdateExpression": "SET #status = :booked REMOVE hold_expires_at",
                # Our hold, even if expired, as long as nobody else took the seat.
                "ConditionExpression": "booking_id = :booking",
                "ExpressionAttributeNames": _STATUS,
                "ExpressionAttributeValues": {":booked": "BOOKED", ":booking": step.booking_id},
            }},
            {"Update": {
                "table": "bookings",
                "Key": db.booking_key(step.booking_id),
                "UpdateExpression": "SET #status = :confirmed, ticket_number = :ticket, boarding_pass = :card, "
                                    "confirmed_at = :now, updated_at = :now",
                # CancelBooking leaves a marker when it finds nothing to undo: a
                # confirmation arriving after it (late, timed out) is refused.
                "ConditionExpression": "#status = :pending AND attribute_not_exists(confirmation_cancelled_at)",
                "ExpressionAttributeNames": _STATUS,
                "ExpressionAttributeValues": {
                    ":confirmed": "CONFIRMED", ":pending": "PENDING", ":ticket": ticket, ":card": card,
                    ":now": clock.now_iso(),
                },
            }},
            # The step's own outcome in the same transaction: nobody can read the booking
            # CONFIRMED while its ConfirmBooking step still says RUNNING.
            {"Update": {
                "table": "step_log",
                "Key": db.step_log_key(step.booking_id, "steps", "ConfirmBooking"),
                "UpdateExpression": "SET #status = :succeeded, finished_at = :now, #result = :result",
                "ExpressionAttributeNames": {**_STATUS, "#result": "result"},
                "ExpressionAttributeValues": {":succeeded": "SUCCEEDED", ":now": clock.now_iso(),
                                              ":result": {"ticket_number": ticket, "boarding_pass": card}},
            }},
        ])
    except db.ConditionFailed as exc:
        if exc.failed[0]:
            raise SeatHoldLost(f"seat {booking['seat']} is no longer held for this booking") from exc
        current = exc.items[1] or {}
        if current.get("status") == "CONFIRMED":  # a concurrent duplicate confirmed it
            return {"ticket_number": current["ticket_number"], "boarding_pass": current["boarding_pass"]}
        raise AlreadyCompensated(f"the booking is {current.get('status')}; CancelBooking ran first") from exc
    logger.info("booking confirmed", extra={"ticket_number": ticket, "seat": booking["seat"]})
    observability.booking_confirmed(observability.milliseconds_since(booking.get("created_at")))
    return {"ticket_number": ticket, "boarding_pass": card}


def cancel_booking(step: StepInput) -> dict[str, Any]:
    """Undo ConfirmBooking: the sale goes back to a hold and the ticket is voided."""
    booking = get_booking(step.booking_id)
    if booking["status"] != "CONFIRMED":
        try:
            db.update(
                "bookings", db.booking_key(step.booking_id),
                "SET confirmation_cancelled_at = if_not_exists(confirmation_cancelled_at, :now)",
                condition="#status <> :confirmed", names=_STATUS,
                values={":now": clock.now_iso(), ":confirmed": "CONFIRMED"},
            )
            return {"detail": "nothing to undo: the booking was not confirmed"}
        except db.ConditionFailed:
            booking = get_booking(step.booking_id)  # confirmed just now: undo it
    db.transact([
        {"Update": {
            "table": "seats",
            "Key": db.seat_key(step.flight_number, booking["seat"]),
            "UpdateExpression": "SET #status = :held, hold_expires_at = :now_epoch",
            "ConditionExpression": "booking_id = :booking AND #status = :booked",
            "ExpressionAttributeNames": _STATUS,
            "ExpressionAttributeValues": {
                ":held": "HELD", ":booked": "BOOKED", ":booking": step.booking_id, ":now_epoch": clock.now_epoch(),
            },
        }},
        {"Update": {
            "table": "bookings",
            "Key": db.booking_key(step.booking_id),
            "UpdateExpression": "SET #status = :pending, voided_ticket_number = ticket_number, updated_at = :now, "
                                "confirmation_cancelled_at = :now REMOVE ticket_number, boarding_pass, confirmed_at",
            "ConditionExpression": "#status = :confirmed",
            "ExpressionAttributeNames": _STATUS,
            "ExpressionAttributeValues": {":pending": "PENDING", ":confirmed": "CONFIRMED", ":now": clock.now_iso()},
        }},
    ])
    logger.info("confirmation undone", extra={"ticket_number": booking["ticket_number"]})
    return {"voided_ticket_number": booking["ticket_number"]}


# --- Terminal bookkeeping -------------------------------------------------------------------
def _failed_compensations(step: StepInput) -> dict[str, dict[str, Any]]:
    return {name: error for name, error in step.errors.items() if name in COMPENSATIONS}


def _dead_letter(step: StepInput, compensation: str, error: dict[str, Any]) -> None:
    """A compensation that failed after its retries is kept for an operator, never lost."""
    now = clock.now_iso()
    db.put("dead_letters", {
        **db.dead_letter_key(step.booking_id, compensation, now),
        "compensation": compensation,
        "correlation_id": step.correlation_id,
        "flight_number": step.flight_number,
        "error": str(error.get("Error", "")),
        "cause": readable_cause(error.get("Cause")),
        "at": now,
        "state": "OPEN",
    })
    logger.error("compensation failed after retries; dead-lettered", extra={"compensation": compensation})


def readable_cause(cause: Any) -> str:
    """A Lambda error's Cause is its error payload as JSON; keep the message."""
    try:
        payload = json.loads(cause)
    except (TypeError, ValueError):
        return str(cause or "")[:4000]
    if isinstance(payload, dict) and "errorMessage" in payload:
        return str(payload["errorMessage"])[:4000]
    return str(cause)[:4000]


def record_failure(step: StepInput) -> dict[str, Any]:
    """The compensations have run: mark the booking FAILED (or NEEDS_ATTENTION when a
    compensation failed) with the failed step and its error."""
    failed_step = next((name for name in FORWARD_STEPS if name in step.errors), None)
    failure = step.errors.get(failed_step or "", {})
    error = {"error": str(failure.get("Error", "Unknown")), "cause": readable_cause(failure.get("Cause"))}
    broken = _failed_compensations(step)
    for compensation, compensation_error in broken.items():
        _dead_letter(step, compensation, compensation_error)
    status = "NEEDS_ATTENTION" if broken else "FAILED"
    if failed_step:
        # The failed step's own log entry may still say RUNNING (it timed out).
        mark_failed(step.booking_id, "steps", failed_step, error["error"], error["cause"])
    updated = db.update(
        "bookings", db.booking_key(step.booking_id),
        "SET #status = :status, failed_step = :step, #error = :error, attention_origin = :origin, updated_at = :now",
        names={**_STATUS, "#error": "error"},
        values={":status": status, ":step": failed_step, ":error": error, ":now": clock.now_iso(),
                ":origin": "booking"},
    )
    logger.info("booking failed", extra={"status": status, "failed_step": failed_step, "error": error["error"]})
    observability.booking_failed(failed_step or "unknown", observability.milliseconds_since(updated.get("created_at")))
    # The Fail state reports this error; names starting "States." are reserved there.
    fail_error = error["error"].removeprefix("States.")
    return {"status": status, "failed_step": failed_step, **error, "fail_error": fail_error}


def begin_cancellation(booking_id: str) -> dict[str, Any]:
    """CONFIRMED -> CANCELLING, or Conflict. The condition makes a double cancel impossible."""
    try:
        return db.update(
            "bookings", db.booking_key(booking_id),
            "SET #status = :cancelling, updated_at = :now",
            condition="#status = :confirmed",
            names=_STATUS,
            values={":cancelling": "CANCELLING", ":confirmed": "CONFIRMED", ":now": clock.now_iso()},
        )
    except db.ConditionFailed as exc:
        current = exc.item
        if current is None:
            raise NotFound(f"booking {booking_id} does not exist", field="booking_id") from exc
        raise Conflict(f"only a CONFIRMED booking can be cancelled; this one is {current['status']}") from exc


def cancellation_input(booking: dict[str, Any]) -> dict[str, Any]:
    return {
        "booking_id": booking["booking_id"],
        "correlation_id": booking["correlation_id"],
        "flight_number": booking["flight_number"],
        "seat": booking.get("seat"),
        "cabin": booking.get("cabin"),
        "loyalty_id": booking.get("loyalty_id"),
        "points_to_redeem": booking.get("points_to_redeem", 0),
        "simulate_failure": booking.get("cancel_simulate_failure", {}),
    }


def record_cancellation(step: StepInput) -> dict[str, Any]:
    broken = _failed_compensations(step)
    for compensation, compensation_error in broken.items():
        _dead_letter(step, compensation, compensation_error)
    status = "NEEDS_ATTENTION" if broken else "CANCELLED"
    db.update(
        "bookings", db.booking_key(step.booking_id),
        "SET #status = :status, cancelled_at = :now, updated_at = :now, attention_origin = :origin",
        names=_STATUS, values={":status": status, ":now": clock.now_iso(), ":origin": "cancellation"},
    )
    logger.info("booking cancelled", extra={"status": status})
    if status == "CANCELLED":
        observability.booking_cancelled()
    return {"status": status}


# --- The API's view ------------------------------------------------------------------------
def _entries(log: dict[str, dict[str, Any]], names: tuple[str, ...], *, ran_only: bool,
             skipped: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    entries = []
    for name in names:
        entry = log.get(name) or {"status": "SKIPPED" if name in skipped else "NOT_STARTED"}
        if ran_only and entry.get("status", "NOT_STARTED") == "NOT_STARTED":
            continue
        view = {
            "name": name,
            "status": entry.get("status", "NOT_STARTED"),
            "started_at": entry.get("started_at"),
            "finished_at": entry.get("finished_at"),
            "attempts": entry.get("attempts", 0),
        }
        if entry.get("error"):
            view["error"] = entry["error"]
        if entry.get("result") is not None:
            view["result"] = entry["result"]
        entries.append(view)
    if ran_only:
        entries.sort(key=lambda item: item["started_at"] or "")
        for order, entry in enumerate(entries, start=1):
            entry["order"] = order
    return entries


_PAYMENT_STATUS_VIEW = {"CAPTURED": "CAPTURED", "DECLINED": "DECLINED", "REFUNDED": "REFUNDED", "VOIDED": "NONE"}


def view(booking_id: str) -> dict[str, Any]:
    """``GET /bookings/{id}``: the booking, its payment, its step log."""
    booking = get_booking(booking_id)
    log = step_log(booking_id)
    payment = payments.get_payment(booking_id) or {}
    payment_status = _PAYMENT_STATUS_VIEW.get(payment.get("status", ""), "NONE")
    captured = payment.get("amount", 0) if payment_status in ("CAPTURED", "REFUNDED") else 0
    status = booking["status"]
    result = {
        "booking_id": booking_id,
        "correlation_id": booking["correlation_id"],
        "status": status,
        "flight_number": booking["flight_number"],
        "seat": booking.get("seat"),
        "cabin": booking.get("cabin"),
        "passenger": booking["passenger"],
        "loyalty_id": booking.get("loyalty_id"),
        "points_to_redeem": booking.get("points_to_redeem", 0),
        "fare": booking.get("fare"),
        "currency": booking.get("currency", "USD"),
        "amount_paid": captured if payment_status == "CAPTURED" else 0,
        "payment": {"status": payment_status, "amount": captured},
        "steps": _entries(log["steps"], FORWARD_STEPS, ran_only=False,
                          skipped=("RedeemPoints",) if not booking.get("points_to_redeem") else ()),
        "compensations": _entries(log["compensations"], COMPENSATIONS, ran_only=True),
        "failed_step": booking.get("failed_step") if status == "FAILED" else None,
        "error": booking.get("error"),
        "ticket_number": booking.get("ticket_number") if status == "CONFIRMED" else None,
        "boarding_pass": booking.get("boarding_pass") if status == "CONFIRMED" else None,
        "created_at": booking["created_at"],
        "updated_at": booking["updated_at"],
    }
    if status == "NEEDS_ATTENTION":
        result["needs_attention"] = {
            "failed_step": booking.get("failed_step"),
            "failed_compensations": [
                entry["name"] for entry in result["compensations"] if entry["status"] == "FAILED"
            ],
        }
    return result
