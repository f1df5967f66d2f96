"""Starting and describing saga executions (the Step Functions client, created lazily)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import clock, config
from chalicelib.aws import Lazy
from chalicelib.vocabulary import ExecutionStatus, SagaKind


def _build_client() -> Any:
    import boto3

    return boto3.client("stepfunctions", region_name=config.region())


#: The Step Functions client, made on first use.
client = Lazy(_build_client)
reset = client.reset


# A booking has at most two executions, named after it: the booking saga and, once it
# is cancelled, the cancellation saga (SagaKind). Their ARNs are derived, never stored.


def state_machine_arn(kind: str) -> str:
    return config.booking_state_machine_arn() if kind == SagaKind.BOOKING else config.cancellation_state_machine_arn()


def _start_arn(kind: str) -> str:
    """Where executions start: the stack's alias when it has one, else the machine."""
    alias_env = (config.BOOKING_STATE_MACHINE_ALIAS_ENV if kind == SagaKind.BOOKING
                 else config.CANCELLATION_STATE_MACHINE_ALIAS_ENV)
    return config.state_machine_alias_arn(alias_env) or state_machine_arn(kind)


def execution_name(booking_id: str, kind: str = SagaKind.BOOKING) -> str:
    return booking_id if kind == SagaKind.BOOKING else f"{booking_id}-cancel"


def execution_arn(booking_id: str, kind: str = SagaKind.BOOKING) -> str:
    machine = state_machine_arn(kind)
    return f"{machine.replace(':stateMachine:', ':execution:')}:{execution_name(booking_id, kind)}"


def start(booking_id: str, kind: str, execution_input: dict[str, Any]) -> str:
    """Start the booking's execution of ``kind`` (names are unique: at most one each).
    Started on an alias, its ARN is still the machine's (execution:<machine>:<name>)."""
    response = client().start_execution(
        stateMachineArn=_start_arn(kind), name=execution_name(booking_id, kind),
        input=json.dumps(execution_input),
    )
    return str(response["executionArn"])


def describe(booking_id: str, kind: str = SagaKind.BOOKING) -> dict[str, Any] | None:
    """The booking's execution of ``kind``, or None when there is none."""
    try:
        return client().describe_execution(executionArn=execution_arn(booking_id, kind))  # type: ignore[no-any-return]
    except client().exceptions.ExecutionDoesNotExist:
        return None


def is_running(booking_id: str, kind: str = SagaKind.BOOKING) -> bool:
    described = describe(booking_id, kind)
    return described is not None and described["status"] == ExecutionStatus.RUNNING


def raw_history(execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = client().get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def readable_history(execution_arn: str) -> list[dict[str, Any]]:
    """The audit trail: one line per event, with the state it concerns, the error and
    cause of a failure, and the attempt number of each task scheduling (retries). An event
    of a Map's iteration (one leg of ReserveSeats, say) also names its ``leg``: iterations
    run side by side, so their states and attempts are told apart by it (an event belongs
    to the iteration of the event before it)."""
    lines: list[dict[str, Any]] = []
    iteration_of: dict[int, int | None] = {}
    current_state: dict[int | None, str | None] = {}
    attempts: dict[tuple[str, int | None], int] = {}
    for event in raw_history(execution_arn):
        details = _details(event)
        kind = event["type"]
        if kind == "MapIterationStarted":
            leg = details.get("index")
        elif kind.startswith("MapState"):  # the Map itself, not one of its iterations
            leg = None
        else:
            leg = iteration_of.get(event.get("previousEventId") or 0)
        iteration_of[event["id"]] = leg
        if "name" in details and kind.endswith(("StateEntered", "StateExited")):
            current_state[leg] = details["name"]
        state = current_state.get(leg) if leg is not None else current_state.get(None)
        line: dict[str, Any] = {
            "id": event["id"],
            "timestamp": clock.api_time(event["timestamp"]),
            "type": kind,
            "state": details.get("name", state),
        }
        if leg is not None:
            line["leg"] = leg
        if kind == "TaskScheduled" or kind == "LambdaFunctionScheduled":
            key = (state or "", leg)
            attempts[key] = attempts.get(key, 0) + 1
            line["attempt"] = attempts[key]
            if line["attempt"] > 1:
                line["retry"] = True
        for key_name in ("error", "cause"):
            if key_name in details:
                line[key_name] = details[key_name]
        lines.append(line)
    return lines
