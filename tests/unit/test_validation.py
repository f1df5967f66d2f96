"""HTTP input checking without HTTP and without AWS: every invalid field of a request is
reported at once, nested fields by their path, dependent checks only on valid premises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib import validation
from chalicelib.errors import InvalidRequest
from chalicelib.models import BASE_FARES, BookingRequest, Passenger
from chalicelib.vocabulary import BOOKING_SAGA_TASK_NAMES, FAILURE_MODES
from tests.support import booking_body

BOOKING_ID = "0b6e3b4e-8a59-4c5e-9a53-2d1f0f6f3c11"
SEAT_OR_CABIN = 'give a seat (e.g. "12A") or a cabin to auto-assign one'


def refusal(body: Any, *, fault_injection_allowed: bool = True) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as refused:
        validation.parse_booking_request(body, fault_injection_allowed=fault_injection_allowed)
    return refused.value


def problem(field: str | None, message: str) -> dict[str, str | None]:
    return {"field": field, "message": message}


# --- A valid body -------------------------------------------------------------------------
def test_a_valid_body_is_trimmed_into_a_booking_request() -> None:
    """GIVEN a valid body with padded names, points and an injected failure
    WHEN it is parsed
    THEN it is the BookingRequest the services get, names trimmed."""
    body = booking_body(seat="12A", cabin=None, loyalty_id="FF0001", points_to_redeem=500,
                        passenger={"first_name": " Ada ", "last_name": "Lovelace"},
                        simulate_failure={"AuthorizePayment": "permanent"})

    request = validation.parse_booking_request(body, fault_injection_allowed=True)

    assert request == BookingRequest(
        flight_number="SA101", flights=("SA101",), passengers=(Passenger("Ada", "Lovelace", seats={"SA101": "12A"}),),
        card_token="tok_visa", seat="12A", loyalty_id="FF0001", points_to_redeem=500,
        simulate_failure={"AuthorizePayment": "permanent"},
    )
    assert request.fare == BASE_FARES["ECONOMY"] and request.legs == ("SA101",)


# --- Every invalid field at once -------------------------------------------------------------
def test_a_body_with_only_a_flight_number_names_every_missing_field() -> None:
    """GIVEN a body with only flight_number
    WHEN it is parsed
    THEN one refusal names passenger, payment and seat (a seat or a cabin), in that order,
    with a message naming each and `field` the first."""
    refused = refusal({"flight_number": "SA101"})

    assert refused.problems == [
        problem("passenger", "passenger is required"),
        problem("payment", "payment is required"),
        problem("seat", SEAT_OR_CABIN),
    ]
    assert refused.field == "passenger"
    assert refused.message == (
        f"3 fields are invalid: passenger is required; payment is required; {SEAT_OR_CABIN}")


def test_several_invalid_fields_are_reported_together() -> None:
    """GIVEN a body whose flight number, cabin, points and an unknown field are all wrong
    WHEN it is parsed
    THEN each is one problem, unknown fields first and each on its own."""
    refused = refusal(booking_body(flight_number="sa-101", cabin="PREMIUM", loyalty_id="FF0001",
                                   points_to_redeem=-5, coupon="FREE", voucher=1))

    assert refused.problems == [
        problem("coupon", "unknown field: coupon"),
        problem("voucher", "unknown field: voucher"),
        problem("flight_number", "flight_number must be letters and digits, e.g. SA101"),
        problem("cabin", "cabin must be one of FIRST, BUSINESS, ECONOMY"),
        problem("points_to_redeem", "points_to_redeem must not be negative"),
    ]
    assert refused.message.startswith("5 fields are invalid: unknown field: coupon; ")


def test_nested_fields_are_reported_by_their_path() -> None:
    """GIVEN a passenger without a first name and with a bad email, and a PAN-shaped token
    sent with card data
    THEN each nested field is named by its path (passenger.first_name, payment.cvc,
    payment.card_token)."""
    refused = refusal(booking_body(
        passenger={"last_name": "Lovelace", "email": "ada.example.com"},
        payment={"card_token": "4242 4242 4242 4242", "cvc": "123"},
    ))

    assert refused.problems == [
        problem("passenger.first_name", "passenger.first_name is required"),
        problem("passenger.email", "passenger.email is not an email address"),
        problem("payment.cvc", "payment.cvc: payment takes only a card_token; never send card numbers or other "
                               "card data"),
        problem("payment.card_token",
                "payment.card_token looks like a card number; send a token from the payment provider"),
    ]


@pytest.mark.parametrize(("overrides", "problems"), [
    pytest.param({"seat": "99Z", "cabin": "ECONOMY"},
                 [problem("seat", "seat 99Z does not exist on this aircraft (rows 1-27, seats A-F)")],
                 id="seat-invalid-so-no-cabin-disagreement"),
    pytest.param({"seat": "1A", "cabin": "PREMIUM"},
                 [problem("cabin", "cabin must be one of FIRST, BUSINESS, ECONOMY")],
                 id="cabin-invalid-so-no-cabin-disagreement"),
    pytest.param({"seat": "1A", "cabin": "ECONOMY"},
                 [problem("cabin", "seat 1A is in FIRST, not ECONOMY")],
                 id="both-valid-so-the-disagreement-is-checked"),
    pytest.param({"loyalty_id": "ff-1", "points_to_redeem": 100},
                 [problem("loyalty_id", "loyalty_id must be letters and digits, e.g. FF0001")],
                 id="loyalty_id-invalid-so-points-do-not-ask-for-one"),
    pytest.param({"points_to_redeem": 100},
                 [problem("loyalty_id", "points_to_redeem needs a loyalty_id")],
                 id="loyalty_id-absent-so-points-ask-for-one"),
    pytest.param({"seat": 12, "cabin": None},
                 [problem("seat", "seat must be a non-empty string")],
                 id="seat-invalid-is-not-also-missing"),
])
def test_a_dependent_check_runs_only_when_its_premise_is_valid(
    overrides: dict[str, Any], problems: list[dict[str, str | None]],
) -> None:
    """GIVEN a body where a check depends on another field
    WHEN that field is invalid THEN only its own problem is reported (one mistake, one problem);
    WHEN it is valid THEN the dependent check runs."""
    assert refusal(booking_body(**overrides)).problems == problems


def test_one_problem_keeps_its_message_and_field() -> None:
    """GIVEN a body with one problem THEN the refusal's message and field are that problem's."""
    refused = refusal(booking_body(seat="12a", cabin=None))

    assert refused.message == "seat '12a' is not a row number followed by a letter A-F"
    assert refused.field == "seat"
    assert refused.problems == [problem("seat", refused.message)]


@pytest.mark.parametrize("body", [None, [], "SA101", 101])
def test_a_body_that_is_not_an_object_is_one_problem_without_a_field(body: Any) -> None:
    """GIVEN a JSON body that is not an object THEN nothing else is checked, and no field is named."""
    refused = refusal(body)
    assert refused.problems == [problem(None, "the body must be a JSON object")]
    assert refused.field is None


@given(st.one_of(st.floats(), st.text(), st.booleans(), st.integers(max_value=-1)))
def test_points_must_be_a_non_negative_integer(value: object) -> None:
    """GIVEN points_to_redeem that is not a whole number >= 0 THEN it is the one problem."""
    refused = refusal(booking_body(loyalty_id="FF0001", points_to_redeem=value))
    assert [entry["field"] for entry in refused.problems] == ["points_to_redeem"]


# --- simulate_failure ---------------------------------------------------------------------
def test_simulate_failure_takes_every_step_and_compensation_of_the_vocabulary() -> None:
    """GIVEN every step and compensation name the booking saga runs, each with a failure
    mode (CapturePayment, after the pivot, and VoidPayment included)
    THEN the body is accepted as it was sent."""
    simulate = {name: FAILURE_MODES[i % len(FAILURE_MODES)] for i, name in enumerate(BOOKING_SAGA_TASK_NAMES)}
    assert {"AuthorizePayment", "CapturePayment", "VoidPayment"} <= set(simulate)

    request = validation.parse_booking_request(booking_body(simulate_failure=simulate), fault_injection_allowed=True)

    assert request.simulate_failure == simulate


def test_a_booking_refuses_a_fault_only_a_cancellation_could_fire() -> None:
    """GIVEN RefundPayment (run only by a cancellation) in a booking's simulate_failure
    THEN it is refused at its entry: it would never fire."""
    refused = refusal(booking_body(simulate_failure={"RefundPayment": "permanent"}))
    assert [entry["field"] for entry in refused.problems] == ["simulate_failure.RefundPayment"]


def test_each_unknown_step_or_mode_is_reported_at_its_entry() -> None:
    """GIVEN simulate_failure with an unknown step, an unknown mode and a valid entry
    THEN each wrong entry is a problem named simulate_failure.<step>; the valid one is not."""
    refused = refusal(booking_body(simulate_failure={"ChargeCard": "permanent", "AwardMiles": "sometimes",
                                                     "ReleaseSeats": "transient"}))

    assert [entry["field"] for entry in refused.problems] == [
        "simulate_failure.ChargeCard", "simulate_failure.AwardMiles"]
    assert "unknown step 'ChargeCard'" in str(refused.problems[0]["message"])
    assert refused.problems[1]["message"] == (
        "simulate_failure mode for AwardMiles must be one of permanent, transient, timeout, hang")


def test_simulate_failure_is_refused_where_the_stage_forbids_it() -> None:
    """GIVEN a stage without fault injection THEN any simulate_failure is refused as a whole."""
    refused = refusal(booking_body(simulate_failure={"AuthorizePayment": "permanent"}), fault_injection_allowed=False)
    assert refused.problems == [problem("simulate_failure", "simulate_failure is disabled on this stage")]


# --- The whole POST: body and headers -----------------------------------------------------------
def test_body_and_header_problems_are_reported_together() -> None:
    """GIVEN a body without a passenger, and malformed Idempotency-Key and X-Correlation-Id
    THEN one refusal names the three."""
    raw = json.dumps(booking_body(passenger=None))
    headers = {"idempotency-key": "has spaces", "X-Correlation-Id": "not valid"}

    with pytest.raises(InvalidRequest) as refused:
        validation.parse_booking_post(raw, headers, fault_injection_allowed=True)

    assert refused.value.problems == [
        problem("passenger", "passenger is required"),
        problem("Idempotency-Key", "Idempotency-Key must be 1-128 letters, digits or . _ : -"),
        problem("X-Correlation-Id", "X-Correlation-Id must be 1-128 letters, digits or . _ : -"),
    ]


def test_a_body_that_is_not_json_is_still_reported_with_the_headers() -> None:
    """GIVEN malformed JSON and a too long Idempotency-Key THEN both are reported, and
    `field` is the header (the body problem names no field)."""
    with pytest.raises(InvalidRequest) as refused:
        validation.parse_booking_post('{"flight_number":', {"Idempotency-Key": "k" * 129},
                                      fault_injection_allowed=True)

    assert [entry["field"] for entry in refused.value.problems] == [None, "Idempotency-Key"]
    assert str(refused.value.problems[0]["message"]).startswith("the body is not valid JSON")
    assert refused.value.field == "Idempotency-Key"  # the first one that names a field


def test_a_valid_post_carries_its_headers() -> None:
    """GIVEN a valid body and headers, in any case THEN the POST carries the key and the correlation id."""
    post = validation.parse_booking_post(json.dumps(booking_body()), {"Idempotency-Key": "k-1",
                                                                      "x-correlation-id": "trace-1"},
                                         fault_injection_allowed=False)
    assert (post.request.flight_number, post.idempotency_key, post.correlation_id) == ("SA101", "k-1", "trace-1")


# --- Cancel, query strings, path ids --------------------------------------------------------------
def test_a_cancellation_takes_only_the_compensations_it_runs() -> None:
    """GIVEN a cancel body naming every compensation the cancellation runs THEN it is
    accepted; GIVEN one naming forward steps, or CancelBooking (a compensation only the
    booking saga runs: its fault would never fire) THEN it is refused, naming them."""
    every = {name: "permanent" for name in ("RefundPayment", "ReverseMiles", "RefundPoints", "ReleaseSeats")}
    assert validation.parse_cancellation(BOOKING_ID, json.dumps({"simulate_failure": every}),
                                         fault_injection_allowed=True) == every

    with pytest.raises(InvalidRequest) as refused:
        validation.parse_cancellation(
            BOOKING_ID, json.dumps({"simulate_failure": {"RefundPayment": "permanent", "AuthorizePayment": "permanent",
                                                         "AwardMiles": "transient", "CancelBooking": "permanent"}}),
            fault_injection_allowed=True)
    runs = "a cancellation runs only RefundPayment, ReverseMiles, RefundPoints, ReleaseSeats; not"
    assert refused.value.problems == [
        problem(f"simulate_failure.{step}", f"{runs} {step}")
        for step in ("AuthorizePayment", "AwardMiles", "CancelBooking")
    ]


def test_a_cancellation_reports_its_path_id_and_its_body_together() -> None:
    """GIVEN a malformed booking id and a body that is a list THEN both are reported."""
    with pytest.raises(InvalidRequest) as refused:
        validation.parse_cancellation("not-an-id", "[]", fault_injection_allowed=True)
    assert refused.value.problems == [
        problem("booking_id", "booking_id is not a booking id"), problem(None, "the body must be a JSON object")]


def test_an_empty_cancel_body_is_no_injected_failure() -> None:
    """GIVEN a cancel without a body THEN it injects nothing, on any stage."""
    assert validation.parse_cancellation(BOOKING_ID, None, fault_injection_allowed=False) == {}
    assert validation.parse_cancellation(BOOKING_ID, "", fault_injection_allowed=False) == {}


def test_both_seat_map_filters_are_checked_at_once() -> None:
    """GIVEN ?status=&cabin= THEN an empty filter is no filter, and two bad ones are two problems."""
    assert validation.parse_seat_filters({"status": "HELD", "cabin": ""}) == ("HELD", None)
    with pytest.raises(InvalidRequest) as refused:
        validation.parse_seat_filters({"status": "FREE", "cabin": "PREMIUM"})
    assert refused.value.problems == [
        problem("status", "status must be one of AVAILABLE, HELD, BOOKED"),
        problem("cabin", "cabin must be one of FIRST, BUSINESS, ECONOMY"),
    ]


def test_a_booking_id_is_a_uuid_shape() -> None:
    """GIVEN a path id THEN a UUID-shaped one passes and anything else is refused."""
    assert validation.check_booking_id(BOOKING_ID) == BOOKING_ID
    with pytest.raises(InvalidRequest, match="booking_id is not a booking id"):
        validation.check_booking_id("12")


# Issue 12, part 4: each was accepted (202) and copied into the execution input.
CARD_NUMBERS_IN_DISGUISE = [
    "4111.1111.1111.1111", "4111/1111/1111/1111", "tok_4111111111111111",
    "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",
    "4111\t1111\t1111\t1111", "4111111111111111|12/29|123",
    "4111 1111 1111 1112",  # fails Luhn: still twelve digits and more, still refused
]


@pytest.mark.parametrize("token", CARD_NUMBERS_IN_DISGUISE)
def test_a_card_number_in_any_disguise_is_refused_as_a_token(token: str) -> None:
    """GIVEN a card_token that is a card number however it is written (separators,
    fullwidth digits, a prefix, expiry and CVC appended) THEN it is refused, naming the field."""
    assert refusal(booking_body(payment={"card_token": token})).problems == [
        problem("payment.card_token", "payment.card_token looks like a card number; send a token from the "
                                      "payment provider")]


@pytest.mark.parametrize("token", ["visa", "tok_", "tok visa", "tok_" + "a" * 65, "pm_card_visa"])
def test_only_the_gateways_token_format_is_accepted(token: str) -> None:
    """GIVEN a card_token not in the gateway's format (tok_ and 1-64 letters, digits or _)
    THEN it is refused."""
    assert [item["field"] for item in refusal(booking_body(payment={"card_token": token})).problems] == \
        ["payment.card_token"]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"passenger": {"first_name": "4111 1111 1111 1111", "last_name": "Lovelace"}}, "passenger.first_name"),
    ({"passenger": {"first_name": "Ada", "last_name": "Lovelace", "email": "4111111111111111@example.com"}},
     "passenger.email"),
    ({"loyalty_id": "4111111111111111"}, "loyalty_id"),
])
def test_a_card_number_anywhere_in_the_body_is_refused(overrides: dict[str, Any], field: str) -> None:
    """GIVEN twelve digits or more in any field of the body THEN that field is refused."""
    problems = refusal(booking_body(**overrides)).problems
    assert {item["field"] for item in problems} == {field}
    assert "card number" in str(problems[0]["message"])



def test_a_card_number_in_fullwidth_digits_is_never_echoed() -> None:
    """GIVEN a card number written in fullwidth digits where the API would repeat what it
    was sent (an unknown simulate_failure step) THEN the refusal does not repeat it, and the
    scrubber that guards every echoed message and logged path removes it too."""
    fullwidth = "\uff14\uff12\uff14\uff12" * 4  # 4242... in fullwidth digits
    problems = refusal(booking_body(simulate_failure={fullwidth: "permanent"})).problems
    assert fullwidth not in json.dumps(problems, ensure_ascii=False)
    assert validation.without_card_numbers(f"step {fullwidth}!") == "step [card number removed]!"
    assert validation.looks_like_card_number(fullwidth)
