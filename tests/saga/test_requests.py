"""Issue 13, point 2: what one booking costs DynamoDB, pinned. A happy booking runs
through the real state machine and is measured by bench/cost.py's meter (every request
of chalicelib.db's client, by the Lambda that made it; WRU and RRU sized from the items
as moto stores them), as `python -m bench.cost` measures it. A change that adds a
request or a request unit fails here; one that removes some updates the figures (and
docs/benchmarks.md).

The baseline (48f2cb2, the same meter), points redeemed: POST 4 requests / 6 WRU / 3 RRU,
saga 21 / 33 / 6, poll 3 requests / 3 RRU; no loyalty account: POST 3 / 6 / 2, saga 15 /
19 / 4.

Issue 14 adds a step: CapturePayment, after the pivot, costs 1 request and 6 WRU (the
capture, the booking's note of it and its step-log outcome in one transaction, 2 WRU
each) and reads nothing (AuthorizePayment's result travels to it). Its outcome is in the
transaction, not written after it (1 WRU, one request more), because the booking shows
CONFIRMED before the capture: whoever sees the money CAPTURED must see the step
SUCCEEDED, with no write still to land. The WRU baseline is raised by exactly that, and
no more.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from bench.cost import POLL, DynamoMeter, _wrap_handlers, measure_booking
from chalicelib import step_log
from local import hooks

POINTS = {"loyalty_id": "FF0001", "points_to_redeem": 1_000}

# Requests, WRU and RRU of POST /bookings (with an Idempotency-Key), the saga, one poll.
PINNED = {
    "happy path (points redeemed)": (POINTS, {
        "post": {"requests": 2, "wru": 6, "rru": 3},
        "saga": {"requests": 9, "wru": 35, "rru": 3},
        "poll": {"requests": 2, "wru": 0, "rru": 2},
    }),
    "happy path (no loyalty account)": ({}, {
        "post": {"requests": 2, "wru": 6, "rru": 2},
        "saga": {"requests": 8, "wru": 24, "rru": 3},
        "poll": {"requests": 2, "wru": 0, "rru": 2},
    }),
}
# The saga's requests step by step (points redeemed), and what they are.
PER_STEP = {
    "reserve_seats": {"TransactWriteItems": 1},  # hold + the booking's note + its step-log outcome
    "redeem_points": {"TransactWriteItems": 1},  # ledger entry + balance + outcome (a tombstone takes the key)
    "authorize_payment": {"GetItem": 1, "TransactWriteItems": 1, "UpdateItem": 1},  # token; decision + note; outcome
    "award_miles": {"TransactWriteItems": 1},
    "confirm_booking": {"BatchGetItem": 1, "TransactWriteItems": 1},  # booking + flight; sale + ticket + outcome
    "capture_payment": {"TransactWriteItems": 1},  # capture + note + outcome (no read)
}
# WRU of POST and saga at 48f2cb2, plus the capture's (issue 14): no path may cost more now.
CAPTURE_WRU = 6
BASELINE_WRU = {"happy path (points redeemed)": 6 + 33 + CAPTURE_WRU,
                "happy path (no loyalty account)": 6 + 19 + CAPTURE_WRU}


@pytest.fixture
def meter(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """bench.cost's meter on the embedded stack, the Lambda handlers wrapped to name the
    function each request comes from."""
    monkeypatch.setattr(hooks, "_handlers", dict(hooks._handlers))
    measuring = DynamoMeter()
    measuring.install()
    _wrap_handlers(measuring, defaultdict(list))
    yield measuring
    measuring.uninstall()


@pytest.mark.parametrize("path", list(PINNED))
def test_a_happy_booking_costs_the_pinned_requests_and_request_units(meter: Any, path: str) -> None:
    """GIVEN a happy booking posted as clients post one (with an Idempotency-Key)
    WHEN its saga runs through the state machine and the customer polls it once
    THEN POST, saga and poll make exactly the pinned DynamoDB requests, WRU and RRU (issue
    13: at most 12 requests in the saga, 3 for the POST, WRU no higher than before)."""
    extra, pinned = PINNED[path]
    result = measure_booking(meter, defaultdict(list), extra)

    assert result["status"] == "CONFIRMED"
    assert {phase: result[phase] for phase in ("post", "saga", "poll")} == pinned
    assert result["saga"]["requests"] <= 12 and result["post"]["requests"] <= 3
    assert result["wru_total"] <= BASELINE_WRU[path]


def test_each_step_of_a_happy_booking_makes_only_its_own_writes(meter: Any) -> None:
    """GIVEN a happy booking redeeming points WHEN its saga runs THEN each step makes the
    requests listed (one transaction where it has one, no read before a write, no
    RUNNING write), a poll is one GetItem and one Query, and every step-log entry is
    SUCCEEDED after one attempt."""
    result = measure_booking(meter, defaultdict(list), POINTS)

    steps = {name: entry["operations"] for name, entry in result["functions"].items()
             if name in PER_STEP}
    assert steps == PER_STEP
    assert result["functions"][POLL]["operations"] == {"GetItem": 1, "Query": 1}
    log = step_log.read(result["booking_id"])["steps"]
    assert {name: (entry["status"], entry["attempts"]) for name, entry in log.items()} == {
        name: ("SUCCEEDED", 1) for name in ("ReserveSeats#0", "RedeemPoints", "AuthorizePayment", "AwardMiles",
                                            "ConfirmBooking", "CapturePayment")}


# A permanent failure at each forward step: the saga's (requests, WRU), and its WRU at 48f2cb2.
FAILURES = {
    "ReserveSeats": (4, 4, 5),
    "RedeemPoints": (8, 13, 15),
    "AuthorizePayment": (12, 24, 29),
    "AwardMiles": (17, 33, 35),
    "ConfirmBooking": (21, 44, 49),
}


@pytest.mark.parametrize("step", list(FAILURES))
def test_a_failed_booking_costs_the_pinned_requests_and_no_more_wru_than_before(meter: Any, step: str) -> None:
    """GIVEN a booking redeeming points that fails for good at one step
    WHEN its saga compensates the steps before it
    THEN the saga makes exactly the pinned requests and WRU, never more WRU than the
    baseline: the payment notes on the booking (2 WRU each, in the payment's transaction)
    are paid for by the RUNNING writes that are gone and by compensations writing their
    outcome on their own."""
    requests, wru, baseline_wru = FAILURES[step]
    result = measure_booking(meter, defaultdict(list), {**POINTS, "simulate_failure": {step: "permanent"}})

    assert result["status"] == "FAILED"
    assert (result["saga"]["requests"], result["saga"]["wru"]) == (requests, wru)
    assert wru <= baseline_wru
