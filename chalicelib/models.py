"""The rules of the domain that need no I/O: cabins and seats, fares, points and
miles arithmetic, and the parsed shapes of requests, execution inputs and step inputs.

Money is integer minor units (cents) everywhere; there is no float in this module.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.vocabulary import (
    COMPENSATIONS,
    FORWARD_STEPS,
    TASKS,
    AfterPivot,
    FailureMode,
    Step,
    Task,
    entry_name,
)

# --- Aircraft -------------------------------------------------------------------
ROWS = range(1, 28)
SEAT_LETTERS = "ABCDEF"
CABIN_ROWS = {
    "FIRST": range(1, 3),
    "BUSINESS": range(3, 6),
    "ECONOMY": range(6, 28),
}
CABINS = tuple(CABIN_ROWS)
HOLD_SECONDS = 15 * 60

# --- Money ----------------------------------------------------------------------
CURRENCY = "USD"
#: The keys under which the API answers an amount of money (integer minor units). Every
#: object holding one also says its ``currency``; a step's result gets it from its booking.
MONEY_FIELDS = ("fare", "amount", "amount_paid", "refunded")
MINOR_UNITS_PER_CURRENCY_UNIT = 100
POINTS_PER_CURRENCY_UNIT = 100  # 100 points = 1 unit of currency off the fare
MILES_PER_CURRENCY_UNIT = 1  # miles earned per whole unit of currency paid
BASE_FARES = {"FIRST": 89_900, "BUSINESS": 45_900, "ECONOMY": 12_900}

# A row as printed above the seats: no leading zero ("01A" is not seat 1A).
_SEAT_PATTERN = re.compile(r"([1-9][0-9]?)([A-Z])")


def cabin_of_row(row: int) -> str:
    for cabin, rows in CABIN_ROWS.items():
        if row in rows:
            return cabin
    raise ValueError(f"row {row} is not on this aircraft")


def parse_seat(seat: str) -> tuple[int, str]:
    """``"12A"`` -> ``(12, "A")``; ValueError for a seat that is not on the aircraft."""
    match = _SEAT_PATTERN.fullmatch(seat)
    if not match:
        raise ValueError(f"seat {seat!r} is not a row number followed by a letter A-F")
    row, letter = int(match.group(1)), match.group(2)
    if row not in ROWS or letter not in SEAT_LETTERS:
        raise ValueError(f"seat {seat} does not exist on this aircraft (rows 1-27, seats A-F)")
    return row, letter


def cabin_of_seat(seat: str) -> str:
    return cabin_of_row(parse_seat(seat)[0])


def all_seats() -> list[tuple[str, str]]:
    """Every (seat, cabin) of the aircraft, front to back."""
    return [(f"{row}{letter}", cabin_of_row(row)) for row in ROWS for letter in SEAT_LETTERS]


def seat_sort_key(seat: str) -> tuple[int, str]:
    return parse_seat(seat)


def _runs(letters: list[str]) -> list[list[str]]:
    """Free letters of one row, in runs of neighbours (``A B D`` -> ``[[A, B], [D]]``)."""
    runs: list[list[str]] = []
    for letter in letters:
        if runs and SEAT_LETTERS.index(letter) == SEAT_LETTERS.index(runs[-1][-1]) + 1:
            runs[-1].append(letter)
        else:
            runs.append([letter])
    return runs


def seats_together(free: Iterable[str], count: int, rng: random.Random | None = None) -> list[str] | None:
    """``count`` seats of ``free`` for one party, sitting together as well as the cabin
    allows: side by side in one row; else in one row; else in the fewest adjacent rows;
    else anywhere, front to back. None when fewer than ``count`` are free.

    Among equally good choices the front-most wins, or with ``rng`` a random one, so
    parties racing for the same cabin do not all reach for the same row."""
    rows: dict[int, list[str]] = {}
    for seat in free:
        row, letter = parse_seat(seat)
        rows.setdefault(row, []).append(letter)
    for letters in rows.values():
        letters.sort()
    if count <= 0:
        return []
    if sum(len(letters) for letters in rows.values()) < count:
        return None
    ordered = sorted(rows)

    def pick(candidates: list[list[str]]) -> list[str] | None:
        if not candidates:
            return None
        return candidates[rng.randrange(len(candidates))] if rng else candidates[0]

    side_by_side = [[f"{row}{letter}" for letter in run[start:start + count]]
                    for row in ordered for run in _runs(rows[row]) for start in range(len(run) - count + 1)]
    one_row = [[f"{row}{letter}" for letter in rows[row][:count]] for row in ordered if len(rows[row]) >= count]
    chosen = pick(side_by_side) or pick(one_row)
    if chosen:
        return chosen
    for span in range(2, len(ordered) + 1):
        blocks = []
        for first in range(len(ordered) - span + 1):
            block = ordered[first:first + span]
            if block[-1] - block[0] != span - 1:  # the rows must be neighbours
                continue
            seats = [f"{row}{letter}" for row in block for letter in rows[row]]
            if len(seats) >= count:
                blocks.append(seats[:count])
        chosen = pick(blocks)
        if chosen:
            return chosen
    return [f"{row}{letter}" for row in ordered for letter in rows[row]][:count]  # (unreachable: one span fits)


def boarding_group(seat: str) -> int:
    """FIRST boards in group 1, BUSINESS in 2, then economy from the back."""
    row, _ = parse_seat(seat)
    cabin = cabin_of_row(row)
    if cabin == "FIRST":
        return 1
    if cabin == "BUSINESS":
        return 2
    return 3 if row >= 17 else 4


# --- Fare arithmetic -------------------------------------------------------------
def party_fare(cabin: str, passengers: int, legs: int) -> int:
    """The fare of a booking: over its legs, the cabin's fare for each passenger."""
    return sum(BASE_FARES[cabin] * passengers for _ in range(legs))


