"""Starting and describing saga executions (the Step Functions client, created lazily)."""

from __future__ import annotations

import json
import threading
from typing import Any

from chalicelib import config

_lock = threading.Lock()
_client: Any = None


def client() -> Any:
    global _client
    with _lock:
        if _client is None:
            import boto3

            _client = boto3.client("stepfunctions", region_name=config.region())
        return _client


def reset() -> None:
    global _client
    with _lock:
        _client = None


def start(state_machine_arn: str, name: str, execution_input: dict[str, Any]) -> str:
    """Start an execution named ``name`` (the booking id: at most one per name)."""
    response = client().start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input),
    )
    return str(response["executionArn"])


def describe(execution_arn: str) -> dict[str, Any]:
    return client().describe_execution(executionArn=execution_arn)  # type: ignore[no-any-return]


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
    cause of a failure, and the attempt number of each task scheduling (retries)."""
    lines: list[dict[str, Any]] = []
    current_state: str | None = None
    attempts: dict[str, int] = {}
    for event in raw_history(execution_arn):
        details = _details(event)
        kind = event["type"]
        if "name" in details and kind.endswith(("StateEntered", "StateExited")):
            current_state = details["name"]
        line: dict[str, Any] = {
            "id": event["id"],
            "timestamp": event["timestamp"].isoformat() if hasattr(event["timestamp"], "isoformat")
            else str(event["timestamp"]),
            "type": kind,
            "state": details.get("name", current_state),
        }
        if kind == "TaskScheduled" or kind == "LambdaFunctionScheduled":
            attempts[current_state or ""] = attempts.get(current_state or "", 0) + 1
            line["attempt"] = attempts[current_state or ""]
            if line["attempt"] > 1:
                line["retry"] = True
        for key in ("error", "cause"):
            if key in details:
                line[key] = details[key]
        lines.append(line)
    return lines
