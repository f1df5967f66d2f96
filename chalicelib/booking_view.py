"""``GET /bookings/{id}``: the booking as the API shows it, with its payment and its
step log. Reads only: the booking item (status, payment, outcome; its payment as the
payments service noted it there) and one Query of the booking's step-log partition.
What it shows of a status is decided here, not stored.

``GET /bookings``: the customer's bookings, newest first, a page at a time, each a
summary read from the by_customer index alone (chalicelib/schema.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib import booking_record, clock, payments, step_log
from chalicelib.models import (
    CURRENCY,
    MONEY_FIELDS,
    amount_due,
    booking_legs,
    booking_passengers,
    points_to_debit,
)
from chalicelib.validation import next_token
from chalicelib.vocabulary import (
    AFTER_PIVOT,
    BOOKING_STEPS,
    COMPENSATIONS,
    BookingStatus,
    PaymentStatus,
    StepStatus,
    Task,
    split_entry,
)

# Keys of times in what the steps return (a result, the boarding pass in it), besides any
# `*_at`: ReserveSeats's hold expiry is epoch seconds, a boarding pass's times are ISO.
_TIME_KEYS = ("hold_expires_at", "departure", "boarding_time")


def _time(value: Any) -> str | None:
    return clock.api_time(value) if value is not None else None


def _shown(value: Any, currency: str) -> Any:
    """What a step returned (its result, at any depth) as the API shows it: its times in
    the API's format, and the currency next to any amount of money. The step log keeps
    what the step returned."""
    if isinstance(value, list):
        return [_shown(item, currency) for item in value]
    if not isinstance(value, dict):
        return value
    shown = {key: _time(item) if key in _TIME_KEYS or key.endswith("_at") else _shown(item, currency)
             for key, item in value.items()}
    if any(isinstance(shown.get(key), int) for key in MONEY_FIELDS):
        shown.setdefault("currency", currency)
    return shown


def _entry_view(name: str, entry: dict[str, Any], currency: str) -> dict[str, Any]:
    view = {
        "name": name,
        "status": entry.get("status", StepStatus.NOT_STARTED),
        "started_at": _time(entry.get("started_at")),
        "finished_at": _time(entry.get("finished_at")),
        "attempts": entry.get("attempts", 0),
    }
    if entry.get("error"):
        view["error"] = entry["error"]
    if entry.get("result") is not None:
        view["result"] = _shown(entry["result"], currency)
    return view


# A per-leg task's status over its legs: the first of these any leg has, else finished.
_UNFINISHED = (StepStatus.RUNNING, StepStatus.FAILED, StepStatus.TIMED_OUT)


def _per_leg_view(task: Task, log: dict[str, dict[str, Any]], legs: list[dict[str, Any]],
                  currency: str) -> dict[str, Any] | None:
    """A task that ran per leg, as one entry: its legs' entries folded (the first attempt's
    start, the last one's end, every attempt counted), and each leg in ``items``: its
    status, the seats it held or released, its error. None when no leg has an entry."""
    ran = sorted((leg, entry) for name, entry in log.items()
                 for task_name, leg in [split_entry(name)] if task_name == task.name and leg is not None)
    if not ran:
        return None
    statuses = [entry.get("status") for _, entry in ran]
    status = next((candidate for candidate in _UNFINISHED if candidate in statuses), statuses[0])
    finished = [entry.get("finished_at") for _, entry in ran]
    view: dict[str, Any] = {
        "name": task.name,
        "status": status,
        "started_at": _time(min((entry.get("started_at") or "" for _, entry in ran), default=None) or None),
        "finished_at": _time(max(str(at) for at in finished)) if all(finished) and status not in _UNFINISHED else None,
        "attempts": max(int(entry.get("attempts", 0)) for _, entry in ran),
        "items": [],
    }
    for leg, entry in ran:
        item: dict[str, Any] = {"leg": leg, "status": entry.get("status"),
                                "flight_number": legs[leg]["flight_number"] if leg < len(legs) else None}
        result = entry.get("result") or {}
        if result.get("seats") is not None:  # held (ReserveSeats) or released (ReleaseSeats)
            item["seats"] = result["seats"]
        if entry.get("error"):
            item["error"] = entry["error"]
            view.setdefault("error", entry["error"])
        view["items"].append(item)
    view["_started"] = ran[0][1].get("started_at") or ""
    return view


def _steps(log: dict[str, dict[str, Any]], booking: dict[str, Any], currency: str) -> list[dict[str, Any]]:
    """Every forward step in saga order, those after the pivot last; a conditional step
    that cannot run is SKIPPED; a step that runs per leg reports its legs."""
    entries = []
    legs = booking_legs(booking)
    for step in BOOKING_STEPS:
        skipped = step.runs_if_positive is not None and not booking.get(step.runs_if_positive)
        default = StepStatus.SKIPPED if skipped else StepStatus.NOT_STARTED
        if step.per_leg:
            folded = _per_leg_view(step, log, legs, currency)
            if folded is not None:
                folded.pop("_started")
            entries.append(folded or {**_entry_view(step.name, {"status": default}, currency), "items": []})
            continue
        entries.append(_entry_view(step.name, log.get(step.name) or {"status": default}, currency))
    not_started = {"status": StepStatus.NOT_STARTED}
    entries += [_entry_view(step.name, log.get(step.name) or not_started, currency) for step in AFTER_PIVOT]
    return entries


def _compensations(log: dict[str, dict[str, Any]], booking: dict[str, Any], currency: str) -> list[dict[str, Any]]:
    """The compensations that ran, in the order they started (by the stored time, finer
    than the one shown); one that runs per leg reports the legs it ran on."""
    ran = []
    for compensation in COMPENSATIONS:
        if compensation.per_leg:
            folded = _per_leg_view(compensation, log, booking_legs(booking), currency)
            if folded is not None:
                ran.append((folded.pop("_started"), folded))
        elif compensation.name in log:
            entry = log[compensation.name]
            ran.append((entry.get("started_at") or "", _entry_view(compensation.name, entry, currency)))
    entries = [view for _, view in sorted(ran, key=lambda pair: pair[0])]
    for order, entry in enumerate(entries, start=1):
        entry["order"] = order
    return entries


def _legs(booking: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"flight_number": leg["flight_number"], "departure": _time(leg.get("departure")),
             "seats": [{"passenger": item["passenger"], "seat": item["seat"], "cabin": item["cabin"]}
                       for item in leg.get("seats") or []]}
            for leg in booking_legs(booking)]


def _passengers(booking: dict[str, Any], confirmed: bool, currency: str) -> list[dict[str, Any]]:
    """The party; once confirmed, each passenger's ticket and boarding passes (one per leg)."""
    shown = []
    for passenger in booking_passengers(booking):
        view = {key: passenger[key] for key in ("first_name", "last_name", "email") if passenger.get(key)}
        if confirmed and passenger.get("ticket_number"):
            view["ticket_number"] = passenger["ticket_number"]
            view["boarding_passes"] = _shown(passenger.get("boarding_passes") or [], currency)
        shown.append(view)
    return shown


