"""The invariant checker: scan every table and report each violation of what the saga
promises. ``python -m ops.invariants`` runs it against the tables the
environment names; the chaos test and the operator route call ``check()``.

Promises checked:
- a seat BOOKED has exactly one CONFIRMED (or CANCELLING) booking, the one it names, and
  that booking notes it on one of its legs;
- a CONFIRMED booking's seats are BOOKED for it: one per passenger on every leg
  (passengers x legs, each noted on its leg);
- a seat HELD (unexpired) belongs to a live booking (one a saga may still confirm or
  undo: PENDING, NEEDS_ATTENTION), which notes it on the leg of its flight;
- money captured and not refunded belongs to a CONFIRMED/CANCELLING booking or to a
  saga still running; so does an authorisation not released (AUTHORIZED, CAPTURE_FAILED):
  no FAILED or CANCELLED booking keeps a hold on the card;
- a CONFIRMED booking has captured money, or its capture failed and says so: the payment
  CAPTURE_FAILED with an open dead letter (or written off as lost revenue), or its saga
  is still capturing;
- no payment request (and so no card token) outlives its saga;
- what a booking shows of its payment (its note) is what its payment record says;
- a loyalty balance equals its opening balance plus its ledger;
- a FAILED or CANCELLED booking's ledger entries net to zero points;
- no booking is PENDING or CANCELLING without a running execution.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib import booking_record, clock, db, dead_letters, loyalty, saga
from chalicelib import payments as payments_service
from chalicelib.models import booking_legs, booking_passengers
from chalicelib.vocabulary import (
    CAPTURE_PAYMENT,
    IN_FLIGHT_STATUSES,
    OWNING_STATUSES,
    BookingStatus,
    PaymentStatus,
    SagaKind,
    SeatStatus,
)

#: Whose unexpired hold is rightly kept: a saga may still confirm it (PENDING) or an
#: operator undo it (NEEDS_ATTENTION). A CONFIRMED booking's seats are BOOKED, not held.
LIVE_HOLDERS = frozenset({BookingStatus.PENDING, BookingStatus.NEEDS_ATTENTION})


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    detail: str


def _running_executions(bookings: list[dict[str, Any]], payments: list[dict[str, Any]]) -> set[str]:
    """Booking ids whose booking or cancellation execution is RUNNING: asked of those in
    flight, and of the CONFIRMED ones still authorised (their saga may be capturing)."""
    authorized = {payment["booking_id"] for payment in payments if payment["status"] == PaymentStatus.AUTHORIZED}
    return {
        booking["booking_id"]
        for booking in bookings
        if (booking["status"] in IN_FLIGHT_STATUSES
            or (booking["status"] == BookingStatus.CONFIRMED and booking["booking_id"] in authorized))
        and any(saga.is_running(booking["booking_id"], kind) for kind in SagaKind)
    }


def _noted_seats(booking: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (flight, seat) the booking notes on its legs."""
    return {(leg["flight_number"], item["seat"]) for leg in booking_legs(booking) for item in leg.get("seats") or []}


