"""`make bench`: every benchmark in turn, printed and written to docs/benchmarks.md
(with the machine and the date) and build/bench/results.json. Nothing is asserted.

    python -m bench.run [--skip e2e,orchestration,...] [--only suite --merge]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

from bench import coldstart, contention, cost, e2e, engine, inventory, orchestration, report, suite, throughput
from bench.common import OUT_DIR, PROJECT_DIR, machine

PARTS: dict[str, Callable[[], dict[str, Any]]] = {
    "throughput": throughput.measure,
    "e2e": e2e.run_all,
    "contention": contention.measure,
    "orchestration": orchestration.measure,
    "engine": engine.measure,
    "cost": cost.measure,
    "coldstart": coldstart.measure,
    "inventory": inventory.measure,
    "suite": suite.measure,  # last: it runs CI in a fresh clone, and nothing else meanwhile
}


def _keep(results: dict[str, Any]) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "results.json").write_text(json.dumps(results, indent=2, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: " + ", ".join(PARTS))
    parser.add_argument("--only", default="", help="comma-separated parts to run, the others skipped")
    parser.add_argument("--merge", action="store_true",
                        help="keep build/bench/results.json's other parts (their date and machine stay theirs)")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite docs/benchmarks.md from build/bench/results.json without measuring")
    args = parser.parse_args()
    if args.render_only:
        stored = json.loads((OUT_DIR / "results.json").read_text())
        (PROJECT_DIR / "docs" / "benchmarks.md").write_text(report.render(stored))
        print(report.summary(stored))
        return
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = (skip | only) - set(PARTS)
    if unknown:
        parser.error(f"no such part: {', '.join(sorted(unknown))} (parts: {', '.join(PARTS)})")
    if only:
        skip |= set(PARTS) - only
    results: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg()}
    merged = args.merge and (OUT_DIR / "results.json").exists()
    if merged:  # the earlier run's header stays; this one is noted as a later run of some parts
        this_run = {"parts": [name for name in PARTS if name not in skip], "date": results["machine"]["date"]}
        results = json.loads((OUT_DIR / "results.json").read_text())
        results.setdefault("later_runs", []).append(this_run)
    started = time.perf_counter()
    for name, part in PARTS.items():
        if name in skip:
            continue
        print(f"== {name}", flush=True)
        part_started = time.perf_counter()
        results[name] = part()
        results[name + "_seconds"] = round(time.perf_counter() - part_started, 1)
        print(f"   {name} done in {results[name + '_seconds']} s", flush=True)
        _keep(results)  # a part that fails later does not lose this one's figures
    if not merged:
        results["load_after"] = os.getloadavg()
        results["total_seconds"] = round(time.perf_counter() - started, 1)
    _keep(results)
    text = report.render(results)
    (PROJECT_DIR / "docs").mkdir(exist_ok=True)
    (PROJECT_DIR / "docs" / "benchmarks.md").write_text(text)
    print(report.summary(results))
    print(f"written: docs/benchmarks.md, {(OUT_DIR / 'results.json').relative_to(PROJECT_DIR)}")


if __name__ == "__main__":
    main()
