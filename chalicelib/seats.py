"""The seats service: flights, seat maps, holds. Forward step ReserveSeat, compensation ReleaseSeat.

A seat item is ``AVAILABLE``, ``HELD`` by a booking until ``hold_expires_at`` (epoch
seconds), or ``BOOKED`` by a booking. Every change is a conditional write, so a seat
held (unexpired) or booked by another booking is never taken.
"""

from __future__ import annotations

import random
from typing import Any

from chalicelib import booking_record, clock, db, step_log
from chalicelib.errors import (
    AlreadyCompensated,
    CabinFull,
    ConditionFailed,
    NotFound,
    SeatHoldLost,
    SeatUnavailable,
)
from chalicelib.logs import logger
from chalicelib.models import (
    BASE_FARES,
    CABINS,
    CURRENCY,
    HOLD_SECONDS,
    StepInput,
    all_seats,
    cabin_of_seat,
    seat_sort_key,
)
from chalicelib.vocabulary import RELEASE_SEAT, RESERVE_SEAT, SeatStatus

# What this service's Lambdas do to which table: their IAM roles (deploy/resources.py).
TABLE_ACCESS = {
    # GetItem on seats: a replay whose hold the refusal did not bring back checks it is still its own.
    RESERVE_SEAT: {"bookings": ("UpdateItem",), "seats": ("GetItem", "Query", "UpdateItem")},
    RELEASE_SEAT: {"bookings": ("UpdateItem",), "seats": ("UpdateItem",)},
}

# A seat can be taken when it is free or its hold has expired.
_TAKEABLE = "(#status = :available OR (#status = :held AND hold_expires_at <= :now))"
_FREE = "SET #status = :available REMOVE booking_id, hold_expires_at, held_at"
_STATUS_NAMES = {"#status": "status"}


def _takeable_values(now: int) -> dict[str, Any]:
    return {":available": SeatStatus.AVAILABLE, ":held": SeatStatus.HELD, ":now": now}


def effective_status(seat: dict[str, Any], now: int) -> str:
    """An expired hold shows as AVAILABLE."""
    if seat["status"] == SeatStatus.HELD and int(seat.get("hold_expires_at", 0)) <= now:
        return SeatStatus.AVAILABLE
    return str(seat["status"])


# --- Reads ------------------------------------------------------------------------
def flight_read(flight_number: str) -> db.Read:
    """The flight, as a part of someone's ``db.get_many``."""
    return db.Read("flights", db.flight_key(flight_number))


def seat_read(flight_number: str, seat: str) -> db.Read:
    return db.Read("seats", db.seat_key(flight_number, seat))


def existing_flight(flight: dict[str, Any] | None, flight_number: str) -> dict[str, Any]:
    """``flight`` as read, or NotFound."""
    if flight is None:
        raise NotFound(f"flight {flight_number} does not exist", field="flight_number")
    return flight


def get_flight(flight_number: str) -> dict[str, Any]:
    return existing_flight(db.get("flights", db.flight_key(flight_number)), flight_number)


def list_flights() -> list[dict[str, Any]]:
    flights = sorted(db.scan("flights"), key=lambda flight: (flight["departure"], flight["flight_number"]))
    return [flight_summary(flight) for flight in flights]


