"""The loyalty service: one balance per account, from which points are redeemed and
to which miles are credited, and a ledger with one entry per (booking, kind).

Forward steps RedeemPoints and AwardMiles; compensations RefundPoints and ReverseMiles.
Each posting writes its ledger entry and moves the balance in one transaction, and
the entry's key (booking id + kind) makes a replay a no-op: the invariant
``points_balance == opening_balance + sum(ledger points)`` always holds.
"""

from __future__ import annotations

from typing import Any

from chalicelib import clock, db, step_log
from chalicelib.errors import AlreadyCompensated, ConditionFailed, InsufficientPoints, NotFound
from chalicelib.logs import logger
from chalicelib.models import StepInput, miles_for, points_to_debit
from chalicelib.vocabulary import (
    AUTHORIZE_PAYMENT,
    AWARD_MILES,
    REDEEM_POINTS,
    REFUND_POINTS,
    REVERSE_MILES,
    Task,
)

# What this service's Lambdas do to which table: their IAM roles (deploy/resources.py).
# The forward postings read nothing (a replay's refusal brings the entry back); the
# reversals read the original first.
_POSTING = ("PutItem", "UpdateItem")
TABLE_ACCESS: dict[Task, dict[str, tuple[str, ...]]] = {
    **{task: {"loyalty": _POSTING} for task in (REDEEM_POINTS, AWARD_MILES)},
    **{task: {"loyalty": ("GetItem", *_POSTING)} for task in (REFUND_POINTS, REVERSE_MILES)},
}

REDEEM, REFUND, AWARD, REVERSE = "REDEEM", "REFUND", "AWARD", "REVERSE"
# A tombstone is a 0-point entry at a forward posting's own key, left by its reversal
# when there was nothing to undo; this field names the reversal that left it.
VOIDED_BY = "voided_by"


def records_of(loyalty_id: str) -> list[dict[str, Any]]:
    """The account item and every ledger entry of ``loyalty_id``, as stored (one Query)."""
    return db.query("loyalty", KeyConditionExpression="loyalty_id = :id", ExpressionAttributeValues={":id": loyalty_id})


def get_account(loyalty_id: str) -> dict[str, Any]:
    """The account with its ledger, oldest entry first (one Query)."""
    items = records_of(loyalty_id)
    account = next((item for item in items if item["record"] == db.LOYALTY_ACCOUNT), None)
    if account is None:
        raise NotFound(f"loyalty account {loyalty_id} does not exist", field="loyalty_id")
    ledger = sorted(
        # 0-point entries are tombstones left by compensations with nothing to undo.
        (item for item in items if item["record"].startswith(db.LEDGER_PREFIX) and item["points"] != 0),
        key=lambda entry: (entry["at"], entry["record"]),
    )
    return {
        "loyalty_id": loyalty_id,
        "name": account.get("name"),
        "points_balance": account["points_balance"],
        "opening_balance": account["opening_balance"],
        "ledger": [
            {"booking_id": entry["booking_id"], "kind": entry["kind"], "points": entry["points"],
             "at": clock.api_time(entry["at"])}
            for entry in ledger
        ],
    }


def account_read(loyalty_id: str) -> db.Read:
    """The account item, as a part of someone's ``db.get_many``."""
    return db.Read("loyalty", db.loyalty_account_key(loyalty_id))


def existing_account(account: dict[str, Any] | None, loyalty_id: str) -> dict[str, Any]:
    """``account`` as read, or NotFound."""
    if account is None:
        raise NotFound(f"loyalty account {loyalty_id} does not exist", field="loyalty_id")
    return account


def _entry(loyalty_id: str, booking_id: str, kind: str) -> dict[str, Any] | None:
    return db.get("loyalty", db.ledger_key(loyalty_id, booking_id, kind))


def _post(loyalty_id: str, booking_id: str, kind: str, points: int, *, outcome: dict[str, Any] | None = None,
          require_balance: bool = False) -> dict[str, Any] | None:
    """Write a ledger entry of ``points`` (signed) and move the balance by as much, with the
    forward step's ``outcome`` in the same transaction (step_log.transact); a reversal
    passes none (see ``_reverse``).

    Returns None when posted, or the entry as it already was (a replay: no read first, the
    refused transaction brings it back). Raises InsufficientPoints when ``require_balance``
    and the balance would go below zero, and AlreadyCompensated when a forward posting
    finds its key taken by its reversal's tombstone: the entry's own condition is the
    check that no reversal ran first, so the transaction needs no third item.
    """
    account_condition = "attribute_exists(loyalty_id)"
    values: dict[str, Any] = {":points": points}
    if require_balance:
        account_condition += " AND points_balance >= :needed"
        values[":needed"] = -points
    parts: dict[str, db.Write] = {
        "entry": _new_entry(loyalty_id, booking_id, kind, points),
        "account": db.Update(
            "loyalty", db.loyalty_account_key(loyalty_id), "SET points_balance = points_balance + :points",
            condition=account_condition, values=values,
        ),
    }
    try:
        if outcome is None:
            db.transact(**parts)
        else:
            step_log.transact(outcome, **parts)
    except ConditionFailed as exc:
        if exc.failed_on("entry"):
            # DynamoDB returns the refusing item (ALL_OLD); read it should an answer lack it,
            # for only the item tells a replay from a reversal's tombstone.
            existing = exc.current_of("entry") or _entry(loyalty_id, booking_id, kind) or {"points": points}
            if VOIDED_BY in existing:
                raise AlreadyCompensated(
                    f"the {existing[VOIDED_BY]} of this booking ran first; nothing posted"
                ) from exc
            return existing
        account = exc.current_of("account")
        if account is None:
            raise NotFound(f"loyalty account {loyalty_id} does not exist") from exc
        raise InsufficientPoints(
            f"loyalty account {loyalty_id} has {account.get('points_balance')} points, {-points} needed"
        ) from exc
    logger.info("loyalty posting", extra={"loyalty_id": loyalty_id, "kind": kind, "points": points})
    return None


