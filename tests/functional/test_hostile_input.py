"""Hostile input, route by route, through chalice.test.Client on one embedded stack.

The rule under test: bad input gets a 4xx JSON error and writes nothing, never a 500.
A 400 is ``{"error": "InvalidRequest", "message", "field", "errors": [{"field",
"message"}, ...]}`` whose ``errors`` name every invalid field of the request (and only
those) and whose ``field`` is the first one named; a 404 or 415 has at least ``error``
and ``message``. No card number is accepted, nor echoed in a response or a log line.

Every case asserts all of it: status, body shape, the exact set of ``errors[].field``
(``None`` is the body as a whole), that no table changed, and that no card number
of PANS appears in the response or in the log lines of the request. Each case was
first written against the code as it was, where 42 of them failed (500s, writes,
card numbers echoed); they pass since the fixes in chalicelib/validation.py, app.py
and webpage.py.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from chalicelib.logs import logger
from tests.support import (
    TableWatch,
    booking_body,
    join_execution_threads,
    post_json,
    refusal_stack,
    wait_for_status,
)

#: The field of a problem with the body as a whole (not JSON, not an object).
BODY = None
PAN = "4242424242424242"  # a Visa test number; PANS holds every card number the cases send
PANS = (PAN, "5555555555554444")
UNKNOWN_BOOKING = str(uuid.UUID(int=0xABCDEF))


# --- The requests ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Hostile:
    """One request. ``body``: a dict (sent as JSON), raw text or bytes, or None (no body).
    ``path`` may hold ``{booking_id}``, filled in by ``at``."""

    method: str
    path: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json"

    def at(self, **ids: str) -> Hostile:
        return replace(self, path=self.path.format(**ids))

    def send(self, client: Any) -> Any:
        raw = json.dumps(self.body) if isinstance(self.body, dict) else self.body
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        content_type = {"content-type": self.content_type} if self.content_type else {}
        return client.http.request(self.method, self.path, headers={**content_type, **self.headers},
                                   body=raw or b"")


def booking(**fields: Any) -> Hostile:
    """POST /bookings: the valid booking_body() with ``fields`` replaced (None is JSON null)."""
    return Hostile("POST", "/bookings", {**booking_body(), **fields})


def booking_without(*names: str, **fields: Any) -> Hostile:
    """POST /bookings: the valid booking_body() without ``names``, ``fields`` replaced."""
    body = {key: value for key, value in {**booking_body(), **fields}.items() if key not in names}
    return Hostile("POST", "/bookings", body)


def raw_booking(raw: str | bytes, content_type: str | None = "application/json") -> Hostile:
    return Hostile("POST", "/bookings", raw, content_type=content_type)


def booking_headers(headers: dict[str, str], **fields: Any) -> Hostile:
    return replace(booking(**fields), headers=headers)


def passenger(**fields: Any) -> dict[str, Any]:
    return {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", **fields}


def get(path: str) -> Hostile:
    return Hostile("GET", path, content_type=None)


def cancel(body: Any, content_type: str | None = "application/json") -> Hostile:
    return Hostile("POST", "/bookings/{booking_id}/cancel", body, content_type=content_type)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- The stack, and what one request did ------------------------------------------------------
@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Any, TableWatch]]:
    """SA101 (162 free seats), SA102 (the flight back, departing after it; no seats: a party
    is refused before any is read) and the loyalty accounts, shared by every case."""
    from chalicelib import db
    from ops.seed import demo_flights

    with refusal_stack() as shared:
        db.batch_put("flights", [flight for flight in demo_flights() if flight["flight_number"] == "SA102"])
        yield shared


@dataclass
class Answer:
    status: int
    body: Any  # the JSON body, None when it is not JSON
    headers: dict[str, str]
    texts: list[str]  # the body, the headers and the log lines, JSON escapes undone
    changed: list[str]  # the tables the request changed


def _plain(text: str) -> str:
    """JSON re-dumped without escapes, so an echoed "4242\\u00a04242" is seen as digits."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


