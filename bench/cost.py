"""Cost per booking, from real executions in the embedded stack (each path run
REPEATS times: counts from the last run, durations the median): state transitions
(StateEntered events), Lambda invocations (LambdaFunctionScheduled), DynamoDB requests
and request units (every call counted by operation and by the function that made it,
sized from the item as moto stores it; POST /bookings, the saga step by step, and one
status poll apart), and measured handler durations; then the bill per million bookings
at the list prices in PRICES.

The same measurement is run against the code of BASELINE (``git archive`` of that
commit into a temporary directory, this interpreter, this file as the script), so the
figures before and after come from one meter.

    python -m bench.cost [--baseline REV | --no-baseline] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

# Only what bench.common also had at BASELINE: this file runs against that code too.
from bench.common import FORWARD_STEPS, demo_customer, embedded_stack, wait_for_execution_threads

# us-east-1 list prices, taken 2026-11-23 from memory and cross-checked against stored
# copies of the pricing pages (no live internet here): verify at the URLs before use.
PRICES = {
    "sfn_standard_per_transition": 0.025 / 1000,  # https://aws.amazon.com/step-functions/pricing/
    "sfn_express_per_request": 1.00 / 1_000_000,
    "sfn_express_per_gb_s": 0.00001667,  # first 1,000 GB-hours/month; 64 MB chunks, 100 ms rounding
    "lambda_per_request": 0.20 / 1_000_000,  # https://aws.amazon.com/lambda/pricing/ (x86)
    "lambda_per_gb_s": 0.0000166667,  # 1 ms billing granularity
    "ddb_per_wru": 0.625 / 1_000_000,  # https://aws.amazon.com/dynamodb/pricing/on-demand/ (Standard class)
    "ddb_per_rru": 0.125 / 1_000_000,
}
PRICE_SOURCES = {
    "Step Functions": "https://aws.amazon.com/step-functions/pricing/",
    "Lambda": "https://aws.amazon.com/lambda/pricing/",
    "DynamoDB on-demand": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
}
API = "APIHandler (POST /bookings)"
POLL = "APIHandler (GET /bookings/{id})"
REPEATS = 5
#: The commit before issue 13's request work: what the figures are compared with.
BASELINE = "48f2cb2"
PROJECT_DIR = Path(__file__).resolve().parent.parent


def _size(table: str, key: dict[str, Any]) -> int:
    """The item's size in bytes as moto computes it (attribute names + values), 0 if absent."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    from local.embedded import ACCOUNT_ID

    backend = dynamodb_backends[ACCOUNT_ID]["us-east-1"]
    moto_table = backend.get_table(table)
    hash_value = DynamoType(key[moto_table.hash_key_attr])
    range_value = DynamoType(key[moto_table.range_key_attr]) if moto_table.range_key_attr else None
    item = moto_table.get_item(hash_value, range_value)
    return int(item.size()) if item is not None else 0


def _partition_size(table: str, hash_attribute_value: dict[str, Any]) -> tuple[int, int]:
    """(items, bytes) under one partition key: our Queries have no sort-key condition."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    from local.embedded import ACCOUNT_ID

    moto_table = dynamodb_backends[ACCOUNT_ID]["us-east-1"].get_table(table)
    partition = moto_table.items.get(DynamoType(hash_attribute_value))
    if partition is None:
        return 0, 0
    items = list(partition.values()) if isinstance(partition, dict) else [partition]
    return len(items), sum(int(item.size()) for item in items)


def _key_of(table: str, item: dict[str, Any]) -> dict[str, Any]:
    from moto.dynamodb.models import dynamodb_backends

    from local.embedded import ACCOUNT_ID

    moto_table = dynamodb_backends[ACCOUNT_ID]["us-east-1"].get_table(table)
    names = [moto_table.hash_key_attr] + ([moto_table.range_key_attr] if moto_table.range_key_attr else [])
    return {name: item[name] for name in names}


def _write_targets(operation: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
    """(table, key, multiplier) of each item a write request touches."""
    if operation == "PutItem":
        return [(body["TableName"], _key_of(body["TableName"], body["Item"]), 1)]
    if operation in {"UpdateItem", "DeleteItem"}:
        return [(body["TableName"], body["Key"], 1)]
    if operation == "TransactWriteItems":
        targets = []
        for entry in body["TransactItems"]:
            ((_kind, op),) = entry.items()
            key = op["Key"] if "Key" in op else _key_of(op["TableName"], op["Item"])
            targets.append((op["TableName"], key, 2))  # transactional: 2x
        return targets
    return []


def _dynamodb_events() -> Any:
    """The event hooks of chalicelib.db's client: ``db.client()`` here; in the baseline's
    tree (``--baseline``, before db used a low-level client) the resource's client."""
    from chalicelib import db

    client = db.client() if hasattr(db, "client") else getattr(db, "resource")().meta.client  # noqa: B009
    return client.meta.events


