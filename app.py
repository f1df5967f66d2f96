"""The booking saga's Chalice app: HTTP routes and one Lambda function per saga step
and compensation. Each handler is a few lines; the work lives in chalicelib/.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from chalice import Chalice, CognitoUserPoolAuthorizer, IAMAuthorizer, Rate, Response
from chalice.app import Request

from chalicelib import (
    api,
    bookings,
    config,
    customers,
    links,
    loyalty,
    openapi,
    outcomes,
    payments,
    recovery,
    seats,
    steps,
    validation,
    vocabulary,
    webpage,
)
from chalicelib.customers import Customer
from chalicelib.errors import RequestError
from chalicelib.logs import bound, logger
from chalicelib.validation import parse_seat_filters
from chalicelib.vocabulary import (
    AUTHORIZE_PAYMENT,
    AWARD_MILES,
    CANCEL_BOOKING,
    CAPTURE_PAYMENT,
    CONFIRM_BOOKING,
    RECORD_CANCELLATION,
    RECORD_CAPTURE_FAILURE,
    RECORD_FAILURE,
    REDEEM_POINTS,
    REFUND_PAYMENT,
    REFUND_POINTS,
    RELEASE_SEATS,
    RESERVE_SEATS,
    REVERSE_MILES,
    VOID_PAYMENT,
)

app = Chalice(app_name="booking-saga")
# Every customer route: API Gateway checks the ID token against the user pool before the
# Lambda runs (locally, local/auth.py). The pool's ARN is the stack's, put in by the deploy
# template (deploy/resources.py); the public routes below name no authorizer.
signed_in = CognitoUserPoolAuthorizer(customers.AUTHORIZER_NAME, provider_arns=[customers.POOL_ARN_PLACEHOLDER])


def _request() -> Request:
    request = app.current_request
    assert request is not None
    return request


def _customer() -> Customer:
    return customers.from_request_context(_request().context)


def _location(route_path: str, target_path: str) -> str:
    """A ``Location`` relative to the request's own URL, so it stays under the stage path
    (``…/api/``) or any prefix the app is served at (chalicelib/links.py)."""
    return links.location(_request().context.get("path"), route_path, target_path)


def error_response(exc: RequestError) -> Response:
    # What the client sent may be echoed back, but never a card number.
    scrub = validation.without_card_numbers
    body: dict[str, Any] = {"error": type(exc).__name__, "message": scrub(exc.message)}
    if exc.field:
        body["field"] = scrub(exc.field)
    if exc.problems:  # every invalid field, so a client can fix them all at once
        body["errors"] = [{"field": scrub(problem["field"]) if problem["field"] else None,
                           "message": scrub(str(problem["message"]))} for problem in exc.problems]
    return Response(body=body, status_code=exc.status)


def route(path: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``app.route``, plus: a RequestError becomes its 4xx JSON response with a readable
    message (Chalice would turn any other exception into a 500 before middleware sees
    it), every log line of the request carries the caller's correlation id, and an
    unlisted ``content_types`` gets this API's 415, not Chalice's own."""
    accepted = options.pop("content_types", None)
    if accepted:
        options["content_types"] = ["*/*"]  # checked in handle(), to refuse in this API's shape

    def register(view: Callable[..., Any]) -> Any:
        @functools.wraps(view)
        def handle(*args: Any, **kwargs: Any) -> Any:
            request = _request()
            headers: Any = request.headers or {}
            given = headers.get("x-correlation-id")
            correlation = given if given and validation.is_correlation_id(given) else str(uuid.uuid4())
            with bound(correlation_id=correlation, path=validation.without_card_numbers(request.path)):
                try:
                    if accepted:
                        validation.check_content_type(headers.get("content-type"), accepted)
                    response = view(*args, **kwargs)
                except RequestError as exc:
                    logger.info("request refused", extra={"status": exc.status,
                                                          "reason": validation.without_card_numbers(exc.message)})
                    response = error_response(exc)
            if not isinstance(response, Response):
                response = Response(body=response)
            response.headers.setdefault("X-Correlation-Id", correlation)
            return response

        return app.route(path, **options)(handle)

    return register


# --- Routes -----------------------------------------------------------------------
# The body is parsed (strictly) by chalicelib whatever the declared type, so a plain
# `curl -d` is not refused with Chalice's own 415.
JSON_BODY = ["application/json", "application/x-www-form-urlencoded", "text/plain"]