class _LogLines(logging.Handler):
    """The service's log lines as they are written: formatted in the thread that logs,
    so the keys bound to the request (its path, its correlation id) are in them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logger.registered_formatter.format(record))


@pytest.fixture
def send(stack: tuple[Any, TableWatch]) -> Iterator[Any]:
    """Send a Hostile request; the Answer holds what came back, what was logged and written."""
    client, tables = stack
    log = _LogLines()
    service_logger = logging.getLogger(logger.name)
    level = service_logger.level
    service_logger.addHandler(log)
    service_logger.setLevel(logging.INFO)  # the tests run at WARNING; "request refused" is INFO
    tables.changed()  # a baseline after whatever the test itself set up

    def sending(hostile: Hostile) -> Answer:
        log.lines.clear()
        response = hostile.send(client)
        join_execution_threads(timeout=30)
        changed = tables.changed()
        text = response.body.decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        texts = [_plain(line) for line in (text, *map(str, response.headers.values()), *log.lines)]
        return Answer(response.status_code, body, dict(response.headers), texts, changed)

    try:
        yield sending
    finally:
        service_logger.removeHandler(log)
        service_logger.setLevel(level)


def echoed_card_numbers(texts: list[str]) -> list[str]:
    """The PANS found in ``texts``, also with up to 3 separator characters between digits."""
    return [pan for pan in PANS
            if any(re.search(r"[^0-9]{0,3}".join(pan), text) for text in texts)]


def assert_refused_cleanly(answer: Answer, status: int, fields: set[str | None]) -> None:
    """The rule: the status, the documented shape, exactly ``fields`` named (a 400), nothing
    written, no card number echoed."""
    assert answer.status == status, (answer.status, answer.texts[0][:500])
    body = answer.body
    assert isinstance(body, dict), answer.texts[0][:500]
    assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body
    assert body["message"].strip(), body
    if status == 400:
        assert body["error"] == "InvalidRequest"
        assert set(body) <= {"error", "message", "field", "errors"}, body
        errors = body["errors"]
        assert errors and all(set(error) == {"field", "message"} and error["message"] for error in errors), body
        named = [error["field"] for error in errors]
        assert set(named) == fields, body
        assert body.get("field") == next((name for name in named if name is not None), None), body
    else:
        assert "errors" not in body and fields == set(), body  # refusals about the state of things
    assert answer.changed == []
    assert echoed_card_numbers(answer.texts) == []


# --- POST /bookings: the body -------------------------------------------------------------------
WRONG_TYPES = [
    pytest.param(raw_booking("null"), {BODY}, id="body-null"),
    pytest.param(raw_booking("42"), {BODY}, id="body-number"),
    pytest.param(raw_booking("true"), {BODY}, id="body-boolean"),
    pytest.param(raw_booking('["SA101"]'), {BODY}, id="body-array"),
    pytest.param(raw_booking('"SA101"'), {BODY}, id="body-string"),
    pytest.param(raw_booking("{}"), {"flight_number", "passenger", "payment", "seat"}, id="body-empty-object"),
    pytest.param(booking(flight_number=None, passenger=None, payment=None, cabin=None, seat=None, loyalty_id=None,
                         points_to_redeem=None, simulate_failure=None),
                 {"flight_number", "passenger", "payment", "seat"}, id="every-field-null"),
    pytest.param(raw_booking('{"flight_number": [], "passenger": {"first_name": {}, "last_name": null, "email": 5},'
                             ' "seat": true, "cabin": 1, "loyalty_id": {}, "points_to_redeem": "x",'
                             ' "payment": {"card_token": []}, "simulate_failure": "boom"}'),
                 {"flight_number", "passenger.first_name", "passenger.last_name", "passenger.email",
                  "payment.card_token", "seat", "cabin", "loyalty_id", "points_to_redeem", "simulate_failure"},
                 id="every-field-the-wrong-type"),
    pytest.param(booking(flight_number=["SA101"]), {"flight_number"}, id="flight_number-array"),
    pytest.param(booking(flight_number={"code": "SA101"}), {"flight_number"}, id="flight_number-object"),
    pytest.param(booking(flight_number=True), {"flight_number"}, id="flight_number-boolean"),
    pytest.param(booking(passenger=["Ada", "Lovelace"]), {"passenger"}, id="passenger-array"),
    pytest.param(booking(passenger="Ada Lovelace"), {"passenger"}, id="passenger-string"),
    pytest.param(booking(passenger={}), {"passenger.first_name", "passenger.last_name"}, id="passenger-empty"),
    pytest.param(booking(passenger=passenger(first_name=None, last_name=["L"])),
                 {"passenger.first_name", "passenger.last_name"}, id="names-null-and-array"),
    pytest.param(booking(passenger=passenger(email={"address": "ada@example.com"})), {"passenger.email"},
                 id="email-object"),
    pytest.param(booking(payment=[{"card_token": "tok_visa"}]), {"payment"}, id="payment-array"),
    pytest.param(booking(payment="tok_visa"), {"payment"}, id="payment-string"),
    pytest.param(booking(payment={"card_token": None}), {"payment.card_token"}, id="card_token-null"),
    pytest.param(booking(payment={"card_token": {"id": "tok_visa"}}), {"payment.card_token"}, id="card_token-object"),
    pytest.param(booking(payment={"card_token": "   "}), {"payment.card_token"}, id="card_token-blank"),
    pytest.param(booking(cabin=None, seat=["12A"]), {"seat"}, id="seat-array"),
    pytest.param(booking(cabin={"name": "ECONOMY"}), {"cabin"}, id="cabin-object"),
    pytest.param(booking(cabin=None, seat="99Z"), {"seat"}, id="seat-off-the-aircraft"),
    pytest.param(booking(cabin="PREMIUM", seat="99Z"), {"seat", "cabin"}, id="seat-and-cabin-both-wrong"),
    pytest.param(booking(loyalty_id=["FF0001"], points_to_redeem=100), {"loyalty_id"}, id="loyalty_id-array"),
    pytest.param(booking(simulate_failure="AuthorizePayment"), {"simulate_failure"}, id="simulate_failure-string"),
    pytest.param(booking(simulate_failure=["AuthorizePayment"]), {"simulate_failure"}, id="simulate_failure-array"),
    pytest.param(booking(simulate_failure=False), {"simulate_failure"}, id="simulate_failure-false"),
]

NUMBERS = [
    pytest.param(booking(loyalty_id="FF0001", points_to_redeem=True), {"points_to_redeem"}, id="points-true"),
    pytest.param(booking(loyalty_id="FF0001", points_to_redeem=False), {"points_to_redeem"}, id="points-false"),
    pytest.param(booking(loyalty_id="FF0001", points_to_redeem=[100]), {"points_to_redeem"}, id="points-array"),
    pytest.param(booking(loyalty_id="FF0001", points_to_redeem=1e2), {"points_to_redeem"}, id="points-float"),
    pytest.param(booking(loyalty_id="FF0001", points_to_redeem=-(10**40)), {"points_to_redeem"},
                 id="points-huge-negative"),
    pytest.param(raw_booking(json.dumps(booking_body(loyalty_id="FF0001"))[:-1] + ', "points_to_redeem": NaN}'),
                 {"points_to_redeem"}, id="points-NaN"),
    pytest.param(raw_booking(json.dumps(booking_body(loyalty_id="FF0001"))[:-1] + ', "points_to_redeem": Infinity}'),
                 {"points_to_redeem"}, id="points-Infinity"),
    pytest.param(raw_booking('{"flight_number": NaN, "passenger": Infinity, "payment": -Infinity, "cabin": "ECONOMY"}'),
                 {"flight_number", "passenger", "payment"}, id="NaN-and-Infinity-for-strings-and-objects"),
    pytest.param(raw_booking(json.dumps(booking_body(loyalty_id="FF0001"))[:-1] + ', "points_to_redeem": '
                             + "9" * 5000 + "}"), {BODY}, id="points-5000-digits"),
    pytest.param(booking(loyalty_id="FF0001", points_to_redeem=10**40), {"points_to_redeem"},
                 id="points-41-digits"),
]

TEXT = [
    pytest.param(booking(passenger=passenger(first_name="A" * 1_000_000)), {"passenger.first_name"},
                 id="first_name-a-megabyte"),
    pytest.param(booking(passenger=passenger(email="a" * 250 + "@example.com")), {"passenger.email"},
                 id="email-too-long"),
    pytest.param(booking(payment={"card_token": "t" * 201}), {"payment.card_token"}, id="card_token-too-long"),
    pytest.param(booking(flight_number="\uff33\uff21\uff11\uff10\uff11"), {"flight_number"},
                 id="flight_number-fullwidth"),
    pytest.param(booking(cabin=None, seat="\uff11\uff12A"), {"seat"}, id="seat-fullwidth-digits"),
    pytest.param(booking(cabin="economy"), {"cabin"}, id="cabin-lowercase"),
    pytest.param(booking(loyalty_id="FF 0001", points_to_redeem=1), {"loyalty_id"}, id="loyalty_id-with-space"),
    pytest.param(booking(**{"x" * 10_000: 1}), {"x" * 10_000}, id="unknown-field-with-a-huge-name"),
    pytest.param(booking(passenger=passenger(first_name="Ada\u0000", last_name="Love\nlace")),
                 {"passenger.first_name", "passenger.last_name"}, id="names-with-NUL-and-newline"),
    pytest.param(booking(passenger=passenger(first_name="\u001b[2J\u001b[31mAda")), {"passenger.first_name"},
                 id="first_name-with-terminal-escapes"),
    pytest.param(booking(passenger=passenger(first_name="\u200b\u200b")), {"passenger.first_name"},
                 id="first_name-only-zero-width-spaces"),
    pytest.param(booking(passenger=passenger(email="ada\u0007@example.com")), {"passenger.email"},
                 id="email-with-a-bell"),
    pytest.param(booking(payment={"card_token": "tok\u0000visa"}), {"payment.card_token"},
                 id="card_token-with-NUL"),
    pytest.param(booking(passenger=passenger(first_name="\ud800")), {"passenger.first_name"},
                 id="first_name-lone-surrogate"),
]

JSON_ITSELF = [
    pytest.param(raw_booking('{"flight_number": "SA101",'), {BODY}, id="truncated"),
    pytest.param(raw_booking("{'flight_number': 'SA101'}"), {BODY}, id="single-quotes"),
    pytest.param(raw_booking(b'{"flight_number": "SA\xff101"}'), {BODY}, id="not-utf-8"),
    pytest.param(raw_booking('{"passenger": {"first_name": "Ren\xe9"}}'.encode("latin-1")), {BODY}, id="latin-1"),
    pytest.param(raw_booking(json.dumps(booking_body()) + " trailing"), {BODY}, id="trailing-garbage"),
    pytest.param(booking(passenger=passenger(first_name=json.loads(nested(500)))), {"passenger.first_name"},
                 id="nested-500-deep-in-a-field"),
    pytest.param(raw_booking(nested(100_000)), {BODY}, id="nested-100000-deep"),
    # Too deep for the JSON parser itself: refused before any field is read.
    pytest.param(raw_booking('{"flight_number": ' + nested(5_000) + "}"), {BODY},
                 id="nested-5000-deep-in-a-field"),
    pytest.param(raw_booking('{"flight_number": "XX999", "flight_number": "SA101", "passenger": {"first_name": "Ada",'
                             ' "last_name": "Lovelace"}, "cabin": "ECONOMY", "payment": {"card_token": "tok_visa"}}'),
                 {"flight_number"}, id="duplicate-flight_number"),
    pytest.param(raw_booking('{"flight_number": "SA101", "passenger": {"first_name": "Ada", "last_name": "Lovelace"},'
                             f' "cabin": "ECONOMY", "payment": {{"card_token": "{PAN}", "card_token": "tok_visa"}}}}'),
                 {"payment.card_token"}, id="duplicate-card_token-hiding-a-pan"),
]

CARD_DATA = [
    pytest.param(booking(payment={"card_token": PAN}), {"payment.card_token"}, id="pan"),
    pytest.param(booking(payment={"card_token": "4242 4242 4242 4242"}), {"payment.card_token"}, id="pan-spaces"),
    pytest.param(booking(payment={"card_token": "4242-4242-4242-4242"}), {"payment.card_token"}, id="pan-dashes"),
    pytest.param(booking(payment={"card_token": f"  {PAN}  "}), {"payment.card_token"}, id="pan-padded"),
    pytest.param(booking(payment={"card_token": "5555 5555 5555 4444"}), {"payment.card_token"}, id="other-pan"),
    pytest.param(booking(payment={"card_token": "4242\t4242\t4242\t4242"}), {"payment.card_token"},
                 id="pan-tabs"),
    pytest.param(booking(payment={"card_token": "4242\u00a04242\u00a04242\u00a04242"}), {"payment.card_token"},
                 id="pan-no-break-spaces"),
    pytest.param(booking(payment={"card_token": "4242.4242.4242.4242"}), {"payment.card_token"},
                 id="pan-dots"),
    pytest.param(booking(payment={"card_token": "tok_visa", "number": PAN, "cvc": "123"}),
                 {"payment.number", "payment.cvc"}, id="payment-number-and-cvc"),
    pytest.param(booking(payment={"number": PAN, "exp": "12/30"}),
                 {"payment.number", "payment.exp", "payment.card_token"}, id="payment-card-data-without-token"),
    pytest.param(booking(passenger=passenger(card_number=PAN)), {"passenger.card_number"},
                 id="passenger-card_number"),
    pytest.param(booking(passenger=passenger(middle_name="Augusta", title=["Countess"])),
                 {"passenger.middle_name", "passenger.title"}, id="passenger-unknown-fields"),
    # Where a card number is the key, the fixed code has no name to give: the container is named.
    pytest.param(booking(**{PAN: "1230"}), {BODY}, id="pan-as-a-field-name"),
    pytest.param(booking(simulate_failure={"4242 4242 4242 4242": "permanent"}), {"simulate_failure"},
                 id="pan-as-a-step-name"),
]

SIMULATE_FAILURE = [
    pytest.param(booking(simulate_failure={"RecordFailure": "permanent"}), {"simulate_failure.RecordFailure"},
                 id="bookkeeping-RecordFailure"),
    pytest.param(booking(simulate_failure={"RecordCancellation": "permanent"}),
                 {"simulate_failure.RecordCancellation"}, id="bookkeeping-RecordCancellation"),
    pytest.param(booking(simulate_failure={"AuthorizePayment": 1}), {"simulate_failure.AuthorizePayment"},
                 id="mode-number"),
    pytest.param(booking(simulate_failure={"AuthorizePayment": None}), {"simulate_failure.AuthorizePayment"},
                 id="mode-null"),
    pytest.param(booking(simulate_failure={"AuthorizePayment": ["permanent"]}), {"simulate_failure.AuthorizePayment"},
                 id="mode-array"),
    pytest.param(booking(simulate_failure={"AuthorizePayment": {"mode": "permanent"}}),
                 {"simulate_failure.AuthorizePayment"}, id="mode-object"),
    pytest.param(booking(simulate_failure={"chargepayment": "permanent"}), {"simulate_failure.chargepayment"},
                 id="step-lowercase"),
    pytest.param(booking(simulate_failure={"RecordFailure": "permanent", "AuthorizePayment": "sometimes",
                                           "ReserveSeats": "transient"}),
                 {"simulate_failure.RecordFailure", "simulate_failure.AuthorizePayment"}, id="two-wrong-one-right"),
]


@pytest.mark.parametrize(("hostile", "fields"), WRONG_TYPES + NUMBERS + TEXT + JSON_ITSELF + CARD_DATA
                         + SIMULATE_FAILURE)
def test_a_hostile_booking_body_is_refused_400_and_writes_nothing(
    send: Any, hostile: Hostile, fields: set[str | None],
) -> None:
    """GIVEN SA101 with free seats and the loyalty accounts
    WHEN POST /bookings gets a body with wrong JSON types, out-of-range numbers, hostile text,
    malformed or ambiguous JSON, card data, or failures to simulate that do not exist
    THEN 400 naming exactly the invalid fields, no table changed and no card number in the
    response or the logs."""
    assert_refused_cleanly(send(hostile), 400, fields)


# --- POST /bookings: headers, content types, an unknown id ------------------------------------------------------
HEADERS_AND_CONTENT_TYPES = [
    pytest.param(booking_headers({"Idempotency-Key": ""}), 400, {"Idempotency-Key"}, id="idempotency-key-empty"),
    pytest.param(booking_headers({"Idempotency-Key": "ключ"}), 400, {"Idempotency-Key"}, id="idempotency-key-unicode"),
    pytest.param(booking_headers({"Idempotency-Key": "k" * 10_000}), 400, {"Idempotency-Key"},
                 id="idempotency-key-10000-characters"),
    pytest.param(booking_headers({"X-Correlation-Id": "a\tb"}), 400, {"X-Correlation-Id"}, id="correlation-id-tab"),
    pytest.param(booking_headers({"X-Correlation-Id": "x\r\nSet-Cookie: a=b"}), 400, {"X-Correlation-Id"},
                 id="correlation-id-crlf-injection"),
    pytest.param(booking_headers({"Idempotency-Key": "has spaces", "X-Correlation-Id": "{}"}, flight_number=1),
                 400, {"flight_number", "Idempotency-Key", "X-Correlation-Id"}, id="both-headers-and-the-body"),
    pytest.param(replace(raw_booking("{"), headers={"Idempotency-Key": "has spaces"}), 400,
                 {BODY, "Idempotency-Key"}, id="bad-header-with-a-body-that-is-not-json"),
    pytest.param(booking_headers({"Idempotency-Key": "key-1\n"}), 400, {"Idempotency-Key"},
                 id="idempotency-key-trailing-newline"),
    pytest.param(booking_headers({"X-Correlation-Id": "trace-1\n"}), 400, {"X-Correlation-Id"},
                 id="correlation-id-trailing-newline"),
    # Issue 12: twelve digits or more anywhere in the body are refused, an id included.
    pytest.param(booking(loyalty_id=PAN, points_to_redeem=100), 400, {"loyalty_id"}, id="pan-as-loyalty_id"),
    pytest.param(raw_booking("", "application/json"), 400, {BODY}, id="empty-json"),
    pytest.param(raw_booking("", "application/json; charset=utf-8"), 400, {BODY}, id="empty-json-with-charset"),
    pytest.param(raw_booking("", "text/plain"), 400, {BODY}, id="empty-text-plain"),
    pytest.param(raw_booking("", "application/x-www-form-urlencoded"), 400, {BODY}, id="empty-form"),
    pytest.param(raw_booking("", None), 400, {BODY}, id="empty-no-content-type"),
    pytest.param(raw_booking("flight_number=SA101&cabin=ECONOMY", "application/x-www-form-urlencoded"), 400, {BODY},
                 id="form-encoded-body"),
    pytest.param(raw_booking(json.dumps(booking_body()), "application/xml"), 415, set(), id="xml-content-type"),
    pytest.param(raw_booking("", "multipart/form-data; boundary=x"), 415, set(), id="multipart-content-type"),
]


@pytest.mark.parametrize(("hostile", "status", "fields"), HEADERS_AND_CONTENT_TYPES)
def test_hostile_booking_headers_and_content_types_are_refused_and_write_nothing(
    send: Any, hostile: Hostile, status: int, fields: set[str | None],
) -> None:
    """GIVEN SA101 with free seats and the loyalty accounts
    WHEN POST /bookings has a malformed Idempotency-Key or X-Correlation-Id, an empty body
    under each accepted content type, a content type it does not take, or a card number
    for a loyalty id
    THEN a 4xx in the API's shape naming the headers with the body's problems, nothing
    written, no card number echoed."""
    assert_refused_cleanly(send(hostile), status, fields)


# --- POST /bookings: a party over several legs -------------------------------------------------------------
def party(**fields: Any) -> Hostile:
    """POST /bookings: a valid party of two out and back (SA101, SA102), ``fields`` replaced."""
    body = {key: value for key, value in booking_body().items() if key not in ("flight_number", "passenger")}
    body.update(flights=["SA101", "SA102"], passengers=[{"first_name": "Ada", "last_name": "Lovelace"},
                                                        {"first_name": "Charles", "last_name": "Babbage"}])
    return Hostile("POST", "/bookings", {**body, **fields})


def travellers(*seats: Any, **extra: Any) -> list[dict[str, Any]]:
    """Passengers, the i-th with ``seats[i]`` (None: no choice) and ``extra`` on the first."""
    return [{"first_name": f"P{index}", "last_name": "Family", **({"seats": chosen} if chosen is not None else {}),
             **(extra if index == 0 else {})} for index, chosen in enumerate(seats)]


PARTIES = [
    pytest.param(party(flights=[]), 400, {"flights"}, id="no-flight"),
    pytest.param(party(flights=["SA101", "SA102", "SA201", "SA202", "SA301"]), 400, {"flights"}, id="five-legs"),
    pytest.param(party(flights="SA101"), 400, {"flights"}, id="flights-not-a-list"),
    pytest.param(party(flights=["SA101", "SA101"]), 400, {"flights[1]"}, id="a-flight-twice"),
    pytest.param(party(flights=["SA101", "sa-102"]), 400, {"flights[1]"}, id="bad-flight-number"),
    pytest.param(party(flights=["SA101", PAN]), 400, {"flights[1]"}, id="pan-as-flight"),
    pytest.param(party(flight_number="SA101"), 400, {"flight_number"}, id="flights-and-flight_number"),
    pytest.param(party(flights=["SA102", "SA101"]), 400, {"flights"}, id="out-of-travel-order"),
    pytest.param(party(passengers=[]), 400, {"passengers"}, id="no-passenger"),
    pytest.param(party(passengers=travellers(*[None] * 10)), 400, {"passengers"}, id="ten-passengers"),
    pytest.param(party(passengers=[{"first_name": "A", "last_name": "B"}, "C"]), 400, {"passengers[1]"},
                 id="a-passenger-not-an-object"),
    pytest.param(party(passengers=[{"first_name": "A"}]), 400, {"passengers[0].last_name"}, id="no-last-name"),
    pytest.param(party(passengers=travellers(None, nickname="Al")), 400, {"passengers[0].nickname"},
                 id="unknown-passenger-field"),
    pytest.param(party(passenger={"first_name": "A", "last_name": "B"}), 400, {"passenger"},
                 id="passenger-and-passengers"),
    pytest.param(party(seat="12A"), 400, {"seat"}, id="one-seat-field-with-a-party"),
    pytest.param(party(passengers=travellers({"SA999": "12A"})), 400, {"passengers[0].seats.SA999"},
                 id="a-seat-on-a-flight-not-booked"),
    pytest.param(party(passengers=travellers({"SA101": "12A"}, {"SA101": "12A"})), 400, {"passengers[1].seats.SA101"},
                 id="one-seat-twice-in-the-party"),
    pytest.param(party(passengers=travellers({"SA101": "12G"})), 400, {"passengers[0].seats.SA101"},
                 id="a-seat-not-on-the-aircraft"),
    pytest.param(party(passengers=travellers({"SA101": PAN})), 400, {"passengers[0].seats.SA101"},
                 id="pan-as-a-seat"),
    pytest.param(party(passengers=travellers({PAN: "12A"})), 400, {"passengers[0].seats"}, id="pan-as-a-flight-key"),
    pytest.param(party(passengers=travellers(["12A"])), 400, {"passengers[0].seats"}, id="seats-not-an-object"),
    pytest.param(party(cabin="FIRST", passengers=travellers({"SA101": "12A"})), 400, {"cabin"},
                 id="a-seat-outside-the-cabin"),
    pytest.param(party(cabin=None, passengers=travellers({"SA101": "1A"}, {"SA101": "12A"})), 400, {"cabin"},
                 id="seats-in-two-cabins"),
    pytest.param(party(cabin=None), 400, {"cabin"}, id="neither-cabin-nor-seats"),
    pytest.param(party(simulate_failure={"ReserveSeats": {"leg": 2}}), 400, {"simulate_failure.ReserveSeats.leg"},
                 id="fault-on-a-leg-not-booked"),
    pytest.param(party(simulate_failure={"ReserveSeats": {"leg": 0, "mode": "transient", "passenger": 1}}), 400,
                 {"simulate_failure.ReserveSeats.passenger"}, id="passenger-fault-not-permanent"),
    pytest.param(party(simulate_failure={"ReserveSeats": {"leg": 0, "passenger": 2}}), 400,
                 {"simulate_failure.ReserveSeats.passenger"}, id="fault-on-a-passenger-not-booked"),
    pytest.param(party(simulate_failure={"ReleaseSeats": {"leg": 0, "seat": "1A"}}), 400,
                 {"simulate_failure.ReleaseSeats.seat"}, id="unknown-leg-fault-field"),
    pytest.param(party(flights=["SA101", "SA999"]), 404, set(), id="unknown-flight"),
]


@pytest.mark.parametrize(("hostile", "status", "fields"), PARTIES)
def test_a_hostile_party_is_refused_and_writes_nothing(
    send: Any, hostile: Hostile, status: int, fields: set[str | None],
) -> None:
    """GIVEN the demo flights (SA101 departs before SA102)
    WHEN POST /bookings names too few or too many legs or passengers, legs out of travel
    order or unknown, a seat for a flight it does not book, one seat twice, a seat outside
    the cabin, or a fault on a leg or passenger the booking does not have
    THEN a 4xx in the API's shape naming exactly the invalid fields, nothing written."""
    assert_refused_cleanly(send(hostile), status, fields)


