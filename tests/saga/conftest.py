"""Saga fixtures: start a booking through the domain API (as POST /bookings does) and
wait for the execution; read every table afterwards."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib import api, saga
from deploy import asl
from tests.support import booking_body, owner_of, wait_for_status

START_POINTS = 50_000


def start(**overrides: Any) -> str:
    body = booking_body(**overrides)
    body, created = api.start_booking(json.dumps(body), {}, owner_of(body))
    assert created
    return str(body["booking_id"])


def run(**overrides: Any) -> dict[str, Any]:
    """Start a booking and return its view once its execution has stopped."""
    booking_id = start(**overrides)
    wait_for_status(booking_id)
    execution(booking_id)
    return wait_for_status(booking_id)


def execution(booking_id: str, kind: str = "booking", timeout: float = 10.0) -> dict[str, Any]:
    """The execution once it has stopped (its last state may end it just after the
    booking reached its terminal status)."""
    deadline = time.monotonic() + timeout
    while True:
        described = saga.describe(booking_id, kind)
        assert described is not None, f"no {kind} execution for {booking_id}"
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.02)


def states_entered(booking_id: str) -> list[str]:
    return [event["stateEnteredEventDetails"]["name"] for event in saga.raw_history(saga.execution_arn(booking_id))
            if "stateEnteredEventDetails" in event]


def compensation_names(view: dict[str, Any]) -> list[str]:
    return [entry["name"] for entry in view["compensations"]]


def with_timeout(step: str, seconds: int) -> str:
    """statemachine.json with ``step``'s TimeoutSeconds set to ``seconds`` (the others
    keep theirs, so a slow machine cannot time them out by accident)."""
    definition = asl.load("booking")
    found = definition["States"][step]
    if found["Type"] == "Map":  # a task that runs per leg: its leg's task, in the item processor
        found = found["ItemProcessor"]["States"][f"{step}Leg"]
    found["TimeoutSeconds"] = seconds
    return json.dumps(definition)


@pytest.fixture
def short_timeout(aws_factory: Callable[[dict[str, str]], Any]) -> Callable[[str], Any]:
    """Start the stack with a 1-second timeout on one step (the injected hang lasts 2 s)."""
    return lambda step: aws_factory({"booking": with_timeout(step, 1)})