class DynamoMeter:
    """Counts every DynamoDB request of the client chalicelib.db uses, by the function
    that made it (the Lambda being invoked in this thread, else the API handler)."""

    def __init__(self) -> None:
        self.current = threading.local()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.wru: Counter[str] = Counter()
        self.rru: Counter[str] = Counter()
        self.writes: list[dict[str, Any]] = []
        self._pending: dict[int, list[tuple[str, dict[str, Any], int, int]]] = {}

    def who(self) -> str:
        return getattr(self.current, "name", None) or API

    def install(self) -> None:
        events = _dynamodb_events()
        events.register("before-call.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def uninstall(self) -> None:
        events = _dynamodb_events()
        events.unregister("before-call.dynamodb", self._before)
        events.unregister("after-call.dynamodb", self._after)

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params.get("body") or b"{}")
        targets = [(table, key, mult, _size(table, key)) for table, key, mult in _write_targets(model.name, body)]
        self._pending[threading.get_ident()] = targets
        self.current.body = body

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        who, operation = self.who(), model.name
        body = getattr(self.current, "body", {})
        self.calls[(who, operation)] += 1
        targets = self._pending.pop(threading.get_ident(), [])
        if targets:
            failed = "Error" in parsed
            for table, key, multiplier, before in targets:
                after = _size(table, key)
                units = multiplier * max(1, math.ceil(max(before, after) / 1024))
                self.wru[who] += units
                self.writes.append({"function": who, "operation": operation, "table": _logical(table),
                                    "bytes": max(before, after), "wru": units, "condition_failed": failed})
        elif operation == "GetItem":
            table = body["TableName"]
            self.rru[who] += max(1, math.ceil(_size(table, body["Key"]) / 4096))
        elif operation == "BatchGetItem":
            # Each key is read (and rounded up to 4 KB) as its own GetItem would be.
            for table, request in body["RequestItems"].items():
                self.rru[who] += sum(max(1, math.ceil(_size(table, key) / 4096)) for key in request["Keys"])
        elif operation == "Query":
            values = body.get("ExpressionAttributeValues", {})
            hash_value = next(iter(values.values()))
            _items, size = _partition_size(body["TableName"], hash_value)
            self.rru[who] += max(1, math.ceil(size / 4096))


def _logical(physical: str) -> str:
    from chalicelib import config
    from chalicelib.schema import TABLES

    for table in TABLES:
        if config.table_name(table.name) == physical:
            return table.name
    return physical


def _wrap_handlers(meter: DynamoMeter, durations: dict[str, list[float]]) -> None:
    from local import hooks

    for name, handler in list(hooks._handlers.items()):
        short = name.rsplit("-", 1)[-1]

        def timed(event: dict[str, Any], context: Any, _handler: Any = handler, _name: str = short) -> Any:
            meter.current.name = _name
            started = time.perf_counter()
            try:
                return _handler(event, context)
            finally:
                durations[_name].append(time.perf_counter() - started)
                meter.current.name = None

        hooks._handlers[name] = timed


SCENARIOS: list[tuple[str, dict[str, Any]]] = [
    ("happy path (points redeemed)", {"loyalty_id": "FF0001", "points_to_redeem": 1_000}),
    ("happy path (no loyalty account)", {}),
    *[(f"permanent failure at {step}", {"loyalty_id": "FF0002", "points_to_redeem": 1_000,
                                         "simulate_failure": {step: "permanent"}}) for step in FORWARD_STEPS],
]


def _fresh_flight(departure: str = "2030-01-01T08:00:00Z") -> str:
    """A flight of its own for each run: an auto-assigned seat never meets an earlier
    run's booking, so a lost race (one more request) never blurs the counts."""
    from ops.seed import flight_item, seed_flights

    number = f"CP{uuid.uuid4().int % 10**6:06d}"
    seed_flights([flight_item(number, "SFO", "JFK", departure)])
    return number


#: (passengers, legs) of the party bookings priced (issue 14): a happy booking with points
#: redeemed, each leg a fresh flight a day after the previous one, seats auto-assigned.
PARTIES = ((1, 1), (4, 2), (9, 3))


def party_label(passengers: int, legs: int) -> str:
    return f"party {passengers}x{legs} (passengers x legs, points redeemed)"