def test_an_unknown_leg_is_named_by_its_index(send: Any) -> None:
    """The 404 of an unknown flight names the leg of ``flights`` that is unknown (the
    one-seat form names ``flight_number``)."""
    answer = send(party(flights=["SA101", "SA999"]))
    assert (answer.status, answer.body["field"]) == (404, "flights[1]"), answer.body
    assert send(booking(flight_number="SA999")).body["field"] == "flight_number"


def test_a_party_naming_a_taken_seat_is_a_conflict_and_writes_nothing(
    stack: tuple[Any, TableWatch], send: Any,
) -> None:
    """GIVEN seat 14B on SA102 held by another booking WHEN a party names it THEN 409."""
    from tests.support import hold_seat

    hold_seat("SA102", "14B", "another-booking", seconds=600)
    stack[1].changed()  # the hold is this test's doing, not the request's
    assert_refused_cleanly(send(party(passengers=travellers(None, {"SA102": "14B"}))), 409, set())


# --- POST /bookings/{id}/cancel -----------------------------------------------------------------------
CANCEL_BODIES = [
    pytest.param(cancel("null"), 400, {BODY}, id="null"),
    pytest.param(cancel("[]"), 400, {BODY}, id="array"),
    pytest.param(cancel('"RefundPayment"'), 400, {BODY}, id="string"),
    pytest.param(cancel("{"), 400, {BODY}, id="malformed"),
    pytest.param(cancel(b'{"simulate_failure": "\xff"}'), 400, {BODY}, id="not-utf-8"),
    pytest.param(cancel({"simulate_failure": ["RefundPayment"]}), 400, {"simulate_failure"}, id="simulate-array"),
    pytest.param(cancel({"simulate_failure": "RefundPayment"}), 400, {"simulate_failure"}, id="simulate-string"),
    pytest.param(cancel({"simulate_failure": {"RefundPayment": 1}}), 400, {"simulate_failure.RefundPayment"},
                 id="mode-number"),
    pytest.param(cancel({"simulate_failure": {"RecordCancellation": "permanent"}}), 400,
                 {"simulate_failure.RecordCancellation"}, id="bookkeeping-RecordCancellation"),
    pytest.param(cancel({"simulate_failure": {"RecordFailure": "permanent"}}), 400,
                 {"simulate_failure.RecordFailure"}, id="bookkeeping-RecordFailure"),
    pytest.param(cancel({"simulate_failure": {"AuthorizePayment": "permanent"}}), 400,
                 {"simulate_failure.AuthorizePayment"}, id="forward-step"),
    pytest.param(cancel({"simulate_failure": {"ReserveSeats": "permanent", "AuthorizePayment": "timeout"}}), 400,
                 {"simulate_failure.ReserveSeats", "simulate_failure.AuthorizePayment"}, id="two-forward-steps"),
    pytest.param(cancel({"simulate_failures": {"RefundPayment": "permanent"}}), 400, {"simulate_failures"},
                 id="misspelt-simulate_failure"),
    pytest.param(cancel({"reason": "changed plans", "refund_to": PAN}), 400, {"reason", "refund_to"},
                 id="unknown-fields-one-a-pan"),
    pytest.param(cancel({"refund": 999999}), 400, {"refund"}, id="refund-999999"),  # issue 12: it cancelled
    pytest.param(cancel(nested(100_000)), 400, {BODY}, id="nested-100000-deep"),
    pytest.param(cancel(nested(1_000)), 400, {BODY}, id="nested-1000-deep"),  # issue 12: 500
    pytest.param(cancel("{}", "application/xml"), 415, set(), id="xml-content-type"),
]


