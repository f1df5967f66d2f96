"""The rules of the domain that need no I/O: cabins and seats, fares, points and
miles arithmetic, and the parsed shapes of requests, execution inputs and step inputs.

Money is integer minor units (cents) everywhere; there is no float in this module.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.vocabulary import FORWARD_STEPS, TASKS, AfterPivot, Step

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
@dataclass(frozen=True)
class Passenger:
    first_name: str
    last_name: str
    email: str | None = None


@dataclass(frozen=True, kw_only=True)
class BookingTerms:
    """What a booking asks of the saga, in the request and in every step's input: the
    flight, a seat (or a cabin to pick one in), the points to redeem, and the failures
    to simulate where the stage allows it."""

    flight_number: str
    seat: str | None = None
    cabin: str | None = None
    loyalty_id: str | None = None
    points_to_redeem: int = 0
    simulate_failure: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BookingRequest(BookingTerms):
    """A validated ``POST /bookings`` body."""

    passenger: Passenger
    card_token: str

    def canonical(self) -> dict[str, Any]:
        """The request as a plain dict, for idempotency comparison (no card token)."""
        data = asdict(self)
        data.pop("card_token")
        return data

    @property
    def requested_cabin(self) -> str:
        return self.cabin or cabin_of_seat(self.seat or "")


# --- Step input ---------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class StepInput(BookingTerms):
    """What every saga Lambda receives: the execution input plus earlier results.

    Each step's result travels in the execution state under its ``result_key`` (the
    ResultPath of statemachine.json); a Catch records an error under ``<Task>Error``.
    """

    booking_id: str
    correlation_id: str
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # by step name
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)  # by task name

    def result_of(self, step: Step | AfterPivot) -> dict[str, Any]:
        """What ``step`` returned, or {} when it has not run (or was skipped)."""
        return self.results.get(step.name) or {}

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> StepInput:
        return cls(
            booking_id=event["booking_id"],
            correlation_id=event.get("correlation_id") or event["booking_id"],
            flight_number=event["flight_number"],
            seat=event.get("seat"),
            cabin=event.get("cabin"),
            loyalty_id=event.get("loyalty_id"),
            points_to_redeem=int(event.get("points_to_redeem") or 0),
            simulate_failure=dict(event.get("simulate_failure") or {}),
            results={step.name: event[step.result_key] for step in FORWARD_STEPS
                     if isinstance(event.get(step.result_key), dict)},
            errors={task.name: event[task.error_key] for task in TASKS.values()
                    if isinstance(event.get(task.error_key), dict)},
        )


def execution_input(booking: dict[str, Any], request: BookingRequest) -> dict[str, Any]:
    """The booking saga's input. The passenger and the card token stay out of it (and out
    of the execution history, which state machines log): ConfirmBooking reads the
    passenger from the booking, AuthorizePayment the token from the payment request."""
    return {
        "booking_id": booking["booking_id"],
        "correlation_id": booking["correlation_id"],
        "flight_number": request.flight_number,
        "seat": request.seat,
        "cabin": request.requested_cabin,
        "loyalty_id": request.loyalty_id,
        "points_to_redeem": request.points_to_redeem,
        "simulate_failure": request.simulate_failure,
    }


def cancellation_input(booking: dict[str, Any], simulate_failure: dict[str, str] | None = None) -> dict[str, Any]:
    """The cancellation saga's input (and recovery's: a step event rebuilt from the booking)."""
    return {
        "booking_id": booking["booking_id"],
        "correlation_id": booking["correlation_id"],
        "flight_number": booking["flight_number"],
        "seat": booking.get("seat"),
        "cabin": booking.get("cabin"),
        "loyalty_id": booking.get("loyalty_id"),
        "points_to_redeem": booking.get("points_to_redeem", 0),
        "simulate_failure": simulate_failure or {},
    }
