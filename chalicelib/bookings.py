"""The bookings service: forward step ConfirmBooking (the saga's pivot: the seat is sold,
the ticket and boarding pass issued) and CancelBooking, which settles the pivot when its
outcome is unknown.

ConfirmBooking is one transaction across the seat, the booking and its own step-log
entry; the parts come from the modules that own those records. Once it has committed, a
booking is never taken back by the booking saga: CancelBooking asks whether it did, and
only when it did not does the saga compensate the earlier steps.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from chalicelib import booking_record, db, observability, seats, step_log
from chalicelib.errors import AlreadyCompensated, ConditionFailed, SeatHoldLost
from chalicelib.logs import logger
from chalicelib.models import StepInput, boarding_group
from chalicelib.vocabulary import CANCEL_BOOKING, CONFIRM_BOOKING

# What this service's Lambdas do to which table: their IAM roles (deploy/resources.py).
TABLE_ACCESS = {
    CONFIRM_BOOKING: {"bookings": ("BatchGetItem", "UpdateItem"), "flights": ("BatchGetItem",),
                      "seats": ("UpdateItem",)},
    CANCEL_BOOKING: {"bookings": ("UpdateItem",)},
}

TICKET_PREFIX = "176"  # the airline's accounting code, the first three digits of a ticket


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


def _confirmation_of(booking: dict[str, Any]) -> dict[str, Any]:
    return {"ticket_number": booking.get("ticket_number"), "boarding_pass": booking.get("boarding_pass")}


def _committed(booking: dict[str, Any]) -> bool:
    """A confirmation committed, ever (the booking may be cancelled since)."""
    return "confirmed_at" in booking


# --- ConfirmBooking ------------------------------------------------------------------------
def confirm_booking(step: StepInput) -> dict[str, Any]:
    """Turn the hold into a sale and issue the ticket and boarding pass, atomically."""
    # The passenger (for the boarding pass) is on the booking only, never in the
    # execution's input; the booking and the flight come in one request.
    read = db.get_many(booking=booking_record.read(step.booking_id), flight=seats.flight_read(step.flight_number))
    booking = booking_record.existing(read["booking"], step.booking_id)
    if _committed(booking):  # a retry after the commit: the same answer
        return _confirmation_of(booking)
    flight = seats.existing_flight(read["flight"], step.flight_number)
    ticket = ticket_number(step.booking_id)
    card = boarding_pass(booking, flight, ticket)
    confirmation = {"ticket_number": ticket, "boarding_pass": card}
    try:
        # The step's own outcome in the same transaction (step_log.transact): nobody can
        # read the booking CONFIRMED while its ConfirmBooking entry says otherwise.
        step_log.transact(
            confirmation,
            seat=seats.sale(step.flight_number, booking["seat"], step.booking_id),
            booking=booking_record.confirmation(step.booking_id, ticket=ticket, boarding_pass=card),
        )
    except ConditionFailed as exc:
        if exc.failed_on("seat"):
            raise SeatHoldLost(f"seat {booking['seat']} is no longer held for this booking") from exc
        current = exc.current_of("booking") or {}
        if _committed(current):  # a concurrent duplicate confirmed it
            return _confirmation_of(current)
        raise AlreadyCompensated(f"the booking is {current.get('status')}; CancelBooking ran first") from exc
    logger.info("booking confirmed", extra={"ticket_number": ticket, "seat": booking["seat"]})
    observability.booking_confirmed(observability.milliseconds_since(booking.get("created_at")))
    return confirmation


# --- CancelBooking -------------------------------------------------------------------------
def cancel_booking(step: StepInput) -> dict[str, Any]:
    """Settle the pivot. ConfirmBooking timed out or crashed, so whether it committed is
    unknown: ask the booking, in one conditional write. Committed: the confirmation
    stands (``confirmed``; the saga goes forward, nothing is compensated). Not: the
    marker that makes a late confirmation refuse is written, and the saga compensates the
    steps before it."""
    try:
        booking_record.bar_confirmation(step.booking_id)
    except ConditionFailed as exc:
        logger.warning("the confirmation had committed: it stands")
        return {"confirmed": True, **_confirmation_of(exc.item or {})}
    logger.info("no confirmation committed; a late one is barred")
    return {"confirmed": False, "detail": "not confirmed; a late confirmation is refused"}
