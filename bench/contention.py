"""Contention in process: 100 buyers for the 12 FIRST seats of one flight, started
together through the domain API (as POST /bookings does) on the embedded stack, with
the forward tasks' TimeoutSeconds raised so that the queueing of one Python process
(moto serialises DynamoDB, the GIL the rest) does not turn into States.Timeout. What
is measured is the seat logic under contention: seats sold, who failed where.

bench/e2e.py runs the same crowd over HTTP against `chalice local` with the
definitions unchanged.

    python -m bench.contention
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import demo_customer, embedded_stack, wait_for_execution_threads
from chalicelib.vocabulary import TERMINAL_STATUSES, BookingStatus, SeatStatus

FLIGHT = "SA501"
TASK_TIMEOUT_SECONDS = 600


def patient_definition() -> str:
    from deploy import asl

    definition = asl.load("booking")
    for state in definition["States"].values():
        if state["Type"] == "Task" and "TimeoutSeconds" in state:
            state["TimeoutSeconds"] = TASK_TIMEOUT_SECONDS
    return json.dumps(definition)


def measure(buyers: int = 100) -> dict[str, Any]:
    from bench.common import use_local_stage_in_process

    use_local_stage_in_process()
    with embedded_stack(definitions={"booking": patient_definition()}):
        from chalicelib import api, booking_view, seats

        gate = threading.Barrier(buyers + 1)
        body = json.dumps({"flight_number": FLIGHT, "cabin": "FIRST", "payment": {"card_token": "tok_visa"},
                           "passenger": {"first_name": "Crowd", "last_name": "Buyer"}})

        def buy(_: int) -> str:
            gate.wait(timeout=60)
            response, _created = api.start_booking(body, {}, demo_customer())
            return str(response["booking_id"])

        with ThreadPoolExecutor(max_workers=buyers) as pool:
            futures = [pool.submit(buy, index) for index in range(buyers)]
            gate.wait(timeout=60)
            started = time.perf_counter()
            ids = [future.result() for future in futures]
        accepted_s = time.perf_counter() - started
        for _ in range(10):  # executions start threads of their own; join until none is left
            wait_for_execution_threads(timeout=TASK_TIMEOUT_SECONDS)
            views = [booking_view.view(booking_id) for booking_id in ids]
            if all(view["status"] in TERMINAL_STATUSES for view in views):
                break
        drain_s = time.perf_counter() - started
        seat_map = seats.seat_map(FLIGHT, cabin="FIRST")
    confirmed = [view.get("seat") for view in views if view["status"] == BookingStatus.CONFIRMED]
    failed_at = Counter(f"{view.get('failed_step')}:{(view.get('error') or {}).get('error')}"
                        for view in views if view["status"] != BookingStatus.CONFIRMED)
    return {
        "buyers": buyers,
        "task_timeout_s": TASK_TIMEOUT_SECONDS,
        "cabin_seats": len(seat_map),
        "sold_seats": sum(1 for seat in seat_map if seat["status"] == SeatStatus.BOOKED),
        "held_seats": sum(1 for seat in seat_map if seat["status"] == SeatStatus.HELD),
        "confirmed": len(confirmed),
        "distinct_confirmed_seats": len(set(confirmed)),
        "statuses": dict(Counter(view["status"] for view in views)),
        "failed_at": dict(failed_at),
        "all_accepted_s": round(accepted_s, 2),
        "drain_s": round(drain_s, 2),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
