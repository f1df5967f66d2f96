"""Issue 15 point 8: the OpenAPI document (chalicelib/openapi.py) against app.py's route
table, the README's public routes and validation.py's rules; and the checker that holds
real answers against it (tests/openapi_support.py), on a document of its own.

What each route really answers is compared in tests/functional/test_openapi.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any
from urllib.parse import urljoin

import pytest
from chalice.app import CognitoUserPoolAuthorizer, IAMAuthorizer
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec

import app as app_module
from chalicelib import customers, openapi, validation
from chalicelib.errors import InvalidRequest
from chalicelib.vocabulary import (
    BOOKING_SAGA_TASK_NAMES,
    CANCELLATION_STEPS,
    COMPENSATION_NAMES,
    FAILURE_MODES,
    STEP_NAMES,
    TASKS,
)
from tests.conftest import PROJECT_DIR
from tests.openapi_support import ShapeCheck

LOCAL = openapi.document(operator_routes=True)
DEPLOYED = openapi.document(operator_routes=False)
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path) -> the operation."""
    return {(method.upper(), path): operation for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS}


def app_routes() -> dict[tuple[str, str], Any]:
    """(METHOD, path) -> Chalice's route entry, as this process registered them (the local
    stage's variables: with the /admin routes)."""
    return {(method, path): entry for path, methods in app_module.app.routes.items()
            for method, entry in methods.items()}


def schema_validator(schema: dict[str, Any]) -> OAS31Validator:
    return OAS31Validator({**schema, "components": LOCAL["components"]})


def request_schema(name: str) -> dict[str, Any]:
    return LOCAL["components"]["schemas"][name]  # type: ignore[no-any-return]


# --- The document and the routes -----------------------------------------------------------
@pytest.mark.parametrize("document", [LOCAL, DEPLOYED], ids=["local", "deployed"])
def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    """GIVEN the document with and without the /admin routes THEN openapi-spec-validator
    finds nothing wrong with it (every $ref resolves, every schema is valid JSON Schema)."""
    assert document["openapi"].startswith("3.1.")
    validate_spec(document)
    json.dumps(document)  # what the route serves: plain JSON, no enum members or tuples left


def test_every_route_of_the_app_is_documented_and_nothing_else() -> None:
    """GIVEN app.py's route table (this process has the local stage's /admin routes)
    THEN the local document has exactly its routes and methods, each operationId is the
    route's handler, and nothing is documented that app.py does not route."""
    routes, documented = app_routes(), operations(LOCAL)
    assert sorted(set(routes) - set(documented)) == [], "routes of app.py the document lacks"
    assert sorted(set(documented) - set(routes)) == [], "documented routes app.py does not have"
    assert {route: operation["operationId"] for route, operation in documented.items()} == {
        route: entry.view_name for route, entry in routes.items()}


