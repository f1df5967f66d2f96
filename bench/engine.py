"""What local/hooks.py's performance patches save, measured in one process and
alternated so that drift (a table that grows, a neighbour's load) hits both alike:

* CPU per booking: POST /bookings as the route does it (api.start_booking), the saga
  run by moto's engine to its end, one status poll; with the patches (parse each
  definition once, one Lambda client, one-partition Query) and with moto's own
  behaviour (hooks.unpatched), booking after booking.
* CPU per status poll (api.view_booking, what GET /bookings/{id} runs) with no other
  booking's step log and with 10,000 step-log items of other bookings, with and
  without the one-partition Query.

Process CPU (time.process_time: every thread, the engine's included), not wall time.

    python -m bench.engine
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from bench.common import demo_customer, embedded_stack, wait_for_execution_threads
from chalicelib.vocabulary import FORWARD_STEPS, BookingStatus

FLIGHTS = ["SA101", "SA102", "SA201", "SA202", "SA301", "SA302", "SA401", "SA402"]
QUERY_PATCHES = ("query", "all_items")


def _modes() -> dict[str, Callable[[], AbstractContextManager[None]]]:
    from local import hooks

    return {"patched": nullcontext, "moto": lambda: hooks.unpatched(*hooks.PERFORMANCE_PATCHES)}


def _cpu(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.process_time()
    result = action()
    return time.process_time() - started, result


def _one_booking(index: int) -> str:
    """POST, the saga to its end, one poll; returns the booking's final status."""
    from chalicelib import api

    loyalty_id = f"FF{index % 10 + 1:04d}"
    body = json.dumps({"flight_number": FLIGHTS[index % len(FLIGHTS)], "cabin": "ECONOMY",
                       "passenger": {"first_name": "Bench", "last_name": "Mark"},
                       "payment": {"card_token": "tok_visa"}, "loyalty_id": loyalty_id, "points_to_redeem": 1_000})
    customer = demo_customer(loyalty_id)
    response, _ = api.start_booking(body, {}, customer)
    wait_for_execution_threads()
    return str(api.view_booking(response["booking_id"], customer)["status"])


def cpu_per_booking(rounds: int = 16, warm_up: int = 3) -> dict[str, Any]:
    """Median CPU ms per booking in each mode, ``rounds`` bookings each, alternating."""
    modes = _modes()
    samples: dict[str, list[float]] = {name: [] for name in modes}
    with embedded_stack():
        index = 0
        for round_ in range(warm_up + rounds):
            for name, mode in (modes.items() if round_ % 2 else reversed(modes.items())):
                with mode():
                    cpu, status = _cpu(functools.partial(_one_booking, index))
                index += 1
                if status != BookingStatus.CONFIRMED:
                    raise RuntimeError(f"a {name} booking ended {status}")
                if round_ >= warm_up:
                    samples[name].append(cpu * 1000)
    medians = {name: round(statistics.median(values), 1) for name, values in samples.items()}
    return {
        "bookings_per_mode": rounds,
        "cpu_ms_median": medians,
        "cpu_ms_all": {name: [round(value, 1) for value in values] for name, values in samples.items()},
        "ratio_patched_to_moto": round(medians["patched"] / medians["moto"], 2),
    }


def _other_bookings_step_log(template: list[dict[str, Any]], count: int) -> Iterator[dict[str, Any]]:
    """``count`` step-log items of other bookings, shaped as the real booking's."""
    for index in range(count):
        item = dict(template[index % len(template)])
        item["booking_id"] = f"other-{index // len(template):06d}"
        yield item


def poll_cpu(polls: int = 40, other_items: int = 10_000) -> dict[str, Any]:
    """Median CPU ms of one poll with 0 and ``other_items`` other step-log items."""
    from chalicelib import api, db
    from local import hooks

    modes: dict[str, Callable[[], AbstractContextManager[None]]] = {
        "patched": nullcontext, "moto": lambda: hooks.unpatched(*QUERY_PATCHES)}
    results: dict[str, dict[str, float]] = {name: {} for name in modes}
    with embedded_stack():
        customer = demo_customer("FF0001")
        body = json.dumps({"flight_number": "SA101", "cabin": "ECONOMY", "loyalty_id": "FF0001",
                           "points_to_redeem": 1_000, "payment": {"card_token": "tok_visa"},
                           "passenger": {"first_name": "Bench", "last_name": "Mark"}})
        booking_id = api.start_booking(body, {}, customer)[0]["booking_id"]
        wait_for_execution_threads()
        own = db.query("step_log", KeyConditionExpression="booking_id = :id",
                       ExpressionAttributeValues={":id": booking_id})
        for label, size in (("0", 0), (str(other_items), other_items)):
            if size:
                db.batch_put("step_log", list(_other_bookings_step_log(own, size)))
            samples: dict[str, list[float]] = {name: [] for name in modes}
            for _ in range(3):  # warm-up
                api.view_booking(booking_id, customer)
            for round_ in range(polls):
                for name, mode in (modes.items() if round_ % 2 else reversed(modes.items())):
                    with mode():
                        cpu, view = _cpu(lambda: api.view_booking(booking_id, customer))
                    samples[name].append(cpu * 1000)
                    assert view["status"] == BookingStatus.CONFIRMED and len(view["steps"]) == len(FORWARD_STEPS)
            for name, values in samples.items():
                results[name][label] = round(statistics.median(values), 2)
        items = sum(1 for _ in db.scan("step_log"))
    return {
        "polls_per_point": polls,
        "step_log_items_at_end": items,
        "cpu_ms_median": results,
        "ratio_10k_to_0": {name: round(points[str(other_items)] / points["0"], 2) for name, points in results.items()},
    }


def measure() -> dict[str, Any]:
    from local import hooks

    return {"booking": cpu_per_booking(), "poll": poll_cpu(), "patches": list(hooks.PERFORMANCE_PATCHES)}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
