"""The only module that touches DynamoDB.

It owns the lazy resource (created on first use, so tests and the embedded backend
start moto first), the table getters, the key builders, and the translation of
``ClientError`` into this project's errors. Domain modules pass expressions in and
get plain Python values (ints, not Decimals) back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from chalicelib import config
from chalicelib.errors import TransientStepError

_lock = threading.Lock()
_resource: Any = None

# Error codes after which the same request may well succeed: Retry clauses in
# statemachine.json retry TransientStepError.
_TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
}


class ConditionFailed(Exception):
    """A condition expression was false. ``items`` holds the current item(s), when known."""

    def __init__(self, items: list[dict[str, Any] | None], failed: list[bool] | None = None) -> None:
        super().__init__("condition failed")
        self.items = items
        # For a transaction: which of its operations had a false condition.
        self.failed = failed if failed is not None else [True] * len(items)

    @property
    def item(self) -> dict[str, Any] | None:
        return self.items[0] if self.items else None


def resource() -> Any:
    """The DynamoDB resource; boto3 is imported here, on first use (most of a cold start)."""
    global _resource
    with _lock:
        if _resource is None:
            import boto3

            _resource = boto3.resource("dynamodb", region_name=config.region())
        return _resource


def reset() -> None:
    """Forget the resource (tests and the embedded backend: after moto restarts)."""
    global _resource
    with _lock:
        _resource = None


def table(name: str) -> Any:
    return resource().Table(config.table_name(name))


# --- Keys: built here and nowhere else --------------------------------------------
def flight_key(flight_number: str) -> dict[str, str]:
    return {"flight_number": flight_number}


def seat_key(flight_number: str, seat: str) -> dict[str, str]:
    return {"flight_number": flight_number, "seat": seat}


def booking_key(booking_id: str) -> dict[str, str]:
    return {"booking_id": booking_id}


def step_log_key(booking_id: str, log: str, name: str) -> dict[str, str]:
    """``log`` is "steps" or "compensations"; ``name`` the step's state name."""
    return {"booking_id": booking_id, "entry": f"{log}#{name}"}


def payment_key(booking_id: str) -> dict[str, str]:
    return {"booking_id": booking_id}


def idempotency_key(key: str) -> dict[str, str]:
    return {"idempotency_key": key}


LOYALTY_ACCOUNT = "ACCOUNT"
LEDGER_PREFIX = "LEDGER#"


def loyalty_account_key(loyalty_id: str) -> dict[str, str]:
    return {"loyalty_id": loyalty_id, "record": LOYALTY_ACCOUNT}


def ledger_key(loyalty_id: str, booking_id: str, kind: str) -> dict[str, str]:
    # One entry per (booking, kind): the key itself makes redeem/award idempotent.
    return {"loyalty_id": loyalty_id, "record": f"{LEDGER_PREFIX}{booking_id}#{kind}"}


def dead_letter_key(booking_id: str, compensation: str, at: str) -> dict[str, str]:
    return {"booking_id": booking_id, "entry": f"{compensation}#{at}"}


# --- Values ---------------------------------------------------------------------
def plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; every number we store is an integer."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, set):
        return {plain(item) for item in value}
    return value


def _raise_translated(exc: Exception) -> None:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        raise exc
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        # The resource does not deserialise the item of an error response.
        current = exc.response.get("Item")  # type: ignore[typeddict-item]
        raise ConditionFailed([_deserialise(current) if isinstance(current, Mapping) else None]) from exc
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        if any(reason.get("Code") == "TransactionConflict" for reason in reasons):
            raise TransientStepError(f"DynamoDB transaction conflict: {exc}") from exc
        if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
            raise ConditionFailed(
                [_reason_item(reason) for reason in reasons],
                [reason.get("Code") == "ConditionalCheckFailed" for reason in reasons],
            ) from exc
    if code in _TRANSIENT_CODES:
        raise TransientStepError(f"DynamoDB {code}: {exc}") from exc
    raise exc


def _reason_item(reason: Mapping[str, Any]) -> dict[str, Any] | None:
    item = reason.get("Item")
    return _deserialise(item) if item is not None else None


def _deserialise(item: Mapping[str, Any]) -> dict[str, Any]:
    """A raw DynamoDB item ({"S": ...}) as plain Python values."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return plain({key: deserializer.deserialize(value) for key, value in item.items()})  # type: ignore[no-any-return]


# --- Operations -------------------------------------------------------------------
def get(table_name: str, key: dict[str, str]) -> dict[str, Any] | None:
    try:
        response = table(table_name).get_item(Key=key, ConsistentRead=True)
    except Exception as exc:
        _raise_translated(exc)
        raise
    item = response.get("Item")
    return plain(item) if item is not None else None


def put(
    table_name: str,
    item: dict[str, Any],
    *,
    condition: str | None = None,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> None:
    kwargs: dict[str, Any] = {"Item": item}
    if condition:
        kwargs["ConditionExpression"] = condition
        kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if values:
        kwargs["ExpressionAttributeValues"] = values
    try:
        table(table_name).put_item(**kwargs)
    except Exception as exc:
        _raise_translated(exc)
        raise


def update(
    table_name: str,
    key: dict[str, str],
    expression: str,
    *,
    condition: str | None = None,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    returning: str = "ALL_NEW",
) -> dict[str, Any]:
    """Update an item; returns the item as it is afterwards (``returning``: what
    DynamoDB sends back: ALL_NEW, UPDATED_NEW or NONE)."""
    kwargs: dict[str, Any] = {"Key": key, "UpdateExpression": expression, "ReturnValues": returning}
    if condition:
        kwargs["ConditionExpression"] = condition
        kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if values:
        kwargs["ExpressionAttributeValues"] = values
    try:
        response = table(table_name).update_item(**kwargs)
    except Exception as exc:
        _raise_translated(exc)
        raise
    return plain(response.get("Attributes", {}))  # type: ignore[no-any-return]


def transact(operations: list[dict[str, Any]]) -> None:
    """All-or-nothing writes. Each operation is ``{"Put"|"Update"|"ConditionCheck": {...}}``
    with a logical ``table`` instead of ``TableName``."""
    items = []
    for operation in operations:
        ((kind, body),) = operation.items()
        body = dict(body)
        body["TableName"] = config.table_name(body.pop("table"))
        if "ConditionExpression" in body:
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        items.append({kind: body})
    try:
        resource().meta.client.transact_write_items(TransactItems=items)
    except Exception as exc:
        _raise_translated(exc)
        raise


def query(table_name: str, **kwargs: Any) -> list[dict[str, Any]]:
    """All pages of a Query. ``kwargs`` are boto3's (KeyConditionExpression, ...)."""
    return list(_paginate(table(table_name).query, ConsistentRead=True, **kwargs))


def scan(table_name: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    return _paginate(table(table_name).scan, ConsistentRead=True, **kwargs)


def _paginate(operation: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    while True:
        try:
            response = operation(**kwargs)
        except Exception as exc:
            _raise_translated(exc)
            raise
        for item in response.get("Items", []):
            yield plain(item)
        if "LastEvaluatedKey" not in response:
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def batch_put(table_name: str, items: list[dict[str, Any]]) -> None:
    """Write many items in batches of 25, resending what DynamoDB leaves unprocessed."""
    with table(table_name).batch_writer() as writer:
        for item in items:
            writer.put_item(Item=item)
