"""The API's description: an OpenAPI 3.1 document of every route, served by
``GET /openapi.json``.

Built here rather than kept as a JSON file, because most of it is already said once
elsewhere and must not be said twice: the step names, statuses and failure modes come
from chalicelib/vocabulary.py, the request fields with their patterns and limits from
chalicelib/validation.py (the very rules it enforces), the cabins and seats from
models.py, the error names from the RequestError classes. What is left is the shape of
each answer, which tests check against real answers (tests/functional/test_openapi.py)
and the route table against app.py's (tests/unit/test_openapi.py).

Built on the first request and kept: it depends only on the code and on whether this
stage has the /admin routes (the local stage only: config.operator_routes_enabled()).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from chalicelib import clock, customers, errors, loyalty, validation
from chalicelib.models import BASE_FARES, CABINS, CURRENCY, MAX_LEGS, MAX_PASSENGERS, ROWS, SEAT_LETTERS
from chalicelib.validation import Matching, OneOf, Text
from chalicelib.vocabulary import (
    AUTHORIZE_PAYMENT,
    BOOKING_SAGA_TASK_NAMES,
    CANCELLATION_STEPS,
    CAPTURE_PAYMENT,
    COMPENSATION_NAMES,
    FAILURE_MODES,
    FORWARD_STEP_NAMES,
    LEG_SEPARATOR,
    STEP_NAMES,
    TASKS,
    BookingStatus,
    ExecutionStatus,
    FailureMode,
    PaymentStatus,
    SagaKind,
    SeatStatus,
    StepStatus,
)

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
JSON = "application/json"
#: The security scheme of every customer route: the authorizer's own name (app.py, the
#: deploy template), so the three cannot disagree on what it is called.
SIGNED_IN = customers.AUTHORIZER_NAME
#: Set on the operations of the local stage only (the /admin routes), so a reader of a
#: local document sees at a glance which routes a deployed stage does not have.
LOCAL_ONLY = "x-local-stage-only"

Schema = dict[str, Any]


# --- Schema helpers ----------------------------------------------------------------------
def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or JSON null."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    made = {**schema, "type": [schema["type"], "null"]}
    if "enum" in made:  # an enum is checked whatever the type: null must be one of its values
        made["enum"] = [*made["enum"], None]
    return made


def obj(properties: dict[str, Schema], *, optional: Iterable[str] = (), description: str | None = None,
        closed: bool = False) -> Schema:
    """An object with these properties, each present in every answer unless ``optional``
    (absent, not null, when it does not apply). ``closed``: no other key is accepted (the
    request bodies: validation.py refuses unknown keys)."""
    optional = set(optional)
    unknown = optional - set(properties)
    assert not unknown, f"optional properties that are not properties: {unknown}"
    schema: Schema = {"type": "object", "properties": properties,
                      "required": [name for name in properties if name not in optional]}
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def free_form(description: str) -> Schema:
    """An object whose keys this document does not list (on purpose: say why)."""
    return {"type": "object", "additionalProperties": True, "description": description}


def string(description: str | None = None, **keywords: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **keywords}


def integer(description: str | None = None, **keywords: Any) -> Schema:
    return {"type": "integer", **({"description": description} if description else {}), **keywords}


def boolean(description: str | None = None) -> Schema:
    return {"type": "boolean", **({"description": description} if description else {})}


def one_of(values: Iterable[str], description: str | None = None) -> Schema:
    return string(description, enum=[str(value) for value in values])


def array(items: Schema, description: str | None = None) -> Schema:
    return {"type": "array", "items": items, **({"description": description} if description else {})}


def timestamp(description: str | None = None) -> Schema:
    """A time, in the API's one format (chalicelib/clock.py: UTC, milliseconds, ``Z``)."""
    return string(description, format="date-time", pattern=anchored(clock.API_TIME_FORMAT),
                  examples=["2026-12-02T07:35:50.123Z"])


def anchored(pattern: str) -> str:
    """validation.py matches patterns whole (fullmatch); a JSON Schema pattern is a search."""
    return f"^(?:{pattern})$"


def text(field: Text, description: str) -> Schema:
    """A text field as validation.py checks it: not blank, at most ``limit`` characters
    (before trimming), each rule's pattern or choices. Optional fields may be null."""
    schema = string(description, minLength=1, maxLength=field.limit)
    for rule in field.rules:
        if isinstance(rule, Matching):
            schema["pattern"] = anchored(rule.pattern)
        elif isinstance(rule, OneOf):
            schema["enum"] = list(rule.allowed)
    return schema if field.required else nullable(schema)


def key(field: Text) -> str:
    """The field's key in its object: ``passenger.email`` -> ``email``."""
    return field.name.rpartition(".")[2]


def seat_pattern() -> str:
    """A seat on the aircraft (models.py): a row without leading zero, then a letter."""
    return anchored(f"(?:{'|'.join(str(row) for row in ROWS)})[{SEAT_LETTERS}]")


def _error_names(status: int) -> list[str]:
    """The error names a status carries: the RequestError classes of that status (API
    Gateway's own refusals use the same names, deploy/resources.py)."""
    found: list[str] = []
    pending: list[type[errors.RequestError]] = [errors.RequestError]
    while pending:
        error = pending.pop(0)
        if error.status == status and error is not errors.RequestError:
            found.append(error.__name__)
        pending.extend(error.__subclasses__())
    return found


# --- Requests ----------------------------------------------------------------------------
def failure_mode() -> Schema:
    return one_of(FAILURE_MODES, "permanent: every attempt fails; transient: the first attempt fails (Retry "
                                 "absorbs it); timeout: does its work, then hangs past its TimeoutSeconds; hang: "
                                 "hangs before its call reaches the service")


