"""Chaos: hundreds of concurrent sagas with random inputs, seat contention, and random
permanent and transient failures at random steps and compensations, then random
cancellations; in the end every booking is terminal and the invariant checker finds
nothing. Reproducible from a seed: CHAOS_SEED=<n> (the inputs; thread interleaving is
the machine's). CHAOS_SAGAS sets how many bookings are requested (default 280,
of which at least 200 start a saga).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib import api, booking_view, db, dead_letters, invariants, recovery
from chalicelib.errors import Conflict
from chalicelib.vocabulary import CANCELLATION_STEPS, COMPENSATION_NAMES, STEP_NAMES
from tests.saga.conftest import execution
from tests.support import booking_body, wait_for_status

CANCELLABLE = [compensation.name for compensation in CANCELLATION_STEPS]

SEED = int(os.environ.get("CHAOS_SEED", "20261123"))
SAGAS = int(os.environ.get("CHAOS_SAGAS", "280"))  # ~25% are refused up front (409): not sagas
CONCURRENCY = 16  # sagas in flight at once
DEADLINE_SECONDS = 420  # the whole run is bounded; it normally takes a fraction of this
FLIGHTS = ["SA101", "SA102"]
CONTENDED_SEATS = ["1A", "1B", "3C", "7D", "7E", "12A", "12B", "20F"]  # everyone wants these


def random_booking(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {"flight_number": rng.choice(FLIGHTS)}
    if rng.random() < 0.35:
        body["seat"], body["cabin"] = rng.choice(CONTENDED_SEATS), None
    else:
        body["cabin"] = rng.choices(["FIRST", "BUSINESS", "ECONOMY"], weights=[3, 2, 5])[0]
    if rng.random() < 0.6:
        body["loyalty_id"] = f"FF{rng.randint(1, 10):04d}"
        body["points_to_redeem"] = rng.choice([0, 0, 500, 2_500, 20_000, 60_000])
    if rng.random() < 0.1:
        body["payment"] = {"card_token": "tok_decline"}
    failures: dict[str, str] = {}
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        target = rng.choice(STEP_NAMES + COMPENSATION_NAMES)
        failures[target] = rng.choices(["permanent", "transient"], weights=[3, 2])[0]
    if failures:
        body["simulate_failure"] = failures
    return booking_body(**body)


def start(body: dict[str, Any]) -> str | None:
    try:
        response, _ = api.start_booking(json.dumps(body), {})
    except Conflict:
        return None  # the contended seat was already taken: refused up front, nothing written
    return str(response["booking_id"])


def book_and_settle(body: dict[str, Any], deadline: float) -> str | None:
    """One client: start a booking and wait for it, so at most one saga per worker is in
    flight (moto runs every execution of the process at once: 220 together would only
    measure the one Python process timing out)."""
    booking_id = start(body)
    if booking_id:
        settle([booking_id], deadline)
    return booking_id


def settle(booking_ids: list[str], deadline: float, kind: str = "booking") -> None:
    for booking_id in booking_ids:
        wait_for_status(booking_id, timeout=max(1.0, deadline - time.monotonic()))
        execution(booking_id, kind, timeout=max(1.0, deadline - time.monotonic()))


def test_chaos_keeps_every_invariant(aws: Any) -> None:
    rng = random.Random(SEED)
    deadline = time.monotonic() + DEADLINE_SECONDS
    started_at = time.monotonic()
    bodies = [random_booking(rng) for _ in range(SAGAS)]

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        started = list(pool.map(lambda body: book_and_settle(body, deadline), bodies))
    booking_ids = [booking_id for booking_id in started if booking_id]
    assert len(booking_ids) >= 200 or SAGAS < 280, f"only {len(booking_ids)} sagas started"

    # Cancel a random third of the confirmed ones, some with failing compensations.
    confirmed = [booking_id for booking_id in booking_ids if booking_view.view(booking_id)["status"] == "CONFIRMED"]
    cancelled = rng.sample(confirmed, k=len(confirmed) // 3)
    for booking_id in cancelled:
        failure = {rng.choice(CANCELLABLE): rng.choice(["permanent", "transient"])} if rng.random() < 0.3 else {}
        api.cancel_booking(booking_id, json.dumps({"simulate_failure": failure}))
    settle(cancelled, deadline, "cancellation")

    # The operator re-runs what failed for good.
    attention = [booking_id for booking_id in booking_ids
                 if booking_view.view(booking_id)["status"] == "NEEDS_ATTENTION"]
    for booking_id in attention:
        assert recovery.recover(booking_id)["still_failing"] == {}

    views = [booking_view.view(booking_id) for booking_id in booking_ids]
    statuses = Counter(view["status"] for view in views)
    assert set(statuses) <= {"CONFIRMED", "FAILED", "CANCELLED"}, statuses
    assert invariants.check() == []
    booked = [seat for seat in db.scan("seats") if seat["status"] == "BOOKED"]
    assert len(booked) == statuses["CONFIRMED"]
    assert len({(seat["flight_number"], seat["seat"]) for seat in booked}) == len(booked)
    assert dead_letters.open_letters() == []

    failed_at = Counter(view["failed_step"] for view in views if view["status"] == "FAILED")
    errors = Counter(view["error"]["error"] for view in views if view["status"] == "FAILED")
    print(f"\nchaos seed={SEED}: {SAGAS} requested, {len(booking_ids)} sagas started, "
          f"{SAGAS - len(booking_ids)} refused up front (409), {len(cancelled)} cancellations, "
          f"{len(attention)} recovered by the operator, {time.monotonic() - started_at:.1f} s")
    print(f"outcomes: {dict(statuses)}; failed at: {dict(failed_at)}; errors: {dict(errors)}")
