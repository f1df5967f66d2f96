"""The seats service: flights, seat maps, holds. Forward step ReserveSeats, compensation
ReleaseSeats, each run once per leg of a booking (a Map state over the legs).

A leg is a saga step, the seats of its party one transaction: the legs may be different
inventories (another carrier's, even), but a party on one flight is one write, so it holds
all of its seats there or none.

A seat item is ``AVAILABLE``, ``HELD`` by a booking until ``hold_expires_at`` (epoch
seconds), or ``BOOKED`` by a booking. Every change is a conditional write, so a seat
held (unexpired) or booked by another booking is never taken.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from chalicelib import booking_record, clock, config, db, step_log
from chalicelib.errors import (
    AlreadyCompensated,
    CabinFull,
    ConditionFailed,
    NotFound,
    SeatHoldLost,
    SeatUnavailable,
    SimulatedFailure,
)
from chalicelib.logs import logger
from chalicelib.models import (
    BASE_FARES,
    CABINS,
    CURRENCY,
    HOLD_SECONDS,
    StepInput,
    all_seats,
    booking_legs,
    cabin_of_seat,
    fault_for,
    seat_sort_key,
    seats_together,
)
from chalicelib.vocabulary import RELEASE_SEATS, RESERVE_SEATS, FailureMode, SeatStatus

# What this service's Lambdas do to which table: their IAM roles (deploy/resources.py).
TABLE_ACCESS = {
    # BatchGetItem on seats: a replay checks the seats its first run held are still its own.
    RESERVE_SEATS: {"bookings": ("UpdateItem",), "seats": ("BatchGetItem", "Query", "UpdateItem")},
    RELEASE_SEATS: {"bookings": ("UpdateItem",), "seats": ("UpdateItem",)},
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


def existing_flight(flight: dict[str, Any] | None, flight_number: str, *,
                    field: str = "flight_number") -> dict[str, Any]:
    """``flight`` as read, or NotFound naming the request's ``field``."""
    if flight is None:
        raise NotFound(f"flight {flight_number} does not exist", field=field)
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


# --- ReserveSeats (one leg) -------------------------------------------------------------
def _refused_passenger(step: StepInput) -> int | None:
    """``simulate_failure`` naming a passenger on this leg: that passenger's seat is refused
    inside the leg's transaction, which therefore holds none of the party's."""
    if not config.fault_injection_enabled():
        return None
    mode, passenger = fault_for(step.simulate_failure, RESERVE_SEATS, step.leg)
    return passenger if mode == FailureMode.PERMANENT else None


def reserve_seats(step: StepInput) -> dict[str, Any]:
    """Hold one seat per passenger on this leg for 15 minutes, in one transaction: each
    chosen seat, and free seats of the cabin, together where it allows, for the others.
    All of them or none, so two parties racing for a seat never both hold it. No read
    first: blind holds of seats picked together in a mostly free cabin usually land; a
    replay learns from its own refused transaction that the leg holds its seats already
    (the booking's note of them comes back with the refusal)."""
    choices = list(step.seats) or [step.seat]
    chosen = {passenger: seat for passenger, seat in enumerate(choices) if seat}
    auto = [passenger for passenger, seat in enumerate(choices) if not seat]
    cabin = step.cabin or (cabin_of_seat(next(iter(chosen.values()))) if chosen else "ECONOMY")
    if not auto:
        return _hold(step, chosen, cabin, auto=())
    return _hold_together(step, chosen, auto, cabin)


class _AutoSeatsTaken(Exception):
    """Seats picked for the party (not chosen by it) were taken: pick others."""

    def __init__(self, seats: set[str]) -> None:
        super().__init__(", ".join(sorted(seats)))
        self.seats = seats


OPTIMISTIC_TRIES = 3


def _hold_together(step: StepInput, chosen: dict[int, str], auto: list[int], cabin: str) -> dict[str, Any]:
    """Racing parties would all pick the front rows; random picks among the blocks that sit
    together spread them out, and a lost race just picks again. A mostly free cabin needs
    no seat-map read at all; after misses, read what is really free."""
    rng = random.Random()
    taken = set(chosen.values())
    lost: set[str] = set()
    cabin_seats = [seat for seat, seat_cabin in all_seats() if seat_cabin == cabin]
    for _ in range(OPTIMISTIC_TRIES):
        picked = seats_together([seat for seat in cabin_seats if seat not in taken | lost], len(auto), rng)
        if picked is None:
            break
        try:
            return _hold(step, {**chosen, **dict(zip(auto, picked, strict=True))}, cabin, auto=auto)
        except _AutoSeatsTaken as exc:
            lost |= exc.seats
    for _ in range(3):
        free = [seat["seat"] for seat in seat_map(step.flight_number, status=SeatStatus.AVAILABLE, cabin=cabin)
                if seat["seat"] not in taken]
        picked = seats_together(free, len(auto), rng)
        if picked is None:
            break
        try:
            return _hold(step, {**chosen, **dict(zip(auto, picked, strict=True))}, cabin, auto=auto)
        except _AutoSeatsTaken:
            continue
    raise CabinFull(f"not {len(auto)} free seat(s) left in {cabin} on {step.flight_number}")


def _reservation(step: StepInput, held: list[dict[str, Any]], cabin: str, hold_expires_at: int) -> dict[str, Any]:
    return {
        "leg": step.leg or 0,
        "flight_number": step.flight_number,
        "seats": held,
        "cabin": cabin,
        "fare": BASE_FARES[cabin] * len(held),
        "currency": CURRENCY,
        "hold_expires_at": hold_expires_at,
    }


