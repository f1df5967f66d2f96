"""Inventory: seeding 453 flights x 162 seats into the embedded tables, and one
seat-map read (chalicelib.seats.seat_map), median of several.

    python -m bench.inventory
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.common import embedded_stack, median
from bench.sampler import ThreadProfiler

FLIGHTS = 453


def measure(reads: int = 9) -> dict[str, Any]:
    with embedded_stack(seed=False):
        from chalicelib import seats
        from ops.seed import inventory_flights, seed_flights

        flights = inventory_flights(FLIGHTS)
        started = time.perf_counter()
        seed_flights(flights)
        seed_s = time.perf_counter() - started
        times = []
        for index in range(reads):
            number = flights[index * 50 % FLIGHTS]["flight_number"]
            started = time.perf_counter()
            seat_map = seats.seat_map(number)
            times.append(time.perf_counter() - started)
            assert len(seat_map) == 162, len(seat_map)
        with ThreadProfiler() as profile:
            for index in range(3):
                seats.seat_map(flights[index * 50 % FLIGHTS]["flight_number"])
        layers = profile.layers()
        spots = profile.hotspots()
    seat_items = FLIGHTS * 162
    return {"flights": FLIGHTS, "seat_items": seat_items, "seed_s": round(seed_s, 2),
            "seed_items_per_s": round((seat_items + FLIGHTS) / seed_s), "seat_map_reads": reads,
            "seat_map_median_ms": round(median(times) * 1000, 1),
            "seat_map_runs_ms": [round(t * 1000, 1) for t in times],
            "seat_map_profile_cpu_s": layers["cpu_s"],
            "seat_map_moto_query_cpu_s": spots["moto Table.query (one partition, via local.hooks)"],
            "seat_map_moto_backend_pct": layers["layers"]["moto DynamoDB backend (embedded AWS)"]["pct"]}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
