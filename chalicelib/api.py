"""What the HTTP routes do, minus Chalice: parse and validate, call the services,
start executions. Every refusal is a RequestError (4xx) raised before any write.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from chalicelib import booking_record, config, loyalty, saga, seats
from chalicelib.errors import Conflict, InvalidRequest, NotFound
from chalicelib.logs import bound_value, logger
from chalicelib.models import (
    COMPENSATIONS,
    BookingRequest,
    cancellation_input,
    execution_input,
    parse_booking_request,
    parse_simulate_failure,
)
from chalicelib.vocabulary import BookingStatus

_CORRELATION_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_IDEMPOTENCY_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_BOOKING_ID_PATTERN = re.compile(r"^[0-9a-f-]{36}$")


def parse_json(raw_body: bytes | str | None, *, required: bool = True) -> Any:
    if not raw_body:
        if required:
            raise InvalidRequest("the request needs a JSON body")
        return {}
    try:
        return json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None


def is_correlation_id(value: str) -> bool:
    return bool(_CORRELATION_PATTERN.match(value))


def correlation_id(headers: dict[str, str]) -> str:
    """The caller's X-Correlation-Id, else the one this request's log lines already
    carry (the route generated it), else a new one."""
    value = _header(headers, "x-correlation-id")
    if value is None:
        return bound_value("correlation_id") or str(uuid.uuid4())
    if not _CORRELATION_PATTERN.match(value):
        raise InvalidRequest("X-Correlation-Id must be 1-128 letters, digits or . _ : -", field="X-Correlation-Id")
    return value


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def check_booking_id(booking_id: str) -> str:
    if not _BOOKING_ID_PATTERN.match(booking_id):
        raise InvalidRequest("booking_id is not a booking id", field="booking_id")
    return booking_id


def check_bookable(request: BookingRequest) -> None:
    """Refuse up front what would only fail later: unknown flight or account, taken seat."""
    seats.get_flight(request.flight_number)
    if request.loyalty_id and not loyalty.account_exists(request.loyalty_id):
        raise NotFound(f"loyalty account {request.loyalty_id} does not exist", field="loyalty_id")
    if request.seat and not seats.seat_is_takeable(request.flight_number, request.seat):
        raise Conflict(f"seat {request.seat} on {request.flight_number} is already taken", field="seat")


def start_booking(raw_body: Any, headers: dict[str, str]) -> tuple[dict[str, Any], bool]:
    """``POST /bookings``: returns (response body, whether this call created it)."""
    body = parse_json(raw_body)
    request = parse_booking_request(body, fault_injection_allowed=config.fault_injection_enabled())
    idempotency_key = _header(headers, "idempotency-key")
    if idempotency_key is not None and not _IDEMPOTENCY_PATTERN.match(idempotency_key):
        raise InvalidRequest("Idempotency-Key must be 1-128 letters, digits or . _ : -", field="Idempotency-Key")
    correlation = correlation_id(headers)
    known = booking_record.known(request, idempotency_key)
    if known is not None:
        return {"booking_id": known["booking_id"], "correlation_id": known["correlation_id"],
                "status": known["status"]}, False
    check_bookable(request)
    # create() still settles a race between two first requests with one key.
    booking, created = booking_record.create(request, correlation_id=correlation, idempotency_key=idempotency_key)
    response = {"booking_id": booking["booking_id"], "correlation_id": booking["correlation_id"],
                "status": booking["status"]}
    if not created:
        return response, False
    try:
        saga.start(booking["booking_id"], saga.BOOKING, execution_input(booking, request))
    except Exception as exc:
        logger.exception("could not start the saga", extra={"booking_id": booking["booking_id"]})
        booking_record.mark_not_started(booking["booking_id"], f"{type(exc).__name__}: {exc}")
        raise
    return response, True


def cancel_booking(booking_id: str, raw_body: Any) -> dict[str, Any]:
    """``POST /bookings/{id}/cancel``: CONFIRMED -> CANCELLING, then the cancellation saga."""
    check_booking_id(booking_id)
    body = parse_json(raw_body, required=False)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    simulate = parse_simulate_failure(body, allowed=config.fault_injection_enabled())
    forward = sorted(set(simulate) - set(COMPENSATIONS))
    if forward:
        raise InvalidRequest(f"a cancellation runs only compensations, not {', '.join(forward)}",
                             field="simulate_failure")
    booking = booking_record.begin_cancellation(booking_id)
    saga.start(booking_id, saga.CANCELLATION, cancellation_input(booking, simulate))
    return {"booking_id": booking_id, "correlation_id": booking["correlation_id"], "status": BookingStatus.CANCELLING}


def history(booking_id: str) -> dict[str, Any]:
    """``GET /bookings/{id}/history``: the booking's executions, event by event."""
    check_booking_id(booking_id)
    booking = booking_record.get(booking_id)
    executions = []
    for kind in saga.KINDS:
        described = saga.describe(booking_id, kind)
        if described is None:
            continue
        arn = described["executionArn"]
        executions.append({
            "kind": kind,
            "execution_arn": arn,
            "status": described["status"],
            "started_at": described["startDate"].isoformat(),
            "stopped_at": described["stopDate"].isoformat() if described.get("stopDate") else None,
            "events": saga.readable_history(arn),
        })
    return {"booking_id": booking_id, "correlation_id": booking["correlation_id"], "executions": executions}
