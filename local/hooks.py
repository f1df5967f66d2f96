"""The two places where moto is bent to behave like AWS for this project.

1. Lambda: moto would run a function in Docker. ``LambdaFunction._invoke_lambda(self,
   event)`` returning ``(payload_json, errored, logs)`` is its single entry point; we
   route it to the handler registered in process. An error becomes the payload
   ``{"errorType": <exception class name>, "errorMessage": ...}``, which moto's Step
   Functions engine turns into the error name Retry and Catch match, as AWS does.
2. DynamoDB: AWS applies each request (a conditional write, a transaction) atomically.
   moto's backend has no lock, so two threads could both pass the same condition; we
   serialise DynamoDB requests, which is what makes "never sold twice" testable here.
   Observers registered with ``observe_dynamodb`` (local/persistence.py's journal) see
   each request and its answer inside that lock.

3. DynamoDB transactions: before each TransactWriteItems moto deep-copies every table
   the transaction touches, to roll back on failure. That is O(table) per transaction
   (the 1,620-seat table, the ever-growing bookings table) where AWS is O(items), and
   it made local bookings slower the longer the server ran. We back up only the items
   the transaction touches and restore those on failure: the same all-or-nothing
   result, at the cost of the items themselves.

tests/unit/test_hooks.py fails loudly if moto moves any target.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import traceback
import types
import uuid
from collections.abc import Callable
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.awslambda.models import LambdaFunction
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

Handler = Callable[[dict[str, Any], Any], Any]

_handlers: dict[str, Handler] = {}
_originals: dict[str, Any] = {}
_dynamodb_lock = threading.RLock()
_dynamodb_observers: list[Callable[[DynamoHandler, Any], None]] = []


class LocalLambdaContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    def __init__(self, function: LambdaFunction) -> None:
        self.function_name = function.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.function_arn
        self.memory_limit_in_mb = int(function.memory_size or 128)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _invoke_in_process(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    handler = _handlers.get(self.function_name)
    if handler is None:
        return json.dumps({
            "errorType": "ResourceNotFoundException",
            "errorMessage": f"no in-process handler for {self.function_name}",
        }), True, ""
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    try:
        result = handler(event or {}, LocalLambdaContext(self))
    except Exception as exc:  # the Lambda runtime reports any exception the same way
        payload = {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)[-3:],
        }
        return json.dumps(payload), True, ""
    return json.dumps(result), False, ""


def dynamodb_lock() -> threading.RLock:
    """The lock every DynamoDB request holds (tests read moto's storage under it)."""
    return _dynamodb_lock


def _serialised_call_action(self: DynamoHandler) -> Any:
    with _dynamodb_lock:
        response = _originals["dynamodb"](self)
        # Inside the lock and before the caller hears of it: an observer (the journal of
        # local/persistence.py) sees every request in the order it was applied, and has
        # recorded it before anyone can act on the answer.
        for observe in _dynamodb_observers:
            observe(self, response)
        return response


def observe_dynamodb(observer: Callable[[DynamoHandler, Any], None]) -> None:
    """Call ``observer(handler, (status, headers, body))`` after every DynamoDB request,
    under the lock (until ``uninstall``)."""
    _dynamodb_observers.append(observer)


class _CopyWithoutTableBackups:
    """moto.dynamodb.models' ``copy`` module, except that a whole Table is not deep-copied
    (transact_write_items' backup; ours backs up the touched items instead)."""

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _touched_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    touched = []
    for entry in transact_items:
        for kind, operation in entry.items():
            table = backend.tables.get(operation.get("TableName"))
            if table is None:
                continue
            if kind == "Put":
                key_names = [name for name in (table.hash_key_attr, table.range_key_attr) if name]
                key = {name: operation["Item"][name] for name in key_names if name in operation["Item"]}
            else:
                key = operation.get("Key", {})
            try:
                current = backend.get_item(table.name, key)
            except Exception:  # a malformed operation: moto's own validation reports it
                continue
            touched.append((table.name, key, copy.deepcopy(current)))
    return touched


def _transact_backing_up_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    touched = _touched_items(self, transact_items)
    try:
        _originals["transact"](self, transact_items)
    except Exception:
        for table_name, key, before in reversed(touched):
            if before is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.tables[table_name].put_item(before.to_json()["Attributes"])
        raise


def scale_retry_waits(factor: float) -> None:
    """Tests only: moto really sleeps between retries (IntervalSeconds x BackoffRate^n).
    Multiply those sleeps by ``factor`` so a suite exercising retries stays fast; the
    definition itself is unchanged."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    real_sleep = _originals.setdefault("retry_sleep", time.sleep)
    retrier_decl.time = types.SimpleNamespace(sleep=lambda seconds: real_sleep(seconds * factor))  # type: ignore[assignment]


def install(handlers: dict[str, Handler]) -> None:
    """Register handlers by function name and patch moto (idempotent)."""
    _handlers.clear()
    _handlers.update(handlers)
    if "lambda" not in _originals:
        _originals["lambda"] = LambdaFunction._invoke_lambda
        LambdaFunction._invoke_lambda = _invoke_in_process  # type: ignore[method-assign]
    if "dynamodb" not in _originals:
        _originals["dynamodb"] = DynamoHandler.call_action
        DynamoHandler.call_action = _serialised_call_action  # type: ignore[method-assign]
    if "transact" not in _originals:
        _originals["transact"] = DynamoDBBackend.transact_write_items
        _originals["copy_module"] = dynamodb_models.copy
        dynamodb_models.copy = _CopyWithoutTableBackups()  # type: ignore[assignment]
        DynamoDBBackend.transact_write_items = _transact_backing_up_items  # type: ignore[method-assign]


def uninstall() -> None:
    if "lambda" in _originals:
        LambdaFunction._invoke_lambda = _originals.pop("lambda")  # type: ignore[method-assign]
    if "dynamodb" in _originals:
        DynamoHandler.call_action = _originals.pop("dynamodb")  # type: ignore[method-assign]
    if "transact" in _originals:
        DynamoDBBackend.transact_write_items = _originals.pop("transact")  # type: ignore[method-assign]
        dynamodb_models.copy = _originals.pop("copy_module")
    _handlers.clear()
    _dynamodb_observers.clear()
