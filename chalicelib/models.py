"""The rules of the domain that need no I/O: cabins and seats, fares, points and
miles arithmetic, and the parsed shapes of requests, execution inputs and step inputs.

Money is integer minor units (cents) everywhere; there is no float in this module.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.errors import InvalidRequest
from chalicelib.vocabulary import BOOKING_STEPS, COMPENSATION_NAMES, FAILURE_MODES, STEP_NAMES, TASKS, SeatStatus, Step

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
MINOR_UNITS_PER_CURRENCY_UNIT = 100
POINTS_PER_CURRENCY_UNIT = 100  # 100 points = 1 unit of currency off the fare
MILES_PER_CURRENCY_UNIT = 1  # miles earned per whole unit of currency paid
BASE_FARES = {"FIRST": 89_900, "BUSINESS": 45_900, "ECONOMY": 12_900}

# Names the request parsing below still uses; the saga's vocabulary is chalicelib/vocabulary.py.
FORWARD_STEPS, COMPENSATIONS = STEP_NAMES, COMPENSATION_NAMES
SEAT_STATUSES = tuple(SeatStatus)

_SEAT_PATTERN = re.compile(r"^([0-9]{1,2})([A-Z])$")
_FLIGHT_PATTERN = re.compile(r"^[A-Z0-9]{2,8}$")
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LOYALTY_PATTERN = re.compile(r"^[A-Z0-9]{2,32}$")
# A card token never looks like a card number; refusing PAN-shaped tokens keeps card
# numbers out of the execution input, the tables and the logs.
_PAN_PATTERN = re.compile(r"^[0-9 -]{12,23}$")


def cabin_of_row(row: int) -> str:
    for cabin, rows in CABIN_ROWS.items():
        if row in rows:
            return cabin
    raise ValueError(f"row {row} is not on this aircraft")


def parse_seat(seat: str) -> tuple[int, str]:
    """``"12A"`` -> ``(12, "A")``; ValueError for a seat that is not on the aircraft."""
    match = _SEAT_PATTERN.match(seat)
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


@dataclass(frozen=True)
class BookingRequest:
    """A validated ``POST /bookings`` body."""

    flight_number: str
    passenger: Passenger
    card_token: str
    seat: str | None = None
    cabin: str | None = None
    loyalty_id: str | None = None
    points_to_redeem: int = 0
    simulate_failure: dict[str, str] = field(default_factory=dict)

    def canonical(self) -> dict[str, Any]:
        """The request as a plain dict, for idempotency comparison (no card token)."""
        data = asdict(self)
        data.pop("card_token")
        return data

    @property
    def requested_cabin(self) -> str:
        return self.cabin or cabin_of_seat(self.seat or "")


_BOOKING_FIELDS = {
    "flight_number", "passenger", "seat", "cabin", "loyalty_id",
    "points_to_redeem", "payment", "simulate_failure",
}


def _required_text(body: dict[str, Any], name: str, *, where: str = "", limit: int = 100) -> str:
    label = f"{where}{name}"
    value = body.get(name)
    if value is None:
        raise InvalidRequest(f"{label} is required", field=label)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{label} must be a non-empty string", field=label)
    if len(value) > limit:
        raise InvalidRequest(f"{label} must be at most {limit} characters", field=label)
    return value.strip()


def _optional_text(body: dict[str, Any], name: str, *, where: str = "", limit: int = 100) -> str | None:
    if body.get(name) is None:
        return None
    return _required_text(body, name, where=where, limit=limit)


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        raise InvalidRequest(f"{name} is required", field=name)
    if not isinstance(value, dict):
        raise InvalidRequest(f"{name} must be an object", field=name)
    return value


def parse_passenger(body: dict[str, Any]) -> Passenger:
    raw = _object(body, "passenger")
    email = _optional_text(raw, "email", where="passenger.", limit=254)
    if email is not None and not _EMAIL_PATTERN.match(email):
        raise InvalidRequest("passenger.email is not an email address", field="passenger.email")
    return Passenger(
        first_name=_required_text(raw, "first_name", where="passenger."),
        last_name=_required_text(raw, "last_name", where="passenger."),
        email=email,
    )


def parse_card_token(body: dict[str, Any]) -> str:
    raw = _object(body, "payment")
    unknown = set(raw) - {"card_token"}
    if unknown:
        raise InvalidRequest(
            "payment takes only a card_token; never send card numbers or other card data",
            field="payment",
        )
    token = _required_text(raw, "card_token", where="payment.", limit=200)
    if _PAN_PATTERN.match(token):
        raise InvalidRequest(
            "payment.card_token looks like a card number; send a token from the payment provider",
            field="payment.card_token",
        )
    return token


def parse_seat_choice(body: dict[str, Any]) -> tuple[str | None, str | None]:
    seat = _optional_text(body, "seat", limit=4)
    cabin = _optional_text(body, "cabin", limit=10)
    if seat is None and cabin is None:
        raise InvalidRequest("give a seat (e.g. \"12A\") or a cabin to auto-assign one", field="seat")
    if cabin is not None and cabin not in CABINS:
        raise InvalidRequest(f"cabin must be one of {', '.join(CABINS)}", field="cabin")
    if seat is not None:
        try:
            seat_cabin = cabin_of_seat(seat)
        except ValueError as exc:
            raise InvalidRequest(str(exc), field="seat") from None
        if cabin is not None and cabin != seat_cabin:
            raise InvalidRequest(f"seat {seat} is in {seat_cabin}, not {cabin}", field="cabin")
    return seat, cabin


def parse_points(body: dict[str, Any], loyalty_id: str | None) -> int:
    points = body.get("points_to_redeem", 0)
    if points is None:
        points = 0
    # bool is an int in Python; JSON true is not a number of points.
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidRequest("points_to_redeem must be a whole number", field="points_to_redeem")
    if points < 0:
        raise InvalidRequest("points_to_redeem must not be negative", field="points_to_redeem")
    if points > 0 and loyalty_id is None:
        raise InvalidRequest("points_to_redeem needs a loyalty_id", field="loyalty_id")
    return points


def parse_simulate_failure(body: dict[str, Any], *, allowed: bool) -> dict[str, str]:
    raw = body.get("simulate_failure")
    if raw is None or raw == {}:
        return {}
    if not allowed:
        raise InvalidRequest("simulate_failure is disabled on this stage", field="simulate_failure")
    if not isinstance(raw, dict):
        raise InvalidRequest("simulate_failure must map a step name to a mode", field="simulate_failure")
    known = FORWARD_STEPS + COMPENSATIONS
    for step, mode in raw.items():
        if step not in known:
            raise InvalidRequest(
                f"simulate_failure names an unknown step {step!r}; known: {', '.join(known)}",
                field="simulate_failure",
            )
        if mode not in FAILURE_MODES:
            raise InvalidRequest(
                f"simulate_failure mode for {step} must be one of {', '.join(FAILURE_MODES)}",
                field="simulate_failure",
            )
    return dict(raw)


def parse_booking_request(body: Any, *, fault_injection_allowed: bool) -> BookingRequest:
    """Validate a ``POST /bookings`` body or raise InvalidRequest naming the field."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = sorted(set(body) - _BOOKING_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    flight_number = _required_text(body, "flight_number", limit=8)
    if not _FLIGHT_PATTERN.match(flight_number):
        raise InvalidRequest("flight_number must be letters and digits, e.g. SA101", field="flight_number")
    loyalty_id = _optional_text(body, "loyalty_id", limit=32)
    if loyalty_id is not None and not _LOYALTY_PATTERN.match(loyalty_id):
        raise InvalidRequest("loyalty_id must be letters and digits, e.g. FF0001", field="loyalty_id")
    seat, cabin = parse_seat_choice(body)
    return BookingRequest(
        flight_number=flight_number,
        passenger=parse_passenger(body),
        card_token=parse_card_token(body),
        seat=seat,
        cabin=cabin,
        loyalty_id=loyalty_id,
        points_to_redeem=parse_points(body, loyalty_id),
        simulate_failure=parse_simulate_failure(body, allowed=fault_injection_allowed),
    )


