"""Locust: the same booking mix as bench/e2e.py (happy path, and permanent failures at
a random forward step) against any deployed or local stage.

    locust -f bench/locustfile.py --headless -u 16 -r 4 -t 2m --host https://<api>/api

Run it from the project directory: locust puts the working directory on sys.path, and
the step names and statuses come from chalicelib.vocabulary.

Each task POSTs /bookings and polls GET /bookings/{id} until a terminal status; the
time from POST to that status is reported as its own entry (``SAGA POST->CONFIRMED``
etc.) beside the HTTP requests. Settings (environment): BENCH_FLIGHTS (comma-separated,
default the demo flights SA101...SA502), BENCH_POLL_SECONDS (default 0.05),
BENCH_FAILURE_SHARE (default 0.25; needs a stage with fault injection on, else the
failures are refused with 400), BENCH_TIMEOUT_SECONDS (default 60).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

from locust import HttpUser, between, task

from chalicelib.customers import DEMO_PASSWORD, DEMO_USERNAMES
from chalicelib.vocabulary import STEP_NAMES, TERMINAL_STATUSES, BookingStatus

FLIGHTS = os.environ.get(
    "BENCH_FLIGHTS", "SA101,SA102,SA201,SA202,SA301,SA302,SA401,SA402,SA501,SA502").split(",")
POLL_SECONDS = float(os.environ.get("BENCH_POLL_SECONDS", "0.05"))
FAILURE_SHARE = float(os.environ.get("BENCH_FAILURE_SHARE", "0.25"))
TIMEOUT_SECONDS = float(os.environ.get("BENCH_TIMEOUT_SECONDS", "60"))


def booking_body(failure_at: str | None, loyalty_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "flight_number": random.choice(FLIGHTS),
        "cabin": "ECONOMY",
        "passenger": {"first_name": "Locust", "last_name": "Load"},
        "loyalty_id": loyalty_id,
        "points_to_redeem": 1_000,
        "payment": {"card_token": "tok_visa"},
    }
    if failure_at:
        body["simulate_failure"] = {failure_at: "permanent"}
    return body


class BookingUser(HttpUser):
    wait_time = between(0.1, 0.5)
    username = DEMO_USERNAMES[0]

    def on_start(self) -> None:
        """Each simulated user is one demo customer, signed in once (their loyalty account)."""
        self.username = random.choice(DEMO_USERNAMES)
        answer = self.client.post("/auth/sign-in", json={"username": self.username, "password": DEMO_PASSWORD},
                                  name="POST /auth/sign-in")
        answer.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {answer.json()['id_token']}"

    def _saga(self, failure_at: str | None) -> None:
        started = time.perf_counter()
        with self.client.post("/bookings", json=booking_body(failure_at, self.username), name="POST /bookings",
                              headers={"Idempotency-Key": str(uuid.uuid4())}, catch_response=True) as response:
            if response.status_code != 202:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            booking_id = response.json()["booking_id"]
        status: str = BookingStatus.PENDING
        while time.perf_counter() - started < TIMEOUT_SECONDS:
            reply = self.client.get(f"/bookings/{booking_id}", name="GET /bookings/{id}")
            if reply.ok:
                status = reply.json().get("status", status)
                if status in TERMINAL_STATUSES:
                    break
            time.sleep(POLL_SECONDS)
        expected = BookingStatus.FAILED if failure_at else BookingStatus.CONFIRMED
        self.environment.events.request.fire(
            request_type="SAGA", name=f"POST->{expected}", response_time=(time.perf_counter() - started) * 1000,
            response_length=0, context={},
            exception=None if status == expected else AssertionError(f"ended {status}, expected {expected}"),
        )

    @task
    def book(self) -> None:
        failing = random.random() < FAILURE_SHARE
        self._saga(random.choice(STEP_NAMES) if failing else None)
