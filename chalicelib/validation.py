"""Checking what an HTTP request sends, before anything is written: the JSON body, the
booking and cancel bodies, query-string choices, the headers and the path ids.

Every check runs and every invalid field is reported at once, in one InvalidRequest
whose ``problems`` name each field (``passenger.first_name`` for a nested one). A check
that depends on another field runs only when that field is valid, so one mistake is
reported once. The rules of the domain themselves (which seats exist, the cabin of a
row) stay in models.py; this module only asks them.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from chalicelib import clock
from chalicelib.errors import InvalidRequest, UnsupportedMediaType
from chalicelib.logs import bound_value
from chalicelib.models import CABINS, MAX_LEGS, MAX_PASSENGERS, BookingRequest, Fault, Passenger, cabin_of_seat
from chalicelib.vocabulary import (
    BOOKING_SAGA_TASK_NAMES,
    CANCELLATION_STEPS,
    COMPENSATION_NAMES,
    FAILURE_MODES,
    FORWARD_STEP_NAMES,
    RESERVE_SEATS,
    TASKS,
    FailureMode,
    SeatStatus,
)

# Patterns are matched whole (fullmatch): "$" would also match before a final newline.
# The formats are public: the API description (chalicelib/openapi.py) states them as is.
BOOKING_ID_FORMAT = r"[0-9a-f-]{36}"
HEADER_VALUE_FORMAT = r"[A-Za-z0-9._:-]{1,128}"
_BOOKING_ID_PATTERN = re.compile(BOOKING_ID_FORMAT)
_HEADER_VALUE_PATTERN = re.compile(HEADER_VALUE_FORMAT)
_HEADER_VALUE_RULE = "must be 1-128 letters, digits or . _ : -"
# A card number is 12-19 digits, however they are grouped (one space of any kind, dot,
# dash, slash or underscore between digits), starting as a card network's do (2-6) and
# passing the Luhn check, as PCI scanners test, and not inside a UUID (a booking id: one
# uuid4 in 500 holds a run that would pass). Nothing that does is accepted, stored,
# echoed or logged.
_DIGIT_RUN = re.compile(r"(?<!\d)[2-6](?:[\s./_-]?\d){11,18}(?!\d)")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CARD_NUMBER_REMOVED = "[card number removed]"
MAX_POINTS = 100_000_000  # far above any balance; DynamoDB numbers stop at 38 digits


def _passes_luhn(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _card_numbers(text: str) -> list[re.Match[str]]:
    uuids = [match.span() for match in _UUID.finditer(text)]
    return [match for match in _DIGIT_RUN.finditer(text)
            if _passes_luhn(re.sub(r"\D", "", match.group()))
            and not any(start <= match.start() < end for start, end in uuids)]


# In a request body no field has any business holding twelve digits or more, however they
# are separated or written (fullwidth digits are digits once NFKC-normalised): stricter
# than the card-number check, which paths and headers (UUIDs) need.
_DIGIT_RUN_IN_BODY = re.compile(r"\d(?:[\s./_|\\-]*\d){11,}")
#: The payment provider's token format: what the API takes instead of card data.
TOKEN_FORMAT = r"tok_[A-Za-z0-9_]{1,64}"


def holds_a_card_number(value: str) -> bool:
    return _DIGIT_RUN_IN_BODY.search(unicodedata.normalize("NFKC", value)) is not None


def looks_like_card_number(value: str) -> bool:
    return bool(_card_numbers(unicodedata.normalize("NFKC", value)))


def without_card_numbers(text: str) -> str:
    """``text`` with anything that looks like a card number replaced: for what the API
    echoes of a request (messages, fields, the path in a log line). Read NFKC-normalised,
    as the body's own check reads it, so fullwidth digits are digits here too."""
    text = unicodedata.normalize("NFKC", text)
    for match in reversed(_card_numbers(text)):
        text = text[:match.start()] + CARD_NUMBER_REMOVED + text[match.end():]
    return text


class Problems:
    """The problems found so far in one request, in the order they were checked."""

    def __init__(self) -> None:
        self.found: list[dict[str, str | None]] = []

    def add(self, field: str | None, message: str) -> None:
        """A problem; a field already reported keeps its first one (a card number in it
        is said before its format is)."""
        if field is not None and any(problem["field"] == field for problem in self.found):
            return
        self.found.append({"field": field, "message": message})

    def raise_any(self) -> None:
        if self.found:
            raise InvalidRequest.listing(self.found)