def payment_of(booking: dict[str, Any]) -> dict[str, Any]:
    """What the customer sees of the booking's payment: the note on the booking. A booking
    written before the note existed has none: its payment record is read instead."""
    note = booking.get("payment")
    return dict(note) if note is not None else payments.seen(payments.get_payment(booking["booking_id"]))


def _amount_due(booking: dict[str, Any]) -> int | None:
    """The fare after the points the booking redeems: what AuthorizePayment authorises."""
    fare = booking.get("fare")
    if fare is None:
        return None
    return amount_due(int(fare), points_to_debit(int(booking.get("points_to_redeem") or 0), int(fare)))


def amount_paid(payment: dict[str, Any]) -> int:
    """What the customer has paid and not been refunded, from what they see of the payment."""
    return int(payment["amount"]) if payment["status"] == PaymentStatus.CAPTURED else 0


def summary(booking: dict[str, Any], href: str) -> dict[str, Any]:
    """One line of GET /bookings, from the booking as the by_customer index projects it
    (``BOOKINGS_BY_CUSTOMER.projected``: nothing else is read); ``href`` is the booking."""
    return {
        "booking_id": booking["booking_id"],
        "status": booking["status"],
        "flight_number": booking["flight_number"],
        "seat": booking.get("seat"),
        "cabin": booking.get("cabin"),
        "fare": booking.get("fare"),
        "amount_paid": amount_paid(payment_of(booking)),
        "currency": booking.get("currency", CURRENCY),
        "created_at": clock.api_time(booking["created_at"]),
        "updated_at": clock.api_time(booking["updated_at"]),
        "href": href,
    }


