"""Throughput and latency over HTTP, this code against BASELINE's (the commit before the
work of issue 13), alternated in one run so that a neighbour's load or a warming machine
hits both alike.

Both servers run at once (`chalice local --stage local`, each from its own tree, state in
memory, demo data); an idle one costs next to nothing. Round after round, each level
(concurrency 1, 4 and 16, happy bookings) runs against one and then the other, the order
flipping every round. The client is bench.e2e's: one session per thread, signed in,
each booking POSTed and then polled every POLL_SECONDS to a terminal status, as the
figures of issue 13 were measured.

Per level and variant: bookings/s (median over rounds), the client's POST->CONFIRMED p50
(what a client polling that often sees) and the server's own (created_at to the commit of
ConfirmBooking, from the booking's view: no poll in it). Ratios are this code over the
baseline's, per round and their median.

    python -m bench.throughput [--baseline REV] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from bench import e2e
from bench.common import chalice_local, percentile, unpacked_commit
from chalicelib.vocabulary import CONFIRM_BOOKING, BookingStatus

BASELINE = "48f2cb2"  # main before issue 13's first commit (as bench.cost)
LEVELS = ((1, 24), (4, 40), (16, 48))  # (concurrency, bookings)
ROUNDS = 3


def _server_ms(view: dict[str, Any]) -> float | None:
    """created_at -> ConfirmBooking's finished_at, as the booking records them."""
    confirmed = [step.get("finished_at") for step in view.get("steps", []) if step.get("name") == CONFIRM_BOOKING.name]
    if not confirmed or not confirmed[0] or not view.get("created_at"):
        return None
    finished = datetime.fromisoformat(confirmed[0]).timestamp()
    return (finished - datetime.fromisoformat(view["created_at"]).timestamp()) * 1000


def _level(client: e2e.Client, concurrency: int, count: int) -> dict[str, Any]:
    bodies = [e2e.happy_body(index) for index in range(count)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(client.book, bodies))
    summary = e2e.summarise(results, time.perf_counter() - started, concurrency, "happy")
    # The view that showed CONFIRMED holds ConfirmBooking's entry: it commits with the status.
    server_ms = [_server_ms(result["view"]) for result in results if result["status"] == BookingStatus.CONFIRMED]
    summary["server_p50_ms"] = round(percentile([ms for ms in server_ms if ms is not None], 50), 1)
    return summary


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


def measure(baseline: str = BASELINE, rounds: int = ROUNDS) -> dict[str, Any]:
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {"this": {}, "baseline": {}}
    with unpacked_commit(baseline) as tree, chalice_local(project_dir=tree) as old, chalice_local() as new:
        clients = {"this": e2e.Client(new.url), "baseline": e2e.Client(old.url)}
        for client in clients.values():
            for index in range(3):  # warm-up: first-call imports and caches in each server
                client.book(e2e.happy_body(index))
        for round_ in range(rounds):
            for concurrency, count in LEVELS:
                order = ("baseline", "this") if round_ % 2 == 0 else ("this", "baseline")
                for variant in order:
                    result = _level(clients[variant], concurrency, count)
                    runs[variant].setdefault(concurrency, []).append(result)
                    print(f"  round {round_} c={concurrency:<2} {variant:8} {result['confirmed_per_s']:6.2f} "
                          f"bookings/s  p50 {result['p50_ms']:7.1f} ms (server {result['server_p50_ms']:7.1f}) "
                          f"{result['statuses']}", flush=True)
    levels = []
    for concurrency, count in LEVELS:
        this, before = runs["this"][concurrency], runs["baseline"][concurrency]
        ratios = [mine["confirmed_per_s"] / theirs["confirmed_per_s"]
                  for mine, theirs in zip(this, before, strict=True) if theirs["confirmed_per_s"]]
        levels.append({
            "concurrency": concurrency,
            "bookings": count,
            "this": {key: _median([run[key] for run in this])
                     for key in ("confirmed_per_s", "p50_ms", "server_p50_ms", "p95_ms")},
            "baseline": {key: _median([run[key] for run in before])
                         for key in ("confirmed_per_s", "p50_ms", "server_p50_ms", "p95_ms")},
            "throughput_ratio_per_round": [round(ratio, 2) for ratio in ratios],
            "throughput_ratio": _median(ratios),
            "statuses": {"this": [run["statuses"] for run in this], "baseline": [run["statuses"] for run in before]},
        })
    return {"baseline": baseline, "rounds": rounds, "poll_s": e2e.POLL_SECONDS, "levels": levels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=BASELINE, help=f"commit to compare with (default {BASELINE})")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    print(json.dumps(measure(args.baseline, args.rounds), indent=2))


if __name__ == "__main__":
    main()
