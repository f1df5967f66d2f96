"""Issue 15 point 8: GET /openapi.json, held against what the routes really answer.

One stack, real requests through chalice.test.Client (signed in as FF0001), every main
answer compared with the document's schema for its route and status
(tests/openapi_support.py): validated, and its keys compared both ways at every depth
the schema describes.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import clock, config, db, openapi, seats
from chalicelib.errors import TransientStepError
from chalicelib.models import BASE_FARES, CURRENCY, MONEY_FIELDS
from chalicelib.vocabulary import (
    AFTER_PIVOT,
    CANCELLATION_STEPS,
    COMPENSATION_ORDER,
    STEP_NAMES,
    BookingStatus,
    FailureMode,
)
from tests.openapi_support import ShapeCheck
from tests.support import DEMO_PASSWORD, booking_body, wait_for_status

# The answers the issue names; each must be among those compared.
MAIN_ANSWERS = {
    ("GET", "/health", 200), ("GET", "/config", 200), ("GET", "/flights", 200),
    ("GET", "/flights/{flight_number}", 200), ("GET", "/flights/{flight_number}/seats", 200),
    ("POST", "/auth/sign-in", 200), ("GET", "/me", 200), ("POST", "/bookings", 202),
    ("GET", "/bookings/{booking_id}", 200), ("GET", "/bookings/{booking_id}/history", 200),
    ("POST", "/bookings/{booking_id}/cancel", 202), ("GET", "/loyalty/{loyalty_id}", 200),
    ("GET", "/statemachines", 200), ("GET", "/bookings", 200), ("GET", "/bookings", 400),
    ("POST", "/bookings", 400), ("GET", "/me", 401), ("GET", "/loyalty/{loyalty_id}", 404),
    ("POST", "/bookings", 409), ("POST", "/bookings", 415),
}
REQUEST_SCHEMAS = {"BookingRequest", "CancelRequest", "LegFault", "SignIn"}
# Schemas of answers no request here can bring about, and why.
NOT_ANSWERED = {
    "Error429": "Cognito's throttling of sign-in: moto does not throttle",
}
FAILED_CHARGE = {STEP_NAMES[2]: FailureMode.PERMANENT.value}  # AuthorizePayment fails for good
FAILED_CAPTURE = {AFTER_PIVOT[0].name: FailureMode.PERMANENT.value}  # CapturePayment fails for good


def _request(client: Any, check: ShapeCheck, method: str, template: str, path: str | None = None,
             body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """``method`` on ``path`` (default: the template itself), its answer given to ``check``."""
    sent = {"content-type": "application/json", **(headers or {})}
    raw = b"" if body is None else body if isinstance(body, (str, bytes)) else json.dumps(body)
    response = client.http.request(method, path or template, headers=sent, body=raw)
    check.answer(method, template, response)
    return response


# Anything that starts like a date and a time, wherever it is in a string (a key, a message).
_TIME_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_API_TIME_AT_START = re.compile(rf"(?:{clock.API_TIME_FORMAT})(?![\w:.+-])")


def format_problems(where: str, value: Any) -> list[str]:
    """Every time in ``value`` (an answer) that is not in the API's one format
    (clock.API_TIME_FORMAT), every `*_at` given as a number, and every amount of money
    (models.MONEY_FIELDS) in an object that does not say its currency."""
    found: list[str] = []
    if isinstance(value, str):
        for match in _TIME_LIKE.finditer(value):
            if not _API_TIME_AT_START.match(value, match.start()):
                found.append(f"{where}: {value[match.start():match.start() + 40]!r} is not in the API's time format")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += format_problems(f"{where}[{index}]", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            found += format_problems(f"{where}.{key}", item)
            if key.endswith("_at") and isinstance(item, (int, float)) and not isinstance(item, bool):
                found.append(f"{where}.{key}: a time as a number ({item})")
        money = [key for key in MONEY_FIELDS if isinstance(value.get(key), int) and not isinstance(value[key], bool)]
        if money and value.get("currency") != CURRENCY:
            found.append(f"{where}: {', '.join(money)} without its currency")
    return found


def _still_down(step: Any) -> dict[str, Any]:
    raise TransientStepError("the seats service is still down")


def test_every_main_answer_has_exactly_the_fields_the_document_gives(
    client: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN the local stage's document and the demo data
    WHEN every main route is called for real: the catalogue, sign-in, a confirmed booking
    (then cancelled), a failed one and one that needs attention, their histories, the
    loyalty account, the state machines, the operator's routes, and the refusals (400 with
    `errors`, 401, 403, 404, 409, 415)
    THEN each answer validates against the schema of its route and status, no answer has a
    field the schema does not document or lacks one it says is always there (at every
    depth), and every documented field was answered at least once; every time anywhere in
    any answer (a step's result, a message) is in the API's one format, and every amount of
    money stands next to its currency."""
    # The local stage's document: this process registered the /admin routes (conftest sets
    # the local stage's variables), though the test client answers as dev.
    check = ShapeCheck(openapi.document(operator_routes=True))
    call = lambda method, template, path=None, **options: _request(  # noqa: E731
        client, check, method, template, path, **options)

    for template, path in (("/health", None), ("/config", None), ("/openapi.json", None), ("/flights", None),
                           ("/flights/{flight_number}", "/flights/SA101"),
                           ("/flights/{flight_number}/seats", "/flights/SA101/seats?cabin=FIRST"),
                           ("/me", None), ("/statemachines", None), ("/", None)):
        if template != "/":  # the page is HTML: nothing to compare
            assert call("GET", template, path).status_code == 200, template
    signed_in = _request(client.anonymous, check, "POST", "/auth/sign-in",
                         body={"username": "FF0001", "password": DEMO_PASSWORD})
    assert signed_in.status_code == 200

    # Three sagas: confirmed (with points, so every step runs), failed, and one whose
    # compensation fails too (NEEDS_ATTENTION: failed compensations, retries, dead letters).
    bookings = "/bookings"
    confirmed = call("POST", bookings, body=booking_body(seat="12A", cabin=None, loyalty_id="FF0001",
                                                         points_to_redeem=1_000)).json_body["booking_id"]
    failed = call("POST", bookings, body=booking_body(simulate_failure=FAILED_CHARGE)).json_body["booking_id"]
    stuck = call("POST", bookings, body=booking_body(
        loyalty_id="FF0001", points_to_redeem=500,
        simulate_failure={**FAILED_CHARGE, COMPENSATION_ORDER[-1].name: FailureMode.PERMANENT.value},
    )).json_body["booking_id"]
    # A party over two legs whose second leg fails: the first leg's seats are released.
    party = call("POST", bookings, body=booking_body(
        flight_number=None, passenger=None, flights=["SA101", "SA102"],
        passengers=[{"first_name": "Ada", "last_name": "Lovelace", "seats": {"SA102": "20A"}},
                    {"first_name": "Charles", "last_name": "Babbage", "email": "cb@example.com"}],
        simulate_failure={"ReserveSeats": {"leg": 1, "mode": "permanent"}},
    )).json_body["booking_id"]
    expected = {confirmed: BookingStatus.CONFIRMED, failed: BookingStatus.FAILED,
                stuck: BookingStatus.NEEDS_ATTENTION, party: BookingStatus.FAILED}
    for booking_id, status in expected.items():
        assert wait_for_status(booking_id)["status"] == status
        assert call("GET", "/bookings/{booking_id}", f"/bookings/{booking_id}").status_code == 200
        assert call("GET", "/bookings/{booking_id}/history", f"/bookings/{booking_id}/history").status_code == 200

    # The customer's listing: a page with a next_token, the last page, a bad limit.
    first = call("GET", bookings, f"{bookings}?limit=2").json_body
    assert call("GET", bookings, f"{bookings}?limit=2&next_token={first['next_token']}").json_body["next_token"] is None
    assert call("GET", bookings, f"{bookings}?limit=0").status_code == 400

    # The refusals, each in its documented shape.
    assert call("POST", bookings, body={"flight_number": "SA101"}).status_code == 400  # `errors` lists three
    assert call("GET", "/bookings/{booking_id}", "/bookings/not-a-booking-id").status_code == 400
    assert _request(client.anonymous, check, "GET", "/me").status_code == 401
    assert call("POST", bookings, body=booking_body(loyalty_id="FF0002")).status_code == 403
    assert call("GET", "/loyalty/{loyalty_id}", "/loyalty/FF0099").status_code == 404
    assert call("GET", "/flights/{flight_number}", "/flights/XX999").status_code == 404
    assert call("GET", "/bookings/{booking_id}", f"/bookings/{uuid.UUID(int=5)}").status_code == 404
    assert call("POST", bookings, body=booking_body(seat="12A", cabin=None)).status_code == 409
    assert call("POST", "/bookings/{booking_id}/cancel", f"/bookings/{failed}/cancel").status_code == 409
    assert call("POST", bookings, body=booking_body(), headers={"content-type": "application/xml"}).status_code == 415

    # The operator's routes (this is the local stage): the dead letters, a recovery that
    # fails again, then one that completes; the invariants with a violation (an account's
    # balance off by one).
    assert call("GET", "/admin/dead-letters").json_body["dead_letters"]  # before the recovery resolves them
    recover = ("POST", "/admin/bookings/{booking_id}/recover", f"/admin/bookings/{stuck}/recover")
    with monkeypatch.context() as outage:
        outage.setattr(seats, COMPENSATION_ORDER[-1].function, _still_down)
        assert call(*recover).json_body["still_failing"]
    assert call(*recover).json_body["status"] == BookingStatus.FAILED
    # A confirmed booking whose capture failed, recovered after its authorisation lapsed:
    # written off as lost revenue, still CONFIRMED.
    unpaid = call("POST", bookings, body=booking_body(simulate_failure=FAILED_CAPTURE)).json_body["booking_id"]
    assert wait_for_status(unpaid)["status"] == BookingStatus.CONFIRMED
    clock.advance(config.authorization_hold_seconds() + 1)
    try:
        lapsed = call("POST", "/admin/bookings/{booking_id}/recover", f"/admin/bookings/{unpaid}/recover").json_body
    finally:
        clock.advance(-config.authorization_hold_seconds() - 1)
    assert (lapsed["status"], lapsed["written_off"]) == (BookingStatus.CONFIRMED, BASE_FARES["ECONOMY"])
    db.update("loyalty", db.loyalty_account_key("FF0003"), "SET points_balance = points_balance + :one",
              values={":one": 1})
    assert call("GET", "/admin/invariants").json_body["count"] == 1
    assert call("POST", "/admin/sweep").status_code == 200
    cancel = {"simulate_failure": {CANCELLATION_STEPS[0].name: FailureMode.TRANSIENT.value}}
    assert call("POST", "/bookings/{booking_id}/cancel", f"/bookings/{confirmed}/cancel",
                body=cancel).status_code == 202
    assert wait_for_status(confirmed)["status"] == BookingStatus.CANCELLED
    for template in ("/bookings/{booking_id}", "/bookings/{booking_id}/history"):
        call("GET", template, template.replace("{booking_id}", confirmed))
    assert call("GET", "/loyalty/{loyalty_id}", "/loyalty/FF0001").status_code == 200

    problems = check.problems()
    assert problems == [], "\n".join(problems)
    formats = [problem for where, body in check.bodies for problem in format_problems(where, body)]
    assert formats == [], "\n".join(formats)
    assert len(check.bodies) >= 40  # every answer above was walked
    assert MAIN_ANSWERS - check.answers == set()
    answer_schemas = {name for name, schema in check.document["components"]["schemas"].items()
                      if "properties" in schema} - REQUEST_SCHEMAS
    assert answer_schemas - check.schemas_reached() == set(NOT_ANSWERED)


def test_the_document_is_public_and_has_the_admin_routes_only_where_they_exist() -> None:
    """GIVEN the app (no token, no AWS: the document reads nothing)
    WHEN GET /openapi.json on the local stage, and on dev and prod (no operator routes)
    THEN 200 JSON each time, the local one with the /admin routes (marked local-only), the
    others without, and otherwise the same document."""
    served = {}
    for stage in ("local", "dev", "prod"):
        with Client(app_module.app, stage_name=stage) as anonymous:
            response = anonymous.http.get("/openapi.json")
        assert response.status_code == 200, (stage, response.body)
        served[stage] = response.json_body
    local, dev, prod = served["local"], served["dev"], served["prod"]
    assert dev == prod == openapi.document(operator_routes=False)
    assert local == openapi.document(operator_routes=True)
    admin = set(local["paths"]) - set(dev["paths"])
    assert admin and all(path.startswith("/admin/") for path in admin)
    assert all(operation[openapi.LOCAL_ONLY] for path in admin for operation in local["paths"][path].values())
    assert {path: item for path, item in local["paths"].items() if path not in admin} == dev["paths"]