def flight_summary(flight: dict[str, Any], seats: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    seats = seats if seats is not None else seat_map(flight["flight_number"])
    return {
        "flight_number": flight["flight_number"],
        "origin": flight["origin"],
        "destination": flight["destination"],
        "departure": clock.api_time(flight["departure"]),
        "seats_total": len(seats),
        "seats_available": sum(1 for seat in seats if seat["status"] == SeatStatus.AVAILABLE),
    }


def flight_details(flight_number: str) -> dict[str, Any]:
    flight = get_flight(flight_number)
    seats = seat_map(flight_number)
    details = flight_summary(flight, seats)
    details["availability"] = {
        cabin: sum(1 for seat in seats if seat["cabin"] == cabin and seat["status"] == SeatStatus.AVAILABLE)
        for cabin in CABINS
    }
    details["fares"] = {cabin: {"amount": BASE_FARES[cabin], "currency": CURRENCY} for cabin in CABINS}
    return details


def seat_map(flight_number: str, *, status: str | None = None, cabin: str | None = None) -> list[dict[str, Any]]:
    """One Query for the whole flight, front to back, with expired holds shown AVAILABLE."""
    now = clock.now_epoch()
    items = db.query(
        "seats",
        KeyConditionExpression="flight_number = :flight",
        ExpressionAttributeValues={":flight": flight_number},
        ProjectionExpression="seat, cabin, #status, hold_expires_at",
        ExpressionAttributeNames=_STATUS_NAMES,
    )
    seats = [
        {"seat": item["seat"], "cabin": item["cabin"], "status": effective_status(item, now)}
        for item in items
    ]
    seats.sort(key=lambda seat: seat_sort_key(seat["seat"]))
    return [
        seat
        for seat in seats
        if (status is None or seat["status"] == status) and (cabin is None or seat["cabin"] == cabin)
    ]


def is_takeable(seat: dict[str, Any] | None) -> bool:
    """Whether the seat (as read) exists and is free, or held with an expired hold."""
    return seat is not None and effective_status(seat, clock.now_epoch()) == SeatStatus.AVAILABLE


# --- ReserveSeat --------------------------------------------------------------------
def reserve_seat(step: StepInput) -> dict[str, Any]:
    """Hold the requested seat, or any free seat of the requested cabin, for 15 minutes.
    No read first: a replay learns from its own refused transaction that the booking has
    its seat already (the booking's note of it comes back with the refusal)."""
    if step.seat:
        return _hold(step, step.seat)
    return _hold_any_in_cabin(step, step.cabin or "ECONOMY")


def _reservation(seat: str, cabin: str, hold_expires_at: int) -> dict[str, Any]:
    return {
        "seat": seat,
        "cabin": cabin,
        "fare": BASE_FARES[cabin],
        "currency": CURRENCY,
        "hold_expires_at": hold_expires_at,
    }


def _hold(step: StepInput, seat: str) -> dict[str, Any]:
    now = clock.now_epoch()
    cabin = cabin_of_seat(seat)
    reservation = _reservation(seat, cabin, now + HOLD_SECONDS)
    try:
        # The hold, the booking's note of it and the step's outcome land together, so
        # ReleaseSeat can always find the seat even when ReserveSeat timed out after writing.
        step_log.transact(
            reservation,
            seat=db.Update(
                "seats", db.seat_key(step.flight_number, seat),
                "SET #status = :held_new, booking_id = :booking, hold_expires_at = :expires, held_at = :now",
                condition=f"attribute_exists(seat) AND {_TAKEABLE}",
                names=_STATUS_NAMES,
                values={**_takeable_values(now), ":held_new": SeatStatus.HELD, ":booking": step.booking_id,
                        ":expires": reservation["hold_expires_at"]},
            ),
            booking=booking_record.seat_note(step.booking_id, seat=seat, cabin=cabin, fare=reservation["fare"],
                                             currency=CURRENCY),
        )
    except ConditionFailed as exc:
        if exc.failed_on("booking"):
            return _hold_already_taken(step, exc, tried=seat)
        raise SeatUnavailable(f"seat {seat} on {step.flight_number} is held or booked by another booking") from exc
    logger.info("seat held", extra={"seat": seat, "cabin": cabin, "hold_expires_at": reservation["hold_expires_at"]})
    return reservation


def _hold_already_taken(step: StepInput, refused: ConditionFailed, *, tried: str) -> dict[str, Any]:
    """The booking refused a note of ``tried``: ReleaseSeat ran (a late ReserveSeat), or the
    booking notes a seat already (a replay, or a duplicate that won): the hold the first
    run took is the answer, as long as it is still this booking's."""
    booking = refused.current_of("booking") or {}
    noted = booking.get("seat")
    if "seat_released_at" in booking or not noted:  # (no seat noted: the booking is gone)
        raise AlreadyCompensated("ReleaseSeat already ran for this booking; no seat is held") from refused
    same = noted == tried and refused.failed_on("seat")
    item = refused.current_of("seat") if same else db.get("seats", db.seat_key(step.flight_number, noted))
    if item is None or item.get("booking_id") != step.booking_id:
        raise SeatHoldLost(f"seat {noted} was held for this booking and is no longer") from refused
    return _reservation(noted, str(item["cabin"]), int(item.get("hold_expires_at") or 0))


OPTIMISTIC_TRIES = 3


def _hold_any_in_cabin(step: StepInput, cabin: str) -> dict[str, Any]:
    """Racing buyers would all pick the first free seat; random picks spread them out,
    and a lost race just moves on. A mostly free cabin needs no seat-map read at all
    (a few blind conditional holds); after misses, read what is really free."""
    cabin_seats = [seat for seat, seat_cabin in all_seats() if seat_cabin == cabin]
    for seat in random.sample(cabin_seats, k=min(OPTIMISTIC_TRIES, len(cabin_seats))):
        try:
            return _hold(step, seat)
        except SeatUnavailable:
            continue
    for _ in range(3):
        candidates = [seat["seat"] for seat in seat_map(step.flight_number, status=SeatStatus.AVAILABLE, cabin=cabin)]
        if not candidates:
            break
        random.shuffle(candidates)
        for seat in candidates:
            try:
                return _hold(step, seat)
            except SeatUnavailable:
                continue
    raise CabinFull(f"no free seat left in {cabin} on {step.flight_number}")


# --- ReleaseSeat -----------------------------------------------------------------
def release_seat(step: StepInput) -> dict[str, Any]:
    """Free the seat this booking holds or booked; a no-op when it has none.

    The booking's marker is written first: from then on no hold can be taken for this
    booking (ReserveSeat checks it in its transaction), and the booking returned names
    any seat a hold already took."""
    booking = booking_record.mark_seat_released(step.booking_id)
    seat = booking.get("seat")
    if not seat:
        return {"released": None, "detail": "no seat was held"}
    try:
        db.update("seats", db.seat_key(step.flight_number, seat), _FREE, condition="booking_id = :booking",
                  names=_STATUS_NAMES, values={":available": SeatStatus.AVAILABLE, ":booking": step.booking_id})
    except ConditionFailed:
        return {"released": None, "detail": f"seat {seat} is no longer this booking's"}
    logger.info("seat released", extra={"seat": seat})
    return {"released": seat}


# --- What other services do to a seat --------------------------------------------------
def sale(flight_number: str, seat: str, booking_id: str) -> db.Update:
    """ConfirmBooking's part: the booking's hold (even expired, as long as nobody else
    took the seat) becomes a sale."""
    return db.Update(
        "seats", db.seat_key(flight_number, seat),
        "SET #status = :booked REMOVE hold_expires_at",
        condition="booking_id = :booking",
        names=_STATUS_NAMES, values={":booked": SeatStatus.BOOKED, ":booking": booking_id},
    )


def expired_holds(now: int) -> list[dict[str, Any]]:
    return list(db.scan(
        "seats",
        FilterExpression="#status = :held AND hold_expires_at <= :now",
        ExpressionAttributeNames=_STATUS_NAMES,
        ExpressionAttributeValues={":held": SeatStatus.HELD, ":now": now},
    ))


def release_expired_hold(seat: dict[str, Any], now: int) -> bool:
    """The sweeper: free a hold that expired; False when it was confirmed, released or
    re-held meanwhile."""
    try:
        db.update(
            "seats", db.seat_key(seat["flight_number"], seat["seat"]), _FREE,
            condition="#status = :held AND booking_id = :booking AND hold_expires_at <= :now",
            names=_STATUS_NAMES,
            values={":available": SeatStatus.AVAILABLE, ":held": SeatStatus.HELD, ":booking": seat["booking_id"],
                    ":now": now},
        )
    except ConditionFailed:
        return False
    return True