def party_body(passengers: int, legs: int) -> dict[str, Any]:
    return {
        "flights": [_fresh_flight(f"2030-01-{day + 1:02d}T08:00:00Z") for day in range(legs)],
        "passengers": [{"first_name": "Cost", "last_name": f"Probe{index}"} for index in range(passengers)],
        "cabin": "ECONOMY", "payment": {"card_token": "tok_visa"}, "loyalty_id": "FF0003", "points_to_redeem": 1_000,
    }


def _phase(meter: DynamoMeter, who: set[str]) -> dict[str, int]:
    return {"requests": sum(count for (name, _), count in meter.calls.items() if name in who),
            "wru": sum(meter.wru[name] for name in who), "rru": sum(meter.rru[name] for name in who)}


def _by_function(meter: DynamoMeter) -> dict[str, dict[str, Any]]:
    """Requests, WRU and RRU of each function that made a request, and its operations."""
    functions = sorted({name for name, _ in meter.calls})
    return {name: {**_phase(meter, {name}),
                   "operations": {operation: count for (who, operation), count in sorted(meter.calls.items())
                                  if who == name}}
            for name in functions}


def measure_booking(meter: DynamoMeter, durations: dict[str, list[float]], extra: dict[str, Any],
                    party: tuple[int, int] | None = None) -> dict[str, Any]:
    """One booking as a client makes it (POST with an Idempotency-Key, as the page, bench.e2e
    and the locustfile send), its saga, then one status poll of the terminal booking. With
    ``party`` (passengers, legs): that party's booking instead of the one-seat form."""
    from chalicelib import api, saga

    if party is not None:
        body = party_body(*party)
    else:
        body = {"flight_number": _fresh_flight(), "cabin": "ECONOMY",
                "passenger": {"first_name": "Cost", "last_name": "Probe"}, "payment": {"card_token": "tok_visa"},
                **extra}
    customer = demo_customer(body.get("loyalty_id"))
    meter.calls.clear()
    meter.wru.clear()
    meter.rru.clear()
    meter.writes.clear()
    durations.clear()
    started = time.perf_counter()
    response, _ = api.start_booking(json.dumps(body), {"Idempotency-Key": str(uuid.uuid4())}, customer)
    post_s = time.perf_counter() - started
    wait_for_execution_threads()
    execution_s = time.perf_counter() - started - post_s
    booking_id = response["booking_id"]
    meter.current.name = POLL
    try:
        view = api.view_booking(booking_id, customer)  # what GET /bookings/{id} does
    finally:
        meter.current.name = None
    history = saga.raw_history(saga.execution_arn(booking_id))
    transitions = sum(1 for event in history if event["type"].endswith("StateEntered"))
    invocations = sum(1 for event in history if event["type"] == "LambdaFunctionScheduled")
    invoked = {name: {"count": len(times), "ms": round(1000 * sum(times) / len(times), 1)}
               for name, times in durations.items()}
    steps = {name for name, _ in meter.calls} - {API, POLL}
    return {
        "booking_id": booking_id,
        "status": view["status"],
        "states_entered": [event["stateEnteredEventDetails"]["name"] for event in history
                           if "stateEnteredEventDetails" in event],
        "state_transitions": transitions,
        "lambda_invocations": invocations,
        "lambda_ms": {name: entry["ms"] for name, entry in invoked.items()},
        "lambda_total_ms": round(1000 * sum(sum(times) for times in durations.values()), 1),
        "post_ms": round(post_s * 1000, 1),
        "execution_ms": round(execution_s * 1000, 1),
        "ddb_calls": {f"{who}: {operation}": count for (who, operation), count in sorted(meter.calls.items())
                      if who != POLL},
        "post": _phase(meter, {API}),
        "saga": _phase(meter, steps),
        "poll": _phase(meter, {POLL}),
        "functions": _by_function(meter),
        # The bill counts the booking (POST and saga); a poll is priced per poll, apart.
        "wru": {name: units for name, units in meter.wru.items() if name != POLL},
        "rru": {name: units for name, units in meter.rru.items() if name != POLL},
        "wru_total": sum(units for name, units in meter.wru.items() if name != POLL),
        "rru_total": sum(units for name, units in meter.rru.items() if name != POLL),
        "writes": [write for write in meter.writes if write["function"] != POLL],
    }