def discount_for_points(points: int) -> int:
    """Minor units off the fare for ``points`` points (rounded down)."""
    return points * MINOR_UNITS_PER_CURRENCY_UNIT // POINTS_PER_CURRENCY_UNIT


def points_to_cover(amount: int) -> int:
    """The fewest points whose discount covers ``amount`` minor units."""
    per_minor = MINOR_UNITS_PER_CURRENCY_UNIT
    return -(-amount * POINTS_PER_CURRENCY_UNIT // per_minor)


def points_to_debit(points_requested: int, fare: int) -> int:
    """Points actually redeemed: what was asked, but never more than the fare needs."""
    return min(points_requested, points_to_cover(fare))


def amount_due(fare: int, points_redeemed: int) -> int:
    """The fare after the points discount; never below zero."""
    return max(fare - discount_for_points(points_redeemed), 0)


def miles_for(amount_paid: int) -> int:
    return amount_paid // MINOR_UNITS_PER_CURRENCY_UNIT * MILES_PER_CURRENCY_UNIT


# --- Requests --------------------------------------------------------------------
MAX_LEGS = 4
MAX_PASSENGERS = 9


@dataclass(frozen=True)
class Passenger:
    first_name: str
    last_name: str
    email: str | None = None
    seats: dict[str, str] = field(default_factory=dict)  # flight number -> the seat chosen on it

    def named(self) -> dict[str, str]:
        """The passenger as the booking keeps them: their name and email, not their choices."""
        return {key: value for key, value in (("first_name", self.first_name), ("last_name", self.last_name),
                                              ("email", self.email)) if value is not None}


#: What ``simulate_failure`` asks of one task: a mode for every invocation, or for a task
#: that runs per leg ``{"leg": 1, "mode": "permanent", "passenger": 2}`` (one leg, and
#: optionally the passenger whose seat fails that leg's transaction).
Fault = str | dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class BookingTerms:
    """What a booking asks of the saga, in the request and in every step's input: the
    flight (the first leg's, or the leg a per-leg step works on), a seat (or a cabin to
    pick seats in), the points to redeem, and the failures to simulate where the stage
    allows it."""

    flight_number: str
    seat: str | None = None
    cabin: str | None = None
    loyalty_id: str | None = None
    points_to_redeem: int = 0
    simulate_failure: dict[str, Fault] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BookingRequest(BookingTerms):
    """A validated ``POST /bookings`` body: a party of ``passengers`` over ``flights``, in
    travel order (the one-seat form is one flight, one passenger)."""

    passengers: tuple[Passenger, ...]
    flights: tuple[str, ...] = ()
    card_token: str
    #: Sent in the one-seat form (``flight_number``, ``passenger``): errors name its fields.
    one_seat: bool = field(default=False, compare=False)

    def canonical(self) -> dict[str, Any]:
        """The request as a plain dict, for idempotency comparison (no card token; either
        form of the same booking is the same request)."""
        data = asdict(self)
        data.pop("card_token")
        data.pop("one_seat")
        return data

    @property
    def legs(self) -> tuple[str, ...]:
        return self.flights or (self.flight_number,)

    @property
    def passenger(self) -> Passenger:
        return self.passengers[0]

    @property
    def requested_cabin(self) -> str:
        chosen = [seat for passenger in self.passengers for seat in passenger.seats.values()]
        return self.cabin or cabin_of_seat(self.seat or (chosen[0] if chosen else ""))

    @property
    def fare(self) -> int:
        return party_fare(self.requested_cabin, len(self.passengers), len(self.legs))

    def choices(self, flight_number: str) -> list[str | None]:
        """Each passenger's chosen seat on the flight, or None (auto-assigned)."""
        return [passenger.seats.get(flight_number) for passenger in self.passengers]


def fault_for(simulate_failure: dict[str, Fault], task: Task, leg: int | None = None) -> tuple[str | None, int | None]:
    """The failure ``simulate_failure`` asks of ``task`` (on ``leg``, for a per-leg task):
    ``(mode, passenger)``; a plain mode applies to every leg."""
    asked = simulate_failure.get(task.name)
    if asked is None:
        asked = simulate_failure.get(entry_name(task, leg))
    if isinstance(asked, dict):
        if task.per_leg and leg is not None and asked.get("leg") not in (None, leg):
            return None, None
        passenger = asked.get("passenger")
        return str(asked.get("mode", FailureMode.PERMANENT)), int(passenger) if passenger is not None else None
    return asked, None


# --- Step input ---------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class StepInput(BookingTerms):
    """What every saga Lambda receives: the execution input plus earlier results.

    Each step's result travels in the execution state under its ``result_key`` (the
    ResultPath of statemachine.json); a Catch records an error under ``<Task>Error``.
    """

    booking_id: str
    correlation_id: str
    fare: int = 0  # the booking's fare: every leg, every passenger
    passengers: int = 1
    legs: tuple[dict[str, Any], ...] = ()  # {"leg", "flight_number", "seats": [chosen or None per passenger]}
    leg: int | None = None  # the leg a per-leg task works on
    seats: tuple[str | None, ...] = ()  # on that leg, each passenger's chosen seat or None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # by step name
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)  # by task name, or entry name for a leg's

    def result_of(self, step: Step | AfterPivot) -> dict[str, Any]:
        """What ``step`` returned, or {} when it has not run (or was skipped)."""
        return self.results.get(step.name) or {}

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> StepInput:
        legs = tuple(event.get("legs") or ())
        seats = event.get("seats")
        return cls(
            booking_id=event["booking_id"],
            correlation_id=event.get("correlation_id") or event["booking_id"],
            flight_number=event["flight_number"],
            seat=event.get("seat"),
            cabin=event.get("cabin"),
            loyalty_id=event.get("loyalty_id"),
            points_to_redeem=int(event.get("points_to_redeem") or 0),
            simulate_failure=dict(event.get("simulate_failure") or {}),
            fare=int(event.get("fare") or 0),
            passengers=int(event.get("passengers") or (len(seats) if isinstance(seats, list) else 1)),
            legs=legs,
            leg=int(event["leg"]) if event.get("leg") is not None else None,
            seats=tuple(seats) if isinstance(seats, list) else (),
            results={step.name: event[step.result_key] for step in FORWARD_STEPS
                     if isinstance(event.get(step.result_key), dict)},
            errors={**{task.name: event[task.error_key] for task in TASKS.values()
                       if isinstance(event.get(task.error_key), dict)}, **_leg_errors(event)},
        )


