"""The bookings service: forward step ConfirmBooking (the saga's pivot: the seats are
sold, each passenger's ticket and boarding passes issued) and CancelBooking, which settles
the pivot when its outcome is unknown.

ConfirmBooking is one transaction across every seat of every leg, the booking and its own
step-log entry (at most 9 passengers x 4 legs + 2 items, within DynamoDB's 100); the parts
come from the modules that own those records. Once it has committed, a booking is never
taken back by the booking saga: CancelBooking asks whether it did, and only when it did
not does the saga compensate the earlier steps."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from chalicelib import booking_record, db, observability, seats, step_log
from chalicelib.errors import AlreadyCompensated, ConditionFailed, SeatHoldLost
from chalicelib.logs import logger
from chalicelib.models import StepInput, boarding_group, booking_legs, booking_passengers
from chalicelib.vocabulary import CANCEL_BOOKING, CONFIRM_BOOKING

# What this service's Lambdas do to which table: their IAM roles (deploy/resources.py).
TABLE_ACCESS = {
    CONFIRM_BOOKING: {"bookings": ("BatchGetItem", "UpdateItem"), "flights": ("BatchGetItem",),
                      "seats": ("UpdateItem",)},
    CANCEL_BOOKING: {"bookings": ("UpdateItem",)},
}

TICKET_PREFIX = "176"  # the airline's accounting code, the first three digits of a ticket


def ticket_number(booking_id: str, passenger: int = 0) -> str:
    """Derived from the booking id (and the passenger's place in the party), so a replayed
    confirmation issues the same tickets."""
    source = booking_id if passenger == 0 else f"{booking_id}#{passenger}"
    digits = int(hashlib.sha256(source.encode()).hexdigest(), 16) % 10**10
    return f"{TICKET_PREFIX}{digits:010d}"


def boarding_pass(booking_id: str, passenger: dict[str, Any], flight: dict[str, Any], seat: dict[str, Any],
                  ticket: str) -> dict[str, Any]:
    """``passenger``'s boarding pass for ``flight``, in ``seat`` (``{"seat", "cabin"}``)."""
    departure = datetime.fromisoformat(flight["departure"].replace("Z", "+00:00"))
    return {
        "passenger": f"{passenger['last_name'].upper()}/{passenger['first_name'].upper()}",
        "flight_number": flight["flight_number"],
        "origin": flight["origin"],
        "destination": flight["destination"],
        "departure": flight["departure"],
        "boarding_time": (departure - timedelta(minutes=40)).isoformat().replace("+00:00", "Z"),
        "seat": seat["seat"],
        "cabin": seat["cabin"],
        "boarding_group": boarding_group(seat["seat"]),
        "ticket_number": ticket,
        "booking_id": booking_id,
    }


def _confirmation_of(booking: dict[str, Any]) -> dict[str, Any]:
    """What ConfirmBooking returned, from the booking it confirmed: the first passenger's
    ticket and first boarding pass (as a one-seat booking's), and every ticket."""
    passengers = booking_passengers(booking) if booking else []
    first = passengers[0] if passengers else {}
    return {"ticket_number": first.get("ticket_number"), "boarding_pass": (first.get("boarding_passes") or [None])[0],
            "tickets": [passenger.get("ticket_number") for passenger in passengers]}


def _committed(booking: dict[str, Any]) -> bool:
    """A confirmation committed, ever (the booking may be cancelled since)."""
    return "confirmed_at" in booking


def _ticketed(booking: dict[str, Any], flights: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every passenger with their ticket and a boarding pass per leg, in travel order.
    SeatHoldLost when a leg holds no seat for one of them."""
    legs = booking_legs(booking)
    passengers = []
    for index, passenger in enumerate(booking_passengers(booking)):
        ticket = ticket_number(booking["booking_id"], index)
        passes = []
        for leg, flight in zip(legs, flights, strict=True):
            seat = next((item for item in leg.get("seats") or [] if item["passenger"] == index), None)
            if seat is None:
                raise SeatHoldLost(f"no seat is held for passenger {index} on {leg['flight_number']}")
            passes.append(boarding_pass(booking["booking_id"], passenger, flight, seat, ticket))
        passengers.append({**passenger, "ticket_number": ticket, "boarding_passes": passes})
    return passengers


# --- ConfirmBooking ------------------------------------------------------------------------
def confirm_booking(step: StepInput) -> dict[str, Any]:
    """Turn every hold of every leg into a sale and issue each passenger's ticket and
    boarding passes, atomically."""
    # The party (for the boarding passes) is on the booking only, never in the execution's
    # input; the booking and every leg's flight come in one request.
    flight_numbers = [leg["flight_number"] for leg in step.legs] or [step.flight_number]
    read = db.get_many(booking=booking_record.read(step.booking_id),
                       **{f"flight_{index}": seats.flight_read(number) for index, number in enumerate(flight_numbers)})
    booking = booking_record.existing(read["booking"], step.booking_id)
    if _committed(booking):  # a retry after the commit: the same answer
        return _confirmation_of(booking)
    flights = [seats.existing_flight(read[f"flight_{index}"], number) for index, number in enumerate(flight_numbers)]
    passengers = _ticketed(booking, flights)
    sold = [(leg["flight_number"], item["seat"]) for leg in booking_legs(booking) for item in leg["seats"]]
    confirmation = {"ticket_number": passengers[0]["ticket_number"],
                    "boarding_pass": passengers[0]["boarding_passes"][0],
                    "tickets": [passenger["ticket_number"] for passenger in passengers]}
    try:
        # The step's own outcome in the same transaction (step_log.transact): nobody can
        # read the booking CONFIRMED while its ConfirmBooking entry says otherwise.
        step_log.transact(
            confirmation,
            **{f"seat_{index}": seats.sale(flight, seat, step.booking_id) for index, (flight, seat) in enumerate(sold)},
            booking=booking_record.confirmation(step.booking_id, passengers=passengers),
        )
    except ConditionFailed as exc:
        lost = [f"{flight}/{seat}" for index, (flight, seat) in enumerate(sold) if exc.failed_on(f"seat_{index}")]
        if lost:
            raise SeatHoldLost(f"seat(s) {', '.join(lost)} no longer held for this booking") from exc
        current = exc.current_of("booking") or {}
        if _committed(current):  # a concurrent duplicate confirmed it
            return _confirmation_of(current)
        raise AlreadyCompensated(f"the booking is {current.get('status')}; CancelBooking ran first") from exc
    logger.info("booking confirmed", extra={"tickets": confirmation["tickets"], "seats": len(sold)})
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
