"""The booking item, and the Idempotency-Key that created it: the only module that
writes either.

Every service that notes something on the booking calls a function here: ReserveSeats
notes each leg's seats, ReleaseSeats each leg's marker, ConfirmBooking and CancelBooking the ticket,
the terminal bookkeeping, the API and recovery the status. Writes that must land in
another service's transaction are returned as named parts (``db.Update``) for that
service to run, so the expression still lives here.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from chalicelib import clock, db
from chalicelib.errors import ConditionFailed, Conflict, NotFound
from chalicelib.logs import logger
from chalicelib.models import CURRENCY, BookingRequest
from chalicelib.schema import BOOKINGS_BY_CUSTOMER
from chalicelib.vocabulary import IN_FLIGHT_STATUSES, TRANSITIONS, BookingStatus, PaymentStatus, SagaKind

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
_STATUS = {"#status": "status"}
_ERROR = {"#error": "error"}  # a reserved word in DynamoDB expressions


def new_booking_id() -> str:
    return str(uuid.uuid4())


def request_fingerprint(request: BookingRequest) -> str:
    """What an Idempotency-Key is bound to. The token is hashed in, never stored."""
    body = json.dumps({**request.canonical(), "card_token": request.card_token}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


# --- Creating ----------------------------------------------------------------------------
def create(
    request: BookingRequest, *, booking_id: str, customer_id: str, correlation_id: str | None,
    idempotency_key: str | None, departures: dict[str, str] | None = None, also: dict[str, db.Write] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Write a PENDING booking of ``customer_id`` (its legs, each flight's ``departures``, its
    party, its fare), and ``also`` (other services' records of it) in the same transaction;
    returns (booking, created). The same customer repeating an Idempotency-Key with the same
    body gets the first booking and ``created=False``."""
    now = clock.now_iso()
    departures = departures or {}
    passengers = [passenger.named() for passenger in request.passengers]
    booking = {
        **db.booking_key(booking_id),
        "customer_id": customer_id,
        "correlation_id": correlation_id or booking_id,
        "status": BookingStatus.PENDING,
        # The first leg's flight: what a one-seat booking showed (and the listing's index
        # projects). The party once: every write of the booking costs its size.
        "flight_number": request.legs[0],
        "requested_seat": request.choices(request.legs[0])[0],
        "requested_cabin": request.requested_cabin,
        "cabin": request.requested_cabin,
        "passengers": passengers,
        # Each leg's seats are noted by ReserveSeats (``leg_note``), its marker by ReleaseSeats.
        "legs": [{"flight_number": flight, **({"departure": departures[flight]} if flight in departures else {})}
                 for flight in request.legs],
        "fare": request.fare,
        "currency": CURRENCY,
        "loyalty_id": request.loyalty_id,
        "points_to_redeem": request.points_to_redeem,
        "simulate_failure": request.simulate_failure,
        # What the customer sees of the payment: nothing charged yet. The payments service
        # notes each change a customer can see, in the transaction that makes it.
        "payment": {"status": PaymentStatus.NONE, "amount": 0},
        "created_at": now,
        "updated_at": now,
    }
    booking = {key: value for key, value in booking.items() if value is not None}
    parts: dict[str, db.Write] = {
        "booking": db.Put("bookings", booking, condition="attribute_not_exists(booking_id)"),
    }
    if idempotency_key:
        parts["idempotency_key"] = db.Put(
            "idempotency",
            {**db.idempotency_key(_scoped(customer_id, idempotency_key)), "booking_id": booking_id,
             "fingerprint": request_fingerprint(request),
             "expires_at": clock.now_epoch() + IDEMPOTENCY_TTL_SECONDS},
            condition="attribute_not_exists(idempotency_key)",
        )
    try:
        db.transact(**parts, **(also or {}))
    except ConditionFailed as exc:
        if exc.failed_on("idempotency_key"):
            return _replay(request, _scoped(customer_id, idempotency_key or ""),
                           exc.current_of("idempotency_key")), False
        raise
    logger.info("booking created", extra={"booking_id": booking_id, "correlation_id": booking["correlation_id"]})
    return booking, True


def _scoped(customer_id: str, idempotency_key: str) -> str:
    """A key is the customer's own: another customer sending the same one makes their own
    booking, never sees this one."""
    return f"{customer_id}/{idempotency_key}"


def idempotency_read(customer_id: str, idempotency_key: str | None) -> db.Read | None:
    """The record of this customer's Idempotency-Key, as a part of someone's ``db.get_many``
    (None without a key: nothing to read)."""
    if not idempotency_key:
        return None
    return db.Read("idempotency", db.idempotency_key(_scoped(customer_id, idempotency_key)))


