"""``GET /bookings/{id}``: the booking as the API shows it, with its payment and its
step log. Reads only: the booking item (status, payment, outcome; its payment as the
payments service noted it there) and one Query of the booking's step-log partition.
What it shows of a status is decided here, not stored."""

from __future__ import annotations

from typing import Any

from chalicelib import booking_record, payments, step_log
from chalicelib.models import CURRENCY
from chalicelib.vocabulary import (
    AFTER_PIVOT,
    BOOKING_STEPS,
    COMPENSATION_NAMES,
    BookingStatus,
    PaymentStatus,
    StepStatus,
)


def _entry_view(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    view = {
        "name": name,
        "status": entry.get("status", StepStatus.NOT_STARTED),
        "started_at": entry.get("started_at"),
        "finished_at": entry.get("finished_at"),
        "attempts": entry.get("attempts", 0),
    }
    if entry.get("error"):
        view["error"] = entry["error"]
    if entry.get("result") is not None:
        view["result"] = entry["result"]
    return view


def _steps(log: dict[str, dict[str, Any]], booking: dict[str, Any]) -> list[dict[str, Any]]:
    """Every forward step in saga order, those after the pivot last; a conditional step
    that cannot run is SKIPPED."""
    entries = []
    for step in BOOKING_STEPS:
        skipped = step.runs_if_positive is not None and not booking.get(step.runs_if_positive)
        default = StepStatus.SKIPPED if skipped else StepStatus.NOT_STARTED
        entries.append(_entry_view(step.name, log.get(step.name) or {"status": default}))
    not_started = {"status": StepStatus.NOT_STARTED}
    entries += [_entry_view(step.name, log.get(step.name) or not_started) for step in AFTER_PIVOT]
    return entries


def _compensations(log: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The compensations that ran, in the order they started."""
    entries = [_entry_view(name, log[name]) for name in COMPENSATION_NAMES if name in log]
    entries.sort(key=lambda item: item["started_at"] or "")
    for order, entry in enumerate(entries, start=1):
        entry["order"] = order
    return entries


def payment_of(booking: dict[str, Any]) -> dict[str, Any]:
    """What the customer sees of the booking's payment: the note on the booking. A booking
    written before the note existed has none: its payment record is read instead."""
    note = booking.get("payment")
    return dict(note) if note is not None else payments.seen(payments.get_payment(booking["booking_id"]))


def view(booking_id: str, *, booking: dict[str, Any] | None = None) -> dict[str, Any]:
    """The booking (``booking``: its item, when the caller has already read it)."""
    booking = booking or booking_record.get(booking_id)
    log = step_log.read(booking_id)
    payment = payment_of(booking)
    status = booking["status"]
    confirmed = status == BookingStatus.CONFIRMED
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
        "currency": booking.get("currency", CURRENCY),
        "amount_paid": payment["amount"] if payment["status"] == PaymentStatus.CAPTURED else 0,
        "payment": {"status": payment["status"], "amount": payment["amount"]},
        "steps": _steps(log[step_log.STEPS], booking),
        "compensations": _compensations(log[step_log.COMPENSATIONS]),
        "failed_step": booking.get("failed_step") if status == BookingStatus.FAILED else None,
        "error": booking.get("error"),
        "ticket_number": booking.get("ticket_number") if confirmed else None,
        "boarding_pass": booking.get("boarding_pass") if confirmed else None,
        "created_at": booking["created_at"],
        "updated_at": booking["updated_at"],
    }
    if status == BookingStatus.NEEDS_ATTENTION:
        result["needs_attention"] = {
            "failed_step": booking.get("failed_step"),
            "failed_compensations": [
                entry["name"] for entry in result["compensations"]
                if entry["status"] in (StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.RUNNING)
            ],
        }
    return result
