"""What the HTTP routes do, minus Chalice: parse and validate, call the services,
start executions. Every refusal is a RequestError (4xx) raised before any write.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from chalicelib import booking_record, booking_view, clock, config, db, loyalty, payments, saga, seats
from chalicelib.customers import Customer, check_may_use_account
from chalicelib.errors import Conflict, InvalidRequest, NotFound
from chalicelib.logs import logger
from chalicelib.models import BookingRequest, cancellation_input, execution_input
from chalicelib.validation import check_booking_id, parse_booking_post, parse_cancellation, parse_listing
from chalicelib.vocabulary import BookingStatus, SagaKind


def _chosen(request: BookingRequest) -> list[tuple[str, str]]:
    """Every (flight, seat) a passenger chose, in leg then passenger order."""
    return [(flight, seat) for flight in request.legs for seat in request.choices(flight) if seat]


def look_up(request: BookingRequest, customer_id: str, idempotency_key: str | None) -> dict[str, Any]:
    """What POST /bookings checks before it writes, in one request: the record of the
    Idempotency-Key, every leg's flight, the loyalty account and every chosen seat (each
    None when the request names none)."""
    return db.get_many(
        known=booking_record.idempotency_read(customer_id, idempotency_key),
        **{f"flight_{index}": seats.flight_read(flight) for index, flight in enumerate(request.legs)},
        account=loyalty.account_read(request.loyalty_id) if request.loyalty_id else None,
        **{f"seat_{index}": seats.seat_read(flight, seat) for index, (flight, seat) in enumerate(_chosen(request))},
    )


def check_bookable(request: BookingRequest, found: dict[str, Any]) -> dict[str, str]:
    """Refuse up front what would only fail later (``found``: what ``look_up`` read):
    unknown flight or account, legs out of travel order, a chosen seat taken. Returns each
    flight's departure."""
    flights = [seats.existing_flight(found[f"flight_{index}"], flight,
                                     field="flight_number" if request.one_seat else f"flights[{index}]")
               for index, flight in enumerate(request.legs)]
    for earlier, later in itertools.pairwise(flights):
        if later["departure"] <= earlier["departure"]:
            raise InvalidRequest(f"flights must be in travel order: {later['flight_number']} departs "
                                 f"{clock.api_time(later['departure'])}, not after {earlier['flight_number']} "
                                 f"({clock.api_time(earlier['departure'])})", field="flights")
    if request.loyalty_id:
        loyalty.existing_account(found["account"], request.loyalty_id)
    for index, (flight, seat) in enumerate(_chosen(request)):
        if not seats.is_takeable(found[f"seat_{index}"]):
            field = "seat" if request.seat else "passengers"
            raise Conflict(f"seat {seat} on {flight} is already taken", field=field)
    return {flight["flight_number"]: flight["departure"] for flight in flights}


def open_booking(
    request: BookingRequest, *, customer: Customer, correlation_id: str | None, idempotency_key: str | None,
    departures: dict[str, str] | None = None,
) -> tuple[dict[str, Any], bool]:
    """The customer's booking, its Idempotency-Key and its payment request (which alone
    keeps the card token), in one transaction: (booking, created)."""
    booking_id = booking_record.new_booking_id()
    return booking_record.create(
        request, booking_id=booking_id, customer_id=customer.id, correlation_id=correlation_id,
        idempotency_key=idempotency_key, departures=departures,
        also={"payment": payments.requested(booking_id, request.card_token)},
    )


def start_booking(raw_body: Any, headers: dict[str, str], customer: Customer) -> tuple[dict[str, Any], bool]:
    """``POST /bookings`` by ``customer``: returns (response body, whether this call created it)."""
    request, idempotency_key, correlation = parse_booking_post(
        raw_body, headers, fault_injection_allowed=config.fault_injection_enabled())
    check_may_use_account(customer, request.loyalty_id)
    found = look_up(request, customer.id, idempotency_key)
    known = booking_record.known(request, customer.id, idempotency_key, found["known"])
    if known is not None:
        return {"booking_id": known["booking_id"], "correlation_id": known["correlation_id"],
                "status": known["status"]}, False
    departures = check_bookable(request, found)
    # open_booking still settles a race between two first requests with one key.
    booking, created = open_booking(request, customer=customer, correlation_id=correlation,
                                    idempotency_key=idempotency_key, departures=departures)
    response = {"booking_id": booking["booking_id"], "correlation_id": booking["correlation_id"],
                "status": booking["status"]}
    if not created:
        return response, False
    try:
        saga.start(booking["booking_id"], SagaKind.BOOKING, execution_input(booking, request))
    except Exception as exc:
        logger.exception("could not start the saga", extra={"booking_id": booking["booking_id"]})
        booking_record.mark_not_started(booking["booking_id"], f"{type(exc).__name__}: {exc}")
        payments.withdraw_request(booking["booking_id"])
        raise
    return response, True


def list_bookings(query: Any, customer: Customer, href: Callable[[str], str]) -> dict[str, Any]:
    """``GET /bookings``: a page of the customer's own bookings, newest first (``href``: the
    link to a booking, by its id)."""
    limit, after = parse_listing(query or {}, customer.id)
    return booking_view.listing(customer.id, limit=limit, after=after, href=href)


def view_booking(booking_id: str, customer: Customer) -> dict[str, Any]:
    """``GET /bookings/{id}``: the customer's own booking; anyone else's is a 404."""
    booking = booking_record.get_owned(check_booking_id(booking_id), customer.id)
    return booking_view.view(booking_id, booking=booking)


def cancel_booking(booking_id: str, raw_body: Any, customer: Customer) -> dict[str, Any]:
    """``POST /bookings/{id}/cancel``: the customer's CONFIRMED booking -> CANCELLING, then
    the cancellation saga."""
    simulate = parse_cancellation(booking_id, raw_body, fault_injection_allowed=config.fault_injection_enabled())
    booking = booking_record.begin_cancellation(booking_id, customer.id)
    saga.start(booking_id, SagaKind.CANCELLATION, cancellation_input(booking, simulate))
    return {"booking_id": booking_id, "correlation_id": booking["correlation_id"], "status": BookingStatus.CANCELLING}


def history(booking_id: str, customer: Customer) -> dict[str, Any]:
    """``GET /bookings/{id}/history``: the customer's booking's executions, event by event."""
    booking = booking_record.get_owned(check_booking_id(booking_id), customer.id)
    executions = []
    for kind in SagaKind:
        described = saga.describe(booking_id, kind)
        if described is None:
            continue
        arn = described["executionArn"]
        executions.append({
            "kind": kind,
            "execution_arn": arn,
            "status": described["status"],
            "started_at": clock.api_time(described["startDate"]),
            "stopped_at": clock.api_time(described["stopDate"]) if described.get("stopDate") else None,
            "events": saga.readable_history(arn),
        })
    return {"booking_id": booking_id, "correlation_id": booking["correlation_id"], "executions": executions}


def loyalty_account(loyalty_id: str, customer: Customer) -> dict[str, Any]:
    """``GET /loyalty/{id}``: the customer's own account; anyone else's is a 404."""
    if not customer.owns_account(loyalty_id):
        raise NotFound(f"loyalty account {loyalty_id} does not exist", field="loyalty_id")
    return loyalty.get_account(loyalty_id)
