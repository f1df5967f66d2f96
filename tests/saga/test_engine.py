"""The embedded engine's shortcuts change no outcome: sagas that retry and compensate,
run many at once, end exactly as they do when every execution parses its own program
and every state its JSONPaths (local/hooks.py: ProgramCache, the JSONPath cache)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto.stepfunctions.parser.asl.component.common.retry.max_attempts_decl import MaxAttemptsDecl
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.utils import long_uid

from chalicelib import booking_view, saga
from deploy import asl
from local import hooks
from tests.saga.conftest import execution, start
from tests.support import join_execution_threads, wait_for_status

pytestmark = pytest.mark.slow

FLIGHTS = ["SA101", "SA102", "SA201", "SA202", "SA301", "SA302", "SA401", "SA402", "SA501", "SA502"]
# A timeout the other sagas' AwardMiles cannot reach on a busy machine, and a hang past it.
TIMEOUT_STEP, TIMEOUT_SECONDS, HANG_SECONDS = "AwardMiles", 8, 10
# (simulate_failure, points_to_redeem): retried once (transient), compensated with a
# compensation retried to exhaustion (permanent), timed out (States.Timeout).
PLANS: list[tuple[dict[str, str], int]] = [
    ({"ReserveSeats": "transient"}, 0),
    ({"AuthorizePayment": "transient", "AwardMiles": "transient"}, 1_000),
    ({"AuthorizePayment": "permanent", "RefundPoints": "permanent"}, 1_000),
    ({"ConfirmBooking": "permanent", "ReleaseSeats": "transient"}, 500),
    ({TIMEOUT_STEP: "timeout"}, 700),
]
REPEATS = 6  # of each plan, all at once: several executions reach each retrier together


class RacyHeapKeys:
    """moto's EvalComponent.heap_key (check, then assign a new uid; pinned by
    tests/unit/test_hooks.py) with the retry counters' keys made to interleave as a
    busy machine lets them now and then: the first execution to find a MaxAttemptsDecl
    without a key waits (up to ``window`` seconds) for a second one to find it so too;
    the first then assigns its key and counts its attempt under it, and the second
    assigns its own a moment later, over the first's. A program shared before its keys
    are assigned then loses the first execution's count. When nobody else comes (a
    program's own execution, or keys assigned before sharing) it costs ``window``."""

    def __init__(self, window: float = 0.5, second_lag: float = 0.05) -> None:
        self.window = window
        self.second_lag = second_lag
        self._arrived: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    def heap_key(self, component: EvalComponent) -> str:
        if component._EvalComponent__heap_key is None:  # type: ignore[attr-defined]
            if isinstance(component, MaxAttemptsDecl):
                with self._lock:
                    partner = self._arrived.get(id(component))
                    first = partner is None
                    if partner is None:
                        partner = self._arrived[id(component)] = threading.Event()
                if first:
                    partner.wait(self.window)
                else:
                    partner.set()
                    time.sleep(self.second_lag)
            component._EvalComponent__heap_key = long_uid()  # type: ignore[attr-defined]
        return component._EvalComponent__heap_key  # type: ignore[attr-defined,no-any-return]


def _definition() -> str:
    definition = asl.load("booking")
    definition["States"][TIMEOUT_STEP]["TimeoutSeconds"] = TIMEOUT_SECONDS
    return json.dumps(definition)


def _outcome(booking_id: str) -> dict[str, Any]:
    """What a saga did, without ids and times: its end, each step's and compensation's
    status and attempts (step log), the states it entered and each task's attempts (history)."""
    view = booking_view.view(booking_id)
    history = saga.readable_history(saga.execution_arn(booking_id))
    return {
        "status": view["status"],
        "execution": execution(booking_id)["status"],
        "failed_step": view["failed_step"],
        "error": (view["error"] or {}).get("error"),
        "steps": [(step["name"], step["status"], step["attempts"]) for step in view["steps"]],
        "compensations": [(entry["name"], entry["status"], entry["attempts"]) for entry in view["compensations"]],
        "states": [line["state"] for line in history if line["type"].endswith("StateEntered")],
        "attempts": dict(Counter(line["state"] for line in history if "attempt" in line)),
    }