def listing(customer_id: str, *, limit: int, after: tuple[str, str] | None,
            href: Callable[[str], str]) -> dict[str, Any]:
    """A page of the customer's bookings, newest first, and the ``next_token`` of the page
    after it (null on the last page). One Query of the index: it asks for one booking more
    than the page holds, so the last page is known as such (no empty page after it)."""
    found = booking_record.list_owned(customer_id, limit=limit + 1, after=after)
    page = found[:limit]
    token = None
    if len(found) > limit:
        last = page[-1]
        token = next_token(customer_id, last["created_at"], last["booking_id"])
    return {"bookings": [summary(booking, href(booking["booking_id"])) for booking in page], "next_token": token}


def view(booking_id: str, *, booking: dict[str, Any] | None = None) -> dict[str, Any]:
    """The booking (``booking``: its item, when the caller has already read it)."""
    booking = booking or booking_record.get(booking_id)
    log = step_log.read(booking_id)
    passengers = _passengers(booking, booking["status"] == BookingStatus.CONFIRMED, booking.get("currency", CURRENCY))
    first = passengers[0]
    payment = payment_of(booking)
    status = booking["status"]
    confirmed = status == BookingStatus.CONFIRMED
    currency = booking.get("currency", CURRENCY)
    result = {
        "booking_id": booking_id,
        "correlation_id": booking["correlation_id"],
        "status": status,
        "flight_number": booking["flight_number"],
        "seat": booking.get("seat"),
        "cabin": booking.get("cabin"),
        "passenger": {key: first[key] for key in ("first_name", "last_name", "email") if key in first},
        "loyalty_id": booking.get("loyalty_id"),
        "points_to_redeem": booking.get("points_to_redeem", 0),
        "legs": _legs(booking),
        "passengers": passengers,
        "fare": booking.get("fare"),
        "amount_due": _amount_due(booking),
        "currency": currency,
        "amount_paid": amount_paid(payment),
        "payment": {"status": payment["status"], "amount": payment["amount"], "currency": currency},
        "steps": _steps(log[step_log.STEPS], booking, currency),
        "compensations": _compensations(log[step_log.COMPENSATIONS], booking, currency),
        "failed_step": booking.get("failed_step") if status == BookingStatus.FAILED else None,
        "error": booking.get("error"),
        # The first passenger's, on the first leg: a one-seat booking's ticket and boarding pass.
        "ticket_number": first.get("ticket_number") if confirmed else None,
        "boarding_pass": (first.get("boarding_passes") or [None])[0] if confirmed else None,
        "created_at": clock.api_time(booking["created_at"]),
        "updated_at": clock.api_time(booking["updated_at"]),
    }
    if status == BookingStatus.NEEDS_ATTENTION:
        result["needs_attention"] = {
            "failed_step": booking.get("failed_step"),
            "failed_compensations": [
                entry["name"] for entry in result["compensations"]
                if entry["status"] in (StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.RUNNING)
            ],
        }
    return result