@pytest.mark.parametrize(("hostile", "status", "fields"), CANCEL_BODIES)
def test_a_hostile_cancel_body_leaves_the_booking_confirmed(
    stack: tuple[Any, TableWatch], send: Any, hostile: Hostile, status: int, fields: set[str | None],
) -> None:
    """GIVEN a CONFIRMED booking
    WHEN POST /bookings/{id}/cancel gets a body of the wrong type, failures to simulate that a
    cancellation cannot run, unknown fields, or a content type it does not take
    THEN 400 (415) naming exactly the invalid fields, and no table changed: still CONFIRMED."""
    client, tables = stack
    response = post_json(client, "/bookings", booking_body())
    assert response.status_code == 202, response.body
    booking_id = response.json_body["booking_id"]
    assert wait_for_status(booking_id)["status"] == "CONFIRMED"
    join_execution_threads(timeout=30)
    tables.changed()  # the booking is the baseline

    assert_refused_cleanly(send(hostile.at(booking_id=booking_id)), status, fields)


# --- Path ids, query strings, assets --------------------------------------------------------------------
READS = [
    pytest.param(get("/bookings/not-a-booking-id"), 400, {"booking_id"}, id="booking-malformed"),
    pytest.param(get(f"/bookings/{UNKNOWN_BOOKING.upper()}"), 400, {"booking_id"}, id="booking-uppercase"),
    pytest.param(get(f"/bookings/{UNKNOWN_BOOKING}%0A"), 400, {"booking_id"}, id="booking-encoded-newline"),
    pytest.param(get("/bookings/' OR '1'='1"), 400, {"booking_id"}, id="booking-quotes"),
    pytest.param(get("/bookings/" + "f" * 5000), 400, {"booking_id"}, id="booking-5000-characters"),
    pytest.param(get("/bookings/" + "-" * 36), 404, set(), id="booking-36-dashes"),
    # Chalice's router matches the route before a final newline, so the id looked up is
    # the (unknown) one without it: a clean 404.
    pytest.param(get(f"/bookings/{UNKNOWN_BOOKING}\n"), 404, set(), id="booking-trailing-newline"),
    pytest.param(get("/bookings/%00/history"), 400, {"booking_id"}, id="history-encoded-nul"),
    pytest.param(get("/bookings/\u0000/history"), 400, {"booking_id"}, id="history-nul"),
    pytest.param(get(f"/bookings/{UNKNOWN_BOOKING}\n/history"), 404, set(), id="history-trailing-newline"),
    pytest.param(replace(cancel({"simulate_failure": 1}), path="/bookings/not-an-id/cancel"), 400,
                 {"booking_id", "simulate_failure"}, id="cancel-malformed-id-and-body"),
    pytest.param(replace(cancel("{"), path="/bookings/not-an-id/cancel"), 400, {"booking_id", BODY},
                 id="cancel-malformed-id-and-json"),
    pytest.param(replace(cancel(""), path=f"/bookings/{UNKNOWN_BOOKING}\n/cancel"), 404, set(),
                 id="cancel-trailing-newline"),
    pytest.param(get("/flights/sa101"), 404, set(), id="flight-lowercase"),
    pytest.param(get("/flights/SA\u0000101"), 404, set(), id="flight-nul"),
    pytest.param(get("/flights/" + "A" * 3000), 404, set(), id="flight-3000-characters"),
    pytest.param(get("/flights/✈"), 404, set(), id="flight-unicode"),
    pytest.param(get(f"/flights/{PAN}"), 404, set(), id="flight-pan"),
    pytest.param(get("/flights/SA101/seats?status=available"), 400, {"status"}, id="seats-lowercase-status"),
    pytest.param(get("/flights/SA101/seats?status=HELD%00"), 400, {"status"}, id="seats-status-encoded-nul"),
    pytest.param(get("/flights/SA101/seats?cabin=" + "E" * 5000), 400, {"cabin"}, id="seats-cabin-5000-characters"),
    pytest.param(get("/flights/XX999/seats?status=FREE&cabin=PREMIUM"), 400, {"status", "cabin"},
                 id="seats-both-filters-of-an-unknown-flight"),
    pytest.param(get("/flights/SA101/seats?status=FREE&status=AVAILABLE"), 400, {"status"},
                 id="seats-repeated-status-first-invalid"),
    pytest.param(get("/flights/SA101/seats?cabin=ECONOMY&cabin=FIRST"), 400, {"cabin"},
                 id="seats-repeated-cabin"),
    pytest.param(get("/flights/SA101/seats?stauts=HELD"), 400, {"stauts"}, id="seats-misspelt-filter"),
    pytest.param(get("/loyalty/ff0001"), 404, set(), id="loyalty-lowercase"),
    pytest.param(get("/loyalty/FF\u00000001"), 404, set(), id="loyalty-nul"),
    pytest.param(get("/loyalty/" + "F" * 3000), 404, set(), id="loyalty-3000-characters"),
    pytest.param(get(f"/loyalty/{PAN}"), 404, set(), id="loyalty-pan"),
    pytest.param(get("/assets/..%2f..%2fapp.py"), 404, set(), id="asset-encoded-traversal"),
    pytest.param(get("/assets/..\\app.py"), 404, set(), id="asset-backslash-traversal"),
    pytest.param(get("/assets/.env"), 404, set(), id="asset-dotfile"),
    pytest.param(get("/assets/app.py"), 404, set(), id="asset-not-served-suffix"),
    pytest.param(get("/assets/app.js\u0000.html"), 404, set(), id="asset-nul"),
    pytest.param(get("/assets/" + "a" * 300 + ".js"), 404, set(), id="asset-300-characters"),
]