def parse_choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    """An optional query-string filter that must be one of ``allowed``."""
    if value is None or value == "":
        return None
    if value not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}", field=name)
    return value


# --- Step input ---------------------------------------------------------------------
@dataclass(frozen=True)
class StepInput:
    """What every saga Lambda receives: the execution input plus earlier results.

    Each step's result travels in the execution state under its ``result_key`` (the
    ResultPath of statemachine.json); a Catch records an error under ``<Task>Error``.
    """

    booking_id: str
    correlation_id: str
    flight_number: str
    seat: str | None = None
    cabin: str | None = None
    loyalty_id: str | None = None
    points_to_redeem: int = 0
    card_token: str | None = None
    simulate_failure: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # by step name
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)  # by task name

    def result_of(self, step: Step) -> dict[str, Any]:
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
            card_token=(event.get("payment") or {}).get("card_token"),
            simulate_failure=dict(event.get("simulate_failure") or {}),
            results={step.name: event[step.result_key] for step in BOOKING_STEPS
                     if isinstance(event.get(step.result_key), dict)},
            errors={task.name: event[task.error_key] for task in TASKS.values()
                    if isinstance(event.get(task.error_key), dict)},
        )


def execution_input(booking: dict[str, Any], request: BookingRequest) -> dict[str, Any]:
    """The booking saga's input. The passenger stays out of it (and out of the
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