def known(request: BookingRequest, customer_id: str, idempotency_key: str | None,
          record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The booking this customer's Idempotency-Key already created (same body), from the
    key's ``record`` as read, else None; Conflict when the key was used with another body.
    Checked before anything else: the seat the first request asked for is, by now, rightly
    taken by that very booking."""
    if not idempotency_key or not record:
        return None
    return _replay(request, _scoped(customer_id, idempotency_key), record)


def _replay(request: BookingRequest, key: str, record: dict[str, Any] | None) -> dict[str, Any]:
    record = record or db.get("idempotency", db.idempotency_key(key)) or {}
    if record.get("fingerprint") != request_fingerprint(request):
        raise Conflict("this Idempotency-Key was used with a different request body", field="Idempotency-Key")
    return get(record["booking_id"])


# --- Reading -----------------------------------------------------------------------------
def read(booking_id: str) -> db.Read:
    """The booking, as a part of someone's ``db.get_many``."""
    return db.Read("bookings", db.booking_key(booking_id))


def find(booking_id: str) -> dict[str, Any] | None:
    return db.get("bookings", db.booking_key(booking_id))


def existing(booking: dict[str, Any] | None, booking_id: str) -> dict[str, Any]:
    """``booking`` as read, or NotFound."""
    if booking is None:
        raise _not_found(booking_id)
    return booking


def get(booking_id: str) -> dict[str, Any]:
    return existing(find(booking_id), booking_id)


def in_flight() -> list[dict[str, Any]]:
    """Every booking a saga should be running for (PENDING, CANCELLING): a scan, for
    recovery of sagas that are gone."""
    return [booking for booking in db.scan("bookings") if booking["status"] in IN_FLIGHT_STATUSES]


def list_owned(customer_id: str, *, limit: int, after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The customer's bookings, newest first, as the by_customer index holds them (its
    projected attributes only): at most ``limit``, after the booking ``after`` names
    (its ``created_at`` and ``booking_id``). One Query, never a scan."""
    start = db.customer_booking_key(customer_id, *after) if after else None
    return db.query_page("bookings", BOOKINGS_BY_CUSTOMER.name, limit=limit, after=start, newest_first=True,
                         KeyConditionExpression="customer_id = :customer",
                         ExpressionAttributeValues={":customer": customer_id})


def get_owned(booking_id: str, customer_id: str) -> dict[str, Any]:
    """The customer's booking; another customer's is answered exactly as a missing one."""
    booking = find(booking_id)
    if booking is None or booking.get("customer_id") != customer_id:
        raise _not_found(booking_id)
    return booking


def _not_found(booking_id: str) -> NotFound:
    return NotFound(f"booking {booking_id} does not exist", field="booking_id")


# --- What the saga's steps note on it ------------------------------------------------------
def leg_note(booking_id: str, leg: int, seats: list[dict[str, Any]]) -> db.Update:
    """ReserveSeats's note of the seats it holds on ``leg`` (``[{"passenger", "seat",
    "cabin"}]``), in the holds' transaction, so ReleaseSeats always finds them even when
    ReserveSeats timed out after writing. Refused (the booking coming back with the
    refusal) once the leg notes seats: a replay, or a duplicate that lost, learns its holds
    from it instead of reading the booking first. The first leg's first seat is also the
    booking's ``seat``, as a one-seat booking has it."""
    path = f"legs[{int(leg)}]"
    first = ", seat = :seat" if leg == 0 and seats else ""
    return db.Update(
        "bookings", db.booking_key(booking_id), f"SET {path}.seats = :seats{first}",
        # ReleaseSeats leaves a marker on the leg: a ReserveSeats arriving after it is refused.
        condition=f"attribute_exists(booking_id) AND attribute_not_exists({path}.released_at) "
                  f"AND attribute_not_exists({path}.seats)",
        values={":seats": seats, **({":seat": seats[0]["seat"]} if first else {})},
    )


def payment_note(booking_id: str, seen: dict[str, Any]) -> db.Update:
    """The payments service's part: what the customer now sees of the payment (``seen``:
    its status and amount), in the transaction that changes the payment, so a status poll
    reads status, money and outcome from this item alone."""
    return db.Update(
        "bookings", db.booking_key(booking_id), "SET payment = :seen",
        condition="attribute_exists(booking_id)", values={":seen": seen},
    )


def mark_leg_released(booking_id: str, leg: int) -> dict[str, Any]:
    """ReleaseSeats's marker on ``leg``, written first: from then on no hold can be noted
    for it, and the booking returned names any seats a hold already took there."""
    path = f"legs[{int(leg)}].released_at"
    return db.update(
        "bookings", db.booking_key(booking_id), f"SET {path} = if_not_exists({path}, :now)",
        condition="attribute_exists(booking_id)",
        values={":now": clock.now_iso()},
    )


