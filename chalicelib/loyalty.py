"""The loyalty service: one balance per account, from which points are redeemed and
to which miles are credited, and a ledger with one entry per (booking, kind).

Forward steps RedeemPoints and AwardMiles; compensations RefundPoints and ReverseMiles.
Each posting writes its ledger entry and moves the balance in one transaction, and
the entry's key (booking id + kind) makes a replay a no-op: the invariant
``points_balance == opening_balance + sum(ledger points)`` always holds.
"""

from __future__ import annotations

from typing import Any

from chalicelib import clock, db
from chalicelib.errors import AlreadyCompensated, InsufficientPoints, NotFound
from chalicelib.logs import logger
from chalicelib.models import StepInput, miles_for, points_to_debit

REDEEM, REFUND, AWARD, REVERSE = "REDEEM", "REFUND", "AWARD", "REVERSE"
REVERSAL_OF = {REDEEM: REFUND, AWARD: REVERSE}


def get_account(loyalty_id: str) -> dict[str, Any]:
    """The account with its ledger, oldest entry first (one Query)."""
    items = db.query(
        "loyalty",
        KeyConditionExpression="loyalty_id = :id",
        ExpressionAttributeValues={":id": loyalty_id},
    )
    account = next((item for item in items if item["record"] == db.LOYALTY_ACCOUNT), None)
    if account is None:
        raise NotFound(f"loyalty account {loyalty_id} does not exist", field="loyalty_id")
    ledger = sorted(
        # 0-point entries are markers left by compensations with nothing to undo.
        (item for item in items if item["record"].startswith(db.LEDGER_PREFIX) and item["points"] != 0),
        key=lambda entry: (entry["at"], entry["record"]),
    )
    return {
        "loyalty_id": loyalty_id,
        "name": account.get("name"),
        "points_balance": account["points_balance"],
        "opening_balance": account["opening_balance"],
        "ledger": [
            {"booking_id": entry["booking_id"], "kind": entry["kind"], "points": entry["points"], "at": entry["at"]}
            for entry in ledger
        ],
    }


def account_exists(loyalty_id: str) -> bool:
    return db.get("loyalty", db.loyalty_account_key(loyalty_id)) is not None


def _entry(loyalty_id: str, booking_id: str, kind: str) -> dict[str, Any] | None:
    return db.get("loyalty", db.ledger_key(loyalty_id, booking_id, kind))


def _post(loyalty_id: str, booking_id: str, kind: str, points: int, *, require_balance: bool = False) -> bool:
    """Write a ledger entry of ``points`` (signed) and move the balance by as much.

    Returns False when the entry already exists (a replay). Raises InsufficientPoints
    when ``require_balance`` and the balance would go below zero, and
    AlreadyCompensated when a forward posting finds its reversal already written.
    """
    account_condition = "attribute_exists(loyalty_id)"
    values: dict[str, Any] = {":points": points}
    if require_balance:
        account_condition += " AND points_balance >= :needed"
        values[":needed"] = -points
    try:
        db.transact([
            {"Put": {
                "table": "loyalty",
                "Item": {
                    **db.ledger_key(loyalty_id, booking_id, kind),
                    "booking_id": booking_id, "kind": kind, "points": points, "at": clock.now_iso(),
                },
                "ConditionExpression": "attribute_not_exists(#record)",
                "ExpressionAttributeNames": {"#record": "record"},
            }},
            {"Update": {
                "table": "loyalty",
                "Key": db.loyalty_account_key(loyalty_id),
                "UpdateExpression": "SET points_balance = points_balance + :points",
                "ConditionExpression": account_condition,
                "ExpressionAttributeValues": values,
            }},
            *_unless_reversed(loyalty_id, booking_id, kind),
        ])
    except db.ConditionFailed as exc:
        entry_exists, account_refused = exc.failed[0], exc.failed[1]
        if entry_exists:
            return False
        if len(exc.failed) > 2 and exc.failed[2]:
            raise AlreadyCompensated(f"the {REVERSAL_OF[kind]} of this booking ran first; nothing posted") from exc
        if account_refused and exc.items[1] is None:
            raise NotFound(f"loyalty account {loyalty_id} does not exist") from exc
        balance = (exc.items[1] or {}).get("points_balance")
        raise InsufficientPoints(
            f"loyalty account {loyalty_id} has {balance} points, {-points} needed"
        ) from exc
    logger.info("loyalty posting", extra={"loyalty_id": loyalty_id, "kind": kind, "points": points})
    return True


