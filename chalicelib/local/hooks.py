"""The two places where moto is bent to behave like AWS for this project.

1. Lambda: moto would run a function in Docker. ``LambdaFunction._invoke_lambda(self,
   event)`` returning ``(payload_json, errored, logs)`` is its single entry point; we
   route it to the handler registered in process. An error becomes the payload
   ``{"errorType": <exception class name>, "errorMessage": ...}``, which moto's Step
   Functions engine turns into the error name Retry and Catch match, as AWS does.
2. DynamoDB: AWS applies each request (a conditional write, a transaction) atomically.
   moto's backend has no lock, so two threads could both pass the same condition; we
   serialise DynamoDB requests, which is what makes "never sold twice" testable here.

tests/unit/test_hooks.py fails loudly if moto moves either target.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import types
import uuid
from collections.abc import Callable
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.dynamodb.responses import DynamoHandler

Handler = Callable[[dict[str, Any], Any], Any]

_handlers: dict[str, Handler] = {}
_originals: dict[str, Any] = {}
_dynamodb_lock = threading.RLock()


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


def _serialised_call_action(self: DynamoHandler) -> Any:
    with _dynamodb_lock:
        return _originals["dynamodb"](self)


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
        LambdaFunction._invoke_lambda = _invoke_in_process  # type: ignore[method-assign,assignment]
    if "dynamodb" not in _originals:
        _originals["dynamodb"] = DynamoHandler.call_action
        DynamoHandler.call_action = _serialised_call_action  # type: ignore[method-assign]


def uninstall() -> None:
    if "lambda" in _originals:
        LambdaFunction._invoke_lambda = _originals.pop("lambda")  # type: ignore[method-assign]
    if "dynamodb" in _originals:
        DynamoHandler.call_action = _originals.pop("dynamodb")  # type: ignore[method-assign]
    _handlers.clear()
