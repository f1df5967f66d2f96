"""End to end over HTTP against `chalice local --stage local` (a subprocess on a free
port): bookings at concurrency 1, 4 and 16, happy path and all-failures mix, and the
contention run (100 buyers for the 12 FIRST seats of one flight).

    python -m bench.e2e            # prints the results as JSON
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import requests

from bench.common import FORWARD_STEPS, TERMINAL, booking_body, chalice_local, percentile
from chalicelib.customers import DEMO_PASSWORD, DEMO_USERNAMES
from chalicelib.vocabulary import BookingStatus, SeatStatus
from local import embedded, hooks
from local.server import LocalServer

HAPPY_FLIGHTS = ["SA101", "SA102", "SA201", "SA202", "SA301", "SA302", "SA401", "SA402"]
CONTENTION_FLIGHT = "SA501"
POLL_SECONDS = 0.01
LEVELS = ((1, 24), (4, 40), (16, 48))  # (concurrency, bookings)


class Client:
    """One requests.Session per thread (connection reuse, as a load generator would)."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self._local = threading.local()
        self.retries = 0  # connection errors retried (reported)
        self._tokens: dict[str, str] = {}
        self._tokens_lock = threading.Lock()

    def headers_of(self, username: str) -> dict[str, str]:
        """The demo customer's Authorization header (signed in once per customer)."""
        with self._tokens_lock:
            if username not in self._tokens:
                answer = requests.post(f"{self.base_url}/auth/sign-in", timeout=self.timeout,
                                       json={"username": username, "password": DEMO_PASSWORD})
                answer.raise_for_status()
                self._tokens[username] = answer.json()["id_token"]
            return {"Authorization": f"Bearer {self._tokens[username]}"}

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def book(self, body: dict[str, Any], poll: float = POLL_SECONDS, timeout: float = 120.0) -> dict[str, Any]:
        """POST a booking and poll it to a terminal status; times in seconds."""
        session = self.session()
        signed_in = self.headers_of(body.get("loyalty_id") or DEMO_USERNAMES[0])
        started = time.perf_counter()
        # A connection error is resent (the Idempotency-Key makes a resent POST safe: the
        # replay gets the same booking) and counted: with local.embedded's listen backlog
        # there should be none (socketserver's default of 5 reset them under load).
        response = self._send(session.post, f"{self.base_url}/bookings", json=body, timeout=self.timeout,
                              headers={"Idempotency-Key": str(uuid.uuid4()), **signed_in})
        accepted = time.perf_counter()
        if response.status_code != 202:
            return {"status": f"HTTP {response.status_code}", "error": response.text[:200],
                    "post_s": accepted - started, "total_s": accepted - started, "started": started}
        booking_id = response.json()["booking_id"]
        deadline = started + timeout
        polls = 0
        while True:
            view = self._send(session.get, f"{self.base_url}/bookings/{booking_id}", timeout=self.timeout,
                              headers=signed_in).json()
            polls += 1
            if view["status"] in TERMINAL or time.perf_counter() > deadline:
                break
            time.sleep(poll)
        finished = time.perf_counter()
        error = view.get("error")
        return {
            "booking_id": booking_id, "status": view["status"], "failed_step": view.get("failed_step"),
            "error": error.get("error") if isinstance(error, dict) else error,
            "seat": view.get("seat"), "post_s": accepted - started, "total_s": finished - started,
            "started": started, "finished": finished, "polls": polls, "view": view,
        }


    def _send(self, method: Callable[..., requests.Response], url: str, **kwargs: Any) -> requests.Response:
        for attempt in range(5):
            try:
                return method(url, **kwargs)
            except (requests.ConnectionError, requests.Timeout):
                self.retries += 1
                if attempt == 4:
                    raise
                self._local.session = requests.Session()
                method = getattr(self._local.session, method.__name__)
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")


def summarise(results: list[dict[str, Any]], wall_s: float, concurrency: int, mix: str) -> dict[str, Any]:
    totals_ms = [result["total_s"] * 1000 for result in results]
    posts_ms = [result["post_s"] * 1000 for result in results]
    statuses = Counter(result["status"] for result in results)
    return {
        "mix": mix,
        "concurrency": concurrency,
        "bookings": len(results),
        "statuses": dict(statuses),
        "wall_s": round(wall_s, 2),
        "confirmed_per_s": round(statuses.get(BookingStatus.CONFIRMED, 0) / wall_s, 2),
        "terminal_per_s": round(sum(statuses[s] for s in TERMINAL) / wall_s, 2),
        "p50_ms": round(percentile(totals_ms, 50), 1),
        "p95_ms": round(percentile(totals_ms, 95), 1),
        "p99_ms": round(percentile(totals_ms, 99), 1),
        "post_p50_ms": round(percentile(posts_ms, 50), 1),
        "failed_steps": dict(Counter(result.get("failed_step") for result in results
                                     if result["status"] == BookingStatus.FAILED)),
    }


def happy_body(index: int) -> dict[str, Any]:
    return booking_body(HAPPY_FLIGHTS[index % len(HAPPY_FLIGHTS)], loyalty_id=f"FF{index % 10 + 1:04d}",
                        points_to_redeem=1_000)


#: A party of 4 over 2 legs (issue 14), ECONOMY, auto-assigned: SA501 then SA502 (the demo
#: data flies SA502 three hours after SA501; the crowd below buys SA501's FIRST seats only).
PARTY_FLIGHTS = ["SA501", "SA502"]
PARTY_LEVEL = (1, 12)  # (concurrency, bookings): 48 of each leg's 132 ECONOMY seats