# --- Text fields, declared -------------------------------------------------------------
#: A rule of a text field: (its name, its value) -> what is wrong, or None.
Rule = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Matching:
    """A rule: the whole value matches ``pattern``. A value, not a closure, so the API
    description (chalicelib/openapi.py) states the very pattern that is enforced."""

    pattern: str
    wrong: str

    def __call__(self, name: str, value: str) -> str | None:
        return None if re.fullmatch(self.pattern, value) else f"{name} {self.wrong}"


def matching(pattern: str, wrong: str) -> Rule:
    return Matching(pattern, wrong)


def _card_number_in(name: str | None) -> str:
    why = "send a token from the payment provider" if name == CARD_TOKEN.name else "never send card numbers"
    return f"{name} looks like a card number; {why}"


@dataclass(frozen=True)
class OneOf:
    """A rule: the value is one of ``allowed`` (an enum in the API description)."""

    allowed: tuple[str, ...]

    def __call__(self, name: str, value: str) -> str | None:
        return None if value in self.allowed else f"{name} must be one of {', '.join(self.allowed)}"


def one_of(allowed: tuple[str, ...]) -> Rule:
    return OneOf(allowed)


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
        if not isinstance(value, str) or not _visible(value):
            problems.add(self.name, f"{self.name} must be a non-empty string")
            return None
        if len(value) > self.limit:
            problems.add(self.name, f"{self.name} must be at most {self.limit} characters")
            return None
        if holds_a_card_number(value):  # first: whatever else is wrong, this is the reason to give
            problems.add(self.name, _card_number_in(self.name))
            return None
        if not _clean(value):
            problems.add(self.name, f"{self.name} must be text without control characters")
            return None
        value = value.strip()
        for rule in self.rules:
            wrong = rule(self.name, value)
            if wrong is not None:
                problems.add(self.name, wrong)
                return None
        return value


def _visible(value: str) -> bool:
    """Something other than white space and invisible formatting characters."""
    return any(not character.isspace() and unicodedata.category(character) != "Cf" for character in value)


def _clean(value: str) -> bool:
    """No control characters (NUL, newline, escapes) and no lone UTF-16 surrogates,
    which no table, log or header can hold."""
    return not any(unicodedata.category(character) in ("Cc", "Cs") for character in value)


FLIGHT_NUMBER = Text("flight_number", limit=8,
                     rules=(matching(r"[A-Z0-9]{2,8}", "must be letters and digits, e.g. SA101"),))
FIRST_NAME = Text("passenger.first_name")
LAST_NAME = Text("passenger.last_name")
EMAIL = Text("passenger.email", limit=254, required=False,
             rules=(matching(r"[^@\s]+@[^@\s]+\.[^@\s]+", "is not an email address"),))
CARD_TOKEN = Text("payment.card_token", limit=200, rules=(
    matching(TOKEN_FORMAT, "must be a token from the payment provider: tok_ and 1-64 letters, digits or _"),
))
SEAT = Text("seat", limit=4, required=False, rules=(on_the_aircraft,))
CABIN = Text("cabin", limit=10, required=False, rules=(one_of(CABINS),))
LOYALTY_ID = Text("loyalty_id", limit=32, required=False,
                  rules=(matching(r"[A-Z0-9]{2,32}", "must be letters and digits, e.g. FF0001"),))

BOOKING_FIELDS = frozenset({
    "flight_number", "flights", "passenger", "passengers", "seat", "cabin", "loyalty_id", "points_to_redeem",
    "payment", "simulate_failure",
})
PASSENGER_FIELDS = frozenset({"first_name", "last_name", "email"})
PARTY_PASSENGER_FIELDS = PASSENGER_FIELDS | {"seats"}
LEG_FAULT_FIELDS = frozenset({"leg", "mode", "passenger"})
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
        return json.loads(raw_body, object_pairs_hook=_JsonObject.of)
    except RecursionError:
        problems.add(None, "the body nests too deep to read")
    except (ValueError, UnicodeDecodeError) as exc:
        problems.add(None, f"the body is not valid JSON: {exc}")
    return _NOT_JSON


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers the keys it was sent twice: which one wins is up to
    the parser, so each container's check refuses them, by path."""

    repeated: tuple[str, ...] = ()

    @classmethod
    def of(cls, pairs: list[tuple[str, Any]]) -> _JsonObject:
        made = cls(pairs)
        if len(made) < len(pairs):
            seen: set[str] = set()
            repeated = []
            for key, _ in pairs:
                if key in seen:
                    repeated.append(key)
                seen.add(key)
            made.repeated = tuple(repeated)
        return made