@route("/health")
def health() -> dict[str, Any]:
    return {"status": "ok"}


@route("/config")
def stage_config() -> dict[str, Any]:
    # The demo page draws its fault menus and polls until a terminal status from this,
    # pre-fills its sign-in box with a demo customer where the stage has them, and offers
    # the operator's recover where the /admin routes exist (the local stage only).
    settings = {"stage": config.stage(), "fault_injection": config.fault_injection_enabled(),
                "operator_routes": config.operator_routes_enabled(), "saga": vocabulary.describe()}
    if config.demo_users_enabled():
        settings["demo_sign_in"] = {"usernames": list(customers.DEMO_USERNAMES), "password": customers.DEMO_PASSWORD}
    return settings


@route("/openapi.json")
def api_description() -> dict[str, Any]:
    # Public on every stage, like /config: it describes the routes and holds no data. The
    # /admin routes are in it only on the stage that has them.
    return openapi.document(operator_routes=config.operator_routes_enabled())


@route("/auth/sign-in", methods=["POST"], content_types=JSON_BODY)
def sign_in() -> dict[str, Any]:
    return customers.sign_in(_request().raw_body)


@route("/me", authorizer=signed_in)
def who_am_i() -> dict[str, Any]:
    return _customer().public()


@route("/flights")
def list_flights() -> dict[str, Any]:
    return {"flights": seats.list_flights()}


@route("/flights/{flight_number}")
def get_flight(flight_number: str) -> dict[str, Any]:
    return seats.flight_details(flight_number)


@route("/flights/{flight_number}/seats")
def get_seats(flight_number: str) -> dict[str, Any]:
    query: Any = _request().query_params or {}
    status, cabin = parse_seat_filters(query)
    seats.get_flight(flight_number)
    return {"flight_number": flight_number, "seats": seats.seat_map(flight_number, status=status, cabin=cabin)}


@route("/bookings", methods=["POST"], content_types=JSON_BODY, authorizer=signed_in)
def create_booking() -> Response:
    request = _request()
    body, created = api.start_booking(request.raw_body, dict(request.headers), _customer())
    headers: dict[str, str | list[str]] = {"Location": _location("/bookings", f"/bookings/{body['booking_id']}")}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return Response(body=body, status_code=202, headers=headers)


@route("/bookings", authorizer=signed_in)
def list_bookings() -> dict[str, Any]:
    return api.list_bookings(_request().query_params, _customer(),
                             lambda booking_id: _location("/bookings", f"/bookings/{booking_id}"))


@route("/bookings/{booking_id}", authorizer=signed_in)
def get_booking(booking_id: str) -> dict[str, Any]:
    return api.view_booking(booking_id, _customer())


@route("/bookings/{booking_id}/cancel", methods=["POST"], content_types=JSON_BODY, authorizer=signed_in)
def request_cancellation(booking_id: str) -> Response:
    body = api.cancel_booking(booking_id, _request().raw_body, _customer())
    location = _location(f"/bookings/{booking_id}/cancel", f"/bookings/{booking_id}")
    return Response(body=body, status_code=202, headers={"Location": location})


@route("/bookings/{booking_id}/history", authorizer=signed_in)
def booking_history(booking_id: str) -> dict[str, Any]:
    return api.history(booking_id, _customer())


@route("/loyalty/{loyalty_id}", authorizer=signed_in)
def get_loyalty(loyalty_id: str) -> dict[str, Any]:
    return api.loyalty_account(loyalty_id, _customer())


# --- Operators ---------------------------------------------------------------------------
# Deployed, operators invoke the `operator` Lambda (aws lambda invoke --payload
# '{"action": "recover", "booking_id": "..."}'): its role, not the public API's, holds
# the permissions to re-run compensations and scan every table. Locally the state
# lives in the `chalice local` process, so the local stage also serves /admin routes.
@app.lambda_function(name="operator")
def operator(event: dict[str, Any], context: Any) -> Any:
    return recovery.operate(event)


