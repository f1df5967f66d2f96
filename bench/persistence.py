"""What keeping the embedded state on disk costs (local/persistence.py): the same bookings
run one after another in this process with the state in memory only, with the journal,
and with the journal fsynced, in alternating rounds so the machine's other load falls on
each alike; per booking the process CPU (all threads), the wall time POST -> terminal,
the DynamoDB requests and the journal lines and bytes; then how long a restart takes to
restore the state those bookings left.

    python -m bench.persistence [--bookings 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import OUT_DIR, demo_customer, use_local_stage_in_process, wait_for_execution_threads

VARIANTS = ("memory", "journal", "journal+fsync")


def _run(variant: str, bookings: int, directory: Path) -> dict[str, Any]:
    import app as app_module
    from chalicelib import api, booking_record
    from local import hooks, persistence
    from local.embedded import EmbeddedAws
    from ops.seed import DEMO_ROUTES, seed_demo

    shutil.rmtree(directory, ignore_errors=True)
    stack = EmbeddedAws(app_module.app).start()
    store = None
    if variant != "memory":
        store = persistence.StateStore(directory, fsync=variant.endswith("fsync"))
        store.acquire()
        store.restore(persistence.dynamodb_backend())
    seed_demo()  # journaled too: a restart restores it
    requests = [0]
    hooks.observe_dynamodb(lambda handler, response: requests.__setitem__(0, requests[0] + 1))
    lines, written, spent = (store.lines_written, store.bytes_written, store.cpu_seconds) if store else (0, 0, 0.0)
    ids = []
    cpu, wall = time.process_time(), time.perf_counter()
    for number in range(bookings):
        loyalty_id = f"FF{number % 10 + 1:04d}"
        body = {"flight_number": DEMO_ROUTES[number % len(DEMO_ROUTES)][0], "cabin": "ECONOMY",
                "passenger": {"first_name": "Bench", "last_name": "Mark"}, "loyalty_id": loyalty_id,
                "points_to_redeem": 1_000, "payment": {"card_token": "tok_visa"}}
        response, _ = api.start_booking(json.dumps(body), {}, demo_customer(loyalty_id))
        wait_for_execution_threads()
        ids.append(response["booking_id"])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    statuses = {booking_record.get(booking_id)["status"] for booking_id in ids}
    result = {
        "variant": variant, "bookings": bookings, "statuses": sorted(statuses),
        "cpu_ms_per_booking": 1000 * cpu / bookings, "wall_ms_per_booking": 1000 * wall / bookings,
        "requests_per_booking": requests[0] / bookings,
        "journal_lines_per_booking": ((store.lines_written - lines) / bookings) if store else 0.0,
        "journal_bytes_per_booking": ((store.bytes_written - written) / bookings) if store else 0.0,
        # The journal's own CPU, measured inside it (thread time): free of the noise of
        # other threads and processes that the CPU totals carry.
        "journal_cpu_ms_per_booking": (1000 * (store.cpu_seconds - spent) / bookings) if store else 0.0,
    }
    if store is not None:
        store.close()
    stack.stop()
    if store is not None:
        # A restart on that state: fold the journal into a snapshot and load it.
        stack = EmbeddedAws(app_module.app).start()
        again = persistence.StateStore(directory)
        again.acquire()
        restored = again.restore(persistence.dynamodb_backend())
        result |= {"restore_items": restored.items, "restore_s": restored.seconds,
                   "snapshot_bytes": (directory / persistence.SNAPSHOT).stat().st_size}
        again.close()
        stack.stop()
    shutil.rmtree(directory, ignore_errors=True)
    return result


def measure(bookings: int = 40, rounds: int = 3) -> dict[str, Any]:
    use_local_stage_in_process()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    _run("memory", 5, OUT_DIR / "state-warmup")  # imports, first parses
    for _ in range(rounds):
        for variant in VARIANTS:
            runs[variant].append(_run(variant, bookings, OUT_DIR / f"state-{variant}"))
    summary: dict[str, Any] = {}
    for variant, results in runs.items():
        summary[variant] = {key: statistics.median(result[key] for result in results)
                            for key, value in results[0].items() if isinstance(value, (int, float))}
        summary[variant]["statuses"] = sorted({status for result in results for status in result["statuses"]})
    memory = summary["memory"]
    for variant in VARIANTS[1:]:
        summary[variant]["cpu_ratio_to_memory"] = summary[variant]["cpu_ms_per_booking"] / memory["cpu_ms_per_booking"]
        summary[variant]["wall_ratio_to_memory"] = (summary[variant]["wall_ms_per_booking"]
                                                    / memory["wall_ms_per_booking"])
    return {"bookings_per_run": bookings, "rounds": rounds, "median_of_rounds": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookings", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = measure(args.bookings, args.rounds)
    (OUT_DIR / "persistence.json").write_text(json.dumps(result, indent=2))
    print(f"{'variant':<15} {'CPU ms/booking':>15} {'x memory':>9} {'journal CPU ms':>15} {'wall ms':>9} "
          f"{'requests':>9} {'lines':>6} {'bytes':>7} {'restore':>18}")
    for variant, figures in result["median_of_rounds"].items():
        restore = (f"{figures['restore_items']:.0f} items {figures['restore_s']:.2f} s"
                   if "restore_s" in figures else "")
        print(f"{variant:<15} {figures['cpu_ms_per_booking']:>15.1f} {figures.get('cpu_ratio_to_memory', 1.0):>9.3f} "
              f"{figures['journal_cpu_ms_per_booking']:>15.2f} {figures['wall_ms_per_booking']:>9.1f} "
              f"{figures['requests_per_booking']:>9.1f} {figures['journal_lines_per_booking']:>6.1f} "
              f"{figures['journal_bytes_per_booking']:>7.0f} {restore:>18}")
    print(f"written: {(OUT_DIR / 'persistence.json')}")


if __name__ == "__main__":
    main()