def _round(first_flight: int) -> list[dict[str, Any]]:
    """Every plan REPEATS times, all started at once; their outcomes in plan order."""
    bodies = [
        {"flight_number": FLIGHTS[(first_flight + index) % len(FLIGHTS)],
         "cabin": ("BUSINESS", "ECONOMY")[index % 2], "simulate_failure": plan,
         **({"loyalty_id": f"FF{index % 10 + 1:04d}", "points_to_redeem": points} if points else {})}
        for index, (plan, points) in enumerate(plan for plan in PLANS for _ in range(REPEATS))
    ]
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        booking_ids = list(pool.map(lambda body: start(**body), bodies))
    for booking_id in booking_ids:
        wait_for_status(booking_id, timeout=120)
    for _ in range(3):  # hung Lambdas outlive their task; let every thread end
        join_execution_threads(timeout=60)
    return [_outcome(booking_id) for booking_id in booking_ids]


def test_concurrent_sagas_end_the_same_with_shared_programs(
    aws_factory: Callable[[dict[str, str]], Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN 30 sagas started together that retry (transient faults), compensate (a
    permanent fault, a compensation failing every attempt) and time out, and executions
    that reach a retrier together for the first time interleave there (RacyHeapKeys)
    WHEN they run once with every execution parsing its own program (and every state its
    JSONPaths) and once sharing the cached ones
    THEN each ends exactly the same: status, error, step and compensation statuses and
    attempts, states entered and task attempts; and those are the definition's (one
    retry for a transient fault, 1 + MaxAttempts 5 for a compensation that always fails)."""
    monkeypatch.setenv("SIMULATED_HANG_SECONDS", str(HANG_SECONDS))
    # All at once (not queued by the gate): the more executions share the program at
    # the same moment, the more a race on it would show.
    monkeypatch.setenv(hooks.MAX_RUNNING_EXECUTIONS_ENV, str(len(PLANS) * REPEATS))
    monkeypatch.setattr(EvalComponent, "heap_key", property(RacyHeapKeys().heap_key))
    aws_factory({"booking": _definition()})

    with hooks.unpatched("parse", "jsonpath", "jsonpath_result"):
        parsing_each = _round(first_flight=0)
    parses_before = hooks.programs.parses
    sharing = _round(first_flight=5)

    # The round shared one program: the one CreateStateMachine's validation parsed.
    assert hooks.programs.parses == parses_before
    assert sharing == parsing_each
    by_plan = [sharing[index * REPEATS:(index + 1) * REPEATS] for index in range(len(PLANS))]
    assert all(outcome == outcomes[0] for outcomes in by_plan for outcome in outcomes)
    transient_seat, transient_pair, failing_compensation, failed_pivot, timed_out = (o[0] for o in by_plan)
    assert transient_seat["status"] == "CONFIRMED" and transient_seat["attempts"]["ReserveSeatsLeg"] == 2
    assert transient_pair["status"] == "CONFIRMED"
    assert (transient_pair["attempts"]["AuthorizePayment"], transient_pair["attempts"]["AwardMiles"]) == (2, 2)
    assert failing_compensation["status"] == "NEEDS_ATTENTION"
    assert failing_compensation["attempts"]["RefundPoints"] == 6
    assert failing_compensation["compensations"] == [("RefundPoints", "FAILED", 6), ("ReleaseSeats", "COMPENSATED", 1)]
    assert failed_pivot["status"] == "FAILED" and failed_pivot["attempts"]["ReleaseSeatsLeg"] == 2
    assert [name for name, _, _ in failed_pivot["compensations"]] == [
        "ReverseMiles", "VoidPayment", "RefundPoints", "ReleaseSeats"]
    assert timed_out["status"] == "FAILED" and timed_out["error"] == "States.Timeout"
    assert timed_out["failed_step"] == TIMEOUT_STEP and timed_out["attempts"][TIMEOUT_STEP] == 1
    assert [name for name, _, _ in timed_out["compensations"]] == [
        "ReverseMiles", "VoidPayment", "RefundPoints", "ReleaseSeats"]