if config.operator_routes_enabled():
    operator_auth = IAMAuthorizer()

    @route("/admin/bookings/{booking_id}/recover", methods=["POST"], authorizer=operator_auth)
    def recover_booking(booking_id: str) -> Any:
        return recovery.operate({"action": "recover", "booking_id": validation.check_booking_id(booking_id)})

    @route("/admin/dead-letters", authorizer=operator_auth)
    def dead_letters() -> Any:
        return recovery.operate({"action": "dead_letters"})

    @route("/admin/invariants", authorizer=operator_auth)
    def check_invariants() -> Any:
        return recovery.operate({"action": "invariants"})

    @route("/admin/sweep", methods=["POST"], authorizer=operator_auth)
    def sweep_now() -> Any:
        return recovery.operate({"action": "sweep"})


@app.schedule(Rate(1, unit=Rate.MINUTES), name="sweep_expired_holds")
def sweep_expired_holds(event: Any) -> dict[str, Any]:
    return recovery.sweep_expired_holds()


# --- The demo page ----------------------------------------------------------------------
@route("/")
def index() -> Response:
    body, content_type = webpage.asset("index.html")
    return Response(body=body.decode(), status_code=200, headers={"Content-Type": content_type})


@route("/assets/{name}")
def web_asset(name: str) -> Response:
    body, content_type = webpage.asset(name)
    return Response(body=body.decode(), status_code=200,
                    headers={"Content-Type": content_type, "Cache-Control": "no-cache"})


@route("/statemachines", authorizer=signed_in)
def state_machines() -> dict[str, Any]:
    return webpage.state_machines()


# --- Saga steps: one Lambda each. Its name, its domain function's and its vocabulary entry's
# agree (chalicelib/vocabulary.py; tests/unit/test_vocabulary.py checks) ---------------------
# Per leg: each is one iteration of a Map state over the booking's legs.
@app.lambda_function(name="reserve_seats")
def reserve_seats(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(RESERVE_SEATS, seats.reserve_seats, event)


@app.lambda_function(name="redeem_points")
def redeem_points(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(REDEEM_POINTS, loyalty.redeem_points, event)


@app.lambda_function(name="authorize_payment")
def authorize_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(AUTHORIZE_PAYMENT, payments.authorize_payment, event)


@app.lambda_function(name="award_miles")
def award_miles(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(AWARD_MILES, loyalty.award_miles, event)


@app.lambda_function(name="confirm_booking")
def confirm_booking(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(CONFIRM_BOOKING, bookings.confirm_booking, event)


# After the pivot: retried, never compensated.
@app.lambda_function(name="capture_payment")
def capture_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(CAPTURE_PAYMENT, payments.capture_payment, event)


# --- Compensations ---------------------------------------------------------------------
@app.lambda_function(name="release_seats")
def release_seats(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(RELEASE_SEATS, seats.release_seats, event)


@app.lambda_function(name="refund_points")
def refund_points(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(REFUND_POINTS, loyalty.refund_points, event)


@app.lambda_function(name="void_payment")
def void_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(VOID_PAYMENT, payments.void_payment, event)


@app.lambda_function(name="reverse_miles")
def reverse_miles(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(REVERSE_MILES, loyalty.reverse_miles, event)


@app.lambda_function(name="cancel_booking")
def cancel_booking(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(CANCEL_BOOKING, bookings.cancel_booking, event)


# A cancellation's only: a confirmed booking's money back.
@app.lambda_function(name="refund_payment")
def refund_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run(REFUND_PAYMENT, payments.refund_payment, event)


# --- Terminal bookkeeping ----------------------------------------------------------------
@app.lambda_function(name="record_failure")
def record_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run_bookkeeping(RECORD_FAILURE, outcomes.record_failure, event)


@app.lambda_function(name="record_capture_failure")
def record_capture_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run_bookkeeping(RECORD_CAPTURE_FAILURE, outcomes.record_capture_failure, event)


@app.lambda_function(name="record_cancellation")
def record_cancellation(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return steps.run_bookkeeping(RECORD_CANCELLATION, outcomes.record_cancellation, event)


# `chalice deploy` would leave a stack without tables or state machines: it is refused
# with the supported path (deploy/chalice_cli.py). Only under a chalice command.
if config.chalice_cli_mode():
    import sys

    from deploy.chalice_cli import refuse_unsupported

    refuse_unsupported(sys.argv)

# `chalice local --stage local`: stand the stack up in memory. Last, so every
# function above is registered; never inside a real Lambda (config checks).
if config.embedded_aws_requested():
    from local.embedded import start_for_chalice_local

    start_for_chalice_local(app)
