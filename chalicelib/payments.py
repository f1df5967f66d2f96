"""The payments service: ChargePayment and its compensation RefundPayment, through a
payment gateway interface with a simulated implementation.

No card data is stored or logged: the gateway gets a token, the payments table keeps
the amount, the status and the gateway's charge id.

Internal statuses: CAPTURED, DECLINED, REFUNDED, and VOIDED, a tombstone that
RefundPayment writes when it finds no charge, so a charge that lands late (after its
task timed out and was compensated) is refused and undone instead of kept.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib import booking_record, clock, db
from chalicelib.errors import ConditionFailed, PaymentDeclined, PaymentVoided
from chalicelib.logs import logger
from chalicelib.models import CURRENCY, StepInput, amount_due
from chalicelib.vocabulary import CHARGE_PAYMENT, REDEEM_POINTS, REFUND_PAYMENT, RESERVE_SEAT, PaymentStatus

# What this service's Lambdas do to which table: their IAM roles (deploy/resources.py).
# UpdateItem on bookings: the note of what the customer sees of the payment (_changing).
TABLE_ACCESS = {
    CHARGE_PAYMENT: {"payments": ("GetItem", "UpdateItem"), "bookings": ("UpdateItem",)},
    REFUND_PAYMENT: {"payments": ("GetItem", "PutItem", "UpdateItem"), "bookings": ("UpdateItem",)},
}

DECLINING_TOKEN = "tok_decline"


@dataclass(frozen=True)
class GatewayResult:
    approved: bool
    reference: str | None
    reason: str | None = None


class PaymentGateway(Protocol):
    def charge(self, *, amount: int, currency: str, card_token: str, idempotency_key: str) -> GatewayResult: ...

    def refund(self, *, charge_id: str, amount: int, idempotency_key: str) -> GatewayResult: ...


class SimulatedGateway:
    """Declines ``tok_decline``, approves any other non-empty token.

    Like real gateways it honours idempotency keys: the same key yields the same
    reference, so a retried charge is never a second charge.
    """

    def charge(self, *, amount: int, currency: str, card_token: str, idempotency_key: str) -> GatewayResult:
        if not card_token or card_token == DECLINING_TOKEN:
            return GatewayResult(approved=False, reference=None, reason="card declined")
        return GatewayResult(approved=True, reference=_reference("ch", idempotency_key))

    def refund(self, *, charge_id: str, amount: int, idempotency_key: str) -> GatewayResult:
        return GatewayResult(approved=True, reference=_reference("re", idempotency_key))


def _reference(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


_gateway: PaymentGateway = SimulatedGateway()


def gateway() -> PaymentGateway:
    return _gateway


def use_gateway(new_gateway: PaymentGateway) -> None:
    """Swap the gateway (tests, or a real provider's adapter)."""
    global _gateway
    _gateway = new_gateway


def get_payment(booking_id: str) -> dict[str, Any] | None:
    return db.get("payments", db.payment_key(booking_id))


# The payment as the customer sees it: a request or a VOIDED tombstone means nothing was charged.
SEEN_AS = {
    PaymentStatus.REQUESTED: PaymentStatus.NONE,
    PaymentStatus.CAPTURED: PaymentStatus.CAPTURED,
    PaymentStatus.DECLINED: PaymentStatus.DECLINED,
    PaymentStatus.REFUNDED: PaymentStatus.REFUNDED,
    PaymentStatus.VOIDED: PaymentStatus.NONE,
}
_MONEY_MOVED = (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED)


def seen(payment: dict[str, Any] | None) -> dict[str, Any]:
    """``{"status", "amount"}`` as the customer sees ``payment`` (a payment record, or None):
    the amount is what was captured (and, once REFUNDED, given back), else 0."""
    status = SEEN_AS.get((payment or {}).get("status", ""), PaymentStatus.NONE)
    return {"status": status, "amount": int((payment or {}).get("amount", 0)) if status in _MONEY_MOVED else 0}


def _changing(booking_id: str, before: PaymentStatus, payment: db.Update, after: dict[str, Any]) -> None:
    """Write ``payment`` (the record going from ``before`` to ``after``); when the customer
    sees the change, the booking's note of it (booking_record.payment_note) commits in the
    same transaction, so GET /bookings/{id} reads the money from the booking alone and is
    never behind it. A change nobody sees (a request voided) stays one write, 1 WRU.
    ConditionFailed as the payment part refused it (``_refused``)."""
    shown = seen(after)
    if shown == seen({"status": before, "amount": 0}):
        db.apply(payment, returning="NONE")
    else:
        db.transact(payment=payment, booking=booking_record.payment_note(booking_id, shown))


def _refused(exc: ConditionFailed) -> dict[str, Any]:
    """The payment record as a refused ``_changing`` found it."""
    return (exc.current_of("payment") if exc.failed_on("payment") else exc.item) or {}


def requested(booking_id: str, card_token: str) -> db.Put:
    """The booking's request for a charge, written with the booking (POST /bookings): the
    card token is kept here, so it never travels in the state machine's input or history,
    and is removed once the charge is decided."""
    return db.Put(
        "payments",
        {**db.payment_key(booking_id), "status": PaymentStatus.REQUESTED, "card_token": card_token, "amount": 0,
         "currency": CURRENCY, "updated_at": clock.now_iso()},
        condition="attribute_not_exists(booking_id)",
    )


def _decide(booking_id: str, status: PaymentStatus, amount: int, charge_id: str | None = None) -> None:
    """REQUESTED -> ``status``, the token dropped (and the booking's note, when it shows);
    ConditionFailed when it is decided already."""
    _changing(booking_id, PaymentStatus.REQUESTED, db.Update(
        "payments", db.payment_key(booking_id),
        "SET #status = :status, amount = :amount, charge_id = :charge, updated_at = :now REMOVE card_token",
        condition="#status = :requested", names={"#status": "status"},
        values={":status": status, ":amount": amount, ":charge": charge_id, ":now": clock.now_iso(),
                ":requested": PaymentStatus.REQUESTED},
    ), {"status": status, "amount": amount})


def withdraw_request(booking_id: str) -> None:
    """The saga ended before any charge: the request (and its card token) goes, leaving
    the tombstone that refuses a charge landing later. A decided payment is left as it is."""
    with contextlib.suppress(ConditionFailed):
        _decide(booking_id, PaymentStatus.VOIDED, 0)


def _outcome_of(payment: dict[str, Any]) -> dict[str, Any]:
    status = payment["status"]
    if status == PaymentStatus.CAPTURED:
        return _captured(payment["amount"], payment.get("charge_id"))
    if status == PaymentStatus.DECLINED:
        raise PaymentDeclined("the card was declined")
    raise PaymentVoided(f"the payment was {status.lower()} by a compensation before the charge")


# --- ChargePayment ----------------------------------------------------------------
def charge_payment(step: StepInput) -> dict[str, Any]:
    payment = get_payment(step.booking_id)
    if payment is None:
        raise PaymentDeclined("no card on file: the booking requested no payment")
    if payment["status"] != PaymentStatus.REQUESTED:
        return _outcome_of(payment)  # a replay returns what the first run decided
    fare = int(step.result_of(RESERVE_SEAT).get("fare", 0))
    points_redeemed = int(step.result_of(REDEEM_POINTS).get("points_redeemed", 0))
    amount = amount_due(fare, points_redeemed)
    result = GatewayResult(approved=True, reference=None)  # nothing to charge
    if amount > 0:
        result = gateway().charge(amount=amount, currency=CURRENCY, card_token=str(payment.get("card_token", "")),
                                  idempotency_key=step.booking_id)
    status = PaymentStatus.CAPTURED if result.approved else PaymentStatus.DECLINED
    try:
        _decide(step.booking_id, status, amount, result.reference)
    except ConditionFailed as exc:
        return _settle_race(step.booking_id, result, amount, _refused(exc))
    logger.info(f"payment {status.lower()}", extra={"amount": amount, "currency": CURRENCY})
    if not result.approved:
        raise PaymentDeclined(f"the card was declined: {result.reason}")
    return _captured(amount, result.reference)


def _captured(amount: int, charge_id: str | None) -> dict[str, Any]:
    return {"status": PaymentStatus.CAPTURED, "amount": amount, "charge_id": charge_id}


def _settle_race(booking_id: str, result: GatewayResult, amount: int, current: dict[str, Any]) -> dict[str, Any]:
    """Someone wrote the record first (``current``, as the refused write found it): a
    duplicate run (same charge) or RefundPayment's tombstone."""
    if current.get("status") == PaymentStatus.VOIDED and result.approved and result.reference:
        gateway().refund(charge_id=result.reference, amount=amount, idempotency_key=f"{booking_id}:void")
        logger.warning("charge landed after compensation; refunded at once", extra={"amount": amount})
    return _outcome_of(current)


# --- RefundPayment -----------------------------------------------------------------
def _void(booking_id: str, payment: dict[str, Any] | None) -> None:
    """No charge yet: a tombstone (VOIDED) that makes a charge landing later refuse."""
    if payment is None:  # a booking without a request: the tombstone is the record
        db.put("payments", {**db.payment_key(booking_id), "status": PaymentStatus.VOIDED, "amount": 0,
                            "currency": CURRENCY, "updated_at": clock.now_iso()},
               condition="attribute_not_exists(booking_id)")
    else:
        _decide(booking_id, PaymentStatus.VOIDED, 0)


def refund_payment(step: StepInput) -> dict[str, Any]:
    payment = get_payment(step.booking_id)
    if payment is None or payment["status"] == PaymentStatus.REQUESTED:
        try:
            _void(step.booking_id, payment)
            return {"refunded": 0, "detail": "nothing to undo: no charge; later charges are refused"}
        except ConditionFailed as exc:
            payment = _refused(exc)  # a charge landed just now: the refusal says which
    if payment.get("status") != PaymentStatus.CAPTURED:
        return {"refunded": 0, "detail": f"nothing to undo: payment is {payment.get('status')}"}
    amount = int(payment["amount"])
    refund = None
    if payment.get("charge_id") and amount > 0:
        refund = gateway().refund(
            charge_id=payment["charge_id"], amount=amount, idempotency_key=f"{step.booking_id}:refund",
        )
    try:
        _changing(step.booking_id, PaymentStatus.CAPTURED, db.Update(
            "payments",
            db.payment_key(step.booking_id),
            "SET #status = :refunded, refund_id = :refund, updated_at = :now",
            condition="#status = :captured",
            names={"#status": "status"},
            values={
                ":refunded": PaymentStatus.REFUNDED, ":captured": PaymentStatus.CAPTURED,
                ":refund": refund.reference if refund else None, ":now": clock.now_iso(),
            },
        ), {"status": PaymentStatus.REFUNDED, "amount": amount})
    except ConditionFailed:
        return {"refunded": 0, "detail": "already refunded"}
    logger.info("payment refunded", extra={"amount": amount})
    return {"refunded": amount}