@pytest.mark.parametrize(("hostile", "status", "fields"), READS)
def test_a_hostile_path_or_query_is_refused_and_writes_nothing(
    send: Any, hostile: Hostile, status: int, fields: set[str | None],
) -> None:
    """GIVEN SA101 with free seats and the loyalty accounts
    WHEN a path id has odd characters or lengths, a seat filter is wrong, repeated or
    misspelt, or an asset name tries to leave chalicelib/web
    THEN 400 naming the id or filters, or 404; nothing written, no card number echoed."""
    assert_refused_cleanly(send(hostile), status, fields)


@pytest.mark.parametrize("given", [
    pytest.param("has spaces", id="spaces"),
    pytest.param("k" * 129, id="129-characters"),
    pytest.param("x\r\nSet-Cookie: a=b", id="crlf-injection"),
    pytest.param("trace-1\n", id="trailing-newline"),
])
@pytest.mark.parametrize("path", ["/health", "/flights/SA101"])
def test_a_malformed_correlation_id_on_a_read_is_replaced_never_echoed(send: Any, path: str, given: str) -> None:
    """GIVEN a read that needs no correlation id
    WHEN its X-Correlation-Id is malformed
    THEN the read is answered 200 under a generated id, never the one given, and writes nothing."""
    answer = send(replace(get(path), headers={"X-Correlation-Id": given}))
    assert answer.status == 200, answer.texts[0][:500]
    assert answer.headers["X-Correlation-Id"] != given
    uuid.UUID(answer.headers["X-Correlation-Id"])
    assert answer.changed == []