def _new_entry(loyalty_id: str, booking_id: str, kind: str, points: int, **extra: str) -> db.Put:
    """A ledger entry; the key (booking, kind) makes a second one impossible."""
    return db.Put(
        "loyalty",
        {**db.ledger_key(loyalty_id, booking_id, kind), "booking_id": booking_id, "kind": kind, "points": points,
         "at": clock.now_iso(), **extra},
        condition="attribute_not_exists(#record)", names={"#record": "record"},
    )


def _leave_tombstone(step: StepInput, original_kind: str, reversal_kind: str) -> dict[str, Any] | None:
    """Nothing to undo: take the original's own key with a 0-point entry, so a forward
    posting arriving late (its Lambda was still running) finds the key taken and is
    refused. One conditional Put (1 WRU). Returns None when left, or the original when
    it committed meanwhile (then it must be undone)."""
    assert step.loyalty_id
    tombstone = _new_entry(step.loyalty_id, step.booking_id, original_kind, 0, **{VOIDED_BY: reversal_kind})
    try:
        db.put(tombstone.table, tombstone.item, condition=tombstone.condition, names=tombstone.names)
    except ConditionFailed as exc:
        return exc.item or _entry(step.loyalty_id, step.booking_id, original_kind) or {"points": 0}
    return None


def _reverse(step: StepInput, original_kind: str, reversal_kind: str) -> dict[str, Any]:
    # A compensation reads first: the original is there in the common case (the step ran),
    # where a conditional write would be refused, and a read (1 RRU) costs less than that.
    # Its outcome is written on its own after (1 WRU; as a part of the transaction it would
    # be 2): nothing needs it to commit with the effect, since recovery re-runs any
    # compensation not COMPENSATED and a re-run changes nothing.
    if not step.loyalty_id:
        return {"points": 0, "detail": "no loyalty account"}
    original = _entry(step.loyalty_id, step.booking_id, original_kind)
    if original is None:
        original = _leave_tombstone(step, original_kind, reversal_kind)
    if original is None or VOIDED_BY in original:
        return {"points": 0, "detail": f"nothing to undo: no {original_kind} entry"}
    points = -int(original["points"])
    existing = _post(step.loyalty_id, step.booking_id, reversal_kind, points)
    return {"points": points, "replayed": existing is not None}


# --- RedeemPoints / RefundPoints ---------------------------------------------------
def redeem_points(step: StepInput) -> dict[str, Any]:
    """Debit the points the booking redeems (never more than the fare needs). No read
    first: a replay's posting is refused and brings back the entry its first run wrote."""
    points = points_to_debit(step.points_to_redeem, step.fare)
    if not step.loyalty_id or points <= 0:
        return {"points_redeemed": 0}
    existing = _post(step.loyalty_id, step.booking_id, REDEEM, -points, require_balance=True,
                     outcome={"points_redeemed": points})
    return {"points_redeemed": -int(existing["points"]) if existing else points}


def refund_points(step: StepInput) -> dict[str, Any]:
    return _reverse(step, REDEEM, REFUND)


# --- AwardMiles / ReverseMiles -----------------------------------------------------
def award_miles(step: StepInput) -> dict[str, Any]:
    """Credit miles for the amount paid; a no-op without a loyalty account. A replay, as
    RedeemPoints's, learns the first run's entry from its refused posting."""
    if not step.loyalty_id:
        return {"miles_awarded": 0, "detail": "no loyalty account"}
    miles = miles_for(int(step.result_of(AUTHORIZE_PAYMENT).get("amount", 0)))
    if miles <= 0:
        return {"miles_awarded": 0}
    existing = _post(step.loyalty_id, step.booking_id, AWARD, miles, outcome={"miles_awarded": miles})
    return {"miles_awarded": int(existing["points"]) if existing else miles}


def reverse_miles(step: StepInput) -> dict[str, Any]:
    """Take back the miles this booking earned. The balance may go below zero
    (the miles may have been spent since): a compensation must not fail on that."""
    return _reverse(step, AWARD, REVERSE)