def leg_fault() -> Schema:
    return obj({
        "leg": integer("The leg (0-based) whose invocation fails", minimum=0, maximum=MAX_LEGS - 1),
        "mode": ref("FailureMode"),
        "passenger": integer("ReserveSeats, mode permanent only: the passenger (0-based) whose seat is refused, "
                             "which fails that leg's transaction as a whole", minimum=0, maximum=MAX_PASSENGERS - 1),
    }, optional=["mode", "passenger"], closed=True, description="One leg of a task that runs per leg (default mode: "
                                                                 "permanent)")


def _fault(task: str) -> Schema:
    """A mode (every invocation); for a task that runs per leg, also one leg's fault."""
    return {"anyOf": [ref("FailureMode"), ref("LegFault")]} if TASKS[task].per_leg else ref("FailureMode")


def _simulate_failure(tasks: Sequence[str], description: str) -> Schema:
    return nullable(obj({task: _fault(task) for task in tasks}, optional=tasks, closed=True,
                        description=description))


def entry(names: Iterable[str], description: str | None = None) -> Schema:
    """A task's name, or for a task that runs per leg one leg's entry (``ReleaseSeats#1``)."""
    names = list(names)
    per_leg = [name for name in names if name in TASKS and TASKS[name].per_leg]
    alternatives = [*names, *(f"{name}{LEG_SEPARATOR}[0-9]" for name in per_leg)]
    return string(description, pattern=anchored("|".join(alternatives)))


_FAULTS_WHERE = ("Honoured only where the stage enables fault injection (local and dev: GET /config says "
                 "`fault_injection`); elsewhere a non-empty one is a 400.")


def booking_request() -> Schema:
    passenger = obj({
        key(validation.FIRST_NAME): text(validation.FIRST_NAME, "Given name"),
        key(validation.LAST_NAME): text(validation.LAST_NAME, "Family name"),
        key(validation.EMAIL): text(validation.EMAIL, "Optional contact address"),
    }, optional=[key(validation.EMAIL)], closed=True)
    payment = obj({
        key(validation.CARD_TOKEN): text(
            validation.CARD_TOKEN, "The payment provider's token, never card data: `tok_visa` approves, "
                                   "`tok_decline` is declined"),
    }, closed=True, description="A card token only: any other key (card_number, cvv, ...) is a 400.")
    seat = {**text(validation.SEAT, "A seat on the aircraft (rows 1-27, A-F), e.g. 12A"), "pattern": seat_pattern()}
    flight = text(validation.FLIGHT_NUMBER, "e.g. SA101")
    member = obj({
        **passenger["properties"],
        "seats": nullable({"type": "object", "additionalProperties": string(pattern=seat_pattern()),
                           "description": "Flight number (one of `flights`) -> the seat this passenger chose on it; "
                                          "no seat twice in the party, every seat in the booking's cabin. A flight "
                                          "not named: a seat is assigned, beside the party's others where the "
                                          "cabin allows"}),
    }, optional=[key(validation.EMAIL), "seats"], closed=True)
    properties: dict[str, Schema] = {
        key(validation.FLIGHT_NUMBER): flight,
        "flights": {"type": "array", "items": {**flight, "type": "string"}, "minItems": 1, "maxItems": MAX_LEGS,
                    "uniqueItems": True, "description": "The legs, in travel order (each departs after the one "
                                                        "before, else 400): a return or a connection, all or "
                                                        "nothing. Instead of flight_number"},
        "passenger": passenger,
        "passengers": {"type": "array", "items": member, "minItems": 1, "maxItems": MAX_PASSENGERS,
                       "description": "The party, instead of passenger: one seat each on every leg"},
        key(validation.SEAT): seat,
        key(validation.CABIN): text(validation.CABIN, "The cabin of every seat: auto-assigned ones are picked in "
                                                      "it, chosen ones must be in it (without it, theirs)"),
        key(validation.LOYALTY_ID): text(validation.LOYALTY_ID, "The customer's own loyalty account "
                                                                "(another's is a 403): miles are credited to it"),
        "points_to_redeem": nullable(integer("Points to redeem: 100 points = 1.00 off the fare; needs a "
                                             "loyalty_id when more than 0", minimum=0, maximum=validation.MAX_POINTS)),
        "payment": payment,
        "simulate_failure": _simulate_failure(
            BOOKING_SAGA_TASK_NAMES,
            f"A step or compensation of the booking saga -> how it fails. {_FAULTS_WHERE}"),
    }
    assert set(properties) == validation.BOOKING_FIELDS, "validation.py's booking fields and this document differ"
    assert set(passenger["properties"]) == validation.PASSENGER_FIELDS
    assert set(member["properties"]) == validation.PARTY_PASSENGER_FIELDS
    schema = obj(properties, optional=set(properties) - {"payment"}, closed=True,
                 description="A party (`flights`, `passengers`) or one seat (`flight_number`, `passenger`, `seat`: "
                             "one leg, one passenger). Every invalid field is reported at once (a 400 lists them "
                             "in `errors`). Twelve digits or more anywhere in the body are refused as a card number.")
    schema["anyOf"] = [{"required": [key(validation.SEAT)], "properties": {key(validation.SEAT): {"type": "string"}}},
                       {"required": [key(validation.CABIN)], "properties": {key(validation.CABIN): {"type": "string"}}},
                       {"required": ["passengers"]}]
    schema["allOf"] = [
        {"oneOf": [{"required": ["flight_number"]}, {"required": ["flights"]}]},
        {"oneOf": [{"required": ["passenger"]}, {"required": ["passengers"]}]},
        {"if": {"required": ["flights"]}, "then": {"required": ["passengers"]}},
        {"if": {"required": ["passengers"]}, "then": {"not": {"required": [key(validation.SEAT)]}}},
    ]
    schema["if"] = {"properties": {"points_to_redeem": {"type": "integer", "minimum": 1}},
                    "required": ["points_to_redeem"]}
    schema["then"] = {"required": [key(validation.LOYALTY_ID)],
                      "properties": {key(validation.LOYALTY_ID): {"type": "string"}}}
    return schema