def _no_card_numbers(body: Mapping[str, Any], problems: Problems) -> None:
    """Every string of the body, keys included, at any depth (walked, not recursed: a deep
    body must not exhaust the stack): twelve digits or more refuse the field that holds them."""
    pending: list[tuple[str | None, Any]] = [(None, body)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if holds_a_card_number(value):
                problems.add(path, _card_number_in(path))
        elif isinstance(value, dict):
            for key, item in value.items():
                if holds_a_card_number(str(key)):
                    problems.add(path, f"{path or 'the body'} has a key that looks like a card number; "
                                       "never send card numbers")
                else:
                    pending.append((f"{path}.{key}" if path else str(key), item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]" if path else f"[{index}]", item) for index, item in enumerate(value))


def _repeated_keys(container: Mapping[str, Any], where: str | None, problems: Problems) -> None:
    for key in sorted(set(getattr(container, "repeated", ()))):
        path = f"{where}.{key}" if where else key
        problems.add(where if looks_like_card_number(key) else path, f"{path} is sent twice: send each key once")


def _unknown_keys(container: Mapping[str, Any], known: frozenset[str], where: str | None, problems: Problems,
                  message: str = "unknown field: {path}") -> None:
    """One problem per key the client should not have sent, or sent twice, named by its
    path; a key that looks like a card number is reported on its container, never repeated."""
    _repeated_keys(container, where, problems)
    for key in sorted(set(container) - known):
        if looks_like_card_number(key):
            problems.add(where, f"{where or 'the body'} has a key that looks like a card number; "
                                "never send card numbers")
        else:
            path = f"{where}.{key}" if where else key
            problems.add(path, message.format(path=path))


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
    other problems, it is never used: the caller raises them.

    Two forms: a party (``flights`` in travel order, ``passengers`` each with their
    ``seats`` by flight) or one seat (``flight_number``, ``passenger``, ``seat``), which is
    one leg and one passenger."""
    fields = _body_object(body, problems)
    if fields is None:
        return None
    _unknown_keys(fields, BOOKING_FIELDS, None, problems)
    flights = _flights(fields, problems)
    party = "passengers" in fields or "flights" in fields
    passengers = _party(fields, flights, problems) if party else _one_passenger(fields, flights, problems)
    card_token = _card_token(fields, problems)
    cabin = _cabin(fields, passengers, problems, one_seat=not party)
    loyalty_id = LOYALTY_ID.read(fields, problems)
    points = _points(fields, problems)
    simulate = _simulate_failure(fields, problems, allowed=fault_injection_allowed,
                                 legs=len(flights or ()), passengers=len(passengers or ()))
    # A fault at a task the booking saga never runs (RefundPayment: a cancellation's) would
    # be accepted and never fire.
    runs = BOOKING_SAGA_TASK_NAMES
    for step in sorted(set(simulate) - set(runs)):
        problems.add(f"simulate_failure.{step}", f"a booking runs only {', '.join(runs)}; not {step} "
                                                 "(a cancellation's: send it with the cancel)")
    _no_card_numbers(fields, problems)  # last: a field already refused keeps its first reason
    if not flights or passengers is None or card_token is None:
        return None
    return BookingRequest(
        flight_number=flights[0], flights=tuple(flights), passengers=tuple(passengers), card_token=card_token,
        seat=passengers[0].seats.get(flights[0]) if not party else None, cabin=cabin, loyalty_id=loyalty_id,
        points_to_redeem=points, simulate_failure=simulate, one_seat=not party,
    )


def _flights(body: Mapping[str, Any], problems: Problems) -> list[str] | None:
    """``flights`` (1-4 flight numbers, each once, in travel order), or the one ``flight_number``."""
    if "flights" not in body:
        flight_number = FLIGHT_NUMBER.read(body, problems)
        return [flight_number] if flight_number else None
    if "flight_number" in body:
        problems.add("flight_number", "give flights or flight_number, not both")
        return None
    raw = body.get("flights")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LEGS:
        problems.add("flights", f"flights must be a list of 1 to {MAX_LEGS} flight numbers, in travel order")
        return None
    flights: list[str] = []
    for index, value in enumerate(raw):
        name = f"flights[{index}]"
        flight = Text(name, limit=FLIGHT_NUMBER.limit, rules=FLIGHT_NUMBER.rules).read({name: value}, problems)
        if flight is not None and flight in flights:
            problems.add(name, f"flights names {flight} twice: each leg is a different flight")
        elif flight is not None:
            flights.append(flight)
    return flights if len(flights) == len(raw) else None


def _one_passenger(body: Mapping[str, Any], flights: list[str] | None, problems: Problems) -> list[Passenger] | None:
    """The one-seat form: ``passenger`` and an optional ``seat`` on the one flight."""
    raw = _object(body, "passenger", problems)
    seat = SEAT.read(body, problems)
    if raw is None:
        return None
    _unknown_keys(raw, PASSENGER_FIELDS, "passenger", problems)
    first_name, last_name = FIRST_NAME.read(raw, problems), LAST_NAME.read(raw, problems)
    email = EMAIL.read(raw, problems)
    if first_name is None or last_name is None:
        return None
    seats = {flights[0]: seat} if seat and flights else {}
    return [Passenger(first_name=first_name, last_name=last_name, email=email, seats=seats)]


def _party(body: Mapping[str, Any], flights: list[str] | None, problems: Problems) -> list[Passenger] | None:
    """``passengers``: 1 to 9, each with a name, an optional email and optional ``seats``
    (flight number -> a seat on the aircraft, for a flight of ``flights``; no seat twice)."""
    for single in ("passenger", "seat"):
        if single in body:
            problems.add(single, f"{single} is for one passenger on one flight_number; with flights or passengers, "
                                 "give each passenger's seats in passengers[i].seats")
    raw = body.get("passengers")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_PASSENGERS:
        problems.add("passengers", f"passengers must be a list of 1 to {MAX_PASSENGERS} passengers")
        return None
    passengers: list[Passenger] = []
    taken: dict[tuple[str, str], str] = {}
    for index, item in enumerate(raw):
        where = f"passengers[{index}]"
        if not isinstance(item, dict):
            problems.add(where, f"{where} must be an object")
            continue
        _unknown_keys(item, PARTY_PASSENGER_FIELDS, where, problems)
        first_name = Text(f"{where}.first_name").read(item, problems)
        last_name = Text(f"{where}.last_name").read(item, problems)
        email = Text(f"{where}.email", limit=EMAIL.limit, required=False, rules=EMAIL.rules).read(item, problems)
        seats = _seats_of(item, where, flights, taken, problems)
        if first_name is not None and last_name is not None and seats is not None:
            passengers.append(Passenger(first_name=first_name, last_name=last_name, email=email, seats=seats))
    return passengers if len(passengers) == len(raw) else None


def _seats_of(item: Mapping[str, Any], where: str, flights: list[str] | None, taken: dict[tuple[str, str], str],
              problems: Problems) -> dict[str, str] | None:
    """A passenger's chosen seats; None (and the problem added) when any is wrong."""
    raw = item.get("seats")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.add(f"{where}.seats", f'{where}.seats must map a flight number to a seat, e.g. {{"SA101": "12A"}}')
        return None
    _repeated_keys(raw, f"{where}.seats", problems)
    seats: dict[str, str] = {}
    for flight, value in raw.items():
        path = f"{where}.seats.{flight}"
        if looks_like_card_number(flight):
            problems.add(f"{where}.seats", f"{where}.seats has a key that looks like a card number; never send card "
                                           "numbers")
            return None
        seat = Text(path, limit=4, rules=(on_the_aircraft,)).read({flight: value}, problems)
        if seat is None:
            return None
        if flights is not None and flight not in flights:
            problems.add(path, f"{path}: {flight} is not one of the booking's flights ({', '.join(flights)})")
            return None
        if (flight, seat) in taken:
            problems.add(path, f"{path}: seat {seat} on {flight} is {taken[(flight, seat)]}'s already: "
                               "one seat per passenger")
            return None
        taken[(flight, seat)] = where
        seats[flight] = seat
    return seats


def _cabin(body: Mapping[str, Any], passengers: list[Passenger] | None, problems: Problems, *,
           one_seat: bool) -> str | None:
    """The booking's ``cabin``: every chosen seat must be in it; without it the chosen
    seats' own cabin (one for the whole booking); with neither, nothing says where to seat
    anyone."""
    cabin = CABIN.read(body, problems)
    if body.get("cabin") is not None and cabin is None:
        return None
    chosen = [(flight, seat) for passenger in passengers or [] for flight, seat in passenger.seats.items()]
    if not chosen:
        if cabin is None and body.get("seat") is None:
            if one_seat:
                problems.add("seat", 'give a seat (e.g. "12A") or a cabin to auto-assign one')
            elif passengers is not None:
                problems.add("cabin", "give a cabin, or the passengers' seats, to say where to seat the party")
        return cabin
    expected = cabin or cabin_of_seat(chosen[0][1])
    for flight, seat in chosen:
        if (seat_cabin := cabin_of_seat(seat)) != expected:
            problems.add("cabin", f"seat {seat} is in {seat_cabin}, not {expected}" if one_seat else
                         f"seat {seat} on {flight} is in {seat_cabin}, not {expected}: a booking has one cabin")
            break
    return cabin


def _card_token(body: Mapping[str, Any], problems: Problems) -> str | None:
    raw = _object(body, "payment", problems)
    if raw is None:
        return None
    _unknown_keys(raw, frozenset({"card_token"}), "payment", problems,
                  "{path}: payment takes only a card_token; never send card numbers or other card data")
    return CARD_TOKEN.read(raw, problems)


def _points(body: Mapping[str, Any], problems: Problems) -> int:
    points = body.get("points_to_redeem")
    if points is None:
        return 0
    # bool is an int in Python; JSON true is not a number of points.
    if isinstance(points, bool) or not isinstance(points, int):
        problems.add("points_to_redeem", "points_to_redeem must be a whole number")
    elif points < 0:
        problems.add("points_to_redeem", "points_to_redeem must not be negative")
    elif points > MAX_POINTS:
        problems.add("points_to_redeem", f"points_to_redeem must be at most {MAX_POINTS:,}")
    elif points > 0 and body.get("loyalty_id") is None:  # an invalid loyalty_id is reported on its own
        problems.add("loyalty_id", "points_to_redeem needs a loyalty_id")
    else:
        return points
    return 0


def _simulate_failure(body: Mapping[str, Any], problems: Problems, *, allowed: bool, legs: int = 0,
                      passengers: int = 0) -> dict[str, Fault]:
    raw = body.get("simulate_failure")
    if raw is None or raw == {}:
        return {}
    if not allowed:
        problems.add("simulate_failure", "simulate_failure is disabled on this stage")
        return {}
    if not isinstance(raw, dict):
        problems.add("simulate_failure", "simulate_failure must map a step name to a mode")
        return {}
    _repeated_keys(raw, "simulate_failure", problems)
    known = FORWARD_STEP_NAMES + COMPENSATION_NAMES
    simulate: dict[str, Fault] = {}
    for step, mode in raw.items():
        if looks_like_card_number(step):
            problems.add("simulate_failure", "simulate_failure has a key that looks like a card number; "
                                             "never send card numbers")
        elif step not in known:
            problems.add(f"simulate_failure.{step}",
                         f"simulate_failure names an unknown step {step!r}; known: {', '.join(known)}")
        elif isinstance(mode, dict):
            fault = _leg_fault(step, mode, problems, legs=legs, passengers=passengers)
            if fault is not None:
                simulate[step] = fault
        elif mode not in FAILURE_MODES:
            problems.add(f"simulate_failure.{step}",
                         f"simulate_failure mode for {step} must be one of {', '.join(FAILURE_MODES)}")
        else:
            simulate[step] = mode
    return simulate


def _index(value: Any, count: int) -> bool:
    return type(value) is int and 0 <= value < count


def _leg_fault(step: str, raw: Mapping[str, Any], problems: Problems, *, legs: int,
               passengers: int) -> dict[str, Any] | None:
    """``{"leg": 1, "mode": "permanent", "passenger": 2}``: one leg of a per-leg task
    (0-based; ``mode`` permanent unless said), and for ReserveSeats optionally the
    passenger whose seat fails that leg's transaction as a whole."""
    where = f"simulate_failure.{step}"
    if not TASKS[step].per_leg:
        problems.add(where, f"{step} runs once, not per leg: give it a mode, one of {', '.join(FAILURE_MODES)}")
        return None
    _unknown_keys(raw, LEG_FAULT_FIELDS, where, problems)
    mode, leg, passenger = raw.get("mode", FailureMode.PERMANENT.value), raw.get("leg"), raw.get("passenger")
    count = len(problems.found)
    if mode not in FAILURE_MODES:
        problems.add(f"{where}.mode", f"{where}.mode must be one of {', '.join(FAILURE_MODES)}")
    if not _index(leg, max(legs, 1) if legs else MAX_LEGS):
        problems.add(f"{where}.leg", f"{where}.leg must be a leg of the booking, 0 to {max(legs, 1) - 1}")
    if passenger is not None:
        if step != RESERVE_SEATS.name or mode != FailureMode.PERMANENT:
            problems.add(f"{where}.passenger", f"{where}.passenger names whose seat fails the leg's transaction: "
                                               f"only with {RESERVE_SEATS.name} and mode permanent")
        elif not _index(passenger, passengers or MAX_PASSENGERS):
            problems.add(f"{where}.passenger",
                         f"{where}.passenger must be a passenger of the booking, 0 to {max(passengers, 1) - 1}")
    if len(problems.found) > count:
        return None
    return {"leg": leg, "mode": mode, **({"passenger": passenger} if passenger is not None else {})}


# --- POST /bookings/{id}/cancel ----------------------------------------------------------
def parse_cancellation(
    booking_id: str, raw_body: bytes | str | None, *, fault_injection_allowed: bool,
) -> dict[str, Fault]:
    """The path id and the optional body of a cancel; returns its ``simulate_failure``."""
    problems = Problems()
    _booking_id(booking_id, problems)
    body = _body_object(_json(raw_body, problems, required=False), problems)
    simulate: dict[str, Fault] = {}
    if body is not None:
        _no_card_numbers(body, problems)
        _unknown_keys(body, frozenset({"simulate_failure"}), None, problems)
        simulate = _simulate_failure(body, problems, allowed=fault_injection_allowed)
        # A fault at a task the cancellation never runs would be accepted and never fire.
        runs = [compensation.name for compensation in CANCELLATION_STEPS]
        for step in sorted(set(simulate) - set(runs)):
            problems.add(f"simulate_failure.{step}",
                         f"a cancellation runs only {', '.join(runs)}; not {step}")
    problems.raise_any()
    return simulate


# --- POST /auth/sign-in ------------------------------------------------------------------
USERNAME = Text("username", limit=128, rules=(matching(r"[\w.@+-]{1,128}", "must be a username, e.g. FF0001"),))
PASSWORD_LIMIT = 256


class SignIn(NamedTuple):
    username: str
    password: str


def parse_sign_in(raw_body: bytes | str | None) -> SignIn:
    """``{"username", "password"}``, nothing else. The password is checked for shape only,
    never trimmed, and never named in a message (it is not echoed, even wrong)."""
    problems = Problems()
    body = _body_object(_json(raw_body, problems, required=True), problems)
    username = password = None
    if body is not None:
        _unknown_keys(body, frozenset({"username", "password"}), None, problems)
        username = USERNAME.read(body, problems)
        password = body.get("password")
        if password is None:
            problems.add("password", "password is required")
        elif not isinstance(password, str) or not password or len(password) > PASSWORD_LIMIT \
                or not _clean(password):
            problems.add("password", f"password must be a string of 1-{PASSWORD_LIMIT} characters "
                                     "without control characters")
    problems.raise_any()
    assert username is not None and isinstance(password, str)
    return SignIn(username, password)


# --- Query strings, headers, path ids -----------------------------------------------------
def parse_seat_filters(query: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``?status=&cabin=`` of the seat map: each optional, given at most once, each one
    of its values; no other parameter (a misspelt filter would return the whole map)."""
    problems = Problems()
    _unknown_keys(query, frozenset({"status", "cabin"}), None, problems, "unknown query parameter: {path}")
    for name in ("status", "cabin"):
        if len(_all_values(query, name)) > 1:
            problems.add(name, f"give {name} at most once")
    status = _choice(query.get("status"), SEAT_STATUSES, "status", problems)
    cabin = _choice(query.get("cabin"), CABINS, "cabin", problems)
    problems.raise_any()
    return status, cabin


# --- GET /bookings: a page of the customer's bookings ------------------------------------------
LISTING_LIMIT_DEFAULT = 20
LISTING_LIMIT_MAX = 100
NEXT_TOKEN_LIMIT = 512  # characters; a real token is about 150
_TOKEN_VERSION = 1
# The token carries the booking's created_at as stored (the index's key).
_STORED_TIME = re.compile(clock.STORED_TIME_FORMAT)


class Listing(NamedTuple):
    limit: int
    after: tuple[str, str] | None  # (created_at, booking_id) of the last booking of the page before


def next_token(customer_id: str, created_at: str, booking_id: str) -> str:
    """The opaque ``next_token`` of a page ending at this booking. It names its customer,
    so a token replayed by anyone else is refused (``parse_listing``), not followed."""
    raw = json.dumps({"v": _TOKEN_VERSION, "c": customer_id, "t": created_at, "b": booking_id},
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def parse_listing(query: Mapping[str, str], customer_id: str) -> Listing:
    """``?limit=&next_token=`` of GET /bookings: each optional and at most once, nothing
    else; ``limit`` a whole number 1-100 (default 20); ``next_token`` one this API gave this
    customer."""
    problems = Problems()
    _unknown_keys(query, frozenset({"limit", "next_token"}), None, problems, "unknown query parameter: {path}")
    for name in ("limit", "next_token"):
        if len(_all_values(query, name)) > 1:
            problems.add(name, f"give {name} at most once")
    limit = LISTING_LIMIT_DEFAULT
    given = query.get("limit")
    if given is not None:
        if re.fullmatch(r"[0-9]{1,3}", given) and 1 <= int(given) <= LISTING_LIMIT_MAX:
            limit = int(given)
        else:
            problems.add("limit", f"limit must be a whole number from 1 to {LISTING_LIMIT_MAX}")
    token = query.get("next_token")
    after = _after(token, customer_id, problems) if token is not None else None
    problems.raise_any()
    return Listing(limit, after)


def _after(token: str, customer_id: str, problems: Problems) -> tuple[str, str] | None:
    wrong = "next_token is not one this API gave you: start again without it"
    try:
        if len(token) > NEXT_TOKEN_LIMIT or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
            raise ValueError(token)
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:  # binascii.Error and json.JSONDecodeError are ValueErrors; so is a bad UTF-8
        decoded = None
    if not (isinstance(decoded, dict) and set(decoded) == {"v", "c", "t", "b"}
            and type(decoded["v"]) is int and decoded["v"] == _TOKEN_VERSION
            and all(isinstance(decoded[key], str) for key in "ctb")
            and _STORED_TIME.fullmatch(decoded["t"]) and _BOOKING_ID_PATTERN.fullmatch(decoded["b"])):
        problems.add("next_token", wrong)
        return None
    if decoded["c"] != customer_id:  # another customer's listing: never followed
        problems.add("next_token", wrong)
        return None
    return decoded["t"], decoded["b"]


def _all_values(query: Mapping[str, str], name: str) -> list[str]:
    """Every value of a repeated parameter (Chalice's MultiDict), else the one."""
    getlist = getattr(query, "getlist", None)
    if getlist is not None:
        return list(getlist(name)) if name in query else []
    return [query[name]] if name in query else []


def _choice(value: str | None, allowed: tuple[str, ...], name: str, problems: Problems) -> str | None:
    if not value:
        return None
    wrong = one_of(allowed)(name, value)
    if wrong is not None:
        problems.add(name, wrong)
        return None
    return value


def check_content_type(content_type: str | None, accepted: list[str]) -> None:
    """A body's declared type must be one the route reads (none declared is JSON, as
    Chalice has it)."""
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media not in accepted:
        raise UnsupportedMediaType(f"send the body as application/json, not {media}")


def is_correlation_id(value: str) -> bool:
    """An id fit to keep, log and echo: short, plain, and not a card number."""
    return bool(_HEADER_VALUE_PATTERN.fullmatch(value)) and not looks_like_card_number(value)


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
    if not _BOOKING_ID_PATTERN.fullmatch(booking_id):
        problems.add("booking_id", "booking_id is not a booking id")