def test_a_deployed_stage_is_documented_with_the_routes_it_has() -> None:
    """GIVEN app.py imported as a deployed stage imports it (dev's variables: no operator
    routes), in a fresh interpreter THEN its route table is exactly the deployed document's,
    and the /admin routes are the local document's only difference, each marked local-only."""
    stage = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())["stages"]["dev"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_CHALICE")}
    env.update(stage["environment_variables"], EMBEDDED_AWS="false")
    listing = subprocess.run(
        [sys.executable, "-c", "import json, app; print(json.dumps([[method, path] for path, methods in "
                               "app.app.routes.items() for method in methods]))"],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120, check=True)
    deployed_routes = {(method, path) for method, path in json.loads(listing.stdout.splitlines()[-1])}
    assert set(operations(DEPLOYED)) == deployed_routes
    local_only = set(operations(LOCAL)) - deployed_routes
    assert local_only == set(app_routes()) - deployed_routes != set()
    assert all(operations(LOCAL)[route][openapi.LOCAL_ONLY] for route in local_only)
    assert not any(openapi.LOCAL_ONLY in operation for operation in operations(DEPLOYED).values())


# --- Who may call what ------------------------------------------------------------------------
def readme_public_routes() -> set[tuple[str, str]]:
    """The README's "Public without a token" list, path parameters unnamed (it abbreviates
    them: {n}); "the page and its assets" are GET / and GET /assets/{name}."""
    readme = (PROJECT_DIR / "README.md").read_text()
    paragraph = readme[readme.index("Public without a token:"):].split("\n\n", 1)[0].replace("\n", " ")
    assert "the page and its assets" in paragraph
    listed = {(method, unnamed(path)) for method, path in re.findall(r"`(GET|POST) (/[^`]*)`", paragraph)}
    return listed | {("GET", "/"), ("GET", unnamed("/assets/{name}"))}


def unnamed(path: str) -> str:
    return re.sub(r"\{\w+\}", "{}", path)


def test_the_public_routes_are_the_readmes_and_every_other_needs_the_cognito_token() -> None:
    """GIVEN the document THEN by default every operation needs the bearer scheme named
    after the customers' authorizer (an HTTP bearer: the Cognito ID token); the operations
    that opt out (security: []) are exactly the README's public list on a deployed stage,
    plus the local-only /admin routes locally; and each agrees with its authorizer in app.py."""
    assert LOCAL["security"] == [{openapi.SIGNED_IN: []}]
    assert openapi.SIGNED_IN == customers.AUTHORIZER_NAME
    scheme = LOCAL["components"]["securitySchemes"][openapi.SIGNED_IN]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert "POST /auth/sign-in" in scheme["description"] and "Bearer <id_token>" in scheme["description"]

    public = {(method, unnamed(path)) for (method, path), operation in operations(DEPLOYED).items()
              if operation.get("security") == []}
    assert public == readme_public_routes()
    routes = app_routes()
    for route, operation in operations(LOCAL).items():
        authorizer = routes[route].authorizer
        if isinstance(authorizer, CognitoUserPoolAuthorizer):
            assert "security" not in operation, route  # the document's default: signed in
            assert "401" in operation["responses"], route
        elif isinstance(authorizer, IAMAuthorizer):  # /admin: nothing is checked locally, where alone it exists
            assert operation["security"] == [] and operation[openapi.LOCAL_ONLY], route
        else:
            assert authorizer is None and operation["security"] == [], route


# --- Request bodies: what validation.py accepts ---------------------------------------------------
def test_the_request_bodies_have_exactly_the_fields_validation_reads() -> None:
    """GIVEN the request schemas THEN they list exactly the fields validation.py reads (and
    refuses any other), simulate_failure exactly the tasks each route lets fail, in the
    vocabulary's modes."""
    booking = request_schema("BookingRequest")
    assert set(booking["properties"]) == validation.BOOKING_FIELDS
    assert set(booking["properties"]["passenger"]["properties"]) == validation.PASSENGER_FIELDS
    assert set(booking["properties"]["payment"]["properties"]) == {validation.CARD_TOKEN.name.split(".")[1]}
    assert set(request_schema("SignIn")["properties"]) == {"username", "password"}
    assert set(request_schema("CancelRequest")["properties"]) == {"simulate_failure"}
    for schema, tasks in ((booking, BOOKING_SAGA_TASK_NAMES),
                          (request_schema("CancelRequest"), tuple(step.name for step in CANCELLATION_STEPS))):
        simulate = schema["properties"]["simulate_failure"]
        assert list(simulate["properties"]) == list(tasks)
        mode, leg = {"$ref": "#/components/schemas/FailureMode"}, {"$ref": "#/components/schemas/LegFault"}
        assert all(simulate["properties"][name] == ({"anyOf": [mode, leg]} if TASKS[name].per_leg else mode)
                   for name in tasks)
    assert request_schema("FailureMode")["enum"] == list(FAILURE_MODES)
    assert booking["properties"]["payment"]["properties"]["card_token"]["pattern"] == (
        f"^(?:{validation.TOKEN_FORMAT})$")


def test_the_booking_examples_are_bookings_the_api_accepts() -> None:
    """GIVEN the examples of POST /bookings THEN validation.py accepts each (where faults
    may be injected) and so does the schema."""
    examples = LOCAL["paths"]["/bookings"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert examples
    for example in examples.values():
        validation.parse_booking_request(example["value"], fault_injection_allowed=True)
        assert list(schema_validator(request_schema("BookingRequest")).iter_errors(example["value"])) == []


def _booking(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"flight_number": "SA101", "passenger": {"first_name": "Ada", "last_name": "Lovelace"},
                            "cabin": "ECONOMY", "payment": {"card_token": "tok_visa"}}
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


BOOKINGS = [  # (body, accepted?): validation.py and the schema must agree on each
    pytest.param(_booking(), True, id="valid"),
    pytest.param(_booking(seat="27F", cabin=..., loyalty_id="FF0001", points_to_redeem=validation.MAX_POINTS),
                 True, id="seat-and-most-points"),
    pytest.param(_booking(seat=None, passenger={"first_name": "A", "last_name": "B", "email": None}), True,
                 id="nulls-for-optional-fields"),
    pytest.param(_booking(payment={"card_token": "4242 4242 4242 4242"}), False, id="card-number-as-token"),
    pytest.param(_booking(payment={"card_token": "tok_" + "a" * 65}), False, id="token-too-long"),
    pytest.param(_booking(payment={"card_token": "tok_visa", "cvv": "123"}), False, id="payment-extra-key"),
    pytest.param(_booking(passenger={"first_name": "Ada", "last_name": "L" * 101}), False, id="name-too-long"),
    pytest.param(_booking(passenger={"first_name": "Ada"}), False, id="no-last-name"),
    pytest.param(_booking(passenger={"first_name": "Ada", "last_name": "L", "email": "no-at"}), False,
                 id="bad-email"),
    pytest.param(_booking(loyalty_id="FF0001", points_to_redeem=validation.MAX_POINTS + 1), False,
                 id="too-many-points"),
    pytest.param(_booking(loyalty_id="FF0001", points_to_redeem=-1), False, id="negative-points"),
    pytest.param(_booking(loyalty_id="FF0001", points_to_redeem=1.5), False, id="fractional-points"),
    pytest.param(_booking(points_to_redeem=100), False, id="points-without-loyalty_id"),
    pytest.param(_booking(loyalty_id="ff0001"), False, id="lowercase-loyalty_id"),
    pytest.param(_booking(flight_number="sa-101"), False, id="bad-flight-number"),
    pytest.param(_booking(cabin=...), False, id="neither-seat-nor-cabin"),
    pytest.param(_booking(cabin="PREMIUM"), False, id="unknown-cabin"),
    *[pytest.param(_booking(seat=seat, cabin=...), False, id=f"seat-{seat}") for seat in ("0A", "01A", "28A", "12G")],
    pytest.param(_booking(coupon="FREE"), False, id="unknown-field"),
    pytest.param(_booking(simulate_failure={"ChargeCard": "permanent"}), False, id="unknown-step"),
    pytest.param(_booking(simulate_failure={STEP_NAMES[0]: "sometimes"}), False, id="unknown-mode"),
    pytest.param(_booking(simulate_failure={COMPENSATION_NAMES[0]: FAILURE_MODES[-1]}), True, id="compensation"),
]


@pytest.mark.parametrize(("body", "accepted"), BOOKINGS)
def test_the_booking_schema_accepts_what_validation_accepts(body: dict[str, Any], accepted: bool) -> None:
    """GIVEN a booking body THEN the schema accepts it exactly when validation.py does
    (its patterns, limits, choices and rules are the same)."""
    try:
        validation.parse_booking_request(body, fault_injection_allowed=True)
        validated = True
    except InvalidRequest:
        validated = False
    schema_errors = [error.message for error in schema_validator(request_schema("BookingRequest")).iter_errors(body)]
    assert (validated, not schema_errors) == (accepted, accepted), schema_errors


@pytest.mark.parametrize(("body", "accepted"), [
    pytest.param({}, True, id="empty"),
    pytest.param({"simulate_failure": {CANCELLATION_STEPS[0].name: FAILURE_MODES[0]}}, True, id="its-compensation"),
    pytest.param({"simulate_failure": {STEP_NAMES[2]: FAILURE_MODES[0]}}, False, id="a-forward-step"),
    pytest.param({"reason": "changed my mind"}, False, id="unknown-field"),
])
def test_the_cancel_schema_accepts_what_validation_accepts(body: dict[str, Any], accepted: bool) -> None:
    try:
        validation.parse_cancellation("0" * 8 + "-0000-0000-0000-" + "0" * 12, json.dumps(body),
                                      fault_injection_allowed=True)
        validated = True
    except InvalidRequest:
        validated = False
    schema_errors = list(schema_validator(request_schema("CancelRequest")).iter_errors(body))
    assert (validated, not schema_errors) == (accepted, accepted)


@pytest.mark.parametrize(("body", "accepted"), [
    pytest.param({"username": "FF0001", "password": "Demo-Passw0rd"}, True, id="valid"),
    pytest.param({"username": "FF0001", "password": "x" * (validation.PASSWORD_LIMIT + 1)}, False, id="long"),
    pytest.param({"username": "FF 0001", "password": "x"}, False, id="username-with-space"),
    pytest.param({"username": "FF0001"}, False, id="no-password"),
    pytest.param({"username": "FF0001", "password": "x", "role": "admin"}, False, id="extra-key"),
])
def test_the_sign_in_schema_accepts_what_validation_accepts(body: dict[str, Any], accepted: bool) -> None:
    try:
        validation.parse_sign_in(json.dumps(body))
        validated = True
    except InvalidRequest:
        validated = False
    schema_errors = list(schema_validator(request_schema("SignIn")).iter_errors(body))
    assert (validated, not schema_errors) == (accepted, accepted)


# --- The checker itself -------------------------------------------------------------------------
TINY = {
    "openapi": "3.1.0", "info": {"title": "t", "version": "1"},
    "paths": {"/thing": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Thing"}}}}}}}},
    "components": {"schemas": {
        "Thing": {"type": "object", "required": ["name", "parts"], "properties": {
            "name": {"type": "string"}, "note": {"type": "string"},
            "parts": {"type": "array", "items": {"$ref": "#/components/schemas/Part"}}}},
        "Part": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
    }},
}


def checked(*bodies: Any, status: int = 200) -> list[str]:
    check = ShapeCheck(TINY)
    for body in bodies:
        check.answer("GET", "/thing", SimpleNamespace(status_code=status, json_body=body, headers={}))
    return check.problems()


def test_the_checker_finds_what_the_document_and_an_answer_disagree_on() -> None:
    """GIVEN a small document (a Thing with an optional note and a list of Parts)
    WHEN answers are checked against it
    THEN an answer with every field passes; an undocumented key (at any depth), a documented
    one missing, a documented one no answer ever had, an object never reached (an empty
    list), a wrong type and an undocumented status are each reported."""
    full = {"name": "a", "note": "n", "parts": [{"id": 1}]}
    assert checked(full) == []
    assert checked(full, {"name": "b", "parts": []}) == []  # note is optional; Part was reached once
    assert checked({**full, "colour": "red"}) == [
        "GET /thing 200: $.colour: answered but not documented (#/components/schemas/Thing)"]
    assert checked({**full, "parts": [{"id": 1, "x": 0}]}) == [
        "GET /thing 200: $.parts[0].x: answered but not documented (#/components/schemas/Part)"]
    assert checked({"note": "n", "parts": [{"id": 1}]}) == [
        "GET /thing 200: body: 'name' is a required property",  # the schema's own check says so too
        "GET /thing 200: $.name: documented as always answered, but missing (#/components/schemas/Thing)",
        "#/components/schemas/Thing/properties/name: documented, but no answer had it"]
    assert checked({"name": "a", "parts": [{"id": 1}]}) == [
        "#/components/schemas/Thing/properties/note: documented, but no answer had it"]
    assert checked({"name": "a", "note": "n", "parts": []}) == [
        "#/components/schemas/Part: documented, but no answer reached it"]
    assert checked({**full, "name": 7}) == ["GET /thing 200: body.name: 7 is not of type 'string'"]
    assert checked(full, status=404) == ["GET /thing 404: answered, but the document does not list status 404"]


# --- The page's link ------------------------------------------------------------------------------
class _FooterLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.in_footer = False
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "footer":
            self.in_footer = True
        elif tag == "a" and self.in_footer:
            self._href = dict(attrs).get("href") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "footer":
            self.in_footer = False

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((data.strip(), self._href))
            self._href = None


def test_the_pages_footer_links_to_the_document_relatively() -> None:
    """GIVEN the demo page THEN its footer has an "API" link to openapi.json by a relative
    URL, so it reaches the document wherever the page is served (a stage path, a prefix)."""
    footer = _FooterLinks()
    footer.feed((PROJECT_DIR / "chalicelib" / "web" / "index.html").read_text())
    href = dict(footer.links)["API"]
    assert href == "openapi.json"
    assert urljoin("https://example.com/api/", href) == "https://example.com/api/openapi.json"
    assert ("GET", "/openapi.json") in operations(DEPLOYED)