# --- Signing in, and tokens ------------------------------------------------------------------------
def sign_in(body: Any, content_type: str | None = "application/json") -> Hostile:
    return Hostile("POST", "/auth/sign-in", body, content_type=content_type)


def as_token(token: str, path: str = "/me") -> Hostile:
    return replace(get(path), headers={"Authorization": token})


SIGN_IN = [
    pytest.param(sign_in(None), 400, {BODY}, id="no-body"),
    pytest.param(sign_in("{"), 400, {BODY}, id="not-json"),
    pytest.param(sign_in("[]"), 400, {BODY}, id="array"),
    pytest.param(sign_in(nested(1000)), 400, {BODY}, id="nested-1000-deep"),
    pytest.param(sign_in({"username": "FF0001"}), 400, {"password"}, id="no-password"),
    pytest.param(sign_in({"password": "Demo-Passw0rd"}), 400, {"username"}, id="no-username"),
    pytest.param(sign_in({"username": 1, "password": 10**38}), 400, {"username", "password"}, id="numbers"),
    pytest.param(sign_in({"username": "FF0001", "password": ""}), 400, {"password"}, id="empty-password"),
    pytest.param(sign_in({"username": "FF0001", "password": "p" * 257}), 400, {"password"}, id="password-257"),
    pytest.param(sign_in({"username": "FF0001", "password": "a\u0000b"}), 400, {"password"}, id="password-nul"),
    pytest.param(sign_in('{"username": "FF0001", "password": "\\ud800"}'), 400, {"password"},
                 id="password-lone-surrogate"),
    pytest.param(sign_in({"username": "FF 0001", "password": "x"}), 400, {"username"}, id="username-space"),
    pytest.param(sign_in({"username": PAN, "password": "x"}), 400, {"username"}, id="username-pan"),
    pytest.param(sign_in({"username": "FF0001", "password": "x", "role": "admin"}), 400, {"role"},
                 id="unknown-field"),
    pytest.param(sign_in("username=FF0001&password=x", "text/html"), 415, set(), id="html"),
    # Well-formed, wrong: a 401 that names neither field and echoes neither value.
    pytest.param(sign_in({"username": "FF0001", "password": PAN}), 401, set(), id="password-pan-wrong"),
    pytest.param(sign_in({"username": "FF9999", "password": "Demo-Passw0rd"}), 401, set(), id="no-such-user"),
    pytest.param(as_token(""), 401, set(), id="token-empty"),
    pytest.param(as_token("Bearer"), 401, set(), id="token-bearer-alone"),
    pytest.param(as_token(f"Bearer {PAN}"), 401, set(), id="token-pan"),
    pytest.param(as_token("Bearer a.b.c"), 401, set(), id="token-three-garbage-parts"),
    pytest.param(as_token("Bearer " + "e" * 9000), 401, set(), id="token-9000-characters"),
    pytest.param(as_token("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "/bookings/{booking_id}"), 401, set(),
                 id="token-alg-none"),
]


@pytest.mark.parametrize(("hostile", "status", "fields"), SIGN_IN)
def test_hostile_sign_ins_and_tokens_are_refused_and_write_nothing(
    send: Any, hostile: Hostile, status: int, fields: set[str | None],
) -> None:
    """GIVEN the demo customers in the embedded user pool
    WHEN a sign-in body is malformed, or well-formed and wrong, or a route is sent a token
    that is empty, garbage, unsigned or a card number
    THEN 400 naming the fields, 415, or 401; nothing written, no card number (nor the
    password) echoed or logged."""
    answer = send(hostile.at(booking_id=UNKNOWN_BOOKING))
    assert_refused_cleanly(answer, status, fields)
    if status == 401:
        assert answer.body["error"] in ("SignInFailed", "Unauthorized")
    sent = hostile.body if isinstance(hostile.body, dict) else {}
    password = sent.get("password")
    if isinstance(password, str) and len(password) > 3:
        assert not any(password in text for text in answer.texts)
