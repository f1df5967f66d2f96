"""Checking what an HTTP request sends, before anything is written: the JSON body, the
booking and cancel bodies, query-string choices, the headers and the path ids.

Every check runs and every invalid field is reported at once, in one InvalidRequest
whose ``problems`` name each field (``passenger.first_name`` for a nested one). A check
that depends on another field runs only when that field is valid, so one mistake is
reported once. The rules of the domain themselves (which seats exist, the cabin of a
row) stay in models.py; this module only asks them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from chalicelib.errors import InvalidRequest
from chalicelib.logs import bound_value
from chalicelib.models import CABINS, BookingRequest, Passenger, cabin_of_seat
from chalicelib.vocabulary import CANCELLATION_STEPS, COMPENSATION_NAMES, FAILURE_MODES, STEP_NAMES, SeatStatus

_BOOKING_ID_PATTERN = re.compile(r"^[0-9a-f-]{36}$")
_HEADER_VALUE_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HEADER_VALUE_RULE = "must be 1-128 letters, digits or . _ : -"
# A card token never looks like a card number; refusing PAN-shaped tokens keeps card
# numbers out of the execution input, the tables and the logs.
_PAN_PATTERN = re.compile(r"^[0-9 -]{12,23}$")


class Problems:
    """The problems found so far in one request, in the order they were checked."""

    def __init__(self) -> None:
        self.found: list[dict[str, str | None]] = []

    def add(self, field: str | None, message: str) -> None:
        self.found.append({"field": field, "message": message})

    def raise_any(self) -> None:
        if self.found:
            raise InvalidRequest.listing(self.found)


# --- Text fields, declared -------------------------------------------------------------
#: A rule of a text field: (its name, its value) -> what is wrong, or None.
Rule = Callable[[str, str], str | None]


def matching(pattern: str, wrong: str) -> Rule:
    compiled = re.compile(pattern)
    return lambda name, value: None if compiled.match(value) else f"{name} {wrong}"


def not_matching(pattern: re.Pattern[str], wrong: str) -> Rule:
    return lambda name, value: f"{name} {wrong}" if pattern.match(value) else None


def one_of(allowed: tuple[str, ...]) -> Rule:
    return lambda name, value: None if value in allowed else f"{name} must be one of {', '.join(allowed)}"


def on_the_aircraft(name: str, value: str) -> str | None:
    try:
        cabin_of_seat(value)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class Text:
    """A string field: present if ``required``, not blank, at most ``limit`` characters
    (before trimming), then each of ``rules``. Read, it is trimmed."""

    name: str  # as problems name it: "passenger.email"
    limit: int = 100
    required: bool = True
    rules: tuple[Rule, ...] = ()

    def read(self, container: Mapping[str, Any], problems: Problems) -> str | None:
        """The trimmed value; None when absent or invalid (the problem is then added)."""
        value = container.get(self.name.rpartition(".")[2])
        if value is None:
            if self.required:
                problems.add(self.name, f"{self.name} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            problems.add(self.name, f"{self.name} must be a non-empty string")
            return None
        if len(value) > self.limit:
            problems.add(self.name, f"{self.name} must be at most {self.limit} characters")
            return None
        value = value.strip()
        for rule in self.rules:
            wrong = rule(self.name, value)
            if wrong is not None:
                problems.add(self.name, wrong)
                return None
        return value


FLIGHT_NUMBER = Text("flight_number", limit=8,
                     rules=(matching(r"^[A-Z0-9]{2,8}$", "must be letters and digits, e.g. SA101"),))
FIRST_NAME = Text("passenger.first_name")
LAST_NAME = Text("passenger.last_name")
EMAIL = Text("passenger.email", limit=254, required=False,
             rules=(matching(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "is not an email address"),))
CARD_TOKEN = Text("payment.card_token", limit=200, rules=(
    not_matching(_PAN_PATTERN, "looks like a card number; send a token from the payment provider"),))
SEAT = Text("seat", limit=4, required=False, rules=(on_the_aircraft,))
CABIN = Text("cabin", limit=10, required=False, rules=(one_of(CABINS),))
LOYALTY_ID = Text("loyalty_id", limit=32, required=False,
                  rules=(matching(r"^[A-Z0-9]{2,32}$", "must be letters and digits, e.g. FF0001"),))

BOOKING_FIELDS = frozenset({
    "flight_number", "passenger", "seat", "cabin", "loyalty_id", "points_to_redeem", "payment", "simulate_failure",
})
SEAT_STATUSES = tuple(status.value for status in SeatStatus)


# --- The body ---------------------------------------------------------------------------
#: What _json returns for a body that is not JSON (the problem is added): JSON null is None.
_NOT_JSON = object()


def _json(raw_body: bytes | str | None, problems: Problems, *, required: bool) -> Any:
    if not raw_body:
        if required:
            problems.add(None, "the request needs a JSON body")
            return _NOT_JSON
        return {}
    try:
        return json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        problems.add(None, f"the body is not valid JSON: {exc}")
        return _NOT_JSON


def _object(body: Mapping[str, Any], name: str, problems: Problems) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        problems.add(name, f"{name} is required")
        return None
    if not isinstance(value, dict):
        problems.add(name, f"{name} must be an object")
        return None
    return value


def _body_object(body: Any, problems: Problems) -> dict[str, Any] | None:
    """The body when it is a JSON object; a body that is not JSON is already reported."""
    if isinstance(body, dict):
        return body
    if body is not _NOT_JSON:
        problems.add(None, "the body must be a JSON object")
    return None


# --- POST /bookings ---------------------------------------------------------------------
def parse_booking_request(body: Any, *, fault_injection_allowed: bool) -> BookingRequest:
    """A ``POST /bookings`` body (parsed JSON) as a BookingRequest, or InvalidRequest
    naming every invalid field."""
    problems = Problems()
    request = _booking_request(body, problems, fault_injection_allowed=fault_injection_allowed)
    problems.raise_any()
    assert request is not None  # no problem, so the request was built
    return request


class BookingPost(NamedTuple):
    """Everything a ``POST /bookings`` says: its body, its idempotency key and correlation id."""

    request: BookingRequest
    idempotency_key: str | None
    correlation_id: str


def parse_booking_post(
    raw_body: bytes | str | None, headers: Mapping[str, str], *, fault_injection_allowed: bool,
) -> BookingPost:
    """The body and the headers of ``POST /bookings``, every problem of both reported at once."""
    problems = Problems()
    body = _json(raw_body, problems, required=True)
    request = _booking_request(body, problems, fault_injection_allowed=fault_injection_allowed)
    idempotency_key = _header_value(headers, "Idempotency-Key", problems)
    correlation = _header_value(headers, "X-Correlation-Id", problems)
    problems.raise_any()
    assert request is not None  # no problem, so the request was built
    # No X-Correlation-Id: the one this request's log lines already carry (the route
    # generated it), so the booking and the logs agree.
    return BookingPost(request, idempotency_key, correlation or bound_value("correlation_id") or str(uuid.uuid4()))


def _booking_request(body: Any, problems: Problems, *, fault_injection_allowed: bool) -> BookingRequest | None:
    """The request; None when a required part is missing or invalid. Built despite
    other problems, it is never used: the caller raises them."""
    fields = _body_object(body, problems)
    if fields is None:
        return None
    for unknown in sorted(set(fields) - BOOKING_FIELDS):
        problems.add(unknown, f"unknown field: {unknown}")
    flight_number = FLIGHT_NUMBER.read(fields, problems)
    passenger = _passenger(fields, problems)
    card_token = _card_token(fields, problems)
    seat, cabin = _seat_choice(fields, problems)
    loyalty_id = LOYALTY_ID.read(fields, problems)
    points = _points(fields, problems)
    simulate = _simulate_failure(fields, problems, allowed=fault_injection_allowed)
    if flight_number is None or passenger is None or card_token is None:
        return None
    return BookingRequest(
        flight_number=flight_number, passenger=passenger, card_token=card_token, seat=seat, cabin=cabin,
        loyalty_id=loyalty_id, points_to_redeem=points, simulate_failure=simulate,
    )


def _passenger(body: Mapping[str, Any], problems: Problems) -> Passenger | None:
    raw = _object(body, "passenger", problems)
    if raw is None:
        return None
    first_name, last_name = FIRST_NAME.read(raw, problems), LAST_NAME.read(raw, problems)
    email = EMAIL.read(raw, problems)
    if first_name is None or last_name is None:
        return None
    return Passenger(first_name=first_name, last_name=last_name, email=email)


def _card_token(body: Mapping[str, Any], problems: Problems) -> str | None:
    raw = _object(body, "payment", problems)
    if raw is None:
        return None
    if set(raw) - {"card_token"}:
        problems.add("payment", "payment takes only a card_token; never send card numbers or other card data")
    return CARD_TOKEN.read(raw, problems)


def _seat_choice(body: Mapping[str, Any], problems: Problems) -> tuple[str | None, str | None]:
    seat, cabin = SEAT.read(body, problems), CABIN.read(body, problems)
    if body.get("seat") is None and body.get("cabin") is None:
        problems.add("seat", "give a seat (e.g. \"12A\") or a cabin to auto-assign one")
    elif seat is not None and cabin is not None and (seat_cabin := cabin_of_seat(seat)) != cabin:
        problems.add("cabin", f"seat {seat} is in {seat_cabin}, not {cabin}")
    return seat, cabin


def _points(body: Mapping[str, Any], problems: Problems) -> int:
    points = body.get("points_to_redeem")
    if points is None:
        return 0
    # bool is an int in Python; JSON true is not a number of points.
    if isinstance(points, bool) or not isinstance(points, int):
        problems.add("points_to_redeem", "points_to_redeem must be a whole number")
    elif points < 0:
        problems.add("points_to_redeem", "points_to_redeem must not be negative")
    elif points > 0 and body.get("loyalty_id") is None:  # an invalid loyalty_id is reported on its own
        problems.add("loyalty_id", "points_to_redeem needs a loyalty_id")
    else:
        return points
    return 0


def _simulate_failure(body: Mapping[str, Any], problems: Problems, *, allowed: bool) -> dict[str, str]:
    raw = body.get("simulate_failure")
    if raw is None or raw == {}:
        return {}
    if not allowed:
        problems.add("simulate_failure", "simulate_failure is disabled on this stage")
        return {}
    if not isinstance(raw, dict):
        problems.add("simulate_failure", "simulate_failure must map a step name to a mode")
        return {}
    known = STEP_NAMES + COMPENSATION_NAMES
    simulate: dict[str, str] = {}
    for step, mode in raw.items():
        if step not in known:
            problems.add(f"simulate_failure.{step}",
                         f"simulate_failure names an unknown step {step!r}; known: {', '.join(known)}")
        elif mode not in FAILURE_MODES:
            problems.add(f"simulate_failure.{step}",
                         f"simulate_failure mode for {step} must be one of {', '.join(FAILURE_MODES)}")
        else:
            simulate[step] = mode
    return simulate


# --- POST /bookings/{id}/cancel ----------------------------------------------------------
def parse_cancellation(
    booking_id: str, raw_body: bytes | str | None, *, fault_injection_allowed: bool,
) -> dict[str, str]:
    """The path id and the optional body of a cancel; returns its ``simulate_failure``."""
    problems = Problems()
    _booking_id(booking_id, problems)
    body = _body_object(_json(raw_body, problems, required=False), problems)
    simulate: dict[str, str] = {}
    if body is not None:
        simulate = _simulate_failure(body, problems, allowed=fault_injection_allowed)
        # A fault at a task the cancellation never runs would be accepted and never fire.
        runs = [compensation.name for compensation in CANCELLATION_STEPS]
        never = sorted(set(simulate) - set(runs))
        if never:
            problems.add("simulate_failure",
                         f"a cancellation runs only {', '.join(runs)}; not {', '.join(never)}")
    problems.raise_any()
    return simulate


# --- Query strings, headers, path ids -----------------------------------------------------
def parse_seat_filters(query: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``?status=&cabin=`` of the seat map: each optional, each one of its values."""
    problems = Problems()
    status = _choice(query.get("status"), SEAT_STATUSES, "status", problems)
    cabin = _choice(query.get("cabin"), CABINS, "cabin", problems)
    problems.raise_any()
    return status, cabin


def _choice(value: str | None, allowed: tuple[str, ...], name: str, problems: Problems) -> str | None:
    if not value:
        return None
    wrong = one_of(allowed)(name, value)
    if wrong is not None:
        problems.add(name, wrong)
        return None
    return value


def is_correlation_id(value: str) -> bool:
    return bool(_HEADER_VALUE_PATTERN.match(value))


def _header_value(headers: Mapping[str, str], name: str, problems: Problems) -> str | None:
    """An optional header of correlation-id shape (case-insensitive name)."""
    value = next((value for key, value in (headers or {}).items() if key.lower() == name.lower()), None)
    if value is not None and not is_correlation_id(value):
        problems.add(name, f"{name} {_HEADER_VALUE_RULE}")
        return None
    return value


def check_booking_id(booking_id: str) -> str:
    problems = Problems()
    _booking_id(booking_id, problems)
    problems.raise_any()
    return booking_id


def _booking_id(booking_id: str, problems: Problems) -> None:
    if not _BOOKING_ID_PATTERN.match(booking_id):
        problems.add("booking_id", "booking_id is not a booking id")
