"""The only module that touches DynamoDB.

It owns the lazy client (created on first use, so tests and the embedded backend
start moto first), the key builders, the conversion between Python values and
DynamoDB's attribute values, and the translation of ``ClientError`` into this
project's errors. Domain modules pass expressions in and get plain Python values (ints,
not Decimals) back.

A low-level client, with boto3's TypeSerializer/TypeDeserializer applied to the fields
that hold attribute values, rather than the resource's client: the resource converts by
walking every request and answer against the service model (and deep-copies every
request first), a tenth of a status poll's CPU in the embedded stack.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from chalicelib import config
from chalicelib.aws import Lazy
from chalicelib.errors import ConditionFailed, TransientStepError

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


def _build_client() -> Any:
    import boto3

    return boto3.client("dynamodb", region_name=config.region())


def _build_resource() -> Any:
    import boto3

    return boto3.resource("dynamodb", region_name=config.region())


#: The DynamoDB client every operation here uses, made on first use.
client = Lazy(_build_client)
#: The resource, for its batch writer only (seeding): boto3 already batches, resends
#: what DynamoDB leaves unprocessed and drops duplicate keys.
_resource = Lazy(_build_resource)


def reset() -> None:
    """Forget the client (tests and the embedded backend: after moto restarts)."""
    client.reset()
    _resource.reset()


# --- Keys: built here and nowhere else --------------------------------------------
def flight_key(flight_number: str) -> dict[str, str]:
    return {"flight_number": flight_number}


def seat_key(flight_number: str, seat: str) -> dict[str, str]:
    return {"flight_number": flight_number, "seat": seat}


def booking_key(booking_id: str) -> dict[str, str]:
    return {"booking_id": booking_id}


def customer_booking_key(customer_id: str, created_at: str, booking_id: str) -> dict[str, str]:
    """A booking's place in its customer's listing (the by_customer index's key, with the
    table's): where a page of ``query_page`` starts after."""
    return {"customer_id": customer_id, "created_at": created_at, "booking_id": booking_id}


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


def _build_codecs() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


#: boto3's (serializer, deserializer) of attribute values, made on first use.
_codecs = Lazy(_build_codecs)


def _wire(values: Mapping[str, Any]) -> dict[str, Any]:
    """Python values (an item, a key, ExpressionAttributeValues) as attribute values.
    Floats are refused (TypeError), as boto3 refuses them: money and points are ints."""
    serializer, _ = _codecs()
    return {name: serializer.serialize(value) for name, value in values.items()}


def _deserialise(item: Mapping[str, Any]) -> dict[str, Any]:
    """A raw DynamoDB item ({"S": ...}) as plain Python values."""
    _, deserializer = _codecs()
    return plain({key: deserializer.deserialize(value) for key, value in item.items()})  # type: ignore[no-any-return]


def _raise_translated(exc: Exception, labels: tuple[str, ...] = (ConditionFailed.SINGLE,)) -> None:
    """Raise ``exc`` as this project's error. ``labels`` name the parts of a
    transaction in order: DynamoDB reports failures by position, callers ask by name."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        raise exc
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        current = exc.response.get("Item")  # type: ignore[typeddict-item]
        item = _deserialise(current) if isinstance(current, Mapping) else None
        raise ConditionFailed({ConditionFailed.SINGLE: item}, frozenset({ConditionFailed.SINGLE})) from exc
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        if any(reason.get("Code") == "TransactionConflict" for reason in reasons):
            raise TransientStepError(f"DynamoDB transaction conflict: {exc}") from exc
        if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
            raise ConditionFailed(
                {label: _reason_item(reason) for label, reason in zip(labels, reasons, strict=False)},
                frozenset(label for label, reason in zip(labels, reasons, strict=False)
                          if reason.get("Code") == "ConditionalCheckFailed"),
            ) from exc
    if code in _TRANSIENT_CODES:
        raise TransientStepError(f"DynamoDB {code}: {exc}") from exc
    raise exc


def _reason_item(reason: Mapping[str, Any]) -> dict[str, Any] | None:
    item = reason.get("Item")
    return _deserialise(item) if item is not None else None


# --- Operations -------------------------------------------------------------------
def get(table_name: str, key: dict[str, str]) -> dict[str, Any] | None:
    try:
        response = client().get_item(TableName=config.table_name(table_name), Key=_wire(key), ConsistentRead=True)
    except Exception as exc:
        _raise_translated(exc)
        raise
    item = response.get("Item")
    return _deserialise(item) if item is not None else None


@dataclass(frozen=True)
class Read:
    """One item to read, named by the caller of ``get_many``; its owner builds it."""

    table: str
    key: dict[str, str]


_BATCH_TRIES = 5


def get_many(**reads: Read | None) -> dict[str, dict[str, Any] | None]:
    """Several items in one strongly consistent BatchGetItem, by name:
    ``get_many(flight=Read(...), seat=Read(...))`` -> ``{"flight": item or None, ...}``.
    A read given as None is answered None without asking. Each item costs what its own
    GetItem would (RRU); the request is one instead of one per item."""
    wanted = {name: read for name, read in reads.items() if read is not None}
    found: dict[str, dict[str, Any] | None] = dict.fromkeys(reads)
    if not wanted:
        return found
    request: dict[str, Any] = {}
    for read in wanted.values():
        keys = request.setdefault(config.table_name(read.table), {"Keys": [], "ConsistentRead": True})["Keys"]
        key = _wire(read.key)
        if key not in keys:  # BatchGetItem refuses the same key twice
            keys.append(key)
    items = _batch_get(request)
    for name, read in wanted.items():
        found[name] = next((item for table, item in items if table == config.table_name(read.table)
                            and all(item.get(field) == value for field, value in read.key.items())), None)
    return found


def _batch_get(request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every item of a BatchGetItem, asking again (with a short backoff) for any key
    DynamoDB left unprocessed; TransientStepError if some are still left."""
    items: list[tuple[str, dict[str, Any]]] = []
    for attempt in range(_BATCH_TRIES):
        try:
            response = client().batch_get_item(RequestItems=request)
        except Exception as exc:
            _raise_translated(exc)
            raise
        for table, table_items in response.get("Responses", {}).items():
            items += [(table, _deserialise(item)) for item in table_items]
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return items
        time.sleep(0.05 * 2**attempt)
    raise TransientStepError(f"DynamoDB left {sum(len(t['Keys']) for t in request.values())} keys unprocessed")


# --- Writes: one shape for a single write and for a part of a transaction ---------
# ``condition`` is a ConditionExpression; ``names`` and ``values`` its (and the update
# expression's) placeholders. A false condition raises ConditionFailed carrying the item
# as it was (ReturnValuesOnConditionCheckFailure), so callers need no read first.
@dataclass(frozen=True)
class Put:
    table: str
    item: dict[str, Any]
    condition: str | None = None
    names: dict[str, str] | None = None
    values: dict[str, Any] | None = None
    kind: ClassVar[str] = "Put"

    def fields(self) -> dict[str, Any]:
        return {"Item": _wire(self.item)}


@dataclass(frozen=True)
class Update:
    table: str
    key: dict[str, str]
    expression: str
    condition: str | None = None
    names: dict[str, str] | None = None
    values: dict[str, Any] | None = None
    kind: ClassVar[str] = "Update"

    def fields(self) -> dict[str, Any]:
        return {"Key": _wire(self.key), "UpdateExpression": self.expression}


@dataclass(frozen=True)
class Check:
    """A condition on an item that a transaction does not write."""

    table: str
    key: dict[str, str]
    condition: str
    names: dict[str, str] | None = None
    values: dict[str, Any] | None = None
    kind: ClassVar[str] = "ConditionCheck"

    def fields(self) -> dict[str, Any]:
        return {"Key": _wire(self.key)}


Write = Put | Update | Check


def _request(write: Write) -> dict[str, Any]:
    request = {"TableName": config.table_name(write.table), **write.fields()}
    if write.condition:
        request["ConditionExpression"] = write.condition
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if write.names:
        request["ExpressionAttributeNames"] = write.names
    if write.values:
        request["ExpressionAttributeValues"] = _wire(write.values)
    return request


def put(table_name: str, item: dict[str, Any], *, condition: str | None = None,
        names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> None:
    try:
        client().put_item(**_request(Put(table_name, item, condition, names, values)))
    except Exception as exc:
        _raise_translated(exc)
        raise


def update(table_name: str, key: dict[str, str], expression: str, *, condition: str | None = None,
           names: dict[str, str] | None = None, values: dict[str, Any] | None = None,
           returning: str = "ALL_NEW") -> dict[str, Any]:
    """Update an item; returns what DynamoDB sends back (``returning``: ALL_NEW,
    UPDATED_NEW or NONE)."""
    return apply(Update(table_name, key, expression, condition, names, values), returning=returning)


def apply(write: Update, *, returning: str = "ALL_NEW") -> dict[str, Any]:
    """Run an ``Update`` (as built for a transaction) as a single write."""
    try:
        response = client().update_item(**_request(write), ReturnValues=returning)
    except Exception as exc:
        _raise_translated(exc)
        raise
    return _deserialise(response.get("Attributes", {}))


def transact(**parts: Write) -> None:
    """All-or-nothing writes, each part named: ``transact(seat=Update(...), booking=Update(...))``.
    A false condition raises ConditionFailed naming the failed parts."""
    labels = tuple(parts)
    items = [{write.kind: _request(write)} for write in parts.values()]
    try:
        client().transact_write_items(TransactItems=items)
    except Exception as exc:
        _raise_translated(exc, labels)
        raise


def query(table_name: str, **kwargs: Any) -> list[dict[str, Any]]:
    """All pages of a Query. ``kwargs`` are the request's (KeyConditionExpression, ...),
    with ExpressionAttributeValues as Python values."""
    return list(_paginate(client().query, table_name, ConsistentRead=True, **kwargs))


def query_page(table_name: str, index: str, *, limit: int, after: dict[str, str] | None = None,
               newest_first: bool = False, **kwargs: Any) -> list[dict[str, Any]]:
    """One page of a Query of a global secondary index: at most ``limit`` items, starting
    after the item whose key is ``after``. Eventually consistent: an index has no strongly
    consistent reads (DynamoDB refuses ConsistentRead on one)."""
    kwargs.update(IndexName=index, Limit=limit, ScanIndexForward=not newest_first)
    if after is not None:
        kwargs["ExclusiveStartKey"] = _wire(after)
    try:
        response = client().query(**_read_request(table_name, kwargs))
    except Exception as exc:
        _raise_translated(exc)
        raise
    return [_deserialise(item) for item in response.get("Items", [])]


def scan(table_name: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    return _paginate(client().scan, table_name, ConsistentRead=True, **kwargs)


def _read_request(table_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    request = {"TableName": config.table_name(table_name), **kwargs}
    if "ExpressionAttributeValues" in request:
        request["ExpressionAttributeValues"] = _wire(request["ExpressionAttributeValues"])
    return request


def _paginate(operation: Any, table_name: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    request = _read_request(table_name, kwargs)
    while True:
        try:
            response = operation(**request)
        except Exception as exc:
            _raise_translated(exc)
            raise
        for item in response.get("Items", []):
            yield _deserialise(item)
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]  # already in the wire form


def batch_put(table_name: str, items: list[dict[str, Any]]) -> None:
    """Write many items in batches of 25, resending what DynamoDB leaves unprocessed."""
    with _resource().Table(config.table_name(table_name)).batch_writer() as writer:
        for item in items:
            writer.put_item(Item=item)
