"""The embedded backend bends moto at three points; if a moto upgrade moves one, these
fail loudly instead of the saga silently not running."""

from __future__ import annotations

import inspect

import moto
from moto.awslambda.models import LambdaFunction
from moto.dynamodb.responses import DynamoHandler
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl


def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == "5.2.5", "re-check chalicelib/local/hooks.py before moving moto"


def test_lambda_invocation_has_one_entry_point() -> None:
    parameters = list(inspect.signature(LambdaFunction._invoke_lambda).parameters)
    assert parameters == ["self", "event"]
    assert "self._invoke_lambda(event=body)" in inspect.getsource(LambdaFunction.invoke)


def test_dynamodb_requests_go_through_call_action() -> None:
    assert callable(DynamoHandler.call_action)


def test_retry_waits_sleep_through_the_time_module() -> None:
    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl)
