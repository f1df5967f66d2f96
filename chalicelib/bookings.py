"""The bookings service: forward step ConfirmBooking (the saga's pivot: the seat is sold,
the ticket and boarding pass issued) and its compensation CancelBooking.

Each is one transaction across the seat, the booking and (for the pivot) its own
step-log entry; the parts come from the modules that own those records.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from chalicelib import booking_record, db, observability, seats, step_log
from chalicelib.errors import AlreadyCompensated, ConditionFailed, SeatHoldLost
from chalicelib.logs import logger
from chalicelib.models import StepInput, boarding_group
from chalicelib.vocabulary import CANCEL_BOOKING, CONFIRM_BOOKING, BookingStatus

# The tables each of this service's Lambda functions touches, and how (DynamoDB
# actions; a transaction needs the action of each part). deploy/resources.py turns this
# into each function's IAM role; the deploy rehearsal fails on a call not listed here.
TABLE_ACCESS = {
    CONFIRM_BOOKING: {"bookings": ("GetItem", "UpdateItem"), "flights": ("GetItem",), "seats": ("UpdateItem",)},
    CANCEL_BOOKING: {"bookings": ("GetItem", "UpdateItem"), "seats": ("UpdateItem",)},
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
    return {"ticket_number": booking["ticket_number"], "boarding_pass": booking["boarding_pass"]}


# --- ConfirmBooking ------------------------------------------------------------------------
def confirm_booking(step: StepInput) -> dict[str, Any]:
    """Turn the hold into a sale and issue the ticket and boarding pass, atomically."""
    booking = booking_record.get(step.booking_id)
    if booking["status"] == BookingStatus.CONFIRMED:
        return _confirmation_of(booking)
    flight = seats.get_flight(step.flight_number)
    ticket = ticket_number(step.booking_id)
    card = boarding_pass(booking, flight, ticket)
    confirmation = {"ticket_number": ticket, "boarding_pass": card}
    try:
        db.transact(
            seat=seats.sale(step.flight_number, booking["seat"], step.booking_id),
            booking=booking_record.confirmation(step.booking_id, ticket=ticket, boarding_pass=card),
            # The step's own outcome in the same transaction: nobody can read the booking
            # CONFIRMED while its ConfirmBooking step still says RUNNING.
            step_log=step_log.finished(step.booking_id, CONFIRM_BOOKING.name, confirmation),
        )
    except ConditionFailed as exc:
        if exc.failed_on("seat"):
            raise SeatHoldLost(f"seat {booking['seat']} is no longer held for this booking") from exc
        current = exc.current_of("booking") or {}
        if current.get("status") == BookingStatus.CONFIRMED:  # a concurrent duplicate confirmed it
            return _confirmation_of(current)
        raise AlreadyCompensated(f"the booking is {current.get('status')}; CancelBooking ran first") from exc
    logger.info("booking confirmed", extra={"ticket_number": ticket, "seat": booking["seat"]})
    observability.booking_confirmed(observability.milliseconds_since(booking.get("created_at")))
    return confirmation


# --- CancelBooking -------------------------------------------------------------------------
def cancel_booking(step: StepInput) -> dict[str, Any]:
    """Undo ConfirmBooking: the sale goes back to a hold and the ticket is voided."""
    booking = booking_record.get(step.booking_id)
    if booking["status"] != BookingStatus.CONFIRMED:
        try:
            booking_record.mark_confirmation_cancelled(step.booking_id)
            return {"detail": "nothing to undo: the booking was not confirmed"}
        except ConditionFailed:
            booking = booking_record.get(step.booking_id)  # confirmed just now: undo it
    db.transact(
        seat=seats.unsale(step.flight_number, booking["seat"], step.booking_id),
        booking=booking_record.unconfirmation(step.booking_id),
    )
    logger.info("confirmation undone", extra={"ticket_number": booking["ticket_number"]})
    return {"voided_ticket_number": booking["ticket_number"]}