def booking_examples() -> dict[str, Any]:
    base = {"flight_number": "SA101", "passenger": {"first_name": "Ada", "last_name": "Lovelace"},
            "payment": {"card_token": "tok_visa"}}
    return {
        "seat-with-points": {"summary": "Seat 12A, redeeming 2,500 points (25.00 off)",
                             "value": {**base, "seat": "12A", "loyalty_id": "FF0001", "points_to_redeem": 2500}},
        "any-seat-of-a-cabin": {"summary": "Any free ECONOMY seat", "value": {**base, "cabin": CABINS[-1]}},
        "a-party-on-a-return": {
            "summary": "Two passengers out and back: one chose her seat out, the others sit together",
            "value": {"flights": ["SA101", "SA102"], "cabin": CABINS[-1], "payment": {"card_token": "tok_visa"},
                      "passengers": [{"first_name": "Ada", "last_name": "Lovelace", "seats": {"SA101": "12A"}},
                                     {"first_name": "Charles", "last_name": "Babbage"}]},
        },
        "injected-failure": {
            "summary": f"{AUTHORIZE_PAYMENT.name} fails: the compensations run (fault injection stages only)",
            "value": {**base, "cabin": CABINS[-1],
                      "simulate_failure": {AUTHORIZE_PAYMENT.name: FailureMode.PERMANENT.value}},
        },
    }


def cancel_request() -> Schema:
    runs = [compensation.name for compensation in CANCELLATION_STEPS]
    return obj({"simulate_failure": _simulate_failure(
        runs, f"Only the compensations a cancellation runs. {_FAULTS_WHERE}")}, optional=["simulate_failure"],
        closed=True, description="Optional: no body, `{}`, or a simulate_failure.")


def sign_in_request() -> Schema:
    return obj({
        key(validation.USERNAME): text(validation.USERNAME, "e.g. FF0001 (the demo customers FF0001-FF0010)"),
        "password": string("Checked for shape only, never echoed", minLength=1, maxLength=validation.PASSWORD_LIMIT),
    }, closed=True)


# --- Answers -----------------------------------------------------------------------------
def _step_entry(names: Iterable[str], statuses: Iterable[StepStatus], *, compensation: bool) -> Schema:
    statuses = list(statuses)
    properties: dict[str, Schema] = {
        "name": one_of(names),
        "status": one_of(statuses),
        "started_at": nullable(timestamp("First attempt")),
        "finished_at": nullable(timestamp()),
        "attempts": integer(minimum=0),
        "error": ref("SagaError"),
        "result": free_form("What the step returned (its result in the execution state): each step's own "
                            "shape, e.g. AuthorizePayment's amount and authorisation. Its times are in the "
                            "API's one format, and any amount of money (fare, amount, refunded) comes with its "
                            "currency"),
        "items": array(obj({
            "leg": integer("0-based, in travel order", minimum=0), "flight_number": nullable(string()),
            "status": one_of(statuses),
            "seats": array(obj({"passenger": integer(minimum=0), "seat": string(pattern=seat_pattern()),
                                "cabin": one_of(CABINS)}),
                           "The seats the leg held (ReserveSeats) or released (ReleaseSeats)"),
            "error": ref("SagaError"),
        }, optional=["seats", "error"]), "A step that runs per leg (a Map): each leg it ran on. Its status is "
                                         "the first of RUNNING, FAILED, TIMED_OUT any leg has, else the legs'"),
    }
    if compensation:
        properties["order"] = integer("1 for the first compensation that ran", minimum=1)
    return obj(properties, optional=["error", "result", "items"])