def _transition(
    booking_id: str, new: BookingStatus, *, expected: BookingStatus, updates: str = "", also: str = "",
    values: dict[str, Any] | None = None, names: dict[str, str] | None = None,
) -> db.Update:
    """``expected`` -> ``new`` (a change TRANSITIONS allows), with ``updates`` (more SET
    clauses, then any REMOVE) alongside, conditional on the current status being
    ``expected`` (and ``also``): a writer that comes late changes nothing."""
    if new not in TRANSITIONS[expected]:
        raise ValueError(f"a booking never goes from {expected} to {new}")
    return db.Update(
        "bookings", db.booking_key(booking_id),
        f"SET #status = :new, updated_at = :now{', ' + updates if updates else ''}",
        condition=" AND ".join(["#status = :expected", *([also] if also else [])]),
        names={**_STATUS, **(names or {})},
        values={":new": new, ":expected": expected, ":now": clock.now_iso(), **(values or {})},
    )


def confirmation(booking_id: str, *, passengers: list[dict[str, Any]]) -> db.Update:
    """PENDING -> CONFIRMED with every passenger's ticket and boarding passes, unless
    CancelBooking already ran."""
    return _transition(
        booking_id, BookingStatus.CONFIRMED, expected=BookingStatus.PENDING,
        updates="passengers = :passengers, confirmed_at = :now",
        # CancelBooking leaves a marker when it finds no confirmation: one arriving after
        # it (late, timed out) is refused.
        also="attribute_not_exists(confirmation_cancelled_at)",
        values={":passengers": passengers},
    )


def bar_confirmation(booking_id: str) -> None:
    """CancelBooking found no confirmation: leave the marker that refuses a late one.
    ConditionFailed (carrying the booking) when a confirmation committed, ever: a booking
    confirmed and since cancelled was confirmed all the same."""
    db.update(
        "bookings", db.booking_key(booking_id),
        "SET confirmation_cancelled_at = if_not_exists(confirmation_cancelled_at, :now)",
        condition="attribute_exists(booking_id) AND attribute_not_exists(confirmed_at)",
        values={":now": clock.now_iso()},
    )


# --- Status ----------------------------------------------------------------------------------
def mark_not_started(booking_id: str, reason: str) -> None:
    """The execution could not be started: the booking must not stay PENDING forever."""
    db.apply(_transition(booking_id, BookingStatus.FAILED, expected=BookingStatus.PENDING,
                         updates="#error = :error", names=_ERROR,
                         values={":error": {"error": "ExecutionNotStarted", "cause": reason}}))


def mark_failed(
    booking_id: str, status: BookingStatus, *, failed_step: str | None, error: dict[str, str],
) -> dict[str, Any]:
    """The booking saga ended without a sale: PENDING -> FAILED, or NEEDS_ATTENTION when a
    compensation failed. ConditionFailed (carrying the booking) when it is no longer PENDING."""
    return db.apply(_transition(
        booking_id, status, expected=BookingStatus.PENDING,
        updates="failed_step = :step, #error = :error, attention_origin = :origin", names=_ERROR,
        values={":step": failed_step, ":error": error, ":origin": SagaKind.BOOKING},
    ))


def begin_cancellation(booking_id: str, customer_id: str) -> dict[str, Any]:
    """The customer's CONFIRMED booking -> CANCELLING, or Conflict (NotFound when it is not
    theirs). The condition makes a double cancel impossible."""
    try:
        return db.apply(_transition(booking_id, BookingStatus.CANCELLING, expected=BookingStatus.CONFIRMED,
                                    also="customer_id = :customer", values={":customer": customer_id}))
    except ConditionFailed as exc:
        current = exc.item
        if current is None or current.get("customer_id") != customer_id:
            raise _not_found(booking_id) from exc
        raise Conflict(f"only a CONFIRMED booking can be cancelled; this one is {current['status']}") from exc


def mark_cancelled(booking_id: str, status: BookingStatus) -> None:
    """The cancellation saga ended: CANCELLED, or NEEDS_ATTENTION when a compensation failed."""
    db.apply(_transition(booking_id, status, expected=BookingStatus.CANCELLING,
                         updates="cancelled_at = :now, attention_origin = :origin",
                         values={":origin": SagaKind.CANCELLATION}))


def mark_recovered(booking_id: str, status: BookingStatus) -> None:
    """An operator finished the compensations of a NEEDS_ATTENTION booking."""
    db.apply(_transition(booking_id, status, expected=BookingStatus.NEEDS_ATTENTION, updates="recovered_at = :now"))