def _seat_rules(seats: list[dict[str, Any]], bookings: dict[str, dict[str, Any]], now: int) -> list[Violation]:
    violations = []
    claims: dict[tuple[str, str], list[str]] = defaultdict(list)
    for booking in bookings.values():
        if booking["status"] in OWNING_STATUSES:
            for key in _noted_seats(booking):
                claims[key].append(booking["booking_id"])
    by_key = {(seat["flight_number"], seat["seat"]): seat for seat in seats}
    for seat in seats:
        key = (seat["flight_number"], seat["seat"])
        subject = f"{key[0]}/{key[1]}"
        if seat["status"] == SeatStatus.BOOKED:
            owners = claims.get(key, [])
            if owners != [seat.get("booking_id")]:
                violations.append(Violation("booked-seat-owner", subject,
                                            f"seat names {seat.get('booking_id')}, confirmed bookings for it: "
                                            f"{owners}"))
        elif seat["status"] == SeatStatus.HELD and int(seat.get("hold_expires_at") or 0) > now:
            holder = bookings.get(str(seat.get("booking_id")))
            if holder is None:
                continue  # (scoped to one booking: another's hold is judged with that booking)
            if holder["status"] not in LIVE_HOLDERS or key not in _noted_seats(holder):
                violations.append(Violation("held-seat-not-live", subject,
                                            f"held for {holder['booking_id']}, which is {holder['status']} and "
                                            f"{'notes' if key in _noted_seats(holder) else 'does not note'} it"))
    for (flight, seat_id), owners in claims.items():
        claimed = by_key.get((flight, seat_id)) or {}
        for owner in owners:
            if claimed.get("status") != SeatStatus.BOOKED or claimed.get("booking_id") != owner:
                violations.append(Violation("confirmed-seat-not-booked", owner,
                                            f"{flight}/{seat_id} is {claimed.get('status')} for "
                                            f"{claimed.get('booking_id')}"))
    for booking in bookings.values():
        if booking["status"] != BookingStatus.CONFIRMED:
            continue
        legs, passengers = booking_legs(booking), booking_passengers(booking)
        per_leg = [sorted(item["passenger"] for item in leg.get("seats") or []) for leg in legs]
        if any(noted != list(range(len(passengers))) for noted in per_leg):
            violations.append(Violation("party-not-seated", booking["booking_id"],
                                        f"{len(passengers)} passenger(s) x {len(legs)} leg(s), seats noted per leg "
                                        f"for passengers {per_leg}"))
    return violations


def _money_rules(payments: list[dict[str, Any]], bookings: dict[str, dict[str, Any]], running: set[str],
                 letters: list[dict[str, Any]]) -> list[Violation]:
    violations = []
    by_booking = {payment["booking_id"]: payment for payment in payments}
    captured = {payment["booking_id"] for payment in payments if payment["status"] == PaymentStatus.CAPTURED}
    for payment in payments:
        booking_id = payment["booking_id"]
        booking = bookings.get(booking_id)
        status = booking["status"] if booking else None
        owned = status in OWNING_STATUSES or booking_id in running
        if payment["status"] == PaymentStatus.CAPTURED and not owned:
            violations.append(Violation("captured-not-refunded", booking_id, f"money captured, booking is {status}"))
        if payments_service.holds_money(payment) and not owned:
            violations.append(Violation("authorization-not-released", booking_id,
                                        f"the card is still held ({payment['status']}), booking is {status}"))
        if payment["status"] == PaymentStatus.REQUESTED and booking_id not in running:
            violations.append(Violation("card-token-kept", booking_id,
                                        f"a payment request still holds its card token, booking is {status}"))
    capture_letters = {letter["booking_id"] for letter in letters if letter.get("compensation") == CAPTURE_PAYMENT.name}
    for booking in bookings.values():
        booking_id = booking["booking_id"]
        if booking["status"] != BookingStatus.CONFIRMED or booking_id in captured or booking_id in running:
            continue
        payment = by_booking.get(booking_id) or {}
        if payment.get("status") == PaymentStatus.CAPTURE_FAILED and (
                booking_id in capture_letters or payments_service.written_off(payment)):
            continue  # told: an operator recovers it, or has written it off
        violations.append(Violation("confirmed-without-capture", booking_id,
                                    f"payment is {payment.get('status')}, and no open dead letter says its capture "
                                    "failed"))
    return violations + _payment_note_rules(payments, bookings)


def _payment_note_rules(payments: list[dict[str, Any]], bookings: dict[str, dict[str, Any]]) -> list[Violation]:
    """GET /bookings/{id} shows the money from the booking's note alone: it must be the
    payment record as the customer sees it (bookings from before the note have none)."""
    by_booking = {payment["booking_id"]: payment for payment in payments}
    violations = []
    for booking_id, booking in bookings.items():
        note = booking.get("payment")
        truth = payments_service.seen(by_booking.get(booking_id))
        if note is not None and note != truth:
            violations.append(Violation("payment-note-stale", booking_id, f"the booking shows {note}, its payment "
                                        f"record says {truth}"))
    return violations