def schemas() -> dict[str, Schema]:
    flight_summary = {
        "flight_number": string(), "origin": string("IATA airport code"), "destination": string(),
        "departure": timestamp(), "seats_total": integer(minimum=0),
        "seats_available": integer("Free now (an expired hold counts as free)", minimum=0),
    }
    cabins_count = obj({cabin: integer(minimum=0) for cabin in CABINS}, description="Free seats per cabin")
    money = obj({"amount": integer("Minor units (cents)", minimum=0), "currency": one_of([CURRENCY])})
    # What GET /bookings/{id} shows of a payment (a request, or a VOIDED tombstone, as NONE).
    payment_statuses = [status for status in PaymentStatus if status != PaymentStatus.REQUESTED]
    forward_statuses = [status for status in StepStatus if status != StepStatus.COMPENSATED]
    compensation_statuses = [status for status in StepStatus
                             if status not in (StepStatus.SUCCEEDED, StepStatus.NOT_STARTED, StepStatus.SKIPPED)]
    return {
        "Health": obj({"status": one_of(["ok"])}),
        "Config": obj({
            "stage": string("local, dev or prod"),
            "fault_injection": boolean("Whether simulate_failure is honoured on this stage"),
            "operator_routes": boolean("Whether this stage has the /admin routes (the local stage only)"),
            "saga": ref("SagaVocabulary"),
            "demo_sign_in": obj({"usernames": array(string()), "password": string()},
                                description="Stages with demo customers only (local, dev)"),
        }, optional=["demo_sign_in"]),
        "SagaVocabulary": obj({
            "steps": array(obj({
                "name": one_of(FORWARD_STEP_NAMES),
                "compensation": nullable(one_of(COMPENSATION_NAMES, "Null after the pivot: never compensated")),
                "result_key": string("Where the step's result lands in the execution state"),
                "pivot": boolean("Once it commits the booking is sold"),
                "runs_if_positive": nullable(string("The step runs only when this input field is > 0")),
                "after_pivot": boolean("Runs after the pivot: retried, never compensated"),
                "per_leg": boolean("Runs once per leg: a Map state over the legs, each leg's invocation its own"),
            }, optional=["after_pivot", "per_leg"]), "The forward steps in the order they run"),
            "compensation_order": array(one_of(COMPENSATION_NAMES), "The order a failure runs them in"),
            "cancellation_steps": array(one_of(COMPENSATION_NAMES), "What cancelling a confirmed booking runs"),
            "failure_modes": array(one_of(FAILURE_MODES)),
            "booking_statuses": array(one_of(BookingStatus)),
            "terminal_statuses": array(one_of(BookingStatus), "No saga is running: what a poller waits for"),
            "seat_statuses": array(one_of(SeatStatus)),
        }, description="The saga's vocabulary (chalicelib/vocabulary.py), for the demo page"),
        "Tokens": obj({
            "id_token": string("Send as `Authorization: Bearer <id_token>`"),
            "access_token": string("Cognito's access token (the API takes the ID token)"),
            "expires_in": integer("Seconds", minimum=1), "token_type": one_of(["Bearer"]),
        }),
        "Me": obj({"username": string(), "loyalty_id": nullable(string("The account the customer owns"))}),
        "FlightList": obj({"flights": array(obj(flight_summary), "Soonest departure first")}),
        "Flight": obj({**flight_summary, "availability": cabins_count,
                       "fares": obj({cabin: money for cabin in CABINS}, description="The base fare per cabin")}),
        "SeatMap": obj({"flight_number": string(), "seats": array(obj({
            "seat": string(pattern=seat_pattern()), "cabin": one_of(CABINS), "status": one_of(SeatStatus),
        }), "Front to back")}),
        "BookingAccepted": obj({
            "booking_id": string(format="uuid"),
            "correlation_id": string("The X-Correlation-Id sent, or a new one; in every log line of the saga"),
            "status": one_of(BookingStatus, "PENDING when just started; a replayed Idempotency-Key answers the "
                                            "booking's current status"),
        }),
        "CancellationAccepted": obj({
            "booking_id": string(format="uuid"), "correlation_id": string(),
            "status": one_of([BookingStatus.CANCELLING]),
        }),
        "Passenger": obj({"first_name": string(), "last_name": string(), "email": string()}, optional=["email"]),
        "PartyMember": obj({
            "first_name": string(), "last_name": string(), "email": string(),
            "ticket_number": string("Once CONFIRMED", pattern="^[0-9]{13}$"),
            "boarding_passes": array(ref("BoardingPass"), "Once CONFIRMED: one per leg, in travel order"),
        }, optional=["email", "ticket_number", "boarding_passes"]),
        "Leg": obj({
            "flight_number": string(), "departure": nullable(timestamp()),
            "seats": array(obj({"passenger": integer("Its index in passengers", minimum=0),
                                "seat": string(pattern=seat_pattern()), "cabin": one_of(CABINS)}),
                           "The seats held or sold on this leg, one per passenger; empty until ReserveSeats holds "
                           "them (and after a failure that released them, those it had held)"),
        }),
        "SagaError": obj({"error": string("The error name, e.g. PaymentDeclined, States.Timeout"),
                          "cause": string()}),
        "StepEntry": _step_entry(FORWARD_STEP_NAMES, forward_statuses, compensation=False),
        "CompensationEntry": _step_entry(COMPENSATION_NAMES, compensation_statuses, compensation=True),
        "BoardingPass": obj({
            "passenger": string("LAST/FIRST"), "flight_number": string(), "origin": string(),
            "destination": string(), "departure": timestamp(), "boarding_time": timestamp(),
            "seat": string(pattern=seat_pattern()), "cabin": one_of(CABINS),
            "boarding_group": integer(minimum=1), "ticket_number": string(pattern="^[0-9]{13}$"),
            "booking_id": string(format="uuid"),
        }),
        "Booking": obj({
            "booking_id": string(format="uuid"), "correlation_id": string(), "status": one_of(BookingStatus),
            "flight_number": string("The first leg's"),
            "seat": nullable(string("The first passenger's on the first leg; null until ReserveSeats holds it",
                                    pattern=seat_pattern())),
            "cabin": nullable(one_of(CABINS)), "passenger": ref("Passenger"),
            "legs": array(ref("Leg"), "In travel order"),
            "passengers": array(ref("PartyMember"), "The party; passenger is the first of them"),
            "loyalty_id": nullable(string()), "points_to_redeem": integer(minimum=0),
            "fare": nullable(integer("Minor units, before points: over the legs, the cabin's fare for each "
                                     "passenger", minimum=0)),
            "amount_due": nullable(integer("Minor units: the fare after the points redeemed, what is authorised",
                                           minimum=0)),
            "currency": one_of([CURRENCY]),
            "amount_paid": integer("Minor units captured and not refunded", minimum=0),
            "payment": obj({
                "status": one_of(payment_statuses, "AUTHORIZED: held on the card; CAPTURED once the tickets are "
                                                   "issued; CAPTURE_FAILED: confirmed, the capture failed after "
                                                   "its retries (an operator recovers it); VOIDED: the hold was "
                                                   "released; NONE: nothing authorised"),
                "amount": integer("Minor units held, captured, released or refunded (0 when DECLINED or NONE)",
                                  minimum=0),
                "currency": one_of([CURRENCY]),
            }),
            "steps": array(ref("StepEntry"), "Every forward step in saga order; SKIPPED: its condition was false"),
            "compensations": array(ref("CompensationEntry"), "The compensations that ran, in the order they ran"),
            "failed_step": nullable(one_of(STEP_NAMES, "Set when FAILED")),
            "error": nullable(ref("SagaError")),
            "ticket_number": nullable(string("Set when CONFIRMED: the first passenger's", pattern="^[0-9]{13}$")),
            "boarding_pass": nullable(ref("BoardingPass")),  # (the first passenger's, first leg)
            "created_at": timestamp(), "updated_at": timestamp(),
            "needs_attention": obj({
                "failed_step": nullable(one_of(STEP_NAMES)),
                "failed_compensations": array(one_of(COMPENSATION_NAMES)),
            }, description="NEEDS_ATTENTION only: what an operator must recover"),
        }, optional=["needs_attention"]),
        "BookingList": obj({
            "bookings": array(obj({
                "booking_id": string(format="uuid"), "status": one_of(BookingStatus), "flight_number": string(),
                "seat": nullable(string("The first passenger's on the first leg; null until ReserveSeats holds "
                                        "it", pattern=seat_pattern())),
                "cabin": nullable(one_of(CABINS)),
                "fare": nullable(integer("Minor units, before points", minimum=0)),
                "amount_paid": integer("Minor units captured and not refunded", minimum=0),
                "currency": one_of([CURRENCY]),
                "created_at": timestamp(), "updated_at": timestamp(),
                "href": string("The booking (GET it for steps, ticket, boarding pass), relative to this "
                               "listing's URL: `bookings/<id>`"),
            }), "The customer's own bookings, newest first"),
            "next_token": nullable(string("Send as `next_token` for the page after this one; null on the "
                                          "last page")),
        }),
        "History": obj({
            "booking_id": string(format="uuid"), "correlation_id": string(),
            "executions": array(obj({
                "kind": one_of(SagaKind), "execution_arn": string(), "status": one_of(ExecutionStatus),
                "started_at": timestamp(), "stopped_at": nullable(timestamp()),
                "events": array(obj({
                    "id": integer(minimum=1), "timestamp": timestamp(),
                    "type": string("Step Functions' event type, e.g. TaskStateEntered, TaskFailed"),
                    "state": nullable(string("The state the event concerns")),
                    "leg": integer("An event of a Map's iteration: its leg (0-based)", minimum=0),
                    "attempt": integer("On a task scheduling: its attempt number (of its leg's, in a Map)",
                                       minimum=1),
                    "retry": boolean("On a task scheduling after the first: a Retry"),
                    "error": string(), "cause": string(),
                }, optional=["leg", "attempt", "retry", "error", "cause"])),
            }), "The booking's executions: the booking saga, then a cancellation"),
        }),
        "LoyaltyAccount": obj({
            "loyalty_id": string(), "name": nullable(string()), "points_balance": integer(),
            "opening_balance": integer(),
            "ledger": array(obj({
                "booking_id": string(format="uuid"),
                "kind": one_of([loyalty.REDEEM, loyalty.REFUND, loyalty.AWARD, loyalty.REVERSE]),
                "points": integer("Signed: what the entry moved the balance by"), "at": timestamp(),
            }), "Oldest first; balance = opening_balance + sum of points"),
        }),
        "StateMachines": obj({kind.value: obj({
            "name": string(),
            "definition": free_form("The Amazon States Language definition as the engine runs it "
                                    "(DescribeStateMachine)"),
        }) for kind in SagaKind}),
        "Recovery": obj({
            "booking_id": string(format="uuid"), "status": one_of(BookingStatus),
            "rerun": array(entry((*COMPENSATION_NAMES, CAPTURE_PAYMENT.name)),
                           f"The compensations re-run, in saga order; or {CAPTURE_PAYMENT.name} for a CONFIRMED "
                           "booking whose capture failed"),
            "still_failing": {"type": "object", "additionalProperties": string(),
                              "description": "Task -> its error, for each that failed again"},
            "violations": array(ref("Violation"), "Left behind in the booking's tables (recovery incomplete)"),
            "written_off": integer("Minor units recorded as lost revenue: the authorisation had lapsed, so "
                                   "nothing could be captured", minimum=0),
        }, optional=["violations", "written_off"]),
        "DeadLetters": obj({"dead_letters": array(obj({
            "booking_id": string(format="uuid"),
            "compensation": entry((*COMPENSATION_NAMES, CAPTURE_PAYMENT.name), "The task, or one leg's "
                                  "(ReleaseSeats#1); historical name"),
            "task": entry((*COMPENSATION_NAMES, CAPTURE_PAYMENT.name)),
            "correlation_id": string(), "flight_number": string(), "error": string(), "cause": string(),
            "at": timestamp(), "state": string(),
        }, optional=["task"]), "Open dead letters: compensations, or a confirmed booking's capture, that failed "
                               "after their retries")}),
        "Invariants": obj({"violations": array(ref("Violation")), "count": integer(minimum=0)}),
        "Violation": obj({"rule": string("e.g. loyalty-balance, booked-seat-owner"),
                          "subject": string("The seat, booking or account"), "detail": string()}),
        "Sweep": obj({"expired": integer(minimum=0), "released": integer(minimum=0),
                      "bookings_failed": integer(minimum=0)}),
        **{f"Error{status}": _error_schema(status, name) for status, (name, _) in ERROR_RESPONSES.items()},
    }