def _leg_errors(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The errors a per-leg Map reported as data, one per leg that failed: by entry name."""
    errors = {}
    for task in (*FORWARD_STEPS, *COMPENSATIONS):
        outcome = event.get(task.result_key) if task.per_leg else None
        for leg in (outcome.get("legs") or []) if isinstance(outcome, dict) else []:
            if isinstance(leg, dict) and isinstance(leg.get("error"), dict):
                errors[entry_name(task, int(leg["leg"]))] = leg["error"]
    return errors


def booking_legs(booking: dict[str, Any]) -> list[dict[str, Any]]:
    """A booking's legs as stored: ``[{"flight_number", "departure"?, "seats"?: [{"passenger",
    "seat", "cabin"}], "released_at"?}]``; a booking from before parties, its one flight
    and its one seat."""
    if booking.get("legs"):
        return list(booking["legs"])
    seat = booking.get("seat")
    leg: dict[str, Any] = {"flight_number": booking["flight_number"]}
    if seat:
        leg["seats"] = [{"passenger": 0, "seat": seat, "cabin": booking.get("cabin") or cabin_of_seat(seat)}]
    if booking.get("seat_released_at"):
        leg["released_at"] = booking["seat_released_at"]
    return [leg]


def booking_passengers(booking: dict[str, Any]) -> list[dict[str, Any]]:
    """A booking's passengers as stored, each with their ``ticket_number`` and
    ``boarding_passes`` once confirmed; a booking from before parties: its one passenger,
    ticket and boarding pass."""
    if booking.get("passengers"):
        return list(booking["passengers"])
    passenger = dict(booking["passenger"])
    if booking.get("ticket_number"):
        passenger.update(ticket_number=booking["ticket_number"], boarding_passes=[booking.get("boarding_pass")])
    return [passenger]


def every_leg_held(legs: list[dict[str, Any]]) -> dict[str, Any]:
    """What ReleaseSeats iterates over until ReserveSeats says otherwise: every leg, as if
    it held seats. Registered before the step runs (the execution input carries it), so a
    ReserveSeats that fails as a whole is undone on every leg; once it has run, its outcome
    replaces this with what each leg really did."""
    return {"legs": [{"leg": index, "flight_number": leg["flight_number"], "held": True}
                     for index, leg in enumerate(legs)]}


def execution_input(booking: dict[str, Any], request: BookingRequest) -> dict[str, Any]:
    """The booking saga's input. The passengers' names and the card token stay out of it
    (and out of the execution history, which state machines log): ConfirmBooking reads the
    party from the booking, AuthorizePayment the token from the payment request."""
    legs = [{"leg": index, "flight_number": flight, "seats": request.choices(flight)}
            for index, flight in enumerate(request.legs)]
    return {
        "booking_id": booking["booking_id"],
        "correlation_id": booking["correlation_id"],
        "flight_number": request.legs[0],
        "cabin": request.requested_cabin,
        "fare": request.fare,
        "passengers": len(request.passengers),
        "legs": legs,
        "reservation": every_leg_held(legs),
        "loyalty_id": request.loyalty_id,
        "points_to_redeem": request.points_to_redeem,
        "simulate_failure": request.simulate_failure,
    }


def cancellation_input(booking: dict[str, Any], simulate_failure: dict[str, Fault] | None = None) -> dict[str, Any]:
    """The cancellation saga's input (and recovery's: a step event rebuilt from the booking)."""
    stored = booking_legs(booking)
    legs = [{"leg": index, "flight_number": leg["flight_number"],
             "seats": [None] * len(booking_passengers(booking))} for index, leg in enumerate(stored)]
    return {
        "booking_id": booking["booking_id"],
        "correlation_id": booking["correlation_id"],
        "flight_number": stored[0]["flight_number"],
        "cabin": booking.get("cabin"),
        "fare": int(booking.get("fare") or 0),
        "passengers": len(booking_passengers(booking)),
        "legs": legs,
        "reservation": every_leg_held(legs),
        "loyalty_id": booking.get("loyalty_id"),
        "points_to_redeem": booking.get("points_to_redeem", 0),
        "simulate_failure": simulate_failure or {},
    }


def leg_event(event: dict[str, Any], leg: int) -> dict[str, Any]:
    """``event`` as one leg's invocation of a per-leg task gets it (what the Map's
    ItemSelector hands each iteration, as recovery rebuilds it)."""
    item = (event.get("legs") or [])[leg]
    return {**event, "leg": leg, "flight_number": item["flight_number"], "seats": item.get("seats") or []}