def _unless_reversed(loyalty_id: str, booking_id: str, kind: str) -> list[dict[str, Any]]:
    """For a forward posting: a check that its reversal (or the marker a reversal leaves
    when it found nothing to undo) does not exist yet."""
    if kind not in REVERSAL_OF:
        return []
    return [{"ConditionCheck": {
        "table": "loyalty",
        "Key": db.ledger_key(loyalty_id, booking_id, REVERSAL_OF[kind]),
        "ConditionExpression": "attribute_not_exists(#record)",
        "ExpressionAttributeNames": {"#record": "record"},
    }}]


def _leave_marker(step: StepInput, original_kind: str, reversal_kind: str) -> bool:
    """Nothing to undo: write a 0-point reversal so a late forward posting is refused.
    Returns False when the original appeared meanwhile (then it must be undone)."""
    assert step.loyalty_id
    try:
        db.transact([
            {"Put": {
                "table": "loyalty",
                "Item": {**db.ledger_key(step.loyalty_id, step.booking_id, reversal_kind),
                         "booking_id": step.booking_id, "kind": reversal_kind, "points": 0, "at": clock.now_iso()},
                "ConditionExpression": "attribute_not_exists(#record)",
                "ExpressionAttributeNames": {"#record": "record"},
            }},
            {"ConditionCheck": {
                "table": "loyalty",
                "Key": db.ledger_key(step.loyalty_id, step.booking_id, original_kind),
                "ConditionExpression": "attribute_not_exists(#record)",
                "ExpressionAttributeNames": {"#record": "record"},
            }},
        ])
    except db.ConditionFailed as exc:
        return not exc.failed[1]
    return True


def _reverse(step: StepInput, original_kind: str, reversal_kind: str) -> dict[str, Any]:
    if not step.loyalty_id:
        return {"points": 0, "detail": "no loyalty account"}
    original = _entry(step.loyalty_id, step.booking_id, original_kind)
    if original is None and _leave_marker(step, original_kind, reversal_kind):
        return {"points": 0, "detail": f"nothing to undo: no {original_kind} entry"}
    original = original or _entry(step.loyalty_id, step.booking_id, original_kind) or {"points": 0}
    points = -int(original["points"])
    posted = _post(step.loyalty_id, step.booking_id, reversal_kind, points)
    return {"points": points, "replayed": not posted}


# --- RedeemPoints / RefundPoints ---------------------------------------------------
def redeem_points(step: StepInput) -> dict[str, Any]:
    """Debit the points the booking redeems (never more than the fare needs)."""
    fare = int((step.reservation or {}).get("fare", 0))
    points = points_to_debit(step.points_to_redeem, fare)
    if not step.loyalty_id or points <= 0:
        return {"points_redeemed": 0}
    existing = _entry(step.loyalty_id, step.booking_id, REDEEM)
    if existing is None:
        _post(step.loyalty_id, step.booking_id, REDEEM, -points, require_balance=True)
    else:
        points = -int(existing["points"])
    return {"points_redeemed": points}


def refund_points(step: StepInput) -> dict[str, Any]:
    return _reverse(step, REDEEM, REFUND)


# --- AwardMiles / ReverseMiles -----------------------------------------------------
def award_miles(step: StepInput) -> dict[str, Any]:
    """Credit miles for the amount paid; a no-op without a loyalty account."""
    if not step.loyalty_id:
        return {"miles_awarded": 0, "detail": "no loyalty account"}
    miles = miles_for(int((step.charge or {}).get("amount", 0)))
    if miles <= 0:
        return {"miles_awarded": 0}
    existing = _entry(step.loyalty_id, step.booking_id, AWARD)
    if existing is None:
        _post(step.loyalty_id, step.booking_id, AWARD, miles)
    else:
        miles = int(existing["points"])
    return {"miles_awarded": miles}


def reverse_miles(step: StepInput) -> dict[str, Any]:
    """Take back the miles this booking earned. The balance may go below zero
    (the miles may have been spent since): a compensation must not fail on that."""
    return _reverse(step, AWARD, REVERSE)