def party_body(index: int, passengers: int = 4) -> dict[str, Any]:
    return {"flights": PARTY_FLIGHTS, "cabin": "ECONOMY", "payment": {"card_token": "tok_visa"},
            "passengers": [{"first_name": "Bench", "last_name": f"Party{index}x{seat}"} for seat in range(passengers)],
            "loyalty_id": f"FF{index % 10 + 1:04d}", "points_to_redeem": 1_000}


def failure_body(index: int, rng: random.Random) -> dict[str, Any]:
    body = happy_body(index)
    body["simulate_failure"] = {rng.choice(FORWARD_STEPS): "permanent"}
    return body


def run_level(client: Client, concurrency: int, count: int, mix: str, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    makers = {"happy": happy_body, "party 4x2": party_body, "failures": lambda i: failure_body(i, rng)}
    bodies = [makers[mix](i) for i in range(count)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(client.book, bodies))
    return summarise(results, time.perf_counter() - started, concurrency, mix)


def contention(base_url: str, buyers: int = 100, poll: float = 0.2) -> dict[str, Any]:
    """``buyers`` threads released together, each buying one FIRST seat on one flight.
    A generous client timeout: 100 simultaneous POSTs queue in the one-process server."""
    client = Client(base_url, timeout=120.0)
    gate = threading.Barrier(buyers)
    body = booking_body(CONTENTION_FLIGHT, cabin="FIRST")

    def buy(_: int) -> dict[str, Any]:
        client.session()  # connect before the gate opens
        gate.wait(timeout=60)
        return client.book(body, poll=poll, timeout=300)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=buyers) as pool:
        results = list(pool.map(buy, range(buyers)))
    drained = max(result.get("finished", result["started"]) for result in results) - started
    slowest_task_s = _slowest_task_s(client, [result["booking_id"] for result in results if "booking_id" in result])
    seat_map = requests.get(f"{client.base_url}/flights/{CONTENTION_FLIGHT}/seats", params={"cabin": "FIRST"},
                            timeout=30).json()["seats"]
    sold = sum(1 for seat in seat_map if seat["status"] == SeatStatus.BOOKED)
    confirmed_seats = [result["seat"] for result in results if result["status"] == BookingStatus.CONFIRMED]
    return {
        "buyers": buyers,
        "cabin_seats": len(seat_map),
        "sold_seats": sold,
        "held_seats": sum(1 for seat in seat_map if seat["status"] == SeatStatus.HELD),
        "confirmed": len(confirmed_seats),
        "distinct_confirmed_seats": len(set(confirmed_seats)),
        "statuses": dict(Counter(result["status"] for result in results)),
        "failed_at": dict(Counter(f"{result.get('failed_step')}:{result.get('error')}"
                                  for result in results if result["status"] == BookingStatus.FAILED)),
        "drain_s": round(drained, 2),
        "poll_s": poll,
        "p50_ms": round(percentile([r["total_s"] * 1000 for r in results], 50), 1),
        "p99_ms": round(percentile([r["total_s"] * 1000 for r in results], 99), 1),
        "connection_retries": client.retries,
        "timeouts": sum(1 for result in results if "States.Timeout" in str(result.get("error"))),
        "max_running_executions": hooks.configured_max_running_executions(),
        "max_concurrent_requests": int(os.environ.get(embedded.MAX_CONCURRENT_REQUESTS_ENV)
                                       or embedded.DEFAULT_MAX_CONCURRENT_REQUESTS),
        "slowest_task_s": slowest_task_s,
    }


TASK_ENDS = ("LambdaFunctionSucceeded", "LambdaFunctionFailed", "LambdaFunctionTimedOut")


def _slowest_task_s(client: Client, booking_ids: list[str]) -> float:
    """The longest any task took, scheduled to ended, over the bookings' histories: how
    close a busy server came to a task's TimeoutSeconds (10 s)."""
    slowest = 0.0
    headers = client.headers_of(DEMO_USERNAMES[0])
    for booking_id in booking_ids:
        events = client.session().get(f"{client.base_url}/bookings/{booking_id}/history", headers=headers,
                                      timeout=client.timeout).json()["executions"][0]["events"]
        scheduled_at = None
        for event in events:
            at = datetime.fromisoformat(event["timestamp"]).timestamp()
            if event["type"] == "LambdaFunctionScheduled":
                scheduled_at = at
            elif event["type"] in TASK_ENDS and scheduled_at is not None:
                slowest = max(slowest, at - scheduled_at)
    return round(slowest, 2)


def run_all(server: LocalServer | None = None) -> dict[str, Any]:
    if server is None:
        with chalice_local() as started:
            return run_all(started)
    client = Client(server.url)
    client.book(happy_body(0))  # warm-up: first-call imports and caches in the server
    levels = []
    for mix in ("happy", "failures"):
        for concurrency, count in LEVELS:
            result = run_level(client, concurrency, count, mix)
            print(f"  e2e {mix:8} c={concurrency:<2} n={count:<3} {result['confirmed_per_s']:6.2f} confirmed/s "
                  f"p50 {result['p50_ms']:7.1f} p95 {result['p95_ms']:7.1f} p99 {result['p99_ms']:7.1f} ms "
                  f"{result['statuses']}", flush=True)
            levels.append(result)
    concurrency, count = PARTY_LEVEL
    party = run_level(client, concurrency, count, "party 4x2")
    print(f"  e2e party 4x2 c={concurrency} n={count} p50 {party['p50_ms']:7.1f} ms {party['statuses']}", flush=True)
    levels.append(party)
    crowd = contention(server.url)
    print(f"  contention: {crowd}", flush=True)
    return {"levels": levels, "contention": crowd, "poll_s": POLL_SECONDS, "connection_retries": client.retries}


if __name__ == "__main__":
    print(json.dumps(run_all(), indent=2))