def dollars_per_million(result: dict[str, Any], memory_mb: int, execution_ms: float | None = None) -> dict[str, float]:
    """Cost of 1,000,000 bookings like ``result``. Lambda: the step functions plus the API
    handler of POST /bookings, each billed its measured duration (1 ms granularity)."""
    million = 1_000_000
    lambda_ms = result["lambda_total_ms"] + result["post_ms"]
    invocations = result["lambda_invocations"] + 1  # + the API handler
    gb = memory_mb / 1024
    lambda_cost = million * (invocations * PRICES["lambda_per_request"]
                             + gb * lambda_ms / 1000 * PRICES["lambda_per_gb_s"])
    ddb = million * (result["wru_total"] * PRICES["ddb_per_wru"] + result["rru_total"] * PRICES["ddb_per_rru"])
    standard = million * result["state_transitions"] * PRICES["sfn_standard_per_transition"]
    billed_ms = math.ceil((execution_ms if execution_ms is not None else result["execution_ms"]) / 100) * 100
    express = million * (PRICES["sfn_express_per_request"]
                         + 64 / 1024 * billed_ms / 1000 * PRICES["sfn_express_per_gb_s"])
    return {
        "lambda": round(lambda_cost, 2), "dynamodb": round(ddb, 2),
        "sfn_standard": round(standard, 2), "sfn_express": round(express, 2),
        "total_standard": round(lambda_cost + ddb + standard, 2),
        "total_express": round(lambda_cost + ddb + express, 2),
    }


def measure_here(parties: bool = True) -> dict[str, Any]:
    """Every scenario, against the code this process imports (``parties``: also the party
    bookings, which the baseline's code does not know)."""
    meter = DynamoMeter()
    durations: dict[str, list[float]] = defaultdict(list)
    results: dict[str, Any] = {}
    scenarios: list[tuple[str, dict[str, Any], tuple[int, int] | None]] = [
        (label, extra, None) for label, extra in SCENARIOS]
    if parties:
        scenarios += [(party_label(*party), {}, party) for party in PARTIES]
    with embedded_stack():
        meter.install()
        _wrap_handlers(meter, durations)
        measure_booking(meter, durations, {})  # warm-up
        for label, extra, party in scenarios:
            runs = [measure_booking(meter, durations, extra, party) for _ in range(REPEATS)]
            result = runs[-1]  # counts are the same every run; durations: the median of the runs
            result["runs"] = REPEATS
            result["requests_every_run"] = sorted({run["post"]["requests"] + run["saga"]["requests"] for run in runs})
            result["lambda_ms"] = {name: round(statistics.median(run["lambda_ms"].get(name, 0.0) for run in runs), 1)
                                   for name in result["lambda_ms"]}
            for key in ("lambda_total_ms", "post_ms", "execution_ms"):
                result[key] = round(statistics.median(run[key] for run in runs), 1)
            result["per_million_usd"] = {f"{memory} MB": dollars_per_million(result, memory) for memory in (128, 256)}
            results[label] = result
    return {"scenarios": results, "prices": PRICES, "price_sources": PRICE_SOURCES}


def measure_at(commit: str) -> dict[str, Any]:
    """This measurement against ``commit``'s code: its tree unpacked into a temporary
    directory (``git archive``: the repository's worktrees are left alone), run with this
    interpreter and this file, in a process of its own."""
    from bench.common import unpacked_commit  # not at the top: this file also runs in that tree

    with unpacked_commit(commit) as tree:
        out = tree.parent / "cost.json"
        # Run as "-c": the tree (cwd) comes first on sys.path, so chalicelib, app, local and
        # bench.common are the commit's; only this file is ours.
        script = (f"import runpy, sys; sys.argv = ['cost', '--no-baseline', '--no-parties', '--json', {str(out)!r}]; "
                  f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')")
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        done = subprocess.run([sys.executable, "-c", script], cwd=tree, env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        if done.returncode != 0:
            return {"commit": commit, "error": done.stderr[-2000:]}
        return {"commit": commit, **json.loads(out.read_text())}


def measure(baseline: str | None = BASELINE, parties: bool = True) -> dict[str, Any]:
    """The figures of this code, and (``baseline``) of that commit's, by the same meter."""
    results = measure_here(parties)
    if baseline:
        results["baseline"] = measure_at(baseline)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=BASELINE, help=f"commit to compare with (default {BASELINE})")
    parser.add_argument("--no-baseline", action="store_true", help="measure this code only")
    parser.add_argument("--no-parties", action="store_true", help="the one-seat paths only (as the baseline runs)")
    parser.add_argument("--json", type=Path, help="write the results here instead of printing them")
    args = parser.parse_args()
    results = measure(None if args.no_baseline else args.baseline, parties=not args.no_parties)
    text = json.dumps(results, indent=2, default=str)
    if args.json:
        args.json.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