def _loyalty_rules(loyalty: list[dict[str, Any]], bookings: dict[str, dict[str, Any]]) -> list[Violation]:
    violations = []
    accounts = {item["loyalty_id"]: item for item in loyalty if item["record"] == db.LOYALTY_ACCOUNT}
    ledger_sums: dict[str, int] = defaultdict(int)
    booking_nets: dict[str, int] = defaultdict(int)
    for item in loyalty:
        if item["record"].startswith(db.LEDGER_PREFIX):
            ledger_sums[item["loyalty_id"]] += int(item["points"])
            booking_nets[item["booking_id"]] += int(item["points"])
    for loyalty_id, account in accounts.items():
        expected = int(account["opening_balance"]) + ledger_sums[loyalty_id]
        if int(account["points_balance"]) != expected:
            violations.append(Violation("loyalty-balance", loyalty_id,
                                        f"balance {account['points_balance']}, opening + ledger = {expected}"))
    # A booking undone (FAILED) or cancelled keeps no points and no miles: its postings and
    # their reversals net to zero (a posting that escaped its reversal would not).
    for booking_id, net in booking_nets.items():
        status = (bookings.get(booking_id) or {}).get("status")
        if status in (BookingStatus.FAILED, BookingStatus.CANCELLED) and net != 0:
            violations.append(Violation("loyalty-not-undone", booking_id, f"{status}, its ledger nets {net} points"))
    return violations


@dataclass(frozen=True)
class _Records:
    """What the rules read: every item of the tables, or one booking's share of them."""

    bookings: list[dict[str, Any]]
    seats: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    loyalty: list[dict[str, Any]]
    open_letters: list[dict[str, Any]]


def _everything() -> _Records:
    return _Records(list(db.scan("bookings")), list(db.scan("seats")), list(db.scan("payments")),
                    list(db.scan("loyalty")), dead_letters.open_letters())


def _of_booking(booking_id: str) -> _Records:
    """One booking, the seats that name it or that it names on each leg (and their
    owners), its payment, its loyalty account and ledger: a few reads, not a scan."""
    booking = booking_record.find(booking_id)
    if booking is None:
        return _Records([], [], [], [], [])
    noted = _noted_seats(booking)
    seats = [seat for flight in dict.fromkeys(leg["flight_number"] for leg in booking_legs(booking))
             for seat in db.query("seats", KeyConditionExpression="flight_number = :flight",
                                  ExpressionAttributeValues={":flight": flight})
             if seat.get("booking_id") == booking_id or (flight, seat["seat"]) in noted]
    owners = {seat["booking_id"] for seat in seats if seat.get("booking_id") not in (None, booking_id)}
    bookings = [booking, *filter(None, (booking_record.find(owner) for owner in sorted(owners)))]
    payment = payments_service.get_payment(booking_id)
    loyalty_records = loyalty.records_of(booking["loyalty_id"]) if booking.get("loyalty_id") else []
    return _Records(bookings, seats, [payment] if payment else [], loyalty_records,
                    dead_letters.open_letters(booking_id))


def check(booking_id: str | None = None) -> list[Violation]:
    """Every violation in the tables, or only those of one booking (recovery asks that
    before it closes a booking)."""
    records = _everything() if booking_id is None else _of_booking(booking_id)
    bookings_list = records.bookings
    bookings = {booking["booking_id"]: booking for booking in bookings_list}
    running = _running_executions(bookings_list, records.payments)
    violations = _seat_rules(records.seats, bookings, clock.now_epoch())
    violations += _money_rules(records.payments, bookings, running, records.open_letters)
    violations += _loyalty_rules(records.loyalty, bookings)
    for booking in bookings_list:
        if booking["status"] in IN_FLIGHT_STATUSES and booking["booking_id"] not in running:
            violations.append(Violation("stuck-without-execution", booking["booking_id"],
                                        f"{booking['status']} with no running execution"))
    if booking_id is None:
        return violations
    # The seats' other owners were read only to judge the seats: their own money is not in scope.
    ours = {booking_id, *(f"{seat['flight_number']}/{seat['seat']}" for seat in records.seats),
            *(item["loyalty_id"] for item in records.loyalty)}
    return [violation for violation in violations if violation.subject in ours]


def report(booking_id: str | None = None) -> dict[str, Any]:
    violations = check(booking_id)
    return {"violations": [asdict(violation) for violation in violations], "count": len(violations)}
