"""Orchestration overhead: the five forward steps called directly in sequence (the
handlers of app.py, with the events the state machine would pass them, as
tests/functional/test_handlers.py does) against the same booking run by the state
machine in moto's engine, on the same embedded tables. Then where the time goes:
cProfile of every thread (bench/sampler.py), split into our code and moto's.

    python -m bench.orchestration
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from bench.common import demo_customer, embedded_stack, wait_for_execution_threads
from bench.sampler import ThreadProfiler
from chalicelib.vocabulary import FORWARD_STEPS, BookingStatus, SagaKind

# (app.py handler, ResultPath key) of each forward step, in the order the saga runs them.
FORWARD = [(step.function, step.result_key) for step in FORWARD_STEPS]
FLIGHTS = ["SA101", "SA102", "SA201", "SA202", "SA301", "SA302", "SA401", "SA402"]


def new_booking(index: int) -> tuple[dict[str, Any], Any]:
    """A PENDING booking and the state machine's input for it (as POST /bookings writes it)."""
    from chalicelib import api
    from chalicelib.models import execution_input
    from chalicelib.validation import parse_booking_request

    body = {"flight_number": FLIGHTS[index % len(FLIGHTS)], "cabin": "ECONOMY",
            "passenger": {"first_name": "Bench", "last_name": "Mark"}, "payment": {"card_token": "tok_visa"},
            "loyalty_id": f"FF{index % 10 + 1:04d}", "points_to_redeem": 1_000}
    request = parse_booking_request(body, fault_injection_allowed=True)
    booking, _ = api.open_booking(request, customer=demo_customer(request.loyalty_id), correlation_id=None,
                                  idempotency_key=None)
    return execution_input(booking, request), request


def run_direct(event: dict[str, Any]) -> float:
    """The five handlers in sequence; the event travels as JSON between them, as it does
    through Step Functions (ResultPath adds each result under its key)."""
    import app as app_module

    started = time.perf_counter()
    for name, result_key in FORWARD:
        result = getattr(app_module, name)(json.loads(json.dumps(event)), None)
        event[result_key] = result
    return time.perf_counter() - started


def run_state_machine(event: dict[str, Any]) -> float:
    from chalicelib import saga

    started = time.perf_counter()
    saga.start(event["booking_id"], SagaKind.BOOKING, event)
    wait_for_execution_threads()
    return time.perf_counter() - started


def check_confirmed(booking_id: str) -> None:
    from chalicelib import booking_record

    status = booking_record.get(booking_id)["status"]
    if status != BookingStatus.CONFIRMED:
        raise RuntimeError(f"booking {booking_id} ended {status}, not {BookingStatus.CONFIRMED}")


def measure(count: int = 12, profiled: int = 8) -> dict[str, Any]:
    direct: list[float] = []
    machine: list[float] = []
    with embedded_stack():
        for index in range(3):  # warm-up both paths (first-use imports, caches)
            event, _ = new_booking(index)
            run_direct(event)
            event, _ = new_booking(index)
            run_state_machine(event)
        for index in range(count):  # alternate, so drift hits both alike
            event, _ = new_booking(index)
            direct.append(run_direct(event))
            check_confirmed(event["booking_id"])
            event, _ = new_booking(index)
            machine.append(run_state_machine(event))
            check_confirmed(event["booking_id"])

        without_log = _direct_without_step_log(count)
        events = [new_booking(index)[0] for index in range(profiled)]  # setup, not profiled
        with ThreadProfiler() as direct_profile:
            for event in events:
                run_direct(event)
        events = [new_booking(index)[0] for index in range(profiled)]
        with ThreadProfiler() as machine_profile:
            for event in events:
                run_state_machine(event)
        sizes = table_sizes()
    direct_ms = statistics.median(direct) * 1000
    machine_ms = statistics.median(machine) * 1000
    return {
        "bookings": count,
        "direct_median_ms": round(direct_ms, 1),
        "state_machine_median_ms": round(machine_ms, 1),
        "ratio": round(machine_ms / direct_ms, 2),
        "overhead_ms": round(machine_ms - direct_ms, 1),
        "direct_without_step_log_median_ms": round(statistics.median(without_log) * 1000, 1),
        "profiled_bookings": profiled,
        "direct_profile": {**direct_profile.layers(), "top": direct_profile.top(12)},
        "state_machine_profile": {**machine_profile.layers(), "top": machine_profile.top(12),
                                  "hotspots": machine_profile.hotspots(),
                                  "top_cumulative": machine_profile.top(25, sort="cumtime")},
        "table_items_at_end": sizes,
    }


def _direct_without_step_log(count: int) -> list[float]:
    """What-if: the direct path with the step log's writes made no-ops (its part of the
    steps' transactions, step_log.transact, and the outcome written on its own,
    step_log.mark_finished), to price them."""
    from chalicelib import db, step_log

    def transact_without_the_log(result: dict[str, Any], **parts: Any) -> dict[str, Any]:
        db.transact(**parts)
        return result

    real = step_log.transact, step_log.mark_finished
    step_log.transact = transact_without_the_log  # type: ignore[assignment]
    step_log.mark_finished = lambda *args, **kwargs: True
    try:
        return [run_direct(new_booking(index)[0]) for index in range(count)]
    finally:
        step_log.transact, step_log.mark_finished = real  # type: ignore[assignment]


def table_sizes() -> dict[str, int]:
    """Items per table: moto copies every table a transaction touches, whole."""
    from chalicelib import db
    from chalicelib.schema import TABLES

    return {table.name: sum(1 for _ in db.scan(table.name)) for table in TABLES}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