def _hold_part(step: StepInput, seat: str, now: int, expires: int, *, refused: bool = False) -> db.Update:
    return db.Update(
        "seats", db.seat_key(step.flight_number, seat),
        "SET #status = :held_new, booking_id = :booking, hold_expires_at = :expires, held_at = :now",
        # An injected refusal: a condition no seat meets, so the transaction holds none.
        condition="attribute_not_exists(seat)" if refused else f"attribute_exists(seat) AND {_TAKEABLE}",
        names=_STATUS_NAMES,
        values={**_takeable_values(now), ":held_new": SeatStatus.HELD, ":booking": step.booking_id,
                ":expires": expires},
    )


def _part(passenger: int) -> str:
    return f"seat_{passenger}"


def _hold(step: StepInput, assignment: dict[int, str], cabin: str, *, auto: Iterable[int]) -> dict[str, Any]:
    """One transaction: a hold of each passenger's seat (``assignment``), the booking's note
    of the leg's seats, and the step's outcome, so ReleaseSeats can always find the seats
    even when ReserveSeats timed out after writing."""
    now = clock.now_epoch()
    leg = step.leg or 0
    held = [{"passenger": passenger, "seat": seat, "cabin": cabin_of_seat(seat)}
            for passenger, seat in sorted(assignment.items())]
    reservation = _reservation(step, held, cabin, now + HOLD_SECONDS)
    refused = _refused_passenger(step)
    parts: dict[str, db.Write] = {
        _part(passenger): _hold_part(step, seat, now, reservation["hold_expires_at"], refused=passenger == refused)
        for passenger, seat in sorted(assignment.items())
    }
    try:
        step_log.transact(reservation, **parts, booking=booking_record.leg_note(step.booking_id, leg, held))
    except ConditionFailed as exc:
        if exc.failed_on("booking"):
            return _held_already(step, exc, tried=assignment)
        if refused is not None and exc.failed_on(_part(refused)):
            raise SimulatedFailure(f"the seat of passenger {refused} on {step.flight_number} was refused on purpose "
                                   "(simulate_failure): the leg's transaction held none of the party's") from exc
        lost = {passenger for passenger in assignment if exc.failed_on(_part(passenger))}
        lost_chosen = sorted(assignment[passenger] for passenger in lost - set(auto))
        if lost_chosen:
            raise SeatUnavailable(f"seat(s) {', '.join(lost_chosen)} on {step.flight_number} are held or booked by "
                                  "another booking; none of the party's was held") from exc
        raise _AutoSeatsTaken({assignment[passenger] for passenger in lost}) from exc
    logger.info("seats held", extra={"leg": leg, "seats": [item["seat"] for item in held], "cabin": cabin,
                                     "hold_expires_at": reservation["hold_expires_at"]})
    return reservation


def _held_already(step: StepInput, refused: ConditionFailed, *, tried: dict[int, str]) -> dict[str, Any]:
    """The booking refused a note of this leg: ReleaseSeats ran on it (a late ReserveSeats),
    or the leg holds seats already (a replay, or a duplicate that won): the seats the first
    run held are the answer, as long as they are all still this booking's. A seat this
    attempt tried again came back with the refusal; only the others are read."""
    booking = refused.current_of("booking") or {}
    leg = step.leg or 0
    legs = booking_legs(booking) if booking else []
    noted = legs[leg] if leg < len(legs) else {}
    if noted.get("released_at") or not noted.get("seats"):  # (no seats noted: the booking is gone)
        raise AlreadyCompensated("ReleaseSeats already ran for this leg; no seat is held") from refused
    held = list(noted["seats"])
    came_back = {_part(item["passenger"]): refused.current_of(_part(item["passenger"])) for item in held
                 if tried.get(item["passenger"]) == item["seat"] and refused.failed_on(_part(item["passenger"]))}
    found = {**db.get_many(**{_part(item["passenger"]): seat_read(step.flight_number, item["seat"]) for item in held
                              if _part(item["passenger"]) not in came_back}), **came_back}
    if any((found[_part(item["passenger"])] or {}).get("booking_id") != step.booking_id for item in held):
        raise SeatHoldLost(f"the seats held for this booking on {step.flight_number} are no longer all "
                           "its own") from refused
    expires = min(int((found[_part(item["passenger"])] or {}).get("hold_expires_at") or 0) for item in held)
    return _reservation(step, held, str(held[0]["cabin"]), expires)


# --- ReleaseSeats (one leg) ------------------------------------------------------------------
def release_seats(step: StepInput) -> dict[str, Any]:
    """Free every seat this booking holds or booked on this leg; a no-op when it has none.

    The leg's marker is written first: from then on no hold can be noted for it
    (ReserveSeats checks it in its transaction), and the booking returned names every seat
    a hold already took."""
    leg = step.leg or 0
    booking = booking_record.mark_leg_released(step.booking_id, leg)
    held = booking_legs(booking)[leg].get("seats") or []
    outcome: dict[str, Any] = {"leg": leg, "flight_number": step.flight_number, "released": [], "seats": []}
    if not held:
        return {**outcome, "detail": "no seat was held"}
    lost = []
    for item in held:
        try:
            db.update("seats", db.seat_key(step.flight_number, item["seat"]), _FREE, condition="booking_id = :booking",
                      names=_STATUS_NAMES, values={":available": SeatStatus.AVAILABLE, ":booking": step.booking_id},
                      returning="NONE")
        except ConditionFailed:
            lost.append(item["seat"])
            continue
        outcome["released"].append(item["seat"])
        outcome["seats"].append(item)
    if lost:
        outcome["detail"] = f"seat(s) {', '.join(lost)} no longer this booking's"
    logger.info("seats released", extra={"leg": leg, "seats": outcome["released"]})
    return outcome


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