#: status -> (the response's name under components, when it happens)
ERROR_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is malformed or breaks a rule: `errors` lists every invalid field "
                        "(body, query and headers) at once, nested ones by path (`passenger.first_name`). Nothing "
                        "was written."),
    401: ("Unauthorized", "No valid sign-in: no token, a forged, expired or foreign one, or an access token "
                          "instead of the ID token."),
    403: ("Forbidden", "Signed in, but acting for someone else (another customer's loyalty account)."),
    404: ("NotFound", "No such flight, booking or loyalty account; another customer's is 404 too, as if it did "
                      "not exist."),
    409: ("Conflict", "The request conflicts with the state of things (seat taken, booking not cancellable, "
                      "Idempotency-Key reused with another body). Nothing was written."),
    415: ("UnsupportedMediaType", "The body is not sent as JSON (application/json; a plain `curl -d` "
                                  "form or text/plain body is read as JSON too)."),
    429: ("TooManyRequests", "Slow down: the identity provider's limit on sign-in (deployed, API Gateway's "
                             "throttling answers any route the same way)."),
}
# Refusals that may come before the route runs (the authorizer, the throttle): without
# the route's X-Correlation-Id.
_BEFORE_THE_ROUTE = {401, 429}
# Which errors name the field at fault (``field``): those about the input, not the caller.
_WITH_FIELD = {400, 403, 404, 409}


