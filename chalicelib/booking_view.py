"""``GET /bookings/{id}``: the booking as the API shows it, with its payment and its
step log. Reads only: the booking item (status, payment, outcome; its payment as the
payments service noted it there) and one Query of the booking's step-log partition.
What it shows of a status is decided here, not stored.

``GET /bookings``: the customer's bookings, newest first, a page at a time, each a
summary read from the by_customer index alone (chalicelib/schema.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib import booking_record, clock, payments, step_log
from chalicelib.models import CURRENCY, MONEY_FIELDS
from chalicelib.validation import next_token
from chalicelib.vocabulary import (
    AFTER_PIVOT,
    BOOKING_STEPS,
    COMPENSATION_NAMES,
    BookingStatus,
    PaymentStatus,
    StepStatus,
)

# Keys of times in what the steps return (a result, the boarding pass in it), besides any
# `*_at`: ReserveSeat's hold expiry is epoch seconds, a boarding pass's times are ISO.
_TIME_KEYS = ("hold_expires_at", "departure", "boarding_time")


def _time(value: Any) -> str | None:
    return clock.api_time(value) if value is not None else None


def _shown(value: Any, currency: str) -> Any:
    """What a step returned (its result, at any depth) as the API shows it: its times in
    the API's format, and the currency next to any amount of money. The step log keeps
    what the step returned."""
    if isinstance(value, list):
        return [_shown(item, currency) for item in value]
    if not isinstance(value, dict):
        return value
    shown = {key: _time(item) if key in _TIME_KEYS or key.endswith("_at") else _shown(item, currency)
             for key, item in value.items()}
    if any(isinstance(shown.get(key), int) for key in MONEY_FIELDS):
        shown.setdefault("currency", currency)
    return shown


def _entry_view(name: str, entry: dict[str, Any], currency: str) -> dict[str, Any]:
    view = {
        "name": name,
        "status": entry.get("status", StepStatus.NOT_STARTED),
        "started_at": _time(entry.get("started_at")),
        "finished_at": _time(entry.get("finished_at")),
        "attempts": entry.get("attempts", 0),
    }
    if entry.get("error"):
        view["error"] = entry["error"]
    if entry.get("result") is not None:
        view["result"] = _shown(entry["result"], currency)
    return view


def _steps(log: dict[str, dict[str, Any]], booking: dict[str, Any], currency: str) -> list[dict[str, Any]]:
    """Every forward step in saga order, those after the pivot last; a conditional step
    that cannot run is SKIPPED."""
    entries = []
    for step in BOOKING_STEPS:
        skipped = step.runs_if_positive is not None and not booking.get(step.runs_if_positive)
        default = StepStatus.SKIPPED if skipped else StepStatus.NOT_STARTED
        entries.append(_entry_view(step.name, log.get(step.name) or {"status": default}, currency))
    not_started = {"status": StepStatus.NOT_STARTED}
    entries += [_entry_view(step.name, log.get(step.name) or not_started, currency) for step in AFTER_PIVOT]
    return entries


def _compensations(log: dict[str, dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    """The compensations that ran, in the order they started (by the stored time, finer
    than the one shown)."""
    ran = sorted((name for name in COMPENSATION_NAMES if name in log),
                 key=lambda name: log[name].get("started_at") or "")
    entries = [_entry_view(name, log[name], currency) for name in ran]
    for order, entry in enumerate(entries, start=1):
        entry["order"] = order
    return entries


def payment_of(booking: dict[str, Any]) -> dict[str, Any]:
    """What the customer sees of the booking's payment: the note on the booking. A booking
    written before the note existed has none: its payment record is read instead."""
    note = booking.get("payment")
    return dict(note) if note is not None else payments.seen(payments.get_payment(booking["booking_id"]))


def amount_paid(payment: dict[str, Any]) -> int:
    """What the customer has paid and not been refunded, from what they see of the payment."""
    return int(payment["amount"]) if payment["status"] == PaymentStatus.CAPTURED else 0


def summary(booking: dict[str, Any], href: str) -> dict[str, Any]:
    """One line of GET /bookings, from the booking as the by_customer index projects it
    (``BOOKINGS_BY_CUSTOMER.projected``: nothing else is read); ``href`` is the booking."""
    return {
        "booking_id": booking["booking_id"],
        "status": booking["status"],
        "flight_number": booking["flight_number"],
        "seat": booking.get("seat"),
        "cabin": booking.get("cabin"),
        "fare": booking.get("fare"),
        "amount_paid": amount_paid(payment_of(booking)),
        "currency": booking.get("currency", CURRENCY),
        "created_at": clock.api_time(booking["created_at"]),
        "updated_at": clock.api_time(booking["updated_at"]),
        "href": href,
    }


def listing(customer_id: str, *, limit: int, after: tuple[str, str] | None,
            href: Callable[[str], str]) -> dict[str, Any]:
    """A page of the customer's bookings, newest first, and the ``next_token`` of the page
    after it (null on the last page). One Query of the index: it asks for one booking more
    than the page holds, so the last page is known as such (no empty page after it)."""
    found = booking_record.list_owned(customer_id, limit=limit + 1, after=after)
    page = found[:limit]
    token = None
    if len(found) > limit:
        last = page[-1]
        token = next_token(customer_id, last["created_at"], last["booking_id"])
    return {"bookings": [summary(booking, href(booking["booking_id"])) for booking in page], "next_token": token}


def view(booking_id: str, *, booking: dict[str, Any] | None = None) -> dict[str, Any]:
    """The booking (``booking``: its item, when the caller has already read it)."""
    booking = booking or booking_record.get(booking_id)
    log = step_log.read(booking_id)
    payment = payment_of(booking)
    status = booking["status"]
    confirmed = status == BookingStatus.CONFIRMED
    currency = booking.get("currency", CURRENCY)
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
        "currency": currency,
        "amount_paid": amount_paid(payment),
        "payment": {"status": payment["status"], "amount": payment["amount"], "currency": currency},
        "steps": _steps(log[step_log.STEPS], booking, currency),
        "compensations": _compensations(log[step_log.COMPENSATIONS], currency),
        "failed_step": booking.get("failed_step") if status == BookingStatus.FAILED else None,
        "error": booking.get("error"),
        "ticket_number": booking.get("ticket_number") if confirmed else None,
        "boarding_pass": _shown(booking.get("boarding_pass"), currency) if confirmed else None,
        "created_at": clock.api_time(booking["created_at"]),
        "updated_at": clock.api_time(booking["updated_at"]),
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
