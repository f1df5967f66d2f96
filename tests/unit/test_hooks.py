"""The embedded backend bends moto at three points; if a moto upgrade moves one, these
fail loudly instead of the saga silently not running."""

from __future__ import annotations

import inspect

import moto
from moto.awslambda.models import LambdaFunction
from moto.dynamodb.responses import DynamoHandler
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl


def test_moto_is_the_pinned_version() -> None:
    assert moto.__version__ == "5.2.5", "re-check local/hooks.py before moving moto"


def test_lambda_invocation_has_one_entry_point() -> None:
    parameters = list(inspect.signature(LambdaFunction._invoke_lambda).parameters)
    assert parameters == ["self", "event"]
    assert "self._invoke_lambda(event=body)" in inspect.getsource(LambdaFunction.invoke)


def test_dynamodb_requests_go_through_call_action() -> None:
    assert callable(DynamoHandler.call_action)


def test_retry_waits_sleep_through_the_time_module() -> None:
    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl)


def test_transactions_back_up_whole_tables_through_the_module_copy() -> None:
    """The hook replaces exactly this backup; if moto changes how it rolls back, re-check."""
    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend

    source = inspect.getsource(DynamoDBBackend.transact_write_items)
    assert "copy.deepcopy(\n                    self.tables[table_name]" in source
    assert "self.tables[table_name] = original_table_state[table_name]" in source
    assert callable(dynamodb_models.copy.deepcopy)


def test_a_failed_transaction_still_changes_nothing(aws: object) -> None:
    """GIVEN a transaction whose first operations would succeed (a new item, an update)
    and whose last condition fails WHEN it runs on the embedded backend THEN none of it
    is applied, as on AWS."""
    import pytest

    from chalicelib import db
    from chalicelib.errors import ConditionFailed

    before = db.get("seats", db.seat_key("SA101", "1A"))
    with pytest.raises(ConditionFailed) as raised:
        db.transact(
            payment=db.Put("payments", {"booking_id": "new", "status": "CAPTURED", "amount": 1}),
            seat=db.Update("seats", db.seat_key("SA101", "1A"), "SET #s = :held", names={"#s": "status"},
                           values={":held": "HELD"}),
            other_seat=db.Check("seats", db.seat_key("SA101", "2A"), condition="attribute_not_exists(seat)"),
        )
    assert raised.value.failed == {"other_seat"}  # reported by name, not position
    assert db.get("payments", db.payment_key("new")) is None
    assert db.get("seats", db.seat_key("SA101", "1A")) == before