def _error_schema(status: int, name: str) -> Schema:
    properties: dict[str, Schema] = {
        "error": one_of(_error_names(status), "The error's name"),
        "message": string("What is wrong, readable; never echoes a card number"),
    }
    optional = []
    if status in _WITH_FIELD:
        properties["field"] = string("The (first) field at fault")
        optional.append("field")
    if status == 400:
        properties["errors"] = array(obj({"field": nullable(string()), "message": string()}),
                                     "Every invalid field, in the order checked")
    return obj(properties, optional=optional, description=f"{status} {name}")


# --- Operations ----------------------------------------------------------------------------
def _json_response(description: str, schema: Schema, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}},
            "headers": {"X-Correlation-Id": {"$ref": "#/components/headers/X-Correlation-Id"}, **(headers or {})}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"} for status in statuses}


def _json_body(schema_name: str, *, required: bool = True, examples: dict[str, Any] | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": ref(schema_name)}
    if examples:
        media["examples"] = examples
    return {"required": required, "content": {JSON: media}}


def _operation(view: str, summary: str, responses: dict[str, Any], *, tag: str, public: bool = False,
               parameters: Iterable[str] = (), body: dict[str, Any] | None = None,
               description: str | None = None) -> dict[str, Any]:
    """An operation; ``view`` is app.py's handler (its operationId: a test ties the two)."""
    operation: dict[str, Any] = {"operationId": view, "summary": summary, "tags": [tag]}
    if description:
        operation["description"] = description
    refs = [*parameters, "X-Correlation-Id"]
    operation["parameters"] = [{"$ref": f"#/components/parameters/{name}"} for name in refs]
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = {**responses, **({} if public else _errors(401))}
    if public:
        operation["security"] = []  # no token: the document's default (signed in) does not apply
    return operation


def paths(*, operator_routes: bool) -> dict[str, Any]:
    booking_id = ["booking_id"]
    routes: dict[str, Any] = {
        "/health": {"get": _operation("health", "Is the API up", {
            "200": _json_response("Up", ref("Health"))}, tag="service", public=True)},
        "/config": {"get": _operation("stage_config", "The stage's settings and the saga's vocabulary", {
            "200": _json_response("What the demo page builds its menus from", ref("Config"))},
            tag="service", public=True)},
        "/openapi.json": {"get": _operation("api_description", "This document", {
            "200": _json_response("OpenAPI 3.1", free_form("This document"))}, tag="service", public=True,
            description="The /admin routes are in it only on the stage that has them (local).")},
        "/auth/sign-in": {"post": _operation("sign_in", "Trade a username and password for Cognito tokens", {
            "200": _json_response("Signed in: send the id_token as `Authorization: Bearer <id_token>`",
                                  ref("Tokens")),
            **_errors(400, 415, 429),
            "401": {"$ref": "#/components/responses/Unauthorized",
                    "description": "SignInFailed: any wrong credential (which part is never said)"},
        }, tag="customers", public=True, body=_json_body("SignIn"),
            description="Cognito InitiateAuth (USER_PASSWORD_AUTH) through the stack's app client.")},
        "/me": {"get": _operation("who_am_i", "The signed-in customer", {
            "200": _json_response("Read from the ID token's claims", ref("Me"))}, tag="customers")},
        "/flights": {"get": _operation("list_flights", "Every flight with its free seats", {
            "200": _json_response("Soonest departure first", ref("FlightList"))}, tag="flights", public=True)},
        "/flights/{flight_number}": {"get": _operation("get_flight", "A flight: free seats per cabin, fares", {
            "200": _json_response("The flight", ref("Flight")), **_errors(404)},
            tag="flights", public=True, parameters=["flight_number"])},
        "/flights/{flight_number}/seats": {"get": _operation("get_seats", "The seat map", {
            "200": _json_response("Every seat (or those the filters select); an expired hold shows AVAILABLE",
                                  ref("SeatMap")),
            **_errors(400, 404)}, tag="flights", public=True, parameters=["flight_number", "status", "cabin"],
            description="400 on an unknown, repeated or misspelt query parameter: a typo never returns the "
                        "whole map.")},
        "/bookings": {"get": _operation("list_bookings", "The customer's bookings, newest first, a page at a time", {
            "200": _json_response("A page of summaries, and the token of the next page", ref("BookingList")),
            **_errors(400)}, tag="bookings", parameters=["limit", "next_token"],
            description="One Query of the bookings table's customer index, never a scan. Eventually "
                        "consistent: a booking made a moment ago may be missing from a deployed listing "
                        "for a moment (GET /bookings/{booking_id} always has it). 400 on a limit that is "
                        "not a whole number 1-" f"{validation.LISTING_LIMIT_MAX}, an unknown or repeated "
                        "parameter, or a next_token this API did not give this customer."),
                      "post": _operation("create_booking", "Book a seat: starts the booking saga", {
            "202": _json_response("Accepted: poll GET /bookings/{booking_id} until a terminal status",
                                  ref("BookingAccepted"), headers={
                                      "Location": {"$ref": "#/components/headers/Location"},
                                      "Idempotent-Replayed": {"$ref": "#/components/headers/Idempotent-Replayed"}}),
            **_errors(400, 403, 404, 409, 415)},
            tag="bookings", parameters=["Idempotency-Key"],
            body=_json_body("BookingRequest", examples=booking_examples()),
            description="Refused up front, before anything is written: an invalid body or header (400), "
                        "another's loyalty account (403), an unknown flight or account (404), a taken seat "
                        "(409).")},
        "/bookings/{booking_id}": {"get": _operation("get_booking", "The customer's booking", {
            "200": _json_response("Its status, seat, fare, payment, steps and compensations (in the order they "
                                  "ran), ticket and boarding pass", ref("Booking")),
            **_errors(400, 404)}, tag="bookings", parameters=booking_id)},
        "/bookings/{booking_id}/cancel": {"post": _operation(
            "request_cancellation", "Cancel a CONFIRMED booking: starts the cancellation saga", {
                "202": _json_response("Accepted: CANCELLING, then CANCELLED (or NEEDS_ATTENTION)",
                                      ref("CancellationAccepted"),
                                      headers={"Location": {"$ref": "#/components/headers/Location"}}),
                **_errors(400, 404, 409, 415)},
            tag="bookings", parameters=booking_id, body=_json_body("CancelRequest", required=False),
            description="409 unless the booking is CONFIRMED.")},
        "/bookings/{booking_id}/history": {"get": _operation("booking_history", "The booking's executions", {
            "200": _json_response("Event by event: states entered and exited, failures with error and cause, "
                                  "retries", ref("History")),
            **_errors(400, 404)}, tag="bookings", parameters=booking_id)},
        "/loyalty/{loyalty_id}": {"get": _operation("get_loyalty", "The customer's own loyalty account", {
            "200": _json_response("Balance and ledger", ref("LoyaltyAccount")), **_errors(404)},
            tag="loyalty", parameters=["loyalty_id"])},
        "/statemachines": {"get": _operation("state_machines", "The two state machines, as the engine runs them", {
            "200": _json_response("By kind: their names and definitions (the page draws them)",
                                  ref("StateMachines"))}, tag="bookings")},
        "/": {"get": _operation("index", "The demo page", {
            "200": {"description": "The page", "content": {"text/html": {"schema": string()}}}},
            tag="page", public=True)},
        "/assets/{name}": {"get": _operation("web_asset", "A file of the demo page", {
            "200": {"description": "The file", "content": {
                media.split(";")[0]: {"schema": string()}
                for media in sorted(set(_asset_types()))}},
            **_errors(404)}, tag="page", public=True, parameters=["name"])},
    }
    if operator_routes:
        routes.update(_operator_paths())
    return routes


def _asset_types() -> list[str]:
    from chalicelib.webpage import CONTENT_TYPES

    return list(CONTENT_TYPES.values())


def _operator_paths() -> dict[str, Any]:
    """The /admin routes: the local stage only, where the state lives in the `chalice local`
    process. Deployed, operators invoke the `operator` Lambda with IAM instead."""
    where = ("Local stage only (chalice local): no credential is checked there. Deployed stages have no "
             "/admin routes: operators invoke the `operator` Lambda with IAM.")

    def admin(view: str, summary: str, responses: dict[str, Any], **options: Any) -> dict[str, Any]:
        operation = _operation(view, summary, responses, tag="operator", public=True, description=where, **options)
        operation[LOCAL_ONLY] = True
        return operation

    return {
        "/admin/bookings/{booking_id}/recover": {"post": admin(
            "recover_booking", "Re-run the outstanding compensations of a NEEDS_ATTENTION booking, or the "
                               "capture of a CONFIRMED one whose capture failed", {
                "200": _json_response("FAILED (or CANCELLED) when its tables are clean; else still "
                                      "NEEDS_ATTENTION, with what failed again. A capture: still CONFIRMED, "
                                      "captured, written off, or still failing", ref("Recovery")),
                **_errors(400, 404, 409)}, parameters=["booking_id"])},
        "/admin/dead-letters": {"get": admin("dead_letters", "Open dead letters", {
            "200": _json_response("Compensations that failed after their retries", ref("DeadLetters"))})},
        "/admin/invariants": {"get": admin("check_invariants", "Check every table's invariants", {
            "200": _json_response("Each violation found", ref("Invariants"))})},
        "/admin/sweep": {"post": admin("sweep_now", "Release expired holds now (the sweeper runs every minute)", {
            "200": _json_response("What the sweep did", ref("Sweep"))})},
    }


def components() -> dict[str, Any]:
    header_value = string(pattern=anchored(validation.HEADER_VALUE_FORMAT))
    return {
        "schemas": {
            **schemas(),
            "BookingRequest": booking_request(),
            "CancelRequest": cancel_request(),
            "FailureMode": failure_mode(),
            "LegFault": leg_fault(),
            "SignIn": sign_in_request(),
        },
        "responses": {
            name: {"description": description,
                   "content": {JSON: {"schema": ref(f"Error{status}")}},
                   # A 401 (and a throttled 429) is API Gateway's, before the route runs and
                   # names the request's correlation id.
                   **({} if status in _BEFORE_THE_ROUTE else {
                       "headers": {"X-Correlation-Id": {"$ref": "#/components/headers/X-Correlation-Id"}}})}
            for status, (name, description) in ERROR_RESPONSES.items()
        },
        "parameters": {
            "booking_id": {"name": "booking_id", "in": "path", "required": True,
                           "schema": string(format="uuid", pattern=anchored(validation.BOOKING_ID_FORMAT)),
                           "description": "A malformed id is a 400; another customer's booking is a 404"},
            "flight_number": {"name": "flight_number", "in": "path", "required": True, "schema": string(),
                              "example": "SA101"},
            "loyalty_id": {"name": "loyalty_id", "in": "path", "required": True, "schema": string(),
                           "description": "Only the customer's own (custom:loyalty_id); any other is a 404"},
            "name": {"name": "name", "in": "path", "required": True,
                     "schema": string(pattern="^[A-Za-z0-9_-]{1,64}\\.[a-z]{2,4}$"), "example": "app.js"},
            "status": {"name": "status", "in": "query", "required": False, "schema": one_of(SeatStatus),
                       "description": "At most once"},
            "cabin": {"name": "cabin", "in": "query", "required": False, "schema": one_of(CABINS),
                      "description": "At most once"},
            "limit": {"name": "limit", "in": "query", "required": False,
                      "schema": integer(minimum=1, maximum=validation.LISTING_LIMIT_MAX,
                                        default=validation.LISTING_LIMIT_DEFAULT),
                      "description": "Bookings per page, at most once"},
            "next_token": {"name": "next_token", "in": "query", "required": False,
                           "schema": string(maxLength=validation.NEXT_TOKEN_LIMIT, pattern="^[A-Za-z0-9_-]+$"),
                           "description": "The previous page's next_token, as given (opaque; it is the "
                                          "customer's own: anyone else's is a 400)"},
            "Idempotency-Key": {
                "name": "Idempotency-Key", "in": "header", "required": False, "schema": header_value,
                "description": "The same key with the same body answers the first booking (202, "
                               "Idempotent-Replayed: true) and starts nothing; with another body, 409. Each "
                               "customer's keys are their own. Malformed: 400."},
            "X-Correlation-Id": {
                "name": "X-Correlation-Id", "in": "header", "required": False, "schema": header_value,
                "description": "Carried by every log line of the request (and of the saga it starts), and "
                               "answered back; a new one when absent. POST /bookings refuses a malformed one "
                               "(400); elsewhere it is replaced."},
        },
        "headers": {
            "X-Correlation-Id": {"description": "The request's correlation id (sent or new)",
                                 "required": True, "schema": string()},
            "Location": {"description": "The booking, as a reference relative to the request's URL "
                                        "(RFC 9110: `bookings/<id>`, `../<id>`), so it stays under any path "
                                        "prefix: GET it to follow the saga", "required": True,
                         "schema": string()},
            "Idempotent-Replayed": {"description": "`true` when an Idempotency-Key was replayed: nothing new "
                                                   "was started", "required": False, "schema": one_of(["true"])},
        },
        "securitySchemes": {SIGNED_IN: {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "The Cognito ID token from POST /auth/sign-in, as `Authorization: Bearer <id_token>`; "
                           "it lasts an hour. Checked before the route runs (API Gateway's Cognito authorizer; "
                           "locally local/auth.py): a missing, forged or expired token is a 401.",
        }},
    }


_DESCRIPTION = f"""\
A flight booking as a saga over four services (seats, loyalty, payments, bookings) on
AWS Step Functions. `POST /bookings` answers 202 at once; the saga runs in the background
and `GET /bookings/{{booking_id}}` shows it step by step until a terminal status
(CONFIRMED, FAILED, CANCELLED or NEEDS_ATTENTION, as GET /config lists them).

Sign in with `POST /auth/sign-in` and send the ID token as `Authorization: Bearer
<id_token>` to every route but the public ones (marked with no security requirement).
Money is integer minor units (cents) of {CURRENCY}: an economy fare of {BASE_FARES[CABINS[-1]]} is
{BASE_FARES[CABINS[-1]] / 100:.2f}; every amount comes with its `currency` beside it. Every time is
ISO 8601 in UTC with milliseconds and `Z` (`2026-12-02T07:35:50.123Z`, as JavaScript's
`toISOString()` writes it). Every answer carries `X-Correlation-Id`. Every refusal is JSON:
`{{"error", "message"}}`, with `field` when a field is at fault, and on a 400 `errors`
listing every invalid field at once.
"""


@functools.lru_cache(maxsize=2)
def _built(operator_routes: bool) -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Airline booking saga", "version": API_VERSION, "description": _DESCRIPTION},
        # Relative: the paths are under wherever this document is served (API Gateway's
        # stage path, a reverse proxy's prefix), not at the host's root.
        "servers": [{"url": ".", "description": "Where this document is served from"}],
        "security": [{SIGNED_IN: []}],
        "tags": [{"name": name, "description": description} for name, description in (
            ("service", "Health, settings, this document"), ("customers", "Sign-in"),
            ("flights", "Flights and seat maps (public)"), ("bookings", "The saga, seen through the API"),
            ("loyalty", "Points and miles"), ("page", "The demo page"),
            ("operator", "Recovery and checks, on the local stage only"),
        )],
        "paths": paths(operator_routes=operator_routes),
        "components": components(),
    }


def document(*, operator_routes: bool) -> dict[str, Any]:
    """The OpenAPI document; with the /admin routes where the stage has them. A copy:
    the one built stays as built whatever a caller does with it."""
    return copy.deepcopy(_built(operator_routes))
