"""The payments service: AuthorizePayment and its compensation VoidPayment, CapturePayment
after the pivot, and RefundPayment when a confirmed booking is cancelled, through a
payment gateway interface with a simulated implementation.

The card is authorised for the amount due before the tickets are issued (the money is
held, not taken) and captured once they are: a failure before the pivot releases the
hold (nothing was captured, so nothing is refunded), and a capture that fails after it
never takes the tickets back (the customer is not at fault); it is recorded
CAPTURE_FAILED for an operator, whose recover captures again.

No card data is stored or logged: the gateway gets a token, the payments table keeps
the amount, the status and the gateway's references.

Internal statuses: REQUESTED (the card token waits here), AUTHORIZED, CAPTURED,
CAPTURE_FAILED, DECLINED, REFUNDED, and VOIDED: an authorisation released, or, with no
authorisation, a tombstone VoidPayment writes so one that lands late (after its task
timed out and was compensated) is refused and released instead of kept.

An authorisation lapses ``config.authorization_hold_seconds()`` after it was placed (the
gateway says when); a capture past it is refused with AuthorizationExpired. Re-authorising
would need the card again, which nothing here keeps (no token outlives its saga), so the
operator's recover records the amount as lost revenue (``write_off``), never silently.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib import booking_record, clock, config, db, dead_letters, step_log
from chalicelib.errors import AuthorizationExpired, CaptureRefused, ConditionFailed, PaymentDeclined, PaymentVoided
from chalicelib.logs import logger
from chalicelib.models import CURRENCY, StepInput, amount_due
from chalicelib.vocabulary import (
    AUTHORIZE_PAYMENT,
    CAPTURE_PAYMENT,
    REDEEM_POINTS,
    REFUND_PAYMENT,
    VOID_PAYMENT,
    PaymentStatus,
)

# What this service's Lambdas do to which table: their IAM roles (deploy/resources.py).
# UpdateItem on bookings: the note of what the customer sees of the payment (_changing).
# RefundPayment resolves the dead letter of a capture that failed, once it has released
# that authorisation (the booking is cancelled: there is nothing left to capture).
TABLE_ACCESS = {
    AUTHORIZE_PAYMENT: {"payments": ("GetItem", "UpdateItem"), "bookings": ("UpdateItem",)},
    CAPTURE_PAYMENT: {"payments": ("GetItem", "UpdateItem"), "bookings": ("UpdateItem",)},
    VOID_PAYMENT: {"payments": ("GetItem", "PutItem", "UpdateItem"), "bookings": ("UpdateItem",)},
    REFUND_PAYMENT: {"payments": ("GetItem", "PutItem", "UpdateItem"), "bookings": ("UpdateItem",),
                     "dead_letters": ("Query", "UpdateItem")},
}

DECLINING_TOKEN = "tok_decline"


@dataclass(frozen=True)
class GatewayResult:
    approved: bool
    reference: str | None
    reason: str | None = None
    expires_at: int | None = None  # an authorisation: when the gateway lets it lapse (epoch seconds)


class PaymentGateway(Protocol):
    def authorize(self, *, amount: int, currency: str, card_token: str, idempotency_key: str) -> GatewayResult: ...

    def capture(self, *, authorization_id: str, amount: int, idempotency_key: str) -> GatewayResult: ...

    def void(self, *, authorization_id: str, idempotency_key: str) -> GatewayResult: ...

    def refund(self, *, capture_id: str, amount: int, idempotency_key: str) -> GatewayResult: ...


class SimulatedGateway:
    """Declines ``tok_decline``, approves any other non-empty token; an authorisation
    lapses ``config.authorization_hold_seconds()`` after it is placed (on the injectable
    clock, so tests move time instead of waiting).

    Like real gateways it honours idempotency keys: the same key yields the same
    reference, so a retried authorisation or capture is never a second one. It keeps no
    state, so the payments service checks the expiry the gateway announced before it
    captures (a real gateway refuses a lapsed capture itself).
    """

    def authorize(self, *, amount: int, currency: str, card_token: str, idempotency_key: str) -> GatewayResult:
        if not card_token or card_token == DECLINING_TOKEN:
            return GatewayResult(approved=False, reference=None, reason="card declined")
        return GatewayResult(approved=True, reference=_reference("au", idempotency_key),
                             expires_at=clock.now_epoch() + config.authorization_hold_seconds())

    def capture(self, *, authorization_id: str, amount: int, idempotency_key: str) -> GatewayResult:
        return GatewayResult(approved=True, reference=_reference("ch", idempotency_key))

    def void(self, *, authorization_id: str, idempotency_key: str) -> GatewayResult:
        return GatewayResult(approved=True, reference=_reference("vo", idempotency_key))

    def refund(self, *, capture_id: str, amount: int, idempotency_key: str) -> GatewayResult:
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


# --- What the customer sees -------------------------------------------------------------
# A request means nothing is authorised yet; a DECLINED card took nothing.
_NOTHING_SHOWN = (PaymentStatus.REQUESTED, PaymentStatus.DECLINED)
_MONEY_HELD = (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURE_FAILED)


def seen(payment: dict[str, Any] | None) -> dict[str, Any]:
    """``{"status", "amount"}`` as the customer sees ``payment`` (a payment record, or None):
    NONE while nothing is authorised (a VOIDED tombstone included: it released nothing),
    else its status with the amount it concerns (held, captured, released or refunded);
    DECLINED shows 0."""
    payment = payment or {}
    status = payment.get("status", "")
    if status == PaymentStatus.REQUESTED or status not in set(PaymentStatus):
        return {"status": PaymentStatus.NONE, "amount": 0}
    if status == PaymentStatus.VOIDED and "authorized_at" not in payment:
        return {"status": PaymentStatus.NONE, "amount": 0}
    amount = 0 if status in _NOTHING_SHOWN else int(payment.get("amount", 0))
    return {"status": PaymentStatus(status), "amount": amount}


def holds_money(payment: dict[str, Any] | None) -> bool:
    """An authorisation not released, captured or not yet (the invariant checker's question)."""
    return (payment or {}).get("status") in _MONEY_HELD


def _changing(booking_id: str, before: dict[str, Any], payment: db.Update, after: dict[str, Any],
              outcome: dict[str, Any] | None = None) -> None:
    """Write ``payment`` (the record going from ``before`` to ``after``); when the customer
    sees the change, the booking's note of it (booking_record.payment_note) commits in the
    same transaction, so GET /bookings/{id} reads the money from the booking alone and is
    never behind it. A change nobody sees (a request voided) stays one write, 1 WRU.
    ``outcome``: the running step's result, committed in the same transaction
    (step_log.transact). ConditionFailed as the payment part refused it (``_refused``)."""
    shown = seen(after)
    note = {} if shown == seen(before) else {"booking": booking_record.payment_note(booking_id, shown)}
    if outcome is not None:
        step_log.transact(outcome, payment=payment, **note)
    elif note:
        db.transact(payment=payment, **note)
    else:
        db.apply(payment, returning="NONE")


def _refused(exc: ConditionFailed) -> dict[str, Any]:
    """The payment record as a refused ``_changing`` found it."""
    return (exc.current_of("payment") if exc.failed_on("payment") else exc.item) or {}


def requested(booking_id: str, card_token: str) -> db.Put:
    """The booking's request for a payment, written with the booking (POST /bookings): the
    card token is kept here, so it never travels in the state machine's input or history,
    and is removed once the authorisation is decided."""
    return db.Put(
        "payments",
        {**db.payment_key(booking_id), "status": PaymentStatus.REQUESTED, "card_token": card_token, "amount": 0,
         "currency": CURRENCY, "updated_at": clock.now_iso()},
        condition="attribute_not_exists(booking_id)",
    )


def _decide(booking_id: str, status: PaymentStatus, amount: int, result: GatewayResult | None = None) -> None:
    """REQUESTED -> ``status``, the token dropped (and the booking's note, when it shows);
    an approved ``result`` is an authorisation, noted with its reference and expiry.
    ConditionFailed when it is decided already."""
    now = clock.now_iso()
    authorized = status == PaymentStatus.AUTHORIZED
    sets = "#status = :status, amount = :amount, updated_at = :now"
    values: dict[str, Any] = {":status": status, ":amount": amount, ":now": now,
                              ":requested": PaymentStatus.REQUESTED}
    after: dict[str, Any] = {"status": status, "amount": amount}
    if authorized:
        sets += ", authorization_id = :authorization, authorized_at = :now, authorization_expires_at = :expires"
        values.update({":authorization": result.reference if result else None,
                       ":expires": result.expires_at if result else None})
        after["authorized_at"] = now
    _changing(booking_id, {"status": PaymentStatus.REQUESTED}, db.Update(
        "payments", db.payment_key(booking_id), f"SET {sets} REMOVE card_token",
        condition="#status = :requested", names={"#status": "status"}, values=values,
    ), after)


def withdraw_request(booking_id: str) -> None:
    """The saga ended before any authorisation: the request (and its card token) goes,
    leaving the tombstone that refuses one landing later. A decided payment is left as it is."""
    with contextlib.suppress(ConditionFailed):
        _decide(booking_id, PaymentStatus.VOIDED, 0)


# --- AuthorizePayment ------------------------------------------------------------------
def _authorization_of(payment: dict[str, Any]) -> dict[str, Any]:
    """What AuthorizePayment returned, from the record (a replay returns it again)."""
    status = payment["status"]
    if status == PaymentStatus.DECLINED:
        raise PaymentDeclined("the card was declined")
    if status == PaymentStatus.VOIDED and "authorized_at" not in payment:
        raise PaymentVoided("the payment was voided by a compensation before the authorisation")
    return _authorized(int(payment["amount"]), payment.get("authorization_id"), payment.get("authorization_expires_at"))


def _authorized(amount: int, authorization_id: str | None, expires_at: int | None) -> dict[str, Any]:
    return {"status": PaymentStatus.AUTHORIZED, "amount": amount, "authorization_id": authorization_id,
            "expires_at": expires_at}


def authorize_payment(step: StepInput) -> dict[str, Any]:
    payment = get_payment(step.booking_id)
    if payment is None:
        raise PaymentDeclined("no card on file: the booking requested no payment")
    if payment["status"] != PaymentStatus.REQUESTED:
        return _authorization_of(payment)  # a replay returns what the first run decided
    fare = step.fare  # every leg, every passenger: the execution input carries it
    points_redeemed = int(step.result_of(REDEEM_POINTS).get("points_redeemed", 0))
    amount = amount_due(fare, points_redeemed)
    result = GatewayResult(approved=True, reference=None)  # nothing to authorise: points paid it all
    if amount > 0:
        result = gateway().authorize(amount=amount, currency=CURRENCY, card_token=str(payment.get("card_token", "")),
                                     idempotency_key=step.booking_id)
    status = PaymentStatus.AUTHORIZED if result.approved else PaymentStatus.DECLINED
    try:
        _decide(step.booking_id, status, amount, result)
    except ConditionFailed as exc:
        return _settle_race(step.booking_id, result, _refused(exc))
    logger.info(f"payment {status.lower()}", extra={"amount": amount, "currency": CURRENCY})
    if not result.approved:
        raise PaymentDeclined(f"the card was declined: {result.reason}")
    return _authorized(amount, result.reference, result.expires_at)


def _settle_race(booking_id: str, result: GatewayResult, current: dict[str, Any]) -> dict[str, Any]:
    """Someone wrote the record first (``current``, as the refused write found it): a
    duplicate run (same authorisation) or VoidPayment's tombstone, which releases ours."""
    if current.get("status") == PaymentStatus.VOIDED and result.approved and result.reference:
        gateway().void(authorization_id=result.reference, idempotency_key=f"{booking_id}:void")
        logger.warning("authorisation landed after compensation; released at once")
    return _authorization_of(current)


# --- CapturePayment (after the pivot) ------------------------------------------------------
def _captured(payment: dict[str, Any]) -> dict[str, Any]:
    return {"status": PaymentStatus.CAPTURED, "captured": int(payment.get("amount", 0)),
            "capture_id": payment.get("capture_id")}


def _as_authorized(authorization: dict[str, Any]) -> dict[str, Any]:
    """The payment record as AuthorizePayment left it, from the result it returned."""
    return {"status": PaymentStatus.AUTHORIZED, "amount": authorization.get("amount", 0),
            "authorization_id": authorization.get("authorization_id"),
            "authorization_expires_at": authorization.get("expires_at"), "authorized_at": "(authorised)"}


def capture_payment(step: StepInput) -> dict[str, Any]:
    """Take the authorised amount. Idempotent: a capture already made is returned; the
    gateway's idempotency key makes a retried call the same capture. One already released
    (the customer cancelled meanwhile) is left alone; one that lands after the release is
    refunded at once. The operator's recover calls this too, on CAPTURE_FAILED."""
    # The saga hands over what AuthorizePayment held, so the first attempt writes without
    # reading first; a refused write brings the record back. Recovery reads it.
    authorization = step.result_of(AUTHORIZE_PAYMENT)
    payment = _as_authorized(authorization) if authorization else get_payment(step.booking_id) or {}
    status = payment.get("status")
    if status == PaymentStatus.CAPTURED:
        return _captured(payment)
    if status not in _MONEY_HELD:
        return {"status": status, "captured": 0, "detail": f"nothing to capture: payment is {status}"}
    expires_at = payment.get("authorization_expires_at")
    if expires_at is not None and clock.now_epoch() >= int(expires_at):
        raise AuthorizationExpired(f"the authorisation lapsed at {expires_at} (epoch seconds), before the capture")
    amount = int(payment["amount"])
    capture_id = None
    if amount > 0 and payment.get("authorization_id"):
        result = gateway().capture(authorization_id=payment["authorization_id"], amount=amount,
                                   idempotency_key=f"{step.booking_id}:capture")
        if not result.approved:
            raise CaptureRefused(f"the gateway refused the capture: {result.reason}")
        capture_id = result.reference
    captured = {"status": PaymentStatus.CAPTURED, "captured": amount, "capture_id": capture_id}
    try:
        # The step's outcome commits with the capture: the booking shows CONFIRMED already,
        # so whoever sees the money CAPTURED must see CapturePayment SUCCEEDED too (a
        # write of its own would land after the booking looks finished).
        _changing(step.booking_id, payment, db.Update(
            "payments", db.payment_key(step.booking_id),
            "SET #status = :captured, capture_id = :capture, captured_at = :now, updated_at = :now "
            "REMOVE capture_error",
            condition="#status IN (:authorized, :failed)", names={"#status": "status"},
            values={":captured": PaymentStatus.CAPTURED, ":capture": capture_id, ":now": clock.now_iso(),
                    ":authorized": PaymentStatus.AUTHORIZED, ":failed": PaymentStatus.CAPTURE_FAILED},
        ), {**payment, "status": PaymentStatus.CAPTURED}, outcome=captured)
    except ConditionFailed as exc:
        current = _refused(exc)
        if current.get("status") == PaymentStatus.CAPTURED:  # a concurrent duplicate captured it
            return _captured(current)
        if capture_id:  # released meanwhile: the money goes back at once
            gateway().refund(capture_id=capture_id, amount=amount, idempotency_key=f"{step.booking_id}:refund")
            logger.warning("capture landed after the authorisation was released; refunded at once")
        return {"status": current.get("status"), "captured": 0,
                "detail": f"nothing to capture: payment is {current.get('status')}"}
    logger.info("payment captured", extra={"amount": amount, "currency": CURRENCY})
    return captured


def mark_capture_failed(booking_id: str, error: dict[str, str]) -> bool:
    """RecordCaptureFailure: AUTHORIZED -> CAPTURE_FAILED with the error (and the booking's
    note). True when the payment is (now, or already) CAPTURE_FAILED; False when there is
    nothing to record: it was captured after all, or released by a cancellation."""
    payment = get_payment(booking_id) or {}
    if payment.get("status") != PaymentStatus.AUTHORIZED:
        return payment.get("status") == PaymentStatus.CAPTURE_FAILED
    try:
        _changing(booking_id, payment, db.Update(
            "payments", db.payment_key(booking_id),
            "SET #status = :failed, capture_error = :error, updated_at = :now",
            condition="#status = :authorized", names={"#status": "status"},
            values={":failed": PaymentStatus.CAPTURE_FAILED, ":error": error, ":now": clock.now_iso(),
                    ":authorized": PaymentStatus.AUTHORIZED},
        ), {**payment, "status": PaymentStatus.CAPTURE_FAILED})
    except ConditionFailed as exc:
        return _refused(exc).get("status") == PaymentStatus.CAPTURE_FAILED
    logger.error("capture failed after its retries", extra={"amount": payment.get("amount"), "error": error["error"]})
    return True


def write_off(booking_id: str, reason: str) -> int:
    """The operator's recover found the authorisation lapsed: nothing can be captured, so
    the amount is recorded as lost revenue on the payment (it stays CAPTURE_FAILED: the
    customer was not charged). Returns the amount written off (0 when it was not CAPTURE_FAILED)."""
    try:
        updated = db.update(
            "payments", db.payment_key(booking_id),
            "SET written_off_at = if_not_exists(written_off_at, :now), lost_revenue = amount, "
            "write_off_reason = :reason, updated_at = :now",
            condition="#status = :failed", names={"#status": "status"},
            values={":now": clock.now_iso(), ":reason": reason, ":failed": PaymentStatus.CAPTURE_FAILED},
        )
    except ConditionFailed:
        return 0
    logger.error("capture written off as lost revenue", extra={"amount": updated.get("lost_revenue")})
    return int(updated.get("lost_revenue", 0))


def authorized_ones() -> list[str]:
    """The bookings whose payment is authorised and not captured yet (a scan: for the
    recovery of sagas that are gone between their pivot and their capture)."""
    return [payment["booking_id"] for payment in db.scan("payments")
            if payment.get("status") == PaymentStatus.AUTHORIZED]


def written_off(payment: dict[str, Any] | None) -> bool:
    return "written_off_at" in (payment or {})


# --- VoidPayment (the booking saga) and RefundPayment (a cancellation) ----------------------
def _tombstone(booking_id: str, payment: dict[str, Any] | None) -> None:
    """No authorisation yet: a tombstone (VOIDED) that makes one landing later refuse."""
    if payment is None:  # a booking without a request: the tombstone is the record
        db.put("payments", {**db.payment_key(booking_id), "status": PaymentStatus.VOIDED, "amount": 0,
                            "currency": CURRENCY, "updated_at": clock.now_iso()},
               condition="attribute_not_exists(booking_id)")
    else:
        _decide(booking_id, PaymentStatus.VOIDED, 0)


def _release(booking_id: str, payment: dict[str, Any]) -> dict[str, Any]:
    """An authorisation not captured (AUTHORIZED, CAPTURE_FAILED): released at the gateway, VOIDED."""
    amount = int(payment.get("amount", 0))
    void = None
    if payment.get("authorization_id"):
        void = gateway().void(authorization_id=payment["authorization_id"], idempotency_key=f"{booking_id}:void")
    _changing(booking_id, payment, db.Update(
        "payments", db.payment_key(booking_id),
        "SET #status = :voided, void_id = :void, voided_at = :now, updated_at = :now",
        condition="#status = :before", names={"#status": "status"},
        values={":voided": PaymentStatus.VOIDED, ":before": payment["status"],
                ":void": void.reference if void else None, ":now": clock.now_iso()},
    ), {**payment, "status": PaymentStatus.VOIDED})
    logger.info("authorisation released", extra={"amount": amount})
    return {"voided": amount, "refunded": 0}


def _refund(booking_id: str, payment: dict[str, Any]) -> dict[str, Any]:
    """A capture: refunded at the gateway, REFUNDED."""
    amount = int(payment["amount"])
    refund = None
    if payment.get("capture_id") and amount > 0:
        refund = gateway().refund(capture_id=payment["capture_id"], amount=amount,
                                  idempotency_key=f"{booking_id}:refund")
    _changing(booking_id, payment, db.Update(
        "payments", db.payment_key(booking_id),
        "SET #status = :refunded, refund_id = :refund, updated_at = :now",
        condition="#status = :captured", names={"#status": "status"},
        values={":refunded": PaymentStatus.REFUNDED, ":captured": PaymentStatus.CAPTURED,
                ":refund": refund.reference if refund else None, ":now": clock.now_iso()},
    ), {**payment, "status": PaymentStatus.REFUNDED})
    logger.info("payment refunded", extra={"amount": amount})
    return {"voided": 0, "refunded": amount}


def _give_back(booking_id: str, payment: dict[str, Any] | None) -> dict[str, Any]:
    """Whatever the payment holds goes back: no authorisation leaves a tombstone, a hold is
    released, a capture refunded. A write refused because the payment moved meanwhile (an
    authorisation or a capture landing just now) is settled on what the refusal found."""
    for _ in range(3):
        status = (payment or {}).get("status")
        try:
            if payment is None or status == PaymentStatus.REQUESTED:
                _tombstone(booking_id, payment)
                return {"voided": 0, "refunded": 0,
                        "detail": "nothing to undo: no authorisation; a later one is refused"}
            if status in _MONEY_HELD:
                return _release(booking_id, payment)
            if status == PaymentStatus.CAPTURED:
                return _refund(booking_id, payment)
        except ConditionFailed as exc:
            payment = _refused(exc)
            continue
        return {"voided": 0, "refunded": 0, "detail": f"nothing to undo: payment is {status}"}
    raise ConditionFailed({}, frozenset({"payment"}))  # it kept moving: the compensation's Retry tries again


def void_payment(step: StepInput) -> dict[str, Any]:
    """Undo AuthorizePayment: release the hold. The booking saga never captures before its
    pivot, so there is nothing to refund; a capture found all the same is refunded."""
    return _give_back(step.booking_id, get_payment(step.booking_id))


def refund_payment(step: StepInput) -> dict[str, Any]:
    """A confirmed booking cancelled: refund what was captured, or release an authorisation
    never captured. A capture that had failed is then moot: its dead letter is resolved."""
    payment = get_payment(step.booking_id)
    result = _give_back(step.booking_id, payment)
    if (payment or {}).get("status") == PaymentStatus.CAPTURE_FAILED:
        dead_letters.resolve(step.booking_id, task=CAPTURE_PAYMENT.name,
                             resolution="the booking was cancelled; the authorisation was released")
    return result
